/*
 * Built-in TLS, terminated in airlockd with OpenSSL.
 *
 * libmicrohttpd 0.9.75 can serve HTTPS itself (GnuTLS), but it relays an
 * upgraded TLS connection (every WebSocket: the relay, the agents' control
 * channels) through an internal socketpair a few bytes at a time: SSH over
 * the relay ran at 0.7 MiB/s (docs/benchmarks.md, relay-tls). So with
 * `tls: {cert, key}` airlockd owns the TLS port and MHD never sees TLS:
 *
 *   client ==TLS/TCP==> [conn thread: OpenSSL on memory BIOs] <--TCP pair--> MHD (plain HTTP)
 *
 * The accept thread takes each connection (TCP_NODELAY, a cap on how many
 * are open), asks the gate (http.c wires in connguard: the per-client cap
 * counts connections in their handshake, and its deadline sweep shuts them
 * down) and starts a thread for it. That thread does the handshake
 * under a deadline (a client that stalls or speaks garbage holds only its
 * own thread), then hands one end of a new loopback TCP pair to MHD through
 * the add callback (MHD_add_connection with the real client address, so
 * per-client limits and logs see the client), then pumps both directions
 * in one poll() loop. OpenSSL works on memory BIOs and the thread does the
 * socket I/O itself: one recv of up to 256 KiB feeds many records, and all
 * the records one SSL_write makes leave in one send (with the socket BIO,
 * every record cost a syscall or two; on this kind of virtual machine
 * syscalls and wake-ups are most of the cost, see docs/benchmarks.md).
 * Buffers start at 16 KiB and grow to 256 KiB under bulk traffic only.
 * WebSocket upgrades need nothing special: MHD hands its end of the pair
 * to relay.c like any TCP connection. Why a TCP pair and not a socketpair:
 * see pair_listen.
 *
 * Half-close goes through in both directions, so each side learns of the
 * other's end at once (under MHD's own TLS the relay only noticed a gone
 * participant at its next ping): the client's close_notify or FIN becomes
 * shutdown(SHUT_WR) on the pair; MHD closing its end becomes our
 * close_notify and a FIN to the client, after which we wait a moment
 * (TLSFRONT_LINGER_MS) for the client's EOF so that it gets the last bytes
 * rather than a reset.
 *
 * Shutdown: tlsfront_quiesce stops accepting and stops handing over (so no
 * thread calls MHD_add_connection once MHD starts stopping); MHD then
 * closes its ends, which ends the pumps; tlsfront_free gives them a moment,
 * wakes whatever is left through the conn_stop eventfd, waits until every
 * thread is gone, and only then frees the context.
 *
 * One thread per connection keeps the TLS state machine simple (an SSL
 * object belongs to exactly one thread); connections are capped at
 * TLSFRONT_MAX_CONNECTIONS, as MHD's are.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/ssl.h>

#include "err.h"
#include "log.h"
#include "tlsfront.h"
#include "util.h"
#include "xmalloc.h"

#define TLSFRONT_MAX_CONNECTIONS 4096 /* as http.c's HTTP_MAX_CONNECTIONS */
#define TLSFRONT_HANDSHAKE_MS 10000   /* a client must finish its handshake within this */
#define TLSFRONT_LINGER_MS 2000       /* after our close_notify, wait this long for EOF */
#define TLSFRONT_GRACE_MS 1000        /* tlsfront_free: let pumps flush before cutting them */
#define TLSFRONT_BUF_MIN (16 * 1024)  /* each of a connection's four buffers starts so... */
#define TLSFRONT_BUF_MAX (256 * 1024) /* ...and doubles up to this under bulk traffic */
#define TLSFRONT_STACK (512 * 1024)

struct tlsfront {
    SSL_CTX *ctx;
    int lfd;         /* listening socket; -1 once quiesced */
    int accept_stop; /* eventfd: readable once the accept thread must end */
    int conn_stop;   /* eventfd: readable once every connection must end */
    int pair_lfd;    /* private listener on 127.0.0.1 for the pairs to MHD */
    struct sockaddr_in pair_sa;
    pthread_mutex_t pair_lock; /* one pair is made at a time (see pair_open) */
    pthread_t accept_th;
    int accepting; /* accept_th runs (main thread only) */
    unsigned port;
    int64_t warned_ms; /* last accept error logged (accept thread only) */
    tlsfront_add_fn add;
    void *add_arg;
    struct tlsfront_gate gate; /* hold == NULL: every connection admitted */
    pthread_mutex_t lock;      /* guards n_conns, handoff_closed and calls of add */
    pthread_cond_t idle;       /* broadcast when n_conns drops to 0 */
    int n_conns;
    int handoff_closed;
};

