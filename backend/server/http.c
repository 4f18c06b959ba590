/*
 * libmicrohttpd glue. The access handler is called several times per
 * request: first with no data (allocate the request context, refuse an
 * announced body over API_MAX_BODY), then with body chunks (accumulate up to
 * the limit), then once with *upload_data_size == 0 (dispatch). Routing works
 * on the raw path: MHD_OPTION_UNESCAPE_CALLBACK leaves the URL undecoded so
 * that "%2F" inside an agent name is not mistaken for a separator; each
 * matched segment is decoded on its own.
 *
 * Order of checks (DESIGN.md 6): authenticate (401) -> parse body (400) ->
 * handler (find 404 -> authorise 403 -> state 409).
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <microhttpd.h>

#include "api.h"
#include "control.h"
#include "err.h"
#include "http.h"
#include "connguard.h"
#include "reload.h"
#include "log.h"
#include "notify.h"
#include "relay.h"
#include "util.h"
#include "viewcache.h"
#include "ws.h"
#include "xmalloc.h"

#define HTTP_THREADS 4
#define HTTP_MAX_CONNECTIONS 4096
#define HTTP_TIMEOUT_S 60
#define N_BUCKETS 12

struct route {
    const char *method;
    const char *pattern; /* ':' matches one segment */
    int flags;
    api_handler_fn fn;
};

static const struct route routes[] = {
    {"GET", "/api/v1/config", 0, api_config_get},
    {"GET", "/api/v1/me", ROUTE_AUTH, api_me_get},
    {"POST", "/api/v1/dev/token", 0, api_dev_token},
    {"GET", "/api/v1/debug-sessions", ROUTE_AUTH, api_sessions_list},
    {"POST", "/api/v1/debug-sessions", ROUTE_AUTH, api_sessions_create},
    {"GET", "/api/v1/debug-sessions/:", ROUTE_AUTH, api_sessions_get},
    {"POST", "/api/v1/debug-sessions/:/approve", ROUTE_AUTH, api_sessions_approve},
    {"POST", "/api/v1/debug-sessions/:/reject", ROUTE_AUTH, api_sessions_reject},
    {"POST", "/api/v1/debug-sessions/:/join", ROUTE_AUTH, api_sessions_join},
    {"POST", "/api/v1/debug-sessions/:/leave", ROUTE_AUTH, api_sessions_leave},
    {"POST", "/api/v1/debug-sessions/:/renew", ROUTE_AUTH, api_sessions_renew},
    {"POST", "/api/v1/debug-sessions/:/terminate", ROUTE_AUTH, api_sessions_terminate},
    {"POST", "/api/v1/debug-sessions/:/invite", ROUTE_AUTH, api_sessions_invite},
    {"GET", "/api/v1/debug-sessions/:/events", ROUTE_AUTH, api_sessions_events},
    {"GET", "/api/v1/debug-sessions/:/connect", ROUTE_WS, api_sessions_connect},
    {"GET", "/api/v1/debug-session-templates", ROUTE_AUTH, api_templates_list},
    {"GET", "/api/v1/debug-session-templates/:", ROUTE_AUTH, api_templates_get},
    {"GET", "/api/v1/agents", ROUTE_AUTH, api_agents_list},
    {"POST", "/api/v1/agents", ROUTE_AUTH | ROUTE_AGENT_OK, api_agents_register},
    {"GET", "/api/v1/agents/:", ROUTE_AUTH, api_agents_get},
    {"GET", "/api/v1/agents/:/control", ROUTE_WS, api_agents_control},
    {"GET", "/api/v1/agents/:/tunnel/:", ROUTE_WS, api_agents_tunnel},
};
#define N_ROUTES (sizeof(routes) / sizeof(routes[0]))
/* Metrics rows: one per route, then "static", "health", "unmatched". */
#define M_STATIC N_ROUTES
#define M_OTHER (N_ROUTES + 1)
#define N_METRIC_ROWS (N_ROUTES + 2)

static const double bucket_le[N_BUCKETS] = {0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025,
                                            0.05,   0.1,   0.25,   0.5,   1,     5};

static const int metric_statuses[] = {101, 200, 201, 204, 304, 400, 401, 403, 404,
                                      405, 409, 413, 429, 500, 503};
#define N_STATUSES (sizeof(metric_statuses) / sizeof(metric_statuses[0]))

struct metric_row {
    _Atomic uint64_t by_status[N_STATUSES + 1]; /* last: any other status */
    _Atomic uint64_t buckets[N_BUCKETS + 1];
    _Atomic uint64_t sum_us;
};

struct http {
    struct app *app;
    struct MHD_Daemon *d;
    unsigned port;
    char *_Atomic csp;
    char **old_csp;            /* replaced by http_config_apply, freed at stop */
    size_t n_old_csp;
    _Atomic int n_upgraded;
    _Atomic int stopping;      /* set by http_quiesce: no new WebSocket starts */
    unsigned id_prefix;        /* request ids: random prefix + counter */
    _Atomic unsigned next_id;
    struct metric_row metrics[N_METRIC_ROWS];
    struct connguard *guard;   /* connguard.c: connection cap, request deadline, rate */
};

