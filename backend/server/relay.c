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
 * Splicing. Both peers are WebSocket clients, so every frame they send is
 * masked, and every frame we send is not. Rather than decode whole messages
 * (wslay copies each payload three or four times and unmasks it a byte at a
 * time, which measured at ~0.8 GB/s per core, more than SSH can spare on a
 * two-core box), the relay forwards frame by frame, cut-through:
 *
 *     read(src) -> buf -> parse header -> unmask payload in place (8 bytes
 *     at a time) -> writev(dst, {unmasked header, payload})
 *
 * A frame's payload is forwarded as it arrives; the header keeps FIN, the
 * opcode and the length, so fragmentation is preserved. Nothing is
 * allocated per frame. Each direction owns one buffer (16 KiB, growing to
 * 256 KiB under bulk traffic); while the destination cannot take more, the
 * buffer fills and we stop reading the source, so TCP flow control holds end
 * to end and at most one buffer per direction is ever held.
 *
 * Control frames are answered here: ping gets pong, a close is answered and
 * passed on to the other side after the data that preceded it. Frames we
 * originate (pong, ping, close) go into a side's small control buffer and
 * are written only at a frame boundary of the data flowing to that side.
 * Once a close has been queued to a side, data for it is dropped. The pair
 * ends when both sides have finished the close handshake or are gone, or
 * RELAY_CLOSE_WAIT_MS after the first close. A side that sends nothing for
 * RELAY_PING_MS is pinged; one that stays silent for RELAY_IDLE_MS while we
 * are ready to read from it is closed (1001, "... timed out"): upgraded
 * sockets get no timeout from libmicrohttpd, and reverse proxies drop quiet
 * connections. A side held back by flow control is not idle.
 *
 * Limits: a message over WS_DEFAULT_MAX_MSG closes both sides with 1009;
 * a frame that breaks the protocol (unmasked, reserved bits, bad opcode or
 * control frame) closes its sender with 1002 and the other side with 1011.
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
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#include "err.h"
#include "log.h"
#include "relay.h"
#include "util.h"
#include "ws.h"
#include "xmalloc.h"

#define RELAY_BUF_MIN (16u * 1024)
#define RELAY_BUF_MAX (256u * 1024)
#define RELAY_CTL_MAX 1024 /* control frames we originate, per side */
#define RELAY_MAX_MSG WS_DEFAULT_MAX_MSG
#define RELAY_BATCH 16 /* whole frames sent with the current one in one writev */
/* Timers (a test may define shorter ones before including this file). */
#ifndef RELAY_CLOSE_WAIT_MS
#define RELAY_CLOSE_WAIT_MS 2000 /* close handshake budget */
#endif
#ifndef RELAY_GOODBYE_MS
#define RELAY_GOODBYE_MS 1000 /* linger after a close sent before pairing */
#endif
#ifndef RELAY_PING_MS
#define RELAY_PING_MS 30000 /* ping a side that has been quiet this long */
#endif
#ifndef RELAY_IDLE_MS
#define RELAY_IDLE_MS 90000 /* and give up on it after this long */
#endif

enum conn_state { CONN_PENDING, CONN_PAIRED, CONN_DONE };

