/*
 * The agent's pure pieces: control-message parsing, path escaping, the CI
 * box, and the $AIRLOCK_SOCK protocol over a real unix socket.
 */
#include <poll.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>
#include <jansson.h>

/* Paths, not names: backend/server has a control.h of its own. */
#include "../../backend/agent/box.h"
#include "../../backend/agent/control.h"
#include "../../backend/agent/ctlsock.h"
#include "../../backend/agent/sshd.h"

static void
test_session_parse(void **state)
{
    static const char msg[] =
        "{\"name\":\"ds-abc\",\"state\":\"Active\",\"expiresAt\":\"2026-11-22T10:00:00Z\","
        "\"participants\":["
        "{\"user\":\"alice\",\"role\":\"owner\",\"keys\":[\"ssh-ed25519 AAAA alice\"]},"
        "{\"user\":\"bob\",\"role\":\"participant\",\"keys\":[]},"
        "{\"user\":\"vic\",\"role\":\"viewer\",\"keys\":[\"k1\",\"k2\",3]},"
        "{\"user\":\"x\",\"role\":\"superuser\",\"keys\":[]},"
        "{\"role\":\"viewer\"}],"
        "\"allowedOperations\":{\"shell\":true,\"exec\":false,\"sftp\":true,\"portForward\":false},"
        "\"terminalSharing\":{\"enabled\":true,\"provider\":\"tmux\",\"maxParticipants\":5}}";
    json_t *j = json_loads(msg, 0, NULL);
    struct dsess *s = NULL;

    (void)state;
    assert_non_null(j);
    assert_int_equal(control_session_parse(j, &s), 0);
    assert_string_equal(s->name, "ds-abc");
    assert_string_equal(s->state, "Active");
    assert_int_equal(s->expires_at, 1795341600);
    /* the unknown role and the participant without a user are skipped */
    assert_int_equal(s->n_members, 3);
    assert_int_equal(s->members[0].role, ROLE_OWNER);
    assert_int_equal(s->members[0].n_keys, 1);
    assert_int_equal(s->members[1].n_keys, 0);
    assert_int_equal(s->members[2].role, ROLE_VIEWER);
    assert_int_equal(s->members[2].n_keys, 2); /* the number is not a key */
    assert_int_equal(s->ops, DSESS_OP_SHELL | DSESS_OP_SFTP);
    assert_int_equal(s->max_participants, 5);
    assert_true(s->sharing);
    dsess_free(s);
    json_decref(j);
}

static void
test_session_parse_invalid(void **state)
{
    static const char *const bad[] = {
        "{}",
        "{\"name\":\"ds-a\"}",
        "{\"state\":\"Active\"}",
        "{\"name\":\"\",\"state\":\"Active\"}",
        "{\"name\":3,\"state\":\"Active\"}",
    };
    size_t i;

    (void)state;
    for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        json_t *j = json_loads(bad[i], 0, NULL);
        struct dsess *s = (struct dsess *)1;

        assert_int_equal(control_session_parse(j, &s), ERR_INVALID);
        assert_null(s);
        json_decref(j);
    }
}

static void
test_session_ended_and_roles(void **state)
{
    static const struct {
        const char *state;
        int ended;
    } cases[] = {
        {"Active", 0}, {"Pending", 0}, {"PendingApproval", 0}, {"Expired", 1}, {"Terminated", 1},
        {"Failed", 1}, {"", 0},
    };
    size_t i;

    (void)state;
    for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
        assert_int_equal(dsess_state_ended(cases[i].state), cases[i].ended);
    assert_int_equal(dsess_state_ended(NULL), 0);
    assert_int_equal(dsess_role_parse("owner"), ROLE_OWNER);
    assert_int_equal(dsess_role_parse("participant"), ROLE_PARTICIPANT);
    assert_int_equal(dsess_role_parse("viewer"), ROLE_VIEWER);
    assert_int_equal(dsess_role_parse("Viewer"), -1);
    assert_int_equal(dsess_role_parse(NULL), -1);
}

