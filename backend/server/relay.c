/*
 * SSH relay: pairs a participant's /connect WebSocket with the agent's
 * dial-back /tunnel WebSocket and splices them (DESIGN.md 8.3, relay.h).
 *
 * Pairing. relay_expect() registers a pending struct relay_conn. The
 * participant's upgrade thread (relay_run_participant) waits on the conn's
 * eventfd, and on its own socket for a hang-up, until the agent's upgrade
 * thread (relay_run_agent) hands over its socket; the participant's thread
 * then runs the splice loop for both sockets while the agent's thread sleeps
 * on the conn's condition variable until the splice ends, and then ends its
 * own upgraded connection. One thread does the work for one pair.
 *
 * Splicing, once paired, is relay_splice.c's (relay_splice_run()). A
 * socket that is never spliced (unknown conn, no dial-back in time, no
 * participant) gets a close frame and a short linger (goodbye()).
 * Counters are atomics, read by relay_get_stats() without the lock.
 */
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "err.h"
#include "relay.h"
#include "relay_splice.h"
#include "util.h"
#include "wsframe.h"
#include "xmalloc.h"

/* Timers (a test may define shorter ones before including this file). */
#ifndef RELAY_GOODBYE_MS
#define RELAY_GOODBYE_MS 1000 /* linger after a close sent before pairing */
#endif

enum conn_state { CONN_PENDING, CONN_PAIRED, CONN_DONE };

#define CONN_TERM 0x01 /* a browser terminal: closed at once by relay_close_terminals */
#define CONN_RO 0x02   /* ... read-only: its binary frames are refused */

struct relay_conn {
    struct relay_conn *next;
    char *id, *session, *agent, *user;
    int64_t deadline_ms; /* for the dial-back */
    unsigned flags;      /* CONN_TERM, CONN_RO */
    enum conn_state state;
    int has_part;             /* a participant thread owns it */
    int refs;                 /* list + threads; freed at 0 (under rl->mu) */
    struct upgraded *agent_u; /* handed over by relay_run_agent */
    int wake_fd;              /* eventfd: pairing or relay_close() */
    int close_req;
    uint16_t close_code;
    char close_reason[124];
    pthread_cond_t done_cond; /* the agent thread waits for CONN_DONE */
};

struct relay {
    pthread_mutex_t mu;
    pthread_cond_t idle_cond; /* running reached 0 */
    struct relay_conn *conns;
    int shutting_down;
    int running; /* threads inside relay_run_* */
    _Atomic uint64_t n_active, n_pending, n_total, bytes_up, bytes_down;
};

/* ---------------------------------------------------------------- helpers */

static void
conn_unref(struct relay_conn *c)
{
    if (--c->refs > 0)
        return;
    close(c->wake_fd);
    pthread_cond_destroy(&c->done_cond);
    free(c->id);
    free(c->session);
    free(c->agent);
    free(c->user);
    free(c);
}

/* Unlinks c from the list (holding rl->mu) and marks it done. */
static void
conn_finish(struct relay *rl, struct relay_conn *c)
{
    struct relay_conn **pp;

    for (pp = &rl->conns; *pp != NULL; pp = &(*pp)->next) {
        if (*pp == c) {
            *pp = c->next;
            c->next = NULL;
            if (c->state == CONN_PENDING)
                atomic_fetch_sub(&rl->n_pending, 1);
            else if (c->state == CONN_PAIRED)
                atomic_fetch_sub(&rl->n_active, 1);
            c->state = CONN_DONE;
            pthread_cond_broadcast(&c->done_cond);
            conn_unref(c);
            return;
        }
    }
    c->state = CONN_DONE;
    pthread_cond_broadcast(&c->done_cond);
}

static struct relay_conn *
conn_find(struct relay *rl, const char *id)
{
    struct relay_conn *c;

    for (c = rl->conns; c != NULL; c = c->next)
        if (strcmp(c->id, id) == 0)
            return c;
    return NULL;
}

/* Drops pending entries that no thread owns and whose time is up or that were closed. */
static void
purge_expired(struct relay *rl, int64_t now)
{
    struct relay_conn *c = rl->conns, *next;

    for (; c != NULL; c = next) {
        next = c->next;
        if (c->state == CONN_PENDING && !c->has_part && c->agent_u == NULL &&
            (now >= c->deadline_ms || c->close_req))
            conn_finish(rl, c);
    }
}

static void
wake(struct relay_conn *c)
{
    uint64_t one = 1;

    if (write(c->wake_fd, &one, sizeof(one)) < 0) {
        /* EAGAIN: the counter is already non-zero, the loop will wake. */
    }
}

