/*
 * The fd <-> WebSocket bridge (see wsbridge.h for the contract).
 *
 * One round of wsbridge_step():
 *   1. resume reading the WebSocket once out_fd has taken the buffer down to
 *      half the high-water mark (half, so that a reader taking small bites
 *      does not flip the pause on and off for every write);
 *   2. poll the WebSocket, in_fd (only while the send queue is under the
 *      mark), out_fd (only while bytes wait) and stop_fd, up to the next
 *      deadline;
 *   3. pump the WebSocket (received messages land in wsbridge_on_msg, which
 *      writes straight through when nothing is buffered and pauses reading
 *      above the mark), read in_fd into messages, write the buffer to
 *      out_fd, pump again so that what was queued leaves now;
 *   4. turn the ends into closes and deadlines (in_fd EOF, out_fd failure,
 *      stop_fd, a close that was not answered, a silent peer).
 *
 * The timers here are bounds on a peer that should answer, not waits for
 * something that will happen anyway: the close handshake (close_wait_ms),
 * a reader of out_fd that stopped taking bytes after the WebSocket ended
 * (close_wait_ms without progress), keepalive pings (ping_ms: proxies in
 * between close idle connections) and a peer gone silent (dead_ms).
 */
#include <errno.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "err.h"
#include "util.h"
#include "ws.h"
#include "wsbridge.h"
#include "xmalloc.h"

#define WSBRIDGE_STOP_WAIT_MS 1000 /* the peer's answer to a close for stop_fd */

static void out_add(struct wsbridge *b, const uint8_t *data, size_t len);
static void out_flush(struct wsbridge *b);
static void in_read(struct wsbridge *b);
static void close_start(struct wsbridge *b, uint16_t code, const char *reason, int wait_ms);
static void ends_check(struct wsbridge *b, int64_t now);
static int next_timeout(const struct wsbridge *b, int64_t now, int timeout_ms);
static int done(const struct wsbridge *b);

void
wsbridge_init(struct wsbridge *b, const struct wsbridge_cfg *cfg)
{
    memset(b, 0, sizeof(*b));
    b->cfg = *cfg;
    if (b->cfg.chunk == 0)
        b->cfg.chunk = 64 * 1024;
    if (b->cfg.hwm == 0)
        b->cfg.hwm = 256 * 1024;
    b->in = xmalloc(b->cfg.chunk);
}

void
wsbridge_on_msg(struct ws *w, int opcode, const uint8_t *msg, size_t len, void *ud)
{
    struct wsbridge *b = ud;
    size_t off = 0;

    if (opcode != WS_OP_BINARY || len == 0 || b->out_dead)
        return;
    /* Nothing queued ahead of it: straight to out_fd, no copy. */
    while (b->out_len == b->out_off && off < len) {
        ssize_t n = write(b->cfg.out_fd, msg + off, len - off);

        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            break;
        if (n <= 0) {
            b->out_dead = 1;
            return;
        }
        off += (size_t)n;
        b->out_progress_ms = time_mono_ms();
    }
    if (off == len)
        return;
    out_add(b, msg + off, len - off);
    /* Above the high-water mark: stop reading the WebSocket until out_fd takes it. */
    if (wsbridge_pending(b) >= b->cfg.hwm && !b->paused) {
        ws_set_read_paused(w, 1);
        b->paused = 1;
    }
}

void
wsbridge_start(struct wsbridge *b, struct ws *w)
{
    b->w = w;
    b->out_progress_ms = b->last_ping_ms = time_mono_ms();
    if (ws_pump(w, 0) != 0) /* frames that came with the handshake */
        b->ws_gone = 1;
    ends_check(b, time_mono_ms());
}

