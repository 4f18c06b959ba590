/*
 * PURE. The clock in the shared shell. See clock.h.
 *
 * The status line changes once a minute until the last 10 minutes, then
 * every second: each change is one tmux command, so a long session costs
 * about one a minute.
 */
#include <stdio.h>

#include "clock.h"

#define EXTEND_HINT "airlock extend --for 30m"

int64_t
clock_end(const struct clock_in *c, int *idle)
{
    int64_t end = c->expires_at, idle_end = 0;

    *idle = 0;
    if (c->idle_timeout_s > 0 && c->idle_since > 0)
        idle_end = c->idle_since + c->idle_timeout_s;
    if (idle_end > 0 && (end == 0 || idle_end < end)) {
        end = idle_end;
        *idle = 1;
    }
    return end;
}

int
clock_level(int64_t left)
{
    if (left <= 0 || left > 600)
        return 0;
    if (left > 300)
        return 600;
    return left > 60 ? 300 : 60;
}

void
clock_left(int64_t secs, char *out, size_t len)
{
    if (secs < 0)
        secs = 0;
    if (secs >= 3600)
        snprintf(out, len, "%lldh%02lldm", (long long)(secs / 3600), (long long)(secs % 3600 / 60));
    else if (secs >= 600)
        snprintf(out, len, "%lldm", (long long)(secs / 60));
    else if (secs >= 60)
        snprintf(out, len, "%lldm%02llds", (long long)(secs / 60), (long long)(secs % 60));
    else
        snprintf(out, len, "%llds", (long long)secs);
}

void
clock_status(const struct clock_in *c, int64_t now, char *out, size_t len)
{
    int idle;
    int64_t end = clock_end(c, &idle);
    char left[32];

    if (end == 0) {
        snprintf(out, len, "%s", "");
        return;
    }
    clock_left(end - now, left, sizeof(left));
    if (idle)
        snprintf(out, len, "airlock: idle, ends in %s ", left);
    else
        snprintf(out, len, "airlock: %s left ", left);
}

void
clock_warning(const struct clock_in *c, int64_t now, char *out, size_t len)
{
    int idle;
    int64_t end = clock_end(c, &idle);
    char left[32];

    clock_left(end - now, left, sizeof(left));
    if (idle)
        snprintf(out, len,
                 "airlock: nobody has typed for a while; the session ends in %s unless someone "
                 "types",
                 left);
    else if (c->can_extend)
        snprintf(out, len, "airlock: the session ends in %s; run '%s' to extend it", left,
                 EXTEND_HINT);
    else
        snprintf(out, len, "airlock: the session ends in %s (it cannot be extended)", left);
}
