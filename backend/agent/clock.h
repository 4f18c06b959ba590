/*
 * PURE. The clock participants see inside the shared shell (issue 12): the
 * time left on the tmux status line, and a message at 10, 5 and 1 minutes
 * before the session ends, whether by expiry or by idle end (no input from
 * anyone for idleTimeout). The same end drives `airlock wait`'s box. No I/O
 * and no clock of its own: callers pass `now` (Unix seconds).
 */
#ifndef AIRLOCK_AGENT_CLOCK_H
#define AIRLOCK_AGENT_CLOCK_H
#include <stddef.h>
#include <stdint.h>

#define CLOCK_TEXT_MAX 160

struct clock_in {
    int64_t expires_at;     /* Unix seconds, 0 = unknown */
    int64_t idle_timeout_s; /* 0 = no idle rule */
    int64_t idle_since;     /* last input from anyone (or when the clock started), Unix s */
    int can_extend;         /* a renewal is allowed now: name the command */
};

/* The end participants face: the earlier of expiry and idle end (0 = none); *idle when idle. */
int64_t clock_end(const struct clock_in *c, int *idle);
/*
 * 600, 300 or 60: the smallest warning threshold `left` seconds are within;
 * 0 when more than 10 minutes are left (or none: left <= 0).
 */
int clock_level(int64_t left);
/* "1h02m", "42m", "4m05s", "37s": minutes only from 10 minutes up to an hour. */
void clock_left(int64_t secs, char *out, size_t len);
/* The status line text: "airlock: 42m left" or "airlock: idle, ends in 4m05s"; "" when no end. */
void clock_status(const struct clock_in *c, int64_t now, char *out, size_t len);
/* The warning message for now, naming `airlock extend --for 30m` when c->can_extend. */
void clock_warning(const struct clock_in *c, int64_t now, char *out, size_t len);

#endif
