/*
 * WebSocket glue over wslay (see ws.h for the caller's loop).
 *
 * One struct ws is one non-blocking connection. Two transports sit under the
 * same wslay callbacks: a plain fd (the server side, an upgraded MHD socket)
 * and a libcurl CONNECT_ONLY handle (the client side, so that https:// gets
 * curl's TLS). libcurl 7.88 has no WebSocket support of its own, so the
 * client sends the HTTP/1.1 upgrade request by hand and checks the answer
 * (ws_client.c), then hands the connection to ws_new() here. Frame headers
 * and masks are read and written by wsframe.c.
 *
 * Buffering, and why. wslay reads through a 4 KiB frame buffer, copies each
 * payload three times (into a chunk, a flat message, a queued message),
 * unmasks a byte at a time and masks its output through a 4 KiB scratch
 * buffer. For the SSH byte stream that costs more CPU than the hop is worth,
 * so the data path goes around it:
 *
 *   rbuf  recv() fills it with one large read (it grows from 16 KiB to
 *         256 KiB while reads keep filling it). A complete, unfragmented
 *         binary frame found in it is unmasked in place (server side) and
 *         handed to on_msg straight from rbuf: no copy. Everything else
 *         (control frames, text, fragments, oversized or broken frames) is
 *         fed to wslay byte-exact, one frame at a time (feed_left), so that
 *         wslay does the pongs, the close handshake, UTF-8 checks and the
 *         1002/1009 closes, and never holds bytes of a frame we parse.
 *   wbuf  data messages are framed (and masked, 8 bytes at a time) straight
 *         into it when wslay has nothing queued; wslay's own output (pongs,
 *         closes, messages queued behind them) goes through it too, and one
 *         send() flushes it.
 *
 * Reads always go on until EAGAIN (or until the caller pauses reading): with
 * TLS, decrypted bytes can sit in OpenSSL's buffer while the fd does not poll
 * readable, so "read once per POLLIN" would stall. Pausing keeps the unread
 * bytes where they are (rbuf, curl, the kernel); resuming marks the
 * connection so that the next ws_pump() reads even without POLLIN.
 *
 * wslay sends control frames (pong, close) ahead of queued data messages.
 * ws_close() therefore waits until the data queued before it has gone out,
 * so a close never overtakes the last bytes of a stream.
 */
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include <curl/curl.h>
#include <openssl/rand.h>
#include <wslay/wslay.h>

#include "err.h"
#include "util.h"
#include "ws.h"
#include "ws_int.h"
#include "wsframe.h"
#include "xmalloc.h"

#define WS_BUF_MIN (16u * 1024)   /* first size of rbuf and wbuf */
#define WS_BUF_MAX (256u * 1024)  /* they grow to this under bulk traffic */
#define WS_DIRECT_MIN (8u * 1024) /* payloads this large skip wbuf when it is empty */
#define WS_MASK_POOL 256          /* random bytes fetched at once for frame masks */
#define WS_FAST_MAX (WS_BUF_MAX - WSFRAME_HDR_MAX) /* larger binary frames go through wslay */

struct ws {
    wslay_event_context_ptr ctx;
    int fd;
    CURL *curl; /* client side only */
    ws_msg_fn on_msg;
    void *ud;
    uint64_t max_msg;

    uint8_t *rbuf; /* received, not yet given to wslay: [roff, rlen) */
    size_t rcap, roff, rlen;
    uint8_t *wbuf; /* accepted from wslay, not yet on the wire: [woff, wlen) */
    size_t wcap, woff, wlen;

    unsigned client : 1; /* we mask what we send */
    unsigned read_paused : 1;
    unsigned kick : 1;     /* read on the next pump even without POLLIN */
    unsigned wblocked : 1; /* the last write hit EAGAIN: wait for POLLOUT */
    unsigned wpin : 1;     /* TLS write pending: wbuf must not move (see io_write) */
    unsigned dead : 1;     /* transport gone (EOF or error) */
    unsigned close_pending : 1;
    unsigned eof : 1;
    unsigned in_frag : 1; /* wslay is in the middle of a fragmented message */
    uint64_t feed_left;   /* bytes of the current frame wslay may still take */

