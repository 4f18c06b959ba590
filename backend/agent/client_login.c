/*
 * airlock login (client.h): a development token from the server
 * (--dev), a token file checked against /api/v1/me (--token-file), or the
 * OIDC device flow (RFC 8628) against the issuer the server names. The token
 * and the server URL are saved under ~/.config/airlock.
 *
 * XXX The device flow caches the access token (or ID token) it gets and
 * does not refresh it; when it expires the person logs in again.
 */
#include <errno.h>
#include <getopt.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <jansson.h>

#include "client.h"
#include "client_int.h"
#include "err.h"
#include "util.h"
#include "xmalloc.h"

struct device_login {
    char *device_code;
    const char *client_id;
    const char *token_ep;
    long interval; /* seconds between polls, as the identity provider asks */
    int64_t deadline;
};

/* ---------------------------------------------------------------- login */

static int
save_login(const char *server, const char *user, const char *token)
{
    return client_token_save(server, user != NULL ? user : "unknown", token);
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
    if (client_http_call("GET", url, token, NULL, NULL, &status, &j, err, sizeof(err)) != 0) {
        if (!quiet)
            fprintf(stderr, "airlock: %s\n", err);
        code = CLIENT_EXIT_UNREACHABLE;
    } else if (status != 200) {
        code = quiet ? CLIENT_EXIT_REFUSED : client_refused("login", status, j);
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

        while ((p = client_next_token(&cur, ",")) != NULL) {
            client_trim(p);
            if (p[0] != '\0')
                json_array_append_new(garr, json_string(p));
        }
        free(g);
    }
    json_object_set_new(body, "groups", garr);
    if (client_http_json("POST", url, NULL, body, &status, &j, err, sizeof(err)) != 0) {
        fprintf(stderr, "airlock: %s\n", err);
        code = CLIENT_EXIT_UNREACHABLE;
        goto out;
    }
    if (status != 200 && status != 201) {
        code = status == 404 ? (fprintf(stderr, "airlock: login: the server is not in development"
                                                " mode (no /api/v1/dev/token)\n"),
                                CLIENT_EXIT_REFUSED)
                             : client_refused("login", status, j);
        goto out;
    }
    tok = json_string_value(json_object_get(j, "token"));
    exp = json_string_value(json_object_get(j, "expiresAt"));
    if (tok == NULL) {
        fprintf(stderr, "airlock: login: no token in the server's answer\n");
        code = CLIENT_EXIT_REFUSED;
        goto out;
    }
    if (save_login(server, user, tok) != 0) {
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
    int r = client_file_read(file, CLIENT_TOKEN_FILE_MAX, &t), code;

    if (r != 0) {
        fprintf(stderr, "airlock: cannot read %s: %s\n", file,
                r == ERR_NOT_FOUND ? "no such file" : strerror(errno));
        return CLIENT_EXIT_USAGE;
    }
    client_trim(t);
    if (t[0] == '\0') {
        fprintf(stderr, "airlock: %s is empty\n", file);
        client_secret_free(t);
        return CLIENT_EXIT_USAGE;
    }
    code = whoami(server, t, &user, 0);
    if (code == CLIENT_EXIT_REFUSED) {
        client_secret_free(t);
        return code;
    }
    if (save_login(server, user, t) != 0) {
        client_secret_free(t);
        return CLIENT_EXIT_REFUSED;
    }
    if (user != NULL)
        fprintf(stderr, "Logged in to %s as %s.\n", server, user);
    else
        fprintf(stderr, "Token saved; the server could not be asked who it belongs to.\n");
    free(user);
    client_secret_free(t);
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
        char *ek = client_url_escape(k), *ev = client_url_escape(v ? v : "");

        tmp = xasprintf("%s%s%s=%s", out, out[0] ? "&" : "", ek, ev);
        free(out);
        free(ek);
        client_secret_free(ev);
        out = tmp;
    }
    va_end(ap);
    return out;
}

/*
 * Waits s seconds between two token requests. RFC 8628 3.5 has the client
 * poll at the pace the identity provider sets ("interval", more after
 * "slow_down"): nothing tells us when the person has finished in the
 * browser, so a timer is right here. A signal ends the nap early; the
 * caller asks again, which is harmless.
 */
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
    json_array_foreach(arr, i, v)
    {
        if (!json_is_string(v))
            continue;
        next = out ? xasprintf("%s %s", out, json_string_value(v)) : xstrdup(json_string_value(v));
        free(out);
        out = next;
    }
    return out ? out : xstrdup("openid profile email");
}

