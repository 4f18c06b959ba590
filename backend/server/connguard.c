/*
 * The libmicrohttpd side of `limits:` (see connguard.h). Before this, 4,200
 * sockets that each sent one header line every 8 s kept /healthz and every
 * API call waiting for as long as they stayed: the only cap was the global
 * 4,096 connections, and MHD's 60 s timeout restarts on every byte.
 *
 * - Connection cap: MHD_OPTION_NOTIFY_CONNECTION keeps a record of every
 *   connection (its peer, its socket, its phase) in a conntab, which counts
 *   connections per peer address; the accept policy refuses a peer at its
 *   cap. A peer in trustedProxies is never capped: it carries many clients.
 *   Workers accept in parallel, so a peer may pass its cap by at most the
 *   number of MHD threads.
 * - Request deadline: a request's line, headers and body must all arrive
 *   within requestDeadline of the connection's accept (or, on a kept-alive
 *   connection, of its request line: MHD_OPTION_URI_LOG_CALLBACK), and a
 *   kept-alive connection may wait idle for the idle timeout at most. A
 *   sweeper thread shuts down (shutdown(2), never close(2): MHD closes) the
 *   sockets past their limit. MHD calls NOTIFY_CLOSED before it closes the
 *   socket (daemon.c, MHD_cleanup_connections in 0.9.75), and the sweep holds
 *   the table's lock, so a socket number in the table is never a reused one.
 *   WebSockets never reach the sweep: their request ended at the upgrade.
 * - Rate: one token bucket per client address (the peer, or the address
 *   X-Forwarded-For names when the peer is a trusted proxy); an empty bucket
 *   answers 429 with Retry-After and the error envelope, in the first call of
 *   the access handler, before authentication or any other work.
 *
 * XXX a client that sends its request and then reads the reply very slowly
 * is bounded only by MHD's timeout (restarted by each byte it reads).
 */
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include "clientaddr.h"
#include "conntab.h"
#include "err.h"
#include "connguard.h"
#include "log.h"
#include "ratelimit.h"
#include "sessquota.h"
#include "util.h"
#include "xmalloc.h"

#define SWEEP_MS 250         /* how often the deadline sweep runs */
#define RATE_TABLE_MAX 65536 /* client addresses with a token bucket */
#define XFF_MAX_LEN 4096     /* X-Forwarded-For read, from the right */

/* What connguard keeps of a connection: the table's record and the full peer address. */
struct guarded {
    struct conn_rec rec; /* first: a struct conn_rec * is a struct guarded * */
    struct caddr peer;   /* the TCP peer (never X-Forwarded-For) */
};

/* trustedProxies, immutable once made; a reload adds one and keeps the old ones till free */
struct trust {
    struct trust *prev;
    size_t n;
    struct cidr v[];
};

struct connguard {
    _Atomic int cap;              /* connectionsPerClient; 0 = none */
    int64_t deadline_ms, idle_ms; /* 0 = none; deadline_ms under lock after start */
    struct trust *_Atomic trust;  /* read once per use: connguard_limits_set swaps it */
    int rps, burst;               /* what rate was made with (under lock) */
    pthread_mutex_t lock;         /* guards conns and rate */
    struct conntab *conns;
    struct ratelimit *rate;
    pthread_t sweeper;
    pthread_cond_t wake;
    int stopping; /* under lock */
    _Atomic uint64_t n_conn_refused, n_deadline[CONN__COUNT], n_rate_refused;
};

static void notify(void *cls, struct MHD_Connection *c, void **socket_context,
                   enum MHD_ConnectionNotificationCode toe);
static void *sweep_thread(void *arg);
static void sweep_one(struct conn_rec *rec, void *arg);
static struct conn_rec *rec_of(struct MHD_Connection *c);
static void client_of(struct connguard *l, struct MHD_Connection *c, const struct caddr *peer,
                      struct caddr *out);
static int send_429(struct MHD_Connection *c, int64_t retry_ms);
static void raise_nofile(void);
static struct trust *trust_new(const struct strlist *proxies, struct trust *prev);
static int trusted(struct connguard *l, const struct caddr *a);

