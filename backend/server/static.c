/*
 * Static UI files. The path is decoded whole (unlike API paths), refused
 * when it could leave ui_dir, and an unknown path gets index.html so the
 * single-page app can route it, except under /assets/ where a missing file
 * is a real 404. Files under /assets/ are content-hashed by the build and
 * cached for a year; everything else is revalidated.
 */
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "api.h"
#include "err.h"
#include "route.h"
#include "static.h"
#include "util.h"
#include "xmalloc.h"

static const char *
mime_type(const char *path)
{
    static const struct {
        const char *ext, *type;
    } types[] = {
        {".html", "text/html; charset=utf-8"},
        {".js", "text/javascript; charset=utf-8"},
        {".mjs", "text/javascript; charset=utf-8"},
        {".css", "text/css; charset=utf-8"},
        {".json", "application/json"},
        {".svg", "image/svg+xml"},
        {".png", "image/png"},
        {".ico", "image/x-icon"},
        {".woff2", "font/woff2"},
        {".woff", "font/woff"},
        {".txt", "text/plain; charset=utf-8"},
        {".map", "application/json"},
        {".webmanifest", "application/manifest+json"},
    };
    const char *dot = strrchr(path, '.');
    size_t i;

    for (i = 0; dot && i < sizeof(types) / sizeof(types[0]); i++)
        if (strcmp(dot, types[i].ext) == 0)
            return types[i].type;
    return "application/octet-stream";
}

char *
static_csp(const struct config *cfg)
{
    char *origins = xstrdup(""), *csp;
    size_t i;

    for (i = 0; i < cfg->n_issuers; i++) {
        const char *iss = cfg->issuers[i].issuer;
        const char *p = strstr(iss, "://");
        const char *end = p ? strchr(p + 3, '/') : NULL;
        size_t n = end ? (size_t)(end - iss) : strlen(iss);
        char *next;

        if (cfg->issuers[i].kind != ISSUER_USER)
            continue;
        next = xasprintf("%s %.*s", origins, (int)n, iss);
        free(origins);
        origins = next;
    }
    /* 'wasm-unsafe-eval': the recording player (asciinema-player) runs its terminal as
       WebAssembly; it allows compiling WebAssembly, not eval() of JavaScript. */
    csp = xasprintf("default-src 'self'; script-src 'self' 'wasm-unsafe-eval'; style-src 'self' "
                    "'unsafe-inline'; img-src 'self' data:; font-src 'self'; "
                    "connect-src 'self'%s; frame-src 'self'%s; frame-ancestors 'none'; "
                    "base-uri 'self'; form-action 'self'; object-src 'none'",
                    origins, origins);
    free(origins);
    return csp;
}

int
static_open_file(const char *dir, const char *rel, off_t *size)
{
    char *full = xasprintf("%s%s", dir, rel);
    struct stat sb;
    int fd = open(full, O_RDONLY | O_CLOEXEC);

    free(full);
    if (fd >= 0 && (fstat(fd, &sb) != 0 || !S_ISREG(sb.st_mode))) {
        close(fd);
        fd = -1;
    }
    if (fd >= 0)
        *size = sb.st_size;
    return fd;
}

int
static_get(struct api_req *req, struct api_reply *rep)
{
    const char *dir = req->app->cfg->ui_dir;
    char *path = NULL;
    off_t size = 0;
    int fd = -1, r;

    if (route_decode(req->path, strlen(req->path), 0, &path) != 0 || strstr(path, "/..") != NULL ||
        strstr(path, "\\") != NULL) {
        r = api_fail(rep, ERR_INVALID, "bad path");
        goto out;
    }
    if (strcmp(path, "/") != 0)
        fd = static_open_file(dir, path, &size);
    if (fd < 0) {
        /* History-mode fallback: unknown paths get index.html, but not missing assets. */
        if (strncmp(path, "/assets/", 8) == 0) {
            r = api_fail(rep, ERR_NOT_FOUND, "no such file");
            goto out;
        }
        free(path);
        path = xstrdup("/index.html");
        if ((fd = static_open_file(dir, path, &size)) < 0) {
            r = api_fail(rep, ERR_NOT_FOUND,
                         "the web UI is not built (run make); the API is at /api/v1");
            goto out;
        }
    }
    rep->has_file = 1;
    rep->file_fd = fd;
    rep->file_size = (uint64_t)size;
    rep->content_type = mime_type(path);
    rep->cache =
        strncmp(path, "/assets/", 8) == 0 ? "public, max-age=31536000, immutable" : "no-cache";
    rep->csp = static_csp(req->app->cfg);
    r = 0;
out:
    free(path);
    return r;
}
