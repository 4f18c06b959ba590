/*
 * A small HTTP client over libcurl for JSON APIs, shared by the agent and
 * the CLI: one request, a bounded response body, parsed as JSON.
 */
#ifndef AIRLOCK_HTTPC_H
#define AIRLOCK_HTTPC_H
#include <stddef.h>

#include <jansson.h>

#define HTTPC_MAX_BODY (16 * 1024 * 1024) /* larger answers are not parsed */
#define HTTPC_CONNECT_TIMEOUT_MS 10000

/*
 * Sends method to url with the header line auth_header ("Authorization: ..."
 * or NULL) and body (may be NULL; sent as content_type), trusting ca_file
 * (NULL: the system store), within timeout_ms. When the server answers,
 * whatever the status, returns 0 with *status and *out (the JSON body, new,
 * or NULL when it is not JSON or too large). Returns ERR_UNAVAILABLE with a
 * message in err when the server cannot be reached.
 */
int httpc_call(const char *method, const char *url, const char *auth_header,
               const char *content_type, const char *body, const char *ca_file, long timeout_ms,
               long *status, json_t **out, char *err, size_t err_len);

#endif
