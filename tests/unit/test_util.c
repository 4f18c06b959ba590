/*
 * util.c: base64url (RFC 4648 vectors, round trips, refused input), ct_streq,
 * sha256_hex, RFC 3339 time formatting and parsing, parse_uint bounds, str_ieq.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "err.h"
#include "util.h"

#define N(a) (sizeof(a) / sizeof((a)[0]))

/* ---- base64url ---------------------------------------------------------- */

static void
test_b64url_vectors(void **state)
{
    static const struct {
        const char *raw;
        size_t len;
        const char *enc;
    } cases[] = {
        /* RFC 4648 section 10, without padding */
        {"", 0, ""},
        {"f", 1, "Zg"},
        {"fo", 2, "Zm8"},
        {"foo", 3, "Zm9v"},
        {"foob", 4, "Zm9vYg"},
        {"fooba", 5, "Zm9vYmE"},
        {"foobar", 6, "Zm9vYmFy"},
        /* the URL-safe alphabet: '-' and '_' where standard base64 has '+' and '/' */
        {"\xfb\xff", 2, "-_8"},
        {"\xfb\xff\xbf", 3, "-_-_"},
        {"\x00", 1, "AA"},
        {"\x00\x00\x00", 3, "AAAA"},
        {"\xff\xff\xff", 3, "____"},
    };
    size_t i;
    (void)state;

    for (i = 0; i < N(cases); i++) {
        char *enc = b64url_encode((const unsigned char *)cases[i].raw, cases[i].len);
        unsigned char *dec = NULL;
        size_t dec_len = 99;

        assert_string_equal(enc, cases[i].enc);
        assert_int_equal(b64url_decode(enc, strlen(enc), &dec, &dec_len), 0);
        assert_int_equal(dec_len, cases[i].len);
        assert_memory_equal(dec, cases[i].raw, cases[i].len);
        assert_int_equal(dec[dec_len], '\0'); /* NUL-terminated for convenience */
        free(enc);
        free(dec);
    }
}

/* Every length 0..100 with every byte value somewhere. */
static void
test_b64url_round_trip(void **state)
{
    unsigned char raw[256];
    size_t len, i;
    (void)state;

    for (i = 0; i < sizeof(raw); i++)
        raw[i] = (unsigned char)(i * 37 + 11);
    for (len = 0; len <= 100; len++) {
        char *enc = b64url_encode(raw + (len % 7), len);
        unsigned char *dec = NULL;
        size_t dec_len = 0, j;

        /* no padding: ceil(len * 4 / 3) characters, only the URL alphabet */
        assert_int_equal(strlen(enc), (len * 4 + 2) / 3);
        for (j = 0; enc[j]; j++)
            assert_non_null(
                strchr("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_", enc[j]));
        assert_int_equal(b64url_decode(enc, strlen(enc), &dec, &dec_len), 0);
        assert_int_equal(dec_len, len);
        if (len)
            assert_memory_equal(dec, raw + (len % 7), len);
        free(enc);
        free(dec);
    }
    /* every byte value in one buffer */
    for (i = 0; i < sizeof(raw); i++)
        raw[i] = (unsigned char)i;
    {
        char *enc = b64url_encode(raw, sizeof(raw));
        unsigned char *dec = NULL;
        size_t dec_len = 0;

        assert_int_equal(b64url_decode(enc, strlen(enc), &dec, &dec_len), 0);
        assert_int_equal(dec_len, sizeof(raw));
        assert_memory_equal(dec, raw, sizeof(raw));
        free(enc);
        free(dec);
    }
}

