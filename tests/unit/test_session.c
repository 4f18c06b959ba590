/*
 * session.c: the lifecycle state machine (DESIGN.md 5). Every (state, event)
 * pair is a row: allowed ones give the next state, refused ones give
 * ERR_CONFLICT and leave the state as it was.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "err.h"
#include "session.h"

#define N(a) (sizeof(a) / sizeof((a)[0]))
#define X -1 /* refused: ERR_CONFLICT, state unchanged */

static void
test_session_every_pair(void **state)
{
    /* want[from][ev]: the next state, or X. Columns in enum session_event order. */
    static const int want[SESSION__COUNT][SEV__COUNT] = {
        /* NEED_APPROVAL, APPROVE, REJECT, ACTIVATE, EXPIRE, TERMINATE, TIMEOUT, AGENT_GONE */
        [SESSION_PENDING] = {SESSION_PENDING_APPROVAL, X, X, SESSION_ACTIVE, X, SESSION_TERMINATED,
                             X, X},
        [SESSION_PENDING_APPROVAL] = {X, SESSION_PENDING, SESSION_TERMINATED, X, X,
                                      SESSION_TERMINATED, SESSION_FAILED, X},
        [SESSION_ACTIVE] = {X, X, X, X, SESSION_EXPIRED, SESSION_TERMINATED, X, SESSION_FAILED},
        [SESSION_EXPIRED] = {X, X, X, X, X, X, X, X},
        [SESSION_TERMINATED] = {X, X, X, X, X, X, X, X},
        [SESSION_FAILED] = {X, X, X, X, X, X, X, X},
    };
    int from, ev;
    (void)state;

    for (from = 0; from < SESSION__COUNT; from++) {
        for (ev = 0; ev < SEV__COUNT; ev++) {
            enum session_state next = SESSION__COUNT; /* poison: must be overwritten */
            int r = session_next((enum session_state)from, (enum session_event)ev, &next);

            if (want[from][ev] == X) {
                if (r != ERR_CONFLICT || next != (enum session_state)from)
                    fail_msg("%s + event %d: want ERR_CONFLICT and state kept, got r=%d next=%d",
                             session_state_name((enum session_state)from), ev, r, next);
            } else {
                if (r != 0 || next != (enum session_state)want[from][ev])
                    fail_msg("%s + event %d: want 0 -> %s, got r=%d next=%d",
                             session_state_name((enum session_state)from), ev,
                             session_state_name((enum session_state)want[from][ev]), r, next);
            }
        }
    }
}

/* The DESIGN.md 5 diagram, path by path. */
static void
test_session_paths(void **state)
{
    static const struct {
        const char *name;
        enum session_event evs[4];
        size_t n;
        enum session_state want;
    } cases[] = {
        {"auto-approved, agent online", {SEV_ACTIVATE}, 1, SESSION_ACTIVE},
        {"approve then activate",
         {SEV_NEED_APPROVAL, SEV_APPROVE, SEV_ACTIVATE},
         3,
         SESSION_ACTIVE},
        {"approved, agent offline: waits in Pending",
         {SEV_NEED_APPROVAL, SEV_APPROVE},
         2,
         SESSION_PENDING},
        {"reject", {SEV_NEED_APPROVAL, SEV_REJECT}, 2, SESSION_TERMINATED},
        {"approval timeout", {SEV_NEED_APPROVAL, SEV_TIMEOUT}, 2, SESSION_FAILED},
        {"requester cancels while pending approval",
         {SEV_NEED_APPROVAL, SEV_TERMINATE},
         2,
         SESSION_TERMINATED},
        {"withdrawn while pending", {SEV_TERMINATE}, 1, SESSION_TERMINATED},
        {"withdrawn after approval",
         {SEV_NEED_APPROVAL, SEV_APPROVE, SEV_TERMINATE},
         3,
         SESSION_TERMINATED},
        {"expires", {SEV_ACTIVATE, SEV_EXPIRE}, 2, SESSION_EXPIRED},
        {"terminated", {SEV_ACTIVATE, SEV_TERMINATE}, 2, SESSION_TERMINATED},
        {"agent gone", {SEV_ACTIVATE, SEV_AGENT_GONE}, 2, SESSION_FAILED},
    };
    size_t i, j;
    (void)state;

    for (i = 0; i < N(cases); i++) {
        enum session_state s = SESSION_PENDING;

        for (j = 0; j < cases[i].n; j++) {
            int r = session_next(s, cases[i].evs[j], &s);

            if (r != 0)
                fail_msg("%s: step %zu refused (%d)", cases[i].name, j, r);
        }
        if (s != cases[i].want)
            fail_msg("%s: ended in %s, want %s", cases[i].name, session_state_name(s),
                     session_state_name(cases[i].want));
    }
}

