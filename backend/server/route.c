/*
 * The route table and its matcher. Patterns are matched on the raw path
 * (MHD_OPTION_UNESCAPE_CALLBACK leaves the URL undecoded) so that "%2F"
 * inside an agent name is not taken for a separator; each ':' segment is
 * decoded on its own. Rows are tried in order; a row flagged
 * ROUTE_FALLBACK is tried only when no other row has the path, so an API
 * path with another method is 405 while an unknown path under /api/ is 404
 * and everything else falls through to the static UI.
 */
#include <stdlib.h>
#include <string.h>

#include "api.h"
#include "download.h"
#include "snippet.h"
#include "err.h"
#include "metrics.h"
#include "route.h"
#include "static.h"
#include "xmalloc.h"

static const struct route routes[] = {
    {"GET", "/api/v1/config", 0, api_config_get, NULL},
    {"GET", "/api/v1/me", ROUTE_AUTH, api_me_get, NULL},
    {"POST", "/api/v1/dev/token", 0, api_dev_token, NULL},
    {"GET", "/api/v1/debug-sessions", ROUTE_AUTH, api_sessions_list, NULL},
    {"POST", "/api/v1/debug-sessions", ROUTE_AUTH, api_sessions_create, NULL},
    {"GET", "/api/v1/debug-sessions/:", ROUTE_AUTH, api_sessions_get, NULL},
    {"POST", "/api/v1/debug-sessions/:/approve", ROUTE_AUTH, api_sessions_approve, NULL},
    {"POST", "/api/v1/debug-sessions/:/reject", ROUTE_AUTH, api_sessions_reject, NULL},
    {"POST", "/api/v1/debug-sessions/:/join", ROUTE_AUTH, api_sessions_join, NULL},
    {"POST", "/api/v1/debug-sessions/:/leave", ROUTE_AUTH, api_sessions_leave, NULL},
    {"POST", "/api/v1/debug-sessions/:/renew", ROUTE_AUTH, api_sessions_renew, NULL},
    {"POST", "/api/v1/debug-sessions/:/terminate", ROUTE_AUTH, api_sessions_terminate, NULL},
    {"POST", "/api/v1/debug-sessions/:/invite", ROUTE_AUTH, api_sessions_invite, NULL},
    {"GET", "/api/v1/debug-sessions/:/events", ROUTE_AUTH, api_sessions_events, NULL},
    {"POST", "/api/v1/debug-sessions/:/participants/:", ROUTE_AUTH, api_participants_role, NULL},
    {"DELETE", "/api/v1/debug-sessions/:/participants/:", ROUTE_AUTH, api_participants_remove,
     NULL},
    {"GET", "/api/v1/debug-sessions/:/connect", ROUTE_WS, api_sessions_connect, NULL},
    {"POST", "/api/v1/debug-sessions/:/terminal-ticket", ROUTE_AUTH, api_terminal_ticket, NULL},
    {"GET", "/api/v1/debug-sessions/:/terminal", ROUTE_WS, api_terminal_open, NULL},
    {"GET", "/api/v1/debug-sessions/:/recording", ROUTE_AUTH, api_recording_get, NULL},
    {"GET", "/api/v1/debug-sessions/:/recording/verify", ROUTE_AUTH, api_recording_verify, NULL},
    {"GET", "/api/v1/debug-session-templates", ROUTE_AUTH, api_templates_list, NULL},
    {"GET", "/api/v1/debug-session-templates/:", ROUTE_AUTH, api_templates_get, NULL},
    {"GET", "/api/v1/agents", ROUTE_AUTH, api_agents_list, NULL},
    {"POST", "/api/v1/agents", ROUTE_AUTH | ROUTE_AGENT_OK, api_agents_register, NULL},
    {"GET", "/api/v1/agents/:", ROUTE_AUTH, api_agents_get, NULL},
    {"GET", "/api/v1/agents/:/control", ROUTE_WS, api_agents_control, NULL},
    {"GET", "/api/v1/agents/:/tunnel/:", ROUTE_WS, api_agents_tunnel, NULL},
    {"GET", "/api/v1/snippets/:", ROUTE_AUTH, snippet_get, NULL},
    {"PUT", "/api/v1/agents/:/recordings/:/chunks/:", ROUTE_BYTES, api_recording_chunk, NULL},
    {"POST", "/api/v1/agents/:/recordings/:/failure", 0, api_recording_failure, NULL},
    /* health and metrics answer any method and ignore a body, as they always did */
    {"*", "/healthz", ROUTE_RAW, api_health_get, NULL},
    {"*", "/readyz", ROUTE_RAW, api_ready_get, NULL},
    {"*", "/metrics", ROUTE_RAW, metrics_get, NULL},
    /* every other path under /api/ is 404 (counted as "other": no handler) */
    {"*", "/api/*", ROUTE_FALLBACK | ROUTE_RAW, NULL, NULL},
    /* the portable agent (download.c); other names under /download/ are 404 */
    {"GET", "/download/*", ROUTE_FALLBACK | ROUTE_RAW | ROUTE_HEAD, download_get, NULL},
    {"GET", "/*", ROUTE_FALLBACK | ROUTE_RAW | ROUTE_HEAD, static_get, "static"},
};
#define N_ROUTES (sizeof(routes) / sizeof(routes[0]))

size_t
route_count(void)
{
    return N_ROUTES;
}

const struct route *
route_at(size_t i)
{
    return i < N_ROUTES ? &routes[i] : NULL;
}

