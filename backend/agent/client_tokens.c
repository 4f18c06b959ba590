/*
 * The person's tokens, cached per server and user (client.h), and
 * `airlock whoami`:
 *
 *   ~/.config/airlock/tokens/<host>-<port>/users/<user>   a token (0600)
 *   ~/.config/airlock/tokens/<host>-<port>/active         the active user's name
 *
 * (directories 0700). A login saves its token under its user and makes it
 * the active one, so logging in as someone else leaves the others' tokens
 * in place: `airlock --as erin agent ...` (or AIRLOCK_USER=erin) keeps using
 * erin's after alice logs in. The old single ~/.config/airlock/token is read
 * when the cache has nothing for the server (migration).
 */
#include <dirent.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <curl/curl.h>
#include <jansson.h>

#include "client.h"
#include "client_int.h"
#include "err.h"
#include "util.h"
#include "xmalloc.h"

#define USER_NAME_MAX 256

static struct {
    const char *server; /* --server / AIRLOCK_SERVER, or NULL: the saved one */
    const char *as;     /* --as / AIRLOCK_USER, or NULL: the active one */
} ctx;

void
client_identity_set(const char *server, const char *as)
{
    ctx.server = server;
    ctx.as = as != NULL && as[0] != '\0' ? as : NULL;
}

/* "host-port" of an http(s) URL, percent-escaped for a file name. New string or NULL. */
static char *
server_dir_name(const char *url)
{
    const char *h = strstr(url, "://"), *end, *colon;
    char *hp, *esc;
    int https = strncmp(url, "https://", 8) == 0;

    if (h == NULL)
        return NULL;
    h += 3;
    end = h + strcspn(h, "/?#");
    colon = NULL;
    for (const char *p = h; p < end; p++)
        if (*p == ':')
            colon = p;
    if (colon != NULL && memchr(colon, ']', (size_t)(end - colon)) != NULL)
        colon = NULL; /* an IPv6 literal without a port */
    if (colon != NULL)
        hp = xasprintf("%.*s-%.*s", (int)(colon - h), h, (int)(end - colon - 1), colon + 1);
    else
        hp = xasprintf("%.*s-%s", (int)(end - h), h, https ? "443" : "80");
    for (char *p = hp; *p; p++)
        if (*p >= 'A' && *p <= 'Z')
            *p = (char)(*p - 'A' + 'a');
    esc = client_url_escape(hp);
    free(hp);
    return esc;
}

/* ~/.config/airlock/tokens/<host-port>[/sub] (directories made 0700). New string or NULL. */
static char *
server_dir(const char *server, const char *sub)
{
    char *tokens = client_config_path("tokens"), *name = server_dir_name(server), *d, *p;

    if (name == NULL) {
        free(tokens);
        return NULL;
    }
    (void)mkdir(tokens, 0700);
    d = xasprintf("%s/%s", tokens, name);
    (void)mkdir(d, 0700);
    if (sub != NULL) {
        p = xasprintf("%s/%s", d, sub);
        (void)mkdir(p, 0700);
        free(d);
        d = p;
    }
    free(tokens);
    free(name);
    return d;
}

/* The file name for user: escaped, never "." or "..". New string. */
static char *
user_file_name(const char *user)
{
    char *esc = client_url_escape(user), *r;

    if (esc[0] != '.')
        return esc;
    r = xasprintf("%%2E%s", esc + 1);
    free(esc);
    return r;
}

/* The server in use: --server, else the saved one (no message). New string or NULL. */
static char *
current_server(void)
{
    char *path, *s = NULL;

    if (ctx.server != NULL)
        return xstrdup(ctx.server);
    path = client_config_path("server");
    if (client_file_read(path, 4096, &s) == 0)
        client_trim(s);
    free(path);
    if (s != NULL && s[0] == '\0') {
        free(s);
        s = NULL;
    }
    return s;
}

