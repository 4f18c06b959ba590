/*
 * A WebSocket client peer for tests: a wslay client context over a plain
 * non-blocking fd (one end of a socketpair), independent of backend/common/ws.c,
 * so that ws.c and relay.c are checked against a second implementation.
 *
 * Received data is checked as a stream: a binary payload is compared against
 * a deterministic byte pattern (pattern_fill) as it arrives, chunk by chunk,
 * so tens of megabytes need no buffer.
 */
#ifndef AIRLOCK_WS_TESTPEER_H
#define AIRLOCK_WS_TESTPEER_H
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <openssl/rand.h>
#include <wslay/wslay.h>

struct peer {
    int fd;
    wslay_event_context_ptr ctx;
    uint64_t seed_rx;  /* pattern the binary stream should follow */
    uint64_t rx_bytes; /* binary payload bytes received */
    uint64_t rx_bad;   /* bytes that did not match the pattern */
    uint64_t tx_bytes; /* binary payload bytes queued */
    int n_msgs;        /* complete data messages */
    int n_text;
    char last_text[512];
    int n_pongs;
    int n_pings;
    int got_close;
    uint16_t close_code;
    char close_reason[128];
    int eof;
    int cur_opcode;  /* opcode of the frame being received */
    int data_opcode; /* opcode of the data message being received */
};

/* Byte i of the pattern stream with seed s: cheap, position-dependent. */
static inline uint8_t
pattern_byte(uint64_t s, uint64_t i)
{
    uint64_t x = (i >> 3) * 0x9E3779B97F4A7C15ull ^ s;

    x ^= x >> 29;
    x *= 0xBF58476D1CE4E5B9ull;
    x ^= x >> 32;
    return (uint8_t)(x >> ((i & 7) * 8));
}

static inline void
pattern_fill(uint8_t *buf, size_t len, uint64_t s, uint64_t off)
{
    for (size_t i = 0; i < len; i++)
        buf[i] = pattern_byte(s, off + i);
}

static ssize_t
peer_recv_cb(wslay_event_context_ptr ctx, uint8_t *buf, size_t len, int flags, void *ud)
{
    struct peer *p = ud;
    ssize_t n;

    (void)flags;
    do {
        n = recv(p->fd, buf, len, 0);
    } while (n < 0 && errno == EINTR);
    if (n > 0)
        return n;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
        wslay_event_set_error(ctx, WSLAY_ERR_WOULDBLOCK);
        return -1;
    }
    p->eof = 1;
    wslay_event_set_error(ctx, WSLAY_ERR_CALLBACK_FAILURE);
    return -1;
}

static ssize_t
peer_send_cb(wslay_event_context_ptr ctx, const uint8_t *data, size_t len, int flags, void *ud)
{
    struct peer *p = ud;
    ssize_t n;

    (void)flags;
    do {
        n = send(p->fd, data, len, MSG_NOSIGNAL);
    } while (n < 0 && errno == EINTR);
    if (n >= 0)
        return n;
    wslay_event_set_error(ctx, (errno == EAGAIN || errno == EWOULDBLOCK)
                                   ? WSLAY_ERR_WOULDBLOCK
                                   : WSLAY_ERR_CALLBACK_FAILURE);
    return -1;
}

static int
peer_genmask_cb(wslay_event_context_ptr ctx, uint8_t *buf, size_t len, void *ud)
{
    (void)ctx;
    (void)ud;
    return RAND_bytes(buf, (int)len) == 1 ? 0 : -1;
}

static void
peer_frame_start_cb(wslay_event_context_ptr ctx,
                    const struct wslay_event_on_frame_recv_start_arg *arg, void *ud)
{
    struct peer *p = ud;

    (void)ctx;
    if (arg->opcode == WSLAY_TEXT_FRAME || arg->opcode == WSLAY_BINARY_FRAME)
        p->data_opcode = arg->opcode;
    p->cur_opcode = arg->opcode == 0 ? p->data_opcode : arg->opcode;
}

static void
peer_chunk_cb(wslay_event_context_ptr ctx, const struct wslay_event_on_frame_recv_chunk_arg *arg,
              void *ud)
{
    struct peer *p = ud;

    (void)ctx;
    if (p->cur_opcode == WSLAY_BINARY_FRAME) {
        for (size_t i = 0; i < arg->data_length; i++)
            if (arg->data[i] != pattern_byte(p->seed_rx, p->rx_bytes + i))
                p->rx_bad++;
        p->rx_bytes += arg->data_length;
    } else if (p->cur_opcode == WSLAY_TEXT_FRAME) {
        size_t have = strlen(p->last_text), n = arg->data_length;

        if (have + n >= sizeof(p->last_text))
            n = sizeof(p->last_text) - 1 - have;
        memcpy(p->last_text + have, arg->data, n);
        p->last_text[have + n] = '\0';
    }
}

