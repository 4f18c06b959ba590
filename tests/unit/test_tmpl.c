/*
 * tmpl.c: tmpl_to_json -> (text, as stored in sessions.resolved_template) ->
 * tmpl_from_json gives back every field of struct tmpl_cfg, for a template
 * with every field set away from its default and for a minimal one.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <jansson.h>

#include "config.h"
#include "err.h"
#include "tmpl.h"
#include "xmalloc.h"

#define N(a) (sizeof(a) / sizeof((a)[0]))

/* A heap strlist from a NULL-terminated list of literals. */
static struct strlist
mklist(const char *const *v)
{
    struct strlist l = {NULL, 0};
    size_t n = 0, i;

    while (v[n] != NULL)
        n++;
    if (n == 0)
        return l;
    l.v = xcalloc(n, sizeof(char *));
    for (i = 0; i < n; i++)
        l.v[i] = xstrdup(v[i]);
    l.n = n;
    return l;
}

#define LIST(...) mklist((const char *const[]){__VA_ARGS__, NULL})

static void
full_template(struct tmpl_cfg *t)
{
    memset(t, 0, sizeof(*t));
    t->name = xstrdup("ci-debug");
    t->display_name = xstrdup("CI job debug");
    t->description = xstrdup("Shell into a failed CI job \"quoted\" \xc3\xa9");
    t->allowed.groups = LIST("developers", "qa-*");
    t->allowed.users = LIST("alice", "bob@example.com", "ops-?");
    t->allowed.agents = LIST("gh/acme/*", "host/[a-c]*");
    t->approvers.groups = LIST("sre-leads", "security");
    t->approvers.users = LIST("carol", "dave@example.com");
    t->auto_approve.groups = LIST("sre-leads");
    t->auto_approve.users = LIST("erin");
    t->auto_approve.agents = LIST("gh/acme/sandbox/*", "gh/acme/tmp/*");
    t->max_duration_s = 4 * 3600;
    t->default_duration_s = 3600 + 30 * 60;
    t->min_duration_s = 90;
    t->allow_renewal = 1;
    t->max_renewals = 7;
    t->sharing_enabled = 1;
    t->max_participants = 9;
    t->read_only_participants = 1;
    t->op_shell = 1;
    t->op_exec = 0;
    t->op_sftp = 1;
    t->op_port_forward = 1;
    t->reason_mandatory = 1;
    t->reason_min_len = 10;
    t->reason_max_len = 2000;
    t->reject_reason_mandatory = 1;
}

/* Every boolean off, every number at zero, every list empty. */
static void
bare_template(struct tmpl_cfg *t)
{
    memset(t, 0, sizeof(*t));
    t->name = xstrdup("bare");
    t->display_name = xstrdup("Bare");
    t->description = xstrdup("");
    t->max_duration_s = 365LL * 86400;
    t->default_duration_s = 1;
    t->min_duration_s = 0; /* none */
    t->max_renewals = 0;   /* "0 = none" must survive, not turn into the default */
    t->max_participants = 1;
    t->op_shell = 0;
}

static void
assert_list_equal(const char *what, const struct strlist *a, const struct strlist *b)
{
    size_t i;

    if (a->n != b->n)
        fail_msg("%s: %zu entries, want %zu", what, b->n, a->n);
    for (i = 0; i < a->n; i++)
        if (strcmp(a->v[i], b->v[i]) != 0)
            fail_msg("%s[%zu]: \"%s\", want \"%s\"", what, i, b->v[i], a->v[i]);
}