/* The user whose token to use on server: --as, else the active pointer. New string or NULL. */
static char *
chosen_user(const char *server)
{
    char *d, *path, *u = NULL;

    if (ctx.as != NULL)
        return xstrdup(ctx.as);
    if ((d = server_dir(server, NULL)) == NULL)
        return NULL;
    path = xasprintf("%s/active", d);
    if (client_file_read(path, USER_NAME_MAX, &u) == 0)
        client_trim(u);
    free(path);
    free(d);
    if (u != NULL && u[0] == '\0') {
        free(u);
        u = NULL;
    }
    return u;
}

void
client_agent_identity(const char *agent)
{
    static char who[USER_NAME_MAX + 1];
    char *server = current_server(), *d = NULL, *fname, *path = NULL, *u = NULL;

    if (server == NULL || (d = server_dir(server, "agents")) == NULL)
        goto out;
    fname = user_file_name(agent);
    path = xasprintf("%s/%s", d, fname);
    free(fname);
    if (ctx.as == NULL && client_file_read(path, USER_NAME_MAX, &u) == 0) {
        client_trim(u);
        if (u[0] != '\0') {
            snprintf(who, sizeof(who), "%s", u);
            ctx.as = who;
        }
    } else if ((u = chosen_user(server)) != NULL) {
        (void)client_file_write(path, u, strlen(u), 0600);
    }
out:
    free(u);
    free(path);
    free(d);
    free(server);
}

int
client_token_save(const char *server, const char *user, const char *token)
{
    char *users = server_dir(server, "users"), *d = server_dir(server, NULL);
    char *fname = user_file_name(user), *path, *line, *spath = client_config_path("server");
    int r = ERR_SYSTEM;

    if (users == NULL || d == NULL) {
        fprintf(stderr, "airlock: login: '%s' is not an http(s) URL\n", server);
        goto out;
    }
    path = xasprintf("%s/%s", users, fname);
    line = xasprintf("%s\n", token);
    r = client_file_write(path, line, strlen(line), 0600);
    client_secret_free(line);
    free(path);
    if (r == 0) {
        path = xasprintf("%s/active", d);
        line = xasprintf("%s\n", user);
        r = client_file_write(path, line, strlen(line), 0600);
        free(line);
        free(path);
    }
    if (r == 0) {
        line = xasprintf("%s\n", server);
        r = client_file_write(spath, line, strlen(line), 0600);
        free(line);
    }
out:
    free(users);
    free(d);
    free(fname);
    free(spath);
    return r;
}

/*
 * The cached token to use (new string) and where it came from (*src, a new
 * string naming the file), or NULL when there is none.
 */
static char *
token_read_cached(char **src)
{
    char *server = current_server(), *user = NULL, *users = NULL, *fname, *path, *t = NULL;

    *src = NULL;
    if (server != NULL && (user = chosen_user(server)) != NULL &&
        (users = server_dir(server, "users")) != NULL) {
        fname = user_file_name(user);
        path = xasprintf("%s/%s", users, fname);
        free(fname);
        if (client_file_read(path, CLIENT_TOKEN_FILE_MAX, &t) == 0)
            *src = path;
        else
            free(path);
    }
    if (t == NULL && ctx.as == NULL) { /* the old single file */
        path = client_config_path("token");
        if (client_file_read(path, CLIENT_TOKEN_FILE_MAX, &t) == 0)
            *src = path;
        else
            free(path);
    }
    free(server);
    free(user);
    free(users);
    return t;
}

int
client_token_find(char **token, char **src)
{
    const char *env = getenv("AIRLOCK_TOKEN");

    *token = NULL;
    *src = NULL;
    if (env != NULL && env[0] != '\0') {
        *token = xstrdup(env);
        *src = xstrdup("$AIRLOCK_TOKEN");
        return 0;
    }
    if ((*token = token_read_cached(src)) == NULL)
        return ERR_NOT_FOUND;
    return 0;
}

