/*
 * The person-side commands: login, sessions, join, proxy (client.h).
 *
 * HTTP goes through libcurl easy handles and jansson; a refusal prints the
 * error envelope's "error" field and exits 1, a server that cannot be
 * reached exits 3. `join` asks the server for a join ticket, pins the
 * agent's host key in ~/.config/airlock/known_hosts under the session's
 * name and runs the person's own OpenSSH client with this program as its
 * ProxyCommand; `proxy` then carries the SSH byte stream over the session's
 * /connect WebSocket (ws.h), with flow control both ways: stdin is read
 * only while less than PROXY_HWM is queued toward the server, and the
 * WebSocket is read only while less than PROXY_HWM waits for stdout.
 *
 * XXX The device flow caches the access token (or ID token) it gets and
 * does not refresh it; when it expires the person logs in again.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <poll.h>
#include <pwd.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <curl/curl.h>
#include <jansson.h>

#include "client.h"
#include "httpc.h"
#include "err.h"
#include "util.h"
#include "ws.h"
#include "xmalloc.h"

#define HTTP_TIMEOUT_S 30L
#define TOKEN_FILE_MAX (64 * 1024)
#define PROXY_BUF (256 * 1024)  /* one stdin read, one message */
#define PROXY_HWM (1024 * 1024) /* queued bytes that stop reading the other side */
#define PROXY_CONNECT_MS 20000
#define PROXY_PING_MS 20000 /* keeps idle-timeout proxies (nginx: 60 s) happy */
#define PROXY_DEAD_MS 65000 /* nothing at all from the server this long: gone */
#define PROXY_CLOSE_WAIT_MS 3000
#define SESSIONS_PAGE 500
#define SESSIONS_MAX_PAGES 100

/* ---------------------------------------------------------------- files */

/* ~/.config/airlock/<name> as a new string; the directory is created (0700). */
static char *
config_path(const char *name)
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
static int
file_write(const char *path, const char *data, size_t len, mode_t mode)
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
static int
file_read(const char *path, size_t max, char **out)
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

static void
trim(char *s)
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
static char *
next_token(char **cur, const char *delims)
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

/* Appends n bytes of s to the growing NUL-terminated string *b (*len used, *cap allocated). */
static void
out_append(char **b, size_t *len, size_t *cap, const char *s, size_t n)
{
    if (*len + n + 1 > *cap) {
        *cap = (*len + n + 1) * 2;
        *b = xrealloc(*b, *cap);
    }
    memcpy(*b + *len, s, n);
    *len += n;
    (*b)[*len] = '\0';
}

static void
secret_free(char *s)
{
    if (s != NULL) {
        explicit_bzero(s, strlen(s));
        free(s);
    }
}

/* exp of a JWT (payload claim), or 0 when s is not a JWT or has none. */
static int64_t
jwt_exp(const char *s)
{
    const char *p1 = strchr(s, '.'), *p2 = p1 ? strchr(p1 + 1, '.') : NULL;
    unsigned char *raw = NULL;
    size_t raw_len = 0;
    json_t *j;
    int64_t exp = 0;

    if (p2 == NULL || b64url_decode(p1 + 1, (size_t)(p2 - p1 - 1), &raw, &raw_len) != 0)
        return 0;
    j = json_loadb((const char *)raw, raw_len, 0, NULL);
    if (json_is_integer(json_object_get(j, "exp")))
        exp = json_integer_value(json_object_get(j, "exp"));
    json_decref(j);
    free(raw);
    return exp;
}

int
cmd_token_load(char **token)
{
    const char *env = getenv("AIRLOCK_TOKEN");
    char *path = NULL, *t = NULL;
    int64_t exp;
    int r;

    *token = NULL;
    if (env != NULL && env[0] != '\0') {
        t = xstrdup(env);
    } else {
        path = config_path("token");
        r = file_read(path, TOKEN_FILE_MAX, &t);
        free(path);
        if (r != 0)
            return r == ERR_NOT_FOUND ? ERR_NOT_FOUND : ERR_SYSTEM;
    }
    trim(t);
    if (t[0] == '\0') {
        free(t);
        return ERR_NOT_FOUND;
    }
    exp = jwt_exp(t);
    if (exp != 0 && exp <= time_now()) {
        secret_free(t);
        return ERR_AUTH;
    }
    *token = t;
    return 0;
}

