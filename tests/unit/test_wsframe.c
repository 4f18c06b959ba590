/*
 * backend/common/wsframe.c: header decode and encode, masking in pieces.
 * Table-driven: each row is a frame header as bytes and what it must decode
 * to; the boundaries of the three length forms are tested on both sides.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <setjmp.h>
#include <string.h>
#include <cmocka.h>

#include "err.h"
#include "wsframe.h"

#define N_CASES(a) (sizeof(a) / sizeof((a)[0]))

struct dec_case {
    const char *name;
    uint8_t b[WSFRAME_HDR_MAX];
    size_t n;
    int want_r;
    enum wsframe_err want_err;
    uint8_t fin, opcode, masked;
    uint64_t len;
    size_t hdr_len;
};

/* Valid headers in every length form, masked and not. */
static const struct dec_case valid_cases[] = {
    {"empty binary", {0x82, 0x00}, 2, 0, 0, 1, 2, 0, 0, 2},
    {"text 5", {0x81, 0x05}, 2, 0, 0, 1, 1, 0, 5, 2},
    {"7-bit max 125", {0x82, 0x7d}, 2, 0, 0, 1, 2, 0, 125, 2},
    {"masked 125", {0x82, 0xfd, 1, 2, 3, 4}, 6, 0, 0, 1, 2, 1, 125, 6},
    {"16-bit min 126", {0x82, 0x7e, 0x00, 0x7e}, 4, 0, 0, 1, 2, 0, 126, 4},
    {"16-bit max 65535", {0x02, 0x7e, 0xff, 0xff}, 4, 0, 0, 0, 2, 0, 65535, 4},
    {"masked 16-bit", {0x82, 0xfe, 0x01, 0x00, 9, 9, 9, 9}, 8, 0, 0, 1, 2, 1, 256, 8},
    {"64-bit min 65536", {0x82, 0x7f, 0, 0, 0, 0, 0, 1, 0, 0}, 10, 0, 0, 1, 2, 0, 65536, 10},
    {"64-bit 4 GiB + 1", {0x82, 0x7f, 0, 0, 0, 1, 0, 0, 0, 1}, 10, 0, 0, 1, 2, 0, 0x100000001ull,
     10},
    {"64-bit max", {0x82, 0x7f, 0x7f, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff}, 10, 0, 0, 1, 2, 0,
     0x7fffffffffffffffull, 10},
    {"masked 64-bit", {0x80, 0xff, 0, 0, 0, 0, 0, 1, 0, 0, 5, 6, 7, 8}, 14, 0, 0, 1, 0, 1, 65536,
     14},
    {"continuation, not fin", {0x00, 0x03}, 2, 0, 0, 0, 0, 0, 3, 2},
    {"close 125", {0x88, 0x7d}, 2, 0, 0, 1, 8, 0, 125, 2},
    {"ping masked", {0x89, 0x87, 1, 1, 1, 1}, 6, 0, 0, 1, 9, 1, 7, 6},
    {"pong", {0x8a, 0x00}, 2, 0, 0, 1, 10, 0, 0, 2},
    {"payload bytes after the header", {0x82, 0x01, 0xaa, 0xbb}, 4, 0, 0, 1, 2, 0, 1, 2},
};

