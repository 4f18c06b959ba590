/*
 * The unix socket ($AIRLOCK_SOCK) through which `airlock extend`, `airlock
 * resume` and `airlock status`, run inside a debug session, talk to the
 * agent. Protocol: one JSON object per line each way, one request per
 * connection:
 *
 *   -> {"op":"extend","session":"ds-…","by":"30m","conn":"…"}
 *   -> {"op":"resume","session":"ds-…","conn":"…"}
 *   -> {"op":"status","session":"ds-…"}
 *   <- {"ok":true,"session":{…}}
 *   <- {"ok":false,"code":"FORBIDDEN","error":"maximum renewals (2) reached"}
 *
 * "conn" is $AIRLOCK_CONN when set (commands run through `ssh host cmd`),
 * which attributes the request to that connection's user (docs/agent.md);
 * for "resume" it also keeps that connection open, once the session has
 * ended, until the command has exited (sshd_conn_hold).
 * The agent side is polled from the agent's control loop (no thread of its own).
 */
#ifndef AIRLOCK_CTLSOCK_H
#define AIRLOCK_CTLSOCK_H
#include <poll.h>
#include <stddef.h>

#include <jansson.h>

#include "err.h"

#define CTLSOCK_MAX_CLIENTS 16
#define CTLSOCK_MAX_LINE 8192

struct ctlsock;

/*
 * Called once per complete request line. req is borrowed for the call.
 * The handler answers now or later with ctlsock_reply(cs, client, …).
 */
typedef void (*ctlsock_req_fn)(struct ctlsock *cs, unsigned client, json_t *req, void *ud);

/* Listens on path (mode 0600, replacing a stale socket). 0 or ERR_SYSTEM. */
int ctlsock_listen(const char *path, ctlsock_req_fn fn, void *ud, struct ctlsock **csp) WARN_UNUSED;
/* Closes every client and the listener, unlinks the path. NULL-safe. */
void ctlsock_free(struct ctlsock *cs);
/* Fills up to max pollfds; returns how many. */
size_t ctlsock_pollfds(struct ctlsock *cs, struct pollfd *p, size_t max);
/* Acts on the revents of the n pollfds ctlsock_pollfds filled. */
void ctlsock_handle(struct ctlsock *cs, const struct pollfd *p, size_t n);
/* Sends resp (borrowed) as one line to client and closes it. No-op if it is gone. */
void ctlsock_reply(struct ctlsock *cs, unsigned client, const json_t *resp);
/* Convenience: {"ok":false,"code":code,"error":msg}. */
void ctlsock_reply_error(struct ctlsock *cs, unsigned client, const char *code, const char *msg);

/*
 * Client side: sends req to the agent at path and waits up to timeout_ms for
 * the answer (*resp, new reference). 0, ERR_UNAVAILABLE (no agent there) or
 * ERR_INVALID (bad answer), with a message in err.
 */
int ctlsock_call(const char *path, const json_t *req, int timeout_ms, json_t **resp, char *err,
                 size_t err_len);

/*
 * `airlock extend|resume|status` (argv[0] is the command name). Returns the
 * process exit code: 0 ok, 1 refused by the server, 2 usage, 3 the agent or
 * the server cannot be reached.
 */
int ctlsock_cli(int argc, char **argv);

#endif
