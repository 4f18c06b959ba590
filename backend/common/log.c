#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <jansson.h>

#include "log.h"

int log_min_level = LOG_INFO;
static int log_json;
static _Thread_local const char *log_reqid;

static const char *const level_names[] = {"debug", "info", "warn", "error"};

void
log_set_json(int on)
{
    log_json = on;
}

void
log_set_request_id(const char *id)
{
    log_reqid = id;
}

static void
emit(enum log_level lvl, const char *func, const char *errstr, const char *msg)
{
    char ts[32];
    struct timespec now;
    struct tm tm;

    clock_gettime(CLOCK_REALTIME, &now);
    gmtime_r(&now.tv_sec, &tm);
    strftime(ts, sizeof(ts), "%Y-%m-%dT%H:%M:%SZ", &tm);
    if (log_json) {
        json_t *o = json_pack("{s:s, s:s, s:s, s:s}", "time", ts, "level", level_names[lvl],
                              "func", func, "msg", msg);
        char *line;

        if (errstr != NULL)
            json_object_set_new(o, "error", json_string(errstr));
        if (log_reqid != NULL)
            json_object_set_new(o, "request_id", json_string(log_reqid));
        line = json_dumps(o, JSON_COMPACT);
        if (line != NULL)
            fprintf(stderr, "%s\n", line);
        free(line);
        json_decref(o);
        return;
    }
    fprintf(stderr, "%s %s %s%s%s%s: %s\n", ts, level_names[lvl], log_reqid ? "[" : "",
            log_reqid ? log_reqid : "", log_reqid ? "] " : "", func, msg);
}

void
log_emit(enum log_level lvl, const char *func, const char *errstr, const char *fmt, ...)
{
    char msg[2048];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    if (errstr != NULL && !log_json) {
        size_t n = strlen(msg);

        snprintf(msg + n, sizeof(msg) - n, ": %s", errstr);
        errstr = NULL;
    }
    emit(lvl, func, errstr, msg);
}

void
fatal(const char *fmt, ...)
{
    char msg[2048];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    emit(LOG_ERROR, "fatal", NULL, msg);
    exit(1);
}
