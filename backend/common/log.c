/*
 * The logger. Every field of a line (message, function, error text, request
 * id) is escaped before it is written, in both formats: a control character
 * from a client (a username with a newline, a BEL in a header) must not start
 * a forged line or drive the operator's terminal. Identical lines repeated
 * more than LOG_REPEAT_MAX times within one second are collapsed: the
 * surplus is counted and reported once as "last message repeated K times",
 * so that one client cannot flood the log by repeating a failing request.
 */
#include <inttypes.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <jansson.h>

#include "log.h"

#define MSG_MAX 2048
#define KEY_MAX (MSG_MAX + 256)

int log_min_level = LOG_INFO;
static int log_json;
static _Thread_local const char *log_reqid;
static FILE *log_out;
static int64_t (*log_clock)(void);

/* The repeat limiter: the last line's key and how often it was seen in its second. */
static pthread_mutex_t repeat_mu = PTHREAD_MUTEX_INITIALIZER;
static char repeat_key[KEY_MAX];
static enum log_level repeat_lvl;
static char repeat_func[128];
static int64_t repeat_sec;
static unsigned repeat_n, repeat_dropped;

static const char *const level_names[] = {"debug", "info", "warn", "error"};

static void write_line(enum log_level lvl, const char *func, const char *errstr, const char *msg);

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

void
log_set_output(FILE *f)
{
    log_out = f;
}

void
log_set_clock(int64_t (*now_s)(void))
{
    log_clock = now_s;
}

/* Length of the valid UTF-8 sequence at s (1..4), or 0 if it is not one. *cp gets the code point.
 */
static size_t
utf8_seq(const unsigned char *s, uint32_t *cp)
{
    size_t n, i;
    uint32_t c;

    if (s[0] < 0xc2 || s[0] > 0xf4)
        return 0;
    n = s[0] < 0xe0 ? 2 : s[0] < 0xf0 ? 3 : 4;
    c = s[0] & (0x7f >> n);
    for (i = 1; i < n; i++) {
        if ((s[i] & 0xc0) != 0x80)
            return 0;
        c = c << 6 | (s[i] & 0x3f);
    }
    if ((n == 3 && (c < 0x800 || (c >= 0xd800 && c <= 0xdfff))) ||
        (n == 4 && (c < 0x10000 || c > 0x10ffff)))
        return 0;
    *cp = c;
    return n;
}

size_t
log_escape(const char *in, char *out, size_t out_len)
{
    const unsigned char *s = (const unsigned char *)in;
    size_t o = 0, n;
    uint32_t cp = 0;
    char tmp[8];

    if (out_len == 0)
        return 0;
    while (*s != '\0') {
        const char *piece = tmp;
        size_t piece_len;

        if (*s == '\\') {
            piece = "\\\\";
            piece_len = 2;
            n = 1;
        } else if (*s < 0x20 || *s == 0x7f) {
            piece_len = (size_t)snprintf(tmp, sizeof(tmp), "\\x%02x", *s);
            n = 1;
        } else if (*s < 0x80) {
            piece = (const char *)s;
            piece_len = n = 1;
        } else if ((n = utf8_seq(s, &cp)) == 0) {
            piece_len = (size_t)snprintf(tmp, sizeof(tmp), "\\x%02x", *s); /* not UTF-8 */
            n = 1;
        } else if (cp <= 0x9f || cp == 0x2028 || cp == 0x2029) {
            piece_len = (size_t)snprintf(tmp, sizeof(tmp), "\\u%04" PRIx32, cp);
        } else {
            piece = (const char *)s;
            piece_len = n;
        }
        if (o + piece_len >= out_len)
            break; /* truncate at a whole character or escape */
        memcpy(out + o, piece, piece_len);
        o += piece_len;
        s += n;
    }
    out[o] = '\0';
    return o;
}

static int64_t
now_seconds(void)
{
    return log_clock != NULL ? log_clock() : (int64_t)time(NULL);
}