static int
str_cmp(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* "alice (active), erin": the identities cached for server, sorted. New string. */
static char *
cached_users(const char *server, json_t *arr)
{
    char *users = server_dir(server, "users"), *active = chosen_user(server), **names = NULL;
    char *out = xstrdup(""), *tmp;
    size_t n = 0;
    DIR *dir;
    struct dirent *e;

    if (users != NULL && (dir = opendir(users)) != NULL) {
        while ((e = readdir(dir)) != NULL) {
            char *u;

            if (e->d_name[0] == '.' || strstr(e->d_name, ".tmp.") != NULL)
                continue;
            u = curl_easy_unescape(NULL, e->d_name, 0, NULL);
            names = xrealloc(names, (n + 1) * sizeof(*names));
            names[n++] = xstrdup(u ? u : e->d_name);
            curl_free(u);
        }
        closedir(dir);
    }
    if (n > 0)
        qsort(names, n, sizeof(*names), str_cmp);
    for (size_t i = 0; i < n; i++) {
        int act = active != NULL && strcmp(active, names[i]) == 0;

        tmp = xasprintf("%s%s%s%s", out, i ? ", " : "", names[i], act ? " (active)" : "");
        free(out);
        out = tmp;
        json_array_append_new(arr, json_pack("{s:s, s:b}", "user", names[i], "active", act));
        free(names[i]);
    }
    free(names);
    free(users);
    free(active);
    return out;
}

/* GET /api/v1/me as the token's bearer. 0 with *me, or an exit code (message printed). */
static int
ask_me(const char *server, const char *token, json_t **me)
{
    char *url = xasprintf("%s/api/v1/me", server), err[512];
    long status;
    int code = 0;

    if (client_http_call("GET", url, token, NULL, NULL, &status, me, err, sizeof(err)) != 0) {
        fprintf(stderr, "airlock: whoami: %s\n", err);
        code = CLIENT_EXIT_UNREACHABLE;
    } else if (status != 200) {
        code = client_refused("whoami", status, *me);
    }
    free(url);
    return code;
}

static void
print_whoami(json_t *o)
{
    const char *keys[] = {"server", "user", "email", "issuer", "expires", "token", "cached"};

    for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++) {
        const char *v = json_string_value(json_object_get(o, keys[i]));

        if (v != NULL && v[0] != '\0')
            printf("%s:%*s%s\n", keys[i], (int)(9 - strlen(keys[i])), "", v);
    }
}

int
cmd_whoami(const char *server, int argc, char **argv)
{
    char *srv = NULL, *token = NULL, *src = NULL, *cached = NULL, rel[48];
    json_t *claims = NULL, *me = NULL, *o = NULL, *arr = json_array();
    int code, as_json = argc == 2 && strcmp(argv[1], "--json") == 0;

    if (argc > 1 && !as_json) {
        fprintf(stderr, "usage: airlock whoami [--json]\n");
        code = CLIENT_EXIT_USAGE;
        goto out;
    }
    if ((srv = client_server_url(server)) == NULL) {
        code = CLIENT_EXIT_USAGE;
        goto out;
    }
    if (client_token_find(&token, &src) != 0) {
        fprintf(stderr, "airlock: not logged in to %s: run 'airlock login'\n", srv);
        code = CLIENT_EXIT_REFUSED;
        goto out;
    }
    client_trim(token);
    claims = client_jwt_payload(token);
    code = ask_me(srv, token, &me);
    cached = cached_users(srv, arr);
    o = json_pack("{s:s, s:s, s:s, s:s?, s:s?, s:s?, s:O}", "server", srv, "token", src, "cached",
                  cached, "issuer", json_string_value(json_object_get(claims, "iss")), "user",
                  json_string_value(json_object_get(me, "user")), "email",
                  json_string_value(json_object_get(me, "email")), "identities", arr);
    if (json_is_integer(json_object_get(claims, "exp"))) {
        char ts[21];

        time_fmt(json_integer_value(json_object_get(claims, "exp")), ts);
        client_relative(ts, rel, sizeof(rel));
        json_object_set_new(o, "expiresAt", json_string(ts));
        json_object_set_new(o, "expires", json_sprintf("%s (%s)", ts, rel));
    }
    if (me != NULL && code == 0)
        json_object_set(o, "me", me);
    if (as_json) {
        json_dumpf(o, stdout, JSON_INDENT(2));
        putchar('\n');
    } else {
        print_whoami(o);
    }
out:
    json_decref(claims);
    json_decref(me);
    json_decref(o);
    json_decref(arr);
    free(cached);
    free(srv);
    free(src);
    client_secret_free(token);
    return code;
}
