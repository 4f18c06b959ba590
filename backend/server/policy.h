/*
 * PURE. Who may do what to a debug session (DESIGN.md 5-6). Inputs in,
 * decision out: no I/O, no clock (now is passed in). Every check returns 0
 * when allowed, ERR_FORBIDDEN when the caller may not, ERR_CONFLICT when
 * the session's state does not allow it, with a static reason in *why.
 *
 * Identity (DESIGN.md 5): a person is their username within their identity
 * domain (an issuer, or issuers the config maps together with
 * identityDomain), matched case-insensitively. An email identifies them only
 * when auth kept it (valid, and verified or from a trustEmail issuer): the
 * principal's email is NULL otherwise. A NULL domain (sessions and
 * participants recorded before domains were stored, or a principal built
 * without one) matches any domain. Self-approval is refused on any match,
 * whatever the domain.
 */
#ifndef AIRLOCK_POLICY_H
#define AIRLOCK_POLICY_H
#include <stddef.h>
#include <stdint.h>

#include "config.h"
#include "session.h"

/* The caller. */
struct principal {
    const char *user;
    const char *email;  /* trusted email (see above), or NULL */
    const char *domain; /* identity domain, or NULL (legacy: any) */
    char *const *groups;
    size_t n_groups;
    int admin; /* set by the caller from policy_is_admin() */
};

enum policy_role { ROLE_NONE, ROLE_VIEWER, ROLE_PARTICIPANT, ROLE_OWNER };

struct policy_participant {
    const char *user;
    const char *email;
    enum policy_role role;
    int active;         /* joined and not left */
    const char *domain; /* NULL: recorded before domains (any) */
};

struct policy_invite {
    const char *who;       /* username or email */
    enum policy_role role; /* ROLE_PARTICIPANT or ROLE_VIEWER */
};

/* What policy needs to know of a session. All borrowed. */
struct policy_session {
    enum session_state state;
    const struct tmpl_cfg *tmpl;
    const char *requested_by;
    const char *requested_by_email;
    const char *requested_by_domain; /* NULL: recorded before domains (any) */
    const struct policy_invite *invited;
    size_t n_invited;
    const struct policy_participant *participants;
    size_t n_participants;
    const char *decided_by;        /* NULL until approved or rejected */
    const char *decided_by_domain; /* NULL: decided before domains were stored (any) */
    int renewal_count;
    int64_t starts_at, expires_at;
};

const char *policy_role_name(enum policy_role r);
/* Parses "owner", "participant", "viewer". 0 or ERR_INVALID. */
int policy_role_parse(const char *s, enum policy_role *r);

/* 1 if p is one of s's users (user or email) or in one of s's groups (globs, any case). */
int policy_subjects_match(const struct subjects *s, const struct principal *p);
int policy_is_admin(const struct config *cfg, const struct principal *p);
/* 1 if entry (a username or an email) names p. */
int policy_names(const char *entry, const struct principal *p);
/*
 * 1 if the user/email pair of domain (NULL: any) names the same person as p:
 * the domains agree and the username or the email matches p's.
 */
int policy_same_person(const struct principal *p, const char *user, const char *email,
                       const char *domain);

/* 1 if p may request sessions from t (admins always may). */
int policy_template_usable(const struct tmpl_cfg *t, const struct principal *p);
/* 1 if a session from t may target agent (empty allowed.agents: any). */
int policy_template_allows_agent(const struct tmpl_cfg *t, const char *agent);
/* 1 if t has no approvers at all (auto-approve, nobody can approve). */
int policy_template_approverless(const struct tmpl_cfg *t);
/* 1 if a request by p (NULL: an agent's own request) for agent needs approval. */
int policy_approval_required(const struct tmpl_cfg *t, const struct principal *p,
                             const char *agent);
/* 1 if p is an approver of t. */
int policy_is_approver(const struct tmpl_cfg *t, const struct principal *p);

/* Visibility: requester, participants, invitees, approvers, deciders, admins. */
int policy_can_see(const struct policy_session *s, const struct principal *p);
/* The highest role p may join with (ROLE_NONE: may not join). */
enum policy_role policy_max_role(const struct policy_session *s, const struct principal *p);

int policy_check_decide(const struct policy_session *s, const struct principal *p,
                        const char **why);
/*
 * Join with want (ROLE_NONE: the highest allowed). *granted gets the role.
 * Refuses when the session is full (ERR_CONFLICT) counting active
 * participants other than p.
 */
int policy_check_join(const struct policy_session *s, const struct principal *p,
                      enum policy_role want, enum policy_role *granted, const char **why);
int policy_check_leave(const struct policy_session *s, const struct principal *p, const char **why);
/* On success *new_expires = expires_at + extend_s. */
int policy_check_renew(const struct policy_session *s, const struct principal *p, int64_t extend_s,
                       int64_t *new_expires, const char **why);
/* as_participant: `airlock resume` — active non-viewer participants may end it too. */
int policy_check_terminate(const struct policy_session *s, const struct principal *p,
                           int as_participant, const char **why);
int policy_check_invite(const struct policy_session *s, const struct principal *p,
                        const char **why);
/*
 * Changing a participant's role or removing them: the owner or an admin,
 * while the session has not ended. target is the participant (NULL: no such
 * active participant, or an invitation only); to is the new role
 * (ROLE_NONE: removal). The owner's own row cannot be changed or removed,
 * and nobody is raised above viewer where the template makes everyone one.
 */
int policy_check_manage(const struct policy_session *s, const struct principal *p,
                        const struct policy_participant *target, enum policy_role to,
                        const char **why);
/*
 * The browser terminal, for p who may see s (the caller checked). Active
 * owners and participants may type (rw) when the template allows a shell;
 * everyone else who sees the session watches (ro). want: POLICY_TERM_ANY
 * (the most allowed), POLICY_TERM_RW or POLICY_TERM_RO. On 0, *read_only
 * says which. ERR_FORBIDDEN when the template turns the browser terminal or
 * sharing off, or rw is asked without the right; ERR_CONFLICT unless Active.
 */
#define POLICY_TERM_ANY 0
#define POLICY_TERM_RW 1
#define POLICY_TERM_RO 2
int policy_check_terminal(const struct policy_session *s, const struct principal *p, int want,
                          int *read_only, const char **why);

/*
 * The duration rule of a request (requestedDuration) and of every renewal
 * (REST extendBy, the control channel's extend): text is parsed and must lie
 * within the template's [minDuration, maxDuration]; NULL text means its
 * defaultDuration. field names the field in the message. On success *secs
 * gets the seconds; else ERR_INVALID with the message written into why
 * (POLICY_WHY_MAX bytes hold it whole for a text of up to 4 KiB).
 */
#define POLICY_WHY_MAX 4352
int policy_check_duration(const struct tmpl_cfg *t, const char *field, const char *text,
                          int64_t *secs, char *why, size_t why_len);

#endif