/* Prints where the person goes and which code they enter, from the authorization answer j. */
static void
device_instructions(const json_t *j)
{
    const char *uri = json_string_value(json_object_get(j, "verification_uri"));
    const char *uri_full = json_string_value(json_object_get(j, "verification_uri_complete"));
    const char *user_code = json_string_value(json_object_get(j, "user_code"));

    if (uri == NULL)
        uri = json_string_value(json_object_get(j, "verification_url")); /* Google */
    fprintf(stderr, "To log in, open %s\nand enter the code: %s\n", uri ? uri : "(no URL given)",
            user_code ? user_code : "(none)");
    if (uri_full != NULL)
        fprintf(stderr, "(or open %s)\n", uri_full);
    fprintf(stderr, "Waiting for you to finish in the browser...\n");
}

/*
 * RFC 8628 3.1-3.3: the device authorization request. On success dl holds a
 * new device code (client_secret_free) and the polling pace, and the person
 * has been told what to do. 0 or an exit code (message printed).
 */
static int
device_start(const char *device_ep, const char *client_id, const char *scope,
             struct device_login *dl)
{
    char *body = form("client_id", client_id, "scope", scope, (const char *)NULL);
    char err[512];
    json_t *j = NULL;
    long status;
    int code = CLIENT_EXIT_REFUSED;

    memset(dl, 0, sizeof(*dl));
    dl->client_id = client_id;
    if (client_http_call("POST", device_ep, NULL, "application/x-www-form-urlencoded", body,
                         &status, &j, err, sizeof(err)) != 0) {
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
    dl->device_code = xstrdup(json_string_value(json_object_get(j, "device_code")));
    dl->interval = 5;
    if (json_is_integer(json_object_get(j, "interval")))
        dl->interval = (long)json_integer_value(json_object_get(j, "interval"));
    if (dl->interval < 1)
        dl->interval = 1;
    dl->deadline = time_now() + (json_is_integer(json_object_get(j, "expires_in"))
                                     ? json_integer_value(json_object_get(j, "expires_in"))
                                     : 600);
    device_instructions(j);
    code = 0;
out:
    json_decref(j);
    client_secret_free(body);
    return code;
}

/* Prints why the token endpoint said no for good (error e of answer j). */
static void
device_refused(const json_t *j, const char *e)
{
    const char *desc = json_string_value(json_object_get(j, "error_description"));

    if (e != NULL && strcmp(e, "access_denied") == 0)
        fprintf(stderr, "airlock: login: the login was denied\n");
    else if (e != NULL && strcmp(e, "expired_token") == 0)
        fprintf(stderr, "airlock: login: the code expired; run 'airlock login' again\n");
    else
        fprintf(stderr, "airlock: login: the identity provider said: %s\n",
                desc ? desc : (e ? e : "an unexpected answer"));
}

/*
 * RFC 8628 3.4-3.5: polls the token endpoint at dl's pace until the person
 * finished, refused or the code expired. On success *access and *id receive
 * new strings (either may be NULL). 0 or an exit code (message printed).
 */
static int
device_poll(struct device_login *dl, char **access, char **id)
{
    char *body = form("grant_type", "urn:ietf:params:oauth:grant-type:device_code", "device_code",
                      dl->device_code, "client_id", dl->client_id, (const char *)NULL);
    char err[512];
    json_t *j = NULL;
    long status;
    int code = CLIENT_EXIT_REFUSED, failures = 0;
    const char *e;

    for (;;) {
        nap(dl->interval);
        if (time_now() > dl->deadline) {
            fprintf(stderr, "airlock: login: the code expired; run 'airlock login' again\n");
            goto out;
        }
        json_decref(j);
        j = NULL;
        if (client_http_call("POST", dl->token_ep, NULL, "application/x-www-form-urlencoded", body,
                             &status, &j, err, sizeof(err)) != 0) {
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
            dl->interval += 5;
            continue;
        }
        device_refused(j, e);
        goto out;
    }
out:
    json_decref(j);
    client_secret_free(body);
    return code;
}

/*
 * RFC 8628: device authorization, then polling the token endpoint. On
 * success *access and *id receive new strings (either may be NULL).
 */
static int
device_flow(const char *device_ep, const char *token_ep, const char *client_id, const char *scope,
            char **access, char **id)
{
    struct device_login dl;
    int code;

    *access = *id = NULL;
    if ((code = device_start(device_ep, client_id, scope, &dl)) != 0)
        return code;
    dl.token_ep = token_ep;
    code = device_poll(&dl, access, id);
    client_secret_free(dl.device_code);
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

    if (client_http_call("GET", url, NULL, NULL, NULL, &status, &cfg, err, sizeof(err)) != 0) {
        fprintf(stderr, "airlock: %s\n", err);
        code = CLIENT_EXIT_UNREACHABLE;
        goto out;
    }
    if (status != 200) {
        code = client_refused("login", status, cfg);
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
    if (client_http_call("GET", disc_url, NULL, NULL, NULL, &status, &disc, err, sizeof(err)) !=
        0) {
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
        if (code == 0 && save_login(server, user, tries[i]) != 0)
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
    client_secret_free(access);
    client_secret_free(id);
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
    if ((srv = client_server_url(server)) == NULL)
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