/* The token, or a message and NULL. */
static char *
need_token(void)
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
static char *
server_url(const char *server)
{
    char *path, *s = NULL;

    if (server != NULL && server[0] != '\0')
        return xstrdup(server);
    path = config_path("server");
    if (file_read(path, 4096, &s) == 0) {
        trim(s);
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
static int
http_call(const char *method, const char *url, const char *bearer, const char *content_type,
          const char *body, long *status, json_t **out, char *err, size_t err_len)
{
    char *auth = bearer ? xasprintf("Authorization: Bearer %s", bearer) : NULL;
    int r = httpc_call(method, url, auth, content_type, body, getenv("AIRLOCK_CA_FILE"),
                       HTTP_TIMEOUT_S * 1000L, status, out, err, err_len);

    secret_free(auth);
    return r;
}

static int
http_json(const char *method, const char *url, const char *bearer, json_t *body, long *status,
          json_t **out, char *err, size_t err_len)
{
    char *text = body ? json_dumps(body, JSON_COMPACT) : NULL;
    int r = http_call(method, url, bearer, "application/json", text, status, out, err, err_len);

    free(text);
    return r;
}

/*
 * Prints why the server refused and returns the exit code: 1, or 3 when
 * the answer did not come from airlockd at all (a gateway error without
 * our envelope).
 */
static int
refused(const char *what, long status, json_t *j)
{
    const char *msg = json_string_value(json_object_get(j, "error"));

    if (msg != NULL) {
        fprintf(stderr, "airlock: %s: %s\n", what, msg);
        return CLIENT_EXIT_REFUSED;
    }
    fprintf(stderr, "airlock: %s: the server answered HTTP %ld\n", what, status);
    return status >= 500 ? CLIENT_EXIT_UNREACHABLE : CLIENT_EXIT_REFUSED;
}

static char *
url_escape(const char *s)
{
    char *e = curl_easy_escape(NULL, s, 0), *r;

    r = xstrdup(e ? e : "");
    curl_free(e);
    return r;
}

/* ---------------------------------------------------------------- login */

static int
save_login(const char *server, const char *token)
{
    char *tpath = config_path("token"), *spath = config_path("server"), *line;
    int r;

    line = xasprintf("%s\n", token);
    r = file_write(tpath, line, strlen(line), 0600);
    secret_free(line);
    if (r == 0) {
        line = xasprintf("%s\n", server);
        r = file_write(spath, line, strlen(line), 0600);
        free(line);
    }
    free(tpath);
    free(spath);
    return r;
}

/* GET /api/v1/me with token. 0 with a new *user, or an exit code (message printed when quiet=0). */
static int
whoami(const char *server, const char *token, char **user, int quiet)
{
    char *url = xasprintf("%s/api/v1/me", server), err[512];
    json_t *j = NULL;
    long status;
    int code;

    *user = NULL;
    if (http_call("GET", url, token, NULL, NULL, &status, &j, err, sizeof(err)) != 0) {
        if (!quiet)
            fprintf(stderr, "airlock: %s\n", err);
        code = CLIENT_EXIT_UNREACHABLE;
    } else if (status != 200) {
        code = quiet ? CLIENT_EXIT_REFUSED : refused("login", status, j);
    } else {
        const char *u = json_string_value(json_object_get(j, "user"));

        *user = xstrdup(u ? u : "?");
        code = 0;
    }
    json_decref(j);
    free(url);
    return code;
}

static int
login_dev(const char *server, const char *user, const char *email, const char *groups)
{
    char *url = xasprintf("%s/api/v1/dev/token", server), err[512];
    json_t *body = json_pack("{s:s}", "user", user), *garr = json_array(), *j = NULL;
    const char *tok, *exp;
    long status;
    int code;

    if (email != NULL)
        json_object_set_new(body, "email", json_string(email));
    if (groups != NULL && groups[0] != '\0') {
        char *g = xstrdup(groups), *cur = g, *p;

        while ((p = next_token(&cur, ",")) != NULL) {
            trim(p);
            if (p[0] != '\0')
                json_array_append_new(garr, json_string(p));
        }
        free(g);
    }
    json_object_set_new(body, "groups", garr);
    if (http_json("POST", url, NULL, body, &status, &j, err, sizeof(err)) != 0) {
        fprintf(stderr, "airlock: %s\n", err);
        code = CLIENT_EXIT_UNREACHABLE;
        goto out;
    }
    if (status != 200 && status != 201) {
        code = status == 404 ? (fprintf(stderr, "airlock: login: the server is not in development"
                                                " mode (no /api/v1/dev/token)\n"),
                                CLIENT_EXIT_REFUSED)
                             : refused("login", status, j);
        goto out;
    }
    tok = json_string_value(json_object_get(j, "token"));
    exp = json_string_value(json_object_get(j, "expiresAt"));
    if (tok == NULL) {
        fprintf(stderr, "airlock: login: no token in the server's answer\n");
        code = CLIENT_EXIT_REFUSED;
        goto out;
    }
    if (save_login(server, tok) != 0) {
        code = CLIENT_EXIT_REFUSED;
        goto out;
    }
    fprintf(stderr, "Logged in to %s as %s (development token%s%s).\n", server, user,
            exp ? ", expires " : "", exp ? exp : "");
    code = 0;
out:
    json_decref(body);
    json_decref(j);
    free(url);
    return code;
}

static int
login_token_file(const char *server, const char *file)
{
    char *t = NULL, *user = NULL;
    int r = file_read(file, TOKEN_FILE_MAX, &t), code;

    if (r != 0) {
        fprintf(stderr, "airlock: cannot read %s: %s\n", file,
                r == ERR_NOT_FOUND ? "no such file" : strerror(errno));
        return CLIENT_EXIT_USAGE;
    }
    trim(t);
    if (t[0] == '\0') {
        fprintf(stderr, "airlock: %s is empty\n", file);
        secret_free(t);
        return CLIENT_EXIT_USAGE;
    }
    code = whoami(server, t, &user, 0);
    if (code == CLIENT_EXIT_REFUSED) {
        secret_free(t);
        return code;
    }
    if (save_login(server, t) != 0) {
        secret_free(t);
        return CLIENT_EXIT_REFUSED;
    }
    if (user != NULL)
        fprintf(stderr, "Logged in to %s as %s.\n", server, user);
    else
        fprintf(stderr, "Token saved; the server could not be asked who it belongs to.\n");
    free(user);
    secret_free(t);
    return 0;
}

/* application/x-www-form-urlencoded from name, value pairs (NULL-terminated). */
static char *
form(const char *first, ...)
{
    va_list ap;
    char *out = xstrdup(""), *tmp;
    const char *k;

    va_start(ap, first);
    for (k = first; k != NULL; k = va_arg(ap, const char *)) {
        const char *v = va_arg(ap, const char *);
        char *ek = url_escape(k), *ev = url_escape(v ? v : "");

        tmp = xasprintf("%s%s%s=%s", out, out[0] ? "&" : "", ek, ev);
        free(out);
        free(ek);
        secret_free(ev);
        out = tmp;
    }
    va_end(ap);
    return out;
}

/* Sleeps s seconds (interrupted early by a signal: the caller loops anyway). */
static void
nap(long s)
{
    struct timespec ts = {s, 0};

    nanosleep(&ts, NULL);
}

/*
 * The scopes to ask for: AIRLOCK_OIDC_SCOPE when set, else the server's
 * oidc.scopes (the issuer's uiScopes) joined with spaces, else the default.
 * New string.
 */
static char *
login_scope(const json_t *cfg)
{
    const json_t *arr = json_object_get(json_object_get(cfg, "oidc"), "scopes"), *v;
    const char *env = getenv("AIRLOCK_OIDC_SCOPE");
    char *out = NULL, *next;
    size_t i;

    if (env != NULL && env[0] != '\0')
        return xstrdup(env);
    json_array_foreach(arr, i, v) {
        if (!json_is_string(v))
            continue;
        next = out ? xasprintf("%s %s", out, json_string_value(v)) : xstrdup(json_string_value(v));
        free(out);
        out = next;
    }
    return out ? out : xstrdup("openid profile email");
}

/*
 * RFC 8628: device authorization, then polling the token endpoint. On
 * success *access and *id receive new strings (either may be NULL).
 */
static int
device_flow(const char *device_ep, const char *token_ep, const char *client_id, const char *scope,
            char **access, char **id)
{
    char *body = form("client_id", client_id, "scope", scope, (const char *)NULL);
    char err[512], *device_code = NULL;
    json_t *j = NULL;
    long status, interval = 5;
    int64_t deadline;
    int code = CLIENT_EXIT_REFUSED, failures = 0;
    const char *uri, *uri_full, *user_code;

    *access = *id = NULL;
    if (http_call("POST", device_ep, NULL, "application/x-www-form-urlencoded", body, &status, &j,
                  err, sizeof(err)) != 0) {
        fprintf(stderr, "airlock: %s\n", err);
        code = CLIENT_EXIT_UNREACHABLE;
        goto out;
    }
    if (status != 200 || json_string_value(json_object_get(j, "device_code")) == NULL) {
        const char *e = json_string_value(json_object_get(j, "error_description"));

        if (e == NULL)
            e = json_string_value(json_object_get(j, "error"));
        fprintf(stderr, "airlock: login: the identity provider refused the device login: %s\n",
                e ? e : "no device code");
        goto out;
    }
    device_code = xstrdup(json_string_value(json_object_get(j, "device_code")));
    user_code = json_string_value(json_object_get(j, "user_code"));
    uri = json_string_value(json_object_get(j, "verification_uri"));
    if (uri == NULL)
        uri = json_string_value(json_object_get(j, "verification_url")); /* Google */
    uri_full = json_string_value(json_object_get(j, "verification_uri_complete"));
    if (json_is_integer(json_object_get(j, "interval")))
        interval = (long)json_integer_value(json_object_get(j, "interval"));
    if (interval < 1)
        interval = 1;
    deadline = time_now() + (json_is_integer(json_object_get(j, "expires_in"))
                                 ? json_integer_value(json_object_get(j, "expires_in"))
                                 : 600);
    fprintf(stderr, "To log in, open %s\nand enter the code: %s\n", uri ? uri : "(no URL given)",
            user_code ? user_code : "(none)");
    if (uri_full != NULL)
        fprintf(stderr, "(or open %s)\n", uri_full);
    fprintf(stderr, "Waiting for you to finish in the browser...\n");
    json_decref(j);
    j = NULL;
    free(body);
    body = form("grant_type", "urn:ietf:params:oauth:grant-type:device_code", "device_code",
                device_code, "client_id", client_id, (const char *)NULL);
    for (;;) {
        const char *e;

        nap(interval);
        if (time_now() > deadline) {
            fprintf(stderr, "airlock: login: the code expired; run 'airlock login' again\n");
            goto out;
        }
        json_decref(j);
        j = NULL;
        if (http_call("POST", token_ep, NULL, "application/x-www-form-urlencoded", body, &status,
                      &j, err, sizeof(err)) != 0) {
            if (++failures >= 5) {
                fprintf(stderr, "airlock: %s\n", err);
                code = CLIENT_EXIT_UNREACHABLE;
                goto out;
            }
            continue;
        }
        failures = 0;
        if (status == 200) {
            const char *a = json_string_value(json_object_get(j, "access_token"));
            const char *i = json_string_value(json_object_get(j, "id_token"));

            *access = a ? xstrdup(a) : NULL;
            *id = i ? xstrdup(i) : NULL;
            code = 0;
            goto out;
        }
        e = json_string_value(json_object_get(j, "error"));
        if (e != NULL && strcmp(e, "authorization_pending") == 0)
            continue;
        if (e != NULL && strcmp(e, "slow_down") == 0) {
            interval += 5;
            continue;
        }
        if (e != NULL && strcmp(e, "access_denied") == 0)
            fprintf(stderr, "airlock: login: the login was denied\n");
        else if (e != NULL && strcmp(e, "expired_token") == 0)
            fprintf(stderr, "airlock: login: the code expired; run 'airlock login' again\n");
        else
            fprintf(stderr, "airlock: login: the identity provider said: %s\n",
                    json_string_value(json_object_get(j, "error_description"))
                        ? json_string_value(json_object_get(j, "error_description"))
                        : (e ? e : "an unexpected answer"));
        goto out;
    }
out:
    json_decref(j);
    secret_free(body);
    secret_free(device_code);
    return code;
}

static int
login_device(const char *server)
{
    char *url = xasprintf("%s/api/v1/config", server), err[512], *disc_url = NULL;
    char *access = NULL, *id = NULL, *user = NULL, *device_ep = NULL, *token_ep = NULL;
    char *scope = NULL;
    const char *issuer, *client_id, *tries[2];
    json_t *cfg = NULL, *disc = NULL;
    long status;
    int code;

    if (http_call("GET", url, NULL, NULL, NULL, &status, &cfg, err, sizeof(err)) != 0) {
        fprintf(stderr, "airlock: %s\n", err);
        code = CLIENT_EXIT_UNREACHABLE;
        goto out;
    }
    if (status != 200) {
        code = refused("login", status, cfg);
        goto out;
    }
    issuer = json_string_value(json_object_get(json_object_get(cfg, "oidc"), "issuer"));
    client_id = json_string_value(json_object_get(json_object_get(cfg, "oidc"), "clientId"));
    if (issuer == NULL || client_id == NULL) {
        if (json_is_true(json_object_get(cfg, "dev")))
            fprintf(stderr,
                    "airlock: login: %s runs in development mode: use "
                    "'airlock login --dev --user NAME [--groups G,...]'\n",
                    server);
        else
            fprintf(stderr, "airlock: login: %s names no OIDC issuer for people\n", server);
        code = CLIENT_EXIT_REFUSED;
        goto out;
    }
    {
        size_t il = strlen(issuer);

        while (il > 0 && issuer[il - 1] == '/')
            il--;
        disc_url = xasprintf("%.*s/.well-known/openid-configuration", (int)il, issuer);
    }
    if (http_call("GET", disc_url, NULL, NULL, NULL, &status, &disc, err, sizeof(err)) != 0) {
        fprintf(stderr, "airlock: login: the identity provider: %s\n", err);
        code = CLIENT_EXIT_UNREACHABLE;
        goto out;
    }
    if (status != 200 ||
        json_string_value(json_object_get(disc, "device_authorization_endpoint")) == NULL ||
        json_string_value(json_object_get(disc, "token_endpoint")) == NULL) {
        fprintf(stderr,
                "airlock: login: %s offers no device login (no "
                "device_authorization_endpoint); use --token-file\n",
                issuer);
        code = CLIENT_EXIT_REFUSED;
        goto out;
    }
    device_ep = xstrdup(json_string_value(json_object_get(disc, "device_authorization_endpoint")));
    token_ep = xstrdup(json_string_value(json_object_get(disc, "token_endpoint")));
    scope = login_scope(cfg);
    if ((code = device_flow(device_ep, token_ep, client_id, scope, &access, &id)) != 0)
        goto out;
    /* Which token does airlockd accept? The access token when it is a JWT, else the ID token. */
    tries[0] = access && strchr(access, '.') ? access : id;
    tries[1] = tries[0] == access ? id : NULL;
    code = CLIENT_EXIT_REFUSED;
    for (int i = 0; i < 2 && code != 0; i++) {
        if (tries[i] == NULL)
            continue;
        code = whoami(server, tries[i], &user, i == 0 && tries[1] != NULL);
        if (code == 0 && save_login(server, tries[i]) != 0)
            code = CLIENT_EXIT_REFUSED;
    }
    if (code == 0)
        fprintf(stderr, "Logged in to %s as %s.\n", server, user);
    else if (tries[0] == NULL)
        fprintf(stderr, "airlock: login: the identity provider returned no token\n");
out:
    json_decref(cfg);
    json_decref(disc);
    free(url);
    free(disc_url);
    free(device_ep);
    free(token_ep);
    free(scope);
    secret_free(access);
    secret_free(id);
    free(user);
    return code;
}

int
cmd_login(const char *server, int argc, char **argv)
{
    static const struct option opts[] = {{"dev", no_argument, NULL, 'd'},
                                         {"user", required_argument, NULL, 'u'},
                                         {"email", required_argument, NULL, 'e'},
                                         {"groups", required_argument, NULL, 'g'},
                                         {"token-file", required_argument, NULL, 't'},
                                         {"help", no_argument, NULL, 'h'},
                                         {NULL, 0, NULL, 0}};
    const char *user = NULL, *email = NULL, *groups = NULL, *file = NULL;
    char *srv = NULL;
    int c, dev = 0, code;

    optind = 0;
    while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        switch (c) {
        case 'd':
            dev = 1;
            break;
        case 'u':
            user = optarg;
            break;
        case 'e':
            email = optarg;
            break;
        case 'g':
            groups = optarg;
            break;
        case 't':
            file = optarg;
            break;
        case 'h':
            printf("usage: airlock login [--dev --user U [--email E] [--groups G,...]] "
                   "[--token-file F]\n");
            return 0;
        default:
            goto usage;
        }
    }
    if (optind != argc || (dev && user == NULL) || (!dev && (user || email || groups)) ||
        (dev && file))
        goto usage;
    if ((srv = server_url(server)) == NULL)
        return CLIENT_EXIT_USAGE;
    if (dev)
        code = login_dev(srv, user, email, groups);
    else if (file != NULL)
        code = login_token_file(srv, file);
    else
        code = login_device(srv);
    free(srv);
    return code;
usage:
    fprintf(stderr, "usage: airlock login [--dev --user U [--email E] [--groups G,...]] "
                    "[--token-file F]\n");
    return CLIENT_EXIT_USAGE;
}

/* ------------------------------------------------------------- sessions */

/* "in 1h5m", "3m ago", or "-". */
static void
relative(const char *when, char *out, size_t out_len)
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

static const char *
str_at(json_t *s, const char *obj, const char *key)
{
    const char *v = json_string_value(json_object_get(obj ? json_object_get(s, obj) : s, key));

    return v ? v : "-";
}

static void
print_table(json_t *sessions)
{
    enum { NAME, STATE, TEMPLATE, AGENT, REQUESTER, EXPIRES, N_COLS };
    static const char *const heads[N_COLS] = {"NAME",  "STATE",     "TEMPLATE",
                                              "AGENT", "REQUESTER", "EXPIRES"};
    size_t n = json_array_size(sessions), width[N_COLS], i;
    char(*exp)[32] = xcalloc(n ? n : 1, sizeof(*exp));

    for (int k = 0; k < N_COLS; k++)
        width[k] = strlen(heads[k]);
    for (i = 0; i < n; i++) {
        json_t *s = json_array_get(sessions, i);
        const char *v[N_COLS] = {str_at(s, NULL, "name"),          str_at(s, "status", "state"),
                                 str_at(s, "spec", "template"),    str_at(s, "spec", "agent"),
                                 str_at(s, "spec", "requestedBy"), exp[i]};

        relative(json_string_value(json_object_get(json_object_get(s, "status"), "expiresAt")),
                 exp[i], sizeof(exp[i]));
        for (int k = 0; k < N_COLS; k++)
            if (strlen(v[k]) > width[k])
                width[k] = strlen(v[k]);
    }
    for (int k = 0; k < N_COLS; k++)
        printf("%-*s%s", k == N_COLS - 1 ? 0 : (int)width[k], heads[k],
               k == N_COLS - 1 ? "\n" : "  ");
    for (i = 0; i < n; i++) {
        json_t *s = json_array_get(sessions, i);
        const char *v[N_COLS] = {str_at(s, NULL, "name"),          str_at(s, "status", "state"),
                                 str_at(s, "spec", "template"),    str_at(s, "spec", "agent"),
                                 str_at(s, "spec", "requestedBy"), exp[i]};

        for (int k = 0; k < N_COLS; k++)
            printf("%-*s%s", k == N_COLS - 1 ? 0 : (int)width[k], v[k],
                   k == N_COLS - 1 ? "\n" : "  ");
    }
    free(exp);
}

int
cmd_sessions(const char *server, int argc, char **argv)
{
    static const struct option opts[] = {{"state", required_argument, NULL, 's'},
                                         {"mine", no_argument, NULL, 'm'},
                                         {"json", no_argument, NULL, 'j'},
                                         {"help", no_argument, NULL, 'h'},
                                         {NULL, 0, NULL, 0}};
    const char *state = NULL;
    char *srv = NULL, *token = NULL, *cursor = NULL, err[512];
    json_t *all = json_array(), *j = NULL, *total = NULL;
    int c, mine = 0, as_json = 0, code = CLIENT_EXIT_USAGE;

    optind = 0;
    while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        switch (c) {
        case 's':
            state = optarg;
            break;
        case 'm':
            mine = 1;
            break;
        case 'j':
            as_json = 1;
            break;
        case 'h':
            printf("usage: airlock sessions [--state S,...] [--mine] [--json]\n");
            code = 0;
            goto out;
        default:
            goto usage;
        }
    }
    if (optind != argc)
        goto usage;
    if ((srv = server_url(server)) == NULL)
        goto out;
    if ((token = need_token()) == NULL) {
        code = CLIENT_EXIT_REFUSED;
        goto out;
    }
    for (int page = 0; page < SESSIONS_MAX_PAGES; page++) {
        char *st = state ? url_escape(state) : NULL, *cu = cursor ? url_escape(cursor) : NULL;
        char *url = xasprintf("%s/api/v1/debug-sessions?limit=%d%s%s%s%s%s", srv, SESSIONS_PAGE,
                              st ? "&state=" : "", st ? st : "", mine ? "&mine=true" : "",
                              cu ? "&cursor=" : "", cu ? cu : "");
        long status;
        int r = http_call("GET", url, token, NULL, NULL, &status, &j, err, sizeof(err));

        free(st);
        free(cu);
        free(url);
        if (r != 0) {
            fprintf(stderr, "airlock: %s\n", err);
            code = CLIENT_EXIT_UNREACHABLE;
            goto out;
        }
        if (status != 200 || !json_is_array(json_object_get(j, "sessions"))) {
            code = refused("sessions", status, j);
            goto out;
        }
        json_array_extend(all, json_object_get(j, "sessions"));
        if (total == NULL)
            total = json_incref(json_object_get(j, "total"));
        free(cursor);
        cursor = json_string_value(json_object_get(j, "nextCursor"))
                     ? xstrdup(json_string_value(json_object_get(j, "nextCursor")))
                     : NULL;
        json_decref(j);
        j = NULL;
        if (cursor == NULL || cursor[0] == '\0')
            break;
    }
    if (as_json) {
        json_t *o =
            json_pack("{s:O, s:o}", "sessions", all, "total",
                      total ? json_incref(total) : json_integer((json_int_t)json_array_size(all)));

        json_dumpf(o, stdout, JSON_INDENT(2));
        putchar('\n');
        json_decref(o);
    } else if (json_array_size(all) == 0) {
        fprintf(stderr, "No sessions.\n");
    } else {
        print_table(all);
    }
    code = 0;
    goto out;
usage:
    fprintf(stderr, "usage: airlock sessions [--state S,...] [--mine] [--json]\n");
    code = CLIENT_EXIT_USAGE;
out:
    json_decref(all);
    json_decref(j);
    json_decref(total);
    free(srv);
    free(cursor);
    secret_free(token);
    return code;
}

