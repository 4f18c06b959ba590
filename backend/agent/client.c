/*
 * What the person-side commands share (client_int.h): the files under
 * ~/.config/airlock, the cached token, the server URL, and HTTP to the
 * server. The commands themselves live one per file: client_login.c,
 * client_sessions.c, client_join.c, client_proxy.c.
 *
 * HTTP goes through libcurl easy handles (httpc.c) and jansson; a refusal
 * prints the error envelope's "error" field and exits 1, a server that
 * cannot be reached exits 3.
 */
#include <errno.h>
#include <fcntl.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <curl/curl.h>
#include <jansson.h>

#include "client.h"
#include "client_int.h"
#include "err.h"
#include "httpc.h"
#include "util.h"
#include "xmalloc.h"

#define HTTP_TIMEOUT_S 30L

/* ~/.config/airlock/<name> as a new string; the directory is created (0700). */
char *
client_config_path(const char *name)
{
    const char *home = getenv("HOME");
    struct passwd *pw;
    char *dir, *sub, *p;

    if ((home == NULL || home[0] == '\0') && (pw = getpwuid(getuid())) != NULL)
        home = pw->pw_dir;
    if (home == NULL)
        home = ".";
    sub = xasprintf("%s/.config", home);
    dir = xasprintf("%s/airlock", sub);
    (void)mkdir(sub, 0700);
    (void)mkdir(dir, 0700);
    p = xasprintf("%s/%s", dir, name);
    free(sub);
    free(dir);
    return p;
}

/* Writes data to path atomically with mode. Returns 0 or ERR_SYSTEM (message printed). */
int
client_file_write(const char *path, const char *data, size_t len, mode_t mode)
{
    char *tmp = xasprintf("%s.tmp.%ld", path, (long)getpid());
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode), r = ERR_SYSTEM;
    size_t off = 0;

    if (fd < 0) {
        fprintf(stderr, "airlock: cannot write %s: %s\n", tmp, strerror(errno));
        goto out;
    }
    (void)fchmod(fd, mode);
    while (off < len) {
        ssize_t n = write(fd, data + off, len - off);

        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            fprintf(stderr, "airlock: cannot write %s: %s\n", tmp, strerror(errno));
            goto out;
        }
        off += (size_t)n;
    }
    if (fsync(fd) != 0 || close(fd) != 0) {
        fd = -1;
        fprintf(stderr, "airlock: cannot write %s: %s\n", tmp, strerror(errno));
        goto out;
    }
    fd = -1;
    if (rename(tmp, path) != 0) {
        fprintf(stderr, "airlock: cannot write %s: %s\n", path, strerror(errno));
        goto out;
    }
    r = 0;
out:
    if (fd >= 0)
        close(fd);
    if (r != 0)
        (void)unlink(tmp);
    free(tmp);
    return r;
}

/* Reads a whole (small) file into a new NUL-terminated string. 0, ERR_NOT_FOUND or ERR_SYSTEM. */
int
client_file_read(const char *path, size_t max, char **out)
{
    FILE *f = fopen(path, "re");
    char *buf = NULL;
    size_t n;

    *out = NULL;
    if (f == NULL)
        return errno == ENOENT ? ERR_NOT_FOUND : ERR_SYSTEM;
    buf = xmalloc(max + 1);
    n = fread(buf, 1, max, f);
    if (ferror(f)) {
        fclose(f);
        free(buf);
        return ERR_SYSTEM;
    }
    fclose(f);
    buf[n] = '\0';
    *out = buf;
    return 0;
}

void
client_trim(char *s)
{
    size_t n = strlen(s), i = 0;

    while (n > 0 && (s[n - 1] == '\n' || s[n - 1] == '\r' || s[n - 1] == ' ' || s[n - 1] == '\t'))
        s[--n] = '\0';
    while (s[i] == ' ' || s[i] == '\t' || s[i] == '\n' || s[i] == '\r')
        i++;
    if (i > 0)
        memmove(s, s + i, n - i + 1);
}