    uint16_t peer_code;
    uint16_t close_code; /* for a deferred ws_close() */
    char close_reason[124];
    size_t close_reason_len;
    int64_t last_rx_ms;

    uint8_t mask_pool[WS_MASK_POOL];
    size_t mask_off;
};

/* ---------------------------------------------------------------- transport */

/* Reads into buf. Returns bytes read (> 0), 0 on EAGAIN, -1 on EOF or error. */
static ssize_t
io_read(struct ws *w, void *buf, size_t len)
{
    if (w->curl) {
        size_t n = 0;
        CURLcode rc = curl_easy_recv(w->curl, buf, len, &n);

        if (rc == CURLE_AGAIN)
            return 0;
        if (rc != CURLE_OK || n == 0) {
            w->eof = rc == CURLE_OK;
            return -1;
        }
        return (ssize_t)n;
    }
    for (;;) {
        ssize_t n = recv(w->fd, buf, len, 0);

        if (n > 0)
            return n;
        if (n == 0) {
            w->eof = 1;
            return -1;
        }
        if (errno == EINTR)
            continue;
        if (errno == EAGAIN || errno == EWOULDBLOCK)
            return 0;
        return -1;
    }
}

/* Writes from buf. Returns bytes written (> 0), 0 on EAGAIN, -1 on error. */
static ssize_t
io_write(struct ws *w, const void *buf, size_t len, int more)
{
    if (w->curl) {
        size_t n = 0;
        CURLcode rc = curl_easy_send(w->curl, buf, len, &n);

        /*
         * OpenSSL wants a write that returned "again" retried with the same
         * buffer address and no fewer bytes, so wbuf stays pinned (no
         * compaction, no realloc) until a write goes through.
         */
        if (rc == CURLE_AGAIN) {
            w->wpin = 1;
            return 0;
        }
        if (rc != CURLE_OK)
            return -1;
        w->wpin = 0;
        return (ssize_t)n;
    }
    for (;;) {
        ssize_t n = send(w->fd, buf, len, MSG_NOSIGNAL | (more ? MSG_MORE : 0));

        if (n >= 0)
            return n;
        if (errno == EINTR)
            continue;
        if (errno == EAGAIN || errno == EWOULDBLOCK)
            return 0;
        return -1;
    }
}

/* Writes out wbuf. Returns 0 (all or part written, wblocked set on EAGAIN) or -1. */
static int
wbuf_flush(struct ws *w)
{
    while (w->woff < w->wlen) {
        ssize_t n = io_write(w, w->wbuf + w->woff, w->wlen - w->woff, 0);

        if (n < 0)
            return -1;
        if (n == 0) {
            w->wblocked = 1;
            return 0;
        }
        w->woff += (size_t)n;
    }
    w->woff = w->wlen = 0;
    return 0;
}

/* Copies as much of data as fits into wbuf (growing it up to WS_BUF_MAX). */
static size_t
wbuf_add(struct ws *w, const uint8_t *data, size_t len)
{
    size_t room;

    if (w->wpin) {
        room = w->wcap - w->wlen;
        if (len > room)
            len = room;
        memcpy(w->wbuf + w->wlen, data, len);
        w->wlen += len;
        return len;
    }
    if (w->woff > 0 && w->woff == w->wlen)
        w->woff = w->wlen = 0;
    if (w->wlen + len > w->wcap && w->wcap < WS_BUF_MAX) {
        size_t cap = w->wcap ? w->wcap : WS_BUF_MIN;

        while (cap < w->wlen + len && cap < WS_BUF_MAX)
            cap *= 2;
        w->wbuf = xrealloc(w->wbuf, cap);
        w->wcap = cap;
    }
    if (w->wlen + len > w->wcap && w->woff > 0) {
        memmove(w->wbuf, w->wbuf + w->woff, w->wlen - w->woff);
        w->wlen -= w->woff;
        w->woff = 0;
    }
    room = w->wcap - w->wlen;
    if (len > room)
        len = room;
    memcpy(w->wbuf + w->wlen, data, len);
    w->wlen += len;
    return len;
}

