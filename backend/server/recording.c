/*
 * Session recordings at airlockd (recording.h, docs/recording.md).
 *
 * A chunk is accepted under app->lock in one transaction: the checks, the
 * append to the file (truncated first to the length the store knows, so a
 * write cut short by a crash is dropped rather than kept), fdatasync, then
 * the chunk's row and the recording's new length and chain. A refusal
 * still commits its audit note.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core.h"
#include "err.h"
#include "log.h"
#include "recording.h"
#include "session.h"
#include "store_recording.h"
#include "util.h"
#include "xmalloc.h"

/* One chunk request, while it is being checked and applied. */
struct chunk_job {
    struct app *app;
    struct sess *s;
    struct rec_row row;
    int64_t seq, now;
    const char *sha;
    const char *data;
    size_t len;
    struct core_after after;
};

static int refuse(struct chunk_job *j, struct api_reply *rep, int r, const char *why);
static int end_recording(struct chunk_job *j, const char *state, const char *type,
                         const char *reason);
static int append_file(struct app *app, const char *session, int64_t at, const char *data,
                       size_t len, char *err, size_t err_len);
static int accept_chunk(struct chunk_job *j, int final, struct api_reply *rep);

void
recording_status_add(const struct sess *s, json_t *status)
{
    json_t *r;

    if (s->tmpl == NULL || !s->tmpl->rec_enabled || status == NULL)
        return;
    r = s->recording != NULL ? json_deep_copy(s->recording)
                             : json_pack("{s:s, s:i, s:i, s:n, s:s}", "state", "pending", "bytes",
                                         0, "chunks", 0, "sha256", "integrity", "intact");
    json_object_set_new(r, "enabled", json_true());
    json_object_set_new(r, "required", json_boolean(s->tmpl->rec_required));
    json_object_set_new(status, "recording", r);
}

char *
recording_path(const struct app *app, const char *session)
{
    return xasprintf("%s/recordings/%s.cast", app->cfg->data_dir, session);
}

/* Loads the session (of this agent, recording, not long over) and its recording row. */
static int
load_job(struct chunk_job *j, const char *agent, const char *session, struct api_reply *rep)
{
    int r;

    if ((r = store_sess_get(j->app->store, session, &j->s)) == ERR_NOT_FOUND ||
        (r == 0 && strcmp(j->s->agent, agent) != 0))
        return api_fail(rep, ERR_NOT_FOUND, "no session '%s' on this agent", session);
    if (r != 0)
        return r;
    if (!j->s->tmpl->rec_enabled)
        return api_fail(rep, ERR_CONFLICT, "session '%s' is not recorded", session);
    if (j->s->state != SESSION_ACTIVE &&
        !(session_state_ended(j->s->state) && j->s->ended_at + RECORDING_LATE_S >= j->now))
        return api_fail(rep, ERR_CONFLICT, "session '%s' is %s", session,
                        session_state_name(j->s->state));
    r = store_rec_get(j->app->store, session, &j->row);
    if (r == ERR_NOT_FOUND) {
        if ((r = store_rec_create(j->app->store, session, j->now)) != 0)
            return r;
        r = store_rec_get(j->app->store, session, &j->row);
    }
    if (r != 0)
        return r;
    if (strcmp(j->row.state, "recording") != 0)
        return api_fail(rep, ERR_CONFLICT, "the recording of '%s' is %s", session, j->row.state);
    return 0;
}

int
recording_chunk(struct app *app, const char *agent, const char *session, const char *seq_s,
                const char *sha, int final, const char *data, size_t len, int64_t now,
                struct api_reply *rep)
{
    struct chunk_job j;
    struct rec_chunk old;
    uint64_t seq;
    int r;

