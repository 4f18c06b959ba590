/*
 * What the person-side commands share (backend/agent/client.c): splitting
 * and trimming the lines of key and token files, the atomic 0600 write of
 * ~/.config/airlock files, and loading the cached token (an expired JWT is
 * refused, so `airlock` says "your login has expired" instead of sending it),
 * and the cache of tokens per server and user (client_tokens.c).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "../../backend/agent/client.h"
#include "../../backend/agent/client_int.h"
#include "err.h"
#include "util.h"

static void
test_client_next_token(void **state)
{
    char line[] = "  ssh-ed25519\tAAAA  alice@host ";
    char *cur = line;
    (void)state;

    assert_string_equal(client_next_token(&cur, " \t"), "ssh-ed25519");
    assert_string_equal(client_next_token(&cur, " \t"), "AAAA");
    assert_string_equal(client_next_token(&cur, " \t"), "alice@host");
    assert_null(client_next_token(&cur, " \t"));
    assert_null(client_next_token(&cur, " \t"));
}

static void
test_client_trim(void **state)
{
    static const struct {
        const char *in, *want;
    } cases[] = {
        {"  tok\r\n", "tok"}, {"\ttok", "tok"}, {"tok", "tok"}, {" \n\t ", ""}, {"a b", "a b"},
    };
    (void)state;

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char buf[32];

        snprintf(buf, sizeof(buf), "%s", cases[i].in);
        client_trim(buf);
        assert_string_equal(buf, cases[i].want);
    }
}

/* A temporary HOME for the test; returns the directory (static buffer). */
static const char *
temp_home(void)
{
    static char dir[64];

    snprintf(dir, sizeof(dir), "/tmp/airlock-client-XXXXXX");
    assert_non_null(mkdtemp(dir));
    setenv("HOME", dir, 1);
    unsetenv("AIRLOCK_TOKEN");
    return dir;
}

/* Removes what temp_home() and client_config_path() created (the files are gone already). */
static void
temp_home_remove(void)
{
    const char *home = getenv("HOME");
    char path[128];

    snprintf(path, sizeof(path), "%s/.config/airlock", home);
    assert_int_equal(rmdir(path), 0);
    snprintf(path, sizeof(path), "%s/.config", home);
    assert_int_equal(rmdir(path), 0);
    assert_int_equal(rmdir(home), 0);
}

static void
test_client_file_roundtrip(void **state)
{
    char *path, *back = NULL;
    struct stat st;
    (void)state;

    temp_home();
    path = client_config_path("token");
    assert_int_equal(client_file_write(path, "secret\n", 7, 0600), 0);
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0600);
    assert_int_equal(client_file_read(path, 1024, &back), 0);
    assert_string_equal(back, "secret\n");
    free(back);
    /* A second write replaces the file whole. */
    assert_int_equal(client_file_write(path, "x", 1, 0600), 0);
    assert_int_equal(client_file_read(path, 1024, &back), 0);
    assert_string_equal(back, "x");
    free(back);
    unlink(path);
    free(path);
    assert_int_equal(client_file_read("/nonexistent/airlock/token", 16, &back), ERR_NOT_FOUND);
    assert_null(back);
    temp_home_remove();
}

/* A JWT-shaped token whose payload is {"exp": exp}. New string. */
static char *
jwt_with_exp(int64_t exp)
{
    char payload[64], *p, *t;

    snprintf(payload, sizeof(payload), "{\"exp\":%lld}", (long long)exp);
    p = b64url_encode((const unsigned char *)payload, strlen(payload));
    t = malloc(strlen(p) + 16);
    snprintf(t, strlen(p) + 16, "eyJh.%s.c2ln", p);
    free(p);
    return t;
}