static int genmask_cb(wslay_event_context_ptr ctx, uint8_t *buf, size_t len, void *ud);

/*
 * Frames a data message straight into wbuf: one pass for the copy and the
 * mask, where wslay would copy it into its queue and mask it a byte at a
 * time through a 4 KiB scratch buffer. Only valid while wslay has nothing
 * queued or half-sent, so that frames stay whole and in order.
 */
static int
frame_put(struct ws *w, int opcode, const uint8_t *data, size_t len)
{
    uint8_t h[WSFRAME_HDR_MAX], key[4];
    size_t hl, need;

    if (w->client && genmask_cb(w->ctx, key, 4, w) != 0)
        return ERR_INTERNAL;
    hl = wsframe_encode(h, 1, opcode, len, w->client ? key : NULL);
    if (w->woff > 0) {
        memmove(w->wbuf, w->wbuf + w->woff, w->wlen - w->woff);
        w->wlen -= w->woff;
        w->woff = 0;
    }
    need = w->wlen + hl + len;
    if (need > w->wcap) {
        size_t cap = w->wcap ? w->wcap : WS_BUF_MIN;

        while (cap < need)
            cap *= 2;
        w->wbuf = xrealloc(w->wbuf, cap);
        w->wcap = cap;
    }
    memcpy(w->wbuf + w->wlen, h, hl);
    if (w->client)
        (void)wsframe_mask(w->wbuf + w->wlen + hl, data, len, key, 0);
    else if (len > 0)
        memcpy(w->wbuf + w->wlen + hl, data, len);
    w->wlen += hl + len;
    return 0;
}

/* ---------------------------------------------------------- wslay callbacks */

/*
 * Reads more into rbuf (compacting it, and growing it up to need bytes of
 * room). Returns bytes read (> 0), 0 on EAGAIN, -1 when the connection is
 * gone (dead is set).
 */
static ssize_t
rbuf_fill(struct ws *w, size_t need)
{
    size_t room;
    ssize_t n;

    if (w->roff == w->rlen) {
        w->roff = w->rlen = 0;
    } else if (w->roff > 0 && (w->rcap - w->rlen < need || w->rcap - w->rlen < w->rcap / 4)) {
        memmove(w->rbuf, w->rbuf + w->roff, w->rlen - w->roff);
        w->rlen -= w->roff;
        w->roff = 0;
    }
    while (w->rcap - w->rlen < need && w->rcap < WS_BUF_MAX) {
        w->rcap *= 2;
        w->rbuf = xrealloc(w->rbuf, w->rcap);
    }
    room = w->rcap - w->rlen;
    if (room == 0)
        return 0;
    n = io_read(w, w->rbuf + w->rlen, room);
    if (n < 0) {
        w->dead = 1;
        return -1;
    }
    w->rlen += (size_t)n;
    /* A read that took all the room of a mostly empty buffer: traffic is bulk. */
    if ((size_t)n == room && room >= w->rcap / 2 && w->rcap < WS_BUF_MAX) {
        w->rcap *= 2;
        w->rbuf = xrealloc(w->rbuf, w->rcap);
    }
    return n;
}

/* wslay reads here: the bytes of the frame we handed it (feed_left), no more. */
static ssize_t
recv_cb(wslay_event_context_ptr ctx, uint8_t *buf, size_t len, int flags, void *ud)
{
    struct ws *w = ud;
    size_t avail;

    (void)flags;
    if (w->feed_left == 0)
        goto block;
    if (w->roff == w->rlen) {
        ssize_t n = rbuf_fill(w, 1);

        if (n < 0) {
            wslay_event_set_error(ctx, WSLAY_ERR_CALLBACK_FAILURE);
            return -1;
        }
        if (n == 0)
            goto block;
    }
    avail = w->rlen - w->roff;
    if (len > avail)
        len = avail;
    if (len > w->feed_left)
        len = (size_t)w->feed_left;
    memcpy(buf, w->rbuf + w->roff, len);
    w->roff += len;
    w->feed_left -= len;
    return (ssize_t)len;
block:
    wslay_event_set_error(ctx, WSLAY_ERR_WOULDBLOCK);
    return -1;
}

