/*
 * Session recordings at airlockd (docs/recording.md): chunks an agent
 * uploads are checked (sequence, SHA-256, size cap), appended to
 * dataDir/recordings/<session>.cast (0600) and chained in the store; the
 * recording's digest goes into the session's audit events when it ends.
 * A required recording that cannot be written ends its session.
 */
#ifndef AIRLOCK_RECORDING_H
#define AIRLOCK_RECORDING_H
#include <stdint.h>

#include <jansson.h>

#include "api.h"
#include "recchain.h"

/* Chunks may still arrive this long after the session ended (the agent's last flush). */
#define RECORDING_LATE_S 60
/* Largest chunk: the body limit of the upload route (route.h ROUTE_BYTES_MAX, 1 MiB). */

/* Adds "recording" to a session view's status when its template records. */
void recording_status_add(const struct sess *s, json_t *status);

/*
 * One chunk from agent for session: seq (decimal), sha (hex of the body),
 * final (the agent's last chunk). Takes app->lock. 0, or an error with
 * rep->error set (400 digest, 404, 409 sequence or state, 413 size cap).
 */
int recording_chunk(struct app *app, const char *agent, const char *session, const char *seq_s,
                    const char *sha, int final, const char *data, size_t len, int64_t now,
                    struct api_reply *rep);

/* The agent could not record session: the recording fails (and a required one ends it). */
int recording_failure(struct app *app, const char *agent, const char *session, const char *reason,
                      int64_t now, struct api_reply *rep);

struct recording_check {
    char integrity[16]; /* intact, altered, missing */
    int64_t bytes, chunks, first_bad;
    char sha256[RECCHAIN_HEX];
    char state[16];
};

/*
 * Re-reads session's file against its stored chain, and stores the result
 * (status.recording.integrity). Takes app->lock for the store only.
 * 0, ERR_NOT_FOUND (no recording) or ERR_DB.
 */
int recording_verify(struct app *app, const char *session, struct recording_check *out);

/* The file of session (new string). */
char *recording_path(const struct app *app, const char *session);

/*
 * The reaper's pass: finishes recordings whose session ended more than
 * RECORDING_LATE_S ago without the agent's last chunk, and deletes the files
 * of sessions about to pass retention (before the rows go). Takes app->lock.
 */
void recording_reap(struct app *app, int64_t now);

#endif
