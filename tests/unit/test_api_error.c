/*
 * api.c's error envelope and character counting: the envelope always
 * serialises (a message quoting bytes that are not UTF-8 is scrubbed, not
 * dropped), takes its code and default text from err.c's table, and string
 * limits count characters.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "api.h"
#include "err.h"

#define N(a) (sizeof(a) / sizeof((a)[0]))

static void
test_api_error_envelope(void **state)
{
    static const struct {
        int r;
        const char *msg, *want_text, *want_code;
    } cases[] = {
        {ERR_NOT_FOUND, "session 'x' not found", "session 'x' not found", "NOT_FOUND"},
        {ERR_METHOD, NULL, "method not allowed", "BAD_REQUEST"},
        {ERR_UNAVAILABLE, NULL, "service unavailable", "UNAVAILABLE"},
        {ERR_INVALID, "unknown state '\xff\xfe'", "unknown state '\?\?'", "BAD_REQUEST"},
        {ERR_INVALID, "caf\xc3\xa9 \xe2\x82", "caf\xc3\xa9 \?\?", "BAD_REQUEST"},
        {ERR_URI_TOO_LONG, NULL, "request target too long", "URI_TOO_LONG"},
    };
    size_t i;
    (void)state;

    for (i = 0; i < N(cases); i++) {
        json_t *j = api_error_json(cases[i].r, cases[i].msg, NULL);
        char *text = json_dumps(j, JSON_COMPACT);

        assert_non_null(text);
        assert_string_equal(json_string_value(json_object_get(j, "error")), cases[i].want_text);
        assert_string_equal(json_string_value(json_object_get(j, "code")), cases[i].want_code);
        assert_null(json_object_get(j, "details"));
        free(text);
        json_decref(j);
    }
}

static void
test_api_error_details(void **state)
{
    json_t *d = json_pack("{s:s}", "field", "reason");
    json_t *j = api_error_json(ERR_INVALID, "bad", d);
    (void)state;

    assert_ptr_equal(json_object_get(j, "details"), d);
    json_decref(j);
    assert_string_equal(json_string_value(json_object_get(d, "field")), "reason"); /* borrowed */
    json_decref(d);
}

static void
test_api_utf8_chars(void **state)
{
    static const struct {
        const char *s;
        size_t n;
    } cases[] = {
        {"", 0}, {"abc", 3}, {"caf\xc3\xa9", 4}, {"\xe2\x82\xac\xe2\x82\xac", 2},
        {"\xf0\x9f\x98\x80", 1},
    };
    size_t i;
    (void)state;

    for (i = 0; i < N(cases); i++)
        assert_int_equal(api_utf8_chars(cases[i].s, strlen(cases[i].s)), cases[i].n);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_api_error_envelope),
        cmocka_unit_test(test_api_error_details),
        cmocka_unit_test(test_api_utf8_chars),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