int
wsbridge_step(struct wsbridge *b, int timeout_ms)
{
    struct pollfd p[4];
    size_t pending;
    int64_t now = time_mono_ms();

    if (done(b))
        return 0;
    /* 1. The pump after resuming reads what is already buffered, which no poll would report. */
    if (b->paused && wsbridge_pending(b) < b->cfg.hwm / 2) {
        b->paused = 0;
        ws_set_read_paused(b->w, 0);
        if (!b->ws_gone && ws_pump(b->w, 0) != 0)
            b->ws_gone = 1;
    }
    /* 2. */
    pending = wsbridge_pending(b);
    p[0].fd = b->ws_gone ? -1 : ws_fd(b->w);
    p[0].events = b->ws_gone ? 0 : ws_poll_events(b->w);
    p[1].fd = !b->in_eof && !b->we_closed && !b->ws_gone && ws_queued(b->w) < b->cfg.hwm
                  ? b->cfg.in_fd
                  : -1;
    p[1].events = POLLIN;
    p[2].fd = pending > 0 && !b->out_dead ? b->cfg.out_fd : -1;
    p[2].events = POLLOUT;
    p[3].fd = b->cfg.stop_fd >= 0 && !b->we_closed ? b->cfg.stop_fd : -1;
    p[3].events = POLLIN;
    for (int i = 0; i < 4; i++)
        p[i].revents = 0;
    if (poll(p, 4, next_timeout(b, now, timeout_ms)) < 0 && errno != EINTR) {
        b->failed = 1;
        return 0;
    }
    now = time_mono_ms();
    /* 3. */
    if (p[3].revents != 0)
        close_start(b, 1001, b->cfg.stop_reason, WSBRIDGE_STOP_WAIT_MS);
    if (!b->ws_gone && (ws_pump(b->w, p[0].revents) != 0 || !ws_alive(b->w)))
        b->ws_gone = 1;
    if (p[1].revents != 0)
        in_read(b);
    if (p[2].revents != 0)
        out_flush(b);
    if (!b->ws_gone && ws_pump(b->w, 0) != 0)
        b->ws_gone = 1;
    /* 4. */
    ends_check(b, now);
    return done(b) ? 0 : 1;
}

int
wsbridge_run(struct wsbridge *b, struct ws *w)
{
    wsbridge_start(b, w);
    while (wsbridge_step(b, -1) != 0)
        ;
    if (b->silent)
        return ERR_UNAVAILABLE;
    return b->failed ? ERR_SYSTEM : 0;
}

size_t
wsbridge_pending(const struct wsbridge *b)
{
    return b->out_len - b->out_off;
}

void
wsbridge_cleanup(struct wsbridge *b)
{
    free(b->out);
    free(b->in);
    b->out = b->in = NULL;
    b->out_off = b->out_len = b->out_cap = 0;
    b->w = NULL;
}

/* ------------------------------------------------------------------------ */

/* Appends to the out buffer (compacting first, growing when it must). */
static void
out_add(struct wsbridge *b, const uint8_t *data, size_t len)
{
    if (b->out_off > 0 && b->out_off == b->out_len)
        b->out_off = b->out_len = 0;
    if (b->out_len + len > b->out_cap && b->out_off > 0) {
        memmove(b->out, b->out + b->out_off, b->out_len - b->out_off);
        b->out_len -= b->out_off;
        b->out_off = 0;
    }
    if (b->out_len + len > b->out_cap) {
        size_t cap = b->out_cap ? b->out_cap : b->cfg.chunk;

        while (cap < b->out_len + len)
            cap *= 2;
        b->out = xrealloc(b->out, cap);
        b->out_cap = cap;
    }
    memcpy(b->out + b->out_len, data, len);
    b->out_len += len;
}

/* Writes what out_fd takes now. A failing out_fd drops the rest: nobody will read it. */
static void
out_flush(struct wsbridge *b)
{
    while (b->out_off < b->out_len && !b->out_dead) {
        ssize_t n = write(b->cfg.out_fd, b->out + b->out_off, b->out_len - b->out_off);

        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            return;
        if (n <= 0) {
            b->out_dead = 1;
            break;
        }
        b->out_off += (size_t)n;
        b->out_progress_ms = time_mono_ms();
    }
    b->out_off = b->out_len = 0;
}

/* in_fd -> WebSocket, while the send queue is under the high-water mark. */
static void
in_read(struct wsbridge *b)
{
    while (!b->in_eof && !b->we_closed && !b->ws_gone && ws_queued(b->w) < b->cfg.hwm) {
        ssize_t n = read(b->cfg.in_fd, b->in, b->cfg.chunk);

        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            return;
        if (n <= 0) {
            b->in_eof = 1;
            return;
        }
        if (ws_send(b->w, WS_OP_BINARY, b->in, (size_t)n) != 0) {
            b->ws_gone = 1;
            return;
        }
    }
}