static void
drain_wake(int fd)
{
    uint64_t v;

    if (read(fd, &v, sizeof(v)) < 0) {
        /* EAGAIN: nothing pending */
    }
}

static void
set_thread_name(const char *prefix, const char *session)
{
    char name[16];

    snprintf(name, sizeof(name), "%s%s", prefix, session ? session : "");
    pthread_setname_np(pthread_self(), name);
}

/* The conn of a splice and its relay, for take_close_request(). */
struct splice_ctx {
    struct relay *rl;
    struct relay_conn *c;
};

/*
 * The splice's relay_close_req_fn: drains the conn's eventfd and takes its
 * close request, if any (relay_close, relay_shutdown).
 */
static int
take_close_request(void *arg, uint16_t *code, char *reason, size_t reason_len)
{
    struct splice_ctx *sc = arg;
    struct relay *rl = sc->rl;
    struct relay_conn *c = sc->c;
    int req;

    drain_wake(c->wake_fd);

    pthread_mutex_lock(&rl->mu);
    req = c->close_req;
    if (req) {
        *code = c->close_code;
        snprintf(reason, reason_len, "%s", c->close_reason);
    }
    pthread_mutex_unlock(&rl->mu);
    return req;
}

/*
 * Sends a close frame on a socket that never got spliced, then lingers
 * briefly (reading and dropping) so that the peer reads the close before
 * the connection goes: closing with unread input would send a reset.
 */
static void
goodbye(int fd, uint16_t code, const char *reason)
{
    uint8_t f[WSFRAME_HDR_MAX + WSFRAME_CONTROL_MAX];
    size_t n = reason ? strlen(reason) : 0, len;
    int64_t end = time_mono_ms() + RELAY_GOODBYE_MS;
    ssize_t w;

    if (n > WSFRAME_CONTROL_MAX - 2)
        n = WSFRAME_CONTROL_MAX - 2;
    len = wsframe_encode(f, 1, WSFRAME_CLOSE, 2 + n, NULL);
    f[len++] = (uint8_t)(code >> 8);
    f[len++] = (uint8_t)code;
    if (n > 0)
        memcpy(f + len, reason, n);
    len += n;
    w = send(fd, f, len, MSG_NOSIGNAL);
    if (w != (ssize_t)len)
        return;
    (void)shutdown(fd, SHUT_WR);
    for (;;) {
        int64_t left = end - time_mono_ms();
        struct pollfd p = {fd, POLLIN, 0};
        uint8_t junk[4096];
        ssize_t got;

        if (left <= 0 || poll(&p, 1, (int)left) <= 0)
            return;
        got = recv(fd, junk, sizeof(junk), 0);
        if (got == 0 || (got < 0 && errno != EAGAIN && errno != EINTR))
            return;
    }
}

/* Splices the participant's u with the agent's socket that paired c. */
static void
pair_splice(struct relay *rl, struct relay_conn *c, struct upgraded *u)
{
    struct splice_ctx sc = {rl, c};
    struct relay_splice_io io = {
        .pu = u,
        .au = c->agent_u,
        .wake_fd = c->wake_fd,
        .close_req = take_close_request,
        .close_req_arg = &sc,
        .bytes_up = &rl->bytes_up,
        .bytes_down = &rl->bytes_down,
        .refuse_input = (c->flags & CONN_RO) != 0,
    };

    relay_splice_run(&io);
}

/* --------------------------------------------------------------- public */

struct relay *
relay_new(void)
{
    struct relay *rl = xcalloc(1, sizeof(*rl));

    pthread_mutex_init(&rl->mu, NULL);
    pthread_cond_init(&rl->idle_cond, NULL);
    return rl;
}

void
relay_shutdown(struct relay *rl)
{
    struct relay_conn *c;

    if (rl == NULL)
        return;
    pthread_mutex_lock(&rl->mu);
    rl->shutting_down = 1;
    for (c = rl->conns; c != NULL; c = c->next) {
        if (!c->close_req) {
            c->close_req = 1;
            c->close_code = 1001;
            snprintf(c->close_reason, sizeof(c->close_reason), "server shutting down");
        }
        wake(c);
        pthread_cond_broadcast(&c->done_cond);
    }
    while (rl->running > 0)
        pthread_cond_wait(&rl->idle_cond, &rl->mu);
    while (rl->conns != NULL)
        conn_finish(rl, rl->conns);
    pthread_mutex_unlock(&rl->mu);
}

void
relay_free(struct relay *rl)
{
    if (rl == NULL)
        return;
    relay_shutdown(rl);
    pthread_cond_destroy(&rl->idle_cond);
    pthread_mutex_destroy(&rl->mu);
    free(rl);
}

