/*
 * One error space for all of airlock: 0 is success, negative values are
 * ERR_* codes. Each code has one row in err.c's table: its HTTP status, the
 * code name of the API's error envelope and a default English text. The
 * API (api_status_for), the control channel's replies and the 405 path all
 * read that table, so a status and its code name cannot disagree.
 */
#ifndef AIRLOCK_ERR_H
#define AIRLOCK_ERR_H

enum {
    ERR_OK = 0,
    ERR_INTERNAL = -1,
    ERR_INVALID = -2,            /* malformed input: 400 */
    ERR_NOT_FOUND = -3,          /* 404 */
    ERR_CONFLICT = -4,           /* state does not allow it: 409 */
    ERR_TOO_LARGE = -5,          /* 413 */
    ERR_AUTH = -6,               /* 401 */
    ERR_FORBIDDEN = -7,          /* 403 */
    ERR_DB = -8,                 /* storage failed: 500 */
    ERR_SYSTEM = -9,             /* errno is meaningful: 500 */
    ERR_AGAIN = -10,             /* need more input / would block: not an error */
    ERR_TOO_MANY = -11,          /* 429 */
    ERR_UNAVAILABLE = -12,       /* 503: dependency down (JWKS, database) */
    ERR_METHOD = -13,            /* the path exists with another method: 405 */
    ERR_URI_TOO_LONG = -14,      /* 414 */
    ERR_HEADERS_TOO_LARGE = -15, /* 431 */
    ERR_HTTP_VERSION = -16,      /* 505: the request's HTTP version is not 1.0 or 1.1 */
    ERR__MIN = -16,              /* the lowest code: a new ERR_* goes above and moves this */
};

/* Returns a static English description of r. Never NULL. */
const char *err_str(int r);

/* Returns the error code name used in the API envelope ("BAD_REQUEST", ...). Never NULL. */
const char *err_code(int r);

/* Returns the HTTP status for r (200 for 0, 500 for a code without a row). */
int err_http_status(int r);

#define WARN_UNUSED __attribute__((warn_unused_result))

#endif