/* ----------------------------------------------------------------- join */

static int
exists(const char *path)
{
    struct stat st;

    return stat(path, &st) == 0 && S_ISREG(st.st_mode);
}

/*
 * Resolves --key (or the default keys) into the public key file and, when
 * one sits beside it, the private key. 0 or an exit code (message printed).
 */
static int
find_key(const char *key, char **pub, char **priv)
{
    static const char *const defaults[] = {"id_ed25519", "id_ecdsa", "id_rsa"};
    size_t n;

    *pub = *priv = NULL;
    if (key != NULL) {
        n = strlen(key);
        if (n > 4 && strcmp(key + n - 4, ".pub") == 0) {
            *pub = xstrdup(key);
            *priv = xstrndup(key, n - 4);
        } else {
            *pub = xasprintf("%s.pub", key);
            *priv = xstrdup(key);
        }
        if (!exists(*pub)) {
            fprintf(stderr, "airlock: join: no public key at %s\n", *pub);
            free(*pub);
            free(*priv);
            *pub = *priv = NULL;
            return CLIENT_EXIT_USAGE;
        }
    } else {
        const char *home = getenv("HOME");

        for (size_t i = 0; i < sizeof(defaults) / sizeof(defaults[0]) && *pub == NULL; i++) {
            char *p = xasprintf("%s/.ssh/%s.pub", home ? home : ".", defaults[i]);

            if (exists(p)) {
                *pub = p;
                *priv = xasprintf("%s/.ssh/%s", home ? home : ".", defaults[i]);
            } else {
                free(p);
            }
        }
        if (*pub == NULL) {
            fprintf(stderr, "airlock: join: no SSH key in ~/.ssh (id_ed25519.pub): create one "
                            "with 'ssh-keygen -t ed25519' or pass --key FILE\n");
            return CLIENT_EXIT_USAGE;
        }
    }
    if (!exists(*priv)) {
        free(*priv);
        *priv = NULL;
    }
    return 0;
}