/* Headers that break a rule of RFC 6455 5.2 and 5.5. */
static const struct dec_case bad_cases[] = {
    {"RSV1", {0xc2, 0x00}, 2, ERR_INVALID, WSFRAME_E_RSV, 1, 2, 0, 0, 2},
    {"RSV2", {0xa2, 0x00}, 2, ERR_INVALID, WSFRAME_E_RSV, 1, 2, 0, 0, 2},
    {"RSV3", {0x92, 0x00}, 2, ERR_INVALID, WSFRAME_E_RSV, 1, 2, 0, 0, 2},
    /* Reported before the rest of the header is there; the length is not known yet. */
    {"RSV1, header incomplete", {0xc2, 0xfe, 0x01}, 3, ERR_INVALID, WSFRAME_E_RSV, 1, 2, 1, 0, 8},
    {"RSV1, whole header", {0xc2, 0x7e, 0x01, 0x00}, 4, ERR_INVALID, WSFRAME_E_RSV, 1, 2, 0, 256,
     4},
    {"opcode 3", {0x83, 0x00}, 2, ERR_INVALID, WSFRAME_E_OPCODE, 1, 3, 0, 0, 2},
    {"opcode 7", {0x87, 0x00}, 2, ERR_INVALID, WSFRAME_E_OPCODE, 1, 7, 0, 0, 2},
    {"opcode 0xB", {0x8b, 0x00}, 2, ERR_INVALID, WSFRAME_E_OPCODE, 1, 11, 0, 0, 2},
    {"opcode 0xF", {0x8f, 0x80, 0, 0, 0, 0}, 6, ERR_INVALID, WSFRAME_E_OPCODE, 1, 15, 1, 0, 6},
    {"fragmented ping", {0x09, 0x00}, 2, ERR_INVALID, WSFRAME_E_CONTROL, 0, 9, 0, 0, 2},
    {"fragmented close", {0x08, 0x02}, 2, ERR_INVALID, WSFRAME_E_CONTROL, 0, 8, 0, 2, 2},
    {"close 126", {0x88, 0x7e, 0x00, 0x7e}, 4, ERR_INVALID, WSFRAME_E_CONTROL, 1, 8, 0, 126, 4},
    {"ping 64-bit", {0x89, 0x7f, 0, 0, 0, 0, 0, 1, 0, 0}, 10, ERR_INVALID, WSFRAME_E_CONTROL, 1, 9,
     0, 65536, 10},
    {"16-bit form for 125", {0x82, 0x7e, 0x00, 0x7d}, 4, ERR_INVALID, WSFRAME_E_LENGTH, 1, 2, 0,
     125, 4},
    {"16-bit form for 0", {0x82, 0x7e, 0x00, 0x00}, 4, ERR_INVALID, WSFRAME_E_LENGTH, 1, 2, 0, 0,
     4},
    {"64-bit form for 65535", {0x82, 0x7f, 0, 0, 0, 0, 0, 0, 0xff, 0xff}, 10, ERR_INVALID,
     WSFRAME_E_LENGTH, 1, 2, 0, 65535, 10},
    {"64-bit form for 1", {0x82, 0xff, 0, 0, 0, 0, 0, 0, 0, 1, 1, 2, 3, 4}, 14, ERR_INVALID,
     WSFRAME_E_LENGTH, 1, 2, 1, 1, 14},
    {"64-bit top bit set", {0x82, 0x7f, 0x80, 0, 0, 0, 0, 0, 0, 0}, 10, ERR_INVALID,
     WSFRAME_E_LENGTH, 1, 2, 0, 0x8000000000000000ull, 10},
};

/* Headers cut short: what is known from the first two bytes is filled in. */
static const struct dec_case short_cases[] = {
    {"nothing", {0}, 0, ERR_AGAIN, 0, 0, 0, 0, 0, 2},
    {"one byte", {0x82}, 1, ERR_AGAIN, 0, 0, 0, 0, 0, 2},
    {"masked 7-bit, no key", {0x82, 0x85, 1, 2, 3}, 5, ERR_AGAIN, 0, 1, 2, 1, 0, 6},
    {"16-bit, one length byte", {0x81, 0x7e, 0x01}, 3, ERR_AGAIN, 0, 1, 1, 0, 0, 4},
    {"64-bit, seven length bytes", {0x82, 0x7f, 0, 0, 0, 0, 0, 1, 0}, 9, ERR_AGAIN, 0, 1, 2, 0, 0,
     10},
    {"masked 64-bit, three key bytes", {0x82, 0xff, 0, 0, 0, 0, 0, 1, 0, 0, 1, 2, 3}, 13,
     ERR_AGAIN, 0, 1, 2, 1, 0, 14},
    /* A rule broken further on is not seen before the header is whole. */
    {"close 126, length missing", {0x88, 0x7e}, 2, ERR_AGAIN, 0, 1, 8, 0, 0, 4},
};

static void
check_cases(const struct dec_case *cases, size_t n_cases)
{
    for (size_t i = 0; i < n_cases; i++) {
        const struct dec_case *c = &cases[i];
        struct wsframe_hdr h;
        int r = wsframe_decode(c->b, c->n, &h);

        if (r != c->want_r || h.err != c->want_err || h.hdr_len != c->hdr_len ||
            (c->n >= 2 && (h.fin != c->fin || h.opcode != c->opcode || h.masked != c->masked)) ||
            h.len != c->len)
            fail_msg("%s: r %d err %d fin %d op %d masked %d len %llu hdr_len %zu", c->name, r,
                     (int)h.err, h.fin, h.opcode, h.masked, (unsigned long long)h.len, h.hdr_len);
        if (c->masked && c->n >= c->hdr_len && c->want_r != ERR_AGAIN)
            assert_memory_equal(h.mask, c->b + c->hdr_len - 4, 4);
    }
}