static int
expect(struct relay *rl, const char *conn_id, const char *session, const char *agent,
       const char *user, int cap, unsigned flags)
{
    struct relay_conn *c;
    pthread_condattr_t ca;
    int64_t now = time_mono_ms();
    int n = 0, r = ERR_INTERNAL, fd;

    pthread_mutex_lock(&rl->mu);
    if (rl->shutting_down) {
        r = ERR_UNAVAILABLE;
        goto out;
    }
    purge_expired(rl, now);
    if (conn_find(rl, conn_id) != NULL) {
        r = ERR_CONFLICT;
        goto out;
    }
    for (c = rl->conns; c != NULL; c = c->next)
        if (c->state != CONN_DONE && strcmp(c->session, session) == 0)
            n++;
    if (cap > 0 && n >= cap) {
        r = ERR_TOO_MANY;
        goto out;
    }
    if ((fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC)) < 0) {
        r = ERR_SYSTEM;
        goto out;
    }
    c = xcalloc(1, sizeof(*c));
    c->id = xstrdup(conn_id);
    c->session = xstrdup(session);
    c->agent = xstrdup(agent);
    c->user = xstrdup(user ? user : "");
    c->deadline_ms = now + RELAY_DIAL_TIMEOUT_MS;
    c->flags = flags;
    c->state = CONN_PENDING;
    c->refs = 1;
    c->wake_fd = fd;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&c->done_cond, &ca);
    pthread_condattr_destroy(&ca);
    c->next = rl->conns;
    rl->conns = c;
    atomic_fetch_add(&rl->n_pending, 1);
    r = 0;
out:
    pthread_mutex_unlock(&rl->mu);
    return r;
}

int
relay_expect(struct relay *rl, const char *conn_id, const char *session, const char *agent,
             const char *user, int cap)
{
    return expect(rl, conn_id, session, agent, user, cap, 0);
}

int
relay_expect_terminal(struct relay *rl, const char *conn_id, const char *session, const char *agent,
                      const char *user, int cap, int read_only)
{
    return expect(rl, conn_id, session, agent, user, cap, CONN_TERM | (read_only ? CONN_RO : 0));
}

int
relay_pending_for_agent(struct relay *rl, const char *conn_id, const char *agent)
{
    struct relay_conn *c;
    int ok;

    pthread_mutex_lock(&rl->mu);
    c = conn_find(rl, conn_id);
    ok = c != NULL && c->state == CONN_PENDING && c->agent_u == NULL && !c->close_req &&
         strcmp(c->agent, agent) == 0 && time_mono_ms() < c->deadline_ms;
    pthread_mutex_unlock(&rl->mu);
    return ok;
}

/* Waits (participant side) until c is paired. 0, or -1 with the close to send. */
static int
wait_for_agent(struct relay *rl, struct relay_conn *c, int fd, uint16_t *code, char *reason,
               size_t reason_len)
{
    for (;;) {
        struct pollfd p[2] = {{c->wake_fd, POLLIN, 0}, {fd, POLLRDHUP, 0}};
        int64_t left;

        pthread_mutex_lock(&rl->mu);
        if (c->state == CONN_PAIRED) {
            pthread_mutex_unlock(&rl->mu);
            return 0;
        }
        left = c->deadline_ms - time_mono_ms();
        if (c->close_req) {
            *code = c->close_code;
            snprintf(reason, reason_len, "%s", c->close_reason);
        } else if (left <= 0) {
            *code = 1011;
            snprintf(reason, reason_len, "agent did not answer");
        }
        if (c->close_req || left <= 0) {
            conn_finish(rl, c);
            pthread_mutex_unlock(&rl->mu);
            return -1;
        }
        pthread_mutex_unlock(&rl->mu);
        if (poll(p, 2, (int)left) < 0 && errno != EINTR)
            left = 0;
        if (p[0].revents & POLLIN)
            drain_wake(c->wake_fd);
        if (p[1].revents & (POLLRDHUP | POLLHUP | POLLERR)) {
            /* The participant went away while we waited. */
            pthread_mutex_lock(&rl->mu);
            if (c->state == CONN_PAIRED) {
                pthread_mutex_unlock(&rl->mu);
                return 0; /* the splice will see the hang-up and end cleanly */
            }
            conn_finish(rl, c);
            pthread_mutex_unlock(&rl->mu);
            *code = 0;
            return -1;
        }
    }
}

static void
running_done(struct relay *rl)
{
    pthread_mutex_lock(&rl->mu);
    if (--rl->running == 0)
        pthread_cond_broadcast(&rl->idle_cond);
    pthread_mutex_unlock(&rl->mu);
}

