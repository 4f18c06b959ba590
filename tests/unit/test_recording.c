/*
 * The pure parts of recording (docs/recording.md): asciicast.c (header and
 * event lines, JSON escaping, U+FFFD for bytes that are not UTF-8) and
 * asciicast_utf8_cut() (output split only between characters), and
 * recchain.c (the hash chain over chunks, checked against SHA-256 computed
 * here from its definition).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <jansson.h>
#include <openssl/sha.h>

#include "asciicast.h"
#include "err.h"
#include "recchain.h"

#define N(a) (sizeof(a) / sizeof((a)[0]))

static void
test_utf8_cut(void **state)
{
    static const struct {
        const char *in;
        size_t want;
    } cases[] = {
        {"", 0},
        {"abc", 3},
        {"caf\xc3\xa9", 5},             /* complete 2-byte character */
        {"caf\xc3", 3},                 /* first byte of 2 */
        {"\xe2\x82\xac", 3},            /* complete euro sign */
        {"x\xe2\x82", 1},               /* 2 of 3 */
        {"x\xe2", 1},                   /* 1 of 3 */
        {"\xf0\x9f\x98\x80", 4},        /* complete emoji */
        {"ab\xf0\x9f\x98", 2},          /* 3 of 4 */
        {"ab\xf0\x9f", 2},              /* 2 of 4 */
        {"ab\xf0", 2},                  /* 1 of 4 */
        {"a\x80\x80\x80", 4},           /* stray continuation bytes: nothing to wait for */
        {"a\xff", 2},                   /* never UTF-8: written now (as U+FFFD) */
        {"a\xc0", 2},                   /* an overlong lead: never completes */
        {"\xe2\x82\xac\xe2\x82", 3},    /* complete, then 2 of 3 */
        {"\xc3\xa9\xc3", 2},
    };
    size_t i;

    (void)state;
    for (i = 0; i < N(cases); i++) {
        size_t len = strlen(cases[i].in);

        if (asciicast_utf8_cut((const unsigned char *)cases[i].in, len) != cases[i].want)
            fail_msg("case %zu: cut %zu, want %zu", i,
                     asciicast_utf8_cut((const unsigned char *)cases[i].in, len), cases[i].want);
    }
}

/* Every split of a UTF-8 text, held back and re-joined as the recorder does, gives it back whole. */
static void
test_utf8_cut_rejoins(void **state)
{
    const char *text = "a\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80z";
    size_t len = strlen(text), split;

    (void)state;
    for (split = 0; split <= len; split++) {
        unsigned char held[64], out[64];
        size_t cut = asciicast_utf8_cut((const unsigned char *)text, split), n_held, n_out;

        memcpy(out, text, cut);
        n_out = cut;
        n_held = split - cut;
        assert_true(n_held <= 3);
        memcpy(held, text + cut, n_held);
        memcpy(held + n_held, text + split, len - split);
        n_held += len - split;
        cut = asciicast_utf8_cut(held, n_held);
        assert_int_equal(cut, n_held);
        memcpy(out + n_out, held, cut);
        n_out += cut;
        assert_int_equal(n_out, len);
        assert_memory_equal(out, text, len);
    }
}

static void
test_event_line(void **state)
{
    struct acbuf b = {0};
    const unsigned char data[] = "say \"hi\"\\\r\n\x1b[31mred\x7f caf\xc3\xa9";

    (void)state;
    asciicast_event(&b, 1.5, "o", data, sizeof(data) - 1);
    assert_string_equal(b.p, "[1.500000, \"o\", \"say \\\"hi\\\"\\\\\\u000d\\u000a\\u001b[31mred"
                             "\\u007f caf\xc3\xa9\"]\n");
    free(b.p);
}

