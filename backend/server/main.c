/*
 * airlockd: parse arguments, load the configuration, open the database,
 * start the HTTP server, the reaper and the notifier, then wait for SIGTERM
 * or SIGINT and drain: stop accepting, close WebSockets with a reason,
 * finish requests, exit 0.
 */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <curl/curl.h>
#include <jansson.h>

#include "api.h"
#include "control.h"
#include "core.h"
#include "err.h"
#include "http.h"
#include "log.h"
#include "notify.h"
#include "reaper.h"
#include "relay.h"
#include "reload.h"
#include "term_ticket.h"
#include "util.h"
#include "xmalloc.h"

static void
usage(FILE *f)
{
    fprintf(f,
            "usage: airlockd [--config FILE] [--listen HOST:PORT] [--data-dir DIR]\n"
            "                [--public-url URL] [--ui-dir DIR] [--download-dir DIR]\n"
            "                [--dev] [--dev-allow-remote]\n"
            "                [--log-format text|json] [--debug] [--version]\n"
            "Environment: AIRLOCK_CONFIG, AIRLOCK_LISTEN, AIRLOCK_DATA_DIR, AIRLOCK_PUBLIC_URL\n");
}

static void
set_str(char **dst, const char *v)
{
    free(*dst);
    *dst = xstrdup(v);
}

struct flags {
    const char *config, *listen, *data_dir, *public_url, *ui_dir, *download_dir, *log_format;
    int dev, dev_allow_remote, debug;
};