/* One direction of a pump. */
struct half {
    char *buf;
    size_t cap, off, len; /* cap grows from TLSFRONT_BUF_MIN to TLSFRONT_BUF_MAX */
    int eof;              /* the source ended (or the sink failed): nothing more to read */
    int done;             /* eof and everything written: the sink was shut down */
};

struct tconn {
    struct tlsfront *f; /* borrowed */
    int cfd;            /* the client's TCP socket */
    int pfd;            /* our end of the pair to MHD, -1 before the handoff */
    SSL *ssl;
    BIO *rbio, *wbio; /* memory BIOs: OpenSSL never touches the sockets (owned by ssl) */
    struct half in;   /* ciphertext from the client, on its way into rbio */
    struct half out;  /* ciphertext from wbio, on its way to the client */
    int in_ready;     /* cfd may have bytes: recv before polling */
    void *held;       /* the gate's token until released (NULL: not held) */
    struct sockaddr_storage sa;
    socklen_t sl;
    char addr[INET6_ADDRSTRLEN + 8]; /* "host:port" for logs */
};

static int ctx_load(struct tlsfront *f, const char *cert, const char *key, char *err,
                    size_t err_len);
static int listen_take(struct tlsfront *f, int lfd, char *err, size_t err_len);
static int pair_listen(struct tlsfront *f, char *err, size_t err_len);
static void *accept_thread(void *arg);
static void *conn_thread(void *arg);
static void conn_free(struct tconn *c);
static void conn_release(struct tconn *c);
static void addr_fmt(const struct sockaddr *sa, char *out, size_t out_len);

/* ---------------------------------------------------------------- public */

int
tlsfront_new(const char *cert_path, const char *key_path, int lfd, tlsfront_add_fn add,
             void *add_arg, struct tlsfront **fp, char *err, size_t err_len)
{
    struct tlsfront *f = xcalloc(1, sizeof(*f));
    pthread_condattr_t ca;
    int r = ERR_INTERNAL;

    *fp = NULL;
    f->lfd = f->accept_stop = f->conn_stop = f->pair_lfd = -1;
    f->add = add;
    f->add_arg = add_arg;
    pthread_mutex_init(&f->lock, NULL);
    pthread_mutex_init(&f->pair_lock, NULL);
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&f->idle, &ca);
    pthread_condattr_destroy(&ca);
    if ((r = ctx_load(f, cert_path, key_path, err, err_len)) != 0)
        goto out;
    if ((f->accept_stop = eventfd(0, EFD_CLOEXEC)) < 0 ||
        (f->conn_stop = eventfd(0, EFD_CLOEXEC)) < 0) {
        snprintf(err, err_len, "tls: eventfd: %s", strerror(errno));
        r = ERR_SYSTEM;
        goto out;
    }
    if ((r = pair_listen(f, err, err_len)) != 0 || (r = listen_take(f, lfd, err, err_len)) != 0)
        goto out;
    *fp = f;
    f = NULL;
    r = 0;
out:
    tlsfront_free(f);
    return r;
}

unsigned
tlsfront_port(const struct tlsfront *f)
{
    return f->port;
}

void
tlsfront_set_gate(struct tlsfront *f, const struct tlsfront_gate *gate)
{
    f->gate = *gate;
}

int
tlsfront_start(struct tlsfront *f)
{
    int rc;

    if ((rc = pthread_create(&f->accept_th, NULL, accept_thread, f)) != 0) {
        log_error("tls: cannot start the accept thread: %s", strerror(rc));
        return ERR_SYSTEM;
    }
    f->accepting = 1;
    return 0;
}

void
tlsfront_quiesce(struct tlsfront *f)
{
    uint64_t one = 1;

    if (f == NULL)
        return;
    pthread_mutex_lock(&f->lock);
    f->handoff_closed = 1;
    pthread_mutex_unlock(&f->lock);
    if (f->accepting) {
        if (write(f->accept_stop, &one, sizeof(one)) != sizeof(one))
            log_warn("tls: cannot wake the accept thread: %s", strerror(errno));
        pthread_join(f->accept_th, NULL);
        f->accepting = 0;
    }
    if (f->lfd >= 0)
        close(f->lfd);
    f->lfd = -1;
}

