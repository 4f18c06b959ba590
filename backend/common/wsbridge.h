/*
 * One fd <-> WebSocket byte bridge with back-pressure, for the agent's
 * dial-back tunnel (a socketpair end that sshd serves) and `airlock proxy`
 * (stdin/stdout of the person's ssh). Bytes read from in_fd go out as binary
 * messages; binary messages received are written to out_fd (in_fd and
 * out_fd may be the same socket).
 *
 * Neither side is ever written with a blocking call, and each buffer is
 * bounded: the WebSocket is read only while the bytes waiting for out_fd are
 * under the high-water mark, and in_fd only while the WebSocket's send queue
 * is under it (LIBS.md 5: a blocking write either way deadlocks the moment
 * both ends send at once). Both fds must be non-blocking, and SIGPIPE
 * ignored: a reader that went away is an error return, not a signal.
 *
 * Ends: in_fd at EOF (or failing) and out_fd failing close the WebSocket
 * (1000, with the configured reason); stop_fd turning readable closes it
 * with 1001. Once the peer answers the close (or close_wait_ms passes), or
 * the peer closes or the connection drops, whatever was received is still
 * written to out_fd, then out_fd is shut down for writing (its reader sees
 * EOF) and the bridge is done.
 *
 * Use: wsbridge_init(), pass wsbridge_on_msg with the bridge as ud when
 * creating the WebSocket, then wsbridge_run() (or wsbridge_start() and
 * wsbridge_step() for a caller, such as a test, that drives the loop), and
 * wsbridge_cleanup(). The bridge never owns the WebSocket or the fds.
 */
#ifndef AIRLOCK_WSBRIDGE_H
#define AIRLOCK_WSBRIDGE_H
#include <stddef.h>
#include <stdint.h>

#include "ws.h"

struct wsbridge_cfg {
    int in_fd;                   /* read: its bytes go out as binary messages */
    int out_fd;                  /* write: received binary messages (may equal in_fd) */
    int stop_fd;                 /* -1, or an fd that turns readable when the bridge must end */
    size_t hwm;                  /* high-water mark of either queue, bytes */
    size_t chunk;                /* bytes per read from in_fd, i.e. per message at most */
    int close_wait_ms;           /* how long the peer gets to answer our close, and out_fd to
                                    take more bytes once the WebSocket is gone */
    int ping_ms;                 /* 0, or ping after this long without a frame from the peer */
    int dead_ms;                 /* 0, or give up after this long without a frame from the peer */
    const char *in_eof_reason;   /* close reason (1000) when in_fd ends */
    const char *out_gone_reason; /* close reason (1000) when out_fd fails */
    const char *stop_reason;     /* close reason (1001) when stop_fd fires */
};

struct wsbridge {
    struct wsbridge_cfg cfg;
    struct ws *w; /* borrowed from wsbridge_start() on */
    uint8_t *out; /* received, not yet written to out_fd: [out_off, out_len) */
    size_t out_off, out_len, out_cap;
    uint8_t *in;             /* one read from in_fd (cfg.chunk bytes) */
    int paused;              /* reading the WebSocket is paused: out is above the high-water mark */
    int in_eof;              /* in_fd ended */
    int out_dead;            /* out_fd failed: what is left for it is dropped */
    int out_shut;            /* out_fd was shut down for writing */
    int ws_gone;             /* the WebSocket is closed or broken (or its close timed out) */
    int draining;            /* ws_gone was seen: only out_fd is left */
    int we_closed;           /* we sent the close: in_fd ended, out_fd failed or stop_fd fired */
    int silent;              /* nothing from the peer for cfg.dead_ms */
    int failed;              /* poll() failed */
    int64_t close_deadline;  /* after our close: the peer's answer is due by then */
    int64_t out_progress_ms; /* last time out_fd took bytes (or the WebSocket went) */
    int64_t last_ping_ms;
};

/* Sets b up for cfg (copied; the reason strings are borrowed and must outlive b). */
void wsbridge_init(struct wsbridge *b, const struct wsbridge_cfg *cfg);
/*
 * The ws_msg_fn to create the WebSocket with, ud being the bridge: binary
 * messages are written to out_fd or buffered; text messages are ignored.
 */
void wsbridge_on_msg(struct ws *w, int opcode, const uint8_t *msg, size_t len, void *ud);
/* Attaches w (borrowed until wsbridge_cleanup) and handles what came with its handshake. */
void wsbridge_start(struct wsbridge *b, struct ws *w);
/*
 * One round: polls (up to timeout_ms, or until the bridge's next deadline;
 * timeout_ms < 0: only the latter) and moves what it can. Returns 1 while
 * the bridge runs, 0 once it is done.
 */
int wsbridge_step(struct wsbridge *b, int timeout_ms);
/*
 * wsbridge_start() then steps until done. Returns 0, ERR_UNAVAILABLE when the
 * peer sent nothing for cfg.dead_ms, or ERR_SYSTEM when poll() failed. Why it
 * ended otherwise: b->we_closed and ws_peer_close_code().
 */
int wsbridge_run(struct wsbridge *b, struct ws *w);
/* Bytes received and not yet written to out_fd. */
size_t wsbridge_pending(const struct wsbridge *b);
/* Frees the buffers. The WebSocket and the fds stay the caller's. */
void wsbridge_cleanup(struct wsbridge *b);

#endif