    memset(&j, 0, sizeof(j));
    j.app = app;
    j.now = now;
    j.sha = sha;
    j.data = data;
    j.len = len;
    if (parse_uint(seq_s, INT64_MAX, &seq) != 0)
        return api_fail(rep, ERR_INVALID, "chunk number '%s' is not a number", seq_s);
    if (!recchain_hex_ok(sha))
        return api_fail(rep, ERR_INVALID,
                        "header X-Chunk-SHA256 must be the chunk's SHA-256 as 64 lowercase hex");
    j.seq = (int64_t)seq;
    pthread_mutex_lock(&app->lock);
    if ((r = store_begin(app->store)) != 0)
        goto unlock;
    if ((r = load_job(&j, agent, session, rep)) != 0) {
        store_rollback(app->store);
        goto unlock;
    }
    if (j.seq < j.row.chunks && store_rec_chunk_get(app->store, session, j.seq, &old) == 0 &&
        strcmp(old.sha256, sha) == 0 && (size_t)old.len == len) {
        /* The agent sends a chunk again when it missed our answer: nothing to do. */
        store_rollback(app->store);
        rep->json = json_pack("{s:I, s:I, s:b}", "seq", (json_int_t)j.seq, "bytes",
                              (json_int_t)j.row.bytes, "duplicate", 1);
        goto unlock;
    }
    r = accept_chunk(&j, final, rep);
unlock:
    pthread_mutex_unlock(&app->lock);
    if (r == 0 || j.after.n_notify > 0 || j.after.close_session != NULL)
        core_after_run(app, &j.after);
    core_after_free(&j.after);
    free(j.row.reason);
    sess_free(j.s);
    return r;
}

/* Checks and applies the chunk; commits (also the audit note of a refusal). */
static int
accept_chunk(struct chunk_job *j, int final, struct api_reply *rep)
{
    struct app *app = j->app;
    const char *name = j->s->name;
    int64_t cap = (int64_t)j->s->tmpl->rec_max_mib * 1024 * 1024;
    struct rec_chunk c;
    char why[256], err[160];
    int r;

    if (j->seq != j->row.chunks) {
        snprintf(why, sizeof(why), "expected chunk %lld, got %lld", (long long)j->row.chunks,
                 (long long)j->seq);
        return refuse(j, rep, ERR_CONFLICT, why);
    }
    memset(&c, 0, sizeof(c));
    sha256_hex(j->data, j->len, c.sha256);
    if (!ct_streq(c.sha256, j->sha))
        return refuse(j, rep, ERR_INVALID, "the chunk's SHA-256 does not match X-Chunk-SHA256");
    if (j->row.bytes + (int64_t)j->len > cap) {
        snprintf(why, sizeof(why), "size cap of %d MiB reached", j->s->tmpl->rec_max_mib);
        if ((r = end_recording(j, "stopped", "recording_stopped", why)) != 0 ||
            (r = store_commit(app->store)) != 0) {
            store_rollback(app->store);
            return r;
        }
        return api_fail(rep, ERR_TOO_LARGE, "recording stopped: %s", why);
    }
    if (append_file(app, name, j->row.bytes, j->data, j->len, err, sizeof(err)) != 0) {
        snprintf(why, sizeof(why), "cannot write the recording: %s", err);
        if ((r = end_recording(j, "failed", "recording_failed", why)) != 0 ||
            (r = store_commit(app->store)) != 0) {
            store_rollback(app->store);
            return r;
        }
        return api_fail(rep, ERR_INTERNAL, "%s", why);
    }
    c.offset = j->row.bytes;
    c.len = (int64_t)j->len;
    if ((r = recchain_next(j->row.chain, j->data, j->len, c.chain)) != 0 ||
        (r = store_rec_chunk_add(app->store, name, j->seq, &c, j->now)) != 0 ||
        (j->seq == 0 &&
         (r = core_event(app, name, j->s->agent, "recording_started", NULL, j->now)) != 0)) {
        store_rollback(app->store);
        return r;
    }
    j->row.bytes += c.len;
    j->row.chunks++;
    memcpy(j->row.chain, c.chain, sizeof(c.chain));
    if (final && (r = end_recording(j, "finished", "recording_finished", NULL)) != 0) {
        store_rollback(app->store);
        return r;
    }
    if ((r = store_commit(app->store)) != 0) {
        store_rollback(app->store);
        return r;
    }
    rep->json = json_pack("{s:I, s:I, s:s}", "seq", (json_int_t)j->seq, "bytes",
                          (json_int_t)j->row.bytes, "sha256", c.chain);
    return 0;
}

