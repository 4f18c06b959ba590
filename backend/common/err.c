/*
 * The error table: one row per ERR_* code, indexed by -r. Unknown codes
 * read as ERR_INTERNAL. tests/unit/test_err.c checks that every code from
 * 0 down to ERR__MIN has a row.
 */
#include <stddef.h>

#include "err.h"

struct err_row {
    int status;       /* HTTP status */
    const char *code; /* code name in the API's error envelope */
    const char *text; /* default message */
};

static const struct err_row rows[] = {
    [-ERR_OK] = {200, "OK", "success"},
    [-ERR_INTERNAL] = {500, "INTERNAL_ERROR", "internal error"},
    [-ERR_INVALID] = {400, "BAD_REQUEST", "invalid input"},
    [-ERR_NOT_FOUND] = {404, "NOT_FOUND", "not found"},
    [-ERR_CONFLICT] = {409, "CONFLICT", "conflict"},
    [-ERR_TOO_LARGE] = {413, "PAYLOAD_TOO_LARGE", "payload too large"},
    [-ERR_AUTH] = {401, "UNAUTHORIZED", "authentication required"},
    [-ERR_FORBIDDEN] = {403, "FORBIDDEN", "forbidden"},
    [-ERR_DB] = {500, "INTERNAL_ERROR", "database error"},
    [-ERR_SYSTEM] = {500, "INTERNAL_ERROR", "system error"},
    [-ERR_AGAIN] = {500, "INTERNAL_ERROR", "try again"},
    [-ERR_TOO_MANY] = {429, "TOO_MANY_REQUESTS", "too many requests"},
    [-ERR_UNAVAILABLE] = {503, "UNAVAILABLE", "service unavailable"},
    /* 405 keeps the code the API documented before it had a row of its own */
    [-ERR_METHOD] = {405, "BAD_REQUEST", "method not allowed"},
    [-ERR_URI_TOO_LONG] = {414, "URI_TOO_LONG", "request target too long"},
    [-ERR_HEADERS_TOO_LARGE] = {431, "HEADERS_TOO_LARGE", "request headers too large"},
    [-ERR_HTTP_VERSION] = {505, "HTTP_VERSION_NOT_SUPPORTED", "HTTP version not supported"},
};

_Static_assert(sizeof(rows) / sizeof(rows[0]) == (size_t)(1 - ERR__MIN),
               "every ERR_* code from 0 to ERR__MIN has a row");

static const struct err_row *
row_for(int r)
{
    if (r > 0 || r < ERR__MIN || rows[-r].code == NULL)
        return &rows[-ERR_INTERNAL];
    return &rows[-r];
}

const char *
err_str(int r)
{
    return row_for(r)->text;
}

const char *
err_code(int r)
{
    return row_for(r)->code;
}

int
err_http_status(int r)
{
    return row_for(r)->status;
}