/*
 * Decides whether the line (lvl, func, msg) is written, under repeat_mu. A
 * line identical to the previous one is dropped past LOG_REPEAT_MAX within
 * one second. When a different line comes, or a new second starts, the
 * count of dropped lines is reported first.
 */
static int
repeat_admit(enum log_level lvl, const char *func, const char *msg)
{
    char key[KEY_MAX];
    enum log_level d_lvl;
    char d_func[sizeof(repeat_func)];
    unsigned dropped = 0;
    int64_t sec = now_seconds();
    int same, admit = 1;

    snprintf(key, sizeof(key), "%d|%s|%s", (int)lvl, func, msg);
    pthread_mutex_lock(&repeat_mu);
    same = strcmp(key, repeat_key) == 0;
    if (!same || sec != repeat_sec) {
        dropped = repeat_dropped;
        d_lvl = repeat_lvl;
        memcpy(d_func, repeat_func, sizeof(d_func));
        repeat_dropped = 0;
        repeat_n = 0;
        repeat_sec = sec;
        if (!same) {
            memcpy(repeat_key, key, sizeof(repeat_key));
            repeat_lvl = lvl;
            snprintf(repeat_func, sizeof(repeat_func), "%s", func);
        }
    }
    if (++repeat_n > LOG_REPEAT_MAX) {
        repeat_dropped++;
        admit = 0;
    }
    pthread_mutex_unlock(&repeat_mu);
    if (dropped > 0) {
        char note[64];

        snprintf(note, sizeof(note), "last message repeated %u times", dropped);
        write_line(d_lvl, d_func, NULL, note);
    }
    return admit;
}

static void
emit(enum log_level lvl, const char *func, const char *errstr, const char *msg)
{
    if (!repeat_admit(lvl, func, msg))
        return;
    write_line(lvl, func, errstr, msg);
}

/* Writes one line; every field is escaped here (log_escape). */
static void
write_line(enum log_level lvl, const char *func, const char *errstr, const char *msg)
{
    char ts[32], e_msg[4 * MSG_MAX], e_func[256], e_err[512], e_id[256];
    FILE *out = log_out != NULL ? log_out : stderr;
    struct timespec now;
    struct tm tm;

    clock_gettime(CLOCK_REALTIME, &now);
    gmtime_r(&now.tv_sec, &tm);
    strftime(ts, sizeof(ts), "%Y-%m-%dT%H:%M:%SZ", &tm);
    log_escape(msg, e_msg, sizeof(e_msg));
    log_escape(func, e_func, sizeof(e_func));
    log_escape(errstr != NULL ? errstr : "", e_err, sizeof(e_err));
    log_escape(log_reqid != NULL ? log_reqid : "", e_id, sizeof(e_id));
    if (log_json) {
        json_t *o = json_pack("{s:s, s:s, s:s, s:s}", "time", ts, "level", level_names[lvl], "func",
                              e_func, "msg", e_msg);
        char *line;

        if (errstr != NULL)
            json_object_set_new(o, "error", json_string(e_err));
        if (log_reqid != NULL)
            json_object_set_new(o, "request_id", json_string(e_id));
        line = json_dumps(o, JSON_COMPACT);
        if (line != NULL)
            fprintf(out, "%s\n", line);
        free(line);
        json_decref(o);
        return;
    }
    fprintf(out, "%s %s %s%s%s%s: %s%s%s\n", ts, level_names[lvl], log_reqid ? "[" : "", e_id,
            log_reqid ? "] " : "", e_func, e_msg, errstr ? ": " : "", e_err);
}

void
log_emit(enum log_level lvl, const char *func, const char *errstr, const char *fmt, ...)
{
    char msg[MSG_MAX];
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
    char msg[MSG_MAX];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    write_line(LOG_ERROR, "fatal", NULL, msg);
    exit(1);
}