static ssize_t
send_cb(wslay_event_context_ptr ctx, const uint8_t *data, size_t len, int flags, void *ud)
{
    struct ws *w = ud;
    size_t took;

    /* Keep order: whatever is gathered goes first. */
    if (w->wlen > w->woff && (len >= WS_DIRECT_MIN || w->wlen + len > WS_BUF_MAX)) {
        if (wbuf_flush(w) != 0)
            goto fail;
    }
    if (w->wlen == w->woff && len >= WS_DIRECT_MIN && !w->curl) {
        ssize_t n = io_write(w, data, len, flags & WSLAY_MSG_MORE);

        if (n < 0)
            goto fail;
        if (n == 0) {
            w->wblocked = 1;
            goto block;
        }
        return n;
    }
    took = wbuf_add(w, data, len);
    if (took == 0) {
        if (wbuf_flush(w) != 0)
            goto fail;
        took = wbuf_add(w, data, len);
        if (took == 0)
            goto block;
    }
    return (ssize_t)took;
block:
    wslay_event_set_error(ctx, WSLAY_ERR_WOULDBLOCK);
    return -1;
fail:
    w->dead = 1;
    wslay_event_set_error(ctx, WSLAY_ERR_CALLBACK_FAILURE);
    return -1;
}

static int
genmask_cb(wslay_event_context_ptr ctx, uint8_t *buf, size_t len, void *ud)
{
    struct ws *w = ud;

    (void)ctx;
    if (len > WS_MASK_POOL)
        return RAND_bytes(buf, (int)len) == 1 ? 0 : -1;
    if (w->mask_off + len > WS_MASK_POOL) {
        if (RAND_bytes(w->mask_pool, WS_MASK_POOL) != 1)
            return -1;
        w->mask_off = 0;
    }
    memcpy(buf, w->mask_pool + w->mask_off, len);
    w->mask_off += len;
    return 0;
}

static void
frame_start_cb(wslay_event_context_ptr ctx, const struct wslay_event_on_frame_recv_start_arg *arg,
               void *ud)
{
    struct ws *w = ud;

    (void)ctx;
    (void)arg;
    w->last_rx_ms = time_mono_ms();
}

static void
msg_cb(wslay_event_context_ptr ctx, const struct wslay_event_on_msg_recv_arg *arg, void *ud)
{
    struct ws *w = ud;

    (void)ctx;
    if (arg->opcode == WSLAY_CONNECTION_CLOSE) {
        w->peer_code = arg->status_code ? arg->status_code : WSLAY_CODE_NO_STATUS_RCVD;
        return;
    }
    if (wslay_is_ctrl_frame(arg->opcode))
        return;
    if (w->on_msg)
        w->on_msg(w, arg->opcode, arg->msg, arg->msg_length, w->ud);
}

/* ------------------------------------------------------------------ common */

struct ws *
ws_new(int fd, CURL *curl, int client, const void *pre, size_t pre_len, size_t max_msg,
       ws_msg_fn on_msg, void *ud)
{
    struct wslay_event_callbacks cb = {
        .recv_callback = recv_cb,
        .send_callback = send_cb,
        .genmask_callback = genmask_cb,
        .on_frame_recv_start_callback = frame_start_cb,
        .on_msg_recv_callback = msg_cb,
    };
    struct ws *w = xcalloc(1, sizeof(*w));
    int rc;

    w->fd = fd;
    w->curl = curl;
    w->client = client ? 1 : 0;
    w->on_msg = on_msg;
    w->ud = ud;
    w->rcap = WS_BUF_MIN;
    while (w->rcap < pre_len)
        w->rcap *= 2;
    w->rbuf = xmalloc(w->rcap);
    if (pre_len > 0) {
        memcpy(w->rbuf, pre, pre_len);
        w->rlen = pre_len;
        w->kick = 1;
    }
    w->mask_off = WS_MASK_POOL;
    w->last_rx_ms = time_mono_ms();
    if (client)
        rc = wslay_event_context_client_init(&w->ctx, &cb, w);
    else
        rc = wslay_event_context_server_init(&w->ctx, &cb, w);
    if (rc != 0) {
        fprintf(stderr, "wslay: out of memory\n");
        abort();
    }
    w->max_msg = max_msg ? max_msg : WS_DEFAULT_MAX_MSG;
    wslay_event_config_set_max_recv_msg_length(w->ctx, w->max_msg);
    return w;
}

