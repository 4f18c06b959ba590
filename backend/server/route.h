/*
 * The route table: every path airlockd answers is one row (method, pattern,
 * flags, handler), the API's and /healthz, /readyz, /metrics, /download/…
 * and the static UI alike. route_find() is pure (no MHD, no I/O): http.c
 * asks it for a row and /metrics labels its counters by row.
 */
#ifndef AIRLOCK_ROUTE_H
#define AIRLOCK_ROUTE_H
#include <stddef.h>

#include "api.h"

#define ROUTE_MAX_PARAMS 3 /* ':' segments in one pattern (api_req.params) */

#define ROUTE_AUTH 0x01     /* needs a person's bearer token */
#define ROUTE_AGENT_OK 0x02 /* ... or an agent-issuer token */
#define ROUTE_WS 0x04       /* WebSocket upgrade: authenticates itself */
#define ROUTE_RAW 0x08      /* the body is ignored: not parsed, no 413 */
#define ROUTE_HEAD 0x10     /* a GET row that answers HEAD too */
#define ROUTE_FALLBACK 0x20 /* tried only when no other row has the path; */
                            /* another method is then 404, never 405 */
#define ROUTE_BYTES 0x40    /* the body is bytes (api_req.raw), not JSON, up to ROUTE_BYTES_MAX */
#define ROUTE_BYTES_MAX (1024 * 1024)

struct route {
    const char *method;  /* "GET", "POST", ... or "*" for any method */
    const char *pattern; /* ':' one segment (decoded into params), '*' the rest */
    int flags;
    api_handler_fn fn; /* NULL: no such endpoint (404) */
    const char *label; /* route label in /metrics; NULL: the pattern */
};

/* Number of rows, and row i (borrowed, static). */
size_t route_count(void);
const struct route *route_at(size_t i);

/*
 * Finds the row for method and the raw (still percent-encoded) path. On 0,
 * *row is the row and params[] holds its ':' segments, decoded (new strings:
 * the caller frees them; unused slots are NULL). Otherwise *row is
 * route_count() and params[] are NULL: ERR_NOT_FOUND (no row, or a row
 * without a handler), ERR_METHOD (the path has rows, none for this method)
 * or ERR_INVALID (a segment with a bad escape, a NUL or bytes that are not
 * UTF-8).
 */
int route_find(const char *method, const char *path, size_t *row, char *params[ROUTE_MAX_PARAMS]);
/* The body limit of the request's route: ROUTE_BYTES_MAX for a ROUTE_BYTES row, else API_MAX_BODY.
 */
size_t route_body_max(const char *method, const char *path);

/*
 * Percent-decodes [s, s+len) into *out (a new string); plus_space turns '+'
 * into ' ' (query strings). ERR_INVALID on a bad escape or an encoded NUL.
 */
int route_decode(const char *s, size_t len, int plus_space, char **out);

/* 1 if [s, s+len) is well-formed UTF-8 (no overlongs, no surrogates). */
int route_utf8_ok(const char *s, size_t len);

#endif
