/*
 * Internal to the ws module (ws.c, the frame pump, and ws_client.c, the
 * client's upgrade handshake): how a handshaken connection becomes a
 * struct ws. Callers outside the module use ws.h only.
 */
#ifndef AIRLOCK_WS_INT_H
#define AIRLOCK_WS_INT_H
#include <stddef.h>

#include <curl/curl.h>

#include "ws.h"

/*
 * Returns a new struct ws over one non-blocking connection whose handshake
 * is done: the fd (server side, curl NULL) or a CONNECT_ONLY curl handle and
 * its socket (client side, client = 1: what we send is masked). pre/pre_len
 * are bytes already read past the handshake (copied). Takes ownership of
 * curl (ws_free() cleans it up); the fd stays the caller's on the server
 * side. max_msg 0 means WS_DEFAULT_MAX_MSG. Never fails (OOM is fatal).
 */
struct ws *ws_new(int fd, CURL *curl, int client, const void *pre, size_t pre_len, size_t max_msg,
                  ws_msg_fn on_msg, void *ud);

#endif