/*
 * Returns the next token of *cur delimited by any of delims, skipping empty
 * ones, and advances *cur past it (the delimiter is overwritten with NUL).
 * NULL when none is left. Borrowed from the caller's string.
 */
char *
client_next_token(char **cur, const char *delims)
{
    char *s = *cur, *end;

    if (s == NULL)
        return NULL;
    s += strspn(s, delims);
    if (*s == '\0') {
        *cur = s;
        return NULL;
    }
    end = s + strcspn(s, delims);
    if (*end != '\0')
        *end++ = '\0';
    *cur = end;
    return s;
}

void
client_secret_free(char *s)
{
    if (s != NULL) {
        explicit_bzero(s, strlen(s));
        free(s);
    }
}

json_t *
client_jwt_payload(const char *s)
{
    const char *p1 = strchr(s, '.'), *p2 = p1 ? strchr(p1 + 1, '.') : NULL;
    unsigned char *raw = NULL;
    size_t raw_len = 0;
    json_t *j;

    if (p2 == NULL || b64url_decode(p1 + 1, (size_t)(p2 - p1 - 1), &raw, &raw_len) != 0)
        return NULL;
    j = json_loadb((const char *)raw, raw_len, 0, NULL);
    free(raw);
    if (!json_is_object(j)) {
        json_decref(j);
        return NULL;
    }
    return j;
}

int
cmd_token_load(char **token)
{
    char *t = NULL, *src = NULL;
    json_t *claims;
    int64_t exp = 0;

    *token = NULL;
    if (client_token_find(&t, &src) != 0)
        return ERR_NOT_FOUND;
    free(src);
    client_trim(t);
    if (t[0] == '\0') {
        free(t);
        return ERR_NOT_FOUND;
    }
    claims = client_jwt_payload(t);
    if (json_is_integer(json_object_get(claims, "exp")))
        exp = json_integer_value(json_object_get(claims, "exp"));
    json_decref(claims);
    if (exp != 0 && exp <= time_now()) {
        client_secret_free(t);
        return ERR_AUTH;
    }
    *token = t;
    return 0;
}

/* The token, or a message and NULL. */
char *
client_need_token(void)
{
    char *t = NULL;
    int r = cmd_token_load(&t);

    if (r == ERR_NOT_FOUND)
        fprintf(stderr, "airlock: not logged in: run 'airlock login' first\n");
    else if (r == ERR_AUTH)
        fprintf(stderr, "airlock: your login has expired: run 'airlock login' again\n");
    else if (r != 0)
        fprintf(stderr, "airlock: cannot read the cached token: %s\n", err_str(r));
    return t;
}

/* The server URL to use: the argument, else the one saved at login. New string or NULL. */
char *
client_server_url(const char *server)
{
    char *path, *s = NULL;

    if (server != NULL && server[0] != '\0')
        return xstrdup(server);
    path = client_config_path("server");
    if (client_file_read(path, 4096, &s) == 0) {
        client_trim(s);
        if (s[0] == '\0') {
            free(s);
            s = NULL;
        }
    }
    free(path);
    if (s == NULL)
        fprintf(stderr, "airlock: no server: pass --server URL or set AIRLOCK_SERVER\n");
    return s;
}

/* ----------------------------------------------------------------- HTTP */

/*
 * One HTTP request to the server (AIRLOCK_CA_FILE trusted when set). See
 * httpc_call() for what it returns.
 */
int
client_http_call(const char *method, const char *url, const char *bearer, const char *content_type,
                 const char *body, long *status, json_t **out, char *err, size_t err_len)
{
    char *auth = bearer ? xasprintf("Authorization: Bearer %s", bearer) : NULL;
    int r = httpc_call(method, url, auth, content_type, body, getenv("AIRLOCK_CA_FILE"),
                       HTTP_TIMEOUT_S * 1000L, status, out, err, err_len);

    client_secret_free(auth);
    return r;
}

