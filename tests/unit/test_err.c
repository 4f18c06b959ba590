/*
 * err.c: the error table. Every ERR_* code from 0 down to ERR__MIN has a
 * row (status, envelope code, text); the statuses the API documents are
 * pinned row by row; codes outside the table read as ERR_INTERNAL.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "err.h"

#define N(a) (sizeof(a) / sizeof((a)[0]))

static void
test_err_every_code_has_a_row(void **state)
{
    int r;
    (void)state;

    for (r = 0; r >= ERR__MIN; r--) {
        const char *code = err_code(r), *text = err_str(r);
        int status = err_http_status(r);

        assert_non_null(code);
        assert_non_null(text);
        assert_true(strlen(code) > 0);
        assert_true(strlen(text) > 0);
        assert_true(status >= 200 && status <= 599);
        /* a code other than ERR_INTERNAL that reads like it has no row of its own */
        if (r != ERR_INTERNAL && status == 500)
            assert_string_equal(code, "INTERNAL_ERROR");
        if (r != ERR_INTERNAL && strcmp(text, "internal error") == 0)
            fail_msg("ERR code %d has no row (it reads as ERR_INTERNAL)", r);
    }
}

static void
test_err_statuses_and_codes(void **state)
{
    static const struct {
        int r, status;
        const char *code;
    } cases[] = {
        {ERR_OK, 200, "OK"},
        {ERR_INTERNAL, 500, "INTERNAL_ERROR"},
        {ERR_INVALID, 400, "BAD_REQUEST"},
        {ERR_AUTH, 401, "UNAUTHORIZED"},
        {ERR_FORBIDDEN, 403, "FORBIDDEN"},
        {ERR_NOT_FOUND, 404, "NOT_FOUND"},
        {ERR_METHOD, 405, "BAD_REQUEST"},
        {ERR_CONFLICT, 409, "CONFLICT"},
        {ERR_TOO_LARGE, 413, "PAYLOAD_TOO_LARGE"},
        {ERR_URI_TOO_LONG, 414, "URI_TOO_LONG"},
        {ERR_TOO_MANY, 429, "TOO_MANY_REQUESTS"},
        {ERR_HEADERS_TOO_LARGE, 431, "HEADERS_TOO_LARGE"},
        {ERR_DB, 500, "INTERNAL_ERROR"},
        {ERR_SYSTEM, 500, "INTERNAL_ERROR"},
        {ERR_UNAVAILABLE, 503, "UNAVAILABLE"},
        {ERR_HTTP_VERSION, 505, "HTTP_VERSION_NOT_SUPPORTED"},
    };
    size_t i;
    (void)state;

    for (i = 0; i < N(cases); i++) {
        assert_int_equal(err_http_status(cases[i].r), cases[i].status);
        assert_string_equal(err_code(cases[i].r), cases[i].code);
    }
}

static void
test_err_unknown_reads_as_internal(void **state)
{
    static const int unknown[] = {1, 42, ERR__MIN - 1, -1000};
    size_t i;
    (void)state;

    for (i = 0; i < N(unknown); i++) {
        assert_int_equal(err_http_status(unknown[i]), 500);
        assert_string_equal(err_code(unknown[i]), "INTERNAL_ERROR");
        assert_string_equal(err_str(unknown[i]), err_str(ERR_INTERNAL));
    }
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_err_every_code_has_a_row),
        cmocka_unit_test(test_err_statuses_and_codes),
        cmocka_unit_test(test_err_unknown_reads_as_internal),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
