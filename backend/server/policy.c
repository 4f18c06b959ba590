/*
 * Authorisation rules as plain functions over plain structs. The order of
 * checks inside each function follows DESIGN.md 6: authorise (403) before
 * state (409), so a stranger learns nothing about a session's state.
 */
#include <stdio.h>
#include <string.h>

#include "duration.h"
#include "err.h"
#include "glob.h"
#include "policy.h"
#include "util.h"

static const char *const role_names[] = {"none", "viewer", "participant", "owner"};

const char *
policy_role_name(enum policy_role r)
{
    if ((unsigned)r > ROLE_OWNER)
        return "none";
    return role_names[r];
}

int
policy_role_parse(const char *s, enum policy_role *r)
{
    int i;

    for (i = ROLE_VIEWER; i <= ROLE_OWNER; i++) {
        if (strcmp(s, role_names[i]) == 0) {
            *r = (enum policy_role)i;
            return 0;
        }
    }
    return ERR_INVALID;
}

/* An entry (literal or glob) matches a name, case-insensitively. */
static int
entry_matches(const char *entry, const char *name)
{
    if (entry == NULL || name == NULL)
        return 0;
    if (glob_is_pattern(entry))
        return glob_match(entry, name, GLOB_ICASE);
    return str_ieq(entry, name);
}

int
policy_names(const char *entry, const struct principal *p)
{
    return entry_matches(entry, p->user) || entry_matches(entry, p->email);
}

/* Two identity domains agree; NULL (recorded before domains existed) agrees with any. */
static int
same_domain(const char *a, const char *b)
{
    return a == NULL || b == NULL || str_ieq(a, b);
}

/* The user/email pair names p in some domain (the names alone, domains ignored). */
static int
names_match(const struct principal *p, const char *user, const char *email)
{
    if (user != NULL && (str_ieq(user, p->user) || (p->email && str_ieq(user, p->email))))
        return 1;
    if (email != NULL && (str_ieq(email, p->user) || (p->email && str_ieq(email, p->email))))
        return 1;
    return 0;
}

int
policy_same_person(const struct principal *p, const char *user, const char *email,
                   const char *domain)
{
    return same_domain(domain, p->domain) && names_match(p, user, email);
}

int
policy_subjects_match(const struct subjects *s, const struct principal *p)
{
    size_t i, j;

    for (i = 0; i < s->users.n; i++)
        if (policy_names(s->users.v[i], p))
            return 1;
    for (i = 0; i < s->groups.n; i++)
        for (j = 0; j < p->n_groups; j++)
            if (entry_matches(s->groups.v[i], p->groups[j]))
                return 1;
    return 0;
}

int
policy_is_admin(const struct config *cfg, const struct principal *p)
{
    return policy_subjects_match(&cfg->admins, p);
}

int
policy_template_usable(const struct tmpl_cfg *t, const struct principal *p)
{
    return p->admin || policy_subjects_match(&t->allowed, p);
}

int
policy_template_allows_agent(const struct tmpl_cfg *t, const char *agent)
{
    size_t i;

    if (t->allowed.agents.n == 0)
        return 1;
    for (i = 0; i < t->allowed.agents.n; i++)
        if (glob_match(t->allowed.agents.v[i], agent, 0))
            return 1;
    return 0;
}

int
policy_template_approverless(const struct tmpl_cfg *t)
{
    return t->approvers.users.n == 0 && t->approvers.groups.n == 0;
}

int
policy_approval_required(const struct tmpl_cfg *t, const struct principal *p, const char *agent)
{
    size_t i;

    if (policy_template_approverless(t))
        return 0;
    if (p != NULL && policy_subjects_match(&t->auto_approve, p))
        return 0;
    for (i = 0; agent != NULL && i < t->auto_approve.agents.n; i++)
        if (glob_match(t->auto_approve.agents.v[i], agent, 0))
            return 0;
    return 1;
}

int
policy_is_approver(const struct tmpl_cfg *t, const struct principal *p)
{
    return policy_subjects_match(&t->approvers, p);
}

/* p is the session's owner: the requester's name in the requester's domain. */
static int
is_requester(const struct policy_session *s, const struct principal *p)
{
    return policy_same_person(p, s->requested_by, s->requested_by_email, s->requested_by_domain);
}

/*
 * p might be the requester under any of its names, in any domain: used to
 * refuse self-approval, where a false "same" only costs another approver.
 */
static int
may_be_requester(const struct policy_session *s, const struct principal *p)
{
    return names_match(p, s->requested_by, s->requested_by_email);
}

