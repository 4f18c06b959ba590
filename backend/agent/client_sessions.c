/*
 * airlock sessions (client.h): every page of GET /api/v1/debug-sessions,
 * printed as a table or as JSON.
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <jansson.h>

#include "client.h"
#include "client_int.h"
#include "util.h"
#include "xmalloc.h"

#define SESSIONS_PAGE 500
#define SESSIONS_MAX_PAGES 100

/* ------------------------------------------------------------- sessions */

static const char *const states[] = {"Pending", "PendingApproval", "Active",
                                     "Expired", "Terminated",      "Failed"};

/*
 * --state's comma list in the server's spelling, whatever the case it was
 * typed in: *out a new string. 0, or 2 naming the valid states.
 */
static int
states_normalize(const char *in, char **out)
{
    char *copy = xstrdup(in), *cur = copy, *p, *res = xstrdup(""), *tmp;
    size_t i, n = sizeof(states) / sizeof(states[0]);

    *out = NULL;
    while ((p = client_next_token(&cur, ", ")) != NULL) {
        for (i = 0; i < n && strcasecmp(p, states[i]) != 0; i++)
            ;
        if (i == n) {
            fprintf(stderr, "airlock: sessions: unknown state '%s'; the states are:", p);
            for (i = 0; i < n; i++)
                fprintf(stderr, " %s", states[i]);
            fputc('\n', stderr);
            free(copy);
            free(res);
            return CLIENT_EXIT_USAGE;
        }
        tmp = xasprintf("%s%s%s", res, res[0] ? "," : "", states[i]);
        free(res);
        res = tmp;
    }
    free(copy);
    *out = res;
    return 0;
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

        client_relative(
            json_string_value(json_object_get(json_object_get(s, "status"), "expiresAt")), exp[i],
            sizeof(exp[i]));
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

/*
 * Appends every page of the list (state: a filter or NULL; mine) to all.
 * *total receives the server's total (new reference, may be NULL). 0 or an
 * exit code (message printed).
 */
static int
sessions_fetch(const char *srv, const char *token, const char *state, int mine, json_t *all,
               json_t **total)
{
    char *cursor = NULL, err[512];
    json_t *j = NULL;
    int code = 0;

    *total = NULL;
    for (int page = 0; page < SESSIONS_MAX_PAGES; page++) {
        char *st = state ? client_url_escape(state) : NULL;
        char *cu = cursor ? client_url_escape(cursor) : NULL;
        char *url = xasprintf("%s/api/v1/debug-sessions?limit=%d%s%s%s%s%s", srv, SESSIONS_PAGE,
                              st ? "&state=" : "", st ? st : "", mine ? "&mine=true" : "",
                              cu ? "&cursor=" : "", cu ? cu : "");
        long status;
        int r = client_http_call("GET", url, token, NULL, NULL, &status, &j, err, sizeof(err));

        free(st);
        free(cu);
        free(url);
        if (r != 0) {
            fprintf(stderr, "airlock: %s\n", err);
            code = CLIENT_EXIT_UNREACHABLE;
            goto out;
        }
        if (status != 200 || !json_is_array(json_object_get(j, "sessions"))) {
            code = client_refused("sessions", status, j);
            goto out;
        }
        json_array_extend(all, json_object_get(j, "sessions"));
        if (*total == NULL)
            *total = json_incref(json_object_get(j, "total"));
        free(cursor);
        cursor = json_string_value(json_object_get(j, "nextCursor"))
                     ? xstrdup(json_string_value(json_object_get(j, "nextCursor")))
                     : NULL;
        json_decref(j);
        j = NULL;
        if (cursor == NULL || cursor[0] == '\0')
            break;
    }
out:
    json_decref(j);
    free(cursor);
    return code;
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
    char *srv = NULL, *token = NULL, *states_arg = NULL;
    json_t *all = json_array(), *total = NULL;
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
    if (state != NULL && (code = states_normalize(state, &states_arg)) != 0)
        goto out;
    if ((srv = client_server_url(server)) == NULL)
        goto out;
    if ((token = client_need_token()) == NULL) {
        code = CLIENT_EXIT_REFUSED;
        goto out;
    }
    if ((code = sessions_fetch(srv, token, states_arg, mine, all, &total)) != 0)
        goto out;
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
    json_decref(total);
    free(states_arg);
    free(srv);
    client_secret_free(token);
    return code;
}
