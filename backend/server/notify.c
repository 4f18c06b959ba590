#include <errno.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "err.h"
#include "httpc.h"
#include "log.h"
#include "notify.h"
#include "store_int.h"
#include "xmalloc.h"

#define NOTIFY_BATCH 32
#define NOTIFY_TIMEOUT_S 10

static _Atomic uint64_t n_sent, n_failed;

void
notify_counters(uint64_t *sent, uint64_t *failed)
{
    *sent = n_sent;
    *failed = n_failed;
}

struct notify {
    struct app *app;
    pthread_t th;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int stop;
};

struct item {
    int64_t id;
    char *url, *body;
    int attempts;
};

/* POSTs body to url. 0 on a 2xx answer; *why names the failure otherwise. */
static int
post(const char *url, const char *body, char *why, size_t why_len)
{
    struct httpc_req rq = {.method = "POST",
                           .url = url,
                           .body = body,
                           .user_agent = "airlockd",
                           .timeout_ms = NOTIFY_TIMEOUT_S * 1000,
                           .max_body = 64 * 1024}; /* the answer is not read */
    struct httpc_resp rs;

    if (httpc_request(&rq, 0, &rs, why, why_len) != 0)
        return ERR_UNAVAILABLE;
    if (rs.status < 200 || rs.status > 299) {
        snprintf(why, why_len, "HTTP %ld", rs.status);
        return ERR_UNAVAILABLE;
    }
    return 0;
}

static size_t
load_due(struct app *app, int64_t now, struct item *items)
{
    sqlite3_stmt *stmt = NULL;
    size_t n = 0;

    pthread_mutex_lock(&app->lock);
    if (store_prepare(app->store, &stmt,
                      "SELECT id, url, body, attempts FROM outbox"
                      " WHERE next_at <= ?1 ORDER BY id LIMIT ?2") == 0) {
        sqlite3_bind_int64(stmt, 1, now);
        sqlite3_bind_int(stmt, 2, NOTIFY_BATCH);
        while (n < NOTIFY_BATCH && sqlite3_step(stmt) == SQLITE_ROW) {
            items[n].id = sqlite3_column_int64(stmt, 0);
            items[n].url = store_col_text(stmt, 1);
            items[n].body = store_col_text(stmt, 2);
            items[n].attempts = sqlite3_column_int(stmt, 3);
            n++;
        }
    }
    store_finish(app->store, stmt);
    pthread_mutex_unlock(&app->lock);
    return n;
}

static void
record(struct app *app, const struct item *it, int ok, const char *why, int64_t now)
{
    sqlite3_stmt *stmt = NULL;
    int64_t backoff = 5;
    int i;

    for (i = 0; i < it->attempts && backoff < 3600; i++)
        backoff *= 2;
    pthread_mutex_lock(&app->lock);
    if (ok || it->attempts + 1 >= NOTIFY_MAX_ATTEMPTS) {
        if (store_prepare(app->store, &stmt, "DELETE FROM outbox WHERE id = ?1") == 0) {
            sqlite3_bind_int64(stmt, 1, it->id);
            (void)store_step_done(app->store, stmt);
        }
    } else if (store_prepare(app->store, &stmt,
                             "UPDATE outbox SET attempts = attempts + 1, next_at = ?2,"
                             " last_error = ?3 WHERE id = ?1") == 0) {
        sqlite3_bind_int64(stmt, 1, it->id);
        sqlite3_bind_int64(stmt, 2, now + (backoff < 3600 ? backoff : 3600));
        store_bind_text(stmt, 3, why);
        (void)store_step_done(app->store, stmt);
    }
    store_finish(app->store, stmt);
    pthread_mutex_unlock(&app->lock);
}

int
notify_pass(struct app *app, int64_t now)
{
    struct item items[NOTIFY_BATCH];
    size_t n = load_due(app, now, items), i;
    int sent = 0;

    for (i = 0; i < n; i++) {
        char why[256] = "";
        int ok = post(items[i].url, items[i].body, why, sizeof(why)) == 0;

        if (!ok) {
            log_warn("webhook %s: %s (attempt %d)", items[i].url, why, items[i].attempts + 1);
            n_failed++;
        } else {
            sent++;
            n_sent++;
        }
        record(app, &items[i], ok, why, now);
        free(items[i].url);
        free(items[i].body);
    }
    return sent;
}

static void *
notify_main(void *p)
{
    struct notify *nt = p;

    pthread_setname_np(pthread_self(), "airlock-notify");
    pthread_mutex_lock(&nt->mu);
    while (!nt->stop) {
        struct timespec ts;

        pthread_mutex_unlock(&nt->mu);
        if (nt->app->cfg->n_webhooks > 0)
            notify_pass(nt->app, time(NULL));
        pthread_mutex_lock(&nt->mu);
        clock_gettime(CLOCK_REALTIME, &ts);
        ts.tv_sec += 1;
        while (!nt->stop && pthread_cond_timedwait(&nt->cv, &nt->mu, &ts) != ETIMEDOUT)
            ;
    }
    pthread_mutex_unlock(&nt->mu);
    return NULL;
}

struct notify *
notify_start(struct app *app)
{
    struct notify *nt = xcalloc(1, sizeof(*nt));

    nt->app = app;
    pthread_mutex_init(&nt->mu, NULL);
    pthread_cond_init(&nt->cv, NULL);
    if (pthread_create(&nt->th, NULL, notify_main, nt) != 0)
        fatal("cannot start the notifier thread");
    return nt;
}

void
notify_stop(struct notify *nt)
{
    if (nt == NULL)
        return;
    pthread_mutex_lock(&nt->mu);
    nt->stop = 1;
    pthread_cond_signal(&nt->cv);
    pthread_mutex_unlock(&nt->mu);
    pthread_join(nt->th, NULL);
    pthread_mutex_destroy(&nt->mu);
    pthread_cond_destroy(&nt->cv);
    free(nt);
}