/* The first two fields ("type base64") of a public key file, as a new string. */
static char *
read_pubkey(const char *path)
{
    char *text = NULL, *cur, *line, *type, *b64, *out = NULL;

    if (file_read(path, 64 * 1024, &text) != 0)
        return NULL;
    cur = text;
    while ((line = next_token(&cur, "\n")) != NULL) {
        char *fields = line;

        trim(line);
        if (line[0] == '\0' || line[0] == '#')
            continue;
        type = next_token(&fields, " \t");
        b64 = next_token(&fields, " \t");
        if (type != NULL && b64 != NULL)
            out = xasprintf("%s %s", type, b64);
        break;
    }
    free(text);
    return out;
}

/*
 * Replaces the lines for the hosts named in lines (ssh known_hosts format,
 * one or more lines) in the known_hosts file at path. 0 or ERR_SYSTEM.
 */
static int
known_hosts_update(const char *path, const char *lines)
{
    char *old = NULL, *copy = xstrdup(lines), *cur = copy, *l, *out = NULL;
    char **hosts = NULL;
    size_t n_hosts = 0, len = 0, cap = 0;
    int r;

    while ((l = next_token(&cur, "\n")) != NULL) {
        size_t hl = strcspn(l, " \t");

        if (hl == 0)
            continue;
        hosts = xrealloc(hosts, (n_hosts + 1) * sizeof(*hosts));
        hosts[n_hosts++] = xstrndup(l, hl);
    }
    out_append(&out, &len, &cap, "", 0);
    if (file_read(path, 16u << 20, &old) == 0) {
        cur = old;
        while ((l = next_token(&cur, "\n")) != NULL) {
            size_t hl = strcspn(l, " \t");
            int drop = 0;

            for (size_t i = 0; i < n_hosts && !drop; i++)
                drop = hl == strlen(hosts[i]) && strncmp(l, hosts[i], hl) == 0;
            if (drop)
                continue;
            out_append(&out, &len, &cap, l, strlen(l));
            out_append(&out, &len, &cap, "\n", 1);
        }
    }
    out_append(&out, &len, &cap, lines, strlen(lines));
    if (len > 0 && out[len - 1] != '\n')
        out_append(&out, &len, &cap, "\n", 1);
    r = file_write(path, out, len, 0600);
    for (size_t i = 0; i < n_hosts; i++)
        free(hosts[i]);
    free(hosts);
    free(copy);
    free(old);
    free(out);
    return r;
}

