#include <ctype.h>
#include <string.h>

#include "glob.h"

static int
fold(int c, int flags)
{
    return (flags & GLOB_ICASE) ? tolower((unsigned char)c) : (unsigned char)c;
}

/* Matches one bracket set at *pp against c; advances *pp past ']'. -1 if malformed. */
static int
match_set(const char **pp, int c, int flags)
{
    const char *p = *pp + 1;
    int negate = 0, hit = 0;

    if (*p == '!' || *p == '^') {
        negate = 1;
        p++;
    }
    if (*p == ']') { /* a leading ']' is literal */
        hit |= fold(']', flags) == c;
        p++;
    }
    while (*p && *p != ']') {
        int lo = fold(*p, flags);

        if (p[1] == '-' && p[2] && p[2] != ']') {
            int hi = fold(p[2], flags);

            hit |= c >= lo && c <= hi;
            p += 3;
        } else {
            hit |= c == lo;
            p++;
        }
    }
    if (*p != ']')
        return -1;
    *pp = p + 1;
    return hit ^ negate;
}

int
glob_match(const char *pattern, const char *str, int flags)
{
    const char *p = pattern, *s = str, *star_p = NULL, *star_s = NULL;

    while (*s) {
        if (*p == '*') {
            while (*p == '*')
                p++;
            star_p = p;
            star_s = s;
            continue;
        }
        if (*p == '?') {
            p++;
            s++;
            continue;
        }
        if (*p == '[') {
            const char *q = p;
            int m = match_set(&q, fold(*s, flags), flags);

            if (m == 1) {
                p = q;
                s++;
                continue;
            }
            if (m < 0 && *p == *s) { /* malformed set: '[' is literal */
                p++;
                s++;
                continue;
            }
        } else if (*p && fold(*p, flags) == fold(*s, flags)) {
            p++;
            s++;
            continue;
        }
        if (star_p == NULL)
            return 0;
        p = star_p;
        s = ++star_s;
    }
    while (*p == '*')
        p++;
    return *p == '\0';
}

int
glob_is_pattern(const char *s)
{
    return strpbrk(s, "*?[") != NULL;
}