struct connguard *
connguard_new(const struct limits_cfg *cfg, unsigned idle_timeout_s)
{
    struct connguard *l = xcalloc(1, sizeof(*l));

    l->cap = cfg->connections_per_client;
    l->deadline_ms = cfg->request_deadline_s * 1000;
    l->idle_ms = (int64_t)idle_timeout_s * 1000;
    l->trust = trust_new(&cfg->trusted_proxies, NULL);
    l->conns = conntab_new();
    l->rps = cfg->requests_per_second;
    l->burst = cfg->burst;
    l->rate = ratelimit_new(cfg->requests_per_second, cfg->burst, RATE_TABLE_MAX);
    pthread_mutex_init(&l->lock, NULL);
    pthread_cond_init(&l->wake, NULL);
    raise_nofile();
    if ((errno = pthread_create(&l->sweeper, NULL, sweep_thread, l)) != 0)
        fatal("cannot start the request-deadline thread: %s", strerror(errno));
    return l;
}

void
connguard_free(struct connguard *l)
{
    struct trust *trust;

    if (l == NULL)
        return;
    pthread_mutex_lock(&l->lock);
    l->stopping = 1;
    pthread_cond_signal(&l->wake);
    pthread_mutex_unlock(&l->lock);
    pthread_join(l->sweeper, NULL);
    conntab_free(l->conns);
    ratelimit_free(l->rate);
    pthread_cond_destroy(&l->wake);
    pthread_mutex_destroy(&l->lock);
    trust = l->trust;
    while (trust != NULL) {
        struct trust *prev = trust->prev;

        free(trust);
        trust = prev;
    }
    free(l);
}

/*
 * Reload: new limits for the connections and requests that come next. The
 * rate table starts afresh when rate or burst changed; counts of open
 * connections stay.
 */
void
connguard_limits_set(struct connguard *l, const struct limits_cfg *cfg)
{
    l->trust = trust_new(&cfg->trusted_proxies, l->trust);
    l->cap = cfg->connections_per_client;
    pthread_mutex_lock(&l->lock);
    l->deadline_ms = cfg->request_deadline_s * 1000;
    if (l->rps != cfg->requests_per_second || l->burst != cfg->burst) {
        ratelimit_free(l->rate);
        l->rate = ratelimit_new(cfg->requests_per_second, cfg->burst, RATE_TABLE_MAX);
        l->rps = cfg->requests_per_second;
        l->burst = cfg->burst;
    }
    pthread_mutex_unlock(&l->lock);
}

void
connguard_mhd_options(struct connguard *l, struct MHD_OptionItem opts[3])
{
    opts[0] = (struct MHD_OptionItem){MHD_OPTION_NOTIFY_CONNECTION, (intptr_t)notify, l};
    opts[1] = (struct MHD_OptionItem){MHD_OPTION_END, 0, NULL};
}

enum MHD_Result
connguard_accept(void *cls, const struct sockaddr *addr, socklen_t addr_len)
{
    struct connguard *l = cls;
    const struct trust *t = l->trust;
    struct caddr a;
    unsigned n;
    int cap = l->cap;

    (void)addr_len;
    if (cap <= 0 || clientaddr_from_sockaddr(addr, &a) != 0 || clientaddr_in_any(&a, t->v, t->n))
        return MHD_YES;
    a = clientaddr_key(&a);
    pthread_mutex_lock(&l->lock);
    n = conntab_count(l->conns, &a);
    pthread_mutex_unlock(&l->lock);
    if (n < (unsigned)cap)
        return MHD_YES;
    atomic_fetch_add(&l->n_conn_refused, 1);
    return MHD_NO;
}

int
connguard_hold(void *cls, const struct sockaddr *sa, int fd, void **tok)
{
    struct connguard *l = cls;
    struct guarded *g = xcalloc(1, sizeof(*g));
    int cap = l->cap;

    *tok = NULL;
    (void)clientaddr_from_sockaddr(sa, &g->peer);
    g->rec.key = clientaddr_key(&g->peer);
    g->rec.fd = fd;
    g->rec.capped = cap > 0 && !trusted(l, &g->peer);
    pthread_mutex_lock(&l->lock);
    if (g->rec.capped && conntab_count(l->conns, &g->rec.key) >= (unsigned)cap) {
        pthread_mutex_unlock(&l->lock);
        atomic_fetch_add(&l->n_conn_refused, 1);
        free(g);
        return ERR_TOO_MANY;
    }
    conntab_phase(&g->rec, CONN_RECEIVING, time_mono_ms());
    conntab_add(l->conns, &g->rec);
    pthread_mutex_unlock(&l->lock);
    *tok = g;
    return 0;
}