struct ws *
ws_server_new(int fd, const char *pre, size_t pre_len, size_t max_msg, ws_msg_fn on_msg, void *ud)
{
    return ws_new(fd, NULL, 0, pre, pre_len, max_msg, on_msg, ud);
}

int
ws_fd(const struct ws *w)
{
    return w->fd;
}

short
ws_poll_events(const struct ws *w)
{
    short ev = 0;

    if (w->dead)
        return 0;
    if (!w->read_paused && wslay_event_want_read(w->ctx))
        ev |= POLLIN;
    if (w->wlen > w->woff || wslay_event_want_write(w->ctx))
        ev |= POLLOUT;
    return ev;
}

int
ws_alive(const struct ws *w)
{
    if (w->dead)
        return 0;
    return wslay_event_want_read(w->ctx) || wslay_event_want_write(w->ctx) || w->wlen > w->woff ||
           w->close_pending;
}

/* Queues a deferred close once no data message is left ahead of it. */
static void
close_if_drained(struct ws *w)
{
    if (!w->close_pending || wslay_event_get_queued_msg_count(w->ctx) > 0)
        return;
    w->close_pending = 0;
    (void)wslay_event_queue_close(w->ctx, w->close_code, (const uint8_t *)w->close_reason,
                                  w->close_code ? w->close_reason_len : 0);
}

/*
 * Reads and dispatches frames until the socket would block, reading is
 * paused or closed. Complete binary frames go to on_msg from rbuf; any other
 * frame is fed to wslay. Returns 0, or -1 when the connection is gone.
 */
static int
read_frames(struct ws *w)
{
    for (;;) {
        struct wsframe_hdr h;
        size_t avail;
        int r;

        if (w->dead || w->read_paused || !wslay_event_want_read(w->ctx))
            return w->dead ? -1 : 0;
        if (w->feed_left > 0) {
            /* A frame of wslay's: let it take the bytes (it reads until they run out). */
            if (wslay_event_recv(w->ctx) != 0 || w->dead)
                return -1;
            if (w->feed_left > 0)
                return 0; /* it needs bytes the socket does not have yet */
            continue;
        }
        avail = w->rlen - w->roff;
        r = wsframe_decode(w->rbuf + w->roff, avail, &h);
        if (r == ERR_AGAIN || avail < h.hdr_len) {
            ssize_t n = rbuf_fill(w, WSFRAME_HDR_MAX);

            if (n < 0)
                return -1;
            if (n == 0)
                return 0;
            continue;
        }
        /* Broken headers (reserved bits, non-minimal lengths...) are wslay's to close on. */
        if (r != 0 || h.opcode != WS_OP_BINARY || !h.fin || w->in_frag || h.masked != !w->client ||
            h.len > WS_FAST_MAX || h.len > w->max_msg) {
            /* Not ours: wslay takes exactly this frame. */
            if (h.opcode <= WS_OP_BINARY)
                w->in_frag = !h.fin;
            w->feed_left = h.hdr_len + h.len;
            continue;
        }
        if (avail < h.hdr_len + h.len) {
            ssize_t n = rbuf_fill(w, h.hdr_len + (size_t)h.len - avail);

            if (n < 0)
                return -1;
            if (n == 0)
                return 0;
            continue;
        }
        {
            uint8_t *payload = w->rbuf + w->roff + h.hdr_len;

            if (h.masked)
                (void)wsframe_mask(payload, payload, (size_t)h.len, h.mask, 0);
            w->roff += h.hdr_len + (size_t)h.len;
            w->last_rx_ms = time_mono_ms();
            if (w->on_msg)
                w->on_msg(w, WS_OP_BINARY, payload, (size_t)h.len, w->ud);
        }
    }
}

