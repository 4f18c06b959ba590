/*
 * core.c's post-commit queue: every "tell the agent" a transaction collects
 * is kept (the queue once held 8 and silently dropped the rest), duplicates
 * are queued once, and core_after_run hands each to the control registry and
 * frees the queue (ASan checks for leaks).
 */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "control.h"
#include "core.h"

static void
test_after_notify_keeps_every_entry(void **state)
{
    struct core_after after = {0};
    char agent[32], session[32];
    int i;

    (void)state;
    for (i = 0; i < 100; i++) {
        snprintf(agent, sizeof(agent), "agent-%d", i % 7);
        snprintf(session, sizeof(session), "ds-%010d", i);
        core_after_notify(&after, agent, session);
    }
    assert_int_equal(after.n_notify, 100);
    assert_string_equal(after.notify_agents[99], "agent-1");
    assert_string_equal(after.notify_sessions[99], "ds-0000000099");
    assert_string_equal(after.notify_sessions[8], "ds-0000000008");
    core_after_free(&after);
    assert_int_equal(after.n_notify, 0);
    assert_null(after.notify_agents);
}

static void
test_after_notify_dedupes(void **state)
{
    struct core_after after = {0};
    int i;

    (void)state;
    for (i = 0; i < 20; i++) {
        core_after_notify(&after, "a", "ds-1");
        core_after_notify(&after, "b", "ds-1");
        core_after_notify(&after, "a", "ds-2");
    }
    assert_int_equal(after.n_notify, 3);
    core_after_free(&after);
}

static void
test_after_run_frees_the_queue(void **state)
{
    struct app app;
    struct core_after after = {0};
    char session[32];
    int i;

    (void)state;
    memset(&app, 0, sizeof(app));
    pthread_mutex_init(&app.lock, NULL);
    app.control = control_new(&app);
    for (i = 0; i < 40; i++) {
        snprintf(session, sizeof(session), "ds-%010d", i);
        core_after_notify(&after, "nobody-connected", session);
    }
    core_after_run(&app, &after);
    assert_int_equal(after.n_notify, 0);
    assert_null(after.notify_sessions);
    control_free(app.control);
    pthread_mutex_destroy(&app.lock);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_after_notify_keeps_every_entry),
        cmocka_unit_test(test_after_notify_dedupes),
        cmocka_unit_test(test_after_run_frees_the_queue),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