static void
test_decode_valid(void **state)
{
    (void)state;
    check_cases(valid_cases, N_CASES(valid_cases));
}

static void
test_decode_malformed(void **state)
{
    (void)state;
    check_cases(bad_cases, N_CASES(bad_cases));
    for (size_t i = 0; i < N_CASES(bad_cases); i++)
        assert_string_not_equal(wsframe_err_str(bad_cases[i].want_err),
                                wsframe_err_str(WSFRAME_E_NONE));
}

static void
test_decode_short(void **state)
{
    (void)state;
    check_cases(short_cases, N_CASES(short_cases));
}

/* Every valid header, cut at every length below its own, asks for more. */
static void
test_decode_every_prefix(void **state)
{
    (void)state;
    for (size_t i = 0; i < N_CASES(valid_cases); i++) {
        const struct dec_case *c = &valid_cases[i];

        for (size_t n = 0; n < c->hdr_len; n++) {
            struct wsframe_hdr h;

            if (wsframe_decode(c->b, n, &h) != ERR_AGAIN)
                fail_msg("%s cut at %zu: not ERR_AGAIN", c->name, n);
            assert_int_equal(h.hdr_len, n < 2 ? 2 : c->hdr_len);
        }
    }
}

/* Encode then decode, on both sides of each length-form boundary. */
static void
test_encode_boundaries(void **state)
{
    static const struct {
        uint64_t len;
        size_t want_hl; /* unmasked */
    } cases[] = {
        {0, 2},           {1, 2},          {125, 2},           {126, 4},
        {127, 4},         {65535, 4},      {65536, 10},        {65537, 10},
        {1u << 20, 10},   {0xffffffffull, 10}, {0x100000000ull, 10}, {0x7fffffffffffffffull, 10},
    };
    static const uint8_t key[4] = {0xde, 0xad, 0xbe, 0xef};
    (void)state;

    for (size_t i = 0; i < N_CASES(cases); i++) {
        for (int masked = 0; masked < 2; masked++) {
            for (int fin = 0; fin < 2; fin++) {
                uint8_t out[WSFRAME_HDR_MAX + 1];
                struct wsframe_hdr h;
                size_t hl;

                memset(out, 0xee, sizeof(out));
                hl = wsframe_encode(out, fin, WSFRAME_BINARY, cases[i].len, masked ? key : NULL);
                assert_int_equal(hl, cases[i].want_hl + (masked ? 4 : 0));
                assert_int_equal(out[hl], 0xee); /* nothing written past the header */
                assert_int_equal(wsframe_decode(out, hl, &h), 0);
                assert_int_equal(h.fin, fin);
                assert_int_equal(h.opcode, WSFRAME_BINARY);
                assert_int_equal(h.masked, masked);
                assert_true(h.len == cases[i].len);
                assert_int_equal(h.hdr_len, hl);
                if (masked)
                    assert_memory_equal(h.mask, key, 4);
            }
        }
    }
}

/* The exact bytes of a few headers, as RFC 6455 5.7 shows them. */
static void
test_encode_bytes(void **state)
{
    static const uint8_t key[4] = {0x37, 0xfa, 0x21, 0x3d};
    static const uint8_t hello_masked[] = {0x81, 0x85, 0x37, 0xfa, 0x21, 0x3d};
    static const uint8_t bin_256[] = {0x82, 0x7e, 0x01, 0x00};
    static const uint8_t bin_64k[] = {0x82, 0x7f, 0, 0, 0, 0, 0, 1, 0, 0};
    static const uint8_t close_frag[] = {0x08, 0x00};
    uint8_t out[WSFRAME_HDR_MAX];
    (void)state;

    assert_int_equal(wsframe_encode(out, 1, WSFRAME_TEXT, 5, key), sizeof(hello_masked));
    assert_memory_equal(out, hello_masked, sizeof(hello_masked));
    assert_int_equal(wsframe_encode(out, 1, WSFRAME_BINARY, 256, NULL), sizeof(bin_256));
    assert_memory_equal(out, bin_256, sizeof(bin_256));
    assert_int_equal(wsframe_encode(out, 1, WSFRAME_BINARY, 65536, NULL), sizeof(bin_64k));
    assert_memory_equal(out, bin_64k, sizeof(bin_64k));
    assert_int_equal(wsframe_encode(out, 0, WSFRAME_CLOSE, 0, NULL), sizeof(close_frag));
    assert_memory_equal(out, close_frag, sizeof(close_frag));
}