static void
peer_msg_cb(wslay_event_context_ptr ctx, const struct wslay_event_on_msg_recv_arg *arg, void *ud)
{
    struct peer *p = ud;

    (void)ctx;
    switch (arg->opcode) {
    case WSLAY_CONNECTION_CLOSE:
        p->got_close = 1;
        p->close_code = arg->status_code;
        if (arg->msg_length > 2) {
            size_t n = arg->msg_length - 2;

            if (n >= sizeof(p->close_reason))
                n = sizeof(p->close_reason) - 1;
            memcpy(p->close_reason, arg->msg + 2, n);
            p->close_reason[n] = '\0';
        }
        break;
    case WSLAY_PONG:
        p->n_pongs++;
        break;
    case WSLAY_PING:
        p->n_pings++;
        break;
    case WSLAY_TEXT_FRAME:
        p->n_text++;
        p->n_msgs++;
        break;
    case WSLAY_BINARY_FRAME:
        p->n_msgs++;
        break;
    }
}

/* A client peer on fd (made non-blocking); buffering off, data checked by chunk. */
static inline void
peer_init(struct peer *p, int fd, uint64_t seed_rx)
{
    struct wslay_event_callbacks cb = {
        .recv_callback = peer_recv_cb,
        .send_callback = peer_send_cb,
        .genmask_callback = peer_genmask_cb,
        .on_frame_recv_start_callback = peer_frame_start_cb,
        .on_frame_recv_chunk_callback = peer_chunk_cb,
        .on_msg_recv_callback = peer_msg_cb,
    };

    memset(p, 0, sizeof(*p));
    p->fd = fd;
    p->seed_rx = seed_rx;
    fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
    if (wslay_event_context_client_init(&p->ctx, &cb, p) != 0)
        abort();
    wslay_event_config_set_no_buffering(p->ctx, 1);
}

static inline void
peer_free(struct peer *p)
{
    wslay_event_context_free(p->ctx);
    p->ctx = NULL;
    if (p->fd >= 0)
        close(p->fd);
    p->fd = -1;
}

static inline short
peer_events(struct peer *p)
{
    return (short)((wslay_event_want_read(p->ctx) ? POLLIN : 0) |
                   (wslay_event_want_write(p->ctx) ? POLLOUT : 0));
}

static inline int
peer_alive(struct peer *p)
{
    return !p->eof && p->fd >= 0 &&
           (wslay_event_want_read(p->ctx) || wslay_event_want_write(p->ctx));
}

/* Reads and writes what it can. Returns 0 or -1 when the connection failed. */
static inline int
peer_pump(struct peer *p, short revents)
{
    if ((revents & (POLLIN | POLLHUP | POLLERR)) && wslay_event_recv(p->ctx) != 0)
        return -1;
    if (wslay_event_want_write(p->ctx) && wslay_event_send(p->ctx) != 0)
        return -1;
    return 0;
}

static inline void
peer_send(struct peer *p, int opcode, const void *data, size_t len)
{
    struct wslay_event_msg m = {(uint8_t)opcode, data, len};

    if (wslay_event_queue_msg(p->ctx, &m) != 0)
        abort();
}

/* Queues len bytes of the pattern stream with seed s (from the current tx offset). */
static inline void
peer_send_pattern(struct peer *p, uint64_t s, size_t len)
{
    uint8_t *buf = malloc(len ? len : 1);

    pattern_fill(buf, len, s, p->tx_bytes);
    peer_send(p, WSLAY_BINARY_FRAME, buf, len);
    p->tx_bytes += len;
    free(buf);
}

static inline int64_t
peer_now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Pumps a set of peers until done(arg) or timeout_ms. Returns 0 when done. */
static inline int
peers_run(struct peer **ps, int n, int (*done)(void *), void *arg, int timeout_ms)
{
    int64_t end = peer_now_ms() + timeout_ms;

    while (!done(arg)) {
        struct pollfd pf[8];

        if (peer_now_ms() > end)
            return -1;
        for (int i = 0; i < n; i++)
            pf[i] = (struct pollfd){peer_alive(ps[i]) ? ps[i]->fd : -1, peer_events(ps[i]), 0};
        if (poll(pf, (nfds_t)n, 20) < 0 && errno != EINTR)
            return -1;
        for (int i = 0; i < n; i++)
            if (peer_alive(ps[i]))
                (void)peer_pump(ps[i], pf[i].revents);
    }
    return 0;
}

#endif
