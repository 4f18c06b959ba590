/*
 * duration.c: the "1d12h" forms of DESIGN.md 3. Valid and invalid inputs are
 * rows; limits (365d, nine digits, 32 characters) are tested on both sides,
 * and duration_format() output parses back to the same number.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "duration.h"
#include "err.h"

#define N(a) (sizeof(a) / sizeof((a)[0]))
#define MIN 60LL
#define HOUR 3600LL
#define DAY 86400LL

static void
test_duration_valid(void **state)
{
    static const struct {
        const char *in;
        int64_t want;
    } cases[] = {
        {"90s", 90},
        {"30m", 30 * MIN},
        {"1h30m", HOUR + 30 * MIN},
        {"2d", 2 * DAY},
        {"1d12h", DAY + 12 * HOUR},
        {"365d", 365 * DAY},
        {"1s", 1},
        {"1m", MIN},
        {"1h", HOUR},
        {"1d", DAY},
        {"1d1h1m1s", DAY + HOUR + MIN + 1},
        {"1d1s", DAY + 1}, /* units may be skipped */
        {"2h15s", 2 * HOUR + 15},
        {"90m", 90 * MIN}, /* no carry into the next unit is required */
        {"48h", 48 * HOUR},
        {"01h", HOUR},
        {"0d1s", 1}, /* a zero part is fine when the total is not zero */
        {"364d23h59m59s", 365 * DAY - 1},
        /* the 365d cap, reached through other units */
        {"8760h", 365 * DAY},
        {"525600m", 365 * DAY},
        {"31536000s", 365 * DAY},
        {"364d24h", 365 * DAY},
        /* nine digits is the most a number may have */
        {"000000001s", 1},
        {"000086400s", DAY},
    };
    size_t i;
    (void)state;

    for (i = 0; i < N(cases); i++) {
        int64_t got = -1;
        int r = duration_parse(cases[i].in, &got);

        if (r != 0 || got != cases[i].want)
            fail_msg("duration_parse(\"%s\"): want 0/%lld, got %d/%lld", cases[i].in,
                     (long long)cases[i].want, r, (long long)got);
    }
}

static void
test_duration_invalid(void **state)
{
    static const char *const cases[] = {
        /* zero */
        "0s",
        "0m",
        "0h",
        "0d",
        "0d0h0m0s",
        "000s",
        /* empty and signs */
        "",
        "-5m",
        "+5m",
        "-0s",
        "--1s",
        /* order and repetition */
        "1h1d",
        "30s1m",
        "1m1h",
        "1s1d",
        "1h1h",
        "1m1m",
        "1d1d",
        "1s1s",
        "1h30m1h",
        /* unknown or missing unit, stray text */
        "1x",
        "1",
        "30",
        "1h30",
        "h",
        "m1",
        "d",
        "1H",
        "1D",
        "1M",
        "1S",
        "1ms",
        "1w",
        "1y",
        "1.5h",
        "1,5h",
        "1e3s",
        "0x10s",
        "1h-1m",
        "1hh",
        "1h?",
        /* spaces anywhere */
        " 1h",
        "1h ",
        "1 h",
        "1h 30m",
        "\t1h",
        "1h\n",
        /* above 365d, by one second and more */
        "366d",
        "365d1s",
        "8760h1s",
        "525601m",
        "31536001s",
        "364d25h",
        "1000d",
        /* ten or more digits */
        "0000000001s",
        "1000000000s",
        "9999999999d",
        "00000000000000000001s",
        /* longer than 32 characters (valid otherwise) */
        "000000001d000000001h000000001m000000001s",
    };
    size_t i;
    (void)state;

    for (i = 0; i < N(cases); i++) {
        int64_t got = 12345;
        int r = duration_parse(cases[i], &got);

        if (r != ERR_INVALID)
            fail_msg("duration_parse(\"%s\"): want ERR_INVALID, got %d (%lld)", cases[i], r,
                     (long long)got);
        if (got != 0)
            fail_msg("duration_parse(\"%s\"): *secs should be 0 on error, got %lld", cases[i],
                     (long long)got);
    }
}

static void
test_duration_null(void **state)
{
    int64_t got = 7;
    (void)state;

    assert_int_equal(duration_parse(NULL, &got), ERR_INVALID);
    assert_int_equal(got, 0);
}

/* 32 characters is the longest input read: both sides of the limit. */
static void
test_duration_length_limit(void **state)
{
    int64_t got = 0;
    (void)state;

    /* 32 characters: "000000001d" "00000001h" "0000001m" "00001s" = 10+9+8+5 */
    assert_int_equal(strlen("000000001d00000001h0000001m00001s"), 33);
    assert_int_equal(strlen("000000001d00000001h0000001m0001s"), 32);
    assert_int_equal(duration_parse("000000001d00000001h0000001m0001s", &got), 0);
    assert_int_equal(got, DAY + HOUR + MIN + 1);
    assert_int_equal(duration_parse("000000001d00000001h0000001m00001s", &got), ERR_INVALID);
}

