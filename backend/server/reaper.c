#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core.h"
#include "core_rules.h"
#include "err.h"
#include "log.h"
#include "reaper.h"
#include "recording.h"
#include "xmalloc.h"

struct reaper {
    struct app *app;
    pthread_t th;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int stop;
};

/*
 * Applies ev to each named session that is still due, with {reason} as the
 * event's data; SEV__COUNT: the session's time rules (core_rules.c) instead.
 */
static void
apply(struct app *app, char **names, size_t n, enum session_event ev, const char *message,
      const char *reason, int64_t now)
{
    size_t i;

    for (i = 0; i < n; i++) {
        struct core_after after = {0};
        struct sess *s = NULL;
        int r;

        pthread_mutex_lock(&app->lock);
        if ((r = store_begin(app->store)) == 0) {
            if ((r = store_sess_get(app->store, names[i], &s)) == 0 && ev == SEV__COUNT) {
                r = core_rules_apply(app, s, now, &after);
            } else if (r == 0) {
                json_t *data = json_pack("{s:s}", "reason", reason);

                r = core_transition(app, s, ev, "airlock", message, data, now, &after);
                json_decref(data);
            }
            if (r == 0)
                r = store_commit(app->store);
            else
                store_rollback(app->store);
        }
        pthread_mutex_unlock(&app->lock);
        if (r == 0) {
            if (ev != SEV__COUNT)
                log_info("session %s: %s", names[i], session_event_type(ev));
            else if (session_state_ended(s->state))
                log_info("session %s: %s (%s)", names[i], session_state_name(s->state),
                         s->message ? s->message : "");
            core_after_run(app, &after);
        } else if (r != ERR_CONFLICT) {
            log_warn_r(r, "session %s", names[i]);
        }
        core_after_free(&after);
        sess_free(s);
        free(names[i]);
    }
    free(names);
}

static void
due(struct app *app, const char *kind, int64_t now, int64_t arg, enum session_event ev,
    const char *message, const char *reason)
{
    char **names = NULL;
    size_t n = 0;
    int r;

    pthread_mutex_lock(&app->lock);
    r = store_sess_names_due(app->store, kind, now, arg, &names, &n);
    pthread_mutex_unlock(&app->lock);
    if (r != 0) {
        log_warn_r(r, "reaper: %s", kind);
        return;
    }
    apply(app, names, n, ev, message, reason, now);
}

/* The `expiring` event, with the seconds left (data.timeLeft) for webhooks. */
static int
expiring_event(struct app *app, const char *name, int64_t now)
{
    struct sess *s = NULL;
    json_t *data = NULL;
    int r;

    if (store_sess_get(app->store, name, &s) == 0 && s->expires_at > now)
        data = json_pack("{s:I}", "timeLeft", (json_int_t)(s->expires_at - now));
    sess_free(s);
    r = core_event(app, name, "airlock", "expiring", data, now);
    json_decref(data);
    return r;
}

static void
expiring(struct app *app, int64_t now)
{
    char **names = NULL;
    size_t n = 0, i;

    pthread_mutex_lock(&app->lock);
    if (store_sess_names_due(app->store, "expiring", now, REAPER_EXPIRING_S, &names, &n) == 0) {
        for (i = 0; i < n; i++) {
            if (store_begin(app->store) == 0) {
                if (expiring_event(app, names[i], now) == 0)
                    (void)store_commit(app->store);
                else
                    store_rollback(app->store);
            }
        }
    }
    pthread_mutex_unlock(&app->lock);
    for (i = 0; i < n; i++)
        free(names[i]);
    free(names);
}

void
reaper_pass(struct app *app, int64_t now)
{
    int n_deleted = 0;

    /* the time rules first: an auto-extension due now must win over the expiry */
    due(app, "rules", now, 0, SEV__COUNT, NULL, NULL);
    due(app, "expire", now, 0, SEV_EXPIRE, "expired", "duration");
    due(app, "approval-timeout", now, app->cfg->approval_timeout_s, SEV_TIMEOUT,
        "approval timed out", "approval_timeout");
    due(app, "agent-gone", now, app->cfg->agent_grace_s, SEV_AGENT_GONE, "agent gone",
        "agent_gone");
    expiring(app, now);
    recording_reap(app, now); /* before the rows past retention go, and their file names */
    pthread_mutex_lock(&app->lock);
    if (store_sess_delete_ended_before(app->store, now - app->cfg->retention_s, &n_deleted) == 0 &&
        n_deleted > 0)
        log_info("deleted %d sessions past retention", n_deleted);
    pthread_mutex_unlock(&app->lock);
}

static void *
reaper_main(void *p)
{
    struct reaper *rp = p;
    time_t last = 0;

    pthread_setname_np(pthread_self(), "airlock-reaper");
    pthread_mutex_lock(&rp->mu);
    while (!rp->stop) {
        struct timespec ts;
        time_t now = time(NULL);

        pthread_mutex_unlock(&rp->mu);
        /* deferred relay closes every tick, the time-driven transitions once a second */
        core_deferred_run(rp->app, 0);
        if (now != last) {
            reaper_pass(rp->app, now);
            last = now;
        }
        pthread_mutex_lock(&rp->mu);
        clock_gettime(CLOCK_REALTIME, &ts);
        ts.tv_nsec += REAPER_TICK_MS * 1000000L;
        if (ts.tv_nsec >= 1000000000L) {
            ts.tv_sec++;
            ts.tv_nsec -= 1000000000L;
        }
        while (!rp->stop && pthread_cond_timedwait(&rp->cv, &rp->mu, &ts) != ETIMEDOUT)
            ;
    }
    pthread_mutex_unlock(&rp->mu);
    return NULL;
}

struct reaper *
reaper_start(struct app *app)
{
    struct reaper *rp = xcalloc(1, sizeof(*rp));

    rp->app = app;
    pthread_mutex_init(&rp->mu, NULL);
    pthread_cond_init(&rp->cv, NULL);
    if (pthread_create(&rp->th, NULL, reaper_main, rp) != 0)
        fatal("cannot start the reaper thread");
    return rp;
}

void
reaper_stop(struct reaper *rp)
{
    if (rp == NULL)
        return;
    pthread_mutex_lock(&rp->mu);
    rp->stop = 1;
    pthread_cond_signal(&rp->cv);
    pthread_mutex_unlock(&rp->mu);
    pthread_join(rp->th, NULL);
    pthread_mutex_destroy(&rp->mu);
    pthread_cond_destroy(&rp->cv);
    free(rp);
}