static int
hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

int
route_decode(const char *s, size_t len, int plus_space, char **out)
{
    char *o = xmalloc(len + 1);
    size_t i, n = 0;

    *out = NULL;
    for (i = 0; i < len; i++) {
        if (s[i] == '%') {
            int hi, lo;

            if (i + 2 >= len) {
                free(o);
                return ERR_INVALID;
            }
            hi = hexval(s[i + 1]);
            lo = hexval(s[i + 2]);
            if (hi < 0 || lo < 0 || (hi == 0 && lo == 0)) {
                free(o);
                return ERR_INVALID;
            }
            o[n++] = (char)(hi << 4 | lo);
            i += 2;
        } else if (plus_space && s[i] == '+') {
            o[n++] = ' ';
        } else {
            o[n++] = s[i];
        }
    }
    o[n] = '\0';
    *out = o;
    return 0;
}

int
route_utf8_ok(const char *str, size_t len)
{
    const unsigned char *s = (const unsigned char *)str;
    size_t i = 0;

    while (i < len) {
        unsigned c = s[i], need, k;
        unsigned cp;

        if (c < 0x80) {
            i++;
            continue;
        }
        if (c >= 0xc2 && c <= 0xdf)
            need = 1, cp = c & 0x1f;
        else if (c >= 0xe0 && c <= 0xef)
            need = 2, cp = c & 0x0f;
        else if (c >= 0xf0 && c <= 0xf4)
            need = 3, cp = c & 0x07;
        else
            return 0;
        if (len - i <= need)
            return 0;
        for (k = 1; k <= need; k++) {
            if ((s[i + k] & 0xc0) != 0x80)
                return 0;
            cp = cp << 6 | (s[i + k] & 0x3f);
        }
        if ((need == 2 && (cp < 0x800 || (cp >= 0xd800 && cp <= 0xdfff))) ||
            (need == 3 && (cp < 0x10000 || cp > 0x10ffff)))
            return 0;
        i += need + 1;
    }
    return 1;
}

static void
params_free(char *params[ROUTE_MAX_PARAMS])
{
    size_t i;

    for (i = 0; i < ROUTE_MAX_PARAMS; i++) {
        free(params[i]);
        params[i] = NULL;
    }
}

/*
 * Matches the raw path against pattern. 1 on a match (params filled with
 * new strings), 0 on none, -1 when the pattern matches but a segment does
 * not decode (params freed in both failure cases).
 */
static int
match(const char *pattern, const char *path, char *params[ROUTE_MAX_PARAMS])
{
    const char *p = pattern, *s = path;
    size_t n = 0;

    while (*p) {
        if (*p == '*')
            return 1; /* the rest of the path, whatever it is */
        if (*s == '\0')
            goto nomatch;
        if (*p == ':') {
            const char *end = strchr(s, '/');
            size_t len = end ? (size_t)(end - s) : strlen(s);

            if (len == 0 || n == ROUTE_MAX_PARAMS)
                goto nomatch;
            if (route_decode(s, len, 0, &params[n]) != 0 ||
                !route_utf8_ok(params[n], strlen(params[n]))) {
                params_free(params);
                return -1;
            }
            n++;
            s += len;
            p++;
            continue;
        }
        if (*p != *s)
            goto nomatch;
        p++;
        s++;
    }
    if (*s == '\0')
        return 1;
nomatch:
    params_free(params);
    return 0;
}

static int
method_ok(const struct route *rt, const char *method)
{
    return strcmp(rt->method, "*") == 0 || strcmp(rt->method, method) == 0 ||
           ((rt->flags & ROUTE_HEAD) && strcmp(method, "HEAD") == 0);
}

/* One pass over the rows of one kind (fallback or not); see route_find. */
static int
find_pass(const char *method, const char *path, int fallback, size_t *row,
          char *params[ROUTE_MAX_PARAMS], int *path_seen)
{
    size_t i;
    int m;

    for (i = 0; i < N_ROUTES; i++) {
        if (!(routes[i].flags & ROUTE_FALLBACK) != !fallback)
            continue;
        if ((m = match(routes[i].pattern, path, params)) < 0)
            return ERR_INVALID;
        if (m == 0)
            continue;
        if (!method_ok(&routes[i], method)) {
            params_free(params);
            if (!fallback)
                *path_seen = 1;
            continue;
        }
        if (routes[i].fn == NULL) {
            params_free(params);
            return ERR_NOT_FOUND;
        }
        *row = i;
        return 0;
    }
    return *path_seen ? ERR_METHOD : ERR_NOT_FOUND;
}

int
route_find(const char *method, const char *path, size_t *row, char *params[ROUTE_MAX_PARAMS])
{
    int path_seen = 0, r;
    size_t i;

    *row = N_ROUTES;
    for (i = 0; i < ROUTE_MAX_PARAMS; i++)
        params[i] = NULL;
    r = find_pass(method, path, 0, row, params, &path_seen);
    if (r == ERR_NOT_FOUND)
        r = find_pass(method, path, 1, row, params, &path_seen);
    if (r != 0)
        *row = N_ROUTES;
    return r;
}

size_t
route_body_max(const char *method, const char *path)
{
    char *params[ROUTE_MAX_PARAMS] = {NULL};
    size_t row = 0, max = API_MAX_BODY;

    if (route_find(method, path, &row, params) == 0 && (route_at(row)->flags & ROUTE_BYTES))
        max = ROUTE_BYTES_MAX;
    params_free(params);
    return max;
}
