/*
 * SIGHUP: reload templates, issuers, webhooks and limits from the same
 * config file (and the same flags and AIRLOCK_* variables) without dropping
 * a connection (DESIGN.md 9, docs/configuration.md "Reloading").
 *
 * A loaded configuration is immutable. A reload builds a whole new one (and
 * a new verifier for its issuers), then swaps app->cfg and app->auth (both
 * _Atomic pointers). A request that read the old pointers keeps using them:
 * every generation lives until reload_free() at shutdown, so no reader can
 * see freed memory. A bad file changes nothing.
 */
#ifndef AIRLOCK_RELOAD_H
#define AIRLOCK_RELOAD_H
#include <stddef.h>
#include <stdio.h>

#include "api.h"

struct reload;
struct http;

/*
 * Loads the configuration the way start-up did: into cfg (zeroed by the
 * caller), 0 or ERR_* with "FILE:LINE: key ..." in err. arg is the one given
 * to reload_new.
 */
typedef int (*reload_load_fn)(struct config *cfg, void *arg, char *err, size_t err_len);

/*
 * Starts the reload state for app, whose app->cfg and app->auth are the
 * first generation: reload takes ownership of both (app->cfg must have been
 * allocated with xmalloc) and frees them in reload_free. Never NULL.
 */
struct reload *reload_new(struct app *app, reload_load_fn load, void *arg);
/* The daemon whose CSP and limits follow the configuration (NULL: none yet). Borrowed. */
void reload_http_set(struct reload *rl, struct http *h);
/*
 * Reloads (called from the signal loop, one at a time). Logs what changed,
 * or why the file was refused, and what would need a restart. Returns 0 or
 * ERR_INVALID (the old configuration stays).
 */
int reload_run(struct reload *rl);
/* Writes airlock_config_reloads_total and airlock_config_loaded_seconds to f. */
void reload_metrics_write(FILE *f);
/*
 * Frees every generation, current and old. Call when no thread can use
 * app->cfg or app->auth any more; sets both to NULL. NULL is a no-op.
 */
void reload_free(struct reload *rl);

#endif
