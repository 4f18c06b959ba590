/*
 * The agent's embedded SSH server (libssh 0.10, DESIGN.md 8.4).
 *
 * The control channel feeds it the desired state of each debug session
 * (sshd_session_update); it authorises public keys against the active
 * participants of that state, gives owners and participants a shared tmux
 * session, viewers a read-only attach, and gates exec, sftp and direct-tcpip
 * on allowedOperations. Connections arrive either as one end of a socketpair
 * bridged to a dial-back WebSocket (sshd_serve_fd) or on a TCP listener
 * (sshd_listen). One thread per SSH connection; only that thread touches
 * its ssh_session.
 *
 * the sshd*.c files own every libssh call and returns ERR_* at its boundary.
 */
#ifndef AIRLOCK_SSHD_H
#define AIRLOCK_SSHD_H
#include <stddef.h>
#include <stdint.h>

#include "err.h"

enum dsess_role { ROLE_OWNER, ROLE_PARTICIPANT, ROLE_VIEWER };

#define DSESS_OP_SHELL 0x01
#define DSESS_OP_EXEC 0x02
#define DSESS_OP_SFTP 0x04
#define DSESS_OP_FORWARD 0x08

/* One participant of a debug session as the server last described it. */
struct dsess_member {
    char *user;
    enum dsess_role role;
    char **keys; /* "ssh-ed25519 AAAA… comment" lines */
    size_t n_keys;
};

/* The desired state of one debug session (a control-channel "session" message). */
struct dsess {
    char *name;
    char *state;        /* "Active", "Pending", "Expired", ... as sent */
    char *message;      /* status message ("waiting for agent"), may be NULL */
    int64_t expires_at; /* Unix seconds, 0 = unknown */
    struct dsess_member *members;
    size_t n_members;
    unsigned ops;           /* DSESS_OP_* */
    int sharing;            /* terminalSharing.enabled */
    int max_participants;   /* terminalSharing.maxParticipants, 0 = unknown */
    int64_t idle_timeout_s; /* idleTimeout, 0 = none (or an older server) */
    int can_extend;         /* canExtend: a renewal is allowed now */
    int rec_enabled;        /* recording.enabled (record.c) */
    int rec_required;       /* recording.required */
};

/* 1 for Expired, Terminated and Failed. */
int dsess_state_ended(const char *state);
/* A deep copy (new). */
struct dsess *dsess_dup(const struct dsess *s);
void dsess_free(struct dsess *s);
/* Role by name ("owner", "participant", "viewer"); -1 when unknown. */
int dsess_role_parse(const char *s);
const char *dsess_role_name(enum dsess_role r);

struct sshd_opts {
    const char *host_key_file;   /* NULL: generate an ed25519 key for this run */
    const char *tmux_sock;       /* tmux -S path */
    const char *ctl_sock;        /* $AIRLOCK_SOCK for shells */
    const char *const *env_drop; /* variables not passed to shells (NULL-terminated) */
};

struct sshd;

/*
 * Creates the server: loads or generates the host key. Returns 0 and a new
 * server in *dp (free with sshd_free), or ERR_INVALID when the key file
 * cannot be read.
 */
int sshd_new(const struct sshd_opts *o, struct sshd **dp) WARN_UNUSED;
/*
 * Closes every connection (each tells its client why; see sshd_conn_hold for
 * the one that waits for its command) and joins their threads; from then on
 * new connections are refused. The server stays usable for queries and
 * updates. Idempotent, NULL-safe.
 */
void sshd_stop(struct sshd *d);
/* sshd_stop, then kills the tmux server and frees. NULL-safe. */
void sshd_free(struct sshd *d);
/* The host public key as an authorized_keys line "ssh-ed25519 AAAA…" (borrowed). */
const char *sshd_host_key_line(const struct sshd *d);

/*
 * Listens on addr ("127.0.0.1:2222", "[::1]:22", ":2222") and serves
 * connections in a thread. A connection there may belong to any session whose
 * participants hold the key; the SSH user name, when it names a session,
 * selects it. *port receives the bound port (may be NULL). 0 or ERR_SYSTEM.
 */
