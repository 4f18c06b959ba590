/*
 * One line per event on stderr: "level func: message[: errstr]", or a JSON
 * object per line with log_set_json(1). A request id set with
 * log_set_request_id() (thread-local) is added to every line. Never log a
 * token or a credential.
 *
 * Every field is escaped (log_escape) in both formats, and a line repeated
 * more than LOG_REPEAT_MAX times in one second is collapsed into one
 * "last message repeated K times" line.
 */
#ifndef AIRLOCK_LOG_H
#define AIRLOCK_LOG_H
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#define LOG_REPEAT_MAX 10 /* identical lines written per second before the rest are counted */

enum log_level { LOG_DEBUG, LOG_INFO, LOG_WARN, LOG_ERROR };

extern int log_min_level;

void log_set_json(int on);
/* Sets (or clears with NULL) the request id of the calling thread. Borrowed. */
void log_set_request_id(const char *id);
/* Lines go to f (borrowed; NULL: stderr). For tests and tools. */
void log_set_output(FILE *f);
/* The clock of the repeat limiter, in seconds (NULL: time()). For tests. */
void log_set_clock(int64_t (*now_s)(void));
/*
 * Copies in to out (out_len bytes, NUL-terminated, truncated at a whole
 * character) with control characters escaped: C0 and DEL as \xNN, C1 and
 * U+2028/U+2029 as \uNNNN, bytes that are not UTF-8 as \xNN and the
 * backslash itself as \\. Returns the length written.
 */
size_t log_escape(const char *in, char *out, size_t out_len);
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
