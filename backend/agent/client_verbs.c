/*
 * The person's session verbs (client.h): request, approve, reject, renew,
 * terminate, invite and events, and the agents list, one row each in verbs[] (options allowed,
 * arguments, the request it makes). Each prints a short line, or with --json
 * the server's JSON as it is; a refusal prints the server's error (and its
 * "did you mean") and exits 1 (client_api).
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "client.h"
#include "client_int.h"
#include "xmalloc.h"

#define RENEW_DEFAULT "30m" /* renew without --for */

enum {
    V_TEMPLATE = 1 << 0,
    V_AGENT = 1 << 1,
    V_DURATION = 1 << 2,
    V_REASON = 1 << 3,
    V_INVITE = 1 << 4,
    V_FOR = 1 << 5,
    V_ROLE = 1 << 6,
    V_JSON = 1 << 7,
    V_HELP = 1 << 8,
};

static const struct option verb_opts[] = {{"template", required_argument, NULL, V_TEMPLATE},
                                          {"agent", required_argument, NULL, V_AGENT},
                                          {"duration", required_argument, NULL, V_DURATION},
                                          {"reason", required_argument, NULL, V_REASON},
                                          {"invite", required_argument, NULL, V_INVITE},
                                          {"for", required_argument, NULL, V_FOR},
                                          {"role", required_argument, NULL, V_ROLE},
                                          {"json", no_argument, NULL, V_JSON},
                                          {"help", no_argument, NULL, V_HELP},
                                          {NULL, 0, NULL, 0}};

/* What the command line said. Strings are borrowed from argv. */
struct verb_args {
    const char *tmpl, *agent, *duration, *reason, *for_, *role;
    json_t *invite; /* array of names */
    char **pos;     /* the arguments after the options */
    int n_pos, json;
};

struct verb;
/* Builds the request: method, path (new string) and body (new reference or NULL). */
typedef void (*verb_build_fn)(const struct verb *v, const struct verb_args *a, const char **method,
                              char **path, json_t **body);

struct verb {
    const char *name;
    unsigned opts;        /* V_* the verb takes (V_JSON and V_HELP always) */
    int min_pos, max_pos; /* positional arguments; max -1: any number */
    verb_build_fn build;
    const char *usage; /* after "airlock NAME " */
};

/* /api/v1/debug-sessions/NAME[/action], NAME escaped. New string. */
static char *
session_path(const char *name, const char *action)
{
    char *esc = client_url_escape(name), *p;

    p = xasprintf("/api/v1/debug-sessions/%s%s%s", esc, action ? "/" : "", action ? action : "");
    free(esc);
    return p;
}

static void
build_request(const struct verb *v, const struct verb_args *a, const char **method, char **path,
              json_t **body)
{
    (void)v;
    *method = "POST";
    *path = xstrdup("/api/v1/debug-sessions");
    *body = json_pack("{s:s, s:s}", "template", a->tmpl, "agent", a->agent);
    if (a->duration != NULL)
        json_object_set_new(*body, "requestedDuration", json_string(a->duration));
    if (a->reason != NULL)
        json_object_set_new(*body, "reason", json_string(a->reason));
    if (json_array_size(a->invite) > 0)
        json_object_set(*body, "invitedParticipants", a->invite);
}

/* approve, reject, terminate: {reason?} to the action named like the verb. */
static void
build_decision(const struct verb *v, const struct verb_args *a, const char **method, char **path,
               json_t **body)
{
    *method = "POST";
    *path = session_path(a->pos[0], v->name);
    *body = json_object();
    if (a->reason != NULL)
        json_object_set_new(*body, "reason", json_string(a->reason));
}

static void
build_renew(const struct verb *v, const struct verb_args *a, const char **method, char **path,
            json_t **body)
{
    *method = "POST";
    *path = session_path(a->pos[0], v->name);
    *body = json_pack("{s:s}", "extendBy", a->for_ ? a->for_ : RENEW_DEFAULT);
}

static void
build_invite(const struct verb *v, const struct verb_args *a, const char **method, char **path,
             json_t **body)
{
    json_t *users = json_array();

    for (int i = 1; i < a->n_pos; i++)
        json_array_append_new(users, json_string(a->pos[i]));
    *method = "POST";
    *path = session_path(a->pos[0], v->name);
    *body = json_pack("{s:o}", "users", users);
    if (a->role != NULL)
        json_object_set_new(*body, "role", json_string(a->role));
}