static void
assert_tmpl_equal(const struct tmpl_cfg *a, const struct tmpl_cfg *b)
{
    static const struct {
        const char *what;
        size_t off;
    } lists[] = {
        {"allowed.groups", offsetof(struct tmpl_cfg, allowed.groups)},
        {"allowed.users", offsetof(struct tmpl_cfg, allowed.users)},
        {"allowed.agents", offsetof(struct tmpl_cfg, allowed.agents)},
        {"approvers.groups", offsetof(struct tmpl_cfg, approvers.groups)},
        {"approvers.users", offsetof(struct tmpl_cfg, approvers.users)},
        {"autoApproveFor.groups", offsetof(struct tmpl_cfg, auto_approve.groups)},
        {"autoApproveFor.users", offsetof(struct tmpl_cfg, auto_approve.users)},
        {"autoApproveFor.agents", offsetof(struct tmpl_cfg, auto_approve.agents)},
    };
    static const struct {
        const char *what;
        size_t off;
    } ints[] = {
        {"allow_renewal", offsetof(struct tmpl_cfg, allow_renewal)},
        {"max_renewals", offsetof(struct tmpl_cfg, max_renewals)},
        {"sharing_enabled", offsetof(struct tmpl_cfg, sharing_enabled)},
        {"max_participants", offsetof(struct tmpl_cfg, max_participants)},
        {"read_only_participants", offsetof(struct tmpl_cfg, read_only_participants)},
        {"op_shell", offsetof(struct tmpl_cfg, op_shell)},
        {"op_exec", offsetof(struct tmpl_cfg, op_exec)},
        {"op_sftp", offsetof(struct tmpl_cfg, op_sftp)},
        {"op_port_forward", offsetof(struct tmpl_cfg, op_port_forward)},
        {"reason_mandatory", offsetof(struct tmpl_cfg, reason_mandatory)},
        {"reason_min_len", offsetof(struct tmpl_cfg, reason_min_len)},
        {"reason_max_len", offsetof(struct tmpl_cfg, reason_max_len)},
        {"reject_reason_mandatory", offsetof(struct tmpl_cfg, reject_reason_mandatory)},
    };
    static const struct {
        const char *what;
        size_t off;
    } durs[] = {
        {"max_duration_s", offsetof(struct tmpl_cfg, max_duration_s)},
        {"default_duration_s", offsetof(struct tmpl_cfg, default_duration_s)},
        {"min_duration_s", offsetof(struct tmpl_cfg, min_duration_s)},
    };
    size_t i;

    assert_string_equal(b->name, a->name);
    assert_string_equal(b->display_name, a->display_name);
    assert_string_equal(b->description, a->description);
    for (i = 0; i < N(lists); i++)
        assert_list_equal(lists[i].what, (const struct strlist *)((const char *)a + lists[i].off),
                          (const struct strlist *)((const char *)b + lists[i].off));
    for (i = 0; i < N(ints); i++) {
        int va = *(const int *)((const char *)a + ints[i].off);
        int vb = *(const int *)((const char *)b + ints[i].off);

        if (va != vb)
            fail_msg("%s: %d, want %d", ints[i].what, vb, va);
    }
    for (i = 0; i < N(durs); i++) {
        int64_t va = *(const int64_t *)((const char *)a + durs[i].off);
        int64_t vb = *(const int64_t *)((const char *)b + durs[i].off);

        if (va != vb)
            fail_msg("%s: %lld, want %lld", durs[i].what, (long long)vb, (long long)va);
    }
}

/* to_json, through text (as the store keeps it), from_json. */
static void
round_trip(const struct tmpl_cfg *t)
{
    json_t *j = tmpl_to_json(t), *back = NULL;
    char *text;
    struct tmpl_cfg got;

    assert_non_null(j);
    text = json_dumps(j, JSON_COMPACT);
    assert_non_null(text);
    back = json_loads(text, 0, NULL);
    assert_non_null(back);
    assert_int_equal(tmpl_from_json(back, &got), 0);
    assert_tmpl_equal(t, &got);
    tmpl_cleanup(&got);
    /* straight from the object too */
    assert_int_equal(tmpl_from_json(j, &got), 0);
    assert_tmpl_equal(t, &got);
    tmpl_cleanup(&got);
    free(text);
    json_decref(back);
    json_decref(j);
}

static void
test_tmpl_round_trip_full(void **state)
{
    struct tmpl_cfg t;
    (void)state;

    full_template(&t);
    round_trip(&t);
    tmpl_cleanup(&t);
}

static void
test_tmpl_round_trip_bare(void **state)
{
    struct tmpl_cfg t;
    (void)state;

    bare_template(&t);
    round_trip(&t);
    tmpl_cleanup(&t);
}

/* Each field alone away from the bare template: nothing leaks into a neighbour. */
static void
test_tmpl_round_trip_one_field(void **state)
{
    static const size_t int_fields[] = {
        offsetof(struct tmpl_cfg, allow_renewal),
        offsetof(struct tmpl_cfg, sharing_enabled),
        offsetof(struct tmpl_cfg, read_only_participants),
        offsetof(struct tmpl_cfg, op_shell),
        offsetof(struct tmpl_cfg, op_exec),
        offsetof(struct tmpl_cfg, op_sftp),
        offsetof(struct tmpl_cfg, op_port_forward),
        offsetof(struct tmpl_cfg, reason_mandatory),
        offsetof(struct tmpl_cfg, reject_reason_mandatory),
    };
    size_t i;
    (void)state;

    for (i = 0; i < N(int_fields); i++) {
        struct tmpl_cfg t;

        bare_template(&t);
        *(int *)((char *)&t + int_fields[i]) = 1;
        round_trip(&t);
        tmpl_cleanup(&t);
    }
}

/* Durations that need every unit, and the limits. */
static void
test_tmpl_round_trip_durations(void **state)
{
    static const int64_t durs[] = {1, 59, 61, 3599, 3601, 86399, 86401, 90061, 365LL * 86400};
    size_t i;
    (void)state;

    for (i = 0; i < N(durs); i++) {
        struct tmpl_cfg t;

        bare_template(&t);
        t.max_duration_s = durs[i];
        t.default_duration_s = durs[i];
        t.min_duration_s = durs[i];
        round_trip(&t);
        tmpl_cleanup(&t);
    }
}

