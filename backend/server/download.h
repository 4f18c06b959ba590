/*
 * GET /download/NAME: the portable agent bundle (make dist) and its
 * checksum, from cfg->download_dir.
 */
#ifndef AIRLOCK_DOWNLOAD_H
#define AIRLOCK_DOWNLOAD_H

#include "api.h"

#define DOWNLOAD_BUNDLE "airlock-linux-amd64.tar.gz"

/*
 * The handler for GET and HEAD under /download/: only DOWNLOAD_BUNDLE and
 * DOWNLOAD_BUNDLE ".sha256" are served (any other name is 404, so nothing
 * else in the directory can be reached); streamed from the open file. A
 * name that is not built yet is 404 saying how to build it.
 */
int download_get(struct api_req *req, struct api_reply *rep);

#endif