/* Refuses the chunk with an audit note (committed), and answers r. */
static int
refuse(struct chunk_job *j, struct api_reply *rep, int r, const char *why)
{
    json_t *d = json_pack("{s:I, s:s}", "seq", (json_int_t)j->seq, "reason", why);
    int r2;

    log_warn("session %s: recording chunk %lld refused: %s", j->s->name, (long long)j->seq, why);
    if ((r2 = core_event(j->app, j->s->name, j->s->agent, "recording_rejected", d, j->now)) != 0 ||
        (r2 = store_commit(j->app->store)) != 0)
        store_rollback(j->app->store);
    json_decref(d);
    return api_fail(rep, r, "chunk refused: %s", why);
}

/*
 * Ends the recording (state, audit event type with the digest so far), and
 * a required recording that did not finish ends its session with the
 * reason. In the caller's transaction.
 */
static int
end_recording(struct chunk_job *j, const char *state, const char *type, const char *reason)
{
    json_t *d = json_pack("{s:s?, s:I, s:I, s:s?}", "sha256", j->row.chain[0] ? j->row.chain : NULL,
                          "bytes", (json_int_t)j->row.bytes, "chunks", (json_int_t)j->row.chunks,
                          "reason", reason);
    char msg[300];
    int r;

    if ((r = store_rec_end(j->app->store, j->s->name, state, reason, j->now)) == 0)
        r = core_event(j->app, j->s->name, j->s->agent, type, d, j->now);
    json_decref(d);
    if (r != 0 || strcmp(state, "finished") == 0 || !j->s->tmpl->rec_required ||
        j->s->state != SESSION_ACTIVE)
        return r;
    snprintf(msg, sizeof(msg), "required recording %s: %s", state, reason ? reason : "");
    log_warn("session %s: %s", j->s->name, msg);
    /* Active -> Failed, the transition the table has for a session that cannot go on. */
    return core_transition(j->app, j->s, SEV_AGENT_GONE, "airlock", msg, NULL, j->now, &j->after);
}

/* Makes dataDir/recordings (0700) and appends data at offset at; fsynced. */
static int
append_file(struct app *app, const char *session, int64_t at, const char *data, size_t len,
            char *err, size_t err_len)
{
    char *dir = xasprintf("%s/recordings", app->cfg->data_dir),
         *path = recording_path(app, session);
    size_t done = 0;
    ssize_t n;
    int fd = -1, r = ERR_SYSTEM;

    if (mkdir(dir, 0700) != 0 && errno != EEXIST)
        goto out;
    if ((fd = open(path, O_WRONLY | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600)) < 0 ||
        ftruncate(fd, (off_t)at) != 0)
        goto out;
    while (done < len) {
        if ((n = pwrite(fd, data + done, len - done, (off_t)(at + (int64_t)done))) < 0) {
            if (errno == EINTR)
                continue;
            goto out;
        }
        done += (size_t)n;
    }
    if (fdatasync(fd) != 0)
        goto out;
    r = 0;
out:
    if (r != 0) {
        snprintf(err, err_len, "%s", strerror(errno));
        log_warn("%s: %s", path, err);
    }
    if (fd >= 0)
        close(fd);
    free(dir);
    free(path);
    return r;
}

int
recording_failure(struct app *app, const char *agent, const char *session, const char *reason,
                  int64_t now, struct api_reply *rep)
{
    struct chunk_job j;
    int r;

    memset(&j, 0, sizeof(j));
    j.app = app;
    j.now = now;
    pthread_mutex_lock(&app->lock);
    if ((r = store_begin(app->store)) != 0)
        goto unlock;
    if ((r = load_job(&j, agent, session, rep)) != 0 ||
        (r = end_recording(&j, "failed", "recording_failed", reason)) != 0 ||
        (r = store_commit(app->store)) != 0) {
        store_rollback(app->store);
        goto unlock;
    }
    rep->json = json_pack("{s:s}", "state", "failed");
unlock:
    pthread_mutex_unlock(&app->lock);
    if (r == 0)
        core_after_run(app, &j.after);
    core_after_free(&j.after);
    free(j.row.reason);
    sess_free(j.s);
    return r;
}

