/*
 * PURE. Glob matching for agent names, users, groups and claims: '*' matches
 * any run of characters INCLUDING '/', '?' one character, '[abc]', '[a-z]'
 * and '[!x]' a set. No escapes.
 */
#ifndef AIRLOCK_GLOB_H
#define AIRLOCK_GLOB_H

#define GLOB_ICASE 0x01 /* ASCII case-insensitive (users, emails, groups) */

/* 1 if str matches pattern, else 0. */
int glob_match(const char *pattern, const char *str, int flags);
/* 1 if s contains any of "*?[" (so is a pattern, not a literal). */
int glob_is_pattern(const char *s);

#endif