static void
test_client_token_load(void **state)
{
    char *path, *tok = NULL, *jwt;
    (void)state;

    temp_home();
    assert_int_equal(cmd_token_load(&tok), ERR_NOT_FOUND);
    path = client_config_path("token");
    assert_int_equal(client_file_write(path, "  opaque-token \n", 16, 0600), 0);
    assert_int_equal(cmd_token_load(&tok), 0);
    assert_string_equal(tok, "opaque-token");
    free(tok);
    /* An expired JWT is refused; one still valid is returned. */
    jwt = jwt_with_exp(time_now() - 60);
    assert_int_equal(client_file_write(path, jwt, strlen(jwt), 0600), 0);
    free(jwt);
    tok = (char *)1;
    assert_int_equal(cmd_token_load(&tok), ERR_AUTH);
    assert_null(tok);
    jwt = jwt_with_exp(time_now() + 3600);
    assert_int_equal(client_file_write(path, jwt, strlen(jwt), 0600), 0);
    assert_int_equal(cmd_token_load(&tok), 0);
    assert_string_equal(tok, jwt);
    free(tok);
    free(jwt);
    /* AIRLOCK_TOKEN wins over the file. */
    setenv("AIRLOCK_TOKEN", "from-env", 1);
    assert_int_equal(cmd_token_load(&tok), 0);
    assert_string_equal(tok, "from-env");
    free(tok);
    unsetenv("AIRLOCK_TOKEN");
    unlink(path);
    free(path);
    temp_home_remove();
}

/* The text of HOME/.config/airlock/rel, or "" (a new string). */
static char *
config_text(const char *rel)
{
    char *path = client_config_path(rel), *t = NULL;

    if (client_file_read(path, 4096, &t) != 0)
        t = strdup("");
    free(path);
    return t;
}

/*
 * Tokens per server and user (client_tokens.c): a second login keeps the
 * first user's token, moves the active pointer, --as picks the other one,
 * another server has its own set, and the old single file is the fallback.
 */
static void
test_client_token_cache(void **state)
{
    const char *a = "http://127.0.0.1:8080", *b = "https://Airlock.Example.com/";
    char *tok = NULL, *t, cmd[256];
    struct stat st;
    (void)state;

    temp_home();
    client_identity_set(a, NULL);
    assert_int_equal(client_token_save(a, "erin", "tok-erin"), 0);
    assert_int_equal(client_token_save(a, "alice", "tok-alice"), 0);
    assert_int_equal(client_token_save(b, "../bob", "tok-bob"), 0);
    t = config_text("tokens/127.0.0.1-8080/users/erin");
    assert_string_equal(t, "tok-erin\n");
    free(t);
    t = config_text("tokens/127.0.0.1-8080/active");
    assert_string_equal(t, "alice\n");
    free(t);
    /* the host in lower case, the default port, a user name that cannot climb out */
    t = config_text("tokens/airlock.example.com-443/users/%2E.%2Fbob");
    assert_string_equal(t, "tok-bob\n");
    free(t);
    t = client_config_path("tokens/127.0.0.1-8080/users/alice");
    assert_int_equal(stat(t, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0600);
    free(t);
    t = client_config_path("tokens/127.0.0.1-8080");
    assert_int_equal(stat(t, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0700);
    free(t);

    assert_int_equal(cmd_token_load(&tok), 0); /* the active identity */
    assert_string_equal(tok, "tok-alice");
    free(tok);
    client_identity_set(a, "erin"); /* --as erin */
    assert_int_equal(cmd_token_load(&tok), 0);
    assert_string_equal(tok, "tok-erin");
    free(tok);
    client_identity_set(a, "nobody");
    assert_int_equal(cmd_token_load(&tok), ERR_NOT_FOUND);
    client_identity_set(b, NULL);
    assert_int_equal(cmd_token_load(&tok), 0);
    assert_string_equal(tok, "tok-bob");
    free(tok);
    /* a server with nothing cached: the old single file */
    client_identity_set("http://other:1", NULL);
    t = client_config_path("token");
    assert_int_equal(client_file_write(t, "tok-old\n", 8, 0600), 0);
    free(t);
    assert_int_equal(cmd_token_load(&tok), 0);
    assert_string_equal(tok, "tok-old");
    free(tok);
    client_identity_set(NULL, NULL);
    snprintf(cmd, sizeof(cmd), "rm -rf '%s/.config'", getenv("HOME"));
    assert_int_equal(system(cmd), 0);
    assert_int_equal(rmdir(getenv("HOME")), 0);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_client_next_token),     cmocka_unit_test(test_client_trim),
        cmocka_unit_test(test_client_file_roundtrip), cmocka_unit_test(test_client_token_load),
        cmocka_unit_test(test_client_token_cache),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