/* Sends our close once; the peer's answer is due within wait_ms. */
static void
close_start(struct wsbridge *b, uint16_t code, const char *reason, int wait_ms)
{
    if (b->we_closed)
        return;
    b->we_closed = 1;
    if (b->ws_gone)
        return;
    ws_close(b->w, code, reason);
    b->close_deadline = time_mono_ms() + wait_ms;
    if (ws_pump(b->w, 0) != 0)
        b->ws_gone = 1;
}

/* Turns what happened in this round into closes, deadlines and the end of out_fd. */
static void
ends_check(struct wsbridge *b, int64_t now)
{
    if (b->in_eof)
        close_start(b, 1000, b->cfg.in_eof_reason, b->cfg.close_wait_ms);
    if (b->out_dead)
        close_start(b, 1000, b->cfg.out_gone_reason, b->cfg.close_wait_ms);
    if (!b->ws_gone && b->close_deadline != 0 && now >= b->close_deadline)
        b->ws_gone = 1; /* the peer never answered our close */
    if (!b->ws_gone && !b->we_closed && b->cfg.dead_ms > 0 &&
        now - ws_last_rx_ms(b->w) >= b->cfg.dead_ms) {
        b->silent = 1;
        return;
    }
    if (!b->ws_gone && !b->we_closed && b->cfg.ping_ms > 0 &&
        now - b->last_ping_ms >= b->cfg.ping_ms && now - ws_last_rx_ms(b->w) >= b->cfg.ping_ms) {
        (void)ws_ping(b->w);
        b->last_ping_ms = now;
        if (ws_pump(b->w, 0) != 0)
            b->ws_gone = 1;
    }
    if (b->ws_gone && !b->draining) {
        /* From here on out_fd gets close_wait_ms for each bite of what is left. */
        b->draining = 1;
        b->out_progress_ms = now;
    }
    /* The WebSocket is over and out_fd has everything: its reader sees EOF. */
    if (b->ws_gone && (wsbridge_pending(b) == 0 || b->out_dead) && !b->out_shut) {
        (void)shutdown(b->cfg.out_fd, SHUT_WR); /* ENOTSOCK for a pipe: the exit closes it */
        b->out_shut = 1;
    }
}

/* The poll timeout: timeout_ms (< 0: none) or the next deadline, whichever comes first. */
static int
next_timeout(const struct wsbridge *b, int64_t now, int timeout_ms)
{
    int64_t due = -1, t;

#define DUE(x)                                                                                     \
    do {                                                                                           \
        t = (x);                                                                                   \
        if (due < 0 || t < due)                                                                    \
            due = t;                                                                               \
    } while (0)
    if (b->ws_gone) {
        DUE(b->out_progress_ms + b->cfg.close_wait_ms);
    } else if (b->close_deadline != 0) {
        DUE(b->close_deadline);
    } else {
        if (b->cfg.dead_ms > 0)
            DUE(ws_last_rx_ms(b->w) + b->cfg.dead_ms);
        if (b->cfg.ping_ms > 0) {
            t = ws_last_rx_ms(b->w) > b->last_ping_ms ? ws_last_rx_ms(b->w) : b->last_ping_ms;
            DUE(t + b->cfg.ping_ms);
        }
    }
#undef DUE
    if (due >= 0)
        due = due > now ? due - now : 0;
    if (timeout_ms >= 0 && (due < 0 || timeout_ms < due))
        due = timeout_ms;
    return due > 0x7fffffff ? 0x7fffffff : (int)due;
}

/* Done: the peer went silent, poll failed, or the WebSocket is over and out_fd has had its turn. */
static int
done(const struct wsbridge *b)
{
    if (b->silent || b->failed)
        return 1;
    if (!b->ws_gone)
        return 0;
    if (wsbridge_pending(b) == 0 || b->out_dead)
        return 1;
    return time_mono_ms() >= b->out_progress_ms + b->cfg.close_wait_ms;
}