/* Padding is tolerated; in_len, not strlen, bounds the input. */
static void
test_b64url_decode_accepts(void **state)
{
    static const struct {
        const char *in;
        size_t in_len;
        const char *want;
        size_t want_len;
    } cases[] = {
        {"Zg==", 4, "f", 1},        {"Zm8=", 4, "fo", 2}, {"Zm9v", 4, "foo", 3},
        {"Zm9vYmFy", 4, "foo", 3}, /* only the first 4 */
        {"Zm9vYmFy", 6, "foob", 4}, {"", 0, "", 0},       {"-_-_", 4, "\xfb\xff\xbf", 3},
    };
    size_t i;
    (void)state;

    for (i = 0; i < N(cases); i++) {
        unsigned char *dec = NULL;
        size_t dec_len = 0;

        if (b64url_decode(cases[i].in, cases[i].in_len, &dec, &dec_len) != 0)
            fail_msg("b64url_decode(\"%s\", %zu) refused", cases[i].in, cases[i].in_len);
        assert_int_equal(dec_len, cases[i].want_len);
        assert_memory_equal(dec, cases[i].want, cases[i].want_len);
        free(dec);
    }
}

static void
test_b64url_decode_refuses(void **state)
{
    static const char *const cases[] = {
        "A",             /* one character cannot hold a byte */
        "Zm9vY",         /* 4n + 1 characters */
        "Zm9v!", "Zm+v", /* standard alphabet is not base64url */
        "Zm/v",  "Zm 9v", "Zm9v\n", " Zm9v",    "Zm9v ",    "=Zm9", /* padding only at the end */
        "Zm=9",  "Zg=A",  "Zm9v.",  "Zm9v\x80", "\xc3\xa9", "Zm9v*",
    };
    size_t i;
    (void)state;

    for (i = 0; i < N(cases); i++) {
        unsigned char *dec = (unsigned char *)"poison";
        size_t dec_len = 99;

        if (b64url_decode(cases[i], strlen(cases[i]), &dec, &dec_len) != ERR_INVALID)
            fail_msg("b64url_decode(\"%s\") accepted", cases[i]);
        assert_null(dec);
        assert_int_equal(dec_len, 0);
    }
}

static void
test_b64_encode(void **state)
{
    static const struct {
        const char *raw;
        size_t len;
        const char *enc;
    } cases[] = {
        {"", 0, ""},        {"f", 1, "Zg=="},          {"fo", 2, "Zm8="},
        {"foo", 3, "Zm9v"}, {"foobar", 6, "Zm9vYmFy"}, {"\xfb\xff", 2, "+/8="},
    };
    size_t i;
    (void)state;

    for (i = 0; i < N(cases); i++) {
        char *enc = b64_encode((const unsigned char *)cases[i].raw, cases[i].len);

        assert_string_equal(enc, cases[i].enc);
        free(enc);
    }
}

static void
test_random_token(void **state)
{
    char *a = random_token(32), *b = random_token(32);
    size_t i;
    (void)state;

    assert_int_equal(strlen(a), 43); /* DESIGN.md 6: tickets are 43 characters */
    assert_int_equal(strlen(b), 43);
    assert_string_not_equal(a, b);
    for (i = 0; a[i]; i++)
        assert_non_null(
            strchr("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_", a[i]));
    free(a);
    free(b);
}

/* ---- comparisons and hashing ---------------------------------------------- */

static void
test_ct_streq(void **state)
{
    static const struct {
        const char *a, *b;
        int want;
    } cases[] = {
        {"", "", 1},
        {"abc", "abc", 1},
        {"abc", "abd", 0},
        {"abc", "Abc", 0},
        {"abc", "ab", 0}, /* a prefix is not equal */
        {"ab", "abc", 0},
        {"", "a", 0},
        {"a", "", 0},
        {"secret-token", "secret-tokem", 0},
        {"xsecret", "secret", 0},
        {NULL, "a", 0},
        {"a", NULL, 0},
        {NULL, NULL, 0},
    };
    size_t i;
    (void)state;

    for (i = 0; i < N(cases); i++)
        if (ct_streq(cases[i].a, cases[i].b) != cases[i].want)
            fail_msg("ct_streq(%s, %s): want %d", cases[i].a ? cases[i].a : "NULL",
                     cases[i].b ? cases[i].b : "NULL", cases[i].want);
}