void
relay_run_participant(struct relay *rl, const char *conn_id, struct upgraded *u)
{
    struct relay_conn *c;
    uint16_t code = 1011;
    char reason[124] = "unknown connection";

    pthread_mutex_lock(&rl->mu);
    rl->running++;
    c = conn_find(rl, conn_id);
    if (c != NULL && (c->has_part || c->state == CONN_DONE))
        c = NULL;
    if (c != NULL) {
        c->has_part = 1;
        c->refs++;
        set_thread_name("relay-p ", c->session + (strncmp(c->session, "ds-", 3) ? 0 : 3));
    }
    pthread_mutex_unlock(&rl->mu);
    if (c == NULL) {
        goodbye(u->fd, code, reason);
        goto out;
    }
    if (wait_for_agent(rl, c, u->fd, &code, reason, sizeof(reason)) != 0) {
        if (code != 0)
            goodbye(u->fd, code, reason);
        goto out_unref;
    }
    pair_splice(rl, c, u);
    pthread_mutex_lock(&rl->mu);
    conn_finish(rl, c); /* wakes the agent thread, which ends its side */
    pthread_mutex_unlock(&rl->mu);
out_unref:
    pthread_mutex_lock(&rl->mu);
    conn_unref(c);
    pthread_mutex_unlock(&rl->mu);
out:
    upgraded_close(u);
    running_done(rl);
}

void
relay_run_agent(struct relay *rl, const char *conn_id, struct upgraded *u)
{
    struct relay_conn *c;
    int spliced = 0;

    pthread_mutex_lock(&rl->mu);
    rl->running++;
    c = conn_find(rl, conn_id);
    if (c == NULL || c->state != CONN_PENDING || c->agent_u != NULL || c->close_req ||
        time_mono_ms() >= c->deadline_ms) {
        pthread_mutex_unlock(&rl->mu);
        goodbye(u->fd, 1011, "unknown connection");
        goto out;
    }
    set_thread_name("relay-a ", c->session + (strncmp(c->session, "ds-", 3) ? 0 : 3));
    c->agent_u = u;
    c->state = CONN_PAIRED;
    c->refs++;
    atomic_fetch_sub(&rl->n_pending, 1);
    atomic_fetch_add(&rl->n_active, 1);
    atomic_fetch_add(&rl->n_total, 1);
    wake(c);
    /* The participant thread splices; wait for it, or give up if it never comes. */
    while (c->state != CONN_DONE) {
        struct timespec ts;
        int64_t until = c->has_part ? time_mono_ms() + 1000 : c->deadline_ms;

        if (!c->has_part && (c->close_req || time_mono_ms() >= c->deadline_ms)) {
            conn_finish(rl, c);
            break;
        }
        ts.tv_sec = until / 1000;
        ts.tv_nsec = (until % 1000) * 1000000;
        pthread_cond_timedwait(&c->done_cond, &rl->mu, &ts);
        spliced = c->has_part;
    }
    conn_unref(c);
    pthread_mutex_unlock(&rl->mu);
    if (!spliced)
        goodbye(u->fd, 1011, "participant did not arrive");
out:
    upgraded_close(u);
    running_done(rl);
}

static void
close_matching(struct relay *rl, const char *session, const char *user, const char *reason,
               unsigned flags)
{
    struct relay_conn *c;

    pthread_mutex_lock(&rl->mu);
    for (c = rl->conns; c != NULL; c = c->next) {
        if (strcmp(c->session, session) != 0 || (user != NULL && strcmp(c->user, user) != 0) ||
            (c->flags & flags) != flags)
            continue;
        if (!c->close_req) {
            c->close_req = 1;
            c->close_code = 1000;
            snprintf(c->close_reason, sizeof(c->close_reason), "%s",
                     reason ? reason : "session ended");
        }
        wake(c);
    }
    /* Entries nobody waits on yet go now, so they stop counting against the cap. */
    purge_expired(rl, time_mono_ms());
    pthread_mutex_unlock(&rl->mu);
}

void
relay_close(struct relay *rl, const char *session, const char *user, const char *reason)
{
    close_matching(rl, session, user, reason, 0);
}

void
relay_close_terminals(struct relay *rl, const char *session, const char *user, const char *reason)
{
    close_matching(rl, session, user, reason, CONN_TERM);
}

void
relay_get_stats(struct relay *rl, struct relay_stats *st)
{
    st->conns_active = atomic_load(&rl->n_active);
    st->conns_pending = atomic_load(&rl->n_pending);
    st->conns_total = atomic_load(&rl->n_total);
    st->bytes_up = atomic_load(&rl->bytes_up);
    st->bytes_down = atomic_load(&rl->bytes_down);
}