int
client_http_json(const char *method, const char *url, const char *bearer, json_t *body,
                 long *status, json_t **out, char *err, size_t err_len)
{
    char *text = body ? json_dumps(body, JSON_COMPACT) : NULL;
    int r =
        client_http_call(method, url, bearer, "application/json", text, status, out, err, err_len);

    free(text);
    return r;
}

/*
 * Prints why the server refused and returns the exit code: 1, or 3 when
 * the answer did not come from airlockd at all (a gateway error without
 * our envelope).
 */
int
client_refused(const char *what, long status, json_t *j)
{
    const char *msg = json_string_value(json_object_get(j, "error"));

    if (msg != NULL) {
        json_t *sug = json_object_get(json_object_get(j, "details"), "suggestions");
        size_t i;

        fprintf(stderr, "airlock: %s: %s\n", what, msg);
        for (i = 0; i < json_array_size(sug); i++)
            fprintf(stderr, "%s%s", i == 0 ? "  did you mean: " : ", ",
                    json_string_value(json_array_get(sug, i))
                        ? json_string_value(json_array_get(sug, i))
                        : "?");
        if (i > 0)
            fputs("?\n", stderr);
        return CLIENT_EXIT_REFUSED;
    }
    fprintf(stderr, "airlock: %s: the server answered HTTP %ld\n", what, status);
    return status >= 500 ? CLIENT_EXIT_UNREACHABLE : CLIENT_EXIT_REFUSED;
}

char *
client_url_escape(const char *s)
{
    char *e = curl_easy_escape(NULL, s, 0), *r;

    r = xstrdup(e ? e : "");
    curl_free(e);
    return r;
}

/* "in 1h5m", "3m ago", or "-". */
void
client_relative(const char *when, char *out, size_t out_len)
{
    int64_t t, d;
    char buf[32];

    if (when == NULL || time_parse(when, &t) != 0) {
        snprintf(out, out_len, "-");
        return;
    }
    d = t - time_now();
    if (d == 0) {
        snprintf(out, out_len, "now");
        return;
    }
    {
        int64_t a = d < 0 ? -d : d;

        if (a >= 86400)
            snprintf(buf, sizeof(buf), "%lldd%lldh", (long long)(a / 86400),
                     (long long)(a % 86400 / 3600));
        else if (a >= 3600)
            snprintf(buf, sizeof(buf), "%lldh%lldm", (long long)(a / 3600),
                     (long long)(a % 3600 / 60));
        else if (a >= 60)
            snprintf(buf, sizeof(buf), "%lldm", (long long)(a / 60));
        else
            snprintf(buf, sizeof(buf), "%llds", (long long)a);
    }
    snprintf(out, out_len, d > 0 ? "in %s" : "%s ago", buf);
}

int
client_api(const char *server, const char *method, const char *path, json_t *body, const char *what,
           json_t **out)
{
    char *srv = client_server_url(server), *token = NULL, *url = NULL, err[512];
    long status;
    int code;

    *out = NULL;
    if (srv == NULL)
        return CLIENT_EXIT_USAGE;
    if ((token = client_need_token()) == NULL) {
        free(srv);
        return CLIENT_EXIT_REFUSED;
    }
    url = xasprintf("%s%s", srv, path);
    if (client_http_json(method, url, token, body, &status, out, err, sizeof(err)) != 0) {
        fprintf(stderr, "airlock: %s\n", err);
        code = CLIENT_EXIT_UNREACHABLE;
    } else if (status < 200 || status > 299 || !json_is_object(*out)) {
        code = client_refused(what, status, *out);
    } else {
        code = 0;
    }
    if (code != 0) {
        json_decref(*out);
        *out = NULL;
    }
    free(url);
    free(srv);
    client_secret_free(token);
    return code;
}
