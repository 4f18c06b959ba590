/*
 * Request metrics and the Prometheus text exposition. Counters are atomic,
 * one row per route (labelled by its method and pattern, or its label) and
 * one for requests no row took ("other"); statuses outside the list below
 * count as status="other".
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api.h"
#include "control.h"
#include "err.h"
#include "metrics.h"
#include "notify.h"
#include "relay.h"
#include "route.h"
#include "viewcache.h"
#include "xmalloc.h"

#define N_BUCKETS 12

static const double bucket_le[N_BUCKETS] = {0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025,
                                            0.05,   0.1,   0.25,   0.5,   1,    5};

static const int metric_statuses[] = {101, 200, 201, 204, 304, 400, 401, 403, 404,
                                      405, 409, 413, 414, 429, 431, 500, 503};
#define N_STATUSES (sizeof(metric_statuses) / sizeof(metric_statuses[0]))

struct metric_row {
    _Atomic uint64_t by_status[N_STATUSES + 1]; /* last: any other status */
    _Atomic uint64_t buckets[N_BUCKETS + 1];
    _Atomic uint64_t sum_us;
};

struct metrics {
    metrics_write_fn extra; /* more lines written at scrape time (NULL: none) */
    void *extra_arg;
    size_t n_rows; /* route_count() + 1: the last is "other" */
    struct metric_row rows[];
};

struct metrics *
metrics_new(void)
{
    size_t n = route_count() + 1;
    struct metrics *m = xcalloc(1, sizeof(*m) + n * sizeof(m->rows[0]));

    m->n_rows = n;
    return m;
}

void
metrics_free(struct metrics *m)
{
    free(m);
}

void
metrics_set_extra(struct metrics *m, metrics_write_fn fn, void *arg)
{
    m->extra = fn;
    m->extra_arg = arg;
}

void
metrics_observe(struct metrics *m, size_t row, int status, int64_t us)
{
    struct metric_row *mr = &m->rows[row < m->n_rows ? row : m->n_rows - 1];
    double s = (double)us / 1e6;
    size_t k;
    int i;

    for (k = 0; k < N_STATUSES && metric_statuses[k] != status; k++)
        ;
    atomic_fetch_add(&mr->by_status[k], 1);
    for (i = 0; i < N_BUCKETS && s > bucket_le[i]; i++)
        ;
    atomic_fetch_add(&mr->buckets[i], 1);
    atomic_fetch_add(&mr->sum_us, (uint64_t)(us > 0 ? us : 0));
}

/* The method and route labels of row i. Borrowed (static strings). */
static void
row_labels(size_t i, const char **method, const char **route)
{
    const struct route *rt = route_at(i);

    if (rt == NULL) {
        *method = "ANY";
        *route = "other";
        return;
    }
    *method = strcmp(rt->method, "*") == 0 ? "ANY" : rt->method;
    *route = rt->label ? rt->label : rt->pattern;
}

static void
requests_text(const struct metrics *m, FILE *f)
{
    const char *method, *route;
    size_t i, k;

    fprintf(f, "# HELP airlock_http_requests_total HTTP requests by route and status.\n");
    fprintf(f, "# TYPE airlock_http_requests_total counter\n");
    for (i = 0; i < m->n_rows; i++) {
        row_labels(i, &method, &route);
        for (k = 0; k <= N_STATUSES; k++) {
            uint64_t v = atomic_load(&m->rows[i].by_status[k]);
            char status[16];

            if (v == 0)
                continue;
            if (k < N_STATUSES)
                snprintf(status, sizeof(status), "%d", metric_statuses[k]);
            else
                snprintf(status, sizeof(status), "other");
            fprintf(f,
                    "airlock_http_requests_total{method=\"%s\",route=\"%s\",status=\"%s\"} %llu\n",
                    method, route, status, (unsigned long long)v);
        }
    }
}

static void
latency_text(const struct metrics *m, FILE *f)
{
    const char *method, *route;
    size_t i;
    int b;

    fprintf(f, "# HELP airlock_http_request_duration_seconds Request latency by route.\n");
    fprintf(f, "# TYPE airlock_http_request_duration_seconds histogram\n");
    for (i = 0; i < m->n_rows; i++) {
        uint64_t cum = 0;

        for (b = 0; b <= N_BUCKETS; b++)
            cum += atomic_load(&m->rows[i].buckets[b]);
        if (cum == 0)
            continue;
        row_labels(i, &method, &route);
        cum = 0;
        for (b = 0; b <= N_BUCKETS; b++) {
            char le[32];

            cum += atomic_load(&m->rows[i].buckets[b]);
            if (b < N_BUCKETS)
                snprintf(le, sizeof(le), "%g", bucket_le[b]);
            else
                snprintf(le, sizeof(le), "+Inf");
            fprintf(f,
                    "airlock_http_request_duration_seconds_bucket{method=\"%s\",route=\"%s\","
                    "le=\"%s\"} %llu\n",
                    method, route, le, (unsigned long long)cum);
        }
        fprintf(f, "airlock_http_request_duration_seconds_sum{method=\"%s\",route=\"%s\"} %.6f\n",
                method, route, (double)atomic_load(&m->rows[i].sum_us) / 1e6);
        fprintf(f, "airlock_http_request_duration_seconds_count{method=\"%s\",route=\"%s\"} %llu\n",
                method, route, (unsigned long long)cum);
    }
}