void
tlsfront_free(struct tlsfront *f)
{
    struct timespec ts;
    uint64_t one = 1;

    if (f == NULL)
        return;
    tlsfront_quiesce(f);
    clock_gettime(CLOCK_MONOTONIC, &ts);
    ts.tv_sec += TLSFRONT_GRACE_MS / 1000;
    ts.tv_nsec += (long)(TLSFRONT_GRACE_MS % 1000) * 1000000;
    if (ts.tv_nsec >= 1000000000) {
        ts.tv_sec++;
        ts.tv_nsec -= 1000000000;
    }
    pthread_mutex_lock(&f->lock);
    while (f->n_conns > 0 && pthread_cond_timedwait(&f->idle, &f->lock, &ts) == 0)
        ;
    if (f->n_conns > 0 && write(f->conn_stop, &one, sizeof(one)) != sizeof(one))
        log_warn("tls: cannot wake the connection threads: %s", strerror(errno));
    while (f->n_conns > 0)
        pthread_cond_wait(&f->idle, &f->lock);
    pthread_mutex_unlock(&f->lock);
    if (f->accept_stop >= 0)
        close(f->accept_stop);
    if (f->conn_stop >= 0)
        close(f->conn_stop);
    if (f->pair_lfd >= 0)
        close(f->pair_lfd);
    SSL_CTX_free(f->ctx);
    pthread_cond_destroy(&f->idle);
    pthread_mutex_destroy(&f->lock);
    pthread_mutex_destroy(&f->pair_lock);
    free(f);
}

/* ---------------------------------------------------------------- setup */

/* The first queued OpenSSL error as text (or "unknown error"); clears the queue. */
static const char *
ssl_errstr(char *buf, size_t len)
{
    unsigned long e = ERR_get_error();

    if (e == 0)
        snprintf(buf, len, "unknown error");
    else
        ERR_error_string_n(e, buf, len);
    ERR_clear_error();
    return buf;
}

/* ERR_SYSTEM with err filled if path cannot be opened for reading. */
static int
file_check(const char *path, char *err, size_t err_len)
{
    FILE *fp = fopen(path, "re");

    if (fp == NULL) {
        snprintf(err, err_len, "tls: cannot read %s: %s", path, strerror(errno));
        return ERR_SYSTEM;
    }
    fclose(fp);
    return 0;
}

/* Creates f->ctx with the certificate chain and key: TLS 1.2 and later. */
static int
ctx_load(struct tlsfront *f, const char *cert, const char *key, char *err, size_t err_len)
{
    char e[256];
    int r;

    if ((r = file_check(cert, err, err_len)) != 0 || (r = file_check(key, err, err_len)) != 0)
        return r;
    if ((f->ctx = SSL_CTX_new(TLS_server_method())) == NULL) {
        snprintf(err, err_len, "tls: cannot create a context: %s", ssl_errstr(e, sizeof(e)));
        return ERR_INTERNAL;
    }
    SSL_CTX_set_min_proto_version(f->ctx, TLS1_2_VERSION);
    /* a client's EOF without close_notify is its half-close, as with plain TCP */
    SSL_CTX_set_options(f->ctx, SSL_OP_NO_RENEGOTIATION | SSL_OP_IGNORE_UNEXPECTED_EOF |
                                    SSL_OP_CIPHER_SERVER_PREFERENCE);
    SSL_CTX_set_mode(f->ctx, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
    if (SSL_CTX_use_certificate_chain_file(f->ctx, cert) != 1) {
        snprintf(err, err_len, "tls: %s: not a usable PEM certificate: %s", cert,
                 ssl_errstr(e, sizeof(e)));
        return ERR_INVALID;
    }
    if (SSL_CTX_use_PrivateKey_file(f->ctx, key, SSL_FILETYPE_PEM) != 1) {
        snprintf(err, err_len, "tls: %s: not a usable PEM private key: %s", key,
                 ssl_errstr(e, sizeof(e)));
        return ERR_INVALID;
    }
    if (SSL_CTX_check_private_key(f->ctx) != 1) {
        snprintf(err, err_len, "tls: the key in %s does not match the certificate in %s", key,
                 cert);
        ERR_clear_error();
        return ERR_INVALID;
    }
    return 0;
}

/* Takes the listening socket lfd (http.c bound it, without SO_REUSEPORT): non-blocking, port noted.
 */
static int
listen_take(struct tlsfront *f, int lfd, char *err, size_t err_len)
{
    struct sockaddr_storage bound;
    socklen_t bl = sizeof(bound);
    int fl = fcntl(lfd, F_GETFL);

    if (fl < 0 || fcntl(lfd, F_SETFL, fl | O_NONBLOCK) != 0 ||
        getsockname(lfd, (struct sockaddr *)&bound, &bl) != 0) {
        snprintf(err, err_len, "tls: listening socket: %s", strerror(errno));
        return ERR_SYSTEM;
    }
    f->lfd = lfd;
    f->port = ntohs(bound.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&bound)->sin6_port
                                                : ((struct sockaddr_in *)&bound)->sin_port);
    return 0;
}