struct relay_conn {
    struct relay_conn *next;
    char *id, *session, *agent, *user;
    int64_t deadline_ms; /* for the dial-back */
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

/* One end of a spliced pair. */
struct side {
    int fd;
    const char *name;
    uint8_t ctl[RELAY_CTL_MAX]; /* frames we originate, written at frame boundaries */
    size_t ctl_len, ctl_off;
    unsigned close_queued : 1; /* no more frames to it after the close */
    unsigned close_sent : 1;
    unsigned close_rcvd : 1; /* it sent a close (or we stopped listening) */
    unsigned dead : 1;       /* socket gone: no more I/O */
    unsigned eof : 1;
    unsigned wblocked : 1; /* last write hit EAGAIN: wait for POLLOUT */
    unsigned hup_done : 1; /* its EOF or error has been passed on */
    int64_t last_rx_ms, last_ping_ms;
};

/* One direction: frames read from src, forwarded to dst. */
struct dir {
    struct side *src, *dst;
    uint8_t *buf; /* [rpos, wpos): read, not yet forwarded */
    size_t cap, rpos, wpos;
    unsigned in_frame : 1; /* a data frame's header is parsed, payload follows */
    unsigned in_msg : 1;   /* inside a fragmented message */
    unsigned drop : 1;     /* the frame is dropped (dst closed before it began) */
    uint8_t mask[4];
    uint8_t hdr[10]; /* the frame's header as dst gets it */
    size_t hdr_len, hdr_off;
    uint64_t remaining; /* payload bytes of the frame not yet forwarded */
    uint64_t poff;      /* payload offset of buf[rpos] (for the mask) */
    size_t unmasked;    /* bytes at rpos already unmasked */
    uint64_t msg_len;
    _Atomic uint64_t *bytes;
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

/* Builds a server (unmasked) frame header; returns its length. */
static size_t
frame_header(uint8_t *h, int fin, uint8_t opcode, uint64_t len)
{
    h[0] = (uint8_t)((fin ? 0x80 : 0) | (opcode & 0x0f));
    if (len < 126) {
        h[1] = (uint8_t)len;
        return 2;
    }
    if (len < 65536) {
        h[1] = 126;
        h[2] = (uint8_t)(len >> 8);
        h[3] = (uint8_t)len;
        return 4;
    }
    h[1] = 127;
    for (int i = 0; i < 8; i++)
        h[2 + i] = (uint8_t)(len >> (56 - 8 * i));
    return 10;
}

/* XORs p with the frame mask; off is the payload offset of p[0]. */
static void
unmask(uint8_t *p, size_t n, const uint8_t mask[4], uint64_t off)
{
    uint8_t k8[8];
    uint64_t k;

    while (n > 0 && ((uintptr_t)p & 7) != 0) {
        *p++ ^= mask[off++ & 3];
        n--;
    }
    for (int i = 0; i < 8; i++)
        k8[i] = mask[(off + (uint64_t)i) & 3];
    memcpy(&k, k8, 8);
    /* Whole words keep the key's phase (8 is a multiple of 4). */
    for (; n >= 8; n -= 8, p += 8) {
        uint64_t v;

        memcpy(&v, p, 8);
        v ^= k;
        memcpy(p, &v, 8);
    }
    for (size_t i = 0; i < n; i++)
        p[i] ^= k8[i];
}

/* ------------------------------------------------------------ side output */

/* Appends a control frame for x. Returns 0, or -1 when there is no room. */
static int
ctl_add(struct side *x, uint8_t opcode, const void *payload, size_t len)
{
    if (x->close_queued || x->dead || len > 125)
        return -1;
    if (x->ctl_off > 0 && x->ctl_off == x->ctl_len)
        x->ctl_off = x->ctl_len = 0;
    if (x->ctl_len + 2 + len > RELAY_CTL_MAX)
        return -1;
    x->ctl[x->ctl_len++] = (uint8_t)(0x80 | opcode);
    x->ctl[x->ctl_len++] = (uint8_t)len;
    if (len > 0)
        memcpy(x->ctl + x->ctl_len, payload, len);
    x->ctl_len += len;
    return 0;
}

/* Queues a close frame for x (once); later data for x is dropped. */
static void
queue_close(struct side *x, uint16_t code, const char *reason, size_t reason_len)
{
    uint8_t p[125];

    if (x->close_queued || x->dead)
        return;
    if (reason_len > sizeof(p) - 2) {
        reason_len = sizeof(p) - 2;
        while (reason_len > 0 && ((unsigned char)reason[reason_len] & 0xC0) == 0x80)
            reason_len--; /* never cut a UTF-8 character */
    }
    p[0] = (uint8_t)(code >> 8);
    p[1] = (uint8_t)code;
    if (reason_len > 0)
        memcpy(p + 2, reason, reason_len);
    /* Pongs may have filled the buffer: a close matters more. */
    if (x->ctl_len + 2 + 2 + reason_len > RELAY_CTL_MAX && x->ctl_off == 0)
        x->ctl_len = 0;
    if (code == 0)
        (void)ctl_add(x, 0x8, NULL, 0);
    else
        (void)ctl_add(x, 0x8, p, 2 + reason_len);
    x->close_queued = 1;
}

static void
queue_close_str(struct side *x, uint16_t code, const char *reason)
{
    queue_close(x, code, reason, reason ? strlen(reason) : 0);
}

/* Writes x's control frames. Returns 0 or -1 when x died. */
static int
ctl_flush(struct side *x)
{
    while (x->ctl_off < x->ctl_len && !x->wblocked && !x->dead) {
        ssize_t n = send(x->fd, x->ctl + x->ctl_off, x->ctl_len - x->ctl_off, MSG_NOSIGNAL);

        if (n < 0) {
            if (errno == EINTR)
                continue;
            if (errno == EAGAIN || errno == EWOULDBLOCK) {
                x->wblocked = 1;
                return 0;
            }
            x->dead = 1;
            return -1;
        }
        x->ctl_off += (size_t)n;
    }
    if (x->ctl_off == x->ctl_len && x->close_queued)
        x->close_sent = 1;
    return x->dead ? -1 : 0;
}

/* ------------------------------------------------------------- direction */

static void
dir_init(struct dir *d, struct side *src, struct side *dst, const char *pre, size_t pre_len,
         _Atomic uint64_t *bytes)
{
    memset(d, 0, sizeof(*d));
    d->src = src;
    d->dst = dst;
    d->bytes = bytes;
    d->cap = RELAY_BUF_MIN;
    while (d->cap < pre_len)
        d->cap *= 2;
    d->buf = xmalloc(d->cap);
    if (pre_len > 0)
        memcpy(d->buf, pre, pre_len);
    d->wpos = pre_len;
}

/* Free room for the next read, compacting when the tail runs short. */
static size_t
dir_room(struct dir *d)
{
    if (d->rpos == d->wpos) {
        d->rpos = d->wpos = 0;
    } else if (d->rpos > 0 && d->cap - d->wpos < d->cap / 4) {
        memmove(d->buf, d->buf + d->rpos, d->wpos - d->rpos);
        d->wpos -= d->rpos;
        d->rpos = 0;
    }
    return d->cap - d->wpos;
}

/* One read from src. Returns 0, or -1 when src is at EOF or gone. */
static int
dir_read(struct dir *d, int64_t now)
{
    size_t room = dir_room(d);
    ssize_t n;

    if (room == 0)
        return 0;
    do {
        n = recv(d->src->fd, d->buf + d->wpos, room, 0);
    } while (n < 0 && errno == EINTR);
    if (n < 0) {
        if (errno == EAGAIN || errno == EWOULDBLOCK)
            return 0;
        d->src->dead = 1;
        return -1;
    }
    if (n == 0) {
        d->src->eof = 1;
        return -1;
    }
    d->wpos += (size_t)n;
    d->src->last_rx_ms = now;
    /* The read took all the room of a mostly empty buffer: traffic is bulk. */
    if ((size_t)n == room && room >= d->cap / 2 && d->cap < RELAY_BUF_MAX) {
        d->cap *= 2;
        d->buf = xrealloc(d->buf, d->cap);
    }
    return 0;
}

/* Stops reading src after a protocol error and tells both ends. */
static void
dir_fail(struct dir *d, uint16_t code, const char *reason)
{
    queue_close_str(d->src, code, reason);
    d->src->close_rcvd = 1; /* we no longer listen to it */
    queue_close_str(d->dst, code == 1002 ? 1011 : code, reason);
    d->rpos = d->wpos = 0;
}

/* Handles a complete control frame from src (payload unmasked). */
static void
dir_control(struct dir *d, uint8_t opcode, uint8_t *p, size_t len)
{
    uint16_t code = 0;

    switch (opcode) {
    case 0x9: /* ping */
        (void)ctl_add(d->src, 0xA, p, len);
        break;
    case 0xA: /* pong */
        break;
    case 0x8: /* close: answer it, and pass it on after what came before */
        d->src->close_rcvd = 1;
        if (len >= 2)
            code = (uint16_t)(p[0] << 8 | p[1]);
        if (len == 1 || (len >= 2 && (code < 1000 || code == 1004 || code == 1005 || code == 1006 ||
                                      (code > 1014 && code < 3000) || code > 4999))) {
            queue_close_str(d->src, 1002, "invalid close frame");
            queue_close_str(d->dst, 1011, "peer sent an invalid close frame");
            break;
        }
        queue_close(d->src, code, (const char *)p + 2, len >= 2 ? len - 2 : 0);
        if (code == 0)
            queue_close_str(d->dst, 1000, NULL);
        else
            queue_close(d->dst, code, (const char *)p + 2, len - 2);
        break;
    }
}

/*
 * Parses the next frame header in d's buffer. Returns 1 when a frame was
 * taken (a data frame is now in_frame, or a control frame was handled), 0
 * when more bytes are needed, -1 after a protocol error.
 */
static int
dir_parse(struct dir *d)
{
    const uint8_t *b = d->buf + d->rpos;
    size_t avail = d->wpos - d->rpos, hlen = 2;
    uint8_t fin, opcode;
    uint64_t len;

    if (avail < 2)
        return 0;
    fin = b[0] >> 7;
    opcode = b[0] & 0x0f;
    len = b[1] & 0x7f;
    if ((b[0] & 0x70) != 0 || (b[1] & 0x80) == 0) {
        dir_fail(d, 1002, (b[1] & 0x80) ? "reserved bits set" : "client frames must be masked");
        return -1;
    }
    if (len == 126)
        hlen += 2;
    else if (len == 127)
        hlen += 8;
    if (avail < hlen + 4)
        return 0;
    if (len == 126) {
        len = (uint64_t)b[2] << 8 | b[3];
    } else if (len == 127) {
        len = 0;
        for (int i = 0; i < 8; i++)
            len = len << 8 | b[2 + i];
    }
    if (opcode >= 0x8) {
        uint8_t p[125];

        if (opcode > 0xA || !fin || len > 125) {
            dir_fail(d, 1002, "bad control frame");
            return -1;
        }
        if (avail < hlen + 4 + len)
            return 0;
        memcpy(p, b + hlen + 4, len);
        unmask(p, len, b + hlen, 0);
        d->rpos += hlen + 4 + len;
        dir_control(d, opcode, p, len);
        return 1;
    }
    if (opcode > 0x2 || (opcode == 0 && !d->in_msg) || (opcode != 0 && d->in_msg)) {
        dir_fail(d, 1002, "unexpected frame opcode");
        return -1;
    }
    d->msg_len = (opcode == 0 ? d->msg_len : 0) + len;
    if (len > RELAY_MAX_MSG || d->msg_len > RELAY_MAX_MSG) {
        dir_fail(d, 1009, "message too big");
        return -1;
    }
    d->in_msg = !fin;
    memcpy(d->mask, b + hlen, 4);
    d->rpos += hlen + 4;
    d->in_frame = 1;
    d->drop = d->dst->close_queued || d->dst->dead;
    d->remaining = len;
    d->poff = 0;
    d->unmasked = 0;
    d->hdr_len = frame_header(d->hdr, fin, opcode, len);
    d->hdr_off = 0;
    return 1;
}

/* A whole data frame already read, queued behind the current one in one writev. */
struct batch_ent {
    size_t pay;   /* buffer offset of its payload */
    uint64_t len; /* payload length */
    uint8_t hdr[10];
    size_t hdr_len;
    uint8_t mask[4];
    uint8_t fin, opcode;
};

/*
 * 1 when buf[pos] starts a valid data frame that has been read completely
 * (given the message state in_msg/msg_len before it): e describes it.
 * Anything else, control frames included, is left to dir_parse.
 */
static int
peek_frame(const struct dir *d, size_t pos, int in_msg, uint64_t msg_len, struct batch_ent *e)
{
    const uint8_t *b = d->buf + pos;
    size_t avail = d->wpos - pos, hlen = 2;
    uint64_t len;
    uint8_t fin, op;

    if (avail < 2 || (b[0] & 0x70) != 0 || (b[1] & 0x80) == 0)
        return 0;
    fin = b[0] >> 7;
    op = b[0] & 0x0f;
    len = b[1] & 0x7f;
    hlen += len == 126 ? 2 : len == 127 ? 8 : 0;
    if (avail < hlen + 4)
        return 0;
    if (len == 126) {
        len = (uint64_t)b[2] << 8 | b[3];
    } else if (len == 127) {
        len = 0;
        for (int i = 0; i < 8; i++)
            len = len << 8 | b[2 + i];
    }
    if (op > 0x2 || (op == 0 && !in_msg) || (op != 0 && in_msg) || len > RELAY_MAX_MSG ||
        (op == 0 ? msg_len : 0) + len > RELAY_MAX_MSG || avail - hlen - 4 < len)
        return 0;
    e->pay = pos + hlen + 4;
    e->len = len;
    memcpy(e->mask, b + hlen, 4);
    e->fin = fin;
    e->opcode = op;
    e->hdr_len = frame_header(e->hdr, fin, op, len);
    return 1;
}

/* Restores the masking of batch entries that were unmasked but not sent. */
static void
batch_remask(struct dir *d, struct batch_ent *e, int n)
{
    for (int i = 0; i < n; i++)
        unmask(d->buf + e[i].pay, (size_t)e[i].len, e[i].mask, 0);
}

/*
 * The current frame's bytes went out (all of them): takes n more bytes
 * written for the batch behind it. A batch frame the write ended inside
 * becomes the current frame; those after it are put back as they were
 * read (masked, unparsed). Returns 1 when everything went out.
 */
static int
batch_commit(struct dir *d, struct batch_ent *e, int n_ents, size_t n)
{
    for (int i = 0; i < n_ents; i++) {
        size_t w;

        d->msg_len = (e[i].opcode == 0 ? d->msg_len : 0) + e[i].len;
        d->in_msg = !e[i].fin;
        if (n >= e[i].hdr_len + e[i].len) {
            n -= e[i].hdr_len + (size_t)e[i].len;
            d->rpos = e[i].pay + (size_t)e[i].len;
            atomic_fetch_add_explicit(d->bytes, e[i].len, memory_order_relaxed);
            continue;
        }
        d->in_frame = 1;
        d->drop = 0;
        memcpy(d->mask, e[i].mask, 4);
        memcpy(d->hdr, e[i].hdr, e[i].hdr_len);
        d->hdr_len = e[i].hdr_len;
        d->hdr_off = n < e[i].hdr_len ? n : e[i].hdr_len;
        w = n - d->hdr_off;
        d->rpos = e[i].pay + w;
        d->remaining = e[i].len - w;
        d->poff = w;
        d->unmasked = (size_t)e[i].len - w;
        atomic_fetch_add_explicit(d->bytes, (uint64_t)w, memory_order_relaxed);
        batch_remask(d, e + i + 1, n_ents - i - 1);
        return 0;
    }
    d->in_frame = 0;
    return 1;
}

/*
 * Forwards the current data frame's bytes that are in the buffer, and when
 * it ends there, the whole frames read behind it, in one writev (up to
 * RELAY_BATCH of them): fewer syscalls, and fewer wake-ups at the other end.
 * Returns 1 when the frames are complete (a frame boundary), 0 when waiting
 * (for data or for dst), -1 when dst died.
 */
static int
dir_forward(struct dir *d)
{
    struct side *dst = d->dst;

    for (;;) {
        size_t avail = d->wpos - d->rpos, hrest = d->hdr_len - d->hdr_off, cur;
        struct iovec iov[2 + 2 * RELAY_BATCH];
        struct batch_ent ents[RELAY_BATCH];
        int n_iov = 0, n_ents = 0;
        ssize_t n;

        if (avail > d->remaining)
            avail = (size_t)d->remaining;
        if (d->drop || dst->dead) {
            /* Nobody to give it to (and none of it went out): drop it. */
            d->drop = 1;
            d->rpos += avail;
            d->remaining -= avail;
            d->poff += avail;
            d->unmasked = 0;
            break;
        }
        if (hrest == 0 && avail == 0)
            break;
        if (dst->wblocked)
            return 0;
        /* Our own frames for dst go first, and never inside this one. */
        if (d->hdr_off == 0 && dst->ctl_off < dst->ctl_len) {
            if (ctl_flush(dst) != 0 || dst->ctl_off < dst->ctl_len)
                return 0;
        }
        if (d->unmasked < avail) {
            unmask(d->buf + d->rpos + d->unmasked, avail - d->unmasked, d->mask,
                   d->poff + d->unmasked);
            d->unmasked = avail;
        }
        if (hrest > 0)
            iov[n_iov++] = (struct iovec){d->hdr + d->hdr_off, hrest};
        if (avail > 0)
            iov[n_iov++] = (struct iovec){d->buf + d->rpos, avail};
        if (avail == d->remaining && !dst->close_queued) {
            size_t pos = d->rpos + avail;
            int in_msg = d->in_msg;
            uint64_t msg_len = d->msg_len;

            while (n_ents < RELAY_BATCH && peek_frame(d, pos, in_msg, msg_len, &ents[n_ents])) {
                struct batch_ent *e = &ents[n_ents++];

                msg_len = (e->opcode == 0 ? msg_len : 0) + e->len;
                in_msg = !e->fin;
                unmask(d->buf + e->pay, (size_t)e->len, e->mask, 0);
                iov[n_iov++] = (struct iovec){e->hdr, e->hdr_len};
                if (e->len > 0)
                    iov[n_iov++] = (struct iovec){d->buf + e->pay, (size_t)e->len};
                pos = e->pay + (size_t)e->len;
            }
        }
        n = writev(dst->fd, iov, n_iov);
        if (n < 0) {
            batch_remask(d, ents, n_ents);
            if (errno == EINTR)
                continue;
            if (errno == EAGAIN || errno == EWOULDBLOCK) {
                dst->wblocked = 1;
                return 0;
            }
            dst->dead = 1;
            return -1;
        }
        if ((size_t)n < hrest) {
            batch_remask(d, ents, n_ents);
            d->hdr_off += (size_t)n;
            dst->wblocked = 1;
            return 0;
        }
        d->hdr_off = d->hdr_len;
        n -= (ssize_t)hrest;
        cur = (size_t)n < avail ? (size_t)n : avail;
        d->rpos += cur;
        d->remaining -= cur;
        d->poff += cur;
        d->unmasked -= cur;
        atomic_fetch_add_explicit(d->bytes, (uint64_t)cur, memory_order_relaxed);
        if (cur < avail) {
            batch_remask(d, ents, n_ents);
            dst->wblocked = 1; /* a short write: the socket buffer is full */
            return 0;
        }
        if (n_ents > 0) {
            if (batch_commit(d, ents, n_ents, (size_t)n - cur))
                return 1;
            dst->wblocked = 1;
            return 0;
        }
    }
    if (d->remaining == 0 && (d->drop || d->hdr_off == d->hdr_len)) {
        d->in_frame = 0;
        d->drop = 0;
        return 1;
    }
    return 0;
}

/* 1 when part of the current frame went out to dst: nothing else may go to dst now. */
static int
dir_started(const struct dir *d)
{
    return d->in_frame && !d->drop && d->hdr_off > 0;
}

/* Moves what can be moved from src to dst, control frames included. */
static void
dir_run(struct dir *d)
{
    struct side *src = d->src, *dst = d->dst;

    for (;;) {
        if (!dir_started(d))
            (void)ctl_flush(dst);
        if (!d->in_frame) {
            if (src->close_rcvd)
                return;
            if (dir_parse(d) <= 0)
                break;
            continue;
        }
        if (dir_forward(d) <= 0)
            break;
    }
    /*
     * src hit EOF or an error without a close. Once what it sent before is
     * through (or can never be completed), tell dst.
     */
    if ((src->eof || src->dead) && !src->close_rcvd && !src->hup_done &&
        (!d->in_frame || d->rpos == d->wpos)) {
        src->hup_done = 1;
        src->dead = 1;
        if (dir_started(d) && d->remaining > 0) {
            dst->dead = 1; /* half a frame went out: no valid close is possible */
            return;
        }
        queue_close_str(dst, 1001,
                        src->name[0] == 'a' ? "agent disconnected" : "participant disconnected");
        (void)ctl_flush(dst);
    }
}

/* ------------------------------------------------------------------ splice */

static int
side_finished(const struct side *x)
{
    return x->dead || (x->close_sent && x->close_rcvd);
}

/* Takes the close request of c, if any (relay_close, relay_free). */
static int
take_close_request(struct relay *rl, struct relay_conn *c, uint16_t *code, char *reason,
                   size_t reason_len)
{
    int req;

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
 * Pings quiet sides; closes the pair when one has been silent too long while
 * we were ready to read from it (a side held back by flow control is not
 * idle: the loop keeps its last_rx_ms fresh).
 */
static void
check_idle(struct side *s, int64_t now)
{
    for (int i = 0; i < 2; i++) {
        struct side *x = &s[i];

        if (x->dead || x->close_queued)
            continue;
        if (now - x->last_rx_ms >= RELAY_IDLE_MS) {
            queue_close_str(&s[0], 1001, i == 0 ? "participant timed out" : "agent timed out");
            queue_close_str(&s[1], 1001, i == 0 ? "participant timed out" : "agent timed out");
            return;
        }
        if (now - x->last_rx_ms >= RELAY_PING_MS && now - x->last_ping_ms >= RELAY_PING_MS) {
            (void)ctl_add(x, 0x9, "airlock", 7);
            x->last_ping_ms = now;
        }
    }
}

static void
pair_splice(struct relay *rl, struct relay_conn *c, struct upgraded *pu, struct upgraded *au)
{
    struct side s[2];
    struct dir d[2];
    int64_t now = time_mono_ms(), close_deadline = 0;

    memset(s, 0, sizeof(s));
    s[0].fd = pu->fd;
    s[0].name = "participant";
    s[1].fd = au->fd;
    s[1].name = "agent";
    s[0].last_rx_ms = s[1].last_rx_ms = now;
    s[0].last_ping_ms = s[1].last_ping_ms = now;
    dir_init(&d[0], &s[0], &s[1], pu->extra, pu->extra_len, &rl->bytes_up);
    dir_init(&d[1], &s[1], &s[0], au->extra, au->extra_len, &rl->bytes_down);

    for (;;) {
        struct pollfd p[3];
        int timeout;
        uint16_t code;
        char reason[124];

        dir_run(&d[0]);
        dir_run(&d[1]);
        /* Frames for a side with nothing in flight toward it can go now. */
        for (int i = 0; i < 2; i++)
            if (!dir_started(&d[1 - i]))
                (void)ctl_flush(&s[i]);
        if (side_finished(&s[0]) && side_finished(&s[1]))
            break;
        now = time_mono_ms();
        if (close_deadline == 0 &&
            (s[0].close_queued || s[1].close_queued || s[0].dead || s[1].dead))
            close_deadline = now + RELAY_CLOSE_WAIT_MS;
        if (close_deadline != 0 && now >= close_deadline)
            break;
        for (int i = 0; i < 2; i++) {
            struct side *x = &s[i];

            p[i].fd = x->fd;
            p[i].events = 0;
            p[i].revents = 0;
            if (x->dead)
                continue;
            if (!x->close_rcvd && !x->eof && dir_room(&d[i]) > 0)
                p[i].events |= POLLIN;
            else
                x->last_rx_ms = now; /* not asking it for anything: not idle */
            if (x->wblocked)
                p[i].events |= POLLOUT;
            if (p[i].events == 0)
                p[i].fd = -1;
        }
        p[2] = (struct pollfd){c->wake_fd, POLLIN, 0};
        timeout = close_deadline ? (int)(close_deadline - now) : RELAY_PING_MS / 2;
        if (poll(p, 3, timeout) < 0 && errno != EINTR) {
            log_warn("poll: %s", strerror(errno));
            break;
        }
        now = time_mono_ms();
        if (p[2].revents & POLLIN) {
            drain_wake(c->wake_fd);
            if (take_close_request(rl, c, &code, reason, sizeof(reason))) {
                queue_close_str(&s[0], code, reason);
                queue_close_str(&s[1], code, reason);
            }
        }
        for (int i = 0; i < 2; i++) {
            if (p[i].revents & (POLLOUT | POLLERR | POLLHUP))
                s[i].wblocked = 0;
            if (p[i].revents & (POLLIN | POLLERR | POLLHUP))
                (void)dir_read(&d[i], now);
        }
        check_idle(s, now);
    }
    free(d[0].buf);
    free(d[1].buf);
}

/*
 * Sends a close frame on a socket that never got spliced, then lingers
 * briefly (reading and dropping) so that the peer reads the close before
 * the connection goes: closing with unread input would send a reset.
 */
static void
goodbye(int fd, uint16_t code, const char *reason)
{
    uint8_t f[127];
    size_t n = reason ? strlen(reason) : 0;
    int64_t end = time_mono_ms() + RELAY_GOODBYE_MS;
    ssize_t w;

    if (n > 123)
        n = 123;
    f[0] = 0x88;
    f[1] = (uint8_t)(2 + n);
    f[2] = (uint8_t)(code >> 8);
    f[3] = (uint8_t)code;
    memcpy(f + 4, reason, n);
    w = send(fd, f, 4 + n, MSG_NOSIGNAL);
    if (w != (ssize_t)(4 + n))
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

int
relay_expect(struct relay *rl, const char *conn_id, const char *session, const char *agent,
             const char *user, int cap)
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
    pair_splice(rl, c, u, c->agent_u);
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

void
relay_close(struct relay *rl, const char *session, const char *user, const char *reason)
{
    struct relay_conn *c;

    pthread_mutex_lock(&rl->mu);
    for (c = rl->conns; c != NULL; c = c->next) {
        if (strcmp(c->session, session) != 0 || (user != NULL && strcmp(c->user, user) != 0))
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
relay_get_stats(struct relay *rl, struct relay_stats *st)
{
    st->conns_active = atomic_load(&rl->n_active);
    st->conns_pending = atomic_load(&rl->n_pending);
    st->conns_total = atomic_load(&rl->n_total);
    st->bytes_up = atomic_load(&rl->bytes_up);
    st->bytes_down = atomic_load(&rl->bytes_down);
}