static void
test_duration_format(void **state)
{
    static const struct {
        int64_t secs;
        const char *want;
    } cases[] = {
        {1, "1s"},
        {45, "45s"},
        {59, "59s"},
        {60, "1m"},
        {90, "1m30s"},
        {30 * MIN, "30m"},
        {HOUR - 1, "59m59s"},
        {HOUR, "1h"},
        {HOUR + 30 * MIN, "1h30m"},
        {HOUR + 1, "1h1s"},
        {DAY - 1, "23h59m59s"},
        {DAY, "1d"},
        {DAY + 1, "1d1s"},
        {DAY + 12 * HOUR, "1d12h"},
        {2 * DAY, "2d"},
        {DAY + HOUR + MIN + 1, "1d1h1m1s"},
        {365 * DAY, "365d"},
        {0, "0s"},
        {-5, "0s"},
    };
    size_t i;
    (void)state;

    for (i = 0; i < N(cases); i++) {
        char buf[32];

        memset(buf, 'X', sizeof(buf));
        duration_format(cases[i].secs, buf, sizeof(buf));
        if (strcmp(buf, cases[i].want) != 0)
            fail_msg("duration_format(%lld): want \"%s\", got \"%s\"", (long long)cases[i].secs,
                     cases[i].want, buf);
    }
}

/* Small buffers: never written past, always terminated. */
static void
test_duration_format_truncates(void **state)
{
    static const struct {
        int64_t secs;
        size_t len;
        const char *want;
    } cases[] = {
        {DAY + 12 * HOUR, 6, "1d12h"},
        {DAY + 12 * HOUR, 5, "1d12"},
        {DAY + 12 * HOUR, 3, "1d"},
        {DAY + 12 * HOUR, 2, "1"},
        {DAY + 12 * HOUR, 1, ""},
        {DAY + HOUR + MIN + 1, 4, "1d1"},
        {DAY + HOUR + MIN + 1, 5, "1d1h"},
        {DAY + HOUR + MIN + 1, 7, "1d1h1m"},
        {DAY + HOUR + MIN + 1, 8, "1d1h1m1"},
        {90, 2, "1"},
        {0, 2, "0"},
    };
    size_t i;
    (void)state;

    for (i = 0; i < N(cases); i++) {
        char buf[16];

        memset(buf, 'X', sizeof(buf));
        duration_format(cases[i].secs, buf, cases[i].len);
        assert_string_equal(buf, cases[i].want);
        assert_int_equal(buf[cases[i].len], 'X'); /* nothing past the buffer */
    }
    /* out_len 0 writes nothing at all */
    {
        char buf[2] = {'X', 'X'};

        duration_format(90, buf, 0);
        assert_int_equal(buf[0], 'X');
    }
}

/* Every canonical output parses back to the same number of seconds. */
static void
test_duration_round_trip(void **state)
{
    static const int64_t fixed[] = {
        1,       59,       60,      61,      HOUR - 1,  HOUR,          HOUR + 1,
        DAY - 1, DAY,      DAY + 1, 2 * DAY, 364 * DAY, 365 * DAY - 1, 365 * DAY,
        12345,   4 * HOUR, 99999,
    };
    int64_t secs;
    size_t i;
    int n = 0;
    (void)state;

    for (i = 0; i < N(fixed); i++) {
        char buf[32];
        int64_t back = 0;

        duration_format(fixed[i], buf, sizeof(buf));
        assert_int_equal(duration_parse(buf, &back), 0);
        assert_int_equal(back, fixed[i]);
    }
    /* a stride through the whole valid range */
    for (secs = 1; secs <= DURATION_MAX_S; secs += 7919 + (secs % 13)) {
        char buf[32];
        int64_t back = 0;

        duration_format(secs, buf, sizeof(buf));
        if (duration_parse(buf, &back) != 0 || back != secs)
            fail_msg("round trip of %lld via \"%s\" gave %lld", (long long)secs, buf,
                     (long long)back);
        n++;
    }
    assert_true(n > 1000);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_duration_valid),
        cmocka_unit_test(test_duration_invalid),
        cmocka_unit_test(test_duration_null),
        cmocka_unit_test(test_duration_length_limit),
        cmocka_unit_test(test_duration_format),
        cmocka_unit_test(test_duration_format_truncates),
        cmocka_unit_test(test_duration_round_trip),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