int
ws_pump(struct ws *w, short revents)
{
    if (w->dead)
        return ERR_SYSTEM;
    if (revents & POLLOUT)
        w->wblocked = 0;
    if (!w->read_paused && ((revents & (POLLIN | POLLHUP | POLLERR)) || w->kick) &&
        wslay_event_want_read(w->ctx)) {
        w->kick = 0;
        if (read_frames(w) != 0) {
            w->dead = 1;
            return ERR_SYSTEM;
        }
    }
    if (w->wblocked)
        return 0;
    if (w->wlen > w->woff && wbuf_flush(w) != 0)
        goto dead;
    for (;;) {
        close_if_drained(w);
        if (w->wblocked || !wslay_event_want_write(w->ctx))
            break;
        if (wslay_event_send(w->ctx) != 0 || w->dead)
            goto dead;
        if (w->wlen > w->woff && wbuf_flush(w) != 0)
            goto dead;
        /* Loop only while a deferred close may just have become due. */
        if (!w->close_pending || w->wblocked)
            break;
    }
    return 0;
dead:
    w->dead = 1;
    return ERR_SYSTEM;
}

int
ws_send(struct ws *w, int opcode, const void *data, size_t len)
{
    struct wslay_event_msg m = {(uint8_t)opcode, data, len};

    if (w->dead || w->close_pending || !wslay_event_get_write_enabled(w->ctx))
        return ERR_CONFLICT;
    if ((opcode == WS_OP_BINARY || opcode == WS_OP_TEXT) && !wslay_event_want_write(w->ctx) &&
        !w->wpin)
        return frame_put(w, opcode, data, len);
    if (wslay_event_queue_msg(w->ctx, &m) != 0)
        return ERR_CONFLICT;
    return 0;
}

int
ws_send_text(struct ws *w, const char *s)
{
    return ws_send(w, WS_OP_TEXT, s, strlen(s));
}

int
ws_ping(struct ws *w)
{
    struct wslay_event_msg m = {WSLAY_PING, (const uint8_t *)"airlock", 7};

    if (w->dead || w->close_pending)
        return ERR_CONFLICT;
    return wslay_event_queue_msg(w->ctx, &m) == 0 ? 0 : ERR_CONFLICT;
}

void
ws_close(struct ws *w, uint16_t code, const char *reason)
{
    size_t n = reason ? strlen(reason) : 0;

    if (w->dead || w->close_pending || !wslay_event_get_write_enabled(w->ctx))
        return;
    if (n > sizeof(w->close_reason) - 1)
        n = sizeof(w->close_reason) - 1;
    /* Cut at a UTF-8 character boundary: peers reject a broken reason. */
    while (n > 0 && reason && n < strlen(reason) && ((unsigned char)reason[n] & 0xC0) == 0x80)
        n--;
    if (n > 0)
        memcpy(w->close_reason, reason, n);
    w->close_reason[n] = '\0';
    w->close_reason_len = n;
    w->close_code = code;
    w->close_pending = 1;
    close_if_drained(w);
}

size_t
ws_queued(const struct ws *w)
{
    return wslay_event_get_queued_msg_length(w->ctx) + (w->wlen - w->woff);
}

int64_t
ws_last_rx_ms(const struct ws *w)
{
    return w->last_rx_ms;
}

uint16_t
ws_peer_close_code(const struct ws *w)
{
    return w->peer_code;
}

void
ws_set_read_paused(struct ws *w, int paused)
{
    if (w->read_paused && !paused)
        w->kick = 1;
    w->read_paused = paused ? 1 : 0;
}

void
ws_free(struct ws *w)
{
    if (w == NULL)
        return;
    wslay_event_context_free(w->ctx);
    if (w->curl)
        curl_easy_cleanup(w->curl);
    free(w->rbuf);
    free(w->wbuf);
    free(w);
}