struct req_ctx {
    char *body;
    size_t len;
    int too_large;
    int64_t start_us;
};

struct upgrade_job {
    struct http *h;
    upgrade_fn fn;
    void *arg;
    void (*arg_free)(void *);
};


static int64_t
now_us(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

/* ---------------------------------------------------------------- replies */

static void
add_security_headers(struct MHD_Response *r)
{
    MHD_add_response_header(r, "X-Content-Type-Options", "nosniff");
    MHD_add_response_header(r, "Referrer-Policy", "no-referrer");
    MHD_add_response_header(r, "X-Frame-Options", "DENY");
}

static enum MHD_Result
send_buf(struct MHD_Connection *c, int status, const char *type, char *buf, size_t len,
         const char *cache)
{
    struct MHD_Response *r = MHD_create_response_from_buffer(len, buf, MHD_RESPMEM_MUST_FREE);
    enum MHD_Result ret;

    MHD_add_response_header(r, "Content-Type", type);
    MHD_add_response_header(r, "Cache-Control", cache);
    add_security_headers(r);
    ret = MHD_queue_response(c, (unsigned)status, r);
    MHD_destroy_response(r);
    return ret;
}

static enum MHD_Result
send_json(struct MHD_Connection *c, int status, json_t *j)
{
    char *s = json_dumps(j, JSON_COMPACT);

    if (s == NULL)
        s = xstrdup("{}");
    return send_buf(c, status, "application/json", s, strlen(s), "no-store");
}

static enum MHD_Result
send_error(struct MHD_Connection *c, int r, const char *msg, json_t *details)
{
    json_t *j = json_pack("{s:s, s:s}", "error", msg ? msg : err_str(r), "code", err_code(r));
    enum MHD_Result ret;

    if (details != NULL)
        json_object_set(j, "details", details);
    ret = send_json(c, api_status_for(r), j);
    json_decref(j);
    return ret;
}

/* ---------------------------------------------------------------- routing */

static int
hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* Percent-decodes [s, s+len) into a new string; ERR_INVALID on bad escapes or NUL. */
static int
pct_decode(const char *s, size_t len, int plus_space, char **out)
{
    char *o = xmalloc(len + 1);
    size_t i, n = 0;

    for (i = 0; i < len; i++) {
        if (s[i] == '%') {
            int hi, lo;

            if (i + 2 >= len) {
                free(o);
                return ERR_INVALID;
            }
            hi = hexval(s[i + 1]);
            lo = hexval(s[i + 2]);
            if (hi < 0 || lo < 0 || (hi == 0 && lo == 0)) {
                free(o);
                return ERR_INVALID;
            }
            o[n++] = (char)(hi << 4 | lo);
            i += 2;
        } else if (plus_space && s[i] == '+') {
            o[n++] = ' ';
        } else {
            o[n++] = s[i];
        }
    }
    o[n] = '\0';
    *out = o;
    return 0;
}

/*
 * Matches raw path against pattern. On a match fills params (new strings)
 * and returns 1; 0 on no match; -1 on a match with a bad escape.
 */
static int
route_match(const char *pattern, const char *path, char **params)
{
    const char *p = pattern, *s = path;
    int n = 0;

    while (*p && *s) {
        if (*p == ':') {
            const char *end = strchr(s, '/');
            size_t len = end ? (size_t)(end - s) : strlen(s);

            if (len == 0)
                goto nomatch;
            if (pct_decode(s, len, 0, &params[n]) != 0) {
                n++;
                goto bad;
            }
            n++;
            s += len;
            p++;
            continue;
        }
        if (*p != *s)
            goto nomatch;
        p++;
        s++;
    }
    if (*p == '\0' && *s == '\0')
        return 1;
nomatch:
    while (n > 0)
        free(params[--n]), params[n] = NULL;
    return 0;
bad:
    while (n > 0)
        free(params[--n]), params[n] = NULL;
    return -1;
}

char *
api_query(const struct api_req *req, const char *name)
{
    const char *raw = MHD_lookup_connection_value(req->conn, MHD_GET_ARGUMENT_KIND, name);
    char *out = NULL;

    if (raw == NULL)
        return NULL;
    if (pct_decode(raw, strlen(raw), 1, &out) != 0)
        return xstrdup("\x01"); /* invalid escape: no valid value equals this */
    return out;
}

static const char *bearer(struct MHD_Connection *c);

static size_t
no_unescape(void *cls, struct MHD_Connection *c, char *s)
{
    (void)cls;
    (void)c;
    return strlen(s);
}

/* ---------------------------------------------------------------- auth */

const char *
api_bearer(const struct api_req *req)
{
    return bearer(req->conn);
}

static const char *
bearer(struct MHD_Connection *c)
{
    const char *h = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Authorization");

    if (h == NULL || strncasecmp(h, "Bearer ", 7) != 0)
        return NULL;
    h += 7;
    while (*h == ' ')
        h++;
    return *h ? h : NULL;
}

static int
authenticate(struct api_req *req, struct api_reply *rep, int flags)
{
    const char *tok = bearer(req->conn), *why = NULL;
    int r;

    if (tok == NULL)
        return api_fail(rep, ERR_AUTH, "missing bearer token");
    if ((r = auth_verify(req->app->auth, tok, req->now, &req->id, &why)) != 0) {
        if (r == ERR_UNAVAILABLE)
            return api_fail(rep, r, "cannot verify token: %s", why ? why : "issuer unavailable");
        return api_fail(rep, ERR_AUTH, "invalid token: %s", why ? why : "rejected");
    }
    req->authed = 1;
    req->p.user = req->id.user;
    req->p.email = req->id.email;
    req->p.domain = req->id.domain;
    req->p.groups = req->id.groups;
    req->p.n_groups = req->id.n_groups;
    if (req->id.is_agent && !(flags & ROUTE_AGENT_OK))
        return api_fail(rep, ERR_FORBIDDEN, "agent tokens may only register agents");
    req->p.admin = !req->id.is_agent && policy_is_admin(req->app->cfg, &req->p);
    return 0;
}

/* ---------------------------------------------------------------- upgrade */

void
upgraded_close(struct upgraded *u)
{
    if (u == NULL)
        return;
    MHD_upgrade_action(u->urh, MHD_UPGRADE_ACTION_CLOSE);
    free(u->extra);
    free(u);
}

struct upgrade_thread_arg {
    struct upgrade_job *job;
    struct upgraded *u;
};

static void *
upgrade_thread(void *p)
{
    struct upgrade_thread_arg *a = p;
    struct upgrade_job *job = a->job;
    struct http *h = job->h;

    pthread_setname_np(pthread_self(), "airlock-ws");
    /*
     * A thread past this check while shutdown begins is still safe: main
     * shuts the relay and control down (they refuse late connections) and
     * frees them only after http_stop saw every upgrade thread end.
     */
    if (atomic_load(&h->stopping))
        upgraded_close(a->u);
    else
        job->fn(a->u, job->arg);
    if (job->arg_free)
        job->arg_free(job->arg);
    free(job);
    free(a);
    atomic_fetch_sub(&h->n_upgraded, 1);
    return NULL;
}

static void
upgrade_cb(void *cls, struct MHD_Connection *c, void *req_cls, const char *extra_in,
           size_t extra_in_size, MHD_socket sock, struct MHD_UpgradeResponseHandle *urh)
{
    struct upgrade_job *job = cls;
    struct upgrade_thread_arg *a = xcalloc(1, sizeof(*a));
    struct upgraded *u = xcalloc(1, sizeof(*u));
    pthread_t th;
    int one = 1;

    (void)req_cls;
    u->fd = sock;
    u->urh = urh;
    if (extra_in_size > 0) {
        u->extra = xmalloc(extra_in_size);
        memcpy(u->extra, extra_in, extra_in_size);
        u->extra_len = extra_in_size;
    }
    setsockopt(sock, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    {
        /*
         * With built-in TLS, sock is MHD's end of a socketpair and MHD copies
         * to the client's TCP socket itself: that socket needs no Nagle
         * either (without it each keystroke waited ~40 ms per hop).
         */
        const union MHD_ConnectionInfo *ci =
            MHD_get_connection_info(c, MHD_CONNECTION_INFO_CONNECTION_FD);

        if (ci != NULL && ci->connect_fd != sock)
            setsockopt(ci->connect_fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    }
    a->job = job;
    a->u = u;
    if (atomic_load(&job->h->stopping)) { /* draining: refuse new WebSockets */
        upgraded_close(u);
        if (job->arg_free)
            job->arg_free(job->arg);
        free(job);
        free(a);
        return;
    }
    atomic_fetch_add(&job->h->n_upgraded, 1);
    if (pthread_create(&th, NULL, upgrade_thread, a) != 0) {
        log_warn("cannot start a WebSocket thread: %s", strerror(errno));
        atomic_fetch_sub(&job->h->n_upgraded, 1);
        upgraded_close(u);
        if (job->arg_free)
            job->arg_free(job->arg);
        free(job);
        free(a);
        return;
    }
    pthread_detach(th);
}

/* Checks the WebSocket handshake headers; fills accept (29 bytes). */
static int
ws_handshake_ok(struct MHD_Connection *c, char accept[29])
{
    const char *up = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Upgrade");
    const char *conn = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Connection");
    const char *key = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Sec-WebSocket-Key");
    const char *ver = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Sec-WebSocket-Version");

    if (up == NULL || strcasecmp(up, "websocket") != 0 || conn == NULL ||
        strcasestr(conn, "upgrade") == NULL || key == NULL || strlen(key) != 24 || ver == NULL ||
        strcmp(ver, "13") != 0)
        return 0;
    ws_accept_key(key, accept);
    return 1;
}

static enum MHD_Result
send_upgrade(struct http *h, struct MHD_Connection *c, struct api_reply *rep, const char *accept)
{
    struct upgrade_job *job = xcalloc(1, sizeof(*job));
    struct MHD_Response *r;
    enum MHD_Result ret;

    job->h = h;
    job->fn = rep->upgrade;
    job->arg = rep->upgrade_arg;
    job->arg_free = rep->upgrade_arg_free;
    rep->upgrade_arg = NULL;
    rep->upgrade_arg_free = NULL;
    r = MHD_create_response_for_upgrade(upgrade_cb, job);
    MHD_add_response_header(r, MHD_HTTP_HEADER_UPGRADE, "websocket");
    MHD_add_response_header(r, "Sec-WebSocket-Accept", accept);
    ret = MHD_queue_response(c, MHD_HTTP_SWITCHING_PROTOCOLS, r);
    MHD_destroy_response(r);
    return ret;
}

/* ---------------------------------------------------------------- static files */

static const char *
mime_type(const char *path)
{
    static const struct {
        const char *ext, *type;
    } types[] = {
        {".html", "text/html; charset=utf-8"}, {".js", "text/javascript; charset=utf-8"},
        {".mjs", "text/javascript; charset=utf-8"}, {".css", "text/css; charset=utf-8"},
        {".json", "application/json"}, {".svg", "image/svg+xml"}, {".png", "image/png"},
        {".ico", "image/x-icon"}, {".woff2", "font/woff2"}, {".woff", "font/woff"},
        {".txt", "text/plain; charset=utf-8"}, {".map", "application/json"},
        {".webmanifest", "application/manifest+json"},
    };
    const char *dot = strrchr(path, '.');
    size_t i;

    for (i = 0; dot && i < sizeof(types) / sizeof(types[0]); i++)
        if (strcmp(dot, types[i].ext) == 0)
            return types[i].type;
    return "application/octet-stream";
}

static enum MHD_Result
serve_file(struct http *h, struct MHD_Connection *c, const char *full, const char *rel, int fd,
           off_t size)
{
    struct MHD_Response *r = MHD_create_response_from_fd((uint64_t)size, fd);
    enum MHD_Result ret;
    int immutable = strncmp(rel, "/assets/", 8) == 0;

    (void)full;
    MHD_add_response_header(r, "Content-Type", mime_type(rel));
    MHD_add_response_header(r, "Cache-Control",
                            immutable ? "public, max-age=31536000, immutable" : "no-cache");
    MHD_add_response_header(r, "Content-Security-Policy", h->csp);
    add_security_headers(r);
    ret = MHD_queue_response(c, MHD_HTTP_OK, r);
    MHD_destroy_response(r);
    return ret;
}

static enum MHD_Result
serve_static(struct http *h, struct MHD_Connection *c, const char *url)
{
    const char *dir = h->app->cfg->ui_dir;
    char *path = NULL, *full = NULL;
    struct stat sb;
    enum MHD_Result ret;
    int fd = -1;

    if (pct_decode(url, strlen(url), 0, &path) != 0 || strstr(path, "/..") != NULL ||
        strstr(path, "\\") != NULL) {
        free(path);
        return send_error(c, ERR_INVALID, "bad path", NULL);
    }
    if (strcmp(path, "/") != 0) {
        full = xasprintf("%s%s", dir, path);
        fd = open(full, O_RDONLY | O_CLOEXEC);
        if (fd >= 0 && (fstat(fd, &sb) != 0 || !S_ISREG(sb.st_mode))) {
            close(fd);
            fd = -1;
        }
    }
    if (fd < 0) {
        /* History-mode fallback: unknown paths get index.html, but not missing assets. */
        if (strncmp(path, "/assets/", 8) == 0) {
            free(path);
            free(full);
            return send_error(c, ERR_NOT_FOUND, "no such file", NULL);
        }
        free(full);
        free(path);
        path = xstrdup("/index.html");
        full = xasprintf("%s/index.html", dir);
        fd = open(full, O_RDONLY | O_CLOEXEC);
        if (fd < 0 || fstat(fd, &sb) != 0) {
            if (fd >= 0)
                close(fd);
            free(path);
            free(full);
            return send_error(c, ERR_NOT_FOUND,
                              "the web UI is not built (run make); the API is at /api/v1", NULL);
        }
    }
    ret = serve_file(h, c, full, path, fd, sb.st_size);
    free(path);
    free(full);
    return ret;
}

/* ---------------------------------------------------------------- health, metrics */

static void
metrics_observe(struct http *h, size_t row, int status, int64_t us)
{
    struct metric_row *m = &h->metrics[row];
    double s = (double)us / 1e6;
    int i;

    size_t k;

    for (k = 0; k < N_STATUSES && metric_statuses[k] != status; k++)
        ;
    atomic_fetch_add(&m->by_status[k], 1);
    for (i = 0; i < N_BUCKETS && s > bucket_le[i]; i++)
        ;
    atomic_fetch_add(&m->buckets[i], 1);
    atomic_fetch_add(&m->sum_us, (uint64_t)us);
}

static void
metrics_route_text(struct http *h, FILE *f)
{
    size_t i;
    int k, b;

    fprintf(f, "# HELP airlock_http_requests_total HTTP requests by route and status.\n");
    fprintf(f, "# TYPE airlock_http_requests_total counter\n");
    for (i = 0; i < N_METRIC_ROWS; i++) {
        const char *route = i < N_ROUTES ? routes[i].pattern : i == M_STATIC ? "static" : "other";
        const char *method = i < N_ROUTES ? routes[i].method : "ANY";

        for (k = 0; k <= (int)N_STATUSES; k++) {
            uint64_t v = atomic_load(&h->metrics[i].by_status[k]);

            if (v == 0)
                continue;
            if (k < (int)N_STATUSES)
                fprintf(f,
                        "airlock_http_requests_total{method=\"%s\",route=\"%s\",status=\"%d\"}"
                        " %llu\n",
                        method, route, metric_statuses[k], (unsigned long long)v);
            else
                fprintf(f,
                        "airlock_http_requests_total{method=\"%s\",route=\"%s\",status=\"other\"}"
                        " %llu\n",
                        method, route, (unsigned long long)v);
        }
    }
    fprintf(f, "# HELP airlock_http_request_duration_seconds Request latency by route.\n");
    fprintf(f, "# TYPE airlock_http_request_duration_seconds histogram\n");
    for (i = 0; i < N_METRIC_ROWS; i++) {
        const char *route = i < N_ROUTES ? routes[i].pattern : i == M_STATIC ? "static" : "other";
        const char *method = i < N_ROUTES ? routes[i].method : "ANY";
        uint64_t cum = 0;

        for (b = 0; b <= N_BUCKETS; b++)
            cum += atomic_load(&h->metrics[i].buckets[b]);
        if (cum == 0)
            continue;
        cum = 0;
        for (b = 0; b <= N_BUCKETS; b++) {
            cum += atomic_load(&h->metrics[i].buckets[b]);
            if (b < N_BUCKETS)
                fprintf(f,
                        "airlock_http_request_duration_seconds_bucket{method=\"%s\",route=\"%s\","
                        "le=\"%g\"} %llu\n",
                        method, route, bucket_le[b], (unsigned long long)cum);
            else
                fprintf(f,
                        "airlock_http_request_duration_seconds_bucket{method=\"%s\",route=\"%s\","
                        "le=\"+Inf\"} %llu\n",
                        method, route, (unsigned long long)cum);
        }
        fprintf(f, "airlock_http_request_duration_seconds_sum{method=\"%s\",route=\"%s\"} %.6f\n",
                method, route, (double)atomic_load(&h->metrics[i].sum_us) / 1e6);
        fprintf(f, "airlock_http_request_duration_seconds_count{method=\"%s\",route=\"%s\"} %llu\n",
                method, route, (unsigned long long)cum);
    }
}

static enum MHD_Result
serve_metrics(struct http *h, struct MHD_Connection *c)
{
    struct app *app = h->app;
    struct relay_stats rs;
    sqlite3_stmt *stmt = NULL;
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    int64_t counts[SESSION__COUNT] = {0};
    int i;

    pthread_mutex_lock(&app->lock);
    if (sqlite3_prepare_v2(store_db(app->store), "SELECT state, count(*) FROM sessions GROUP BY state",
                           -1, &stmt, NULL) == SQLITE_OK) {
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
    fprintf(f, "# HELP airlock_view_cache_sessions Sessions whose rendered reply is cached.\n"
               "# TYPE airlock_view_cache_sessions gauge\nairlock_view_cache_sessions %zu\n",
            viewcache_count(store_views(app->store)));
    fprintf(f, "# HELP airlock_agents_online Agents with an open control channel.\n"
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
    {
        uint64_t sent, failed;

        notify_counters(&sent, &failed);
        fprintf(f,
                "# HELP airlock_notifications_total Webhook deliveries by result.\n"
                "# TYPE airlock_notifications_total counter\n"
                "airlock_notifications_total{result=\"sent\"} %llu\n"
                "airlock_notifications_total{result=\"failed\"} %llu\n",
                (unsigned long long)sent, (unsigned long long)failed);
    }
    metrics_route_text(h, f);
    connguard_metrics_write(h->guard, f);
    reload_metrics_write(f);
    fclose(f);
    return send_buf(c, 200, "text/plain; version=0.0.4; charset=utf-8", buf, len, "no-store");
}

static enum MHD_Result
serve_health(struct http *h, struct MHD_Connection *c, int ready)
{
    json_t *j;
    enum MHD_Result ret;
    int r = 0;

    if (ready) {
        pthread_mutex_lock(&h->app->lock);
        r = store_check_writable(h->app->store);
        pthread_mutex_unlock(&h->app->lock);
    }
    if (r != 0)
        return send_error(c, ERR_UNAVAILABLE, "database is not writable", NULL);
    j = json_pack("{s:s}", "status", "ok");
    ret = send_json(c, 200, j);
    json_decref(j);
    return ret;
}

/* ---------------------------------------------------------------- dispatch */

static void
req_cleanup(struct api_req *req, struct api_reply *rep)
{
    size_t i;

    for (i = 0; i < 3; i++)
        free(req->params[i]);
    json_decref(req->body);
    if (req->authed)
        identity_cleanup(&req->id);
    json_decref(rep->json);
    free(rep->body);
    json_decref(rep->details);
    free(rep->error);
    if (rep->upgrade_arg_free && rep->upgrade_arg)
        rep->upgrade_arg_free(rep->upgrade_arg);
}

static enum MHD_Result
dispatch_api(struct http *h, struct MHD_Connection *c, const char *url, const char *method,
             struct req_ctx *ctx, int *status, size_t *row)
{
    struct api_req req;
    struct api_reply rep;
    const struct route *rt = NULL;
    enum MHD_Result ret;
    char accept[29] = "";
    int path_matched = 0, r = 0;
    size_t i;

    memset(&req, 0, sizeof(req));
    memset(&rep, 0, sizeof(rep));
    req.app = h->app;
    req.conn = c;
    req.method = method;
    req.now = time_now();
    for (i = 0; i < N_ROUTES; i++) {
        int m = route_match(routes[i].pattern, url, req.params);

        if (m < 0) {
            *status = 400;
            return send_error(c, ERR_INVALID, "bad percent-encoding in path", NULL);
        }
        if (m == 0)
            continue;
        path_matched = 1;
        if (strcmp(routes[i].method, method) == 0) {
            rt = &routes[i];
            *row = i;
            break;
        }
        for (int k = 0; k < 3; k++)
            free(req.params[k]), req.params[k] = NULL;
    }
    if (rt == NULL) {
        r = path_matched ? ERR_INVALID : ERR_NOT_FOUND;
        *status = path_matched ? 405 : 404;
        if (path_matched) {
            json_t *j = json_pack("{s:s, s:s}", "error", "method not allowed", "code", "BAD_REQUEST");

            ret = send_json(c, 405, j);
            json_decref(j);
            return ret;
        }
        return send_error(c, r, "no such endpoint", NULL);
    }
    if ((rt->flags & ROUTE_AUTH) && (r = authenticate(&req, &rep, rt->flags)) != 0)
        goto reply;
    if (ctx->too_large) {
        r = api_fail(&rep, ERR_TOO_LARGE, "request body is larger than %d bytes", API_MAX_BODY);
        goto reply;
    }
    if ((rt->flags & ROUTE_WS) && !ws_handshake_ok(c, accept)) {
        r = api_fail(&rep, ERR_INVALID, "this endpoint needs a WebSocket upgrade");
        goto reply;
    }
    if (ctx->len > 0) {
        json_error_t jerr;

        req.body = json_loadb(ctx->body, ctx->len, JSON_REJECT_DUPLICATES, &jerr);
        if (req.body == NULL) {
            r = api_fail(&rep, ERR_INVALID, "request body is not valid JSON: %s (line %d, column %d)",
                         jerr.text, jerr.line, jerr.column);
            goto reply;
        }
    }
    r = rt->fn(&req, &rep);
reply:
    if (r == 0 && rep.upgrade != NULL) {
        *status = 101;
        ret = send_upgrade(h, c, &rep, accept);
    } else if (r != 0) {
        *status = api_status_for(r);
        if (r == ERR_INTERNAL || r == ERR_DB || r == ERR_SYSTEM)
            log_warn_r(r, "%s %s: %s", method, rt->pattern, rep.error ? rep.error : "");
        ret = send_error(c, r, rep.error, rep.details);
    } else {
        *status = rep.status ? rep.status : 200;
        if (rep.body != NULL) {
            ret = send_buf(c, *status, "application/json", rep.body, rep.body_len, "no-store");
            rep.body = NULL;      /* MHD frees it */
        } else {
            if (rep.json == NULL)
                rep.json = json_object();
            ret = send_json(c, *status, rep.json);
        }
    }
    req_cleanup(&req, &rep);
    return ret;
}

static enum MHD_Result
access_handler(void *cls, struct MHD_Connection *c, const char *url, const char *method,
               const char *version, const char *upload_data, size_t *upload_data_size,
               void **req_cls)
{
    struct http *h = cls;
    struct req_ctx *ctx = *req_cls;
    enum MHD_Result ret;
    char reqid[17];
    int status = 500;
    size_t row = M_OTHER;

    (void)version;
    if (connguard_access(h->guard, c, ctx == NULL, *upload_data_size)) /* 429 queued */
        return MHD_YES;
    if (ctx == NULL) {
        const char *cl = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Content-Length");
        uint64_t n;

        ctx = xcalloc(1, sizeof(*ctx));
        ctx->start_us = now_us();
        if (cl != NULL && (parse_uint(cl, UINT64_MAX, &n) != 0 || n > API_MAX_BODY))
            ctx->too_large = 1;
        *req_cls = ctx;
        return MHD_YES;
    }
    if (*upload_data_size > 0) {
        if (!ctx->too_large && ctx->len + *upload_data_size <= API_MAX_BODY) {
            ctx->body = xrealloc(ctx->body, ctx->len + *upload_data_size + 1);
            memcpy(ctx->body + ctx->len, upload_data, *upload_data_size);
            ctx->len += *upload_data_size;
        } else {
            ctx->too_large = 1;
        }
        *upload_data_size = 0;
        return MHD_YES;
    }
    snprintf(reqid, sizeof(reqid), "%08x%08x", h->id_prefix,
             (unsigned)atomic_fetch_add(&h->next_id, 1));
    log_set_request_id(reqid);
    if (strncmp(url, "/api/", 5) == 0) {
        ret = dispatch_api(h, c, url, method, ctx, &status, &row);
    } else if (strcmp(url, "/healthz") == 0 || strcmp(url, "/readyz") == 0) {
        ret = serve_health(h, c, url[1] == 'r');
        status = 200;
    } else if (strcmp(url, "/metrics") == 0) {
        ret = serve_metrics(h, c);
        status = 200;
    } else if (strcmp(method, "GET") == 0 || strcmp(method, "HEAD") == 0) {
        ret = serve_static(h, c, url);
        status = 200;
        row = M_STATIC;
    } else {
        ret = send_error(c, ERR_NOT_FOUND, "no such endpoint", NULL);
        status = 404;
    }
    metrics_observe(h, row, status, now_us() - ctx->start_us);
    log_debug("%s %s -> %d", method, url, status);
    log_set_request_id(NULL);
    return ret;
}

static void
completed(void *cls, struct MHD_Connection *c, void **req_cls, enum MHD_RequestTerminationCode tc)
{
    struct req_ctx *ctx = *req_cls;

    (void)cls;
    (void)c;
    (void)tc;
    connguard_request_done(((struct http *)cls)->guard, c);
    if (ctx != NULL) {
        free(ctx->body);
        free(ctx);
        *req_cls = NULL;
    }
}

/* ---------------------------------------------------------------- lifecycle */

static int
parse_listen(const char *listen, struct sockaddr_storage *ss, socklen_t *len)
{
    char host[256];
    const char *colon = strrchr(listen, ':');
    uint64_t port;

    memset(ss, 0, sizeof(*ss));
    if (colon == NULL || (size_t)(colon - listen) >= sizeof(host) ||
        parse_uint(colon + 1, 65535, &port) != 0)
        return ERR_INVALID;
    memcpy(host, listen, (size_t)(colon - listen));
    host[colon - listen] = '\0';
    if (host[0] == '[') {
        struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)ss;
        size_t hl = strlen(host);

        if (hl < 2 || host[hl - 1] != ']')
            return ERR_INVALID;
        host[hl - 1] = '\0';
        s6->sin6_family = AF_INET6;
        s6->sin6_port = htons((uint16_t)port);
        if (inet_pton(AF_INET6, host + 1, &s6->sin6_addr) != 1)
            return ERR_INVALID;
        *len = sizeof(*s6);
        return 0;
    }
    {
        struct sockaddr_in *s4 = (struct sockaddr_in *)ss;

        if (strcmp(host, "localhost") == 0)
            snprintf(host, sizeof(host), "127.0.0.1");
        s4->sin_family = AF_INET;
        s4->sin_port = htons((uint16_t)port);
        if (inet_pton(AF_INET, host[0] ? host : "0.0.0.0", &s4->sin_addr) != 1)
            return ERR_INVALID;
        *len = sizeof(*s4);
    }
    return 0;
}

static char *
build_csp(const struct config *cfg)
{
    char *origins = xstrdup("");
    size_t i;

    for (i = 0; i < cfg->n_issuers; i++) {
        const char *iss = cfg->issuers[i].issuer;
        const char *p = strstr(iss, "://");
        const char *end = p ? strchr(p + 3, '/') : NULL;
        size_t n = end ? (size_t)(end - iss) : strlen(iss);
        char *next;

        if (cfg->issuers[i].kind != ISSUER_USER)
            continue;
        next = xasprintf("%s %.*s", origins, (int)n, iss);
        free(origins);
        origins = next;
    }
    {
        char *csp = xasprintf("default-src 'self'; script-src 'self'; style-src 'self' "
                              "'unsafe-inline'; img-src 'self' data:; font-src 'self'; "
                              "connect-src 'self'%s; frame-src 'self'%s; frame-ancestors 'none'; "
                              "base-uri 'self'; form-action 'self'; object-src 'none'",
                              origins, origins);

        free(origins);
        return csp;
    }
}

/* Reads a whole PEM file (at most 1 MiB) into a new string. */
static int
read_pem(const char *path, char **out, char *err, size_t err_len)
{
    FILE *f = fopen(path, "re");
    char *buf = NULL;
    size_t n;

    *out = NULL;
    if (f == NULL) {
        snprintf(err, err_len, "tls: cannot read %s: %s", path, strerror(errno));
        return ERR_SYSTEM;
    }
    buf = xmalloc(1 << 20);
    n = fread(buf, 1, (1 << 20) - 1, f);
    fclose(f);
    buf[n] = '\0';
    if (n == 0 || strstr(buf, "-----BEGIN ") == NULL) {
        snprintf(err, err_len, "tls: %s is not a PEM file", path);
        free(buf);
        return ERR_INVALID;
    }
    *out = buf;
    return 0;
}

static int
load_tls(const struct config *cfg, char **cert, char **key, char *err, size_t err_len)
{
    int r;

    if ((r = read_pem(cfg->tls_cert, cert, err, err_len)) != 0)
        return r;
    if ((r = read_pem(cfg->tls_key, key, err, err_len)) != 0) {
        free(*cert);
        *cert = NULL;
    }
    return r;
}

int
http_start(struct app *app, struct http **hp, char *err, size_t err_len)
{
    char *cert = NULL, *key = NULL;
    int r;
    struct http *h;
    struct sockaddr_storage ss;
    socklen_t sl;
    const union MHD_DaemonInfo *di;

    *hp = NULL;
    if (parse_listen(app->cfg->listen, &ss, &sl) != 0) {
        snprintf(err, err_len, "listen: cannot parse address '%s' (want host:port)",
                 app->cfg->listen);
        return ERR_INVALID;
    }
    h = xcalloc(1, sizeof(*h));
    h->app = app;
    h->csp = build_csp(app->cfg);
    random_bytes(&h->id_prefix, sizeof(h->id_prefix));
    if (app->cfg->tls_cert != NULL && (r = load_tls(app->cfg, &cert, &key, err, err_len)) != 0) {
        free(h->csp);
        free(h);
        return r;
    }
    h->guard = connguard_new(&app->cfg->limits, HTTP_TIMEOUT_S);
    {
        struct MHD_OptionItem lim[3];
        struct MHD_OptionItem tls[] = {
            {MHD_OPTION_HTTPS_MEM_CERT, 0, cert},
            {MHD_OPTION_HTTPS_MEM_KEY, 0, key},
            {MHD_OPTION_END, 0, NULL},
        };

        connguard_mhd_options(h->guard, lim);
        h->d = MHD_start_daemon(
            MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_EPOLL | MHD_ALLOW_UPGRADE |
                MHD_USE_ERROR_LOG | (ss.ss_family == AF_INET6 ? MHD_USE_IPv6 : 0) |
                (cert ? MHD_USE_TLS : 0),
            0, connguard_accept, h->guard, access_handler, h, MHD_OPTION_SOCK_ADDR,
            (struct sockaddr *)&ss,
            MHD_OPTION_THREAD_POOL_SIZE, (unsigned)HTTP_THREADS, MHD_OPTION_CONNECTION_LIMIT,
            (unsigned)HTTP_MAX_CONNECTIONS, MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)HTTP_TIMEOUT_S,
            MHD_OPTION_NOTIFY_COMPLETED, completed, h, MHD_OPTION_UNESCAPE_CALLBACK, no_unescape,
            h, MHD_OPTION_LISTENING_ADDRESS_REUSE, (unsigned)1, MHD_OPTION_ARRAY,
            cert ? tls : tls + 2, MHD_OPTION_ARRAY, lim, MHD_OPTION_END);
    }
    /* MHD copied what it needs; the key is a secret, wipe our copy */
    if (key != NULL)
        explicit_bzero(key, strlen(key));
    free(key);
    free(cert);
    if (h->d == NULL) {
        snprintf(err, err_len, "cannot listen on %s: %s", app->cfg->listen, strerror(errno));
        connguard_free(h->guard);
        free(h->csp);
        free(h);
        return ERR_SYSTEM;
    }
    di = MHD_get_daemon_info(h->d, MHD_DAEMON_INFO_BIND_PORT);
    h->port = di ? di->port : 0;
    *hp = h;
    return 0;
}

unsigned
http_port(const struct http *h)
{
    return h->port;
}

/*
 * Reload (reload.c, one at a time): the CSP follows cfg's people issuers
 * and the connection limits follow cfg->limits. A request may still be
 * sending the old CSP text, so it is kept until http_stop.
 */
void
http_config_apply(struct http *h, const struct config *cfg)
{
    char *old = atomic_exchange(&h->csp, build_csp(cfg));

    h->old_csp = xrealloc(h->old_csp, (h->n_old_csp + 1) * sizeof(*h->old_csp));
    h->old_csp[h->n_old_csp++] = old;
    connguard_limits_set(h->guard, &cfg->limits);
}

void
http_quiesce(struct http *h)
{
    if (h == NULL)
        return;
    atomic_store(&h->stopping, 1);
    if (h->d != NULL)
        MHD_quiesce_daemon(h->d);
}

int
http_stop(struct http *h, int timeout_ms)
{
    int64_t deadline = time_mono_ms() + timeout_ms;
    int left;

    if (h == NULL)
        return 0;
    while (atomic_load(&h->n_upgraded) > 0 && time_mono_ms() < deadline)
        usleep(10000);
    if ((left = atomic_load(&h->n_upgraded)) > 0)
        log_warn("%d WebSocket connections still open at shutdown", left);
    MHD_stop_daemon(h->d);
    connguard_free(h->guard);
    free(h->csp);
    while (h->n_old_csp > 0)
        free(h->old_csp[--h->n_old_csp]);
    free(h->old_csp);
    free(h);
    return left > 0 ? ERR_UNAVAILABLE : 0;
}
