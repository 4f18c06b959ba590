/*
 * notify_text.c: the webhook body's Slack-compatible text. Who did what to
 * which session, the time left while Active, the UI (or approve) link, and
 * Slack's three escapes on everything a person typed.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "notify_text.h"

#define T0 1000000LL

static char *users_v[] = {"carol"};
static char *groups_v[] = {"sre-leads"};

static void
test_notify_text_request(void **state)
{
    struct subjects ap = {.users = {users_v, 1}, .groups = {groups_v, 1}};
    struct notify_event e = {.type = "approval_required",
                             .session = "ds-4k9x2mq7ab",
                             .actor = "alice",
                             .template_name = "ci-debug",
                             .agent = "gh/a/1",
                             .requested_by = "alice",
                             .approvers = &ap,
                             .now = T0,
                             .public_url = "https://airlock.example.com/"};
    char *t = notify_text(&e);

    (void)state;
    assert_string_equal(t, "airlock ds-4k9x2mq7ab (ci-debug on gh/a/1, requested by alice): alice "
                           "asks for approval by carol, group sre-leads. Approve: "
                           "https://airlock.example.com/debug-sessions/ds-4k9x2mq7ab");
    free(t);
}

static void
test_notify_text_time_left_and_escapes(void **state)
{
    json_t *d =
        json_pack("{s:s, s:s, s:s}", "user", "<!here>", "from", "viewer", "to", "participant");
    struct notify_event e = {.type = "role_changed",
                             .session = "ds-4k9x2mq7ab",
                             .actor = "a&b",
                             .data = d,
                             .active = 1,
                             .expires_at = T0 + 3599,
                             .now = T0,
                             .public_url = "https://x"};
    char *t = notify_text(&e);

    (void)state;
    assert_string_equal(t, "airlock ds-4k9x2mq7ab: a&amp;b made &lt;!here&gt; a participant. "
                           "Time left: 59m. https://x/debug-sessions/ds-4k9x2mq7ab");
    free(t);
    json_decref(d);
    e.type = "recording_sealed"; /* an event this file does not know reads as its name */
    e.data = NULL;
    e.active = 0;
    t = notify_text(&e);
    assert_string_equal(t, "airlock ds-4k9x2mq7ab: a&amp;b recording sealed. "
                           "https://x/debug-sessions/ds-4k9x2mq7ab");
    free(t);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_notify_text_request),
        cmocka_unit_test(test_notify_text_time_left_and_escapes),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