static void
test_event_not_utf8(void **state)
{
    struct acbuf b = {0};
    /* a lone byte, an overlong '/', a surrogate, a code point past U+10FFFF, a cut character */
    const unsigned char data[] = {'a', 0xff, 0xc0, 0xaf, 0xed, 0xa0, 0x80, 0xf4, 0x90,
                                  0x80, 0x80, 0xe2, 0x82, 'z'};
    json_t *j;
    json_error_t e;
    size_t i, n_fffd = 0;
    const char *s;

    (void)state;
    asciicast_event(&b, 0, "o", data, sizeof(data));
    j = json_loads(b.p, 0, &e);
    assert_non_null(j); /* valid JSON: jansson also refuses strings that are not UTF-8 */
    s = json_string_value(json_array_get(j, 2));
    assert_non_null(s);
    assert_int_equal(s[0], 'a');
    for (i = 0; s[i]; i++)
        if (memcmp(s + i, "\xef\xbf\xbd", 3) == 0)
            n_fffd++;
    assert_int_equal(n_fffd, 12); /* one per byte that is not part of a character */
    assert_int_equal(s[strlen(s) - 1], 'z');
    json_decref(j);
    free(b.p);
}

static void
test_header_line(void **state)
{
    struct acbuf b = {0};
    json_t *j;

    (void)state;
    asciicast_header(&b, 120, 40, 1764921600, "airlock session \"ds-x\"", "xterm-256color");
    assert_int_equal(b.p[b.len - 1], '\n');
    assert_null(memchr(b.p, '\n', b.len - 1));
    j = json_loads(b.p, 0, NULL);
    assert_non_null(j);
    assert_int_equal(json_integer_value(json_object_get(j, "version")), 2);
    assert_int_equal(json_integer_value(json_object_get(j, "width")), 120);
    assert_int_equal(json_integer_value(json_object_get(j, "height")), 40);
    assert_int_equal(json_integer_value(json_object_get(j, "timestamp")), 1764921600);
    assert_string_equal(json_string_value(json_object_get(j, "title")), "airlock session \"ds-x\"");
    assert_string_equal(json_string_value(json_object_get(json_object_get(j, "env"), "TERM")),
                        "xterm-256color");
    json_decref(j);
    free(b.p);
}

static void
hex(const unsigned char *md, char out[65])
{
    static const char d[] = "0123456789abcdef";
    size_t i;

    for (i = 0; i < 32; i++) {
        out[2 * i] = d[md[i] >> 4];
        out[2 * i + 1] = d[md[i] & 15];
    }
    out[64] = '\0';
}

static void
test_chain(void **state)
{
    const char *chunks[] = {"header\n", "[0.1, \"o\", \"a\"]\n", "", "[0.2, \"o\", \"b\"]\n"};
    unsigned char prev[32], md[32], cat[128];
    char want[65], got[65] = "", prev_hex[65] = "";
    size_t i;

    (void)state;
    for (i = 0; i < N(chunks); i++) {
        size_t len = strlen(chunks[i]);

        /* chain_0 = sha256(chunk_0); chain_n = sha256(chain_{n-1} as 32 bytes || chunk_n) */
        if (i == 0) {
            SHA256((const unsigned char *)chunks[i], len, md);
        } else {
            memcpy(cat, prev, 32);
            memcpy(cat + 32, chunks[i], len);
            SHA256(cat, 32 + len, md);
        }
        hex(md, want);
        assert_int_equal(recchain_next(prev_hex, chunks[i], len, got), 0);
        assert_string_equal(got, want);
        memcpy(prev, md, 32);
        memcpy(prev_hex, got, sizeof(prev_hex));
    }
    /* a different byte anywhere changes the end of the chain */
    assert_int_equal(recchain_next(NULL, "header\r", 7, got), 0);
    assert_string_not_equal(got, want);
}

static void
test_chain_bad_prev(void **state)
{
    char out[65];

    (void)state;
    assert_int_equal(recchain_next("abc", "x", 1, out), ERR_INVALID);
    assert_int_equal(recchain_next("ABCDEF0123456789ABCDEF0123456789ABCDEF0123456789ABCDEF0123456789",
                                   "x", 1, out),
                     ERR_INVALID);
    assert_true(recchain_hex_ok("0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"));
    assert_false(recchain_hex_ok("0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcde"));
    assert_false(recchain_hex_ok(NULL));
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_utf8_cut),     cmocka_unit_test(test_utf8_cut_rejoins),
        cmocka_unit_test(test_event_line),   cmocka_unit_test(test_event_not_utf8),
        cmocka_unit_test(test_header_line),  cmocka_unit_test(test_chain),
        cmocka_unit_test(test_chain_bad_prev),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