void
connguard_release(void *cls, void *tok)
{
    struct connguard *l = cls;
    struct guarded *g = tok;

    if (g == NULL)
        return;
    pthread_mutex_lock(&l->lock); /* after this the sweep cannot touch g->rec.fd */
    conntab_del(l->conns, &g->rec);
    pthread_mutex_unlock(&l->lock);
    free(g);
}

int
connguard_access(struct connguard *l, struct MHD_Connection *c, int first, size_t upload_size)
{
    struct conn_rec *rec = rec_of(c);
    struct caddr client;
    int64_t retry_ms = 0;
    int r;

    if (rec == NULL)
        return 0;
    if (!first) {
        if (upload_size == 0) { /* the whole request is in: its deadline ends */
            pthread_mutex_lock(&l->lock);
            conntab_phase(rec, CONN_HANDLING, time_mono_ms());
            pthread_mutex_unlock(&l->lock);
        }
        return 0;
    }
    client_of(l, c, &((struct guarded *)(void *)rec)->peer, &client);
    client = clientaddr_key(&client);
    pthread_mutex_lock(&l->lock);
    r = ratelimit_take(l->rate, &client, time_mono_ms(), &retry_ms);
    if (r != 0)
        conntab_phase(rec, CONN_HANDLING, time_mono_ms()); /* MHD reads no more of it */
    pthread_mutex_unlock(&l->lock);
    if (r == 0)
        return 0;
    atomic_fetch_add(&l->n_rate_refused, 1);
    if (log_min_level <= LOG_DEBUG) {
        char s[CLIENTADDR_STRLEN];

        clientaddr_format(&client, s);
        log_debug("rate limit: %s must wait %" PRId64 " ms", s, retry_ms);
    }
    return send_429(c, retry_ms);
}

void
connguard_request_done(struct connguard *l, struct MHD_Connection *c)
{
    struct conn_rec *rec = rec_of(c);

    if (rec == NULL)
        return;
    pthread_mutex_lock(&l->lock);
    conntab_phase(rec, CONN_IDLE, time_mono_ms());
    pthread_mutex_unlock(&l->lock);
}

void
connguard_metrics_write(struct connguard *l, FILE *f)
{
    size_t n_clients;

    pthread_mutex_lock(&l->lock);
    n_clients = ratelimit_count(l->rate);
    pthread_mutex_unlock(&l->lock);
    fprintf(f,
            "# HELP airlock_limit_connections_refused_total Connections refused: the client "
            "address was at limits.connectionsPerClient.\n"
            "# TYPE airlock_limit_connections_refused_total counter\n"
            "airlock_limit_connections_refused_total %llu\n"
            "# HELP airlock_limit_deadline_closed_total Connections shut down for taking too "
            "long: a request past limits.requestDeadline, or an idle connection past the idle "
            "timeout.\n"
            "# TYPE airlock_limit_deadline_closed_total counter\n"
            "airlock_limit_deadline_closed_total{phase=\"request\"} %llu\n"
            "airlock_limit_deadline_closed_total{phase=\"idle\"} %llu\n"
            "# HELP airlock_limit_requests_refused_total Requests answered 429: the client "
            "was over limits.requestsPerSecond and limits.burst.\n"
            "# TYPE airlock_limit_requests_refused_total counter\n"
            "airlock_limit_requests_refused_total %llu\n"
            "# HELP airlock_limit_sessions_refused_total Session requests answered 429: the "
            "person had limits.sessionsPerUser (or the template's maxOpenSessionsPerUser) "
            "open sessions.\n"
            "# TYPE airlock_limit_sessions_refused_total counter\n"
            "airlock_limit_sessions_refused_total %llu\n"
            "# HELP airlock_limit_rate_clients Client addresses with a token bucket.\n"
            "# TYPE airlock_limit_rate_clients gauge\n"
            "airlock_limit_rate_clients %zu\n",
            (unsigned long long)atomic_load(&l->n_conn_refused),
            (unsigned long long)atomic_load(&l->n_deadline[CONN_RECEIVING]),
            (unsigned long long)atomic_load(&l->n_deadline[CONN_IDLE]),
            (unsigned long long)atomic_load(&l->n_rate_refused),
            (unsigned long long)sessquota_refused(), n_clients);
}