static void
test_path_escape(void **state)
{
    static const struct {
        const char *in, *out;
    } cases[] = {
        {"gh/acme/web/42-1", "gh%2Facme%2Fweb%2F42-1"},
        {"plain_name.1~x", "plain_name.1~x"},
        {"a b?c#d%", "a%20b%3Fc%23d%25"},
        {"", ""},
    };
    size_t i;

    (void)state;
    for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char *e = control_path_escape(cases[i].in);

        assert_string_equal(e, cases[i].out);
        free(e);
    }
}

static void
test_box_left(void **state)
{
    static const struct {
        int64_t secs;
        const char *want;
    } cases[] = {
        {-5, "expired"},   {0, "expired"},   {1, "1s"},        {59, "59s"},
        {60, "1m00s"},     {3599, "59m59s"}, {3600, "1h00m"},  {5400, "1h30m"},
        {86399, "23h59m"}, {86400, "1d00h"}, {90000, "1d01h"},
    };
    char out[32];
    size_t i;

    (void)state;
    for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        box_left(cases[i].secs, out, sizeof(out));
        assert_string_equal(out, cases[i].want);
    }
}

static void
test_box_render(void **state)
{
    const char *people[] = {"alice (owner)", "bob (participant)"};
    struct box_info bi;
    char out[4096], *line, *end;
    size_t n, width = 0;

    (void)state;
    memset(&bi, 0, sizeof(bi));
    bi.server = "https://airlock.example.com";
    bi.agent = "gh/acme/web/42-1";
    bi.session = "ds-4k9x2mq7ab";
    bi.state = "Active";
    bi.expires_at = 1000 + 3600 + 125;
    bi.participants = people;
    bi.n_participants = 2;
    bi.connections = 1;
    n = box_render(&bi, 1000, out, sizeof(out));
    assert_int_equal(n, strlen(out));
    assert_non_null(strstr(out, "| airlock debug session ds-4k9x2mq7ab"));
    assert_non_null(strstr(out, "Active, 1h02m left (until 1970-01-01T01:18:45Z)"));
    assert_non_null(strstr(out, "airlock --server https://airlock.example.com join ds-4k9x2mq7ab"));
    assert_non_null(strstr(out, "https://airlock.example.com/debug-sessions/ds-4k9x2mq7ab"));
    assert_non_null(strstr(out, "alice (owner), bob (participant); 1 connected"));
    assert_non_null(strstr(out, "airlock extend --for 30m"));
    /* Every line has the same width. */
    for (line = out; *line != '\0'; line = end + 1) {
        end = strchr(line, '\n');
        assert_non_null(end);
        if (width == 0)
            width = (size_t)(end - line);
        assert_int_equal((size_t)(end - line), width);
    }

    bi.state = "PendingApproval";
    bi.n_participants = 0;
    box_render(&bi, 1000, out, sizeof(out));
    assert_non_null(strstr(out, "waiting for an approver"));
    assert_null(strstr(out, "airlock extend"));

    bi.session = NULL;
    box_render(&bi, 1000, out, sizeof(out));
    assert_non_null(strstr(out, "airlock agent gh/acme/web/42-1"));
    assert_non_null(strstr(out, "no session yet"));

    /* Truncation behaves like snprintf. */
    bi.session = "ds-4k9x2mq7ab";
    n = box_render(&bi, 1000, out, 50);
    assert_int_equal(n, 49);
    assert_int_equal(strlen(out), 49);
}

/* ---- $AIRLOCK_SOCK round trip ---- */

struct srv {
    struct ctlsock *cs;
    int stop;
    int seen;
    char op[32];
};

