/*
 * timerules.c: a template's time rules (claimDeadline, clockStartsAt,
 * idleTimeout, autoExtend) as tables of (rules, session times, now) ->
 * (action, new expiry, next look, idle end). now is injected; T is the
 * activation time.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "timerules.h"

#define N(a) (sizeof(a) / sizeof((a)[0]))
#define T 1000000
#define M 60
#define H 3600

struct row {
    const char *what;
    struct timerules_cfg c;
    struct timerules_in in;
    int64_t now;
    enum timerules_action action;
    int64_t expires_at, next_at, idle_ends_at;
};

/* in: {activated_at, starts_at, expires_at, duration_s, first_connect_at, last_input_at} */
static const struct row rows[] = {
    {"no rules: nothing to do, nothing to schedule",
     {0, 0, 0, 0, 0, 4 * H},
     {T, T, T + H, H, 0, 0},
     T + 10,
     TR_NONE,
     0,
     0,
     0},
    {"claim deadline not reached: look again at it",
     {10 * M, 0, 0, 0, 0, 4 * H},
     {T, T, T + H, H, 0, 0},
     T + 9 * M,
     TR_NONE,
     0,
     T + 10 * M,
     0},
    {"claim deadline reached with nobody connected: end",
     {10 * M, 0, 0, 0, 0, 4 * H},
     {T, T, T + H, H, 0, 0},
     T + 10 * M,
     TR_END_CLAIM,
     0,
     0,
     0},
    {"claim deadline passed but someone connected in time: nothing",
     {10 * M, 0, 0, 0, 0, 4 * H},
     {T, T, T + H, H, T + 5 * M, 0},
     T + 20 * M,
     TR_NONE,
     0,
     0,
     0},
    {"idle: counted from activation without a claim deadline",
     {0, 0, 30 * M, 0, 0, 4 * H},
     {T, T, T + H, H, 0, 0},
     T + 29 * M,
     TR_NONE,
     0,
     T + 30 * M,
     T + 30 * M},
    {"idle: counted from the last input",
     {0, 0, 30 * M, 0, 0, 4 * H},
     {T, T, T + H, H, T + M, T + 20 * M},
     T + 49 * M,
     TR_NONE,
     0,
     T + 50 * M,
     T + 50 * M},
    {"idle: no input for idleTimeout ends it",
     {0, 0, 30 * M, 0, 0, 4 * H},
     {T, T, T + H, H, T + M, T + 20 * M},
     T + 50 * M,
     TR_END_IDLE,
     0,
     0,
     T + 50 * M},
    {"idle waits for the first connection when a claim deadline governs",
     {10 * M, 0, 5 * M, 0, 0, 4 * H},
     {T, T, T + H, H, 0, 0},
     T + 6 * M,
     TR_NONE,
     0,
     T + 10 * M,
     0},
    {"idle from the first connection",
     {10 * M, 0, 5 * M, 0, 0, 4 * H},
     {T, T, T + H, H, T + 8 * M, 0},
     T + 13 * M,
     TR_END_IDLE,
     0,
     0,
     T + 13 * M},
    {"firstConnect before any connection: the claim deadline ends it",
     {10 * M, 1, 0, 0, 0, 4 * H},
     {T, T, T + 10 * M, H, 0, 0},
     T + 10 * M,
     TR_END_CLAIM,
     0,
     0,
     0},
    {"autoExtend: outside the lead window, look again at its start",
     {0, 0, 0, 15 * M, 4 * H, 4 * H},
     {T, T, T + H, H, T, T + 50 * M},
     T + 50 * M,
     TR_NONE,
     0,
     T + H - 60,
     0},
    {"autoExtend: typed within step, about to expire: extend by step",
     {0, 0, 0, 15 * M, 4 * H, 4 * H},
     {T, T, T + H, H, T, T + 50 * M},
     T + H - 30,
     TR_EXTEND,
     T + H + 15 * M,
     T + H + 15 * M - 60,
     0},
    {"autoExtend: no input within step: no extension, nothing scheduled",
     {0, 0, 0, 15 * M, 4 * H, 4 * H},
     {T, T, T + H, H, T, T + 40 * M},
     T + H - 30,
     TR_NONE,
     0,
     0,
     0},
    {"autoExtend: never past startsAt + maxTotal",
     {0, 0, 0, 15 * M, 70 * M, 4 * H},
     {T, T, T + H, H, T, T + 59 * M},
     T + H - 30,
     TR_EXTEND,
     T + 70 * M,
     0,
     0},
    {"autoExtend: never past maxDuration when it is smaller",
     {0, 0, 0, 15 * M, 8 * H, 65 * M},
     {T, T, T + H, H, T, T + 59 * M},
     T + H - 30,
     TR_EXTEND,
     T + 65 * M,
     0,
     0},
    {"autoExtend: at the cap, nothing more",
     {0, 0, 0, 15 * M, H, 4 * H},
     {T, T, T + H, H, T, T + 59 * M},
     T + H - 30,
     TR_NONE,
     0,
     0,
     0},
    {"autoExtend: short step, lead is the step",
     {0, 0, 0, 3, 20, 4 * H},
     {T, T, T + 5, 5, T, T + 2},
     T + 3,
     TR_EXTEND,
     T + 8,
     T + 5,
     0},
    {"autoExtend: not after expiry",
     {0, 0, 0, 3, 20, 4 * H},
     {T, T, T + 5, 5, T, T + 5},
     T + 5,
     TR_NONE,
     0,
     0,
     0},
    {"autoExtend: with firstConnect, not before the clock started",
     {10 * M, 1, 0, 15 * M, 4 * H, 4 * H},
     {T, T, T + 10 * M, H, 0, T + 9 * M},
     T + 10 * M - 30,
     TR_NONE,
     0,
     T + 10 * M,
     0},
    {"claim deadline beats idle and autoExtend",
     {5 * M, 0, M, 15 * M, 4 * H, 4 * H},
     {T, T, T + 5 * M + 30, 5 * M + 30, 0, 0},
     T + 5 * M,
     TR_END_CLAIM,
     0,
     0,
     0},
    {"idle beats autoExtend",
     {0, 0, 10 * M, 15 * M, 4 * H, 4 * H},
     {T, T, T + H, H, T, T + 50 * M - 1},
     T + H - 1,
     TR_END_IDLE,
     0,
     0,
     T + H - 1},
};

