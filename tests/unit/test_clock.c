/*
 * clock.c: the end participants face (expiry or idle end, whichever comes
 * first), the warning levels at 10, 5 and 1 minutes, the status text and the
 * warning's wording (the extend command only when a renewal is allowed), and
 * the box's idle line.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "box.h"
#include "clock.h"

#define T0 1000000LL

static void
test_clock_end(void **state)
{
    struct clock_in c = {.expires_at = T0 + 3600};
    int idle = -1;

    (void)state;
    assert_int_equal(clock_end(&c, &idle), T0 + 3600);
    assert_int_equal(idle, 0);
    c.idle_timeout_s = 600;
    c.idle_since = T0;
    assert_int_equal(clock_end(&c, &idle), T0 + 600);
    assert_int_equal(idle, 1);
    c.idle_since = T0 + 3500; /* someone typed: expiry comes first again */
    assert_int_equal(clock_end(&c, &idle), T0 + 3600);
    assert_int_equal(idle, 0);
    c.expires_at = 0; /* unknown expiry: the idle end alone */
    assert_int_equal(clock_end(&c, &idle), T0 + 4100);
    assert_int_equal(idle, 1);
    memset(&c, 0, sizeof(c));
    assert_int_equal(clock_end(&c, &idle), 0);
}

static void
test_clock_level(void **state)
{
    static const struct {
        int64_t left;
        int want;
    } cases[] = {
        {3600, 0}, {601, 0}, {600, 600}, {301, 600}, {300, 300},
        {61, 300}, {60, 60}, {1, 60},    {0, 0},     {-5, 0},
    };
    size_t i;

    (void)state;
    for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
        if (clock_level(cases[i].left) != cases[i].want)
            fail_msg("clock_level(%lld): want %d, got %d", (long long)cases[i].left, cases[i].want,
                     clock_level(cases[i].left));
}

static void
test_clock_texts(void **state)
{
    struct clock_in c = {.expires_at = T0 + 3725};
    char out[CLOCK_TEXT_MAX];

    (void)state;
    clock_status(&c, T0, out, sizeof(out));
    assert_string_equal(out, "airlock: 1h02m left ");
    clock_status(&c, T0 + 3725 - 2520, out, sizeof(out));
    assert_string_equal(out, "airlock: 42m left ");
    clock_status(&c, T0 + 3725 - 250, out, sizeof(out));
    assert_string_equal(out, "airlock: 4m10s left ");
    clock_status(&c, T0 + 3725 - 37, out, sizeof(out));
    assert_string_equal(out, "airlock: 37s left ");
    clock_status(&c, T0 + 4000, out, sizeof(out));
    assert_string_equal(out, "airlock: 0s left ");

    clock_warning(&c, T0 + 3725 - 300, out, sizeof(out));
    assert_string_equal(out, "airlock: the session ends in 5m00s (it cannot be extended)");
    c.can_extend = 1;
    clock_warning(&c, T0 + 3725 - 60, out, sizeof(out));
    assert_string_equal(
        out, "airlock: the session ends in 1m00s; run 'airlock extend --for 30m' to extend it");

    c.idle_timeout_s = 300;
    c.idle_since = T0;
    clock_status(&c, T0 + 50, out, sizeof(out));
    assert_string_equal(out, "airlock: idle, ends in 4m10s ");
    clock_warning(&c, T0 + 50, out, sizeof(out));
    assert_non_null(strstr(out, "ends in 4m10s unless someone types"));
    assert_null(strchr(out, '#')); /* tmux would expand it */

    memset(&c, 0, sizeof(c));
    clock_status(&c, T0, out, sizeof(out));
    assert_string_equal(out, "");
}

static void
test_box_idle(void **state)
{
    struct box_info bi;
    char out[4096];

    (void)state;
    memset(&bi, 0, sizeof(bi));
    bi.server = "https://airlock.example.com";
    bi.session = "ds-4k9x2mq7ab";
    bi.state = "Active";
    bi.expires_at = 1000 + 3600;
    bi.idle_ends_at = 1000 + 250;
    box_render(&bi, 1000, out, sizeof(out));
    assert_non_null(strstr(
        out, "Active, 4m10s left (idle: ends at 1970-01-01T00:20:50Z unless someone types)"));
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_clock_end),
        cmocka_unit_test(test_clock_level),
        cmocka_unit_test(test_clock_texts),
        cmocka_unit_test(test_box_idle),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
