/*
 * SSH relay, the splice: moves the frames of one paired participant and
 * agent WebSocket between them (relay.c pairs them, relay_splice.h).
 *
 * Both peers are WebSocket clients, so every frame they send is masked, and
 * every frame we send is not. Rather than decode whole messages (wslay
 * copies each payload three or four times and unmasks it a byte at a time,
 * which measured at ~0.8 GB/s per core, more than SSH can spare on a
 * two-core box), the relay forwards frame by frame, cut-through:
 *
 *     read(src) -> buf -> parse header -> unmask payload in place (8 bytes
 *     at a time) -> writev(dst, {unmasked header, payload})
 *
 * Headers are decoded and encoded, and payloads unmasked, by wsframe.c.
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
 * A read-only browser terminal (io->refuse_input) may send text (resize)
 * but no binary (keystrokes): its first binary frame closes both sides with
 * 1008, before any of it reaches the agent.
 *
 * Limits: a message over WS_DEFAULT_MAX_MSG closes both sides with 1009;
 * a frame that breaks the protocol (unmasked, reserved bits, bad opcode or
 * control frame) closes its sender with 1002 and the other side with 1011.
 * XXX A length not in its shortest form breaks RFC 6455 5.2 too, but the
 * relay has always passed such frames on (re-encoded, so the other side
 * never sees it); frame_ok() keeps that.
 */
#include <errno.h>
#include <poll.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include "err.h"
#include "log.h"
#include "relay_splice.h"
#include "util.h"
#include "ws.h"
#include "wsframe.h"
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
#ifndef RELAY_PING_MS
#define RELAY_PING_MS 30000 /* ping a side that has been quiet this long */
#endif
#ifndef RELAY_IDLE_MS
#define RELAY_IDLE_MS 90000 /* and give up on it after this long */
#endif

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
    unsigned in_frame : 1;  /* a data frame's header is parsed, payload follows */
    unsigned in_msg : 1;    /* inside a fragmented message */
    unsigned drop : 1;      /* the frame is dropped (dst closed before it began) */
    unsigned no_binary : 1; /* binary messages from src are refused (read-only terminal) */
    uint8_t mask[4];
    uint8_t hdr[WSFRAME_HDR_MAX]; /* the frame's header as dst gets it */
    size_t hdr_len, hdr_off;
    uint64_t remaining; /* payload bytes of the frame not yet forwarded */
    uint64_t poff;      /* payload offset of buf[rpos] (for the mask) */
    size_t unmasked;    /* bytes at rpos already unmasked */
    uint64_t msg_len;
    _Atomic uint64_t *bytes;
};

/* ------------------------------------------------------------ side output */