/*
 * The private listener that pair_open connects to. Why TCP and not a
 * socketpair: MHD 0.9.75 takes a socket from MHD_add_connection for TCP
 * when the address is (the client's is), and then logs "Setting TCP_CORK
 * option ... failed: Operation not supported" for every reply on an
 * AF_UNIX socket.
 */
static int
pair_listen(struct tlsfront *f, char *err, size_t err_len)
{
    socklen_t sl = sizeof(f->pair_sa);

    f->pair_sa.sin_family = AF_INET;
    f->pair_sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if ((f->pair_lfd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0)) < 0 ||
        bind(f->pair_lfd, (struct sockaddr *)&f->pair_sa, sizeof(f->pair_sa)) != 0 ||
        listen(f->pair_lfd, SOMAXCONN) != 0 ||
        getsockname(f->pair_lfd, (struct sockaddr *)&f->pair_sa, &sl) != 0) {
        snprintf(err, err_len, "tls: cannot listen on 127.0.0.1 for the HTTP server: %s",
                 strerror(errno));
        return ERR_SYSTEM;
    }
    return 0;
}

/*
 * A connected TCP pair over loopback: *ours (non-blocking) and *theirs
 * (for MHD), both TCP_NODELAY. One at a time, under pair_lock, so that the
 * connection accepted is ours; a stranger's connection to the private
 * listener is closed. Returns 0 or ERR_SYSTEM.
 */
