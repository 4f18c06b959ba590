/*
 * Session transitions and their side effects. The pure state machine
 * (session.c) says whether a transition is allowed; this file applies it:
 * timestamps, the audit event, webhooks into the outbox (same transaction),
 * and the list of things to do once the transaction has committed.
 */
#include <stdlib.h>
#include <string.h>

#include "control.h"
#include "core.h"
#include "core_rules.h"
#include "duration.h"
#include "err.h"
#include "log.h"
#include "notify_text.h"
#include "relay.h"
#include "util.h"
#include <pthread.h>
#include "xmalloc.h"

void
core_after_notify(struct core_after *after, const char *agent, const char *session)
{
    size_t i;

    for (i = 0; i < after->n_notify; i++)
        if (strcmp(after->notify_agents[i], agent) == 0 &&
            strcmp(after->notify_sessions[i], session) == 0)
            return;
    if (after->n_notify == after->cap_notify) {
        after->cap_notify = after->cap_notify ? after->cap_notify * 2 : 4;
        after->notify_agents =
            xrealloc(after->notify_agents, after->cap_notify * sizeof(*after->notify_agents));
        after->notify_sessions =
            xrealloc(after->notify_sessions, after->cap_notify * sizeof(*after->notify_sessions));
    }
    after->notify_agents[after->n_notify] = xstrdup(agent);
    after->notify_sessions[after->n_notify++] = xstrdup(session);
}

void
core_after_free(struct core_after *after)
{
    size_t i;

    for (i = 0; i < after->n_notify; i++) {
        free(after->notify_agents[i]);
        free(after->notify_sessions[i]);
    }
    free(after->notify_agents);
    free(after->notify_sessions);
    free(after->close_session);
    free(after->close_user);
    free(after->close_reason);
    memset(after, 0, sizeof(*after));
}

/*
 * Relayed connections are closed by the agent: it tells each SSH client why
 * ("airlock: session ended"), and the connection whose `airlock resume` ended
 * the session closes only once that command has exited and sent its exit
 * status (sshd_conn.c). The relay closes what is still open as a backstop,
 * only where the agent cannot: once the session's agent is offline (it may
 * never learn of the end; an agent that stops closes its SSH connections
 * before it leaves), or CORE_RELAY_CLOSE_MAX_MS after the end against an
 * online agent that does not close them. A cut while the agent is online and
 * still closing would drop what it sends last (that exit status): it was a
 * 2 s timer, which a loaded machine lost. core_agent_online runs the queue
 * when an agent goes offline, and the reaper every tick.
 */
struct deferred_close {
    char *session, *user, *reason;
    char *agent;    /* the session's agent; NULL when unknown (then it counts as gone) */
    int64_t max_ms; /* closed then even if the agent is online */
    struct deferred_close *next;
};

static pthread_mutex_t deferred_mu = PTHREAD_MUTEX_INITIALIZER;
static struct deferred_close *deferred;

/* The agent of session (new string), or NULL. Takes app->lock. */
static char *
session_agent(struct app *app, const char *session)
{
    struct sess *s = NULL;
    char *agent = NULL;

    pthread_mutex_lock(&app->lock);
    if (store_sess_get(app->store, session, &s) == 0 && s->agent != NULL)
        agent = xstrdup(s->agent);
    pthread_mutex_unlock(&app->lock);
    sess_free(s);
    return agent;
}

static void
defer_close(struct app *app, const struct core_after *after)
{
    struct deferred_close *d = xcalloc(1, sizeof(*d));

    d->session = xstrdup(after->close_session);
    d->user = after->close_user ? xstrdup(after->close_user) : NULL;
    d->reason = xstrdup(after->close_reason ? after->close_reason : "session ended");
    d->agent = session_agent(app, d->session);
    d->max_ms = time_mono_ms() + CORE_RELAY_CLOSE_MAX_MS;
    pthread_mutex_lock(&deferred_mu);
    d->next = deferred;
    deferred = d;
    pthread_mutex_unlock(&deferred_mu);
}

void
core_deferred_run(struct app *app, int all)
{
    struct deferred_close *due = NULL, **pp, *d;
    int64_t now = time_mono_ms();

    pthread_mutex_lock(&deferred_mu);
    for (pp = &deferred; (d = *pp) != NULL;) {
        /* control_is_connected takes only the control registry's lock, a leaf. */
        if (all || app == NULL || d->max_ms <= now || d->agent == NULL ||
            !control_is_connected(app->control, d->agent)) {
            *pp = d->next;
            d->next = due;
            due = d;
        } else {
            pp = &d->next;
        }
    }
    pthread_mutex_unlock(&deferred_mu);
    while ((d = due) != NULL) {
        due = d->next;
        if (app != NULL)
            relay_close(app->relay, d->session, d->user, d->reason);
        free(d->session);
        free(d->user);
        free(d->reason);
        free(d->agent);
        free(d);
    }
}