static int
parse_flags(int argc, char **argv, struct flags *f)
{
    static const struct option opts[] = {
        {"config", required_argument, NULL, 'c'},
        {"listen", required_argument, NULL, 'l'},
        {"data-dir", required_argument, NULL, 'd'},
        {"public-url", required_argument, NULL, 'u'},
        {"ui-dir", required_argument, NULL, 'w'},
        {"download-dir", required_argument, NULL, 'W'},
        {"log-format", required_argument, NULL, 'f'},
        {"dev", no_argument, NULL, 'D'},
        {"dev-allow-remote", no_argument, NULL, 'R'},
        {"debug", no_argument, NULL, 'g'},
        {"version", no_argument, NULL, 'V'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    int c;

    memset(f, 0, sizeof(*f));
    f->config = getenv("AIRLOCK_CONFIG");
    while ((c = getopt_long(argc, argv, "c:l:d:u:w:W:f:DRgVh", opts, NULL)) != -1) {
        switch (c) {
        case 'c':
            f->config = optarg;
            break;
        case 'l':
            f->listen = optarg;
            break;
        case 'd':
            f->data_dir = optarg;
            break;
        case 'u':
            f->public_url = optarg;
            break;
        case 'w':
            f->ui_dir = optarg;
            break;
        case 'W':
            f->download_dir = optarg;
            break;
        case 'f':
            f->log_format = optarg;
            break;
        case 'D':
            f->dev = 1;
            break;
        case 'R':
            f->dev_allow_remote = 1;
            break;
        case 'g':
            f->debug = 1;
            break;
        case 'V':
            printf("airlockd %s\n", AIRLOCK_VERSION);
            exit(0);
        case 'h':
            usage(stdout);
            exit(0);
        default:
            usage(stderr);
            return ERR_INVALID;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "airlockd: unexpected argument '%s'\n", argv[optind]);
        return ERR_INVALID;
    }
    if (f->log_format && strcmp(f->log_format, "text") != 0 && strcmp(f->log_format, "json") != 0) {
        fprintf(stderr, "airlockd: --log-format must be text or json\n");
        return ERR_INVALID;
    }
    return 0;
}

/*
 * Config file, then environment, then flags (at start and on SIGHUP:
 * reload.c). arg is the struct flags. 0 or ERR_INVALID with err filled.
 */
static int
load_config(struct config *cfg, void *arg, char *err, size_t err_len)
{
    const struct flags *f = arg;
    const char *e;

    if (config_load(cfg, f->config, err, err_len) != 0)
        return ERR_INVALID;
    if ((e = getenv("AIRLOCK_LISTEN")) != NULL)
        set_str(&cfg->listen, e);
    if ((e = getenv("AIRLOCK_DATA_DIR")) != NULL)
        set_str(&cfg->data_dir, e);
    if ((e = getenv("AIRLOCK_PUBLIC_URL")) != NULL)
        set_str(&cfg->public_url, e);
    if (f->listen)
        set_str(&cfg->listen, f->listen);
    if (f->data_dir)
        set_str(&cfg->data_dir, f->data_dir);
    if (f->public_url)
        set_str(&cfg->public_url, f->public_url);
    if (f->ui_dir)
        set_str(&cfg->ui_dir, f->ui_dir);
    if (f->download_dir)
        set_str(&cfg->download_dir, f->download_dir);
    if (f->dev)
        cfg->dev = 1;
    if (f->dev_allow_remote)
        cfg->dev_allow_remote = 1;
    if (f->log_format)
        cfg->log_json = strcmp(f->log_format, "json") == 0;
    config_finish(cfg);
    if (config_validate(cfg, err, err_len) != 0)
        return ERR_INVALID;
    return 0;
}

/*
 * Warns when what (the data directory, the database) at path can be read or
 * written by users other than its owner and group: the database holds every
 * session, its participants' keys and the agents' credential hashes.
 */
static void
warn_if_open_to_others(const char *what, const char *path)
{
    struct stat sb;

    if (stat(path, &sb) == 0 && (sb.st_mode & (S_IROTH | S_IWOTH)) != 0)
        log_warn("%s %s is readable by other users (mode %04o): chmod o-rwx it (0700 for a "
                 "directory, 0600 for the database)",
                 what, path, (unsigned)(sb.st_mode & 07777));
}

static int
open_store(struct app *app)
{
    char err[1024], *path;
    int r;

    if (mkdir(app->cfg->data_dir, 0700) != 0 && errno != EEXIST) {
        log_error("cannot create data directory %s: %s", app->cfg->data_dir, strerror(errno));
        return ERR_SYSTEM;
    }
    warn_if_open_to_others("data directory", app->cfg->data_dir);
    path = xasprintf("%s/airlock.db", app->cfg->data_dir);
    r = store_open(path, &app->store, err, sizeof(err));
    if (r != 0)
        log_error("database %s: %s", path, err);
    else
        warn_if_open_to_others("database", path);
    free(path);
    if (r == 0 && (r = store_agents_all_offline(app->store, time_now())) != 0)
        log_error("cannot reset agent state");
    return r;
}

int
main(int argc, char **argv)
{
    struct config *cfg = xcalloc(1, sizeof(*cfg)); /* owned by reload once it starts */
    struct flags f;
    struct app app;
    struct auth *auth = NULL;
    struct reload *reload = NULL;
    struct http *http = NULL;
    struct reaper *reaper = NULL;
    struct notify *notify = NULL;
    sigset_t set;
    char err[1024];
    int sig = 0, rc = 1;

    /* jansson allocates through xmalloc: out of memory is fatal, never a NULL json_t. */
    json_set_alloc_funcs(xmalloc, free);
    memset(&app, 0, sizeof(app));
    signal(SIGPIPE, SIG_IGN);
    if (parse_flags(argc, argv, &f) != 0) {
        free(cfg);
        return 2;
    }
    if (load_config(cfg, &f, err, sizeof(err)) != 0) {
        fprintf(stderr, "airlockd: %s\n", err);
        config_free(cfg);
        free(cfg);
        return 2;
    }
    log_set_json(cfg->log_json);
    if (f.debug)
        log_min_level = LOG_DEBUG;
    curl_global_init(CURL_GLOBAL_DEFAULT);
    app.cfg = cfg;
    app.started_at = time_now();
    pthread_mutex_init(&app.lock, NULL);
    if (open_store(&app) != 0)
        goto out;
    if (auth_new(cfg, &auth, err, sizeof(err)) != 0) {
        log_error("auth: %s", err);
        goto out;
    }
    app.auth = auth;
    reload = reload_new(&app, load_config, &f);
    cfg = NULL;
    auth = NULL;
    app.relay = relay_new();
    app.term_tickets = term_tickets_new();
    app.control = control_new(&app);
    /* Block the signals before any thread starts, so only sigwait sees them. */
    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGHUP);
    pthread_sigmask(SIG_BLOCK, &set, NULL);
    if (http_start(&app, &http, err, sizeof(err)) != 0) {
        log_error("%s", err);
        goto out;
    }
    reload_http_set(reload, http);
    reaper = reaper_start(&app);
    notify = notify_start(&app);
    log_info("airlockd %s listening on %s (public URL %s)%s", AIRLOCK_VERSION, app.cfg->listen,
             app.cfg->public_url, app.cfg->dev ? " in DEVELOPMENT MODE" : "");
    while (sigwait(&set, &sig) == 0 && sig == SIGHUP) {
        log_info("received SIGHUP: reloading the configuration");
        (void)reload_run(reload);
    }
    log_info("received %s: draining", sig == SIGTERM ? "SIGTERM" : "SIGINT");
    http_quiesce(http);
    rc = 0;
out:
    reaper_stop(reaper);
    notify_stop(notify);
    core_deferred_run(app.relay ? &app : NULL, 1);
    /*
     * Shut the channels down first (they refuse late connections), wait for
     * every WebSocket thread, and only then free what those threads use.
     */
    control_shutdown(app.control);
    relay_shutdown(app.relay);
    if (http_stop(http, 5000) == 0) {
        control_free(app.control);
        relay_free(app.relay);
        term_tickets_free(app.term_tickets);
    } else {
        log_warn("leaving the relay and control channels allocated for the threads still running");
    }
    store_close(app.store);
    if (reload == NULL) /* failed before reload_new took them over */
        auth_free(auth);
    else
        reload_free(reload);
    config_free(cfg);
    free(cfg);
    curl_global_cleanup();
    pthread_mutex_destroy(&app.lock);
    log_info("stopped");
    return rc;
}
