/*
 * One line per event on stderr: "level func: message[: errstr]", or a JSON
 * object per line with log_set_json(1). A request id set with
 * log_set_request_id() (thread-local) is added to every line. Never log a
 * token or a credential.
 */
#ifndef AIRLOCK_LOG_H
#define AIRLOCK_LOG_H

enum log_level { LOG_DEBUG, LOG_INFO, LOG_WARN, LOG_ERROR };

extern int log_min_level;

void log_set_json(int on);
/* Sets (or clears with NULL) the request id of the calling thread. Borrowed. */
void log_set_request_id(const char *id);
void log_emit(enum log_level lvl, const char *func, const char *errstr, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
void fatal(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));

#define log_at(lvl, errstr, ...)                                                                   \
    do {                                                                                           \
        if ((int)(lvl) >= log_min_level)                                                           \
            log_emit((lvl), __func__, (errstr), __VA_ARGS__);                                      \
    } while (0)
#define log_debug(...) log_at(LOG_DEBUG, NULL, __VA_ARGS__)
#define log_info(...) log_at(LOG_INFO, NULL, __VA_ARGS__)
#define log_warn(...) log_at(LOG_WARN, NULL, __VA_ARGS__)
#define log_error(...) log_at(LOG_ERROR, NULL, __VA_ARGS__)
#define log_warn_r(r, ...) log_at(LOG_WARN, err_str(r), __VA_ARGS__)
#define log_error_r(r, ...) log_at(LOG_ERROR, err_str(r), __VA_ARGS__)

#endif