void
core_after_run(struct app *app, struct core_after *after)
{
    size_t i;

    if (after->close_session != NULL) {
        relay_close_terminals(app->relay, after->close_session, after->close_user,
                              after->close_reason ? after->close_reason : "session ended");
        defer_close(app, after);
    }
    for (i = 0; i < after->n_notify; i++)
        control_notify(app->control, after->notify_agents[i], after->notify_sessions[i]);
    core_after_free(after);
}

static int
webhook_wants(const struct webhook_cfg *w, const char *type)
{
    size_t i;

    if (w->events.n == 0)
        return 1;
    for (i = 0; i < w->events.n; i++)
        if (strcmp(w->events.v[i], type) == 0)
            return 1;
    return 0;
}

/* The webhook body's `text`, from the session as this transaction sees it. */
static char *
event_text(struct app *app, const struct config *cfg, const char *session, const char *actor,
           const char *type, const json_t *data, int64_t now)
{
    struct notify_event e = {.type = type,
                             .session = session,
                             .actor = actor,
                             .data = data,
                             .now = now,
                             .public_url = cfg->public_url};
    struct sess *s = NULL;
    char *text;

    if (session != NULL && store_sess_get(app->store, session, &s) == 0) {
        e.template_name = s->template_name;
        e.agent = s->agent;
        e.requested_by = s->requested_by;
        e.reason = s->reason;
        e.approvers = s->tmpl ? &s->tmpl->approvers : NULL;
        e.active = s->state == SESSION_ACTIVE;
        e.expires_at = s->expires_at;
    }
    text = notify_text(&e);
    sess_free(s);
    return text;
}

int
core_event(struct app *app, const char *session, const char *actor, const char *type, json_t *data,
           int64_t now)
{
    const struct config *cfg = app->cfg; /* one generation for the loop (reload.c) */
    int64_t id = 0;
    size_t i;
    int r;

    char *text = NULL;

    if ((r = store_event_add(app->store, session, now, actor, type, data, &id)) != 0)
        return r;
    for (i = 0; i < cfg->n_webhooks; i++) {
        const struct webhook_cfg *w = &cfg->webhooks[i];
        char ts[21], *body;
        json_t *j;

        if (!webhook_wants(w, type))
            continue;
        if (text == NULL)
            text = event_text(app, cfg, session, actor, type, data, now);
        time_fmt(now, ts);
        j = json_pack("{s:s, s:s?, s:s, s:s, s:O?, s:s}", "type", type, "session", session, "actor",
                      actor, "at", ts, "data", data, "text", text);
        body = json_dumps(j, JSON_COMPACT);
        json_decref(j);
        r = store_outbox_add(app->store, id, w->url, body, now);
        free(body);
        if (r != 0)
            break;
    }
    free(text);
    return r;
}

/*
 * The owner rule: from activation the requester is listed as a participant
 * with role owner and joinedAt = startsAt, without an SSH key until they
 * join (the agent then knows the owner's role before any key arrives). The
 * row goes to the store and into s, so a reply rendered from s shows it.
 */
static int
owner_add(struct app *app, struct sess *s)
{
    struct sess_participant p, *np;
    size_t i;
    int r;

    memset(&p, 0, sizeof(p));
    p.user = s->requested_by;
    p.email = s->requested_by_email;
    p.display_name = s->requested_by_name;
    p.domain = s->requested_by_domain;
    p.role = ROLE_OWNER;
    p.joined_at = s->starts_at;
    if ((r = store_participant_add(app->store, s->name, &p)) != 0)
        return r;
    for (i = 0; i < s->n_parts; i++)
        if (strcmp(s->parts[i].user, p.user) == 0)
            return 0;
    s->parts = xrealloc(s->parts, (s->n_parts + 1) * sizeof(*s->parts));
    np = &s->parts[s->n_parts++];
    memset(np, 0, sizeof(*np));
    np->user = xstrdup(p.user);
    np->email = p.email ? xstrdup(p.email) : NULL;
    np->display_name = p.display_name ? xstrdup(p.display_name) : NULL;
    np->domain = p.domain ? xstrdup(p.domain) : NULL;
    np->role = ROLE_OWNER;
    np->joined_at = p.joined_at;
    return 0;
}

int
core_transition(struct app *app, struct sess *s, enum session_event ev, const char *actor,
                const char *message, json_t *data, int64_t now, struct core_after *after)
{
    enum session_state next;
    int r;

    if ((r = session_next(s->state, ev, &next)) != 0)
        return r;
    s->state = next;
    free(s->message);
    s->message = message ? xstrdup(message) : NULL;
    if (next == SESSION_ACTIVE) {
        struct timerules_cfg rc;
        struct timerules_in in;

        core_rules_of(s, &rc, &in);
        s->starts_at = s->activated_at = now;
        s->expires_at = timerules_activation_expiry(&rc, now, s->requested_duration_s);
    }
    core_rules_schedule(s, now); /* 0 once ended */
    if (session_state_ended(next)) {
        s->ended_at = now;
        if ((r = store_tickets_delete(app->store, s->name, NULL)) != 0)
            return r;
        free(after->close_session);
        free(after->close_user);
        free(after->close_reason);
        after->close_session = xstrdup(s->name);
        after->close_user = NULL;
        after->close_reason = xstrdup(message ? message : "session ended");
    }
    if ((r = store_sess_update(app->store, s)) != 0)
        return r;
    if (next == SESSION_ACTIVE && (r = owner_add(app, s)) != 0)
        return r;
    if ((r = core_event(app, s->name, actor, session_event_type(ev), data, now)) != 0)
        return r;
    if (session_state_ended(next) && (r = core_rules_presence_end(app, s, now)) != 0)
        return r;
    core_after_notify(after, s->agent, s->name);
    return 0;
}