static int
pair_open(struct tlsfront *f, int *ours, int *theirs)
{
    struct sockaddr_in mine, peer;
    socklen_t ml = sizeof(mine), pl;
    int a = -1, b = -1, one = 1, r = ERR_SYSTEM;

    *ours = *theirs = -1;
    pthread_mutex_lock(&f->pair_lock);
    if ((a = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0)) < 0 ||
        connect(a, (struct sockaddr *)&f->pair_sa, sizeof(f->pair_sa)) != 0 ||
        getsockname(a, (struct sockaddr *)&mine, &ml) != 0)
        goto out;
    for (;;) {
        struct pollfd p = {.fd = f->pair_lfd, .events = POLLIN};

        if (poll(&p, 1, 1000) <= 0)
            goto out;
        pl = sizeof(peer);
        if ((b = accept4(f->pair_lfd, (struct sockaddr *)&peer, &pl,
                         SOCK_NONBLOCK | SOCK_CLOEXEC)) < 0) {
            if (errno == EAGAIN || errno == EINTR || errno == ECONNABORTED)
                continue;
            goto out;
        }
        if (peer.sin_port == mine.sin_port && peer.sin_addr.s_addr == mine.sin_addr.s_addr)
            break;
        close(b);
        b = -1;
    }
    if (fcntl(a, F_SETFL, fcntl(a, F_GETFL) | O_NONBLOCK) != 0)
        goto out;
    setsockopt(a, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    setsockopt(b, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    *ours = a;
    *theirs = b;
    a = b = -1;
    r = 0;
out:
    if (r != 0)
        log_warn("tls: cannot make a connection to the HTTP server: %s", strerror(errno));
    pthread_mutex_unlock(&f->pair_lock);
    if (a >= 0)
        close(a);
    if (b >= 0)
        close(b);
    return r;
}

/* ---------------------------------------------------------------- accept */

/* Counts a connection in; 0, or ERR_UNAVAILABLE at the cap. */
static int
conn_count_in(struct tlsfront *f)
{
    int r = 0;

    pthread_mutex_lock(&f->lock);
    if (f->n_conns >= TLSFRONT_MAX_CONNECTIONS)
        r = ERR_UNAVAILABLE;
    else
        f->n_conns++;
    pthread_mutex_unlock(&f->lock);
    return r;
}

/* Counts a connection out; the last one wakes tlsfront_free. f is not touched after. */
static void
conn_count_out(struct tlsfront *f)
{
    pthread_mutex_lock(&f->lock);
    if (--f->n_conns == 0)
        pthread_cond_broadcast(&f->idle);
    pthread_mutex_unlock(&f->lock);
}

/* Takes ownership of fd: starts its thread, or closes it. */
static void
conn_start(struct tlsfront *f, int fd, const struct sockaddr_storage *sa, socklen_t sl)
{
    struct tconn *c;
    pthread_attr_t attr;
    pthread_t th;
    int one = 1, rc;

    if (conn_count_in(f) != 0) {
        log_debug("tls: connection limit reached, closing a new connection");
        close(fd);
        return;
    }
    c = xcalloc(1, sizeof(*c));
    c->f = f;
    c->cfd = fd;
    c->pfd = -1;
    /* the per-client cap counts handshakes too; a refused peer costs no thread */
    if (f->gate.hold != NULL &&
        f->gate.hold(f->gate.arg, (const struct sockaddr *)sa, fd, &c->held) != 0) {
        c->held = NULL;
        goto fail;
    }
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    memcpy(&c->sa, sa, sl);
    c->sl = sl;
    addr_fmt((const struct sockaddr *)sa, c->addr, sizeof(c->addr));
    if ((c->ssl = SSL_new(f->ctx)) == NULL || (c->rbio = BIO_new(BIO_s_mem())) == NULL ||
        (c->wbio = BIO_new(BIO_s_mem())) == NULL) {
        log_warn("tls %s: cannot set up the connection", c->addr);
        ERR_clear_error();
        BIO_free(c->rbio);
        BIO_free(c->wbio);
        goto fail;
    }
    BIO_set_mem_eof_return(c->rbio, -1); /* empty is "want read", not EOF */
    SSL_set_bio(c->ssl, c->rbio, c->wbio);
    c->in_ready = 1;
    pthread_attr_init(&attr);
    pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    pthread_attr_setstacksize(&attr, TLSFRONT_STACK);
    rc = pthread_create(&th, &attr, conn_thread, c);
    pthread_attr_destroy(&attr);
    if (rc == 0)
        return;
    log_warn("tls %s: cannot start a connection thread: %s", c->addr, strerror(rc));
fail:
    conn_free(c);
    conn_count_out(f);
}

/* Accepts what is queued. Out of descriptors, it pauses 100 ms (logged at most every 10 s). */
static void
accept_batch(struct tlsfront *f)
{
    for (;;) {
        struct sockaddr_storage sa;
        socklen_t sl = sizeof(sa);
        int fd = accept4(f->lfd, (struct sockaddr *)&sa, &sl, SOCK_NONBLOCK | SOCK_CLOEXEC);

        if (fd >= 0) {
            conn_start(f, fd, &sa, sl);
            continue;
        }
        if (errno == EINTR || errno == ECONNABORTED)
            continue;
        if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM) {
            struct pollfd p = {.fd = f->accept_stop, .events = POLLIN};

            if (time_mono_ms() - f->warned_ms > 10000) {
                log_warn("tls: accept: %s", strerror(errno));
                f->warned_ms = time_mono_ms();
            }
            poll(&p, 1, 100);
        }
        return;
    }
}

static void *
accept_thread(void *arg)
{
    struct tlsfront *f = arg;
    struct pollfd p[2] = {{.fd = f->lfd, .events = POLLIN},
                          {.fd = f->accept_stop, .events = POLLIN}};

    pthread_setname_np(pthread_self(), "airlock-tlsacc");
    for (;;) {
        if (poll(p, 2, -1) < 0) {
            if (errno == EINTR)
                continue;
            log_error("tls: poll: %s", strerror(errno));
            break;
        }
        if (p[1].revents != 0)
            break;
        if (p[0].revents != 0)
            accept_batch(f);
    }
    return NULL;
}

/* ---------------------------------------------------------------- connection */

/* Gives the gate back its hold on c (before cfd closes or MHD gets the connection). */
static void
conn_release(struct tconn *c)
{
    if (c->held != NULL)
        c->f->gate.release(c->f->gate.arg, c->held);
    c->held = NULL;
}

static void
conn_free(struct tconn *c)
{
    if (c == NULL)
        return;
    conn_release(c);
    SSL_free(c->ssl);
    free(c->in.buf);
    free(c->out.buf);
    close(c->cfd);
    if (c->pfd >= 0)
        close(c->pfd);
    free(c);
}

/*
 * Waits until fd is ready for events, or deadline_ms (monotonic, -1: none).
 * Returns 0, or ERR_UNAVAILABLE on timeout or when the front stops.
 */