/* s in single quotes for sh, with % doubled for ssh's ProxyCommand tokens. New string. */
static char *
quote_for_proxycommand(const char *s)
{
    size_t n = 2;
    char *out, *o;

    for (const char *p = s; *p; p++)
        n += *p == '\'' ? 4 : *p == '%' ? 2 : 1;
    out = o = xmalloc(n + 1);
    *o++ = '\'';
    for (const char *p = s; *p; p++) {
        if (*p == '\'') {
            memcpy(o, "'\\''", 4);
            o += 4;
        } else if (*p == '%') {
            *o++ = '%';
            *o++ = '%';
        } else {
            *o++ = *p;
        }
    }
    *o++ = '\'';
    *o = '\0';
    return out;
}

static char *
self_path(void)
{
    char buf[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", buf, sizeof(buf) - 1);

    if (n <= 0)
        return xstrdup("airlock");
    buf[n] = '\0';
    return xstrdup(buf);
}

int
cmd_join(const char *server, int argc, char **argv)
{
    static const struct option opts[] = {{"read-only", no_argument, NULL, 'r'},
                                         {"key", required_argument, NULL, 'k'},
                                         {"print", no_argument, NULL, 'p'},
                                         {"help", no_argument, NULL, 'h'},
                                         {NULL, 0, NULL, 0}};
    const char *key = NULL, *name, *ticket, *kh, *cmdline;
    char *srv = NULL, *token = NULL, *pub = NULL, *priv = NULL, *pubkey = NULL, *url = NULL;
    char *kh_path = NULL, *esc = NULL, err[512];
    json_t *body = NULL, *j = NULL, *attach;
    long status;
    int c, read_only = 0, print = 0, code = CLIENT_EXIT_USAGE;

    optind = 0;
    while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        switch (c) {
        case 'r':
            read_only = 1;
            break;
        case 'k':
            key = optarg;
            break;
        case 'p':
            print = 1;
            break;
        case 'h':
            printf("usage: airlock join NAME [--read-only] [--key FILE] [--print]\n");
            return 0;
        default:
            goto usage;
        }
    }
    if (optind != argc - 1)
        goto usage;
    name = argv[optind];
    if ((srv = server_url(server)) == NULL)
        goto out;
    if ((code = find_key(key, &pub, &priv)) != 0)
        goto out;
    if ((pubkey = read_pubkey(pub)) == NULL) {
        fprintf(stderr, "airlock: join: %s is not an SSH public key\n", pub);
        code = CLIENT_EXIT_USAGE;
        goto out;
    }
    if ((token = need_token()) == NULL) {
        code = CLIENT_EXIT_REFUSED;
        goto out;
    }
    esc = url_escape(name);
    url = xasprintf("%s/api/v1/debug-sessions/%s/join", srv, esc);
    body = json_pack("{s:s}", "sshPublicKey", pubkey);
    if (read_only)
        json_object_set_new(body, "role", json_string("viewer"));
    if (http_json("POST", url, token, body, &status, &j, err, sizeof(err)) != 0) {
        fprintf(stderr, "airlock: %s\n", err);
        code = CLIENT_EXIT_UNREACHABLE;
        goto out;
    }
    if (status != 200 && status != 201) {
        code = refused("join", status, j);
        goto out;
    }
    attach = json_object_get(j, "attach");
    ticket = json_string_value(json_object_get(attach, "ticket"));
    kh = json_string_value(json_object_get(attach, "knownHostsLine"));
    cmdline = json_string_value(json_object_get(attach, "command"));
    if (ticket == NULL) {
        fprintf(stderr, "airlock: join: no ticket in the server's answer\n");
        code = CLIENT_EXIT_REFUSED;
        goto out;
    }
    kh_path = config_path("known_hosts");
    if (kh != NULL && kh[0] != '\0') {
        if (known_hosts_update(kh_path, kh) != 0) {
            code = CLIENT_EXIT_REFUSED;
            goto out;
        }
    } else {
        fprintf(stderr, "airlock: join: warning: the server sent no host key to pin; ssh will "
                        "refuse the connection (StrictHostKeyChecking=yes)\n");
    }
    if (print) {
        printf("%s\n", cmdline ? cmdline : "");
        code = 0;
        goto out;
    }
    {
        char *self = self_path(), *qs = quote_for_proxycommand(self),
             *qsrv = quote_for_proxycommand(srv), *qt = quote_for_proxycommand(ticket);
        char *proxy = xasprintf("ProxyCommand=%s --server %s proxy %%n --ticket %s", qs, qsrv, qt);
        char *khopt = xasprintf("UserKnownHostsFile=%s", kh_path);
        char *args[16];
        int a = 0;

        args[a++] = "ssh";
        args[a++] = "-o";
        args[a++] = proxy;
        args[a++] = "-o";
        args[a++] = khopt;
        args[a++] = "-o";
        args[a++] = "StrictHostKeyChecking=yes";
        if (priv != NULL) {
            args[a++] = "-i";
            args[a++] = priv;
            args[a++] = "-o";
            args[a++] = "IdentitiesOnly=yes";
        }
        args[a++] = (char *)name;
        args[a] = NULL;
        fflush(NULL);
        secret_free(token);
        token = NULL;
        execvp("ssh", args);
        fprintf(stderr, "airlock: join: cannot run ssh: %s\n", strerror(errno));
        free(self);
        free(qs);
        free(qsrv);
        free(qt);
        free(proxy);
        free(khopt);
        code = CLIENT_EXIT_REFUSED;
    }
    goto out;
usage:
    fprintf(stderr, "usage: airlock join NAME [--read-only] [--key FILE] [--print]\n");
    code = CLIENT_EXIT_USAGE;
out:
    json_decref(body);
    json_decref(j);
    free(srv);
    secret_free(token);
    free(pub);
    free(priv);
    free(pubkey);
    free(url);
    free(esc);
    free(kh_path);
    return code;
}

