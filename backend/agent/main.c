/*
 * airlock: the one command line (DESIGN.md 8.5).
 *
 *   airlock [--server URL] COMMAND ...      (URL also from AIRLOCK_SERVER)
 *
 * wait and agent run the agent (control.c); extend, resume and status talk
 * to it from inside a session (ctlsock.c); login, sessions, join and proxy
 * are the person's commands (client_*.c). The sub-commands are one table,
 * commands[], which also writes the usage. Exit codes everywhere: 0 ok,
 * 1 refused by the server, 2 usage, 3 cannot reach the server.
 */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <jansson.h>

#include "client.h"
#include "client_snippet.h"
#include "control.h"
#include "ctlsock.h"
#include "duration.h"
#include "err.h"
#include "log.h"
#include "util.h"
#include "xmalloc.h"

#define TOKEN_MAX (64 * 1024)
#define DEFAULT_GITHUB_AUDIENCE "airlock"

typedef int (*cmd_fn)(const char *server, int argc, char **argv);

enum cmd_section { SEC_CI, SEC_PERSON, SEC_INSIDE, SEC_HIDDEN, SEC__COUNT };

/* One sub-command: argv[0] is its name; server is the --server URL or NULL. */
struct command {
    const char *name;
    cmd_fn fn;
    enum cmd_section section;
    const char *usage; /* after the name in `airlock --help`, '\n'-terminated */
};

static int cmd_wait(const char *server, int argc, char **argv);
static int cmd_agent(const char *server, int argc, char **argv);
static int cmd_inside(const char *server, int argc, char **argv);
static int cmd_help(const char *server, int argc, char **argv);
static int cmd_version(const char *server, int argc, char **argv);

static const struct command commands[] = {
    {"wait", cmd_wait, SEC_CI,
     "[--template T] [--duration D] [--reason R] [--invite USER]... [--name N]\n"
     "           [--label K=V]... [--token-file F | --token-env NAME | --github-audience A]\n"
     "           [--timeout D] [--exit-code N] [--listen ADDR] [--host-key FILE] [--run-dir DIR]\n"
     "           open a debug session and wait until it ends\n"},
    {"agent", cmd_agent, SEC_CI,
     "--name N [--label K=V]... [--token-file F | --token-env NAME] [--listen ADDR]\n"
     "           [--host-key FILE] [--run-dir DIR]\n"
     "           serve every debug session bound to this host, until stopped\n"},
    {"login", cmd_login, SEC_PERSON,
     "[--dev --user U [--email E] [--groups G,...]] [--token-file F]\n"},
    {"sessions", cmd_sessions, SEC_PERSON, "[--state S,...] [--mine] [--json]\n"},
    {"whoami", cmd_whoami, SEC_PERSON, "[--json]                  the active identity\n"},
    {"request", cmd_verb, SEC_PERSON,
     "--template T --agent A [--duration D] [--reason R] [--invite USER]...\n"},
    {"approve", cmd_verb, SEC_PERSON, "NAME [--reason R]\n"},
    {"reject", cmd_verb, SEC_PERSON, "NAME [--reason R]\n"},
    {"renew", cmd_verb, SEC_PERSON, "NAME [--for D]\n"},
    {"terminate", cmd_verb, SEC_PERSON, "NAME [--reason R]\n"},
    {"invite", cmd_verb, SEC_PERSON, "NAME USER... [--role participant|viewer]\n"},
    {"agents", cmd_verb, SEC_PERSON, "                          the agents you may use\n"},
    {"events", cmd_verb, SEC_PERSON, "NAME                      the audit trail\n"},
    {"join", cmd_join, SEC_PERSON, "NAME [--read-only] [--key FILE] [--print] [-- COMMAND...]\n"},
    {"proxy", cmd_proxy, SEC_PERSON, "NAME --ticket T          (ssh ProxyCommand)\n"},
    {"snippet", cmd_snippet, SEC_PERSON,
     "github|gitlab|host [--template T]   CI lines for this server\n"},
    {"verify-recording", cmd_verify_recording, SEC_PERSON,
     "NAME [--json]   does the session's recording still match its digest?\n"},
    {"extend", cmd_inside, SEC_INSIDE, "--for D                   ask for more time\n"},
    {"resume", cmd_inside, SEC_INSIDE,
     "                          end the session (the CI job continues)\n"},
    {"status", cmd_inside, SEC_INSIDE,
     "                          state, time left, participants\n"},
    {"help", cmd_help, SEC_HIDDEN, NULL},
    {"version", cmd_version, SEC_HIDDEN, NULL},
};