static void
test_timerules_table(void **state)
{
    size_t i;
    (void)state;

    for (i = 0; i < N(rows); i++) {
        const struct row *w = &rows[i];
        struct timerules_out out;

        memset(&out, 0x5a, sizeof(out)); /* poison: every field must be set */
        timerules_decide(&w->c, &w->in, w->now, &out);
        if (out.action != w->action || out.next_at != w->next_at ||
            out.idle_ends_at != w->idle_ends_at ||
            (w->action == TR_EXTEND && out.expires_at != w->expires_at))
            fail_msg("%s: want action %d exp %lld next %lld idle %lld, got %d %lld %lld %lld",
                     w->what, w->action, (long long)w->expires_at, (long long)w->next_at,
                     (long long)w->idle_ends_at, out.action, (long long)out.expires_at,
                     (long long)out.next_at, (long long)out.idle_ends_at);
    }
}

static void
test_timerules_activation_and_first_connect(void **state)
{
    struct timerules_cfg plain = {10 * M, 0, 0, 0, 0, 4 * H};
    struct timerules_cfg first = {10 * M, 1, 0, 0, 0, 4 * H};
    struct timerules_in in = {T, T, T + 10 * M, H, 0, 0};
    int64_t s = 0, e = 0;
    (void)state;

    assert_int_equal(timerules_activation_expiry(&plain, T, H), T + H);
    assert_int_equal(timerules_activation_expiry(&first, T, H), T + 10 * M);
    /* activation's clock: the first connection changes nothing */
    assert_int_equal(timerules_first_connect(&plain, &in, T + 3 * M, &s, &e), 0);
    assert_int_equal(s, 0);
    /* firstConnect: the duration counts from the first connection */
    assert_int_equal(timerules_first_connect(&first, &in, T + 3 * M, &s, &e), 1);
    assert_int_equal(s, T + 3 * M);
    assert_int_equal(e, T + 3 * M + H);
    /* only the first one */
    in.first_connect_at = T + 3 * M;
    s = e = 0;
    assert_int_equal(timerules_first_connect(&first, &in, T + 5 * M, &s, &e), 0);
    assert_int_equal(s, 0);
}

static void
test_timerules_any(void **state)
{
    struct timerules_cfg none = {0, 0, 0, 0, 0, 4 * H};
    struct timerules_cfg idle = {0, 0, 60, 0, 0, 4 * H};
    struct timerules_cfg ext = {0, 0, 0, 60, 0, 4 * H};
    (void)state;

    assert_false(timerules_any(&none));
    assert_true(timerules_any(&idle));
    assert_true(timerules_any(&ext));
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_timerules_table),
        cmocka_unit_test(test_timerules_activation_and_first_connect),
        cmocka_unit_test(test_timerules_any),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