/* Compares the file with the chunks; the first chunk that differs in *bad (-1: none). */
static const char *
check_file(const char *path, const struct rec_chunk *chunks, size_t n, int64_t bytes, int64_t *bad)
{
    char prev[RECCHAIN_HEX] = "", next[RECCHAIN_HEX], sha[RECCHAIN_HEX];
    char *buf = NULL;
    struct stat stt;
    size_t i, cap = 0;
    int fd;
    const char *res = "intact";

    *bad = -1;
    if ((fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW)) < 0)
        return errno == ENOENT ? "missing" : "unreadable";
    for (i = 0; i < n && *bad < 0; i++) {
        size_t len = (size_t)chunks[i].len, got = 0;
        ssize_t k;

        if (len > cap)
            buf = xrealloc(buf, cap = len);
        while (got < len &&
               (k = pread(fd, buf + got, len - got, (off_t)(chunks[i].offset + (int64_t)got))) > 0)
            got += (size_t)k;
        sha256_hex(buf, got, sha);
        if (got != len || strcmp(sha, chunks[i].sha256) != 0 ||
            recchain_next(prev, buf, len, next) != 0 || strcmp(next, chunks[i].chain) != 0)
            *bad = (int64_t)i;
        memcpy(prev, next, sizeof(prev));
    }
    /* Bytes added past the last chunk are an alteration too. */
    if (*bad < 0 && (fstat(fd, &stt) != 0 || stt.st_size != bytes))
        *bad = (int64_t)n;
    if (*bad >= 0)
        res = "altered";
    close(fd);
    free(buf);
    return res;
}

int
recording_verify(struct app *app, const char *session, struct recording_check *out)
{
    struct rec_chunk *chunks = NULL;
    struct rec_row row;
    size_t n = 0;
    char *path = recording_path(app, session);
    int r;

    memset(out, 0, sizeof(*out));
    pthread_mutex_lock(&app->lock);
    r = store_rec_get(app->store, session, &row);
    if (r == 0)
        r = store_rec_chunks(app->store, session, &chunks, &n);
    pthread_mutex_unlock(&app->lock);
    if (r == 0) {
        /* Hashing a large file takes a while: outside the lock. */
        snprintf(out->integrity, sizeof(out->integrity), "%s",
                 check_file(path, chunks, n, row.bytes, &out->first_bad));
        out->bytes = row.bytes;
        out->chunks = row.chunks;
        memcpy(out->sha256, row.chain, sizeof(out->sha256));
        memcpy(out->state, row.state, sizeof(out->state));
        pthread_mutex_lock(&app->lock);
        r = store_rec_set_integrity(app->store, session, out->integrity);
        pthread_mutex_unlock(&app->lock);
        free(row.reason);
    }
    free(chunks);
    free(path);
    return r;
}

/* Names of recordings from store_rec_names_ended_before, under the lock. */
static void
names_before(struct app *app, int64_t t, int open, char ***names, size_t *n)
{
    pthread_mutex_lock(&app->lock);
    if (store_rec_names_ended_before(app->store, t, open, names, n) != 0) {
        *names = NULL;
        *n = 0;
    }
    pthread_mutex_unlock(&app->lock);
}

void
recording_reap(struct app *app, int64_t now)
{
    char **names = NULL;
    size_t n = 0, i;

    names_before(app, now - RECORDING_LATE_S, 1, &names, &n);
    for (i = 0; i < n; i++) {
        struct chunk_job j;

        memset(&j, 0, sizeof(j));
        j.app = app;
        j.now = now;
        pthread_mutex_lock(&app->lock);
        if (store_begin(app->store) == 0) {
            if (store_sess_get(app->store, names[i], &j.s) == 0 &&
                store_rec_get(app->store, names[i], &j.row) == 0 &&
                end_recording(&j, "finished", "recording_finished",
                              "the agent did not send its last chunk") == 0 &&
                store_commit(app->store) == 0)
                log_info("session %s: recording finished without the agent", names[i]);
            else
                store_rollback(app->store);
        }
        pthread_mutex_unlock(&app->lock);
        core_after_free(&j.after);
        free(j.row.reason);
        sess_free(j.s);
        free(names[i]);
    }
    free(names);
    names_before(app, now - app->cfg->retention_s, 0, &names, &n);
    for (i = 0; i < n; i++) {
        char *path = recording_path(app, names[i]);

        if (unlink(path) != 0 && errno != ENOENT)
            log_warn("%s: %s", path, strerror(errno));
        free(path);
        free(names[i]);
    }
    free(names);
}