/* ---------------------------------------------------------------- proxy */

struct proxy {
    struct ws *w;
    uint8_t *out; /* for stdout: [out_off, out_len) */
    size_t out_len, out_off, out_cap;
    int out_dead; /* stdout is gone (ssh exited) */
    int paused;
};

/* Writes what stdout takes now. */
static void
out_flush(struct proxy *px)
{
    while (px->out_off < px->out_len && !px->out_dead) {
        ssize_t n = write(STDOUT_FILENO, px->out + px->out_off, px->out_len - px->out_off);

        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            return;
        if (n <= 0) {
            px->out_dead = 1;
            return;
        }
        px->out_off += (size_t)n;
    }
    px->out_off = px->out_len = 0;
}

/* A message from the server: straight to stdout, the rest buffered. */
static void
proxy_on_msg(struct ws *w, int opcode, const uint8_t *msg, size_t len, void *ud)
{
    struct proxy *px = ud;
    size_t off = 0;

    if (opcode != WS_OP_BINARY || px->out_dead)
        return;
    while (px->out_len == px->out_off && off < len) {
        ssize_t n = write(STDOUT_FILENO, msg + off, len - off);

        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            break;
        if (n <= 0) {
            px->out_dead = 1;
            return;
        }
        off += (size_t)n;
    }
    if (off == len)
        return;
    if (px->out_off > 0) {
        memmove(px->out, px->out + px->out_off, px->out_len - px->out_off);
        px->out_len -= px->out_off;
        px->out_off = 0;
    }
    if (px->out_len + (len - off) > px->out_cap) {
        px->out_cap = (px->out_len + (len - off)) * 2;
        px->out = xrealloc(px->out, px->out_cap);
    }
    memcpy(px->out + px->out_len, msg + off, len - off);
    px->out_len += len - off;
    if (px->out_len - px->out_off >= PROXY_HWM && !px->paused) {
        ws_set_read_paused(w, 1);
        px->paused = 1;
    }
}