static int
conn_wait(struct tconn *c, struct pollfd *p, int n, int64_t deadline_ms)
{
    struct pollfd all[3];
    int i, rc, timeout;

    for (;;) {
        for (i = 0; i < n; i++)
            all[i] = p[i];
        all[n].fd = c->f->conn_stop;
        all[n].events = POLLIN;
        timeout = -1;
        if (deadline_ms >= 0) {
            int64_t left = deadline_ms - time_mono_ms();

            timeout = left > 0 ? (int)left : 0;
        }
        rc = poll(all, (nfds_t)n + 1, timeout);
        if (rc < 0 && errno == EINTR)
            continue;
        if (rc <= 0 || all[n].revents != 0)
            return ERR_UNAVAILABLE;
        for (i = 0; i < n; i++)
            p[i].revents = all[i].revents;
        return 0;
    }
}

/* Makes room for want bytes in h (kept between off and off + len), within TLSFRONT_BUF_MAX. */
static void
half_reserve(struct half *h, size_t want)
{
    size_t cap = h->cap ? h->cap : TLSFRONT_BUF_MIN;

    while (cap < want && cap < TLSFRONT_BUF_MAX)
        cap *= 2;
    if (h->buf != NULL && h->off > 0) {
        memmove(h->buf, h->buf + h->off, h->len);
        h->off = 0;
    }
    if (cap != h->cap || h->buf == NULL) {
        h->buf = xrealloc(h->buf, cap);
        h->cap = cap;
    }
}

/*
 * Client -> rbio: one recv. Returns the bytes read, 0 at the client's EOF
 * (or a reset: then OpenSSL sees EOF too), or ERR_AGAIN.
 */
static int
tls_fill(struct tconn *c)
{
    ssize_t n;

    half_reserve(&c->in, c->in.cap);
    if ((n = recv(c->cfd, c->in.buf, c->in.cap, 0)) > 0) {
        BIO_write(c->rbio, c->in.buf, (int)n);
        if ((size_t)n == c->in.cap) /* more may be waiting: read more at once next time */
            half_reserve(&c->in, c->in.cap * 2);
        return (int)n;
    }
    if (n < 0 && (errno == EAGAIN || errno == EINTR)) {
        c->in_ready = 0;
        return ERR_AGAIN;
    }
    BIO_set_mem_eof_return(c->rbio, 0);
    c->in.eof = 1;
    return 0;
}

/*
 * wbio -> client: what OpenSSL wrote, in as few sends as it takes. Returns
 * 0 when all is sent, ERR_AGAIN when the socket is full, ERR_SYSTEM when the
 * client is gone.
 */
static int
tls_flush(struct tconn *c)
{
    ssize_t n;

    for (;;) {
        if (c->out.len == 0) {
            size_t pend = BIO_ctrl_pending(c->wbio);
            int got;

            if (pend == 0)
                return 0;
            c->out.off = 0;
            half_reserve(&c->out, pend);
            if ((got = BIO_read(c->wbio, c->out.buf, (int)c->out.cap)) <= 0)
                return 0;
            c->out.len = (size_t)got;
        }
        if ((n = send(c->cfd, c->out.buf + c->out.off, c->out.len, MSG_NOSIGNAL)) > 0) {
            c->out.off += (size_t)n;
            c->out.len -= (size_t)n;
        } else if (n < 0 && (errno == EAGAIN || errno == EINTR)) {
            return ERR_AGAIN;
        } else {
            return ERR_SYSTEM;
        }
    }
}