/* The JSON shape is the API's (DESIGN.md 3 and 6). */
static void
test_tmpl_json_shape(void **state)
{
    struct tmpl_cfg t;
    json_t *j;
    (void)state;

    full_template(&t);
    j = tmpl_to_json(&t);
    assert_string_equal(json_string_value(json_object_get(j, "name")), "ci-debug");
    assert_string_equal(json_string_value(json_object_get(j, "displayName")), "CI job debug");
    assert_string_equal(
        json_string_value(json_object_get(json_object_get(j, "constraints"), "maxDuration")), "4h");
    assert_string_equal(
        json_string_value(json_object_get(json_object_get(j, "constraints"), "defaultDuration")),
        "1h30m");
    assert_string_equal(
        json_string_value(json_object_get(json_object_get(j, "constraints"), "minDuration")),
        "1m30s");
    assert_int_equal(
        json_integer_value(json_object_get(json_object_get(j, "constraints"), "maxRenewals")), 7);
    assert_true(json_is_true(json_object_get(json_object_get(j, "constraints"), "allowRenewal")));
    assert_string_equal(
        json_string_value(json_object_get(json_object_get(j, "terminalSharing"), "provider")),
        "tmux");
    assert_string_equal(
        json_string_value(json_array_get(
            json_object_get(json_object_get(json_object_get(j, "approvers"), "autoApproveFor"),
                            "agents"),
            1)),
        "gh/acme/tmp/*");
    assert_true(json_is_false(json_object_get(json_object_get(j, "allowedOperations"), "exec")));
    assert_true(json_is_true(
        json_object_get(json_object_get(j, "approvalReason"), "mandatoryForRejection")));
    json_decref(j);
    tmpl_cleanup(&t);

    /* a template with no minDuration has "minDuration": null */
    bare_template(&t);
    j = tmpl_to_json(&t);
    assert_true(json_is_null(json_object_get(json_object_get(j, "constraints"), "minDuration")));
    assert_true(json_is_array(json_object_get(json_object_get(j, "allowed"), "groups")));
    assert_int_equal(json_array_size(json_object_get(json_object_get(j, "allowed"), "groups")), 0);
    json_decref(j);
    tmpl_cleanup(&t);
}

/* Missing display name and description: the JSON fills them in. */
static void
test_tmpl_optional_strings(void **state)
{
    struct tmpl_cfg t, got;
    json_t *j;
    (void)state;

    bare_template(&t);
    free(t.display_name);
    free(t.description);
    t.display_name = NULL;
    t.description = NULL;
    j = tmpl_to_json(&t);
    assert_non_null(j);
    assert_int_equal(tmpl_from_json(j, &got), 0);
    assert_string_equal(got.display_name, "bare");
    assert_string_equal(got.description, "");
    tmpl_cleanup(&got);
    json_decref(j);
    tmpl_cleanup(&t);
}

static void
test_tmpl_from_json_invalid(void **state)
{
    static const char *const cases[] = {
        "[]",
        "\"ci-debug\"",
        "42",
        "null",
        "{}",
        "{\"name\":42}",
        "{\"name\":null}",
        "{\"displayName\":\"x\"}",
    };
    size_t i;
    (void)state;

    for (i = 0; i < N(cases); i++) {
        json_t *j = json_loads(cases[i], JSON_DECODE_ANY, NULL);
        struct tmpl_cfg got;

        assert_non_null(j);
        memset(&got, 0x5a, sizeof(got));
        if (tmpl_from_json(j, &got) != ERR_INVALID)
            fail_msg("tmpl_from_json(%s) accepted", cases[i]);
        tmpl_cleanup(&got); /* must be safe: from_json zeroes first */
        json_decref(j);
    }
    {
        struct tmpl_cfg got;

        assert_int_equal(tmpl_from_json(NULL, &got), ERR_INVALID);
        tmpl_cleanup(&got);
    }
}

static void
test_strlist_json(void **state)
{
    struct strlist l = LIST("a", "b/c", "*"), back;
    json_t *j = strlist_to_json(&l), *mixed;
    (void)state;

    assert_int_equal(json_array_size(j), 3);
    strlist_from_json(j, &back);
    assert_list_equal("strlist", &l, &back);
    strlist_cleanup(&back);
    assert_int_equal(back.n, 0);
    assert_null(back.v);
    /* non-strings are skipped, non-arrays give an empty list */
    mixed = json_loads("[\"x\", 1, null, \"y\"]", 0, NULL);
    strlist_from_json(mixed, &back);
    assert_int_equal(back.n, 2);
    assert_string_equal(back.v[0], "x");
    assert_string_equal(back.v[1], "y");
    strlist_cleanup(&back);
    json_decref(mixed);
    strlist_from_json(json_object_get(j, "nope"), &back);
    assert_int_equal(back.n, 0);
    json_decref(j);
    strlist_cleanup(&l);
    strlist_cleanup(&l); /* twice is harmless */
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_tmpl_round_trip_full),
        cmocka_unit_test(test_tmpl_round_trip_bare),
        cmocka_unit_test(test_tmpl_round_trip_one_field),
        cmocka_unit_test(test_tmpl_round_trip_durations),
        cmocka_unit_test(test_tmpl_json_shape),
        cmocka_unit_test(test_tmpl_optional_strings),
        cmocka_unit_test(test_tmpl_from_json_invalid),
        cmocka_unit_test(test_strlist_json),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
