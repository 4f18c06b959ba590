/*
 * PURE. suggest.h: the names close to a mistyped one.
 */
#include <ctype.h>
#include <stdint.h>
#include <string.h>
#include <strings.h>

#include "suggest.h"

size_t
suggest_distance(const char *a, const char *b)
{
    size_t la = strlen(a), lb = strlen(b), row[SUGGEST_NAME_MAX + 1];

    if (la > SUGGEST_NAME_MAX || lb > SUGGEST_NAME_MAX)
        return SIZE_MAX;
    for (size_t j = 0; j <= lb; j++)
        row[j] = j;
    for (size_t i = 1; i <= la; i++) {
        size_t diag = row[0];

        row[0] = i;
        for (size_t j = 1; j <= lb; j++) {
            size_t up = row[j], best = diag + (tolower((unsigned char)a[i - 1]) !=
                                               tolower((unsigned char)b[j - 1]));

            if (up + 1 < best)
                best = up + 1;
            if (row[j - 1] + 1 < best)
                best = row[j - 1] + 1;
            diag = up;
            row[j] = best;
        }
    }
    return row[lb];
}

/* The score of name against want: its distance, or SIZE_MAX when it is not close enough. */
static size_t
score(const char *want, const char *name)
{
    size_t lw = strlen(want), ln = strlen(name), d = suggest_distance(want, name);
    size_t limit = lw / 3 > 1 ? lw / 3 : 1;

    if (d == 0 || d == SIZE_MAX)
        return SIZE_MAX;
    if (d <= limit)
        return d;
    if (lw >= 2 && (strncasecmp(name, want, lw < ln ? lw : ln) == 0))
        return d; /* a prefix either way: "ci" for "ci-debug" */
    return SIZE_MAX;
}

size_t
suggest_names(const char *want, const char *const *names, size_t n, const char **out, size_t max)
{
    size_t k = 0, scores[16];

    if (max > sizeof(scores) / sizeof(scores[0]))
        max = sizeof(scores) / sizeof(scores[0]);
    for (size_t i = 0; i < n; i++) {
        size_t s = score(want, names[i]), pos;

        if (s == SIZE_MAX)
            continue;
        for (pos = k; pos > 0 && scores[pos - 1] > s; pos--)
            ;
        if (pos >= max)
            continue;
        if (k == max)
            k--;
        memmove(scores + pos + 1, scores + pos, (k - pos) * sizeof(scores[0]));
        memmove(out + pos + 1, out + pos, (k - pos) * sizeof(out[0]));
        scores[pos] = s;
        out[pos] = names[i];
        k++;
    }
    return k;
}