/* Out-of-range inputs are refused without reading past the table. */
static void
test_session_out_of_range(void **state)
{
    static const struct {
        int from, ev;
    } cases[] = {
        {SESSION__COUNT, SEV_ACTIVATE},       {-1, SEV_ACTIVATE},
        {SESSION_PENDING, SEV__COUNT},        {SESSION_ACTIVE, -1},
        {SESSION__COUNT + 7, SEV__COUNT + 3},
    };
    size_t i;
    (void)state;

    for (i = 0; i < N(cases); i++) {
        enum session_state next = SESSION_ACTIVE;

        assert_int_equal(
            session_next((enum session_state)cases[i].from, (enum session_event)cases[i].ev, &next),
            ERR_CONFLICT);
        assert_int_equal(next, (enum session_state)cases[i].from);
    }
}

static void
test_session_state_names(void **state)
{
    static const struct {
        enum session_state s;
        const char *name;
        int ended;
    } cases[] = {
        {SESSION_PENDING, "Pending", 0},       {SESSION_PENDING_APPROVAL, "PendingApproval", 0},
        {SESSION_ACTIVE, "Active", 0},         {SESSION_EXPIRED, "Expired", 1},
        {SESSION_TERMINATED, "Terminated", 1}, {SESSION_FAILED, "Failed", 1},
    };
    size_t i;
    (void)state;

    assert_int_equal(N(cases), SESSION__COUNT);
    for (i = 0; i < N(cases); i++) {
        enum session_state back = SESSION__COUNT;

        assert_string_equal(session_state_name(cases[i].s), cases[i].name);
        assert_int_equal(session_state_parse(cases[i].name, &back), 0);
        assert_int_equal(back, cases[i].s);
        /* round trip through the name */
        assert_int_equal(session_state_parse(session_state_name(cases[i].s), &back), 0);
        assert_int_equal(back, cases[i].s);
        assert_int_equal(session_state_ended(cases[i].s), cases[i].ended);
    }
    assert_string_equal(session_state_name(SESSION__COUNT), "Unknown");
    assert_string_equal(session_state_name((enum session_state) - 1), "Unknown");
    assert_int_equal(session_state_ended(SESSION__COUNT), 0);
}

static void
test_session_state_parse_invalid(void **state)
{
    static const char *const bad[] = {
        "",        "pending", "PENDING", "active",    "Pending ", " Active",   "Pendingapproval",
        "Unknown", "Activ",   "Actives", "Expired\n", "Failed!",  "Terminate",
    };
    size_t i;
    (void)state;

    for (i = 0; i < N(bad); i++) {
        enum session_state s = SESSION_ACTIVE;

        if (session_state_parse(bad[i], &s) != ERR_INVALID)
            fail_msg("session_state_parse(\"%s\") accepted", bad[i]);
        assert_int_equal(s, SESSION_ACTIVE); /* untouched */
    }
}

static void
test_session_event_types(void **state)
{
    static const struct {
        enum session_event ev;
        const char *type;
    } cases[] = {
        {SEV_NEED_APPROVAL, "approval_required"},
        {SEV_APPROVE, "approved"},
        {SEV_REJECT, "rejected"},
        {SEV_ACTIVATE, "activated"},
        {SEV_EXPIRE, "expired"},
        {SEV_TERMINATE, "terminated"},
        {SEV_TIMEOUT, "failed"},
        {SEV_AGENT_GONE, "failed"},
        {SEV__COUNT, "unknown"},
        {(enum session_event) - 1, "unknown"},
    };
    size_t i;
    (void)state;

    for (i = 0; i < N(cases); i++)
        assert_string_equal(session_event_type(cases[i].ev), cases[i].type);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_session_every_pair),
        cmocka_unit_test(test_session_paths),
        cmocka_unit_test(test_session_out_of_range),
        cmocka_unit_test(test_session_state_names),
        cmocka_unit_test(test_session_state_parse_invalid),
        cmocka_unit_test(test_session_event_types),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