static void
on_req(struct ctlsock *cs, unsigned client, json_t *req, void *ud)
{
    struct srv *s = ud;
    json_t *resp;

    s->seen++;
    snprintf(s->op, sizeof(s->op), "%s", json_string_value(json_object_get(req, "op")));
    if (strcmp(s->op, "extend") == 0) {
        ctlsock_reply_error(cs, client, "FORBIDDEN", "maximum renewals (2) reached");
        return;
    }
    resp = json_pack("{s:b, s:{s:s, s:s, s:[]}}", "ok", 1, "session", "name",
                     json_string_value(json_object_get(req, "session")), "state", "Active",
                     "participants");
    ctlsock_reply(cs, client, resp);
    json_decref(resp);
}

static void *
srv_main(void *arg)
{
    struct srv *s = arg;

    while (!__atomic_load_n(&s->stop, __ATOMIC_SEQ_CST)) {
        struct pollfd p[CTLSOCK_MAX_CLIENTS + 1];
        size_t n = ctlsock_pollfds(s->cs, p, CTLSOCK_MAX_CLIENTS + 1);

        if (poll(p, n, 50) > 0)
            ctlsock_handle(s->cs, p, n);
    }
    return NULL;
}

static void
test_ctlsock_roundtrip(void **state)
{
    char path[] = "/tmp/airlock-ctl-test.XXXXXX", sock[128], err[256];
    struct srv s;
    pthread_t th;
    json_t *req, *resp = NULL;
    char *argv_status[] = {"status", NULL}, *argv_extend[] = {"extend", "--for", "30m", NULL};
    char *argv_bad[] = {"extend", "--for", "soon", NULL};

    (void)state;
    memset(&s, 0, sizeof(s));
    assert_non_null(mkdtemp(path));
    snprintf(sock, sizeof(sock), "%s/ctl.sock", path);
    assert_int_equal(ctlsock_listen(sock, on_req, &s, &s.cs), 0);
    assert_int_equal(pthread_create(&th, NULL, srv_main, &s), 0);

    req = json_pack("{s:s, s:s}", "op", "status", "session", "ds-x");
    assert_int_equal(ctlsock_call(sock, req, 5000, &resp, err, sizeof(err)), 0);
    json_decref(req);
    assert_true(json_is_true(json_object_get(resp, "ok")));
    assert_string_equal(
        json_string_value(json_object_get(json_object_get(resp, "session"), "name")), "ds-x");
    json_decref(resp);

    /* The CLI: exit codes 0 (ok), 1 (refused, message as-is), 2 (usage / not in a session). */
    setenv("AIRLOCK_SOCK", sock, 1);
    setenv("AIRLOCK_SESSION", "ds-x", 1);
    assert_int_equal(ctlsock_cli(2 - 1, argv_status), 0);
    assert_int_equal(ctlsock_cli(3, argv_extend), 1);
    assert_string_equal(s.op, "extend");
    assert_int_equal(ctlsock_cli(3, argv_bad), 2);
    unsetenv("AIRLOCK_SOCK");
    assert_int_equal(ctlsock_cli(1, argv_status), 2);
    /* Nobody listening: 3. */
    setenv("AIRLOCK_SOCK", "/nonexistent/ctl.sock", 1);
    assert_int_equal(ctlsock_cli(1, argv_status), 3);
    unsetenv("AIRLOCK_SOCK");
    unsetenv("AIRLOCK_SESSION");

    __atomic_store_n(&s.stop, 1, __ATOMIC_SEQ_CST);
    pthread_join(th, NULL);
    ctlsock_free(s.cs);
    assert_int_not_equal(access(sock, F_OK), 0); /* unlinked */
    rmdir(path);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_session_parse),
        cmocka_unit_test(test_session_parse_invalid),
        cmocka_unit_test(test_session_ended_and_roles),
        cmocka_unit_test(test_path_escape),
        cmocka_unit_test(test_box_left),
        cmocka_unit_test(test_box_render),
        cmocka_unit_test(test_ctlsock_roundtrip),
    };

    return cmocka_run_group_tests_name("agent_control", tests, NULL, NULL);
}