/* XXX SQL outside the store: the count belongs in store_sessions.c. */
static void
sessions_text(struct app *app, FILE *f)
{
    sqlite3_stmt *stmt = NULL;
    int64_t counts[SESSION__COUNT] = {0};
    int i;

    pthread_mutex_lock(&app->lock);
    if (sqlite3_prepare_v2(store_db(app->store),
                           "SELECT state, count(*) FROM sessions GROUP BY state", -1, &stmt,
                           NULL) == SQLITE_OK) {
        while (sqlite3_step(stmt) == SQLITE_ROW) {
            enum session_state s;

            if (session_state_parse((const char *)sqlite3_column_text(stmt, 0), &s) == 0)
                counts[s] = sqlite3_column_int64(stmt, 1);
        }
    }
    sqlite3_finalize(stmt);
    pthread_mutex_unlock(&app->lock);
    fprintf(f, "# HELP airlock_sessions Debug sessions by state.\n# TYPE airlock_sessions gauge\n");
    for (i = 0; i < SESSION__COUNT; i++)
        fprintf(f, "airlock_sessions{state=\"%s\"} %lld\n",
                session_state_name((enum session_state)i), (long long)counts[i]);
}

static void
gauges_text(struct app *app, FILE *f)
{
    struct relay_stats rs;
    uint64_t sent, failed;

    fprintf(f,
            "# HELP airlock_view_cache_sessions Sessions whose rendered reply is cached.\n"
            "# TYPE airlock_view_cache_sessions gauge\nairlock_view_cache_sessions %zu\n",
            viewcache_count(store_views(app->store)));
    fprintf(f,
            "# HELP airlock_agents_online Agents with an open control channel.\n"
            "# TYPE airlock_agents_online gauge\nairlock_agents_online %d\n",
            control_count(app->control));
    relay_get_stats(app->relay, &rs);
    fprintf(f,
            "# HELP airlock_relay_connections Relayed SSH connections.\n"
            "# TYPE airlock_relay_connections gauge\n"
            "airlock_relay_connections{state=\"active\"} %llu\n"
            "airlock_relay_connections{state=\"pending\"} %llu\n"
            "# HELP airlock_relay_connections_total Relayed SSH connections since start.\n"
            "# TYPE airlock_relay_connections_total counter\n"
            "airlock_relay_connections_total %llu\n"
            "# HELP airlock_relay_bytes_total Bytes relayed.\n"
            "# TYPE airlock_relay_bytes_total counter\n"
            "airlock_relay_bytes_total{direction=\"up\"} %llu\n"
            "airlock_relay_bytes_total{direction=\"down\"} %llu\n",
            (unsigned long long)rs.conns_active, (unsigned long long)rs.conns_pending,
            (unsigned long long)rs.conns_total, (unsigned long long)rs.bytes_up,
            (unsigned long long)rs.bytes_down);
    notify_counters(&sent, &failed);
    fprintf(f,
            "# HELP airlock_notifications_total Webhook deliveries by result.\n"
            "# TYPE airlock_notifications_total counter\n"
            "airlock_notifications_total{result=\"sent\"} %llu\n"
            "airlock_notifications_total{result=\"failed\"} %llu\n",
            (unsigned long long)sent, (unsigned long long)failed);
}

int
metrics_get(struct api_req *req, struct api_reply *rep)
{
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);

    if (f == NULL)
        return api_fail(rep, ERR_SYSTEM, "cannot render the metrics");
    sessions_text(req->app, f);
    gauges_text(req->app, f);
    if (req->metrics != NULL) {
        requests_text(req->metrics, f);
        latency_text(req->metrics, f);
        if (req->metrics->extra != NULL)
            req->metrics->extra(req->metrics->extra_arg, f);
    }
    if (fclose(f) != 0) {
        free(buf);
        return api_fail(rep, ERR_SYSTEM, "cannot render the metrics");
    }
    rep->body = buf;
    rep->body_len = len;
    rep->content_type = "text/plain; version=0.0.4; charset=utf-8";
    return 0;
}
