/*
 * PURE. "Did you mean": the names closest to a mistyped one, for the
 * server's 400 on an unknown template or agent (its error details) and the
 * CLI's own checks. Closeness is the Levenshtein distance, ASCII
 * case-insensitive; a name within max(1, strlen(want) / 3) edits counts, and
 * so does a name of which want is a prefix (or the other way round).
 */
#ifndef AIRLOCK_SUGGEST_H
#define AIRLOCK_SUGGEST_H
#include <stddef.h>

#define SUGGEST_NAME_MAX 255 /* longer names (either side) are never suggested */

/* Levenshtein distance of a and b, ASCII case-insensitive; SIZE_MAX when either is too long. */
size_t suggest_distance(const char *a, const char *b);
/*
 * Fills out[0..max) with the names[] (borrowed) closest to want, nearest
 * first (ties in names[] order), never want itself in any case. Returns how
 * many were written.
 */
size_t suggest_names(const char *want, const char *const *names, size_t n, const char **out,
                     size_t max);

#endif
