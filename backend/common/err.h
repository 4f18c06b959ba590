/*
 * One error space for all of airlock: 0 is success, negative values are
 * ERR_* codes. api_status_for() maps them to HTTP statuses in one place.
 */
#ifndef AIRLOCK_ERR_H
#define AIRLOCK_ERR_H

enum {
    ERR_OK = 0,
    ERR_INTERNAL = -1,
    ERR_INVALID = -2,   /* malformed input: 400 */
    ERR_NOT_FOUND = -3, /* 404 */
    ERR_CONFLICT = -4,  /* state does not allow it: 409 */
    ERR_TOO_LARGE = -5, /* 413 */
    ERR_AUTH = -6,      /* 401 */
    ERR_FORBIDDEN = -7, /* 403 */
    ERR_DB = -8,        /* storage failed: 500 */
    ERR_SYSTEM = -9,    /* errno is meaningful: 500 */
    ERR_AGAIN = -10,    /* need more input / would block: not an error */
    ERR_TOO_MANY = -11, /* 429 */
    ERR_UNAVAILABLE = -12, /* 503: dependency down (JWKS, database) */
};

/* Returns a static English description of r. Never NULL. */
const char *err_str(int r);

/* Returns the error code name used in the API envelope ("BAD_REQUEST", ...). */
const char *err_code(int r);

#define WARN_UNUSED __attribute__((warn_unused_result))

#endif