/* ------------------------------------------------------------------------ */
/* MHD callbacks                                                             */
/* ------------------------------------------------------------------------ */

/* Keeps a record (new at STARTED, freed at CLOSED) of each connection in the table. */
static void
notify(void *cls, struct MHD_Connection *c, void **socket_context,
       enum MHD_ConnectionNotificationCode toe)
{
    struct connguard *l = cls;
    struct conn_rec *rec = *socket_context;

    if (toe == MHD_CONNECTION_NOTIFY_STARTED) {
        const union MHD_ConnectionInfo *ai =
            MHD_get_connection_info(c, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
        const union MHD_ConnectionInfo *fi =
            MHD_get_connection_info(c, MHD_CONNECTION_INFO_CONNECTION_FD);

        struct guarded *g = xcalloc(1, sizeof(*g));

        rec = &g->rec;
        if (ai != NULL)
            (void)clientaddr_from_sockaddr(ai->client_addr, &g->peer);
        rec->key = clientaddr_key(&g->peer);
        rec->fd = fi != NULL ? fi->connect_fd : -1;
        rec->capped = l->cap > 0 && !trusted(l, &g->peer);
        pthread_mutex_lock(&l->lock);
        conntab_phase(rec, CONN_RECEIVING, time_mono_ms());
        conntab_add(l->conns, rec);
        pthread_mutex_unlock(&l->lock);
        *socket_context = rec;
        return;
    }
    if (rec == NULL)
        return;
    pthread_mutex_lock(&l->lock);
    conntab_del(l->conns, rec);
    pthread_mutex_unlock(&l->lock);
    free((struct guarded *)(void *)rec);
    *socket_context = NULL;
}

/*
 * A request line arrived: on a kept-alive connection this starts the next
 * request's deadline. Returns NULL: http.c's access handler starts from a
 * NULL request context.
 */
void
connguard_request_line(struct connguard *l, struct MHD_Connection *c)
{
    struct conn_rec *rec = rec_of(c);

    if (rec == NULL)
        return;
    pthread_mutex_lock(&l->lock);
    if (rec->phase != CONN_RECEIVING)
        conntab_phase(rec, CONN_RECEIVING, time_mono_ms());
    pthread_mutex_unlock(&l->lock);
}

/* ------------------------------------------------------------------------ */
/* Helpers                                                                   */
/* ------------------------------------------------------------------------ */

static void *
sweep_thread(void *arg)
{
    struct connguard *l = arg;

    pthread_setname_np(pthread_self(), "airlock-limits");
    pthread_mutex_lock(&l->lock);
    while (!l->stopping) {
        struct timespec ts;

        clock_gettime(CLOCK_REALTIME, &ts);
        ts.tv_nsec += SWEEP_MS * 1000000L;
        if (ts.tv_nsec >= 1000000000L) {
            ts.tv_sec++;
            ts.tv_nsec -= 1000000000L;
        }
        pthread_cond_timedwait(&l->wake, &l->lock, &ts);
        if (!l->stopping)
            conntab_sweep(l->conns, time_mono_ms(), l->deadline_ms, l->idle_ms, sweep_one, l);
    }
    pthread_mutex_unlock(&l->lock);
    return NULL;
}

/* Called under l->lock, so MHD cannot have closed rec->fd (see the file comment). */
static void
sweep_one(struct conn_rec *rec, void *arg)
{
    struct connguard *l = arg;

    atomic_fetch_add(&l->n_deadline[rec->phase], 1);
    if (rec->fd >= 0)
        shutdown(rec->fd, SHUT_RDWR);
}

static struct conn_rec *
rec_of(struct MHD_Connection *c)
{
    const union MHD_ConnectionInfo *ci =
        MHD_get_connection_info(c, MHD_CONNECTION_INFO_SOCKET_CONTEXT);

    return ci != NULL ? ci->socket_context : NULL;
}

static enum MHD_Result
xff_add(void *cls, enum MHD_ValueKind kind, const char *key, const char *value)
{
    char **acc = cls, *next;

    (void)kind;
    if (strcasecmp(key, "X-Forwarded-For") != 0 || value == NULL)
        return MHD_YES;
    next = *acc ? xasprintf("%s,%s", *acc, value) : xstrdup(value);
    free(*acc);
    *acc = next;
    return MHD_YES;
}

/*
 * The client's address: the peer, or what X-Forwarded-For says when the peer
 * is trusted. Every X-Forwarded-For line counts, in order (a proxy may add a
 * line rather than append to the client's); only the last XFF_MAX_LEN bytes
 * are read, which the right-to-left walk needs at most.
 */
static void
client_of(struct connguard *l, struct MHD_Connection *c, const struct caddr *peer,
          struct caddr *out)
{
    const struct trust *t = l->trust;
    char *xff = NULL;
    const char *tail;
    size_t len;

