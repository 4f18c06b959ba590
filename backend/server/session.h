/*
 * PURE. The debug-session state machine (DESIGN.md section 5):
 *
 *   create -> Pending --(approval required)--> PendingApproval --approve--> Pending* -> Active
 *               |                                  | reject -> Terminated      | expiresAt ->
 * Expired
 *               +--(auto-approved)--> Active*      | timeout -> Failed         | terminate ->
 * Terminated | cancel -> Terminated        agent gone -> Failed
 *
 * (*) Active only when approved and the agent is online; the clock starts then.
 */
#ifndef AIRLOCK_SESSION_H
#define AIRLOCK_SESSION_H

enum session_state {
    SESSION_PENDING,
    SESSION_PENDING_APPROVAL,
    SESSION_ACTIVE,
    SESSION_EXPIRED,
    SESSION_TERMINATED,
    SESSION_FAILED,
    SESSION__COUNT
};

enum session_event {
    SEV_NEED_APPROVAL, /* created, approval required */
    SEV_APPROVE,       /* an approver approved */
    SEV_REJECT,        /* an approver rejected */
    SEV_ACTIVATE,      /* approved (or auto) and agent online */
    SEV_EXPIRE,        /* expiresAt reached */
    SEV_TERMINATE,     /* owner/admin/approver terminate, resume, or withdraw */
    SEV_TIMEOUT,       /* approval timeout */
    SEV_AGENT_GONE,    /* agent offline longer than the grace period */
    SEV__COUNT
};

/* "Pending", "PendingApproval", ... */
const char *session_state_name(enum session_state s);
/* Parses a state name (exact case). Returns 0 or ERR_INVALID. */
int session_state_parse(const char *name, enum session_state *s);
/* 1 for Expired, Terminated, Failed. */
int session_state_ended(enum session_state s);
/*
 * The state after ev in from. Returns 0 and sets *next, or ERR_CONFLICT
 * when ev is not allowed in from (*next is left as from).
 */
int session_next(enum session_state from, enum session_event ev, enum session_state *next);
/* Audit event type for entering a state through ev ("approved", "expired", ...). */
const char *session_event_type(enum session_event ev);

#endif
