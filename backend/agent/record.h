/*
 * The agent's recorder (docs/recording.md): for each Active session whose
 * template records, a thread pipes the output of the shared tmux pane
 * (tmux pipe-pane into a FIFO in the run directory), writes it as
 * asciicast v2 (asciicast.c) and uploads it to airlockd in numbered chunks
 * as it goes: every RECORD_FLUSH_MS or RECORD_FLUSH_BYTES, so a crash loses
 * at most the last seconds. The last chunk, sent when the session ends or
 * the agent stops, says so (X-Recording-Final).
 */
#ifndef AIRLOCK_RECORD_H
#define AIRLOCK_RECORD_H

#define RECORD_FLUSH_MS 2000
#define RECORD_FLUSH_BYTES (64 * 1024)
#define RECORD_CHUNK_MAX (1000 * 1024)       /* below airlockd's 1 MiB limit for chunks */
#define RECORD_READ_MAX 8192                 /* one event's output: at most 6x that once escaped */
#define RECORD_PENDING_MAX (8 * 1024 * 1024) /* kept while airlockd cannot be reached */
#define RECORD_LIVE_WAIT_MS 10000 /* a shell of a required recording waits this long for it */

struct recorder;

struct record_cfg {
    const char *server;     /* base URL, no trailing slash */
    const char *agent_path; /* "/api/v1/agents/<escaped name>" */
    const char *credential;
    const char *ca_file; /* NULL: the system store */
    const char *run_dir;
    const char *tmux_sock;
    /* Makes sure tmux session `session` exists (sshd_tmux_ensure): 0 or an error. */
    int (*ensure)(void *ud, const char *session);
    void *ud;
};

/* A new recorder; cfg's strings are copied. */
struct recorder *record_new(const struct record_cfg *cfg);

/*
 * The control channel's latest word on a session: starts its recording
 * when it is Active and recorded, ends it (the last chunk) when it ended.
 */
void record_update(struct recorder *rc, const char *session, const char *state, int enabled,
                   int required);

enum record_status {
    RECORD_OFF,     /* not recorded */
    RECORD_LIVE,    /* being recorded */
    RECORD_MISSING, /* recorded, but the recording is not running */
};

/*
 * Whether session is recorded; a recording that is starting is waited for
 * up to wait_ms. Called by the SSH server before a shell starts.
 */
enum record_status record_status(struct recorder *rc, const char *session, int wait_ms,
                                 int *required);

/* Ends every recording (their last chunks are sent) and frees rc. NULL is fine. */
void record_free(struct recorder *rc);

#endif
