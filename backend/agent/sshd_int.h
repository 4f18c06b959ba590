/*
 * Internal to sshd*.c: the structs the parts of the agent's SSH server share,
 * and the functions one part calls in another. sshd.h is the public face.
 *
 *   sshd.c          the server object: host key, ssh_bind, TCP listener,
 *                   starting and joining the connection threads
 *   sshd_session.c  debug-session records (struct dsess, the registry of the
 *                   last state the server sent), reconciliation, and the
 *                   per-session queries (connections, last input, attribution)
 *   sshd_conn.c     one thread per connection: key exchange, public-key
 *                   auth, libssh's server callbacks, the ssh_event loop
 *   sshd_chan.c     channels: session requests (pty, shell, exec, sftp), the
 *                   child processes, flow control and output queues
 *   sshd_fwd.c      port forwarding (direct-tcpip channels)
 *
 * Locking: d->mu guards d->sessions, d->conns and the "Under d->mu" members
 * of struct conn; everything else in a struct conn and its channels belongs
 * to the connection's own thread.
 */
#ifndef AIRLOCK_SSHD_INT_H
#define AIRLOCK_SSHD_INT_H
#include <pthread.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include <libssh/callbacks.h>
#include <libssh/libssh.h>
#include <libssh/server.h>

#include "sshd.h"

#define CONN_MAX_CHANS 16
#define IO_CHUNK (32 * 1024)

/* ------------------------------------------------------------------------
 * Debug-session records
 * ------------------------------------------------------------------------ */

struct keyent {
    size_t member; /* index into s->members */
    ssh_key key;
};

struct sess_rec {
    struct dsess *s;
    struct keyent *keys;
    size_t n_keys;
    int64_t term_input_ms; /* last keystroke from a read-write browser terminal (monotonic), 0 */
    struct sess_rec *next;
};

/* ------------------------------------------------------------------------
 * Server, connections, channels
 * ------------------------------------------------------------------------ */

enum chan_kind { CHAN_SESSION, CHAN_FORWARD };

struct conn;

/* Child output read but not yet accepted by ssh_channel_write (a KEX was running). */
struct outq {
    unsigned char buf[IO_CHUNK];
    size_t off, len;
};

struct chan {
    struct conn *c;
    ssh_channel ch;
    struct ssh_channel_callbacks_struct cb;
    enum chan_kind kind;
    int started;  /* shell, exec or subsystem running */
    int is_shell; /* the tmux shell: its input counts for attribution */
    int pty;
    char term[64];
    int cols, rows;
    pid_t pid;
    int exited, status;
    int64_t exit_ms;
    int fd_in, fd_out, fd_err; /* -1 when closed; fd_in == fd_out for a pty or socket */
    unsigned char *ibuf;       /* client -> fd_in */
    size_t ilen;
    int client_eof; /* the client sent EOF */
    int in_shut;    /* EOF passed on to fd_in */
    int out_eof, err_eof;
    struct outq oq, eq; /* pending stdout / stderr bytes */
    int sent_eof;       /* forward: EOF sent to the client */
    int eow;            /* the client stopped writing our stdout (eow@openssh.com) */
    int closing;        /* we sent EOF + close */
    int dead;           /* to be freed by the loop */
};

struct reg {
    int fd;
    short events;
};

struct conn {
    struct sshd *d;
    pthread_t th;
    int fd;
    char *id;
    char *fixed_session; /* tunnel: the session named in the open message */
    /* Under d->mu: */
    char *session, *user;
    enum dsess_role role;
    int authed;
    int64_t authed_ms, last_input_ms;
    const char *kill_msg;
    int hold; /* its command asked to end the session: see sshd_conn_hold */
    int finished;
    /* Thread-private: */
    ssh_session s;
    ssh_event ev;
    struct ssh_server_callbacks_struct scb;
    struct chan *chans[CONN_MAX_CHANS];
    size_t n_chans;
    struct reg regs[CONN_MAX_CHANS * 2];
    size_t n_regs;
    int auth_tries;
    int openssh;  /* the client is OpenSSH: see sshd_chan_unknown_request */
    unsigned ops; /* snapshot at auth, refreshed per request */
    struct conn *next;
};

struct sshd {
    char *tmux_sock, *ctl_sock;
    struct recorder *rec; /* record.h, borrowed; NULL: nothing is recorded */
    char *shell;          /* the user's shell, for tmux and exec */
    char *path_env;       /* "PATH=<airlock's dir>:$PATH", or NULL when airlock is already there */
    char **env_drop;
    ssh_bind bind;
    pthread_mutex_t bind_mu;
    char *host_line;
    pthread_mutex_t mu;
    struct sess_rec *sessions;
    struct conn *conns;
    int stopping;
    int listen_fd;
    int stop_pipe[2];
    pthread_t listen_th;
    int listening;
    unsigned long n_tcp;
    int n_conns; /* in d->conns, finished or not */
};

/* ------------------------------------------------------------------------
 * Shared functions, by the file that defines them
 * ------------------------------------------------------------------------ */

/* sshd_session.c */

/* The record of debug session name, or NULL (borrowed; d->mu held). */
struct sess_rec *sshd_session_find(struct sshd *d, const char *name);
/* Frees a record, its parsed keys and its dsess. NULL-safe. */
void sshd_session_rec_free(struct sess_rec *r);

/* sshd_conn.c */

/* Thread entry of one connection (arg: the struct conn, which sshd.c frees after the join). */
void *sshd_conn_main(void *arg);
/* Current allowed operations of the connection's session (0 if it is gone); takes d->mu. */
unsigned sshd_conn_ops(struct conn *c);
/* The reason the connection is to be closed (a static string), or NULL; takes d->mu. */
const char *sshd_conn_kill_msg(struct conn *c);
/* Forgets the ssh_event registration of fd before a channel closes it. */
void sshd_conn_regs_drop(struct conn *c, int fd);

/* sshd_chan.c */

/*
 * A new channel of c around channel (which it takes: sshd_chan_free frees it),
 * with the session-request callbacks when kind is CHAN_SESSION. The channel
 * is stored in c->chans; the caller has checked there is room.
 */
struct chan *sshd_chan_new(struct conn *c, ssh_channel channel, enum chan_kind kind);
/* A channel request libssh has no name for (eow@openssh.com, see there). */
void sshd_chan_unknown_request(struct conn *c, ssh_message msg);
/* One pass over a channel after ssh_event_dopoll: move bytes, reap the child, close. */
void sshd_chan_service(struct chan *ch, int64_t now);
/* Sends EOF and close once, after an optional reason on stderr and the exit status. */
void sshd_chan_finish(struct chan *ch, const char *reason, int with_status);
/* Closes the fds, stops the child (SIGHUP, then SIGKILL), frees the channel and ch. */
void sshd_chan_free(struct chan *ch);

/* sshd_fwd.c */

/*
 * A direct-tcpip open request: connects to the destination and accepts the
 * channel, or refuses it. 0 when handled, 1 to let libssh send the refusal.
 */
int sshd_fwd_open(struct conn *c, ssh_message msg);

#endif