static void
build_events(const struct verb *v, const struct verb_args *a, const char **method, char **path,
             json_t **body)
{
    *method = "GET";
    *path = session_path(a->pos[0], v->name);
    *body = NULL;
}

static void
build_agents(const struct verb *v, const struct verb_args *a, const char **method, char **path,
             json_t **body)
{
    (void)v;
    (void)a;
    *method = "GET";
    *path = xstrdup("/api/v1/agents");
    *body = NULL;
}

static const struct verb verbs[] = {
    {"request", V_TEMPLATE | V_AGENT | V_DURATION | V_REASON | V_INVITE, 0, 0, build_request,
     "--template T --agent A [--duration D] [--reason R] [--invite USER]... [--json]"},
    {"approve", V_REASON, 1, 1, build_decision, "NAME [--reason R] [--json]"},
    {"reject", V_REASON, 1, 1, build_decision, "NAME [--reason R] [--json]"},
    {"renew", V_FOR, 1, 1, build_renew,
     "NAME [--for D] [--json]   (default --for " RENEW_DEFAULT ")"},
    {"terminate", V_REASON, 1, 1, build_decision, "NAME [--reason R] [--json]"},
    {"invite", V_ROLE, 2, -1, build_invite, "NAME USER... [--role participant|viewer] [--json]"},
    {"events", 0, 1, 1, build_events, "NAME [--json]"},
    {"agents", 0, 0, 0, build_agents, "[--json]"},
};

static const struct verb *
verb_find(const char *name)
{
    for (size_t i = 0; i < sizeof(verbs) / sizeof(verbs[0]); i++)
        if (strcmp(verbs[i].name, name) == 0)
            return &verbs[i];
    return NULL;
}

/* The long name of option value c. */
static const char *
opt_name(int c)
{
    for (const struct option *o = verb_opts; o->name != NULL; o++)
        if (o->val == c)
            return o->name;
    return "?";
}

/* --invite alice --invite bob,carol: each name appended to arr. */
static void
invite_add(json_t *arr, const char *list)
{
    char *copy = xstrdup(list), *cur = copy, *p;

    while ((p = client_next_token(&cur, ",")) != NULL)
        json_array_append_new(arr, json_string(p));
    free(copy);
}

/*
 * Parses argv for verb v into a. Returns -1 to go on, or the exit code to
 * leave with (0 after --help, 2 on a usage error, message printed).
 */
static int
verb_parse(const struct verb *v, int argc, char **argv, struct verb_args *a)
{
    int c;

    optind = 0;
    opterr = 1;
    while ((c = getopt_long(argc, argv, "", verb_opts, NULL)) != -1) {
        if (c == '?')
            return CLIENT_EXIT_USAGE;
        if (c != V_JSON && c != V_HELP && !(v->opts & (unsigned)c)) {
            fprintf(stderr, "airlock %s: --%s is not an option of %s\n", v->name, opt_name(c),
                    v->name);
            return CLIENT_EXIT_USAGE;
        }
        switch (c) {
        case V_TEMPLATE:
            a->tmpl = optarg;
            break;
        case V_AGENT:
            a->agent = optarg;
            break;
        case V_DURATION:
            a->duration = optarg;
            break;
        case V_REASON:
            a->reason = optarg;
            break;
        case V_INVITE:
            invite_add(a->invite, optarg);
            break;
        case V_FOR:
            a->for_ = optarg;
            break;
        case V_ROLE:
            a->role = optarg;
            break;
        case V_JSON:
            a->json = 1;
            break;
        default:
            printf("usage: airlock %s %s\n", v->name, v->usage);
            return 0;
        }
    }
    a->pos = argv + optind;
    a->n_pos = argc - optind;
    if (a->n_pos < v->min_pos || (v->max_pos >= 0 && a->n_pos > v->max_pos)) {
        fprintf(stderr, "usage: airlock %s %s\n", v->name, v->usage);
        return CLIENT_EXIT_USAGE;
    }
    if ((v->opts & V_TEMPLATE) && (a->tmpl == NULL || a->agent == NULL)) {
        fprintf(stderr, "airlock %s: --template and --agent are required\n", v->name);
        return CLIENT_EXIT_USAGE;
    }
    return -1;
}

