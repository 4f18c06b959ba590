/*
 * libmicrohttpd glue, and only that: the daemon and its listening socket,
 * the access handler (body accumulation with a limit, the request's size
 * limits), one dispatch through the route table (route.c), replies in the
 * error envelope, and WebSocket upgrades. What a request means lives in the
 * handlers (api_*.c, static.c, metrics.c).
 *
 * MHD calls the access handler several times per request: first with no
 * data (note the start, refuse an announced body over API_MAX_BODY), then
 * with body chunks (accumulate up to the limit), then once with
 * *upload_data_size == 0 (dispatch). MHD_OPTION_UNESCAPE_CALLBACK leaves the
 * URL undecoded: route.c decodes each matched segment on its own.
 *
 * Order of checks (DESIGN.md 6): size limits (414, 431) -> route (404, 405)
 * -> authenticate (401) -> body (413, 400) -> handler (find 404 -> authorise
 * 403 -> state 409). /metrics counts every reply under its route row with
 * the status MHD actually queued.
 *
 * libmicrohttpd answers a few requests itself: ones that are not HTTP (a
 * malformed request line, a bad Content-Length or chunk encoding, an HTTP
 * version other than 1.x) and a header block larger than its per-connection
 * memory pool (HTTP_POOL_SIZE, well above our own limits). mhderr.c puts
 * those answers in the envelope too.
 */
#include <arpa/inet.h>
#include <errno.h>
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
#include <unistd.h>

#include <microhttpd.h>

#include "api.h"
#include "err.h"
#include "http.h"
#include "connguard.h"
#include "reload.h"
#include "tlsfront.h"
#include "log.h"
#include "metrics.h"
#include "mhderr.h"
#include "route.h"
#include "util.h"
#include "ws.h"
#include "xmalloc.h"

#define HTTP_THREADS 4
#define HTTP_MAX_CONNECTIONS 4096
#define HTTP_TIMEOUT_S 60
#define HTTP_MAX_URI 8192            /* request target (path and query): 414 above */
#define HTTP_MAX_HEADERS (32 * 1024) /* request line and headers: 431 above */
#define HTTP_POOL_SIZE (64 * 1024)   /* MHD's per-connection memory: above both limits */
#define HTTP_DRAIN_POLL_MS 10

struct http {
    struct app *app;
    struct MHD_Daemon *d;
    unsigned port;
    _Atomic int n_upgraded;
    _Atomic int stopping; /* set by http_quiesce: no new WebSocket starts */
    unsigned id_prefix;   /* request ids: random prefix + counter */
    _Atomic unsigned next_id;
    struct metrics *metrics;
    struct tlsfront *front;  /* built-in TLS (tlsfront.c), or NULL */
    struct connguard *guard; /* connguard.c: connection cap, request deadline, rate */
};

