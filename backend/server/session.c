/*
 * The debug-session state machine as a table. Rows are states, columns
 * events; -1 marks a transition that is not allowed (409 at the API).
 *
 *   Pending          NEED_APPROVAL -> PendingApproval, ACTIVATE -> Active,
 *                    TERMINATE -> Terminated (withdrawn)
 *   PendingApproval  APPROVE -> Pending, REJECT -> Terminated,
 *                    TIMEOUT -> Failed, TERMINATE -> Terminated
 *   Active           EXPIRE -> Expired, TERMINATE -> Terminated,
 *                    AGENT_GONE -> Failed
 *   Expired, Terminated, Failed: final.
 */
#include <string.h>

#include "err.h"
#include "session.h"

static const char *const state_names[SESSION__COUNT] = {
    [SESSION_PENDING] = "Pending",       [SESSION_PENDING_APPROVAL] = "PendingApproval",
    [SESSION_ACTIVE] = "Active",         [SESSION_EXPIRED] = "Expired",
    [SESSION_TERMINATED] = "Terminated", [SESSION_FAILED] = "Failed",
};

static const signed char next_state[SESSION__COUNT][SEV__COUNT] = {
    [SESSION_PENDING] = {[SEV_NEED_APPROVAL] = SESSION_PENDING_APPROVAL,
                         [SEV_APPROVE] = -1,
                         [SEV_REJECT] = -1,
                         [SEV_ACTIVATE] = SESSION_ACTIVE,
                         [SEV_EXPIRE] = -1,
                         [SEV_TERMINATE] = SESSION_TERMINATED,
                         [SEV_TIMEOUT] = -1,
                         [SEV_AGENT_GONE] = -1},
    [SESSION_PENDING_APPROVAL] = {[SEV_NEED_APPROVAL] = -1,
                                  [SEV_APPROVE] = SESSION_PENDING,
                                  [SEV_REJECT] = SESSION_TERMINATED,
                                  [SEV_ACTIVATE] = -1,
                                  [SEV_EXPIRE] = -1,
                                  [SEV_TERMINATE] = SESSION_TERMINATED,
                                  [SEV_TIMEOUT] = SESSION_FAILED,
                                  [SEV_AGENT_GONE] = -1},
    [SESSION_ACTIVE] = {[SEV_NEED_APPROVAL] = -1,
                        [SEV_APPROVE] = -1,
                        [SEV_REJECT] = -1,
                        [SEV_ACTIVATE] = -1,
                        [SEV_EXPIRE] = SESSION_EXPIRED,
                        [SEV_TERMINATE] = SESSION_TERMINATED,
                        [SEV_TIMEOUT] = -1,
                        [SEV_AGENT_GONE] = SESSION_FAILED},
    [SESSION_EXPIRED] = {-1, -1, -1, -1, -1, -1, -1, -1},
    [SESSION_TERMINATED] = {-1, -1, -1, -1, -1, -1, -1, -1},
    [SESSION_FAILED] = {-1, -1, -1, -1, -1, -1, -1, -1},
};

static const char *const event_types[SEV__COUNT] = {
    [SEV_NEED_APPROVAL] = "approval_required",
    [SEV_APPROVE] = "approved",
    [SEV_REJECT] = "rejected",
    [SEV_ACTIVATE] = "activated",
    [SEV_EXPIRE] = "expired",
    [SEV_TERMINATE] = "terminated",
    [SEV_TIMEOUT] = "failed",
    [SEV_AGENT_GONE] = "failed",
};

const char *
session_state_name(enum session_state s)
{
    if ((unsigned)s >= SESSION__COUNT)
        return "Unknown";
    return state_names[s];
}

int
session_state_parse(const char *name, enum session_state *s)
{
    int i;

    for (i = 0; i < SESSION__COUNT; i++) {
        if (strcmp(name, state_names[i]) == 0) {
            *s = (enum session_state)i;
            return 0;
        }
    }
    return ERR_INVALID;
}

int
session_state_ended(enum session_state s)
{
    return s == SESSION_EXPIRED || s == SESSION_TERMINATED || s == SESSION_FAILED;
}

int
session_next(enum session_state from, enum session_event ev, enum session_state *next)
{
    *next = from;
    if ((unsigned)from >= SESSION__COUNT || (unsigned)ev >= SEV__COUNT)
        return ERR_CONFLICT;
    if (next_state[from][ev] < 0)
        return ERR_CONFLICT;
    *next = (enum session_state)next_state[from][ev];
    return 0;
}

const char *
session_event_type(enum session_event ev)
{
    if ((unsigned)ev >= SEV__COUNT)
        return "unknown";
    return event_types[ev];
}
