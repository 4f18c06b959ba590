#include "err.h"

const char *
err_str(int r)
{
    switch (r) {
    case ERR_OK:
        return "success";
    case ERR_INVALID:
        return "invalid input";
    case ERR_NOT_FOUND:
        return "not found";
    case ERR_CONFLICT:
        return "conflict";
    case ERR_TOO_LARGE:
        return "payload too large";
    case ERR_AUTH:
        return "authentication required";
    case ERR_FORBIDDEN:
        return "forbidden";
    case ERR_DB:
        return "database error";
    case ERR_SYSTEM:
        return "system error";
    case ERR_AGAIN:
        return "try again";
    case ERR_TOO_MANY:
        return "too many requests";
    case ERR_UNAVAILABLE:
        return "service unavailable";
    default:
        return "internal error";
    }
}

const char *
err_code(int r)
{
    switch (r) {
    case ERR_INVALID:
        return "BAD_REQUEST";
    case ERR_NOT_FOUND:
        return "NOT_FOUND";
    case ERR_CONFLICT:
        return "CONFLICT";
    case ERR_TOO_LARGE:
        return "PAYLOAD_TOO_LARGE";
    case ERR_AUTH:
        return "UNAUTHORIZED";
    case ERR_FORBIDDEN:
        return "FORBIDDEN";
    case ERR_TOO_MANY:
        return "TOO_MANY_REQUESTS";
    case ERR_UNAVAILABLE:
        return "UNAVAILABLE";
    default:
        return "INTERNAL_ERROR";
    }
}
