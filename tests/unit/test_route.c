/*
 * route.c: the route table. Each case is a method and a raw path with the
 * row (by pattern), the result and the decoded segments it must give: API
 * rows, 405 for a known path with another method, 404 under /api/, the
 * health, metrics, download and static rows, and malformed paths.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "err.h"
#include "route.h"

#define N(a) (sizeof(a) / sizeof((a)[0]))

static void
test_route_find_table(void **state)
{
    static const struct {
        const char *method, *path;
        int want_r;
        const char *want_pattern; /* NULL: no row */
        const char *p0, *p1;      /* decoded segments */
    } cases[] = {
        {"GET", "/api/v1/config", 0, "/api/v1/config", NULL, NULL},
        {"GET", "/api/v1/debug-sessions", 0, "/api/v1/debug-sessions", NULL, NULL},
        {"POST", "/api/v1/debug-sessions", 0, "/api/v1/debug-sessions", NULL, NULL},
        {"GET", "/api/v1/debug-sessions/ds-abc", 0, "/api/v1/debug-sessions/:", "ds-abc", NULL},
        {"POST", "/api/v1/debug-sessions/ds-abc/join", 0, "/api/v1/debug-sessions/:/join", "ds-abc",
         NULL},
        {"GET", "/api/v1/agents/gh%2Facme%2Fweb/tunnel/c1", 0, "/api/v1/agents/:/tunnel/:",
         "gh/acme/web", "c1"},
        {"GET", "/api/v1/agents/caf%C3%A9", 0, "/api/v1/agents/:", "caf\xc3\xa9", NULL},
        /* a known path with another method: 405, not 404 */
        {"DELETE", "/api/v1/debug-sessions/ds-abc", ERR_METHOD, NULL, NULL, NULL},
        {"HEAD", "/api/v1/config", ERR_METHOD, NULL, NULL, NULL},
        {"PUT", "/api/v1/agents", ERR_METHOD, NULL, NULL, NULL},
        /* unknown paths under /api/: 404 whatever the method */
        {"GET", "/api/v1/nope", ERR_NOT_FOUND, NULL, NULL, NULL},
        {"POST", "/api/v1/debug-sessions/ds-abc/explode", ERR_NOT_FOUND, NULL, NULL, NULL},
        {"GET", "/api/v1/debug-sessions/", ERR_NOT_FOUND, NULL, NULL, NULL},
        {"GET", "/api/", ERR_NOT_FOUND, NULL, NULL, NULL},
        /* malformed segments */
        {"GET", "/api/v1/debug-sessions/%zz", ERR_INVALID, NULL, NULL, NULL},
        {"GET", "/api/v1/debug-sessions/%00", ERR_INVALID, NULL, NULL, NULL},
        {"GET", "/api/v1/debug-sessions/%ff%fe", ERR_INVALID, NULL, NULL, NULL},
        {"GET", "/api/v1/debug-sessions/%C0%AF", ERR_INVALID, NULL, NULL, NULL}, /* overlong */
        {"GET", "/api/v1/debug-sessions/%ED%A0%80", ERR_INVALID, NULL, NULL, NULL}, /* surrogate */
        {"GET", "/api/v1/debug-sessions/%E2%82", ERR_INVALID, NULL, NULL, NULL}, /* cut short */
        /* health and metrics: any method */
        {"GET", "/healthz", 0, "/healthz", NULL, NULL},
        {"POST", "/healthz", 0, "/healthz", NULL, NULL},
        {"GET", "/readyz", 0, "/readyz", NULL, NULL},
        {"GET", "/metrics", 0, "/metrics", NULL, NULL},
        /* the agent bundle's slot, then the UI */
        {"GET", "/download/airlock-linux-amd64", 0, "/download/*", NULL, NULL},
        {"HEAD", "/download/x", 0, "/download/*", NULL, NULL},
        {"GET", "/", 0, "/*", NULL, NULL},
        {"GET", "/sessions/ds-abc", 0, "/*", NULL, NULL},
        {"HEAD", "/assets/app.js", 0, "/*", NULL, NULL},
        {"GET", "/api", 0, "/*", NULL, NULL},
        {"GET", "/healthz/x", 0, "/*", NULL, NULL},
        /* other methods off the API are 404, never 405 */
        {"POST", "/", ERR_NOT_FOUND, NULL, NULL, NULL},
        {"DELETE", "/download/x", ERR_NOT_FOUND, NULL, NULL, NULL},
    };
    size_t i;
    (void)state;

    for (i = 0; i < N(cases); i++) {
        char *params[ROUTE_MAX_PARAMS] = {(char *)1, (char *)1, (char *)1}; /* poison */
        size_t row = 12345;
        int r = route_find(cases[i].method, cases[i].path, &row, params);

        if (r != cases[i].want_r)
            fail_msg("%s %s: got %d, want %d", cases[i].method, cases[i].path, r,
                     cases[i].want_r);
        if (cases[i].want_pattern == NULL) {
            assert_int_equal(row, route_count());
            assert_null(params[0]);
            assert_null(params[1]);
            assert_null(params[2]);
            continue;
        }
        assert_true(row < route_count());
        assert_string_equal(route_at(row)->pattern, cases[i].want_pattern);
        assert_non_null(route_at(row)->fn);
        if (cases[i].p0)
            assert_string_equal(params[0], cases[i].p0);
        else
            assert_null(params[0]);
        if (cases[i].p1)
            assert_string_equal(params[1], cases[i].p1);
        else
            assert_null(params[1]);
        assert_null(params[2]);
        free(params[0]);
        free(params[1]);
    }
}

