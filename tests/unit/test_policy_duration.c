/*
 * policy_check_duration(): the one duration rule behind requestedDuration,
 * REST renew (extendBy) and the control channel's extend. Both sides of
 * every bound, and the exact messages both callers hand to the user.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "config.h"
#include "err.h"
#include "policy.h"

#define N(a) (sizeof(a) / sizeof((a)[0]))

static void
test_policy_duration_bounds(void **state)
{
    static const struct {
        const char *text;
        int64_t min_s; /* the template's minDuration, 0 = none */
        int want_r;
        int64_t want_s;
        const char *want_why;
    } cases[] = {
        {NULL, 0, 0, 1800, NULL}, /* the template's default */
        {"1h", 0, 0, 3600, NULL}, /* exactly maxDuration */
        {"1h1s", 0, ERR_INVALID, 0, "field 'extendBy' is above the template's maxDuration (1h)"},
        {"1s", 0, 0, 1, NULL}, /* no minimum unless the template sets one */
        {"10m", 600, 0, 600, NULL}, /* exactly minDuration */
        {"9m59s", 600, ERR_INVALID, 0, "field 'extendBy' is below the template's minDuration"},
        {"5m", 600, ERR_INVALID, 0, "field 'extendBy' is below the template's minDuration"},
        {"soon", 0, ERR_INVALID, 0,
         "field 'extendBy': 'soon' is not a duration (use forms like 90s, 30m, 1h30m, 2d)"},
        {"0s", 0, ERR_INVALID, 0,
         "field 'extendBy': '0s' is not a duration (use forms like 90s, 30m, 1h30m, 2d)"},
    };
    struct tmpl_cfg t;
    size_t i;
    (void)state;

    memset(&t, 0, sizeof(t));
    t.name = "bounded";
    t.max_duration_s = 3600;
    t.default_duration_s = 1800;
    for (i = 0; i < N(cases); i++) {
        char why[POLICY_WHY_MAX] = "";
        int64_t secs = -1;
        int r;

        t.min_duration_s = cases[i].min_s;
        r = policy_check_duration(&t, "extendBy", cases[i].text, &secs, why, sizeof(why));
        if (r != cases[i].want_r)
            fail_msg("case %zu (%s): want %d, got %d", i, cases[i].text ? cases[i].text : "NULL",
                     cases[i].want_r, r);
        if (r == 0)
            assert_int_equal(secs, cases[i].want_s);
        else
            assert_string_equal(why, cases[i].want_why);
    }
}

/* A field value of 4 KiB (the API's string limit) comes back whole in the message. */
static void
test_policy_duration_long_text(void **state)
{
    char text[4097], why[POLICY_WHY_MAX];
    struct tmpl_cfg t;
    int64_t secs;
    (void)state;

    memset(&t, 0, sizeof(t));
    t.max_duration_s = 3600;
    memset(text, 'x', sizeof(text) - 1);
    text[sizeof(text) - 1] = '\0';
    assert_int_equal(policy_check_duration(&t, "requestedDuration", text, &secs, why, sizeof(why)),
                     ERR_INVALID);
    assert_non_null(strstr(why, text));
    assert_non_null(strstr(why, "is not a duration (use forms like 90s, 30m, 1h30m, 2d)"));
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_policy_duration_bounds),
        cmocka_unit_test(test_policy_duration_long_text),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