static const char *
close_meaning(uint16_t code)
{
    switch (code) {
    case 1001:
        return "going away";
    case 1002:
        return "protocol error";
    case 1008:
        return "policy violation";
    case 1009:
        return "message too big";
    case 1011:
        return "server or agent error (did the agent answer?)";
    default:
        return "closed";
    }
}

static int
set_nonblock(int fd, int *old)
{
    *old = fcntl(fd, F_GETFL);
    if (*old < 0)
        return -1;
    return fcntl(fd, F_SETFL, *old | O_NONBLOCK);
}

/* Runs the copy loop until either side ends. Returns the exit code. */
static int
proxy_loop(struct proxy *px)
{
    struct ws *w = px->w;
    uint8_t *buf = xmalloc(PROXY_BUF);
    int in_eof = 0, we_closed = 0, gone = 0;
    int64_t close_deadline = 0, last_ping = time_mono_ms();
    uint16_t code;

    (void)ws_pump(w, 0); /* frames that arrived with the handshake */
    while (!gone) {
        struct pollfd p[3];
        int64_t now = time_mono_ms();
        int timeout = PROXY_PING_MS;

        if (!ws_alive(w) && px->out_off == px->out_len)
            break;
        if (px->out_dead && !we_closed) {
            ws_close(w, 1000, "ssh exited");
            we_closed = 1;
            close_deadline = now + PROXY_CLOSE_WAIT_MS;
        }
        if (close_deadline != 0) {
            if (now >= close_deadline)
                break;
            timeout = (int)(close_deadline - now);
        }
        p[0] = (struct pollfd){ws_fd(w), ws_poll_events(w), 0};
        p[1] = (struct pollfd){STDIN_FILENO, 0, 0};
        if (!in_eof && !we_closed && ws_queued(w) < PROXY_HWM)
            p[1].events = POLLIN;
        else
            p[1].fd = -1;
        p[2] = (struct pollfd){px->out_off < px->out_len && !px->out_dead ? STDOUT_FILENO : -1,
                               POLLOUT, 0};
        if (poll(p, 3, timeout) < 0 && errno != EINTR)
            break;
        now = time_mono_ms();
        if (ws_pump(w, p[0].revents) != 0)
            gone = 1;
        if (p[2].revents & (POLLOUT | POLLERR | POLLHUP)) {
            out_flush(px);
            if (px->paused && px->out_len - px->out_off < PROXY_HWM / 2) {
                px->paused = 0;
                ws_set_read_paused(w, 0);
                if (!gone && ws_pump(w, 0) != 0)
                    gone = 1;
            }
        }
        if (p[1].revents & (POLLIN | POLLHUP | POLLERR)) {
            ssize_t n = read(STDIN_FILENO, buf, PROXY_BUF);

            if (n > 0) {
                if (ws_send(w, WS_OP_BINARY, buf, (size_t)n) != 0)
                    in_eof = 1;
            } else if (n == 0 || (errno != EAGAIN && errno != EINTR)) {
                in_eof = 1;
                ws_close(w, 1000, "ssh closed the connection");
                we_closed = 1;
                close_deadline = now + PROXY_CLOSE_WAIT_MS;
            }
        }
        if (!gone && ws_pump(w, 0) != 0)
            gone = 1;
        if (!we_closed && now - last_ping >= PROXY_PING_MS &&
            now - ws_last_rx_ms(w) >= PROXY_PING_MS) {
            (void)ws_ping(w);
            last_ping = now;
        }
        if (!we_closed && now - ws_last_rx_ms(w) >= PROXY_DEAD_MS) {
            fprintf(stderr, "airlock proxy: no answer from the server for %d s\n",
                    PROXY_DEAD_MS / 1000);
            free(buf);
            return CLIENT_EXIT_UNREACHABLE;
        }
    }
    /* Whatever the server sent before it closed still goes to ssh. */
    while (px->out_off < px->out_len && !px->out_dead) {
        struct pollfd p = {STDOUT_FILENO, POLLOUT, 0};

        if (poll(&p, 1, PROXY_CLOSE_WAIT_MS) <= 0)
            break;
        out_flush(px);
    }
    free(buf);
    code = ws_peer_close_code(w);
    if (we_closed || code == 1000 || code == 1001) {
        if (code == 1001 && !we_closed)
            fprintf(stderr, "airlock proxy: the server closed the connection (going away)\n");
        return 0;
    }
    if (code != 0) {
        fprintf(stderr, "airlock proxy: the server closed the connection: code %u, %s\n", code,
                close_meaning(code));
        return CLIENT_EXIT_REFUSED;
    }
    fprintf(stderr, "airlock proxy: lost the connection to the server\n");
    return CLIENT_EXIT_UNREACHABLE;
}