/* "ds-x: Active, expires in 59m (renewals 1/3)" (and the message) for the session s. */
static void
print_session(FILE *f, json_t *s)
{
    json_t *st = json_object_get(s, "status");
    const char *name = json_string_value(json_object_get(s, "name"));
    const char *state = json_string_value(json_object_get(st, "state"));
    const char *msg = json_string_value(json_object_get(st, "message"));
    const char *exp = json_string_value(json_object_get(st, "expiresAt"));
    char rel[48];

    fprintf(f, "%s: %s", name ? name : "?", state ? state : "?");
    if (exp != NULL && state != NULL && strcmp(state, "Active") == 0) {
        client_relative(exp, rel, sizeof(rel));
        fprintf(f, ", expires %s (renewals %lld/%lld)", rel,
                (long long)json_integer_value(json_object_get(st, "renewalCount")),
                (long long)json_integer_value(json_object_get(st, "maxRenewals")));
    }
    if (msg != NULL && msg[0] != '\0')
        fprintf(f, " (%s)", msg);
    fputc('\n', f);
}

/* NAME  STATE  SEEN: the agents the caller may request sessions on. */
static void
print_agents(json_t *j)
{
    json_t *list = json_object_get(j, "agents"), *a;
    size_t i;

    if (json_array_size(list) == 0) {
        fprintf(stderr, "No agents.\n");
        return;
    }
    json_array_foreach(list, i, a)
    {
        const char *name = json_string_value(json_object_get(a, "name"));
        const char *seen = json_string_value(json_object_get(a, "lastSeenAt"));
        char rel[48];

        client_relative(seen, rel, sizeof(rel));
        printf("%-32s %-8s last seen %s\n", name ? name : "?",
               json_is_true(json_object_get(a, "online")) ? "online" : "offline", rel);
    }
}

static void
print_events(json_t *j)
{
    json_t *evs = json_object_get(j, "events"), *e;
    size_t i;

    if (json_array_size(evs) == 0) {
        fprintf(stderr, "No events.\n");
        return;
    }
    printf("%-20s  %-12s  %-18s  %s\n", "AT", "ACTOR", "TYPE", "DATA");
    json_array_foreach(evs, i, e)
    {
        const char *at = json_string_value(json_object_get(e, "at"));
        const char *actor = json_string_value(json_object_get(e, "actor"));
        const char *type = json_string_value(json_object_get(e, "type"));
        json_t *data = json_object_get(e, "data");
        char *d = data && json_object_size(data) > 0 ? json_dumps(data, JSON_COMPACT) : NULL;

        printf("%-20s  %-12s  %-18s  %s\n", at ? at : "-", actor ? actor : "-", type ? type : "-",
               d ? d : "");
        free(d);
    }
}

/* Prints the answer j of verb v: the JSON as it is, or a line for a person. */
static void
verb_print(const struct verb *v, const struct verb_args *a, json_t *j)
{
    if (a->json) {
        json_dumpf(j, stdout, JSON_INDENT(2));
        putchar('\n');
    } else if (v->build == build_events) {
        print_events(j);
    } else if (v->build == build_agents) {
        print_agents(j);
    } else if (v->build == build_request) {
        /* the name alone on stdout, so NAME=$(airlock request ...) works */
        printf("%s\n", json_string_value(json_object_get(j, "name")));
        fputs("Requested ", stderr);
        print_session(stderr, j);
    } else {
        print_session(stdout, j);
    }
}

int
cmd_verb(const char *server, int argc, char **argv)
{
    const struct verb *v = verb_find(argv[0]);
    struct verb_args a;
    const char *method = NULL;
    char *path = NULL;
    json_t *body = NULL, *j = NULL;
    int code;

    if (v == NULL)
        return CLIENT_EXIT_USAGE;
    memset(&a, 0, sizeof(a));
    a.invite = json_array();
    if ((code = verb_parse(v, argc, argv, &a)) >= 0)
        goto out;
    v->build(v, &a, &method, &path, &body);
    if ((code = client_api(server, method, path, body, v->name, &j)) == 0)
        verb_print(v, &a, j);
out:
    json_decref(a.invite);
    json_decref(body);
    json_decref(j);
    free(path);
    return code;
}
