/*
 * Recordings in the store (migration 0008): one recordings row per
 * recorded session and one recording_chunks row per accepted chunk. The
 * file itself belongs to recording.c. Every call runs under app->lock.
 */
#ifndef AIRLOCK_STORE_RECORDING_H
#define AIRLOCK_STORE_RECORDING_H
#include <stdint.h>

#include <jansson.h>

#include "recchain.h"
#include "store.h"

struct rec_row {
    char state[16]; /* recording, finished, stopped, failed */
    int64_t bytes, chunks;
    char chain[RECCHAIN_HEX]; /* after the last chunk; "" before the first */
    char integrity[16];       /* intact, altered, missing */
    char *reason;             /* why it stopped or failed, or NULL */
    int64_t started_at, finished_at;
};

struct rec_chunk {
    int64_t offset, len;
    char sha256[RECCHAIN_HEX], chain[RECCHAIN_HEX];
};

/* Loads session's recording into *out (free out->reason): 0, ERR_NOT_FOUND or ERR_DB. */
int store_rec_get(struct store *st, const char *session, struct rec_row *out);
/* Creates session's recording (state recording). ERR_CONFLICT if it exists. */
int store_rec_create(struct store *st, const char *session, int64_t now);
/* Appends chunk seq and moves the recording's bytes, chunks and chain on. */
int store_rec_chunk_add(struct store *st, const char *session, int64_t seq,
                        const struct rec_chunk *c, int64_t now);
/* Chunk seq of session: 0 or ERR_NOT_FOUND. */
int store_rec_chunk_get(struct store *st, const char *session, int64_t seq, struct rec_chunk *out);
/* Every chunk in order (*out new, free()): 0 or ERR_DB. */
int store_rec_chunks(struct store *st, const char *session, struct rec_chunk **out, size_t *n);
/* Ends the recording: state (finished, stopped, failed) and reason (may be NULL). */
int store_rec_end(struct store *st, const char *session, const char *state, const char *reason,
                  int64_t now);
int store_rec_set_integrity(struct store *st, const char *session, const char *integrity);
/*
 * Names (new array of new strings) of sessions with a recording whose
 * session ended before t: with open=1 only recordings still 'recording'.
 */
int store_rec_names_ended_before(struct store *st, int64_t t, int open, char ***names, size_t *n);
/* status.recording of a session view (new reference), or NULL without a recording. */
json_t *store_rec_status_json(struct store *st, const char *session);

#endif
