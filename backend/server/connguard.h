/*
 * One client cannot take airlockd down (DESIGN.md 3 `limits:`): the
 * libmicrohttpd side of the per-client connection cap, the request deadline
 * and the per-client request rate. http.c wires these hooks in and does
 * nothing else about limits; the logic lives in the pure modules clientaddr,
 * conntab and ratelimit.
 */
#ifndef AIRLOCK_CONNGUARD_H
#define AIRLOCK_CONNGUARD_H
#include <stddef.h>
#include <stdio.h>
#include <sys/socket.h>

#include <microhttpd.h>

#include "config.h"

struct connguard;

/*
 * Starts the limits for cfg (copied; cfg may go away) with the daemon's idle
 * timeout: makes the tables, raises this process's open-file soft limit to
 * its hard limit (each connection is a descriptor) and starts the deadline
 * sweeper thread (fatal when it cannot: this runs at start-up). Never NULL.
 */
struct connguard *connguard_new(const struct limits_cfg *cfg, unsigned idle_timeout_s);
/* Reload: applies cfg (copied) to the connections and requests that come next. */
void connguard_limits_set(struct connguard *l, const struct limits_cfg *cfg);
/* Stops the sweeper and frees l. Call after MHD_stop_daemon. NULL is a no-op. */
void connguard_free(struct connguard *l);
/*
 * Fills opts (3 entries) with MHD_OPTION_NOTIFY_CONNECTION for l, then
 * MHD_OPTION_END: pass them with MHD_OPTION_ARRAY.
 */
void connguard_mhd_options(struct connguard *l, struct MHD_OptionItem opts[3]);
/*
 * Call from MHD_OPTION_URI_LOG_CALLBACK (http.c owns that callback): a
 * request line arrived on c, so its request deadline starts now.
 */
void connguard_request_line(struct connguard *l, struct MHD_Connection *c);
/* MHD_AcceptPolicyCallback (cls = l): MHD_NO when the peer is at its connection cap. */
enum MHD_Result connguard_accept(void *cls, const struct sockaddr *addr, socklen_t addr_len);
/*
 * Call at the top of the access handler: first is 1 on the first call of a
 * request (headers read), upload_size is *upload_data_size. On the first
 * call applies the client's rate limit; returns 1 when it queued a 429 (the
 * handler returns MHD_YES and does nothing else), 0 otherwise. The call that
 * ends the request's upload ends its deadline.
 */
int connguard_access(struct connguard *l, struct MHD_Connection *c, int first, size_t upload_size);
/*
 * A connection MHD does not have yet (built-in TLS: tlsfront.c, during its
 * handshake), from peer sa on socket fd: counted against the peer's cap like
 * MHD's own, and shut down (shutdown(2) of fd) past the request deadline,
 * counted from now. 0 with *tok to give to connguard_release (before fd is
 * closed or handed to MHD), or ERR_TOO_MANY when the peer is at its cap.
 * The signature is tlsfront_gate's (cls = l).
 */
int connguard_hold(void *cls, const struct sockaddr *sa, int fd, void **tok);
void connguard_release(void *cls, void *tok);
/* Call from MHD_OPTION_NOTIFY_COMPLETED: the connection is idle until its next request. */
void connguard_request_done(struct connguard *l, struct MHD_Connection *c);
/* Writes the airlock_limit_* metrics (Prometheus text) to f. */
void connguard_metrics_write(struct connguard *l, FILE *f);

#endif
