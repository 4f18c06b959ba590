/*
 * SIGHUP reloads (see reload.h). The file is parsed by the same code and
 * with the same flags and AIRLOCK_* variables as at start-up; nothing
 * changes unless the whole file is good and its issuers make a verifier.
 *
 * What a generation holds: the struct config, and a struct auth made from
 * its issuers. Readers take app->cfg / app->auth with one atomic load and
 * keep that pointer for the rest of their request; a reader that loads
 * twice may see two generations, so code that walks a config reads the
 * pointer once into a local. Old generations are kept (not freed) until
 * reload_free() at shutdown: that costs a few kilobytes per reload and
 * needs no reference counting on the hot path. XXX a daemon reloaded
 * thousands of times keeps thousands of small generations.
 *
 * Things that cannot change while running (listen, dataDir, publicUrl,
 * uiDir, tls, auth.dev, the log format) keep their old values; a change to
 * them is logged as "needs a restart". Issuers whose URL is unchanged keep
 * the keys already fetched (auth_keys_adopt). Sessions keep the template
 * snapshot they were created with (stored with them), so a reload never
 * changes a running session. The connection limits and the web UI's CSP
 * (built from the people issuers) follow through http_config_apply().
 */
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "auth.h"
#include "err.h"
#include "http.h"
#include "log.h"
#include "reload.h"
#include "tmpl.h"
#include "util.h"
#include "xmalloc.h"

/* One loaded configuration and the verifier made from it. */
struct gen {
    struct config *cfg;
    struct auth *auth;
    struct gen *prev; /* older generation, or NULL */
};

struct reload {
    struct app *app;
    reload_load_fn load;
    void *arg;
    struct http *http; /* borrowed */
    struct gen *gens;  /* newest (current) first */
};

static _Atomic uint64_t n_ok, n_err;
static _Atomic int64_t loaded_at; /* unix time of the current generation's load */

static int keep_restart_only(const struct config *old, struct config *cfg);
static void log_changes(const struct config *old, const struct config *cfg);

struct reload *
reload_new(struct app *app, reload_load_fn load, void *arg)
{
    struct reload *rl = xcalloc(1, sizeof(*rl));

    rl->app = app;
    rl->load = load;
    rl->arg = arg;
    rl->gens = xcalloc(1, sizeof(*rl->gens));
    rl->gens->cfg = app->cfg;
    rl->gens->auth = app->auth;
    atomic_store(&loaded_at, time_now());
    return rl;
}

void
reload_http_set(struct reload *rl, struct http *h)
{
    rl->http = h;
}

/*
 * Loads the file again into a new generation and makes it current. On any
 * failure the current generation stays and the reason is logged (the
 * parser's "FILE:LINE: key ..." message). Returns 0 or ERR_INVALID.
 */
int
reload_run(struct reload *rl)
{
    struct config *cfg = xcalloc(1, sizeof(*cfg));
    struct gen *g = NULL;
    struct auth *auth = NULL;
    const struct config *old = rl->gens->cfg;
    char err[1024];
    int r = ERR_INTERNAL, n_restart;

    err[0] = '\0';
    if ((r = rl->load(cfg, rl->arg, err, sizeof(err))) != 0) {
        log_error("reload refused, keeping the running configuration: %s", err);
        goto out;
    }
    n_restart = keep_restart_only(old, cfg);
    if ((r = auth_new(cfg, &auth, err, sizeof(err))) != 0) {
        log_error("reload refused, keeping the running configuration: auth: %s", err);
        goto out;
    }
    auth_keys_adopt(auth, rl->gens->auth);
    log_changes(old, cfg);

    g = xcalloc(1, sizeof(*g));
    g->cfg = cfg;
    g->auth = auth;
    g->prev = rl->gens;
    rl->gens = g;
    /* auth first: a request that sees the new config finds its issuers */
    rl->app->auth = auth;
    rl->app->cfg = cfg;
    if (rl->http != NULL)
        http_config_apply(rl->http, cfg);
    cfg = NULL;
    auth = NULL;
    atomic_store(&loaded_at, time_now());
    log_info("configuration reloaded%s", n_restart > 0 ? " (some changes need a restart)" : "");
    r = 0;
out:
    atomic_fetch_add(r == 0 ? &n_ok : &n_err, 1);
    auth_free(auth);
    config_free(cfg);
    free(cfg);
    return r;
}

void
reload_metrics_write(FILE *f)
{
    fprintf(f,
            "# HELP airlock_config_reloads_total Configuration reloads (SIGHUP) by result.\n"
            "# TYPE airlock_config_reloads_total counter\n"
            "airlock_config_reloads_total{result=\"ok\"} %llu\n"
            "airlock_config_reloads_total{result=\"error\"} %llu\n"
            "# HELP airlock_config_loaded_seconds Unix time the running configuration was loaded.\n"
            "# TYPE airlock_config_loaded_seconds gauge\n"
            "airlock_config_loaded_seconds %lld\n",
            (unsigned long long)atomic_load(&n_ok), (unsigned long long)atomic_load(&n_err),
            (long long)atomic_load(&loaded_at));
}

