/*
 * Session transitions with their side effects, shared by the REST handlers,
 * the control channel (extend/resume) and the reaper. Every core_* call
 * runs with app->lock held inside a store transaction; what must happen
 * after the commit (telling the agent, closing relayed connections) is
 * collected in a struct core_after and done by core_after_run().
 */
#ifndef AIRLOCK_CORE_H
#define AIRLOCK_CORE_H
#include <stdint.h>

#include "api.h"

struct core_after {
    char **notify_agents;   /* resend desired state to these agents ... */
    char **notify_sessions; /* ... of these sessions (both grow together) */
    size_t n_notify, cap_notify;
    char *close_session; /* close every relayed connection of it */
    char *close_user;    /* ... or only this user's (with close_session) */
    char *close_reason;  /* owned */
};

/*
 * Applies ev to s at now: state, timestamps (Active starts the clock; an
 * ended state sets ended_at and drops tickets), the audit event (actor,
 * data borrowed), webhooks into the outbox, and what to do after commit.
 */
int core_transition(struct app *app, struct sess *s, enum session_event ev, const char *actor,
                    const char *message, json_t *data, int64_t now, struct core_after *after);
/* If s is Pending, approved (or not needing it) and its agent is online: activate it. */
int core_try_activate(struct app *app, struct sess *s, int64_t now, struct core_after *after);
/* Appends an audit event and queues its webhooks. */
int core_event(struct app *app, const char *session, const char *actor, const char *type,
               json_t *data, int64_t now);
/*
 * Queues "resend session's desired state to agent" (agent and session are
 * copied; a pair already queued is not added twice). The queue grows: no
 * notification is ever dropped.
 */
void core_after_notify(struct core_after *after, const char *agent, const char *session);
/* Frees *after's strings without doing anything (the transaction was rolled back). */
void core_after_free(struct core_after *after);
/* Does the post-commit work and frees *after's strings. Call without app->lock. */
void core_after_run(struct app *app, struct core_after *after);

/*
 * The agent closes the relayed connections of an ended session (or of a
 * participant who left) itself; the relay closes what is still open once the
 * session's agent is offline, or this long after the end against an online
 * agent that does not. It is a bound, not a schedule: three times the
 * longest an agent keeps a connection open after the end (CONN_HOLD_MAX_MS,
 * 10 s, for the `airlock resume` that ended it to return its exit status).
 */
#define CORE_RELAY_CLOSE_MAX_MS 30000

/* Closes the relayed connections the agent cannot or did not (all of them when all). */
void core_deferred_run(struct app *app, int all);

/* Renew by p (used by REST and control "extend"); *why on refusal. */
int core_renew(struct app *app, struct sess *s, const struct principal *p, int64_t extend_s,
               int64_t now, struct core_after *after, const char **why);
/* Terminate by p; as_participant for `airlock resume`. */
int core_terminate(struct app *app, struct sess *s, const struct principal *p, int as_participant,
                   const char *reason, int64_t now, struct core_after *after, const char **why);

/* Activates every Pending session of agent that may start (agent came online). */
int core_agent_online(struct app *app, const char *agent, int online, int64_t now);

#endif
