/*
 * The recording endpoints (docs/recording.md):
 *   PUT  /agents/{name}/recordings/{session}/chunks/{seq}  (agent credential)
 *   POST /agents/{name}/recordings/{session}/failure       (agent credential)
 *   GET  /debug-sessions/{name}/recording                  the .cast
 *   GET  /debug-sessions/{name}/recording/verify           integrity now
 */
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "api.h"
#include "err.h"
#include "recording.h"
#include "store_recording.h"
#include "xmalloc.h"

int
api_recording_chunk(struct api_req *req, struct api_reply *rep)
{
    const char *sha = api_header(req, "X-Chunk-SHA256");
    const char *final = api_header(req, "X-Recording-Final");
    int r;

    if ((r = api_agent_auth(req, rep, req->params[0])) != 0)
        return r;
    if (sha == NULL)
        return api_fail(rep, ERR_INVALID, "header X-Chunk-SHA256 is missing");
    if (final != NULL && strcmp(final, "1") != 0 && strcmp(final, "0") != 0)
        return api_fail(rep, ERR_INVALID, "header X-Recording-Final must be 0 or 1");
    return recording_chunk(req->app, req->params[0], req->params[1], req->params[2], sha,
                           final != NULL && strcmp(final, "1") == 0, req->raw ? req->raw : "",
                           req->raw_len, req->now, rep);
}

int
api_recording_failure(struct api_req *req, struct api_reply *rep)
{
    static const struct field fields[] = {{"reason", F_STRING, 1, 500}};
    int r;

    if ((r = api_agent_auth(req, rep, req->params[0])) != 0 ||
        (r = api_body_check(req, rep, fields, 1)) != 0)
        return r;
    return recording_failure(req->app, req->params[0], req->params[1], api_str(req, "reason"),
                             req->now, rep);
}

/* 404 unless the caller may see the session and it has a recording. */
static int
visible_recording(struct api_req *req, struct api_reply *rep, struct rec_row *row)
{
    struct sess *s = NULL;
    int r;

    pthread_mutex_lock(&req->app->lock);
    if ((r = api_load_visible(req, rep, req->params[0], &s)) == 0 &&
        (r = store_rec_get(req->app->store, req->params[0], row)) == ERR_NOT_FOUND)
        r = api_fail(rep, r, "session '%s' has no recording", req->params[0]);
    pthread_mutex_unlock(&req->app->lock);
    sess_free(s);
    return r;
}

int
api_recording_get(struct api_req *req, struct api_reply *rep)
{
    struct rec_row row;
    struct stat st;
    char *path;
    int fd, r;

    if ((r = visible_recording(req, rep, &row)) != 0)
        return r;
    free(row.reason);
    path = recording_path(req->app, req->params[0]);
    fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    free(path);
    if (fd < 0 || fstat(fd, &st) != 0) {
        if (fd >= 0)
            close(fd);
        return api_fail(rep, ERR_NOT_FOUND, "the recording's file is missing");
    }
    rep->has_file = 1;
    rep->file_fd = fd;
    /* What was accepted; bytes appended behind airlockd's back are not served. */
    rep->file_size = (uint64_t)(st.st_size < row.bytes ? st.st_size : row.bytes);
    rep->content_type = "application/x-asciicast";
    return 0;
}

int
api_recording_verify(struct api_req *req, struct api_reply *rep)
{
    struct recording_check c;
    struct rec_row row;
    int r;

    if ((r = visible_recording(req, rep, &row)) != 0)
        return r;
    free(row.reason);
    if ((r = recording_verify(req->app, req->params[0], &c)) != 0)
        return api_fail(rep, r, "cannot verify the recording");
    rep->json = json_pack("{s:s, s:s, s:I, s:I, s:s?, s:o}", "session", req->params[0], "integrity",
                          c.integrity, "bytes", (json_int_t)c.bytes, "chunks", (json_int_t)c.chunks,
                          "sha256", c.sha256[0] ? c.sha256 : NULL, "firstBadChunk",
                          c.first_bad >= 0 ? json_integer(c.first_bad) : json_null());
    json_object_set_new(rep->json, "state", json_string(c.state));
    return 0;
}