void
reload_free(struct reload *rl)
{
    struct gen *g, *prev;

    if (rl == NULL)
        return;
    for (g = rl->gens; g != NULL; g = prev) {
        prev = g->prev;
        auth_free(g->auth);
        config_free(g->cfg);
        free(g->cfg);
        free(g);
    }
    rl->app->cfg = NULL;
    rl->app->auth = NULL;
    free(rl);
}

/* ------------------------------------------------------------------------ */
/* What needs a restart                                                     */
/* ------------------------------------------------------------------------ */

static int
str_same(const char *a, const char *b)
{
    if (a == NULL || b == NULL)
        return a == b;
    return strcmp(a, b) == 0;
}

/* Puts old's value of one string setting back into *v, logging when it differed. */
static int
keep_str(const char *key, const char *old, char **v)
{
    if (str_same(old, *v))
        return 0;
    log_warn("reload: %s changed; that needs a restart (keeping the running value)", key);
    free(*v);
    *v = old != NULL ? xstrdup(old) : NULL;
    return 1;
}

static int
keep_int(const char *key, int old, int *v)
{
    if (old == *v)
        return 0;
    log_warn("reload: %s changed; that needs a restart (keeping the running value)", key);
    *v = old;
    return 1;
}

/*
 * Settings fixed at start-up (the listening socket, the database in
 * dataDir, TLS, the dev issuer's URL and key): cfg gets old's values back.
 * Returns how many differed.
 */
static int
keep_restart_only(const struct config *old, struct config *cfg)
{
    int n = 0;

    n += keep_str("listen", old->listen, &cfg->listen);
    n += keep_str("dataDir", old->data_dir, &cfg->data_dir);
    n += keep_str("publicUrl", old->public_url, &cfg->public_url);
    n += keep_str("uiDir", old->ui_dir, &cfg->ui_dir);
    n += keep_str("tls.cert", old->tls_cert, &cfg->tls_cert);
    n += keep_str("tls.key", old->tls_key, &cfg->tls_key);
    n += keep_int("auth.dev", old->dev, &cfg->dev);
    n += keep_int("--dev-allow-remote", old->dev_allow_remote, &cfg->dev_allow_remote);
    n += keep_int("logFormat", old->log_json, &cfg->log_json);
    return n;
}

/* ------------------------------------------------------------------------ */
/* What changed                                                             */
/* ------------------------------------------------------------------------ */

/* 1 if the template's rules differ (compared as their snapshot JSON). */
static int
tmpl_differs(const struct tmpl_cfg *a, const struct tmpl_cfg *b)
{
    json_t *ja = tmpl_to_json(a), *jb = tmpl_to_json(b);
    int d = !json_equal(ja, jb) || a->max_open_per_user != b->max_open_per_user;

    json_decref(ja);
    json_decref(jb);
    return d;
}

static void
count_templates(const struct config *old, const struct config *cfg, int *added, int *removed,
                int *changed)
{
    size_t i;

    *added = *removed = *changed = 0;
    for (i = 0; i < cfg->n_templates; i++) {
        const struct tmpl_cfg *o = config_template(old, cfg->templates[i].name);

        if (o == NULL)
            (*added)++;
        else if (tmpl_differs(o, &cfg->templates[i]))
            (*changed)++;
    }
    for (i = 0; i < old->n_templates; i++)
        if (config_template(cfg, old->templates[i].name) == NULL)
            (*removed)++;
}

static int
has_issuer(const struct config *cfg, const char *iss)
{
    size_t i;

    for (i = 0; i < cfg->n_issuers; i++)
        if (strcmp(cfg->issuers[i].issuer, iss) == 0)
            return 1;
    return 0;
}

static int
strlist_same(const struct strlist *a, const struct strlist *b)
{
    size_t i;

    if (a->n != b->n)
        return 0;
    for (i = 0; i < a->n; i++)
        if (strcmp(a->v[i], b->v[i]) != 0)
            return 0;
    return 1;
}

static int
limits_same(const struct limits_cfg *a, const struct limits_cfg *b)
{
    return a->connections_per_client == b->connections_per_client &&
           a->requests_per_second == b->requests_per_second && a->burst == b->burst &&
           a->request_deadline_s == b->request_deadline_s &&
           a->sessions_per_user == b->sessions_per_user &&
           strlist_same(&a->trusted_proxies, &b->trusted_proxies);
}

/* One line with counts: templates, issuers (by URL), webhooks, limits. */
static void
log_changes(const struct config *old, const struct config *cfg)
{
    int t_add, t_rm, t_chg, i_add = 0, i_rm = 0;
    size_t i;

    count_templates(old, cfg, &t_add, &t_rm, &t_chg);
    for (i = 0; i < cfg->n_issuers; i++)
        i_add += !has_issuer(old, cfg->issuers[i].issuer);
    for (i = 0; i < old->n_issuers; i++)
        i_rm += !has_issuer(cfg, old->issuers[i].issuer);
    log_info("reload: %zu templates (%d added, %d removed, %d changed), %zu issuers (%d added, "
             "%d removed), %zu webhooks (was %zu), limits %s",
             cfg->n_templates, t_add, t_rm, t_chg, cfg->n_issuers, i_add, i_rm, cfg->n_webhooks,
             old->n_webhooks, limits_same(&old->limits, &cfg->limits) ? "unchanged" : "changed");
}
