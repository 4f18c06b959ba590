/*
 * log.c: every field escaped in both formats (no forged lines, no terminal
 * control), and identical lines collapsed past LOG_REPEAT_MAX a second. The
 * clock is the test's, so the limiter is tested without timing.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <jansson.h>

#include "err.h"
#include "log.h"

static int64_t fake_now = 1000;

static int64_t
fake_clock(void)
{
    return fake_now;
}

/* Runs the logger into a memory buffer; returns the output (free it). */
struct capture {
    char *buf;
    size_t len;
    FILE *f;
};

static void
capture_start(struct capture *c)
{
    c->buf = NULL;
    c->len = 0;
    c->f = open_memstream(&c->buf, &c->len);
    assert_non_null(c->f);
    log_set_output(c->f);
}

static char *
capture_end(struct capture *c)
{
    log_set_output(NULL);
    fclose(c->f);
    return c->buf;
}

static size_t
count_lines(const char *s)
{
    size_t n = 0;

    for (; *s != '\0'; s++)
        n += *s == '\n';
    return n;
}

static void
test_log_escape_table(void **state)
{
    static const struct {
        const char *in, *want;
    } cases[] = {
        {"plain text", "plain text"},
        {"eve\nINFO forged", "eve\\x0aINFO forged"},
        {"bell\a", "bell\\x07"},
        {"cr\r tab\t esc\x1b[31m", "cr\\x0d tab\\x09 esc\\x1b[31m"},
        {"del\x7f", "del\\x7f"},
        {"nel\xc2\x85", "nel\\u0085"},
        {"ls\xe2\x80\xa8ps\xe2\x80\xa9", "ls\\u2028ps\\u2029"},
        {"back\\slash", "back\\\\slash"},
        {"bad\xff utf8\xc3", "bad\\xff utf8\\xc3"},
        {"overlong\xc0\xaf", "overlong\\xc0\\xaf"},
        {"caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x94\x91", "caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x94\x91"},
    };
    char out[128];
    size_t i;
    (void)state;

    for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        log_escape(cases[i].in, out, sizeof(out));
        if (strcmp(out, cases[i].want) != 0)
            fail_msg("row %zu: got \"%s\", want \"%s\"", i, out, cases[i].want);
    }
    /* truncation keeps whole escapes */
    assert_int_equal(log_escape("ab\n", out, 5), 2);
    assert_string_equal(out, "ab");
}

static void
test_log_text_escaped(void **state)
{
    struct capture c;
    char *out;
    (void)state;

    log_set_json(0);
    capture_start(&c);
    log_set_request_id("req\n1");
    log_info("user %s signed in", "mallory\n2026-01-01T00:00:00Z info forged: admin\a");
    log_set_request_id(NULL);
    log_warn_r(-1, "failed for %s", "x\ry");
    out = capture_end(&c);
    assert_int_equal(count_lines(out), 2);
    assert_non_null(strstr(out, "[req\\x0a1] "));
    assert_non_null(strstr(out, "mallory\\x0a2026-01-01T00:00:00Z info forged: admin\\x07"));
    assert_non_null(strstr(out, "x\\x0dy"));
    assert_null(strchr(out, '\a'));
    assert_null(strchr(out, '\r'));
    free(out);
}

static void
test_log_json_escaped(void **state)
{
    struct capture c;
    json_error_t jerr;
    json_t *o = NULL;
    char *out, *nl;
    (void)state;

    log_set_json(1);
    capture_start(&c);
    log_error("who=%s", "eve\xe2\x80\xa8\x7f\xc2\x9b[2J\xff");
    out = capture_end(&c);
    log_set_json(0);
    assert_int_equal(count_lines(out), 1);
    /* one line of valid JSON whose msg holds no raw control character */
    nl = strchr(out, '\n');
    *nl = '\0';
    o = json_loads(out, 0, &jerr);
    assert_non_null(o);
    assert_string_equal(json_string_value(json_object_get(o, "msg")),
                        "who=eve\\u2028\\x7f\\u009b[2J\\xff");
    json_decref(o);
    free(out);
}

static void
test_log_repeats_collapsed(void **state)
{
    struct capture c;
    char *out, want[64];
    int i;
    (void)state;

    log_set_json(0);
    log_set_clock(fake_clock);
    fake_now = 5000;
    capture_start(&c);
    for (i = 0; i < LOG_REPEAT_MAX + 25; i++)
        log_warn("token refused: %s", "signature invalid");
    log_warn("something else");
    out = capture_end(&c);
    /* LOG_REPEAT_MAX copies, the note, the other line */
    assert_int_equal(count_lines(out), LOG_REPEAT_MAX + 2);
    snprintf(want, sizeof(want), "last message repeated %d times\n", 25);
    assert_non_null(strstr(out, want));
    assert_true(strstr(out, want) < strstr(out, "something else"));
    free(out);

    /* a new second lets the line through again, after reporting what was dropped */
    capture_start(&c);
    for (i = 0; i < LOG_REPEAT_MAX + 3; i++)
        log_info("tick");
    fake_now++;
    log_info("tick");
    out = capture_end(&c);
    assert_int_equal(count_lines(out), LOG_REPEAT_MAX + 2);
    assert_non_null(strstr(out, "last message repeated 3 times\n"));
    free(out);

    /* different lines are never collapsed */
    capture_start(&c);
    for (i = 0; i < 3 * LOG_REPEAT_MAX; i++)
        log_info("request %d", i);
    out = capture_end(&c);
    assert_int_equal(count_lines(out), 3 * LOG_REPEAT_MAX);
    free(out);
    log_set_clock(NULL);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_log_escape_table),
        cmocka_unit_test(test_log_text_escaped),
        cmocka_unit_test(test_log_json_escaped),
        cmocka_unit_test(test_log_repeats_collapsed),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