static void
test_str_ieq(void **state)
{
    static const struct {
        const char *a, *b;
        int want;
    } cases[] = {
        {"alice", "alice", 1},
        {"alice", "ALICE", 1},
        {"Alice@Example.COM", "alice@example.com", 1},
        {"alice", "alicE ", 0},
        {"alice", "bob", 0},
        {"", "", 1},
        {"", "a", 0},
        {NULL, NULL, 1},
        {NULL, "", 0},
        {"", NULL, 0},
    };
    size_t i;
    (void)state;

    for (i = 0; i < N(cases); i++)
        assert_int_equal(str_ieq(cases[i].a, cases[i].b), cases[i].want);
}

static void
test_sha256_hex(void **state)
{
    static const struct {
        const char *in;
        const char *want;
    } cases[] = {
        {"", "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"},
        {"abc", "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"},
    };
    size_t i;
    (void)state;

    for (i = 0; i < N(cases); i++) {
        char out[65];

        memset(out, 'X', sizeof(out));
        sha256_hex(cases[i].in, strlen(cases[i].in), out);
        assert_string_equal(out, cases[i].want);
    }
}

/* ---- time ------------------------------------------------------------------ */

static void
test_time_fmt_parse(void **state)
{
    static const struct {
        int64_t t;
        const char *s;
    } cases[] = {
        {0, "1970-01-01T00:00:00Z"},
        {1, "1970-01-01T00:00:01Z"},
        {-1, "1969-12-31T23:59:59Z"},
        {951782400, "2000-02-29T00:00:00Z"}, /* leap day */
        {1800000000, "2027-01-15T08:00:00Z"},
        {1795341600, "2026-11-22T10:00:00Z"}, /* the DESIGN.md example */
        {1798761599, "2026-12-31T23:59:59Z"},
        {1798761600, "2027-01-01T00:00:00Z"},
        {2147483647, "2038-01-19T03:14:07Z"},
        {2147483648LL, "2038-01-19T03:14:08Z"}, /* past 32-bit time_t */
        {253402300799LL, "9999-12-31T23:59:59Z"},
    };
    size_t i;
    (void)state;

    for (i = 0; i < N(cases); i++) {
        char out[21];
        int64_t back = 42;

        memset(out, 'X', sizeof(out));
        time_fmt(cases[i].t, out);
        assert_string_equal(out, cases[i].s);
        assert_int_equal(time_parse(cases[i].s, &back), 0);
        assert_int_equal(back, cases[i].t);
    }
}

static void
test_time_parse_refuses(void **state)
{
    static const char *const cases[] = {
        "",
        "2026-11-22",
        "2026-11-22T10:00:00",       /* no Z */
        "2026-11-22T10:00:00+01:00", /* offsets are not ours */
        "2026-11-22T10:00:00.5Z",
        "2026-11-22 10:00:00Z",
        "2026-11-22T10:00:00Z ",
        "2026-11-22T10:00:00Zjunk",
        "2026-11-22T10:00Z",
        "2026-13-01T00:00:00Z",
        "2026-00-10T00:00:00Z",
        "2026-11-00T00:00:00Z",
        "2026-11-32T00:00:00Z",
        "2026-11-22T24:00:00Z",
        "2026-11-22T10:60:00Z",
        "2026-11-22T10:00:62Z",
        "now",
        "1795341600",
    };
    size_t i;
    (void)state;

    for (i = 0; i < N(cases); i++) {
        int64_t t = 0;

        if (time_parse(cases[i], &t) != ERR_INVALID)
            fail_msg("time_parse(\"%s\") accepted (%lld)", cases[i], (long long)t);
    }
}

/*
 * The header promises "YYYY-MM-DDTHH:MM:SSZ": a day that does not exist must
 * not be moved silently into the next month, and fields have fixed widths.
 */
static void
test_time_parse_strict(void **state)
{
    static const char *const cases[] = {
        "2026-02-30T00:00:00Z", /* would become 2026-03-02 */
        "2026-02-29T00:00:00Z", /* 2026 is not a leap year */
        "2026-04-31T00:00:00Z", /* April has 30 days */
        "2026-1-2T3:4:5Z",      /* fields are two digits */
        " 2026-11-22T10:00:00Z",
    };
    size_t i;
    int n_bad = 0;
    (void)state;

    for (i = 0; i < N(cases); i++) {
        int64_t t = 0;
        int r = time_parse(cases[i], &t);

        if (r != ERR_INVALID) {
            char back[21];

            time_fmt(t, back);
            print_error("time_parse(\"%s\") accepted as %s\n", cases[i], back);
            n_bad++;
        }
    }
    assert_int_equal(n_bad, 0);
}

