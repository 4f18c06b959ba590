/*
 * PURE. A template's time rules: see timerules.h for the rules themselves.
 * No clock, no I/O: every time comes in as an argument.
 */
#include <string.h>

#include "timerules.h"

static int64_t
max64(int64_t a, int64_t b)
{
    return a > b ? a : b;
}

/* The earlier of two "when" values where 0 means "never". */
static int64_t
soonest(int64_t a, int64_t b)
{
    if (a == 0)
        return b;
    if (b == 0)
        return a;
    return a < b ? a : b;
}

int
timerules_any(const struct timerules_cfg *c)
{
    return c->claim_deadline_s > 0 || c->first_connect || c->idle_timeout_s > 0 ||
           c->auto_step_s > 0;
}

int64_t
timerules_activation_expiry(const struct timerules_cfg *c, int64_t now, int64_t duration_s)
{
    if (c->first_connect && c->claim_deadline_s > 0)
        return now + c->claim_deadline_s;
    return now + duration_s;
}

int
timerules_first_connect(const struct timerules_cfg *c, const struct timerules_in *in, int64_t at,
                        int64_t *starts_at, int64_t *expires_at)
{
    if (!c->first_connect || in->first_connect_at != 0)
        return 0;
    *starts_at = at;
    *expires_at = at + in->duration_s;
    return 1;
}

int64_t
timerules_idle_ends_at(const struct timerules_cfg *c, const struct timerules_in *in)
{
    int64_t from;

    if (c->idle_timeout_s <= 0)
        return 0;
    /* with a claim deadline, that rule governs until someone connects */
    if (c->claim_deadline_s > 0 && in->first_connect_at == 0)
        return 0;
    from = max64(max64(in->activated_at, in->starts_at),
                 max64(in->first_connect_at, in->last_input_at));
    return from + c->idle_timeout_s;
}

/* startsAt + min(maxTotal, maxDuration): the furthest an auto-extension may go. */
static int64_t
auto_cap(const struct timerules_cfg *c, const struct timerules_in *in)
{
    int64_t total = c->max_duration_s;

    if (c->auto_max_total_s > 0 && (total <= 0 || c->auto_max_total_s < total))
        total = c->auto_max_total_s;
    return in->starts_at + total;
}

static int64_t
auto_lead(const struct timerules_cfg *c)
{
    return c->auto_step_s < TIMERULES_LEAD_S ? c->auto_step_s : TIMERULES_LEAD_S;
}

/* The new expiry when an auto-extension is due at now, else 0. */
static int64_t
auto_extend(const struct timerules_cfg *c, const struct timerules_in *in, int64_t now)
{
    int64_t cap, next;

    if (c->auto_step_s <= 0 || now >= in->expires_at || now < in->expires_at - auto_lead(c))
        return 0;
    /* before the first connection with firstConnect the clock has not started */
    if (c->first_connect && in->first_connect_at == 0)
        return 0;
    if (in->last_input_at == 0 || in->last_input_at < now - c->auto_step_s)
        return 0;
    cap = auto_cap(c, in);
    next = in->expires_at + c->auto_step_s;
    if (next > cap)
        next = cap;
    return next > in->expires_at ? next : 0;
}

/* When the rules need a look after now, for the state in *in (0 = never). */
static int64_t
next_look(const struct timerules_cfg *c, const struct timerules_in *in, int64_t now)
{
    int64_t next = 0, at;

    if (c->claim_deadline_s > 0 && in->first_connect_at == 0)
        next = soonest(next, in->activated_at + c->claim_deadline_s);
    next = soonest(next, timerules_idle_ends_at(c, in));
    if (c->auto_step_s > 0 && auto_cap(c, in) > in->expires_at) {
        at = in->expires_at - auto_lead(c);
        /* inside the window without recent input: new input reschedules (core_activity.c) */
        if (at > now)
            next = soonest(next, at);
    }
    return next;
}

void
timerules_decide(const struct timerules_cfg *c, const struct timerules_in *in, int64_t now,
                 struct timerules_out *out)
{
    struct timerules_in after = *in;
    int64_t idle_end, ext;

    memset(out, 0, sizeof(*out));
    if (c->claim_deadline_s > 0 && in->first_connect_at == 0 &&
        now >= in->activated_at + c->claim_deadline_s) {
        out->action = TR_END_CLAIM;
        return;
    }
    idle_end = timerules_idle_ends_at(c, in);
    if (idle_end != 0 && now >= idle_end) {
        out->action = TR_END_IDLE;
        out->idle_ends_at = idle_end;
        return;
    }
    if ((ext = auto_extend(c, in, now)) != 0) {
        out->action = TR_EXTEND;
        out->expires_at = ext;
        after.expires_at = ext;
    }
    out->idle_ends_at = idle_end;
    out->next_at = next_look(c, &after, now);
}
