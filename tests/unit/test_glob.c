/*
 * glob.c: the matcher of DESIGN.md 3 ('*' crosses '/'), one row per
 * (pattern, string, flags) with the expected answer.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "glob.h"

#define N(a) (sizeof(a) / sizeof((a)[0]))
#define CS 0          /* case-sensitive (agent names, claims) */
#define CI GLOB_ICASE /* users, emails, groups */

struct glob_case {
    const char *pattern, *str;
    int flags;
    int want;
};

static void
run(const struct glob_case *cases, size_t n)
{
    size_t i;

    for (i = 0; i < n; i++) {
        int got = glob_match(cases[i].pattern, cases[i].str, cases[i].flags);

        if (got != cases[i].want)
            fail_msg("glob_match(\"%s\", \"%s\", %s): want %d, got %d", cases[i].pattern,
                     cases[i].str, cases[i].flags ? "ICASE" : "0", cases[i].want, got);
    }
}

static void
test_glob_star(void **state)
{
    static const struct glob_case cases[] = {
        /* the DESIGN.md example: '*' crosses '/' */
        {"gh/acme/*", "gh/acme/web/42-1", CS, 1},
        {"gh/acme/*", "gh/acme/web", CS, 1},
        {"gh/acme/*", "gh/acme/", CS, 1},
        {"gh/acme/*", "gh/acme", CS, 0},
        {"gh/acme/*", "gh/acmex/web", CS, 0},
        {"gh/acme/*", "gh/other/web/1-1", CS, 0},
        {"gh/acme/*", "xgh/acme/web", CS, 0},
        {"gh/acme/sandbox/*", "gh/acme/sandbox/7-1", CS, 1},
        {"gh/acme/sandbox/*", "gh/acme/web/7-1", CS, 0},
        {"gh/*/web/*", "gh/acme/web/42-1", CS, 1},
        {"gh/*/web/*", "gh/acme/api/42-1", CS, 0},
        {"gh/*/web/*", "gh/a/b/web/1", CS, 1},
        {"*", "", CS, 1},
        {"*", "a", CS, 1},
        {"*", "a/b/c", CS, 1},
        {"**", "a/b", CS, 1},
        {"***", "", CS, 1},
        {"a*", "a", CS, 1},
        {"a*", "ab/c", CS, 1},
        {"a*", "ba", CS, 0},
        {"*a", "a", CS, 1},
        {"*a", "b/a", CS, 1},
        {"*a", "ab", CS, 0},
        {"a*b", "ab", CS, 1},
        {"a*b", "a/x/b", CS, 1},
        {"a*b", "a/x/bc", CS, 0},
        {"*a*b", "xaxxb", CS, 1},
        {"*a*b", "xbxxa", CS, 0},
        {"a*b*c", "abcbc", CS, 1},
        {"a*b*c", "acb", CS, 0},
        {"*.example.com", "foo.example.com", CS, 1},
        {"*.example.com", "example.com", CS, 0},
        {"*@example.com", "alice@example.com", CI, 1},
        {"*@example.com", "alice@example.org", CI, 0},
        {"*aaa", "aaaaaaaaaaaaaaaaaaaaaaaaaaaaab", CS, 0}, /* backtracking ends */
        {"*a*a*a*a*b", "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", CS, 0},
    };
    (void)state;
    run(cases, N(cases));
}

static void
test_glob_question(void **state)
{
    static const struct glob_case cases[] = {
        {"?", "a", CS, 1},
        {"?", "/", CS, 1}, /* '?' is any one character, '/' included */
        {"?", "", CS, 0},
        {"?", "ab", CS, 0},
        {"??", "a", CS, 0},
        {"??", "ab", CS, 1},
        {"a?c", "abc", CS, 1},
        {"a?c", "a/c", CS, 1},
        {"a?c", "ac", CS, 0},
        {"a?c", "abbc", CS, 0},
        {"gh/acme/web/?-1", "gh/acme/web/7-1", CS, 1},
        {"gh/acme/web/?-1", "gh/acme/web/42-1", CS, 0},
        {"*?", "", CS, 0},
        {"*?", "x", CS, 1},
        {"?*", "x/y", CS, 1},
    };
    (void)state;
    run(cases, N(cases));
}