int sshd_listen(struct sshd *d, const char *addr, int *port) WARN_UNUSED;
/*
 * Serves one SSH connection on fd (steals it) for debug session `session`,
 * in a new thread. conn_id names it in logs and for attribution.
 */
void sshd_serve_fd(struct sshd *d, int fd, const char *session, const char *conn_id);

/*
 * Replaces the desired state of session s->name (copied) and reconciles:
 * connections of users no longer active (or whose role changed) are closed
 * within a second with "airlock: you were removed from the session"; when
 * the state is ended, every connection of the session is closed with
 * "airlock: session ended" and its tmux session is killed.
 */
void sshd_session_update(struct sshd *d, const struct dsess *s);
/* A copy of the last state of session name (new, dsess_free) or NULL. */
struct dsess *sshd_session_get(struct sshd *d, const char *name);
/*
 * The recorder (record.h, borrowed; set before serving): shells of a
 * recorded session are told so first, and nothing starts in a session whose
 * required recording is not running.
 */
struct recorder;
void sshd_set_recorder(struct sshd *d, struct recorder *rc);
/* Makes sure tmux session `session` exists, as a shell would create it: 0 or ERR_SYSTEM. */
int sshd_tmux_ensure(struct sshd *d, const char *session);

/*
 * The command on connection conn_id ($AIRLOCK_CONN) of session asks to end it
 * (`airlock resume`). When the session ends, that connection is closed only
 * once its commands have exited and sent their exit status, so that the one
 * that asked reports how it went (bounded: see CONN_HOLD_MAX_MS in
 * sshd_conn.c); every other connection closes at once. The mark lapses when
 * the connection runs no command any more (the request was refused). No-op
 * when conn_id names no live connection of session. Both strings borrowed.
 */
void sshd_conn_hold(struct sshd *d, const char *session, const char *conn_id);
/*
 * A browser terminal (term.c): starts a tmux client attached to session's
 * shared tmux session (created as for a viewer's shell when missing) on a
 * new PTY of cols x rows; read-only (`attach -r`) when read_only. Refused
 * with ERR_FORBIDDEN unless the last state says Active with sharing on, and
 * read-write only when the session allows a shell. On 0, *pid and *master
 * (non-blocking) are the client's.
 */
int sshd_term_spawn(struct sshd *d, const char *session, int read_only, int cols, int rows,
                    int *pid, int *master);
/* Open SSH connections of session (all sessions when NULL). */
int sshd_conn_count(struct sshd *d, const char *session);
/* Monotonic ms of the last keystroke or exec input in session (0 = none). */
int64_t sshd_last_input_ms(struct sshd *d, const char *session);
/*
 * A keystroke from a read-write browser terminal of session (term.c): it
 * counts as input for the idle rule like an SSH participant's. The time of
 * the last one (monotonic ms, 0 = none).
 */
void sshd_term_input(struct sshd *d, const char *session);
int64_t sshd_term_input_ms(struct sshd *d, const char *session);

/* One open, authenticated SSH connection (the activity report's entry). */
struct sshd_conn_info {
    char *id, *user;
    enum dsess_role role;
    int64_t authed_ms, last_input_ms; /* monotonic; last_input_ms 0 = none */
};
/* The open connections of session, oldest first (new array; sshd_conn_list_free). */
void sshd_conn_list(struct sshd *d, const char *session, struct sshd_conn_info **v, size_t *n);
void sshd_conn_list_free(struct sshd_conn_info *v, size_t n);

/*
 * Who an `airlock extend/resume` run inside session belongs to (new string,
 * or NULL when nobody qualifies). conn_id (from $AIRLOCK_CONN of an exec
 * child, may be NULL) wins when it is a live non-viewer connection of the
 * session; otherwise the non-viewer whose connection sent the latest input
 * to the session, then the latest non-viewer to authenticate, then the owner.
 */
char *sshd_attribute(struct sshd *d, const char *session, const char *conn_id);

#endif