static void
test_route_rows_are_well_formed(void **state)
{
    size_t i, k, n_params;
    (void)state;

    assert_null(route_at(route_count()));
    for (i = 0; i < route_count(); i++) {
        const struct route *rt = route_at(i);
        const char *p;

        assert_non_null(rt->method);
        assert_true(rt->pattern[0] == '/');
        for (n_params = 0, p = rt->pattern; *p; p++)
            n_params += *p == ':';
        assert_true(n_params <= ROUTE_MAX_PARAMS);
        /* '*' only as the last character */
        p = strchr(rt->pattern, '*');
        assert_true(p == NULL || p[1] == '\0');
        /* no two rows share a method and pattern (metrics labels them by those) */
        for (k = 0; k < i; k++)
            assert_false(strcmp(route_at(k)->method, rt->method) == 0 &&
                         strcmp(route_at(k)->pattern, rt->pattern) == 0);
    }
}

static void
test_route_decode(void **state)
{
    static const struct {
        const char *in;
        int plus_space, want_r;
        const char *want;
    } cases[] = {
        {"a%20b", 0, 0, "a b"}, {"a+b", 0, 0, "a+b"}, {"a+b", 1, 0, "a b"},
        {"%2f%2F", 0, 0, "//"}, {"%", 0, ERR_INVALID, NULL}, {"%4", 0, ERR_INVALID, NULL},
        {"%g0", 0, ERR_INVALID, NULL}, {"%00", 0, ERR_INVALID, NULL}, {"", 0, 0, ""},
    };
    size_t i;
    (void)state;

    for (i = 0; i < N(cases); i++) {
        char *out = (char *)1;
        int r = route_decode(cases[i].in, strlen(cases[i].in), cases[i].plus_space, &out);

        assert_int_equal(r, cases[i].want_r);
        if (r == 0)
            assert_string_equal(out, cases[i].want);
        else
            assert_null(out);
        if (r == 0)
            free(out);
    }
}

static void
test_route_utf8(void **state)
{
    static const struct {
        const char *s;
        int ok;
    } cases[] = {
        {"plain", 1}, {"caf\xc3\xa9", 1}, {"\xe2\x82\xac", 1}, {"\xf0\x9f\x98\x80", 1},
        {"\xff", 0}, {"\xc3", 0}, {"\xc0\xaf", 0}, {"\xe0\x80\xaf", 0}, {"\xed\xa0\x80", 0},
        {"\xf4\x90\x80\x80", 0}, {"\x80", 0}, {"a\xc3\xa9\xc3", 0},
    };
    size_t i;
    (void)state;

    for (i = 0; i < N(cases); i++)
        if (route_utf8_ok(cases[i].s, strlen(cases[i].s)) != cases[i].ok)
            fail_msg("case %zu: want %d", i, cases[i].ok);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_route_find_table),
        cmocka_unit_test(test_route_rows_are_well_formed),
        cmocka_unit_test(test_route_decode),
        cmocka_unit_test(test_route_utf8),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
