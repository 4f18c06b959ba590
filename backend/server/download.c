/*
 * The agent bundle, served from download.dir. The name is compared with the
 * two the bundle has, whole and still percent-encoded, so no path is ever
 * built from the request: "..", "%2e%2e" or a longer name are simply other
 * names (404).
 */
#include <string.h>
#include <sys/types.h>

#include "download.h"
#include "err.h"
#include "static.h"

static const struct {
    const char *name, *type;
} files[] = {
    {"/" DOWNLOAD_BUNDLE, "application/gzip"},
    {"/" DOWNLOAD_BUNDLE ".sha256", "text/plain; charset=utf-8"},
};

int
download_get(struct api_req *req, struct api_reply *rep)
{
    const char *name = req->path + strlen("/download");
    off_t size = 0;
    size_t i;
    int fd;

    if (strncmp(req->path, "/download/", 10) != 0)
        return api_fail(rep, ERR_NOT_FOUND, "no such download");
    for (i = 0; i < sizeof(files) / sizeof(files[0]); i++)
        if (strcmp(name, files[i].name) == 0)
            break;
    if (i == sizeof(files) / sizeof(files[0]))
        return api_fail(rep, ERR_NOT_FOUND,
                        "no such download; this server offers /download/" DOWNLOAD_BUNDLE
                        " and /download/" DOWNLOAD_BUNDLE ".sha256");
    if ((fd = static_open_file(req->app->cfg->download_dir, name, &size)) < 0)
        return api_fail(rep, ERR_NOT_FOUND,
                        "the agent bundle is not on this server: build it with `make dist` "
                        "(then `make install`), or point download.dir at the directory "
                        "that holds %s",
                        name + 1);
    rep->has_file = 1;
    rep->file_fd = fd;
    rep->file_size = (uint64_t)size;
    rep->content_type = files[i].type;
    rep->cache = "no-cache"; /* a new server version brings a new bundle under the same name */
    return 0;
}
