/*
 * WebSocket glue over wslay, for both programs. A struct ws wraps one
 * non-blocking connection: on the server an upgraded MHD socket (fd), on
 * the client a libcurl CONNECT_ONLY handle after a manual HTTP upgrade
 * (libcurl 7.88 has no WebSocket support). The caller owns the poll loop:
 *
 *     while (ws_alive(w)) {
 *         struct pollfd p = { ws_fd(w), ws_poll_events(w), 0 };
 *         poll(&p, 1, timeout);
 *         if (ws_pump(w, p.revents) != 0) break;
 *     }
 *
 * Received data messages go to the on_msg callback (control frames are
 * handled: ping gets pong, close gets the close reply). Limits are explicit:
 * max_msg bytes per message (larger: close 1009).
 */
#ifndef AIRLOCK_WS_H
#define AIRLOCK_WS_H
#include <stddef.h>
#include <stdint.h>

#define WS_OP_TEXT 1
#define WS_OP_BINARY 2
#define WS_DEFAULT_MAX_MSG (1u << 20)

struct ws;

/* Called for each complete data message. msg is borrowed for the call. */
typedef void (*ws_msg_fn)(struct ws *w, int opcode, const uint8_t *msg, size_t len, void *ud);

/*
 * Server side over an upgraded, non-blocking fd. pre/pre_len are bytes the
 * HTTP layer already read past the handshake (MHD's extra_in); copied.
 * The fd stays owned by the caller. Never fails (OOM is fatal).
 */
struct ws *ws_server_new(int fd, const char *pre, size_t pre_len, size_t max_msg, ws_msg_fn on_msg,
                         void *ud);

/*
 * Client side: connects to url (http:// or https://, ws:// and wss:// are
 * accepted too), sends the upgrade request with "Authorization: Bearer
 * <bearer>" when bearer is not NULL, checks the 101 and Sec-WebSocket-Accept,
 * within timeout_ms. ca_file may be NULL. On failure returns ERR_AUTH (401),
 * ERR_FORBIDDEN (403), ERR_NOT_FOUND (404), ERR_CONFLICT (409), ERR_UNAVAILABLE
 * (cannot connect) or ERR_INVALID (bad handshake) with a message in err.
 */
int ws_client_connect(const char *url, const char *bearer, const char *ca_file, int timeout_ms,
                      size_t max_msg, ws_msg_fn on_msg, void *ud, struct ws **wp, char *err,
                      size_t err_len);

/* The fd to poll. */
int ws_fd(const struct ws *w);
/* POLLIN/POLLOUT as wslay wants them. */
short ws_poll_events(const struct ws *w);
/* 1 while the connection can still read or write. */
int ws_alive(const struct ws *w);
/*
 * Reads and writes what it can after poll said revents (0 = just try to
 * flush queued output and buffered input). Returns 0, or ERR_SYSTEM when the
 * connection is gone.
 */
int ws_pump(struct ws *w, short revents);
/* Queues a message (copied). Returns 0 or ERR_CONFLICT after close. */
int ws_send(struct ws *w, int opcode, const void *data, size_t len);
int ws_send_text(struct ws *w, const char *s);
/* Queues a ping. */
int ws_ping(struct ws *w);
/* Queues a close frame with code and reason; the connection ends after it is sent. */
void ws_close(struct ws *w, uint16_t code, const char *reason);
/* Bytes queued but not yet written (for flow control). */
size_t ws_queued(const struct ws *w);
/* Monotonic ms of the last frame received (any opcode, pongs included). */
int64_t ws_last_rx_ms(const struct ws *w);
/* Close code the peer sent, or 0. */
uint16_t ws_peer_close_code(const struct ws *w);
/* Pause or resume reading (flow control): while paused, ws_poll_events has no POLLIN. */
void ws_set_read_paused(struct ws *w, int paused);
/* Frees the context (and for clients the curl handle and socket). */
void ws_free(struct ws *w);

/* RFC 6455 4.2.2: Sec-WebSocket-Accept for key into out (29 bytes with NUL). */
void ws_accept_key(const char *key, char out[29]);

#endif
