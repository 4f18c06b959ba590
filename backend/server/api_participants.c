/*
 * The owner manages people live: POST /debug-sessions/{name}/participants/{user}
 * {role} changes a participant's (or an invitee's) role, DELETE removes them.
 * Owner or admin only (policy_check_manage). Each runs through the sessions'
 * one transaction (api_sessions_mutate), records `role_changed` or `removed`,
 * and resends the desired state: the agent closes a removed participant's
 * connections and a demoted participant's read-write ones (sshd_session.c);
 * a promoted viewer gets write access on their next connection.
 */
#include <stdlib.h>
#include <string.h>

#include "api.h"
#include "core.h"
#include "err.h"
#include "util.h"
#include "xmalloc.h"

#define MSG_REMOVED_BY "you were removed from the session by %s"

/* The active participant the path names (user or email, any case), or NULL. */
static struct sess_participant *
target_part(struct sess *s, const char *who)
{
    size_t i;

    for (i = 0; i < s->n_parts; i++) {
        struct sess_participant *p = &s->parts[i];

        if (p->left_at == 0 && (str_ieq(p->user, who) || (p->email && str_ieq(p->email, who))))
            return p;
    }
    return NULL;
}

/* The invitation the path (or the participant it names) matches, or NULL. */
static struct sess_invite *
target_invite(struct sess *s, const char *who, const struct sess_participant *p)
{
    size_t i;

    for (i = 0; i < s->n_invited; i++) {
        const char *w = s->invited[i].who;

        if (str_ieq(w, who) || (p && (str_ieq(w, p->user) || (p->email && str_ieq(w, p->email)))))
            return &s->invited[i];
    }
    return NULL;
}

/*
 * The policy check for who with the new role to (ROLE_NONE: removal). The
 * requester counts as the owner even before activation lists them.
 */
static int
check(struct api_req *req, struct api_reply *rep, struct sess *s, const char *who,
      const struct sess_participant *part, enum policy_role to)
{
    struct policy_participant target = {0}, *tp = NULL;
    struct sess_pview pv;
    const char *why = NULL;
    int r;

    if (part != NULL || str_ieq(who, s->requested_by) ||
        (s->requested_by_email && str_ieq(who, s->requested_by_email))) {
        target.user = part ? part->user : s->requested_by;
        target.role = part ? part->role : ROLE_OWNER;
        if (str_ieq(target.user, s->requested_by))
            target.role = ROLE_OWNER;
        target.active = 1;
        tp = &target;
    }
    sess_pview_init(&pv, s);
    r = policy_check_manage(&pv.v, &req->p, tp, to, &why);
    sess_pview_cleanup(&pv);
    return r ? api_fail(rep, r, "%s", why) : 0;
}

static int
do_role(struct api_req *req, struct api_reply *rep, struct sess *s, struct core_after *after)
{
    const char *who = req->params[1];
    struct sess_participant *part = target_part(s, who);
    struct sess_invite *inv = target_invite(s, who, part);
    enum policy_role to, from;
    json_t *data;
    int r;

    if (policy_role_parse(api_str(req, "role"), &to) != 0 || to == ROLE_OWNER)
        return api_fail(rep, ERR_INVALID, "field 'role' must be 'participant' or 'viewer'");
    if ((r = check(req, rep, s, who, part, to)) != 0)
        return r;
    if (part == NULL && inv == NULL)
        return api_fail(rep, ERR_NOT_FOUND, "'%s' is neither a participant nor invited", who);
    from = part ? part->role : inv->role;
    if (inv != NULL)
        inv->role = to; /* joining again keeps the new role */
    if (part != NULL && (r = store_participant_role(req->app->store, s->name, part->user, to)) != 0)
        return r;
    if (inv != NULL && (r = store_sess_update(req->app->store, s)) != 0)
        return r;
    if (from == to)
        return 0;
    data = json_pack("{s:s, s:s, s:s}", "user", part ? part->user : inv->who, "from",
                     policy_role_name(from), "to", policy_role_name(to));
    r = core_event(req->app, s->name, req->p.user, "role_changed", data, req->now);
    json_decref(data);
    if (r == 0)
        core_after_notify(after, s->agent, s->name);
    return r;
}

int
api_participants_role(struct api_req *req, struct api_reply *rep)
{
    static const struct field fields[] = {{"role", F_STRING, 1, 32}};
    int r = api_body_check(req, rep, fields, 1);

    return r ? r : api_sessions_mutate(req, rep, do_role);
}

/* Drops every invitation that names who or part. */
static void
uninvite(struct sess *s, const char *who, const struct sess_participant *part)
{
    struct sess_invite *inv;

    while ((inv = target_invite(s, who, part)) != NULL) {
        free(inv->who);
        *inv = s->invited[--s->n_invited];
    }
}

static int
do_remove(struct api_req *req, struct api_reply *rep, struct sess *s, struct core_after *after)
{
    const char *who = req->params[1];
    struct sess_participant *part = target_part(s, who);
    size_t n_inv = s->n_invited;
    json_t *data;
    int r;

    if ((r = check(req, rep, s, who, part, ROLE_NONE)) != 0)
        return r;
    uninvite(s, who, part);
    if (part == NULL && s->n_invited == n_inv)
        return api_fail(rep, ERR_NOT_FOUND, "'%s' is neither a participant nor invited", who);
    if (s->n_invited != n_inv && (r = store_sess_update(req->app->store, s)) != 0)
        return r;
    if (part != NULL) {
        if ((r = store_participant_leave(req->app->store, s->name, part->user, req->now)) != 0 ||
            (r = store_tickets_delete(req->app->store, s->name, part->user)) != 0)
            return r;
        free(after->close_session);
        free(after->close_user);
        free(after->close_reason);
        after->close_session = xstrdup(s->name);
        after->close_user = xstrdup(part->user);
        after->close_reason = xasprintf(MSG_REMOVED_BY, req->p.user);
    }
    data = json_pack("{s:s, s:s?}", "user", part ? part->user : who, "role",
                     part ? policy_role_name(part->role) : NULL);
    r = core_event(req->app, s->name, req->p.user, "removed", data, req->now);
    json_decref(data);
    if (r == 0)
        core_after_notify(after, s->agent, s->name);
    return r;
}

int
api_participants_remove(struct api_req *req, struct api_reply *rep)
{
    int r = api_body_check(req, rep, NULL, 0);

    return r ? r : api_sessions_mutate(req, rep, do_remove);
}
