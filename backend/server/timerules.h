/*
 * PURE. A template's time rules (DESIGN.md 5, docs/time-rules.md): given an
 * Active session's times, its template's rules, the activity the agent
 * reported and now, what to do and when to look again. The reaper and the
 * activity handler (core_activity.c) apply the answer, so every agent gets
 * the same rules. Times are Unix seconds; 0 means "none".
 *
 *   claimDeadline   nobody connected within it after activation -> Expired
 *   clockStartsAt   firstConnect: the duration counts from the first SSH
 *                   connection; until then the session ends at the claim
 *                   deadline (the config requires one)
 *   idleTimeout     no input from anyone for this long -> Expired; counted
 *                   from the later of the clock's start, the first
 *                   connection and the last input (and only once someone
 *                   connected when there is a claim deadline)
 *   autoExtend      someone typed within the last step and the session ends
 *                   within TIMERULES_LEAD_S (or step, when shorter): extend
 *                   by step, never past startsAt + min(maxTotal, maxDuration)
 */
#ifndef AIRLOCK_TIMERULES_H
#define AIRLOCK_TIMERULES_H
#include <stdint.h>

/* The longest time before expiry at which an auto-extension happens. */
#define TIMERULES_LEAD_S 60

struct timerules_cfg {
    int64_t claim_deadline_s; /* 0 = none */
    int first_connect;        /* clockStartsAt: firstConnect */
    int64_t idle_timeout_s;   /* 0 = none */
    int64_t auto_step_s;      /* 0 = no autoExtend */
    int64_t auto_max_total_s; /* 0 = maxDuration */
    int64_t max_duration_s;
};

struct timerules_in {
    int64_t activated_at, starts_at, expires_at;
    int64_t duration_s;       /* the requested duration */
    int64_t first_connect_at; /* 0: nobody connected yet */
    int64_t last_input_at;    /* 0: no input yet */
};

enum timerules_action {
    TR_NONE,
    TR_EXTEND,    /* out.expires_at is the new expiry */
    TR_END_CLAIM, /* Expired, reason claim_deadline */
    TR_END_IDLE,  /* Expired, reason idle */
};

struct timerules_out {
    enum timerules_action action;
    int64_t expires_at;   /* TR_EXTEND: the new expiry */
    int64_t next_at;      /* look again then (after the action); 0 = no rule pending */
    int64_t idle_ends_at; /* when the idle rule would end it; 0 = not counting */
};

/* 1 when the template has any time rule (else nothing here applies). */
int timerules_any(const struct timerules_cfg *c);
/* expiresAt at activation: now + duration, or now + claimDeadline with firstConnect. */
int64_t timerules_activation_expiry(const struct timerules_cfg *c, int64_t now, int64_t duration_s);
/*
 * The first connection arrived at `at`: with firstConnect the clock starts
 * then (*starts_at, *expires_at set, returns 1); otherwise returns 0.
 */
int timerules_first_connect(const struct timerules_cfg *c, const struct timerules_in *in,
                            int64_t at, int64_t *starts_at, int64_t *expires_at);
/* When the idle rule ends the session (0 when it is not counting). */
int64_t timerules_idle_ends_at(const struct timerules_cfg *c, const struct timerules_in *in);
/* What to do at now (the session is Active and not yet past expires_at). */
void timerules_decide(const struct timerules_cfg *c, const struct timerules_in *in, int64_t now,
                      struct timerules_out *out);

#endif