/* RFC 6455 5.7: "Hello" masked with 37 fa 21 3d. */
static void
test_mask_rfc_example(void **state)
{
    static const uint8_t key[4] = {0x37, 0xfa, 0x21, 0x3d};
    static const uint8_t masked[] = {0x7f, 0x9f, 0x4d, 0x51, 0x58};
    uint8_t buf[5];
    (void)state;

    assert_int_equal(wsframe_mask(buf, (const uint8_t *)"Hello", 5, key, 0), 1);
    assert_memory_equal(buf, masked, 5);
    assert_int_equal(wsframe_mask(buf, buf, 5, key, 0), 1); /* in place, back again */
    assert_memory_equal(buf, "Hello", 5);
}

/*
 * Masking in pieces (each piece continuing at the phase the last one
 * returned) gives the same bytes as masking at once and as the byte-by-byte
 * definition, for every start alignment of dst and src, in place or not.
 */
static void
test_mask_pieces(void **state)
{
    static const size_t pieces[][6] = {
        {1, 1, 1, 1, 1, 1}, {3, 5, 7, 9, 11, 13}, {8, 8, 8, 8, 8, 8},  {2, 30, 1, 64, 4, 0},
        {7, 0, 100, 1, 3, 9}, {200, 0, 0, 0, 0, 0}, {13, 17, 19, 23, 29, 31},
    };
    static const uint8_t key[4] = {0x01, 0x80, 0x7f, 0xfe};
    uint8_t src[256 + 8], ref[256], once[256 + 8], piece[256 + 8];
    (void)state;

    for (size_t i = 0; i < sizeof(src); i++)
        src[i] = (uint8_t)(i * 37 + 11);
    for (size_t p = 0; p < N_CASES(pieces); p++) {
        for (unsigned phase0 = 0; phase0 < 4; phase0++) {
            for (size_t so = 0; so < 8; so++) {
                for (size_t dof = 0; dof < 8; dof++) {
                    size_t total = 0, off = 0;
                    unsigned phase = phase0;
                    int inplace = dof == so;

                    for (int j = 0; j < 6; j++)
                        total += pieces[p][j];
                    for (size_t k = 0; k < total; k++)
                        ref[k] = src[so + k] ^ key[(phase0 + k) & 3];
                    assert_int_equal(wsframe_mask(once + dof, src + so, total, key, phase0),
                                     (phase0 + total) & 3);
                    assert_memory_equal(once + dof, ref, total);
                    if (inplace)
                        memcpy(piece + dof, src + so, total);
                    for (int j = 0; j < 6; j++) {
                        const uint8_t *from = inplace ? piece + dof + off : src + so + off;

                        phase = wsframe_mask(piece + dof + off, from, pieces[p][j], key, phase);
                        off += pieces[p][j];
                    }
                    assert_int_equal(phase, (phase0 + total) & 3);
                    assert_memory_equal(piece + dof, ref, total);
                }
            }
        }
    }
}

/* Zero bytes: nothing written, the phase unchanged. */
static void
test_mask_empty(void **state)
{
    static const uint8_t key[4] = {1, 2, 3, 4};
    uint8_t b[1] = {0x55};
    (void)state;

    for (unsigned ph = 0; ph < 4; ph++)
        assert_int_equal(wsframe_mask(b, b, 0, key, ph), ph);
    assert_int_equal(b[0], 0x55);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_decode_valid),      cmocka_unit_test(test_decode_malformed),
        cmocka_unit_test(test_decode_short),      cmocka_unit_test(test_decode_every_prefix),
        cmocka_unit_test(test_encode_boundaries), cmocka_unit_test(test_encode_bytes),
        cmocka_unit_test(test_mask_rfc_example),  cmocka_unit_test(test_mask_pieces),
        cmocka_unit_test(test_mask_empty),
    };
    int failed = cmocka_run_group_tests(tests, NULL, NULL);

    printf("%d passed, %d failed\n", (int)N_CASES(tests) - failed, failed);
    return failed ? 1 : 0;
}