/* The TLS handshake, within TLSFRONT_HANDSHAKE_MS. 0, ERR_INVALID or ERR_UNAVAILABLE. */
static int
conn_handshake(struct tconn *c)
{
    int64_t deadline = time_mono_ms() + TLSFRONT_HANDSHAKE_MS;
    char e[256];
    int rc, why, fr;

    for (;;) {
        struct pollfd p = {.fd = c->cfd};

        ERR_clear_error();
        rc = SSL_accept(c->ssl);
        why = rc == 1 ? SSL_ERROR_NONE : SSL_get_error(c->ssl, rc);
        /* our alert or flight goes out even when the handshake failed */
        if ((fr = tls_flush(c)) == ERR_SYSTEM)
            return ERR_INVALID;
        if (fr == ERR_AGAIN)
            p.events |= POLLOUT;
        if (why == SSL_ERROR_NONE && fr == 0)
            return 0;
        if (why != SSL_ERROR_NONE && why != SSL_ERROR_WANT_READ) {
            log_debug("tls %s: handshake failed: %s", c->addr,
                      why == SSL_ERROR_SSL ? ssl_errstr(e, sizeof(e)) : "connection closed");
            ERR_clear_error();
            return ERR_INVALID;
        }
        if (why == SSL_ERROR_WANT_READ) {
            if (c->in.eof) {
                log_debug("tls %s: connection closed during the handshake", c->addr);
                return ERR_INVALID;
            }
            if (tls_fill(c) != ERR_AGAIN)
                continue;
            p.events |= POLLIN;
        }
        if (conn_wait(c, &p, 1, deadline) != 0) {
            log_debug("tls %s: no handshake within %d ms", c->addr, TLSFRONT_HANDSHAKE_MS);
            return ERR_UNAVAILABLE;
        }
        c->in_ready = 1;
    }
}

/* Gives MHD its end of a new pair with the client's address. 0 or ERR_*. */
static int
conn_handoff(struct tconn *c)
{
    struct tlsfront *f = c->f;
    int sv[2], r;

    if ((r = pair_open(f, &sv[0], &sv[1])) != 0)
        return r;
    c->pfd = sv[0];
    conn_release(c); /* from here MHD counts it (and applies the cap again) */
    /* under the lock: tlsfront_quiesce waits for a handoff under way */
    pthread_mutex_lock(&f->lock);
    if (f->handoff_closed) {
        close(sv[1]);
        r = ERR_UNAVAILABLE;
    } else {
        r = f->add(f->add_arg, sv[1], (const struct sockaddr *)&c->sa, c->sl);
    }
    pthread_mutex_unlock(&f->lock);
    if (r != 0)
        log_debug("tls %s: the HTTP server did not take the connection", c->addr);
    return r;
}

/*
 * Client -> server: decrypt what rbio holds into up (no syscall: rbio is
 * memory), then send it to the pair. Adds the poll events it waits for to
 * *pev; sets *moved on progress. Returns 0, or ERR_INVALID when the TLS
 * session is broken.
 */
static int
pump_up(struct tconn *c, struct half *up, short *pev, int *moved)
{
    ssize_t n;
    int rc, why;

    if (up->done)
        return 0;
    while (!up->eof) {
        if (up->off + up->len == up->cap) {
            if (up->cap >= TLSFRONT_BUF_MAX || up->len < up->cap)
                break; /* full: send first */
            half_reserve(up, up->cap * 2);
        }
        ERR_clear_error();
        rc = SSL_read(c->ssl, up->buf + up->off + up->len, (int)(up->cap - up->off - up->len));
        if (rc > 0) {
            up->len += (size_t)rc;
            *moved = 1;
            continue;
        }
        if ((why = SSL_get_error(c->ssl, rc)) == SSL_ERROR_WANT_READ)
            break; /* rbio is empty: tls_fill's turn */
        if (why != SSL_ERROR_ZERO_RETURN) {
            ERR_clear_error();
            return ERR_INVALID;
        }
        up->eof = 1;
    }
    if (up->len > 0) {
        if ((n = send(c->pfd, up->buf + up->off, up->len, MSG_NOSIGNAL)) > 0) {
            up->off = (size_t)n == up->len ? 0 : up->off + (size_t)n;
            up->len -= (size_t)n;
            *moved = 1;
        } else if (n < 0 && (errno == EAGAIN || errno == EINTR)) {
            *pev |= POLLOUT;
        } else { /* MHD closed its end: drop what the client still sends */
            up->len = 0;
            up->off = 0;
            up->eof = 1;
        }
    }
    if (up->eof && up->len == 0) {
        shutdown(c->pfd, SHUT_WR);
        up->done = 1;
        *moved = 1;
    }
    return 0;
}

/*
 * Server -> client: recv from the pair into down, encrypt it into wbio
 * while little is waiting to go out; at the pair's EOF, close_notify. The
 * caller flushes wbio. Same contract as pump_up.
 */
