#include <stdio.h>
#include <string.h>

#include "duration.h"
#include "err.h"

int
duration_parse(const char *s, int64_t *secs)
{
    static const struct {
        char unit;
        int64_t mult;
    } units[] = {{'d', 86400}, {'h', 3600}, {'m', 60}, {'s', 1}};
    size_t next_unit = 0;
    int64_t total = 0;

    *secs = 0;
    if (s == NULL || *s == '\0' || strlen(s) > 32)
        return ERR_INVALID;
    while (*s) {
        int64_t v = 0;
        int digits = 0;
        size_t u;

        while (*s >= '0' && *s <= '9') {
            v = v * 10 + (*s++ - '0');
            if (++digits > 9)
                return ERR_INVALID;
        }
        if (digits == 0)
            return ERR_INVALID;
        for (u = next_unit; u < sizeof(units) / sizeof(units[0]); u++)
            if (units[u].unit == *s)
                break;
        if (u == sizeof(units) / sizeof(units[0]))
            return ERR_INVALID; /* unknown unit, missing unit, or out of order */
        total += v * units[u].mult;
        if (total > DURATION_MAX_S)
            return ERR_INVALID;
        next_unit = u + 1;
        s++;
    }
    if (total <= 0)
        return ERR_INVALID;
    *secs = total;
    return 0;
}

void
duration_format(int64_t secs, char *out, size_t out_len)
{
    int64_t d = secs / 86400, h = secs % 86400 / 3600, m = secs % 3600 / 60, s = secs % 60;
    size_t n = 0;

    if (out_len == 0)
        return;
    out[0] = '\0';
    if (secs <= 0) {
        snprintf(out, out_len, "0s");
        return;
    }
    if (d && n < out_len)
        n += (size_t)snprintf(out + n, out_len - n, "%lldd", (long long)d);
    if (h && n < out_len)
        n += (size_t)snprintf(out + n, out_len - n, "%lldh", (long long)h);
    if (m && n < out_len)
        n += (size_t)snprintf(out + n, out_len - n, "%lldm", (long long)m);
    if (s && n < out_len)
        snprintf(out + n, out_len - n, "%llds", (long long)s);
}