/* One request's state across the access handler's calls; freed in completed(). */
struct req_ctx {
    char *body;
    size_t len;
    size_t uri_len; /* the raw request target, query included */
    int started;    /* the first (header-only) call was seen */
    int too_large;
    size_t max_body; /* API_MAX_BODY, or ROUTE_BYTES_MAX for a ROUTE_BYTES row */
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

const char *const http_security_headers[][2] = {
    {"X-Content-Type-Options", "nosniff"},
    {"Referrer-Policy", "no-referrer"},
    {"X-Frame-Options", "DENY"},
    {"X-Airlock-Version", AIRLOCK_VERSION}, /* httpc_call compares it with its own */
    {NULL, NULL},
};

static void
add_security_headers(struct MHD_Response *r)
{
    size_t i;

    for (i = 0; http_security_headers[i][0] != NULL; i++)
        MHD_add_response_header(r, http_security_headers[i][0], http_security_headers[i][1]);
}

/* Queues status with buf (taken: MHD frees it) as the body. */
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
send_json(struct MHD_Connection *c, int status, const json_t *j)
{
    char *s = json_dumps(j, JSON_COMPACT);

    if (s == NULL) /* cannot happen for the envelope: api_error_json keeps it UTF-8 */
        s = xstrdup("{\"error\":\"internal error\",\"code\":\"INTERNAL_ERROR\"}");
    return send_buf(c, status, "application/json", s, strlen(s), "no-store");
}

/* Queues the error envelope for r (msg NULL: the table's text). */
static enum MHD_Result
send_error(struct MHD_Connection *c, int r, const char *msg, const json_t *details)
{
    json_t *j = api_error_json(r, msg, details);
    enum MHD_Result ret = send_json(c, api_status_for(r), j);

    json_decref(j);
    return ret;
}

/* Queues rep->has_file's file (taken) with its headers. */
static enum MHD_Result
send_file(struct MHD_Connection *c, struct api_reply *rep, int status)
{
    struct MHD_Response *r = MHD_create_response_from_fd(rep->file_size, rep->file_fd);
    enum MHD_Result ret;

    rep->has_file = 0; /* the response owns the fd, even when it could not be created */
    if (r == NULL) {
        close(rep->file_fd);
        return send_error(c, ERR_SYSTEM, "cannot send the file", NULL);
    }
    MHD_add_response_header(r, "Content-Type", rep->content_type);
    MHD_add_response_header(r, "Cache-Control", rep->cache ? rep->cache : "no-store");
    if (rep->csp != NULL)
        MHD_add_response_header(r, "Content-Security-Policy", rep->csp);
    add_security_headers(r);
    ret = MHD_queue_response(c, (unsigned)status, r);
    MHD_destroy_response(r);
    return ret;
}

/* Queues a handler's successful reply: a file, text already rendered, or rep->json. */
static enum MHD_Result
send_reply(struct MHD_Connection *c, struct api_reply *rep)
{
    int status = rep->status ? rep->status : 200;
    const char *type = rep->content_type ? rep->content_type : "application/json";
    enum MHD_Result ret;

    if (rep->has_file)
        return send_file(c, rep, status);
    if (rep->body != NULL) {
        ret = send_buf(c, status, type, rep->body, rep->body_len,
                       rep->cache ? rep->cache : "no-store");
        rep->body = NULL; /* MHD frees it */
        return ret;
    }
    if (rep->json == NULL)
        rep->json = json_object();
    return send_json(c, status, rep->json);
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

/* An upgraded connection no thread will serve: closed, and the job freed. */
static void
upgrade_refuse(struct upgrade_thread_arg *a)
{
    upgraded_close(a->u);
    if (a->job->arg_free)
        a->job->arg_free(a->job->arg);
    free(a->job);
    free(a);
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

    (void)c;
    (void)req_cls;
    u->fd = sock;
    u->urh = urh;
    if (extra_in_size > 0) {
        u->extra = xmalloc(extra_in_size);
        memcpy(u->extra, extra_in, extra_in_size);
        u->extra_len = extra_in_size;
    }
    /* with built-in TLS sock is MHD's end of tlsfront's pair; tlsfront.c sets it on the client's
     * socket */
    setsockopt(sock, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    a->job = job;
    a->u = u;
    if (atomic_load(&job->h->stopping)) { /* draining: refuse new WebSockets */
        upgrade_refuse(a);
        return;
    }
    atomic_fetch_add(&job->h->n_upgraded, 1);
    if (pthread_create(&th, NULL, upgrade_thread, a) != 0) {
        log_warn("cannot start a WebSocket thread: %s", strerror(errno));
        atomic_fetch_sub(&job->h->n_upgraded, 1);
        upgrade_refuse(a);
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

/* ---------------------------------------------------------------- dispatch */

/*
 * The size limits MHD leaves to us: ERR_URI_TOO_LONG, ERR_HEADERS_TOO_LARGE
 * (with rep->error set) or 0.
 */
static int
check_sizes(struct MHD_Connection *c, const struct req_ctx *ctx, struct api_reply *rep)
{
    const union MHD_ConnectionInfo *ci =
        MHD_get_connection_info(c, MHD_CONNECTION_INFO_REQUEST_HEADER_SIZE);

    if (ctx->uri_len > HTTP_MAX_URI)
        return api_fail(rep, ERR_URI_TOO_LONG, "the request target is longer than %d bytes",
                        HTTP_MAX_URI);
    if (ci != NULL && ci->header_size > HTTP_MAX_HEADERS)
        return api_fail(rep, ERR_HEADERS_TOO_LARGE, "the request headers are larger than %d bytes",
                        HTTP_MAX_HEADERS);
    return 0;
}

/* Finds the route and runs it up to the handler; returns the handler's r. */
static int
run_route(struct http *h, struct MHD_Connection *c, struct req_ctx *ctx, struct api_req *req,
          struct api_reply *rep, size_t *row, char accept[29])
{
    const struct route *rt;
    int r;

    if ((r = check_sizes(c, ctx, rep)) != 0)
        return r;
    if ((r = route_find(req->method, req->path, row, req->params)) != 0) {
        if (r == ERR_INVALID)
            return api_fail(rep, r, "bad percent-encoding in path (or not UTF-8)");
        return api_fail(rep, r, r == ERR_METHOD ? "method not allowed" : "no such endpoint");
    }
    rt = route_at(*row);
    req->metrics = h->metrics;
    if ((rt->flags & ROUTE_AUTH) &&
        (r = api_authenticate(req, rep, api_bearer(req), (rt->flags & ROUTE_AGENT_OK) != 0)) != 0)
        return r;
    if (ctx->too_large && !(rt->flags & ROUTE_RAW))
        return api_fail(rep, ERR_TOO_LARGE, "request body is larger than %zu bytes", ctx->max_body);
    if ((rt->flags & ROUTE_WS) && !ws_handshake_ok(c, accept))
        return api_fail(rep, ERR_INVALID, "this endpoint needs a WebSocket upgrade");
    if (rt->flags & ROUTE_BYTES) {
        req->raw = ctx->body;
        req->raw_len = ctx->len;
    } else if (ctx->len > 0 && !(rt->flags & ROUTE_RAW)) {
        json_error_t jerr;

        req->body = json_loadb(ctx->body, ctx->len, JSON_REJECT_DUPLICATES, &jerr);
        if (req->body == NULL)
            return api_fail(rep, ERR_INVALID,
                            "request body is not valid JSON: %s (line %d, column %d)", jerr.text,
                            jerr.line, jerr.column);
    }
    return rt->fn(req, rep);
}

/* Answers one request; *row gets its route row for the metrics. */
static enum MHD_Result
dispatch(struct http *h, struct MHD_Connection *c, const char *url, const char *method,
         struct req_ctx *ctx, size_t *row)
{
    struct api_req req;
    struct api_reply rep;
    enum MHD_Result ret;
    char accept[29] = "";
    int r;

    memset(&req, 0, sizeof(req));
    memset(&rep, 0, sizeof(rep));
    req.app = h->app;
    req.conn = c;
    req.method = method;
    req.path = url;
    req.now = time_now();
    r = run_route(h, c, ctx, &req, &rep, row, accept);
    if (r == 0 && rep.upgrade != NULL) {
        ret = send_upgrade(h, c, &rep, accept);
    } else if (r != 0) {
        if (r == ERR_INTERNAL || r == ERR_DB || r == ERR_SYSTEM)
            log_warn_r(r, "%s %s: %s", method, url, rep.error ? rep.error : "");
        ret = send_error(c, r, rep.error, rep.details);
    } else {
        ret = send_reply(c, &rep);
    }
    api_reply_cleanup(&rep);
    api_req_cleanup(&req);
    return ret;
}

/* The status MHD queued on c (500 when nothing could be queued). */
static int
queued_status(struct MHD_Connection *c)
{
    const union MHD_ConnectionInfo *ci =
        MHD_get_connection_info(c, MHD_CONNECTION_INFO_HTTP_STATUS);

    return ci != NULL ? (int)ci->http_status : 500;
}

/* A 429 from the rate limit, counted under the route the request was for. */
static void
limited_observe(struct http *h, const char *method, const char *url, const struct req_ctx *ctx)
{
    char *params[ROUTE_MAX_PARAMS] = {NULL};
    size_t row = route_count(), i;

    (void)route_find(method, url, &row, params); /* row stays route_count(): "other" */
    for (i = 0; i < ROUTE_MAX_PARAMS; i++)
        free(params[i]);
    metrics_observe(h->metrics, row, 429, ctx != NULL ? now_us() - ctx->start_us : 0);
}

/* mhderr_observe_fn: libmicrohttpd's own answers (no route: "other"). */
static void
mhd_answer_observe(void *arg, int status)
{
    struct http *h = arg;

    metrics_observe(h->metrics, route_count(), status, 0);
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
    size_t row = route_count();
    int status;

    (void)version;
    if (connguard_access(h->guard, c, ctx == NULL || !ctx->started, *upload_data_size)) {
        limited_observe(h, method, url, ctx); /* 429 queued */
        return MHD_YES;
    }
    if (ctx == NULL) { /* uri_log sets it up; this is only a fallback */
        ctx = xcalloc(1, sizeof(*ctx));
        ctx->start_us = now_us();
        ctx->uri_len = strlen(url);
        *req_cls = ctx;
    }
    if (!ctx->started) {
        const char *cl = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Content-Length");
        uint64_t n;

        ctx->started = 1;
        ctx->max_body = route_body_max(method, url);
        if (cl != NULL && (parse_uint(cl, UINT64_MAX, &n) != 0 || n > ctx->max_body))
            ctx->too_large = 1;
        return MHD_YES;
    }
    if (*upload_data_size > 0) {
        if (!ctx->too_large && ctx->len + *upload_data_size <= ctx->max_body) {
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
    ret = dispatch(h, c, url, method, ctx, &row);
    status = ret == MHD_YES ? queued_status(c) : 500;
    metrics_observe(h->metrics, row, status, now_us() - ctx->start_us);
    log_debug("%s %s -> %d", method, url, status);
    log_set_request_id(NULL);
    return ret;
}

/* MHD_OPTION_URI_LOG_CALLBACK: a request line arrived; uri is the raw target. */
static void *
uri_log(void *cls, const char *uri, struct MHD_Connection *c)
{
    struct http *h = cls;
    struct req_ctx *ctx = xcalloc(1, sizeof(*ctx));

    connguard_request_line(h->guard, c);
    ctx->start_us = now_us();
    ctx->uri_len = strlen(uri);
    return ctx;
}

static void
completed(void *cls, struct MHD_Connection *c, void **req_cls, enum MHD_RequestTerminationCode tc)
{
    struct req_ctx *ctx = *req_cls;

    (void)tc;
    connguard_request_done(((struct http *)cls)->guard, c);
    if (ctx != NULL) {
        free(ctx->body);
        free(ctx);
        *req_cls = NULL;
    }
}

static size_t
no_unescape(void *cls, struct MHD_Connection *c, char *s)
{
    (void)cls;
    (void)c;
    return strlen(s);
}

/* MHD_OPTION_EXTERNAL_LOGGER: libmicrohttpd's own messages, as our log lines. */
static void mhd_log(void *cls, const char *fmt, va_list ap) __attribute__((format(printf, 2, 0)));

static void
mhd_log(void *cls, const char *fmt, va_list ap)
{
    char msg[512];
    size_t n;

    (void)cls;
    vsnprintf(msg, sizeof(msg), fmt, ap);
    n = strlen(msg);
    while (n > 0 && (msg[n - 1] == '\n' || msg[n - 1] == '\r'))
        msg[--n] = '\0';
    if (strncmp(msg, "Closing connection (failed to queue error response)", 51) == 0 &&
        mhderr_take_answered())
        return; /* mhderr.c answered in its place */
    log_warn("libmicrohttpd: %s", msg);
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

/*
 * Opens the listening socket for cfg->listen in *fdp. SO_REUSEADDR only (a
 * restart may bind over connections in TIME_WAIT); never SO_REUSEPORT, which
 * let a second airlockd listen on the same port and take half the requests.
 */
static int
listen_socket(const char *listen_addr, int *fdp, char *err, size_t err_len)
{
    struct sockaddr_storage ss;
    socklen_t sl = 0;
    int fd = -1, one = 1, r = ERR_INTERNAL;

    *fdp = -1;
    if (parse_listen(listen_addr, &ss, &sl) != 0) {
        snprintf(err, err_len, "listen: cannot parse address '%s' (want host:port)", listen_addr);
        return ERR_INVALID;
    }
    if ((fd = socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0)) < 0 ||
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) != 0 ||
        (ss.ss_family == AF_INET6 &&
         setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one)) != 0)) {
        snprintf(err, err_len, "cannot listen on %s: %s", listen_addr, strerror(errno));
        r = ERR_SYSTEM;
        goto out;
    }
    if (bind(fd, (struct sockaddr *)&ss, sl) != 0 || listen(fd, SOMAXCONN) != 0) {
        snprintf(err, err_len, "cannot listen on %s: %s", listen_addr,
                 errno == EADDRINUSE ? "address in use (is another airlockd running?)"
                                     : strerror(errno));
        r = ERR_SYSTEM;
        goto out;
    }
    *fdp = fd;
    fd = -1;
    r = 0;
out:
    if (fd >= 0)
        close(fd);
    return r;
}

/* tlsfront's handoff: MHD takes fd (and closes it if it refuses the connection). */
static int
front_add(void *arg, int fd, const struct sockaddr *sa, socklen_t sl)
{
    struct http *h = arg;

    return MHD_add_connection(h->d, fd, sa, sl) == MHD_YES ? 0 : ERR_UNAVAILABLE;
}

/* metrics_write_fn: connguard's airlock_limit_* lines and the reload counters. */
static void
edge_metrics(void *arg, FILE *f)
{
    connguard_metrics_write(arg, f);
    reload_metrics_write(f);
}

/*
 * Starts MHD on the listening socket fd (taken on success), or, with
 * built-in TLS (fd < 0), with no socket of its own: tlsfront.c accepts and
 * hands it plaintext connections.
 */
static struct MHD_Daemon *
daemon_start(struct http *h, int fd)
{
    struct MHD_OptionItem lim[3];
    struct MHD_OptionItem lsock[] = {
        {MHD_OPTION_LISTEN_SOCKET, fd, NULL},
        {MHD_OPTION_END, 0, NULL},
    };

    connguard_mhd_options(h->guard, lim);
    return MHD_start_daemon(
        MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_EPOLL | MHD_ALLOW_UPGRADE | MHD_USE_ERROR_LOG |
            (fd < 0 ? MHD_USE_NO_LISTEN_SOCKET | MHD_USE_ITC : 0),
        /* the logger first: MHD logs with its default until it has seen it */
        0, connguard_accept, h->guard, access_handler, h, MHD_OPTION_EXTERNAL_LOGGER, mhd_log, NULL,
        MHD_OPTION_ARRAY, fd < 0 ? lsock + 1 : lsock, MHD_OPTION_THREAD_POOL_SIZE,
        (unsigned)HTTP_THREADS, MHD_OPTION_CONNECTION_LIMIT, (unsigned)HTTP_MAX_CONNECTIONS,
        MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)HTTP_TIMEOUT_S, MHD_OPTION_CONNECTION_MEMORY_LIMIT,
        (size_t)HTTP_POOL_SIZE, MHD_OPTION_URI_LOG_CALLBACK, uri_log, h,
        MHD_OPTION_NOTIFY_COMPLETED, completed, h, MHD_OPTION_UNESCAPE_CALLBACK, no_unescape, h,
        MHD_OPTION_ARRAY, lim, MHD_OPTION_END);
}

int
http_start(struct app *app, struct http **hp, char *err, size_t err_len)
{
    struct http *h = NULL;
    struct sockaddr_storage ss;
    socklen_t sl = sizeof(ss);
    int fd = -1, r = ERR_INTERNAL;

    *hp = NULL;
    if ((r = listen_socket(app->cfg->listen, &fd, err, err_len)) != 0)
        goto out;
    if (getsockname(fd, (struct sockaddr *)&ss, &sl) != 0) {
        snprintf(err, err_len, "cannot listen on %s: %s", app->cfg->listen, strerror(errno));
        r = ERR_SYSTEM;
        goto out;
    }
    h = xcalloc(1, sizeof(*h));
    h->app = app;
    h->metrics = metrics_new();
    h->guard = connguard_new(&app->cfg->limits, HTTP_TIMEOUT_S);
    metrics_set_extra(h->metrics, edge_metrics, h->guard);
    mhderr_set_observer(mhd_answer_observe, h);
    random_bytes(&h->id_prefix, sizeof(h->id_prefix));
    h->port = ntohs(ss.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&ss)->sin6_port
                                             : ((struct sockaddr_in *)&ss)->sin_port);
    /* built-in TLS: tlsfront.c owns the port and hands MHD plaintext */
    if (app->cfg->tls_cert != NULL) {
        if ((r = tlsfront_new(app->cfg->tls_cert, app->cfg->tls_key, fd, front_add, h, &h->front,
                              err, err_len)) != 0)
            goto out;
        fd = -1; /* the front's now */
        tlsfront_set_gate(h->front,
                          &(struct tlsfront_gate){connguard_hold, connguard_release, h->guard});
    }
    if ((h->d = daemon_start(h, fd)) == NULL) {
        /* MHD may have closed fd on its way out: do not close it again (we exit) */
        fd = -1;
        snprintf(err, err_len, "cannot serve on %s (libmicrohttpd refused to start)",
                 app->cfg->listen);
        r = ERR_SYSTEM;
        goto out;
    }
    fd = -1; /* MHD's now */
    if (h->front != NULL && tlsfront_start(h->front) != 0) {
        snprintf(err, err_len, "cannot listen on %s: %s", app->cfg->listen, strerror(errno));
        r = ERR_SYSTEM;
        goto out;
    }
    *hp = h;
    h = NULL;
    r = 0;
out:
    if (fd >= 0)
        close(fd);
    if (h != NULL) {
        tlsfront_quiesce(h->front);
        if (h->d != NULL)
            MHD_stop_daemon(h->d);
        tlsfront_free(h->front);
        connguard_free(h->guard);
        metrics_free(h->metrics);
    }
    free(h);
    return r;
}

unsigned
http_port(const struct http *h)
{
    return h->port;
}

/*
 * Reload (reload.c, one at a time): the connection limits follow
 * cfg->limits. (The CSP needs nothing: static.c builds it from the config
 * each request reads.)
 */
void
http_config_apply(struct http *h, const struct config *cfg)
{
    connguard_limits_set(h->guard, &cfg->limits);
}

void
http_quiesce(struct http *h)
{
    MHD_socket fd;

    if (h == NULL)
        return;
    atomic_store(&h->stopping, 1);
    tlsfront_quiesce(h->front); /* with built-in TLS the port is the front's: closed here */
    /* MHD hands the listening socket back: closing it makes the port free at once */
    if (h->d != NULL && (fd = MHD_quiesce_daemon(h->d)) != MHD_INVALID_SOCKET)
        close(fd);
}

int
http_stop(struct http *h, int timeout_ms)
{
    int64_t deadline = time_mono_ms() + timeout_ms;
    int left;

    if (h == NULL)
        return 0;
    /*
     * A poll with a deadline rather than a condition variable: the upgrade
     * threads are detached and each only decrements a counter as it ends,
     * and this runs once, at shutdown, for at most timeout_ms.
     */
    while (atomic_load(&h->n_upgraded) > 0 && time_mono_ms() < deadline)
        usleep(HTTP_DRAIN_POLL_MS * 1000);
    if ((left = atomic_load(&h->n_upgraded)) > 0)
        log_warn("%d WebSocket connections still open at shutdown", left);
    tlsfront_quiesce(h->front); /* no MHD_add_connection from here on */
    MHD_stop_daemon(h->d);
    tlsfront_free(h->front);
    connguard_free(h->guard);
    metrics_free(h->metrics);
    free(h);
    return left > 0 ? ERR_UNAVAILABLE : 0;
}
