/*
 * airlock: the one command line (DESIGN.md 8.5).
 *
 *   airlock [--server URL] COMMAND ...      (URL also from AIRLOCK_SERVER)
 *
 * wait and agent run the agent (control.c); extend, resume and status talk
 * to it from inside a session (ctlsock.c); login, sessions, join and proxy
 * are the person's commands (client.c). Exit codes everywhere: 0 ok,
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
#include "control.h"
#include "ctlsock.h"
#include "duration.h"
#include "err.h"
#include "log.h"
#include "util.h"
#include "xmalloc.h"

#define TOKEN_MAX (64 * 1024)
#define DEFAULT_GITHUB_AUDIENCE "airlock"

static const char usage_text[] =
    "usage: airlock [--server URL] COMMAND [ARGS]\n"
    "\n"
    "In a CI job or on a host:\n"
    "  wait     [--template T] [--duration D] [--reason R] [--invite USER]... [--name N]\n"
    "           [--label K=V]... [--token-file F | --token-env NAME | --github-audience A]\n"
    "           [--timeout D] [--exit-code N] [--listen ADDR] [--host-key FILE] [--run-dir DIR]\n"
    "           open a debug session and wait until it ends\n"
    "  agent    --name N [--label K=V]... [--token-file F | --token-env NAME] [--listen ADDR]\n"
    "           [--host-key FILE] [--run-dir DIR]\n"
    "           serve every debug session bound to this host, until stopped\n"
    "\n"
    "As a person:\n"
    "  login    [--dev --user U [--email E] [--groups G,...]] [--token-file F]\n"
    "  sessions [--state S,...] [--mine] [--json]\n"
    "  join     NAME [--read-only] [--key FILE] [--print]\n"
    "  proxy    NAME --ticket T          (ssh ProxyCommand)\n"
    "\n"
    "Inside a debug session:\n"
    "  extend   --for D                   ask for more time\n"
    "  resume                             end the session (the CI job continues)\n"
    "  status                             state, time left, participants\n"
    "\n"
    "Options: --server URL (or AIRLOCK_SERVER), --verbose, --help, --version.\n"
    "Exit codes: 0 ok, 1 refused by the server, 2 usage, 3 cannot reach the server.\n";

static int
usage(FILE *f, int code)
{
    fputs(usage_text, f);
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

/* wait and agent. argv[0] is the command name. */
static int
cmd_run_agent(const char *server, int argc, char **argv, enum control_mode mode)
{
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
    static const struct option wait_opts[] = {
        {"template", required_argument, NULL, O_TEMPLATE},
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
    struct control_cfg cfg;
    struct token_opts to = {NULL, NULL, NULL};
    char **drop = NULL, *token = NULL, *inv, *end, *saved = NULL;
    size_t n_drop = 0;
    uint64_t u;
    int64_t secs;
    int c, code = 2;

    memset(&cfg, 0, sizeof(cfg));
    cfg.mode = mode;
    cfg.server = server;
    cfg.ca_file = getenv("AIRLOCK_CA_FILE");
    optind = 1;
    while ((c = getopt_long(argc, argv, "+", wait_opts, NULL)) != -1) {
        int wait_only = c == O_TEMPLATE || c == O_DURATION || c == O_REASON || c == O_INVITE ||
                        c == O_TIMEOUT || c == O_EXIT || c == O_GH_AUD;

        if (mode == CONTROL_HOST && wait_only) {
            fprintf(stderr, "airlock agent: %s is a wait option\n", argv[optind - 1]);
            goto out;
        }
        switch (c) {
        case O_TEMPLATE:
            cfg.tmpl = optarg;
            break;
        case O_DURATION:
            if (check_duration("--duration", optarg) != 0)
                goto out;
            cfg.duration = optarg;
            break;
        case O_REASON:
            cfg.reason = optarg;
            break;
        case O_INVITE:
            /* --invite alice --invite bob, or --invite alice,bob */
            for (inv = optarg; *inv != '\0'; inv = *end ? end + 1 : end) {
                end = inv + strcspn(inv, ",");
                if (end > inv)
                    push(&cfg.invite, &cfg.n_invite, xstrndup(inv, (size_t)(end - inv)));
            }
            break;
        case O_NAME:
            cfg.name = optarg;
            break;
        case O_LABEL:
            if (strchr(optarg, '=') == NULL || optarg[0] == '=') {
                fprintf(stderr, "airlock: --label wants KEY=VALUE, got '%s'\n", optarg);
                goto out;
            }
            push(&cfg.labels, &cfg.n_labels, optarg);
            break;
        case O_TOKEN_FILE:
            to.file = optarg;
            break;
        case O_TOKEN_ENV:
            to.env = optarg;
            break;
        case O_GH_AUD:
            to.github_audience = optarg;
            break;
        case O_TIMEOUT:
            if (check_duration("--timeout", optarg) != 0)
                goto out;
            (void)duration_parse(optarg, &secs);
            cfg.timeout_s = secs;
            break;
        case O_EXIT:
            if (parse_uint(optarg, 255, &u) != 0) {
                fprintf(stderr, "airlock: --exit-code wants 0..255, got '%s'\n", optarg);
                goto out;
            }
            cfg.exit_code = (int)u;
            break;
        case O_LISTEN:
            cfg.listen = optarg;
            break;
        case O_HOSTKEY:
            cfg.host_key = optarg;
            break;
        case O_RUNDIR:
            cfg.run_dir = optarg;
            break;
        case O_HELP:
            code = usage(stdout, 0);
            goto out;
        default:
            goto out;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "airlock %s: unexpected argument '%s'\n", argv[0], argv[optind]);
        goto out;
    }
    if (cfg.tmpl == NULL && (cfg.duration != NULL || cfg.reason != NULL || cfg.n_invite > 0)) {
        fprintf(stderr, "airlock wait: --duration, --reason and --invite describe the session "
                        "--template requests; give --template too\n");
        goto out;
    }
    if ((to.file != NULL) + (to.env != NULL) + (to.github_audience != NULL) > 1) {
        fprintf(stderr, "airlock: give only one of --token-file, --token-env, --github-audience\n");
        goto out;
    }
    if (server == NULL && (server = saved = saved_server()) == NULL) {
        fprintf(stderr, "airlock %s: no server: use --server URL or set AIRLOCK_SERVER\n", argv[0]);
        goto out;
    }
    cfg.server = server;
    if (mode == CONTROL_HOST && cfg.name == NULL) {
        fprintf(stderr, "airlock agent: --name is required\n");
        goto out;
    }
    if ((code = token_get(&to, cfg.ca_file, &token)) != 0)
        goto out;
    cfg.token = token;
    /* The shells get the job's environment, but not the credential airlock used. */
    push(&drop, &n_drop, "AIRLOCK_TOKEN");
    push(&drop, &n_drop, "AIRLOCK_ID_TOKEN");
    if (to.env != NULL)
        push(&drop, &n_drop, to.env);
    cfg.env_drop = drop;
    code = control_agent_main(&cfg);
out:
    if (token != NULL) {
        explicit_bzero(token, strlen(token));
        free(token);
    }
    for (size_t i = 0; i < cfg.n_invite; i++)
        free(cfg.invite[i]);
    free(cfg.invite);
    free(cfg.labels);
    free(drop);
    free(saved);
    return code;
}

int
main(int argc, char **argv)
{
    static const struct option opts[] = {{"server", required_argument, NULL, 's'},
                                         {"verbose", no_argument, NULL, 'v'},
                                         {"help", no_argument, NULL, 'h'},
                                         {"version", no_argument, NULL, 'V'},
                                         {NULL, 0, NULL, 0}};
    const char *server = getenv("AIRLOCK_SERVER"), *cmd;
    char *srv = NULL;
    int c, code;

    json_set_alloc_funcs(xmalloc, free);
    /* "+": stop at the command, whose own options follow it. */
    while ((c = getopt_long(argc, argv, "+s:vhV", opts, NULL)) != -1) {
        switch (c) {
        case 's':
            server = optarg;
            break;
        case 'v':
            log_min_level = LOG_DEBUG;
            break;
        case 'h':
            return usage(stdout, 0);
        case 'V':
            printf("airlock %s\n", AIRLOCK_VERSION);
            return 0;
        default:
            return usage(stderr, 2);
        }
    }
    if (optind >= argc)
        return usage(stderr, 2);
    if (server != NULL && server[0] != '\0') {
        size_t n;

        srv = xstrdup(server);
        n = strlen(srv);
        while (n > 0 && srv[n - 1] == '/')
            srv[--n] = '\0';
        if (strncmp(srv, "http://", 7) != 0 && strncmp(srv, "https://", 8) != 0) {
            fprintf(stderr, "airlock: --server wants an http:// or https:// URL, got '%s'\n",
                    server);
            free(srv);
            return 2;
        }
    }
    cmd = argv[optind];
    argc -= optind;
    argv += optind;
    if (strcmp(cmd, "wait") == 0)
        code = cmd_run_agent(srv, argc, argv, CONTROL_WAIT);
    else if (strcmp(cmd, "agent") == 0)
        code = cmd_run_agent(srv, argc, argv, CONTROL_HOST);
    else if (strcmp(cmd, "extend") == 0 || strcmp(cmd, "resume") == 0 || strcmp(cmd, "status") == 0)
        code = ctlsock_cli(argc, argv);
    else if (strcmp(cmd, "login") == 0)
        code = cmd_login(srv, argc, argv);
    else if (strcmp(cmd, "sessions") == 0)
        code = cmd_sessions(srv, argc, argv);
    else if (strcmp(cmd, "join") == 0)
        code = cmd_join(srv, argc, argv);
    else if (strcmp(cmd, "proxy") == 0)
        code = cmd_proxy(srv, argc, argv);
    else if (strcmp(cmd, "help") == 0)
        code = usage(stdout, 0);
    else if (strcmp(cmd, "version") == 0)
        code = printf("airlock %s\n", AIRLOCK_VERSION) < 0;
    else {
        fprintf(stderr, "airlock: unknown command '%s'\n\n", cmd);
        code = usage(stderr, 2);
    }
    free(srv);
    return code;
}