static const struct policy_participant *
find_participant(const struct policy_session *s, const struct principal *p)
{
    size_t i;

    for (i = 0; i < s->n_participants; i++)
        if (policy_same_person(p, s->participants[i].user, s->participants[i].email,
                               s->participants[i].domain))
            return &s->participants[i];
    return NULL;
}

/*
 * An invitation names a username of the requester's domain (the owner
 * invites people of their own directory), or a trusted email of any domain.
 */
static const struct policy_invite *
find_invite(const struct policy_session *s, const struct principal *p)
{
    int in_domain = same_domain(s->requested_by_domain, p->domain);
    size_t i;

    for (i = 0; i < s->n_invited; i++) {
        const char *who = s->invited[i].who;

        if ((in_domain && str_ieq(who, p->user)) || (p->email != NULL && str_ieq(who, p->email)))
            return &s->invited[i];
    }
    return NULL;
}

int
policy_can_see(const struct policy_session *s, const struct principal *p)
{
    if (p->admin || is_requester(s, p) || find_participant(s, p) || find_invite(s, p))
        return 1;
    if (policy_is_approver(s->tmpl, p))
        return 1;
    return s->decided_by != NULL &&
           policy_same_person(p, s->decided_by, NULL, s->decided_by_domain);
}

enum policy_role
policy_max_role(const struct policy_session *s, const struct principal *p)
{
    const struct policy_invite *inv;

    if (is_requester(s, p))
        return ROLE_OWNER;
    if ((inv = find_invite(s, p)) != NULL) {
        if (s->tmpl->read_only_participants)
            return ROLE_VIEWER;
        return inv->role;
    }
    if (p->admin || policy_is_approver(s->tmpl, p))
        return ROLE_VIEWER;
    return ROLE_NONE;
}

int
policy_check_decide(const struct policy_session *s, const struct principal *p, const char **why)
{
    if (!policy_is_approver(s->tmpl, p)) {
        *why = "you are not an approver of this session";
        return ERR_FORBIDDEN;
    }
    if (may_be_requester(s, p)) {
        *why = "you cannot approve or reject your own request";
        return ERR_FORBIDDEN;
    }
    if (s->decided_by != NULL) {
        *why = "a decision has already been recorded";
        return ERR_CONFLICT;
    }
    if (s->state != SESSION_PENDING_APPROVAL) {
        *why = "the session is not waiting for approval";
        return ERR_CONFLICT;
    }
    return 0;
}

int
policy_check_join(const struct policy_session *s, const struct principal *p, enum policy_role want,
                  enum policy_role *granted, const char **why)
{
    enum policy_role max = policy_max_role(s, p);
    size_t i, active = 0;

    *granted = ROLE_NONE;
    if (max == ROLE_NONE) {
        *why = "you are not invited to this session";
        return ERR_FORBIDDEN;
    }
    if (want == ROLE_NONE)
        want = max;
    if (want > max) {
        *why = "you cannot join with a role above the one you were given";
        return ERR_FORBIDDEN;
    }
    if (s->state != SESSION_ACTIVE) {
        *why = session_state_ended(s->state) ? "the session has ended"
                                             : "the session is not Active yet";
        return ERR_CONFLICT;
    }
    for (i = 0; i < s->n_participants; i++)
        if (s->participants[i].active &&
            !policy_same_person(p, s->participants[i].user, s->participants[i].email,
                                s->participants[i].domain))
            active++;
    if (s->tmpl->sharing_enabled == 0 && active > 0) {
        *why = "terminal sharing is disabled for this session";
        return ERR_CONFLICT;
    }
    if ((int)active >= s->tmpl->max_participants) {
        *why = "the session is full (maxParticipants reached)";
        return ERR_CONFLICT;
    }
    *granted = want;
    return 0;
}

int
policy_check_leave(const struct policy_session *s, const struct principal *p, const char **why)
{
    const struct policy_participant *pp = find_participant(s, p);

    if (pp == NULL || !pp->active) {
        *why = "you are not an active participant of this session";
        return ERR_CONFLICT;
    }
    return 0;
}

