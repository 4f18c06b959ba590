/*
 * libmicrohttpd glue: the daemon, the access handler (body accumulation
 * with a limit, routing on the raw path, authentication, JSON replies in the
 * error envelope), WebSocket upgrades, static UI files, health and metrics.
 */
#ifndef AIRLOCK_HTTP_H
#define AIRLOCK_HTTP_H
#include <stddef.h>

#include "api.h"

struct http;

/* Starts serving app on app->cfg->listen. Returns 0 or ERR_* with err filled. */
int http_start(struct app *app, struct http **hp, char *err, size_t err_len);
/* Port actually bound (useful with port 0). */
unsigned http_port(const struct http *h);
/*
 * Waits up to timeout_ms for the WebSocket threads, then stops the daemon
 * and frees h. ERR_UNAVAILABLE if some WebSocket thread was still running.
 */
int http_stop(struct http *h, int timeout_ms);
/* Reload: the CSP and the connection limits follow cfg (copied). */
void http_config_apply(struct http *h, const struct config *cfg);
/* Stops accepting new connections (first step of a drain). */
void http_quiesce(struct http *h);

#endif