/* ---- parse_uint ------------------------------------------------------------- */

static void
test_parse_uint(void **state)
{
    static const struct {
        const char *s;
        uint64_t max;
        int want_r;
        uint64_t want;
    } cases[] = {
        {"0", 0, 0, 0},
        {"0", 10, 0, 0},
        {"7", 10, 0, 7},
        {"10", 10, 0, 10},          /* at max */
        {"11", 10, ERR_INVALID, 0}, /* max + 1 */
        {"500", 500, 0, 500},
        {"501", 500, ERR_INVALID, 0},
        {"499", 500, 0, 499},
        {"65535", 65535, 0, 65535},
        {"65536", 65535, ERR_INVALID, 0},
        {"99999", 65535, ERR_INVALID, 0},
        {"007", 10, 0, 7},
        {"18446744073709551615", UINT64_MAX, 0, UINT64_MAX},
        {"18446744073709551616", UINT64_MAX, ERR_INVALID, 0}, /* 2^64 */
        {"99999999999999999999", UINT64_MAX, ERR_INVALID, 0},
        {"9223372036854775807", INT64_MAX, 0, INT64_MAX},
        {"9223372036854775808", INT64_MAX, ERR_INVALID, 0},
        /* small maxima, below the largest digit: both sides of max */
        {"5", 5, 0, 5},
        {"6", 5, ERR_INVALID, 0},
        {"9", 5, ERR_INVALID, 0},
        {"1", 0, ERR_INVALID, 0},
        {"16", 5, ERR_INVALID, 0},
        {"8", 8, 0, 8},
        {"9", 8, ERR_INVALID, 0},
        /* not a plain decimal */
        {"", 10, ERR_INVALID, 0},
        {"-1", 10, ERR_INVALID, 0},
        {"+1", 10, ERR_INVALID, 0},
        {" 1", 10, ERR_INVALID, 0},
        {"1 ", 10, ERR_INVALID, 0},
        {"1a", 10, ERR_INVALID, 0},
        {"0x1", 10, ERR_INVALID, 0},
        {"1.0", 10, ERR_INVALID, 0},
    };
    size_t i;
    int n_bad = 0;
    (void)state;

    for (i = 0; i < N(cases); i++) {
        uint64_t got = 12345;
        int r = parse_uint(cases[i].s, cases[i].max, &got);

        if (r != cases[i].want_r || (r == 0 && got != cases[i].want)) {
            print_error("parse_uint(\"%s\", max %llu): want %d/%llu, got %d/%llu\n", cases[i].s,
                        (unsigned long long)cases[i].max, cases[i].want_r,
                        (unsigned long long)cases[i].want, r, (unsigned long long)got);
            n_bad++;
        } else if (r != 0 && got != 12345) {
            print_error("parse_uint(\"%s\"): *out written on error\n", cases[i].s);
            n_bad++;
        }
    }
    assert_int_equal(n_bad, 0);
    assert_int_equal(parse_uint(NULL, 10, &(uint64_t){0}), ERR_INVALID);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_b64url_vectors),
        cmocka_unit_test(test_b64url_round_trip),
        cmocka_unit_test(test_b64url_decode_accepts),
        cmocka_unit_test(test_b64url_decode_refuses),
        cmocka_unit_test(test_b64_encode),
        cmocka_unit_test(test_random_token),
        cmocka_unit_test(test_ct_streq),
        cmocka_unit_test(test_str_ieq),
        cmocka_unit_test(test_sha256_hex),
        cmocka_unit_test(test_time_fmt_parse),
        cmocka_unit_test(test_time_parse_refuses),
        cmocka_unit_test(test_time_parse_strict),
        cmocka_unit_test(test_parse_uint),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