    *out = *peer;
    if (t->n == 0 || !clientaddr_in_any(peer, t->v, t->n))
        return;
    MHD_get_connection_values(c, MHD_HEADER_KIND, xff_add, &xff);
    if (xff == NULL)
        return;
    len = strlen(xff);
    tail = len > XFF_MAX_LEN ? xff + len - XFF_MAX_LEN : xff;
    if (tail != xff && (tail = strchr(tail, ',')) != NULL)
        tail++;                                               /* start at a whole entry */
    clientaddr_pick(peer, tail ? tail : "", t->v, t->n, out); /* one list throughout */
    free(xff);
}

/* Queues the 429 (error envelope, Retry-After in whole seconds). Returns 1. */
static int
send_429(struct MHD_Connection *c, int64_t retry_ms)
{
    int64_t secs = (retry_ms + 999) / 1000;
    char retry[24];
    char *body;
    struct MHD_Response *r;

    if (secs < 1)
        secs = 1;
    snprintf(retry, sizeof(retry), "%" PRId64, secs);
    body = xasprintf("{\"error\":\"too many requests from this client: retry in %" PRId64
                     " s\",\"code\":\"%s\"}",
                     secs, err_code(ERR_TOO_MANY));
    r = MHD_create_response_from_buffer(strlen(body), body, MHD_RESPMEM_MUST_FREE);
    MHD_add_response_header(r, "Content-Type", "application/json");
    MHD_add_response_header(r, "Cache-Control", "no-store");
    MHD_add_response_header(r, "Retry-After", retry);
    MHD_add_response_header(r, "X-Content-Type-Options", "nosniff");
    MHD_add_response_header(r, "Referrer-Policy", "no-referrer");
    MHD_add_response_header(r, "X-Frame-Options", "DENY");
    (void)MHD_queue_response(c, 429, r);
    MHD_destroy_response(r);
    return 1;
}

/* Each connection is a descriptor: use all the process may have. */
static void
raise_nofile(void)
{
    struct rlimit rl;

    if (getrlimit(RLIMIT_NOFILE, &rl) != 0 || rl.rlim_cur >= rl.rlim_max)
        return;
    rl.rlim_cur = rl.rlim_max;
    if (setrlimit(RLIMIT_NOFILE, &rl) != 0)
        log_warn("cannot raise the open-file limit: %s", strerror(errno));
}

/* A new trust list from proxies (checked by config_check.c); prev is kept for free. */
static struct trust *
trust_new(const struct strlist *proxies, struct trust *prev)
{
    struct trust *t = xcalloc(1, sizeof(*t) + (proxies->n + 1) * sizeof(t->v[0]));
    size_t i;

    t->prev = prev;
    t->n = proxies->n;
    for (i = 0; i < t->n; i++)
        (void)clientaddr_cidr_parse(proxies->v[i], &t->v[i]); /* checked */
    return t;
}

/* 1 if a is in trustedProxies (one load of the current list). */
static int
trusted(struct connguard *l, const struct caddr *a)
{
    const struct trust *t = l->trust;

    return t->n > 0 && clientaddr_in_any(a, t->v, t->n);
}