static void
test_glob_sets(void **state)
{
    static const struct glob_case cases[] = {
        {"[abc]", "a", CS, 1},
        {"[abc]", "c", CS, 1},
        {"[abc]", "d", CS, 0},
        {"[abc]", "", CS, 0},
        {"[abc]", "ab", CS, 0},
        {"x[abc]y", "xby", CS, 1},
        {"x[abc]y", "xdy", CS, 0},
        /* ranges: both ends in, both neighbours out */
        {"[a-z]", "a", CS, 1},
        {"[a-z]", "m", CS, 1},
        {"[a-z]", "z", CS, 1},
        {"[a-z]", "`", CS, 0}, /* 'a' - 1 */
        {"[a-z]", "{", CS, 0}, /* 'z' + 1 */
        {"[a-z]", "A", CS, 0},
        {"[0-9][0-9]", "42", CS, 1},
        {"[0-9][0-9]", "4x", CS, 0},
        {"[a-cx-z]", "b", CS, 1},
        {"[a-cx-z]", "y", CS, 1},
        {"[a-cx-z]", "m", CS, 0},
        /* negation with '!' and '^' */
        {"[!a-c]", "d", CS, 1},
        {"[!a-c]", "a", CS, 0},
        {"[!a-c]", "c", CS, 0},
        {"[!a-c]", "", CS, 0},
        {"[^a]", "b", CS, 1},
        {"[^a]", "a", CS, 0},
        {"[!/]", "/", CS, 0},
        {"gh/acme/[!s]*", "gh/acme/web/1", CS, 1},
        {"gh/acme/[!s]*", "gh/acme/sandbox/1", CS, 0},
        /* ']' first is literal, '-' last is literal */
        {"[]]", "]", CS, 1},
        {"[]a]", "a", CS, 1},
        {"[]a]", "b", CS, 0},
        {"[!]]", "]", CS, 0},
        {"[!]]", "x", CS, 1},
        {"[a-]", "-", CS, 1},
        {"[a-]", "a", CS, 1},
        {"[a-]", "b", CS, 0},
        /* sets after a star */
        {"*[0-9]", "run-7", CS, 1},
        {"*[0-9]", "run-x", CS, 0},
        {"*[!0-9]", "run-7", CS, 0},
    };
    (void)state;
    run(cases, N(cases));
}

/* An unclosed '[' is a literal character. */
static void
test_glob_malformed_bracket(void **state)
{
    static const struct glob_case cases[] = {
        {"[", "[", CS, 1},     {"[", "a", CS, 0},    {"[", "", CS, 0},      {"[abc", "[abc", CS, 1},
        {"[abc", "a", CS, 0},  {"[abc", "b", CS, 0}, {"x[", "x[", CS, 1},   {"x[", "x", CS, 0},
        {"a[b", "a[b", CS, 1}, {"a[b", "ab", CS, 0}, {"*[", "xyz[", CS, 1}, {"*[", "xyz", CS, 0},
        {"[!", "[!", CS, 1},   {"[]", "[]", CS, 1},  {"[a-", "[a-", CS, 1}, {"grp[", "GRP[", CI, 1},
    };
    (void)state;
    run(cases, N(cases));
}

static void
test_glob_case(void **state)
{
    static const struct glob_case cases[] = {
        {"alice", "alice", CS, 1},
        {"alice", "Alice", CS, 0},
        {"alice", "Alice", CI, 1},
        {"ALICE@EXAMPLE.COM", "alice@example.com", CI, 1},
        {"ALICE@EXAMPLE.COM", "alice@example.com", CS, 0},
        {"gh/acme/*", "GH/ACME/web", CS, 0}, /* agent names are case-sensitive */
        {"gh/acme/*", "GH/ACME/web", CI, 1},
        {"sre-*", "SRE-leads", CI, 1},
        {"sre-*", "SRE-leads", CS, 0},
        {"[A-C]x", "bX", CI, 1},
        {"[A-C]x", "bX", CS, 0},
        {"[a-c]", "B", CI, 1},
        {"[a-c]", "B", CS, 0},
        {"[!a]", "A", CI, 0},
        {"[!a]", "A", CS, 1},
        {"?LICE", "alice", CI, 1},
        {"?LICE", "alice", CS, 0},
    };
    (void)state;
    run(cases, N(cases));
}

static void
test_glob_empty_and_literal(void **state)
{
    static const struct glob_case cases[] = {
        {"", "", CS, 1},       {"", "a", CS, 0},       {"a", "", CS, 0},
        {"abc", "abc", CS, 1}, {"abc", "abcd", CS, 0}, {"abcd", "abc", CS, 0},
        {"a/b", "a/b", CS, 1}, {"a/b", "a/c", CS, 0},  {"", "", CI, 1},
        {"", "x", CI, 0},
    };
    (void)state;
    run(cases, N(cases));
}

static void
test_glob_is_pattern(void **state)
{
    static const struct {
        const char *s;
        int want;
    } cases[] = {
        {"", 0},
        {"alice", 0},
        {"alice@example.com", 0},
        {"gh/acme/web/1-1", 0},
        {"a]", 0},
        {"a-b", 0},
        {"!x", 0},
        {"*", 1},
        {"gh/acme/*", 1},
        {"a?", 1},
        {"[x", 1},
        {"x[a-b]", 1},
    };
    size_t i;
    (void)state;

    for (i = 0; i < N(cases); i++)
        if (glob_is_pattern(cases[i].s) != cases[i].want)
            fail_msg("glob_is_pattern(\"%s\"): want %d", cases[i].s, cases[i].want);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_glob_star),       cmocka_unit_test(test_glob_question),
        cmocka_unit_test(test_glob_sets),       cmocka_unit_test(test_glob_malformed_bracket),
        cmocka_unit_test(test_glob_case),       cmocka_unit_test(test_glob_empty_and_literal),
        cmocka_unit_test(test_glob_is_pattern),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
