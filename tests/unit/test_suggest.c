/*
 * suggest.c: the distance and the "did you mean" list for unknown template
 * and agent names.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "suggest.h"

#define N(a) (sizeof(a) / sizeof((a)[0]))

static void
test_distance(void **state)
{
    char longname[SUGGEST_NAME_MAX + 2];

    (void)state;
    assert_int_equal(suggest_distance("", ""), 0);
    assert_int_equal(suggest_distance("abc", ""), 3);
    assert_int_equal(suggest_distance("kitten", "sitting"), 3);
    assert_int_equal(suggest_distance("ci-debug", "ci-debg"), 1);
    assert_int_equal(suggest_distance("CI-Debug", "ci-debug"), 0);
    assert_int_equal(suggest_distance("flaw", "lawn"), 2);
    memset(longname, 'a', sizeof(longname) - 1);
    longname[sizeof(longname) - 1] = '\0';
    assert_true(suggest_distance(longname, "a") == SIZE_MAX);
}

static void
test_names(void **state)
{
    static const char *const names[] = {"sandbox", "ci-debug", "prod-db", "ci-debug-long",
                                        "gh/acme/web/42-1"};
    const char *out[3];
    size_t k;

    (void)state;
    k = suggest_names("ci-debg", names, N(names), out, N(out));
    assert_true(k >= 1);
    assert_string_equal(out[0], "ci-debug"); /* nearest first */

    k = suggest_names("sandbx", names, N(names), out, N(out));
    assert_int_equal(k, 1);
    assert_string_equal(out[0], "sandbox");

    k = suggest_names("ci", names, N(names), out, N(out)); /* a prefix */
    assert_int_equal(k, 2);
    assert_string_equal(out[0], "ci-debug");
    assert_string_equal(out[1], "ci-debug-long");

    k = suggest_names("gh/acme/web/42-2", names, N(names), out, N(out));
    assert_int_equal(k, 1);
    assert_string_equal(out[0], "gh/acme/web/42-1");

    /* far from everything: nothing, rather than a wild guess */
    assert_int_equal(suggest_names("zzzzzz", names, N(names), out, N(out)), 0);
    /* the name itself (any case) is not a suggestion */
    assert_int_equal(suggest_names("SANDBOX", names, 1, out, N(out)), 0);
    /* max is respected */
    assert_int_equal(suggest_names("ci-debug-lon", names, N(names), out, 1), 1);
    assert_string_equal(out[0], "ci-debug-long");
    assert_int_equal(suggest_names("x", NULL, 0, out, N(out)), 0);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_distance),
        cmocka_unit_test(test_names),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