int
core_try_activate(struct app *app, struct sess *s, int64_t now, struct core_after *after)
{
    struct agent_rec *a = NULL;
    int online, r;

    if (s->state != SESSION_PENDING)
        return 0;
    if (s->approval_required && (s->decision == NULL || strcmp(s->decision, "approve") != 0))
        return 0;
    r = store_agent_get(app->store, s->agent, &a);
    online = r == 0 && a->online;
    agent_rec_free(a);
    if (r != 0 && r != ERR_NOT_FOUND)
        return r;
    if (!online) {
        if (s->message == NULL || strcmp(s->message, "waiting for agent") != 0) {
            free(s->message);
            s->message = xstrdup("waiting for agent");
            return store_sess_update(app->store, s);
        }
        return 0;
    }
    return core_transition(app, s, SEV_ACTIVATE, "airlock", NULL, NULL, now, after);
}

int
core_renew(struct app *app, struct sess *s, const struct principal *p, int64_t extend_s,
           int64_t now, struct core_after *after, const char **why)
{
    struct sess_pview pv;
    int64_t new_exp, old_exp = s->expires_at;
    char dur[32];
    json_t *data;
    int r;

    sess_pview_init(&pv, s);
    r = policy_check_renew(&pv.v, p, extend_s, &new_exp, why);
    sess_pview_cleanup(&pv);
    if (r != 0)
        return r;
    s->expires_at = new_exp;
    s->renewal_count++;
    core_rules_schedule(s, now);
    if ((r = store_sess_update(app->store, s)) != 0 ||
        (r = store_renewal_insert(app->store, s->name, p->user, now, extend_s, old_exp, new_exp)) !=
            0)
        return r;
    duration_format(extend_s, dur, sizeof(dur));
    data = json_pack("{s:s, s:b, s:s, s:i}", "by", p->user, "auto", 0, "extendBy", dur,
                     "renewalCount", s->renewal_count);
    r = core_event(app, s->name, p->user, "renewed", data, now);
    json_decref(data);
    core_after_notify(after, s->agent, s->name);
    return r;
}

int
core_terminate(struct app *app, struct sess *s, const struct principal *p, int as_participant,
               const char *reason, int64_t now, struct core_after *after, const char **why)
{
    struct sess_pview pv;
    json_t *data;
    char *msg;
    int r;

    sess_pview_init(&pv, s);
    r = policy_check_terminate(&pv.v, p, as_participant, why);
    sess_pview_cleanup(&pv);
    if (r != 0)
        return r;
    msg = xasprintf("%s by %s%s%s", s->state == SESSION_ACTIVE ? "terminated" : "withdrawn",
                    p->user, reason ? ": " : "", reason ? reason : "");
    data = json_pack("{s:s?}", "reason", reason);
    r = core_transition(app, s, SEV_TERMINATE, p->user, msg, data, now, after);
    json_decref(data);
    free(msg);
    return r;
}

int
core_agent_online(struct app *app, const char *agent, int online, int64_t now)
{
    struct core_after after = {0};
    struct sess **list = NULL;
    size_t n = 0, i;
    int r;

    pthread_mutex_lock(&app->lock);
    if ((r = store_begin(app->store)) != 0)
        goto out;
    if ((r = store_agent_set_online(app->store, agent, online, now)) != 0)
        goto fail;
    if ((r = store_sess_by_agent(app->store, agent, 0, &list, &n)) != 0)
        goto fail;
    for (i = 0; i < n; i++) {
        if ((r = core_event(app, list[i]->name, agent, online ? "agent_online" : "agent_offline",
                            NULL, now)) != 0)
            goto fail;
        if (online && (r = core_try_activate(app, list[i], now, &after)) != 0)
            goto fail;
    }
    r = store_commit(app->store);
    goto out;
fail:
    store_rollback(app->store);
out:
    pthread_mutex_unlock(&app->lock);
    sess_list_free(list, n);
    if (r == 0)
        core_after_run(app, &after);
    else
        log_warn_r(r, "agent %s %s", agent, online ? "online" : "offline");
    if (!online)
        core_deferred_run(app, 0); /* the relay's backstop: the agent is gone */
    core_after_free(&after);
    free(after.close_user);
    return r;
}
