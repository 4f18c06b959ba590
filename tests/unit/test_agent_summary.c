/*
 * The job summary `airlock wait` writes for GitHub ($GITHUB_STEP_SUMMARY)
 * and GitLab ($AIRLOCK_SUMMARY): its text, and that it is appended to the
 * file the environment names, after what other steps wrote there.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "../../backend/agent/summary.h"

static void
test_summary_render(void **state)
{
    char *s = summary_render("https://airlock.example.com", "ds-abc", "ssh-ed25519 AAAAkey");

    (void)state;
    assert_non_null(strstr(s, "airlock --server https://airlock.example.com join ds-abc\n"));
    assert_non_null(strstr(s, "https://airlock.example.com/debug-sessions/ds-abc\n"));
    /* the known_hosts line names the session as the host, as the join answer's does */
    assert_non_null(strstr(s, "\nds-abc ssh-ed25519 AAAAkey\n"));
    free(s);
    s = summary_render("http://127.0.0.1:8080", "ds-x", NULL);
    assert_null(strstr(s, "known_hosts"));
    assert_non_null(strstr(s, "join ds-x"));
    free(s);
}

static char *
slurp(const char *path)
{
    FILE *f = fopen(path, "r");
    char *buf = calloc(1, 8192);

    assert_non_null(f);
    assert_true(fread(buf, 1, 8191, f) > 0);
    fclose(f);
    return buf;
}

static void
test_summary_write_appends(void **state)
{
    char path[] = "/tmp/airlock-summary-XXXXXX", *text;
    int fd = mkstemp(path);

    (void)state;
    assert_true(fd >= 0);
    assert_int_equal(write(fd, "earlier step\n", 13), 13);
    close(fd);
    unsetenv("AIRLOCK_SUMMARY");
    setenv("GITHUB_STEP_SUMMARY", path, 1);
    summary_write("http://s", "ds-1", "ssh-ed25519 K");
    text = slurp(path);
    {
        static const char want[] = "earlier step\n### airlock debug session `ds-1`";

        assert_int_equal(strncmp(text, want, strlen(want)), 0);
    }
    assert_non_null(strstr(text, "ds-1 ssh-ed25519 K"));
    free(text);
    /* $AIRLOCK_SUMMARY wins over GitHub's */
    setenv("AIRLOCK_SUMMARY", "/nonexistent-dir/summary", 1);
    summary_write("http://s", "ds-2", NULL); /* a warning, not a crash */
    text = slurp(path);
    assert_null(strstr(text, "ds-2"));
    free(text);
    unsetenv("AIRLOCK_SUMMARY");
    unsetenv("GITHUB_STEP_SUMMARY");
    unlink(path);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_summary_render),
        cmocka_unit_test(test_summary_write_appends),
    };

    return cmocka_run_group_tests_name("agent_summary", tests, NULL, NULL);
}