int
cmd_proxy(const char *server, int argc, char **argv)
{
    static const struct option opts[] = {{"ticket", required_argument, NULL, 't'},
                                         {"help", no_argument, NULL, 'h'},
                                         {NULL, 0, NULL, 0}};
    const char *ticket = NULL;
    char *srv = NULL, *bearer = NULL, *url = NULL, *esc = NULL, err[512];
    struct proxy px;
    int c, r, code = CLIENT_EXIT_USAGE, in_fl = -1, out_fl = -1;

    memset(&px, 0, sizeof(px));
    optind = 0;
    while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        switch (c) {
        case 't':
            ticket = optarg;
            break;
        case 'h':
            printf("usage: airlock proxy NAME [--ticket T]\n");
            return 0;
        default:
            goto usage;
        }
    }
    if (optind != argc - 1)
        goto usage;
    if ((srv = server_url(server)) == NULL)
        goto out;
    if (ticket != NULL && ticket[0] != '\0')
        bearer = xstrdup(ticket);
    else if ((bearer = need_token()) == NULL) {
        code = CLIENT_EXIT_REFUSED;
        goto out;
    }
    signal(SIGPIPE, SIG_IGN);
    esc = url_escape(argv[optind]);
    url = xasprintf("%s/api/v1/debug-sessions/%s/connect", srv, esc);
    r = ws_client_connect(url, bearer, getenv("AIRLOCK_CA_FILE"), PROXY_CONNECT_MS,
                          WS_DEFAULT_MAX_MSG, proxy_on_msg, &px, &px.w, err, sizeof(err));
    secret_free(bearer);
    bearer = NULL;
    if (r != 0) {
        fprintf(stderr, "airlock proxy: %s\n", err);
        code = r == ERR_UNAVAILABLE ? CLIENT_EXIT_UNREACHABLE : CLIENT_EXIT_REFUSED;
        goto out;
    }
    if (set_nonblock(STDIN_FILENO, &in_fl) != 0 || set_nonblock(STDOUT_FILENO, &out_fl) != 0) {
        fprintf(stderr, "airlock proxy: stdin/stdout: %s\n", strerror(errno));
        code = CLIENT_EXIT_USAGE;
        goto out;
    }
    code = proxy_loop(&px);
    goto out;
usage:
    fprintf(stderr, "usage: airlock proxy NAME [--ticket T]\n");
    code = CLIENT_EXIT_USAGE;
out:
    if (in_fl >= 0)
        (void)fcntl(STDIN_FILENO, F_SETFL, in_fl);
    if (out_fl >= 0)
        (void)fcntl(STDOUT_FILENO, F_SETFL, out_fl);
    ws_free(px.w);
    free(px.out);
    free(srv);
    secret_free(bearer);
    free(url);
    free(esc);
    return code;
}