static const char *const section_titles[SEC__COUNT] = {
    [SEC_CI] = "In a CI job or on a host:",
    [SEC_PERSON] = "As a person:",
    [SEC_INSIDE] = "Inside a debug session:",
};

/* Prints the usage, built from the command table, to f; returns code. */
static int
usage(FILE *f, int code)
{
    size_t i;
    int sec;

    fputs("usage: airlock [--server URL] [--as USER] COMMAND [ARGS]\n\n", f);
    for (sec = 0; sec < SEC_HIDDEN; sec++) {
        fprintf(f, "%s\n", section_titles[sec]);
        for (i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
            if ((int)commands[i].section == sec)
                fprintf(f, "  %-8s %s", commands[i].name, commands[i].usage);
        fputs("\n", f);
    }
    fputs("Options: --server URL (or AIRLOCK_SERVER), --as USER (or AIRLOCK_USER: a cached\n"
          "identity other than the active one), --verbose, --help, --version.\n"
          "sessions, whoami, agents and the session verbs take --json (the server's JSON).\n"
          "Exit codes: 0 ok, 1 refused by the server, 2 usage, 3 cannot reach the server.\n",
          f);
    return code;
}

/* Reads a token file: first line, whitespace trimmed. New string or NULL. */
static char *
token_from_file(const char *path)
{
    FILE *f = fopen(path, "r");
    char *buf;
    size_t n;

    if (f == NULL) {
        fprintf(stderr, "airlock: cannot read %s: %s\n", path, strerror(errno));
        return NULL;
    }
    buf = xmalloc(TOKEN_MAX + 1);
    n = fread(buf, 1, TOKEN_MAX, f);
    fclose(f);
    buf[n] = '\0';
    buf[strcspn(buf, "\r\n")] = '\0';
    n = strlen(buf);
    while (n > 0 && (buf[n - 1] == ' ' || buf[n - 1] == '\t'))
        buf[--n] = '\0';
    if (n == 0) {
        fprintf(stderr, "airlock: %s is empty\n", path);
        free(buf);
        return NULL;
    }
    return buf;
}

struct token_opts {
    const char *file, *env, *github_audience;
    const char *agent; /* --name: whose cached token it used last time (client_agent_identity) */
};

/*
 * The bearer for the registration, in this order: --token-file, --token-env,
 * --github-audience, $AIRLOCK_TOKEN, GitHub Actions (audience "airlock") when
 * its variables are set, $AIRLOCK_ID_TOKEN (the GitLab id_tokens name the docs
 * use), then the person's cached token. Returns 0 with a new *token, or the
 * exit code (2 nothing usable, 3 GitHub unreachable).
 */
static int
token_get(const struct token_opts *o, const char *ca_file, char **token)
{
    const char *v;
    char err[512];
    int r;

    *token = NULL;
    if (o->file != NULL) {
        *token = token_from_file(o->file);
        return *token ? 0 : 2;
    }
    if (o->env != NULL) {
        v = getenv(o->env);
        if (v == NULL || v[0] == '\0') {
            fprintf(stderr, "airlock: $%s is not set (GitLab: declare it under id_tokens)\n",
                    o->env);
            return 2;
        }
        *token = xstrdup(v);
        return 0;
    }
    if (o->github_audience != NULL ||
        ((v = getenv("AIRLOCK_TOKEN")) == NULL && getenv("ACTIONS_ID_TOKEN_REQUEST_URL") != NULL)) {
        r = control_token_github(o->github_audience ? o->github_audience : DEFAULT_GITHUB_AUDIENCE,
                                 ca_file, token, err, sizeof(err));
        if (r != 0) {
            fprintf(stderr, "airlock: %s\n", err);
            return r == ERR_UNAVAILABLE ? 3 : 2;
        }
        return 0;
    }
    if ((v = getenv("AIRLOCK_TOKEN")) != NULL && v[0] != '\0') {
        *token = xstrdup(v);
        return 0;
    }
    if ((v = getenv("AIRLOCK_ID_TOKEN")) != NULL && v[0] != '\0') {
        *token = xstrdup(v);
        return 0;
    }
    if (o->agent != NULL)
        client_agent_identity(o->agent);
    if (cmd_token_load(token) == 0 && *token != NULL && (*token)[0] != '\0')
        return 0;
    free(*token);
    *token = NULL;
    fprintf(stderr, "airlock: no token: use --token-file, --token-env, --github-audience, "
                    "or `airlock login`\n");
    return 2;
}

/* The server of the last `airlock login` (~/.config/airlock/server), or NULL. New string. */
static char *
saved_server(void)
{
    const char *home = getenv("HOME");
    char path[1024], *s;
    size_t n;

    if (home == NULL)
        return NULL;
    snprintf(path, sizeof(path), "%s/.config/airlock/server", home);
    if (access(path, R_OK) != 0 || (s = token_from_file(path)) == NULL)
        return NULL;
    n = strlen(s);
    while (n > 0 && s[n - 1] == '/')
        s[--n] = '\0';
    if (strncmp(s, "http://", 7) != 0 && strncmp(s, "https://", 8) != 0) {
        free(s);
        return NULL;
    }
    return s;
}

static int
check_duration(const char *opt, const char *v)
{
    int64_t secs;

    if (duration_parse(v, &secs) != 0) {
        fprintf(stderr, "airlock: %s '%s' is not a duration (90s, 30m, 1h30m, 2d)\n", opt, v);
        return -1;
    }
    return 0;
}

static void
push(char ***v, size_t *n, const char *s)
{
    *v = xrealloc(*v, (*n + 2) * sizeof(char *));
    (*v)[(*n)++] = (char *)s;
    (*v)[*n] = NULL;
}

enum {
    O_TEMPLATE = 1,
    O_DURATION,
    O_REASON,
    O_INVITE,
    O_NAME,
    O_LABEL,
    O_TOKEN_FILE,
    O_TOKEN_ENV,
    O_GH_AUD,
    O_TIMEOUT,
    O_EXIT,
    O_LISTEN,
    O_HOSTKEY,
    O_RUNDIR,
    O_HELP
};

static const struct option run_opts[] = {{"template", required_argument, NULL, O_TEMPLATE},
                                         {"duration", required_argument, NULL, O_DURATION},
                                         {"reason", required_argument, NULL, O_REASON},
                                         {"invite", required_argument, NULL, O_INVITE},
                                         {"name", required_argument, NULL, O_NAME},
                                         {"label", required_argument, NULL, O_LABEL},
                                         {"token-file", required_argument, NULL, O_TOKEN_FILE},
                                         {"token-env", required_argument, NULL, O_TOKEN_ENV},
                                         {"github-audience", required_argument, NULL, O_GH_AUD},
                                         {"timeout", required_argument, NULL, O_TIMEOUT},
                                         {"exit-code", required_argument, NULL, O_EXIT},
                                         {"listen", required_argument, NULL, O_LISTEN},
                                         {"host-key", required_argument, NULL, O_HOSTKEY},
                                         {"run-dir", required_argument, NULL, O_RUNDIR},
                                         {"help", no_argument, NULL, O_HELP},
                                         {NULL, 0, NULL, 0}};

/* What wait/agent gathered from the command line; freed by run_args_cleanup(). */
struct run_args {
    struct control_cfg cfg;
    struct token_opts to;
    char **drop; /* cfg.env_drop */
    size_t n_drop;
    char *token;
    char *saved_server;
};

/* --invite alice --invite bob, or --invite alice,bob: each name a new string. */
static void
invite_add(struct control_cfg *cfg, const char *list)
{
    const char *inv, *end;

    for (inv = list; *inv != '\0'; inv = *end ? end + 1 : end) {
        end = inv + strcspn(inv, ",");
        if (end > inv)
            push(&cfg->invite, &cfg->n_invite, xstrndup(inv, (size_t)(end - inv)));
    }
}

/* Applies option c (value v, borrowed from argv) to ra. 0, or the exit code 2 (message printed). */
static int
run_opt_apply(struct run_args *ra, int c, char *v)
{
    struct control_cfg *cfg = &ra->cfg;
    uint64_t u;
    int64_t secs;

    switch (c) {
    case O_TEMPLATE:
        cfg->tmpl = v;
        return 0;
    case O_DURATION:
        if (check_duration("--duration", v) != 0)
            return 2;
        cfg->duration = v;
        return 0;
    case O_REASON:
        cfg->reason = v;
        return 0;
    case O_INVITE:
        invite_add(cfg, v);
        return 0;
    case O_NAME:
        cfg->name = v;
        return 0;
    case O_LABEL:
        if (strchr(v, '=') == NULL || v[0] == '=') {
            fprintf(stderr, "airlock: --label wants KEY=VALUE, got '%s'\n", v);
            return 2;
        }
        push(&cfg->labels, &cfg->n_labels, v);
        return 0;
    case O_TOKEN_FILE:
        ra->to.file = v;
        return 0;
    case O_TOKEN_ENV:
        ra->to.env = v;
        return 0;
    case O_GH_AUD:
        ra->to.github_audience = v;
        return 0;
    case O_TIMEOUT:
        if (check_duration("--timeout", v) != 0)
            return 2;
        (void)duration_parse(v, &secs);
        cfg->timeout_s = secs;
        return 0;
    case O_EXIT:
        if (parse_uint(v, 255, &u) != 0) {
            fprintf(stderr, "airlock: --exit-code wants 0..255, got '%s'\n", v);
            return 2;
        }
        cfg->exit_code = (int)u;
        return 0;
    case O_LISTEN:
        cfg->listen = v;
        return 0;
    case O_HOSTKEY:
        cfg->host_key = v;
        return 0;
    case O_RUNDIR:
        cfg->run_dir = v;
        return 0;
    default:
        return 2;
    }
}

/*
 * Parses wait's or agent's options into ra. Returns -1 to go on, or the
 * exit code to leave with (0 after --help, 2 on a usage error).
 */
static int
run_opts_parse(struct run_args *ra, int argc, char **argv)
{
    int c, code;

    optind = 1;
    while ((c = getopt_long(argc, argv, "+", run_opts, NULL)) != -1) {
        int wait_only = c == O_TEMPLATE || c == O_DURATION || c == O_REASON || c == O_INVITE ||
                        c == O_TIMEOUT || c == O_EXIT || c == O_GH_AUD;

        if (ra->cfg.mode == CONTROL_HOST && wait_only) {
            fprintf(stderr, "airlock agent: %s is a wait option\n", argv[optind - 1]);
            return 2;
        }
        if (c == O_HELP)
            return usage(stdout, 0);
        if ((code = run_opt_apply(ra, c, optarg)) != 0)
            return code;
    }
    if (optind < argc) {
        fprintf(stderr, "airlock %s: unexpected argument '%s'\n", argv[0], argv[optind]);
        return 2;
    }
    return -1;
}

/* The rules between options, then the server. 0, or the exit code 2 (message printed). */
static int
run_opts_check(struct run_args *ra, const char *server, const char *cmd)
{
    const struct control_cfg *cfg = &ra->cfg;

    if (cfg->tmpl == NULL && (cfg->duration != NULL || cfg->reason != NULL || cfg->n_invite > 0)) {
        fprintf(stderr, "airlock wait: --duration, --reason and --invite describe the session "
                        "--template requests; give --template too\n");
        return 2;
    }
    if ((ra->to.file != NULL) + (ra->to.env != NULL) + (ra->to.github_audience != NULL) > 1) {
        fprintf(stderr, "airlock: give only one of --token-file, --token-env, --github-audience\n");
        return 2;
    }
    if (server == NULL && (server = ra->saved_server = saved_server()) == NULL) {
        fprintf(stderr, "airlock %s: no server: use --server URL or set AIRLOCK_SERVER\n", cmd);
        return 2;
    }
    ra->cfg.server = server;
    if (cfg->mode == CONTROL_HOST && cfg->name == NULL) {
        fprintf(stderr, "airlock agent: --name is required\n");
        return 2;
    }
    return 0;
}

static void
run_args_cleanup(struct run_args *ra)
{
    if (ra->token != NULL) {
        explicit_bzero(ra->token, strlen(ra->token));
        free(ra->token);
    }
    for (size_t i = 0; i < ra->cfg.n_invite; i++)
        free(ra->cfg.invite[i]);
    free(ra->cfg.invite);
    free(ra->cfg.labels);
    free(ra->drop);
    free(ra->saved_server);
}

/* wait and agent: options, server, token, then the agent until it ends. argv[0] is the command. */
static int
cmd_run_agent(const char *server, int argc, char **argv, enum control_mode mode)
{
    struct run_args ra;
    int code;

    memset(&ra, 0, sizeof(ra));
    ra.cfg.mode = mode;
    ra.cfg.server = server;
    ra.cfg.ca_file = getenv("AIRLOCK_CA_FILE");
    if ((code = run_opts_parse(&ra, argc, argv)) >= 0)
        goto out;
    if ((code = run_opts_check(&ra, server, argv[0])) != 0)
        goto out;
    ra.to.agent = ra.cfg.name;
    if ((code = token_get(&ra.to, ra.cfg.ca_file, &ra.token)) != 0)
        goto out;
    ra.cfg.token = ra.token;
    /* The shells get the job's environment, but not the credential airlock used. */
    push(&ra.drop, &ra.n_drop, "AIRLOCK_TOKEN");
    push(&ra.drop, &ra.n_drop, "AIRLOCK_ID_TOKEN");
    if (ra.to.env != NULL)
        push(&ra.drop, &ra.n_drop, ra.to.env);
    ra.cfg.env_drop = ra.drop;
    code = control_agent_main(&ra.cfg);
out:
    run_args_cleanup(&ra);
    return code;
}

static int
cmd_wait(const char *server, int argc, char **argv)
{
    return cmd_run_agent(server, argc, argv, CONTROL_WAIT);
}

static int
cmd_agent(const char *server, int argc, char **argv)
{
    return cmd_run_agent(server, argc, argv, CONTROL_HOST);
}

/* extend, resume, status: requests to the agent over $AIRLOCK_SOCK (ctlsock.c). */
static int
cmd_inside(const char *server, int argc, char **argv)
{
    (void)server;
    return ctlsock_cli(argc, argv);
}

static int
cmd_help(const char *server, int argc, char **argv)
{
    (void)server;
    (void)argc;
    (void)argv;
    return usage(stdout, 0);
}

static int
cmd_version(const char *server, int argc, char **argv)
{
    (void)server;
    (void)argc;
    (void)argv;
    return printf("airlock %s\n", AIRLOCK_VERSION) < 0;
}

/*
 * --server as given (or AIRLOCK_SERVER) without trailing slashes into *srv
 * (a new string; NULL when none was given). 0, or 2 for a URL that is not
 * http:// or https:// (message printed).
 */
static int
server_arg(const char *server, char **srv)
{
    size_t n;

    *srv = NULL;
    if (server == NULL || server[0] == '\0')
        return 0;
    *srv = xstrdup(server);
    n = strlen(*srv);
    while (n > 0 && (*srv)[n - 1] == '/')
        (*srv)[--n] = '\0';
    if (strncmp(*srv, "http://", 7) != 0 && strncmp(*srv, "https://", 8) != 0) {
        fprintf(stderr, "airlock: --server wants an http:// or https:// URL, got '%s'\n", server);
        free(*srv);
        *srv = NULL;
        return 2;
    }
    return 0;
}

int
main(int argc, char **argv)
{
    static const struct option opts[] = {
        {"server", required_argument, NULL, 's'}, {"as", required_argument, NULL, 'a'},
        {"verbose", no_argument, NULL, 'v'},      {"help", no_argument, NULL, 'h'},
        {"version", no_argument, NULL, 'V'},      {NULL, 0, NULL, 0}};
    const char *server = getenv("AIRLOCK_SERVER"), *as = getenv("AIRLOCK_USER"), *cmd;
    char *srv = NULL;
    size_t i;
    int c, code;

    json_set_alloc_funcs(xmalloc, free);
    /* "+": stop at the command, whose own options follow it. */
    while ((c = getopt_long(argc, argv, "+s:a:vhV", opts, NULL)) != -1) {
        switch (c) {
        case 's':
            server = optarg;
            break;
        case 'a':
            as = optarg;
            break;
        case 'v':
            log_min_level = LOG_DEBUG;
            break;
        case 'h':
            return usage(stdout, 0);
        case 'V':
            return cmd_version(NULL, 0, NULL);
        default:
            return usage(stderr, 2);
        }
    }
    if (optind >= argc)
        return usage(stderr, 2);
    if (server_arg(server, &srv) != 0)
        return 2;
    client_identity_set(srv, as);
    cmd = argv[optind];
    argc -= optind;
    argv += optind;
    for (i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
        if (strcmp(cmd, commands[i].name) == 0)
            break;
    if (i < sizeof(commands) / sizeof(commands[0])) {
        code = commands[i].fn(srv, argc, argv);
    } else {
        fprintf(stderr, "airlock: unknown command '%s'\n\n", cmd);
        code = usage(stderr, 2);
    }
    free(srv);
    return code;
}
