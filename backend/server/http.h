/*
 * libmicrohttpd glue: the daemon on its listening socket, the access
 * handler (body and size limits, one dispatch through route.h's table,
 * replies in the error envelope) and WebSocket upgrades.
 */
#ifndef AIRLOCK_HTTP_H
#define AIRLOCK_HTTP_H
#include <stddef.h>

#include "api.h"

struct http;

/*
 * Starts serving app on app->cfg->listen. Returns 0, or ERR_* with err
 * filled ("address in use" when another process listens there).
 */
int http_start(struct app *app, struct http **hp, char *err, size_t err_len);
/* Port actually bound (useful with port 0). */
unsigned http_port(const struct http *h);
/*
 * Waits up to timeout_ms for the WebSocket threads, then stops the daemon
 * and frees h. ERR_UNAVAILABLE if some WebSocket thread was still running.
 */
int http_stop(struct http *h, int timeout_ms);
/* Reload: the connection limits follow cfg (copied). */
void http_config_apply(struct http *h, const struct config *cfg);
/* Stops accepting new connections and closes the listening socket (first step of a drain). */
void http_quiesce(struct http *h);
/* The headers every answer carries (name, value), up to a {NULL, NULL} row. */
extern const char *const http_security_headers[][2];

#endif
