/*
 * The web UI's files from cfg->ui_dir, with a history-mode fallback to
 * index.html and a Content-Security-Policy that allows the people issuers.
 */
#ifndef AIRLOCK_STATIC_H
#define AIRLOCK_STATIC_H

#include <sys/types.h>

#include "api.h"

/*
 * The handler for GET/HEAD of any path no other route has: sets rep to the
 * file (opened, taken by rep) with its type, caching and CSP. 400 for a
 * path that does not decode or climbs out, 404 for a missing asset or an
 * unbuilt UI.
 */
int static_get(struct api_req *req, struct api_reply *rep);

/* Opens dir + rel (rel starts with '/') if it is a regular file, with its size; -1 otherwise. */
int static_open_file(const char *dir, const char *rel, off_t *size);

/* The Content-Security-Policy for cfg. Returns a new string. */
char *static_csp(const struct config *cfg);

#endif