int
policy_check_renew(const struct policy_session *s, const struct principal *p, int64_t extend_s,
                   int64_t *new_expires, const char **why)
{
    const struct policy_participant *pp = find_participant(s, p);

    *new_expires = 0;
    if (!is_requester(s, p) && (pp == NULL || !pp->active || pp->role == ROLE_VIEWER)) {
        *why = "only the owner and active participants may renew";
        return ERR_FORBIDDEN;
    }
    if (s->state != SESSION_ACTIVE) {
        *why = "only an Active session can be renewed";
        return ERR_CONFLICT;
    }
    if (!s->tmpl->allow_renewal) {
        *why = "renewals are not allowed for this template";
        return ERR_FORBIDDEN;
    }
    if (s->renewal_count >= s->tmpl->max_renewals) {
        *why = "maximum renewals reached";
        return ERR_FORBIDDEN;
    }
    if (s->expires_at + extend_s > s->starts_at + s->tmpl->max_duration_s) {
        *why = "renewal would pass the template's maxDuration";
        return ERR_FORBIDDEN;
    }
    *new_expires = s->expires_at + extend_s;
    return 0;
}

int
policy_check_terminate(const struct policy_session *s, const struct principal *p,
                       int as_participant, const char **why)
{
    const struct policy_participant *pp = find_participant(s, p);
    int ok = is_requester(s, p) || p->admin || policy_is_approver(s->tmpl, p);

    if (!ok && as_participant && pp != NULL && pp->active && pp->role != ROLE_VIEWER)
        ok = 1;
    if (!ok) {
        *why = "only the owner, an approver or an admin may terminate this session";
        return ERR_FORBIDDEN;
    }
    if (session_state_ended(s->state)) {
        *why = "the session has already ended";
        return ERR_CONFLICT;
    }
    return 0;
}

int
policy_check_invite(const struct policy_session *s, const struct principal *p, const char **why)
{
    if (!is_requester(s, p)) {
        *why = "only the session's owner may invite";
        return ERR_FORBIDDEN;
    }
    if (session_state_ended(s->state)) {
        *why = "the session has ended";
        return ERR_CONFLICT;
    }
    return 0;
}

int
policy_check_manage(const struct policy_session *s, const struct principal *p,
                    const struct policy_participant *target, enum policy_role to, const char **why)
{
    if (!p->admin && !is_requester(s, p)) {
        *why = "only the session's owner or an admin may change or remove participants";
        return ERR_FORBIDDEN;
    }
    if (session_state_ended(s->state)) {
        *why = "the session has ended";
        return ERR_CONFLICT;
    }
    if (target != NULL && target->role == ROLE_OWNER) {
        *why = "the owner's role cannot be changed and the owner cannot be removed"
               " (terminate the session instead)";
        return ERR_CONFLICT;
    }
    if (to == ROLE_OWNER) {
        *why = "field 'role' must be 'participant' or 'viewer'";
        return ERR_INVALID;
    }
    if (to == ROLE_PARTICIPANT && s->tmpl->read_only_participants) {
        *why = "the template makes every participant a viewer (readOnlyParticipants)";
        return ERR_FORBIDDEN;
    }
    return 0;
}

int
policy_check_terminal(const struct policy_session *s, const struct principal *p, int want,
                      int *read_only, const char **why)
{
    const struct policy_participant *pp = find_participant(s, p);
    int may_type = s->tmpl->op_shell && pp != NULL && pp->active && pp->role != ROLE_VIEWER;

    *read_only = 1;
    if (!s->tmpl->sharing_browser || !s->tmpl->sharing_enabled) {
        *why = "the browser terminal is turned off for this session's template";
        return ERR_FORBIDDEN;
    }
    if (want == POLICY_TERM_RW && !may_type) {
        *why = "only active owners and participants may type, and only when the template allows "
               "a shell";
        return ERR_FORBIDDEN;
    }
    if (s->state != SESSION_ACTIVE) {
        *why = "the session is not Active";
        return ERR_CONFLICT;
    }
    *read_only = want == POLICY_TERM_RO || !may_type;
    return 0;
}

int
policy_check_duration(const struct tmpl_cfg *t, const char *field, const char *text, int64_t *secs,
                      char *why, size_t why_len)
{
    char max[32];

    if (text == NULL) {
        *secs = t->default_duration_s;
        return 0;
    }
    if (duration_parse(text, secs) != 0) {
        snprintf(why, why_len,
                 "field '%s': '%s' is not a duration (use forms like 90s, 30m, 1h30m, 2d)", field,
                 text);
        return ERR_INVALID;
    }
    if (*secs > t->max_duration_s) {
        duration_format(t->max_duration_s, max, sizeof(max));
        snprintf(why, why_len, "field '%s' is above the template's maxDuration (%s)", field, max);
        return ERR_INVALID;
    }
    if (t->min_duration_s > 0 && *secs < t->min_duration_s) {
        snprintf(why, why_len, "field '%s' is below the template's minDuration", field);
        return ERR_INVALID;
    }
    return 0;
}