/* Appends a control frame for x. Returns 0, or -1 when there is no room. */
static int
ctl_add(struct side *x, uint8_t opcode, const void *payload, size_t len)
{
    uint8_t h[WSFRAME_HDR_MAX];
    size_t hl;

    if (x->close_queued || x->dead || len > WSFRAME_CONTROL_MAX)
        return -1;
    if (x->ctl_off > 0 && x->ctl_off == x->ctl_len)
        x->ctl_off = x->ctl_len = 0;
    if (x->ctl_len + 2 + len > RELAY_CTL_MAX)
        return -1;
    hl = wsframe_encode(h, 1, opcode, len, NULL); /* 2 bytes: len <= 125 */
    memcpy(x->ctl + x->ctl_len, h, hl);
    x->ctl_len += hl;
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
 * 1 when a header the relay passes on: a valid one, or one whose only fault
 * is a length not in its shortest form (see the XXX at the top).
 */
static int
frame_ok(int r, const struct wsframe_hdr *h)
{
    return r == 0 || (r == ERR_INVALID && h->err == WSFRAME_E_LENGTH);
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
    size_t avail = d->wpos - d->rpos;
    struct wsframe_hdr h;
    int r = wsframe_decode(b, avail, &h);

    if (avail < 2)
        return 0;
    /* The first two bytes already tell these. */
    if (!h.masked || h.err == WSFRAME_E_RSV) {
        dir_fail(d, 1002, h.masked ? "reserved bits set" : "client frames must be masked");
        return -1;
    }
    if (r == ERR_AGAIN)
        return 0;
    if (!frame_ok(r, &h)) {
        /* A reserved opcode 0xB-0xF counts as a bad control frame, 0x3-0x7 as a bad data frame. */
        dir_fail(d, 1002,
                 h.opcode >= WSFRAME_CLOSE ? "bad control frame" : "unexpected frame opcode");
        return -1;
    }
    if (h.opcode >= WSFRAME_CLOSE) {
        uint8_t p[WSFRAME_CONTROL_MAX];

        if (avail < h.hdr_len + h.len)
            return 0;
        (void)wsframe_mask(p, b + h.hdr_len, (size_t)h.len, h.mask, 0);
        d->rpos += h.hdr_len + (size_t)h.len;
        dir_control(d, h.opcode, p, (size_t)h.len);
        return 1;
    }
    if ((h.opcode == WSFRAME_CONT && !d->in_msg) || (h.opcode != WSFRAME_CONT && d->in_msg)) {
        dir_fail(d, 1002, "unexpected frame opcode");
        return -1;
    }
    if (d->no_binary && h.opcode == WSFRAME_BINARY) {
        dir_fail(d, 1008, "read-only: input refused");
        return -1;
    }
    d->msg_len = (h.opcode == WSFRAME_CONT ? d->msg_len : 0) + h.len;
    if (h.len > RELAY_MAX_MSG || d->msg_len > RELAY_MAX_MSG) {
        dir_fail(d, 1009, "message too big");
        return -1;
    }
    d->in_msg = !h.fin;
    memcpy(d->mask, h.mask, 4);
    d->rpos += h.hdr_len;
    d->in_frame = 1;
    d->drop = d->dst->close_queued || d->dst->dead;
    d->remaining = h.len;
    d->poff = 0;
    d->unmasked = 0;
    d->hdr_len = wsframe_encode(d->hdr, h.fin, h.opcode, h.len, NULL);
    d->hdr_off = 0;
    return 1;
}

/* A whole data frame already read, queued behind the current one in one writev. */
struct batch_ent {
    size_t pay;   /* buffer offset of its payload */
    uint64_t len; /* payload length */
    uint8_t hdr[WSFRAME_HDR_MAX];
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
    size_t avail = d->wpos - pos;
    struct wsframe_hdr h;
    int r = wsframe_decode(d->buf + pos, avail, &h);

    if (!frame_ok(r, &h) || !h.masked || h.opcode > WSFRAME_BINARY ||
        (d->no_binary && h.opcode == WSFRAME_BINARY) || (h.opcode == WSFRAME_CONT && !in_msg) ||
        (h.opcode != WSFRAME_CONT && in_msg) || h.len > RELAY_MAX_MSG ||
        (h.opcode == WSFRAME_CONT ? msg_len : 0) + h.len > RELAY_MAX_MSG ||
        avail - h.hdr_len < h.len)
        return 0;
    e->pay = pos + h.hdr_len;
    e->len = h.len;
    memcpy(e->mask, h.mask, 4);
    e->fin = h.fin;
    e->opcode = h.opcode;
    e->hdr_len = wsframe_encode(e->hdr, h.fin, h.opcode, h.len, NULL);
    return 1;
}

/* Restores the masking of batch entries that were unmasked but not sent. */
static void
batch_remask(struct dir *d, struct batch_ent *e, int n)
{
    for (int i = 0; i < n; i++)
        (void)wsframe_mask(d->buf + e[i].pay, d->buf + e[i].pay, (size_t)e[i].len, e[i].mask, 0);
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

/* Nobody to give the current frame to (and none of it went out): drops its avail bytes. */
static void
dir_drop(struct dir *d, size_t avail)
{
    d->drop = 1;
    d->rpos += avail;
    d->remaining -= avail;
    d->poff += avail;
    d->unmasked = 0;
}

/*
 * Adds the whole data frames read behind the current one, from buffer
 * offset pos, to iov (up to RELAY_BATCH of them), unmasked, with their
 * headers as dst gets them; ents describes them. Returns how many.
 */
static int
batch_gather(struct dir *d, size_t pos, struct iovec *iov, int *n_iov, struct batch_ent *ents)
{
    int in_msg = d->in_msg, n_ents = 0;
    uint64_t msg_len = d->msg_len;

    while (n_ents < RELAY_BATCH && peek_frame(d, pos, in_msg, msg_len, &ents[n_ents])) {
        struct batch_ent *e = &ents[n_ents++];

        msg_len = (e->opcode == 0 ? msg_len : 0) + e->len;
        in_msg = !e->fin;
        (void)wsframe_mask(d->buf + e->pay, d->buf + e->pay, (size_t)e->len, e->mask, 0);
        iov[(*n_iov)++] = (struct iovec){e->hdr, e->hdr_len};
        if (e->len > 0)
            iov[(*n_iov)++] = (struct iovec){d->buf + e->pay, (size_t)e->len};
        pos = e->pay + (size_t)e->len;
    }
    return n_ents;
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
            dir_drop(d, avail);
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
            uint8_t *p = d->buf + d->rpos + d->unmasked;

            (void)wsframe_mask(p, p, avail - d->unmasked, d->mask,
                               (unsigned)((d->poff + d->unmasked) & 3));
            d->unmasked = avail;
        }
        if (hrest > 0)
            iov[n_iov++] = (struct iovec){d->hdr + d->hdr_off, hrest};
        if (avail > 0)
            iov[n_iov++] = (struct iovec){d->buf + d->rpos, avail};
        if (avail == d->remaining && !dst->close_queued)
            n_ents = batch_gather(d, d->rpos + avail, iov, &n_iov, ents);
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

/*
 * Fills p[0..1] for the two sides: POLLIN while we may read from a side and
 * its direction has room, POLLOUT while a write to it is blocked.
 */
static void
poll_set(struct side *s, struct dir *d, struct pollfd *p, int64_t now)
{
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
}

void
relay_splice_run(const struct relay_splice_io *io)
{
    struct side s[2];
    struct dir d[2];
    int64_t now = time_mono_ms(), close_deadline = 0;

    memset(s, 0, sizeof(s));
    s[0].fd = io->pu->fd;
    s[0].name = "participant";
    s[1].fd = io->au->fd;
    s[1].name = "agent";
    s[0].last_rx_ms = s[1].last_rx_ms = now;
    s[0].last_ping_ms = s[1].last_ping_ms = now;
    dir_init(&d[0], &s[0], &s[1], io->pu->extra, io->pu->extra_len, io->bytes_up);
    dir_init(&d[1], &s[1], &s[0], io->au->extra, io->au->extra_len, io->bytes_down);
    d[0].no_binary = io->refuse_input ? 1 : 0;

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
        poll_set(s, d, p, now);
        p[2] = (struct pollfd){io->wake_fd, POLLIN, 0};
        timeout = close_deadline ? (int)(close_deadline - now) : RELAY_PING_MS / 2;
        if (poll(p, 3, timeout) < 0 && errno != EINTR) {
            log_warn("poll: %s", strerror(errno));
            break;
        }
        now = time_mono_ms();
        if ((p[2].revents & POLLIN) &&
            io->close_req(io->close_req_arg, &code, reason, sizeof(reason))) {
            queue_close_str(&s[0], code, reason);
            queue_close_str(&s[1], code, reason);
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