static int
pump_down(struct tconn *c, struct half *down, short *pev, int *moved)
{
    ssize_t n;
    int rc;

    if (down->done)
        return 0;
    if (down->len == 0 && !down->eof) {
        down->off = 0;
        if ((n = recv(c->pfd, down->buf, down->cap, 0)) > 0) {
            down->len = (size_t)n;
            *moved = 1;
            if ((size_t)n == down->cap) /* bulk: read more at once next time */
                half_reserve(down, down->cap * 2);
        } else if (n < 0 && (errno == EAGAIN || errno == EINTR)) {
            *pev |= POLLIN;
        } else {
            down->eof = 1;
        }
    }
    if (down->len > 0 && c->out.len + BIO_ctrl_pending(c->wbio) < TLSFRONT_BUF_MAX) {
        ERR_clear_error();
        if ((rc = SSL_write(c->ssl, down->buf + down->off, (int)down->len)) <= 0) {
            ERR_clear_error();
            return ERR_INVALID;
        }
        down->off += (size_t)rc;
        down->len -= (size_t)rc;
        *moved = 1;
    }
    if (down->eof && down->len == 0) {
        ERR_clear_error();
        SSL_shutdown(c->ssl); /* close_notify into wbio */
        ERR_clear_error();
        down->done = 1;
        *moved = 1;
    }
    return 0;
}

/* Copies both ways until both directions are done, the TLS session breaks or the front stops. */
static void
conn_pump(struct tconn *c)
{
    struct half up = {0}, down = {0};
    int64_t linger_until = -1;
    int fin_sent = 0;

    half_reserve(&up, TLSFRONT_BUF_MIN);
    half_reserve(&down, TLSFRONT_BUF_MIN);
    for (;;) {
        struct pollfd p[2];
        short cev = 0, pev = 0;
        size_t backlog;
        int moved = 0, r;

        /* more ciphertext only while little waits to be decrypted (backpressure) */
        if (c->in_ready && !c->in.eof && BIO_ctrl_pending(c->rbio) < TLSFRONT_BUF_MAX)
            if (tls_fill(c) != ERR_AGAIN)
                moved = 1;
        if (pump_up(c, &up, &pev, &moved) != 0 || pump_down(c, &down, &pev, &moved) != 0)
            break;
        backlog = c->out.len + BIO_ctrl_pending(c->wbio);
        if ((r = tls_flush(c)) == ERR_SYSTEM)
            break;
        if (c->out.len + BIO_ctrl_pending(c->wbio) < backlog)
            moved = 1; /* room again for pump_down's SSL_write */
        if (r == ERR_AGAIN)
            cev |= POLLOUT;
        else if (down.done && !fin_sent) { /* close_notify sent: then our FIN */
            shutdown(c->cfd, SHUT_WR);
            fin_sent = 1;
        }
        if (up.done && fin_sent)
            break;
        if (moved)
            continue;
        if (!c->in.eof && BIO_ctrl_pending(c->rbio) < TLSFRONT_BUF_MAX)
            cev |= POLLIN;
        /* the server is gone: give the client a moment to read and close */
        if (fin_sent && linger_until < 0)
            linger_until = time_mono_ms() + TLSFRONT_LINGER_MS;
        /* an fd with nothing to wait for stays out: its POLLHUP would spin */
        p[0].fd = cev ? c->cfd : -1;
        p[0].events = cev;
        p[1].fd = pev ? c->pfd : -1;
        p[1].events = pev;
        if (conn_wait(c, p, 2, linger_until) != 0)
            break;
        if (p[0].revents != 0)
            c->in_ready = 1;
    }
    free(up.buf);
    free(down.buf);
}

static void *
conn_thread(void *arg)
{
    struct tconn *c = arg;
    struct tlsfront *f = c->f;

    pthread_setname_np(pthread_self(), "airlock-tls");
    if (conn_handshake(c) == 0 && conn_handoff(c) == 0)
        conn_pump(c);
    conn_free(c);
    conn_count_out(f);
    return NULL;
}

/* "1.2.3.4:5" or "[::1]:5" into out. */
static void
addr_fmt(const struct sockaddr *sa, char *out, size_t out_len)
{
    char host[INET6_ADDRSTRLEN] = "?";
    unsigned port = 0;

    if (sa->sa_family == AF_INET) {
        const struct sockaddr_in *in = (const struct sockaddr_in *)sa;

        inet_ntop(AF_INET, &in->sin_addr, host, sizeof(host));
        port = ntohs(in->sin_port);
        snprintf(out, out_len, "%s:%u", host, port);
    } else if (sa->sa_family == AF_INET6) {
        const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)sa;

        inet_ntop(AF_INET6, &in6->sin6_addr, host, sizeof(host));
        port = ntohs(in6->sin6_port);
        snprintf(out, out_len, "[%s]:%u", host, port);
    } else {
        snprintf(out, out_len, "?");
    }
}
