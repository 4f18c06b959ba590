/*
 * The agent's embedded SSH server (libssh 0.10.6). See sshd.h for the
 * interface and DESIGN.md 8.4 for the contract.
 *
 * Map of this file:
 *   - debug-session records (struct dsess and the registry of the last state
 *     the server sent, with each participant's keys parsed once);
 *   - struct sshd: host key, ssh_bind, registry, connections, TCP listener;
 *   - one thread per connection (conn_main): key exchange, public-key auth
 *     against the registry, then an ssh_event loop that drives every channel;
 *   - channels (struct chan): a session channel runs tmux (shell), a command
 *     (exec) or sftp-server (subsystem); a direct-tcpip channel is a TCP
 *     socket. Both are "an fd we write the client's bytes to and fds we read
 *     the client's bytes from".
 *
 * Flow control (LIBS.md 5, pitfalls 1 and 2). No channel_data_function is
 * registered: libssh keeps what the client sends in the channel buffer and
 * only grows the client's window as that buffer is read. The loop pulls with
 * ssh_channel_read_nonblocking() into a bounded per-channel buffer only while
 * that buffer has room, and writes it to the child's non-blocking fd. The
 * other way, it reads the child only while the client's window is open and
 * never more than the window, so ssh_channel_write() never waits. The session
 * is non-blocking after the key exchange, so nothing in the loop blocks and a
 * removal is acted on within one 100 ms poll.
 *
 * Key re-exchange: while a KEX runs (OpenSSH re-keys after RekeyLimit, 1 GiB
 * for chacha20-poly1305), a non-blocking ssh_channel_write() sends nothing and
 * returns 0 (or a short count). What was read from the child then waits in a
 * per-stream buffer (struct outq), the child is not read until it is sent, and
 * the loop keeps polling the session so that the KEX completes.
 *
 * Privilege: the agent runs as the CI job's (or host's) user and the shells
 * it serves run as that same user, so there is no privileged side to
 * separate (STYLE.md 2.13). Participants get exactly what the job could do.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <pwd.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <libssh/callbacks.h>
#include <libssh/libssh.h>
#include <libssh/server.h>

#include "err.h"
#include "log.h"
#include "sshd.h"
#include "tmux.h"
#include "util.h"
#include "xmalloc.h"

extern char **environ;

#define CONN_MAX_CHANS 16
#define CHAN_BUF_MAX (256 * 1024) /* client bytes waiting for a slow child, per channel */
#define IO_CHUNK (32 * 1024)
#define KEX_TIMEOUT_S 30
#define AUTH_GRACE_MS 60000
#define AUTH_MAX_TRIES 20
#define POLL_MS 100
#define CLOSE_GRACE_MS 400 /* after our close, how long the client gets to close back */
#define PTY_EXIT_DRAIN_MS 300
#define EXEC_DRAIN_MS 500 /* on a kill, a running command gets this long to finish */
#define FORWARD_CONNECT_MS 5000
#define SFTP_SERVER "/usr/lib/openssh/sftp-server"
#define SSHD_MAX_CONNS 256
/*
 * Our version string, after "SSH-2.0-". OpenSSH's client sends eow@openssh.com
 * when its stdout fails (`ssh host cmd | head`), but only to a server whose
 * version matches "OpenSSH*" (compat.c: SSH_NEW_OPENSSH); without it, it drops
 * the rest of the output and the command runs on for ever. That flag changes
 * nothing else but a no-more-sessions@openssh.com global request (want-reply
 * 0), which libssh ignores. No version number, so that no client applies a
 * workaround meant for some OpenSSH release ("OpenSSH_7.4*" and the like).
 */
#define SSHD_BANNER "OpenSSH_compat airlock"

#define MSG_ENDED "airlock: session ended"
#define MSG_REMOVED "airlock: you were removed from the session"

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
    int sent_eof; /* forward: EOF sent to the client */
    int eow;      /* the client stopped writing our stdout (eow@openssh.com) */
    int closing;  /* we sent EOF + close */
    int dead;     /* to be freed by the loop */
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
    int openssh;  /* the client is OpenSSH: see on_unknown_request */
    unsigned ops; /* snapshot at auth, refreshed per request */
    struct conn *next;
};

struct sshd {
    char *tmux_sock, *ctl_sock;
    char *shell;    /* the user's shell, for tmux and exec */
    char *path_env; /* "PATH=<airlock's dir>:$PATH", or NULL when airlock is already there */
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

static void *conn_main(void *arg);
static void *listen_main(void *arg);
static void conn_reap(struct sshd *d, int all);
static char *find_shell(void);
static char *find_path_env(void);
static void sess_rec_free(struct sess_rec *r);
static int64_t mono_ms(void);
static int parse_key_line(const char *line, ssh_key *key);
static int split_addr(const char *addr, char *host, size_t host_len, char *port, size_t port_len);

/* ------------------------------------------------------------------------
 * struct dsess helpers
 * ------------------------------------------------------------------------ */

int
dsess_state_ended(const char *state)
{
    return state != NULL && (strcmp(state, "Expired") == 0 || strcmp(state, "Terminated") == 0 ||
                             strcmp(state, "Failed") == 0);
}

struct dsess *
dsess_dup(const struct dsess *s)
{
    struct dsess *n = xcalloc(1, sizeof(*n));
    size_t i, j;

    *n = *s;
    n->name = xstrdup(s->name);
    n->state = xstrdup(s->state ? s->state : "");
    n->message = s->message ? xstrdup(s->message) : NULL;
    n->members = xcalloc(s->n_members ? s->n_members : 1, sizeof(*n->members));
    for (i = 0; i < s->n_members; i++) {
        const struct dsess_member *m = &s->members[i];

        n->members[i].user = xstrdup(m->user);
        n->members[i].role = m->role;
        n->members[i].n_keys = m->n_keys;
        n->members[i].keys = xcalloc(m->n_keys ? m->n_keys : 1, sizeof(char *));
        for (j = 0; j < m->n_keys; j++)
            n->members[i].keys[j] = xstrdup(m->keys[j]);
    }
    return n;
}

void
dsess_free(struct dsess *s)
{
    size_t i, j;

    if (s == NULL)
        return;
    for (i = 0; i < s->n_members; i++) {
        for (j = 0; j < s->members[i].n_keys; j++)
            free(s->members[i].keys[j]);
        free(s->members[i].keys);
        free(s->members[i].user);
    }
    free(s->members);
    free(s->name);
    free(s->state);
    free(s->message);
    free(s);
}

int
dsess_role_parse(const char *s)
{
    if (s == NULL)
        return -1;
    if (strcmp(s, "owner") == 0)
        return ROLE_OWNER;
    if (strcmp(s, "participant") == 0)
        return ROLE_PARTICIPANT;
    if (strcmp(s, "viewer") == 0)
        return ROLE_VIEWER;
    return -1;
}

const char *
dsess_role_name(enum dsess_role r)
{
    switch (r) {
    case ROLE_OWNER:
        return "owner";
    case ROLE_PARTICIPANT:
        return "participant";
    case ROLE_VIEWER:
        return "viewer";
    }
    return "?";
}

/* ------------------------------------------------------------------------
 * Server lifecycle
 * ------------------------------------------------------------------------ */

static int
host_key_load(const char *path, ssh_key *keyp)
{
    ssh_key key = NULL;
    struct stat st;
    int rc;

    *keyp = NULL;
    if (path != NULL && stat(path, &st) == 0) {
        if (ssh_pki_import_privkey_file(path, NULL, NULL, NULL, &key) != SSH_OK) {
            log_warn("cannot read host key %s", path);
            return ERR_INVALID;
        }
        *keyp = key;
        return 0;
    }
    if (ssh_pki_generate(SSH_KEYTYPE_ED25519, 0, &key) != SSH_OK) {
        log_warn("cannot generate an ed25519 host key");
        return ERR_INTERNAL;
    }
    if (path != NULL) {
        /* A long-lived host keeps its key: write it for the next start. */
        rc = ssh_pki_export_privkey_file(key, NULL, NULL, NULL, path);
        if (rc != SSH_OK || chmod(path, 0600) != 0) {
            log_warn("cannot write host key %s", path);
            ssh_key_free(key);
            return ERR_SYSTEM;
        }
        log_info("generated host key %s", path);
    }
    *keyp = key;
    return 0;
}

int
sshd_new(const struct sshd_opts *o, struct sshd **dp)
{
    struct sshd *d = NULL;
    ssh_key key = NULL;
    char *b64 = NULL;
    bool no = false;
    size_t n = 0;
    int r = ERR_INTERNAL;

    *dp = NULL;
    ssh_init();
    if ((r = host_key_load(o->host_key_file, &key)) != 0)
        goto out;
    if (ssh_pki_export_pubkey_base64(key, &b64) != SSH_OK) {
        r = ERR_INTERNAL;
        goto out;
    }
    d = xcalloc(1, sizeof(*d));
    d->listen_fd = -1;
    d->stop_pipe[0] = d->stop_pipe[1] = -1;
    pthread_mutex_init(&d->mu, NULL);
    pthread_mutex_init(&d->bind_mu, NULL);
    d->host_line = xasprintf("%s %s", ssh_key_type_to_char(ssh_key_type(key)), b64);
    d->tmux_sock = xstrdup(o->tmux_sock);
    d->shell = find_shell();
    d->path_env = find_path_env();
    d->ctl_sock = xstrdup(o->ctl_sock ? o->ctl_sock : "");
    while (o->env_drop != NULL && o->env_drop[n] != NULL)
        n++;
    d->env_drop = xcalloc(n + 4, sizeof(char *));
    for (size_t i = 0; i < n; i++)
        d->env_drop[i] = xstrdup(o->env_drop[i]);
    /* A nested tmux refuses to start while these say it is inside one. */
    d->env_drop[n++] = xstrdup("TMUX");
    d->env_drop[n++] = xstrdup("TMUX_PANE");
    d->env_drop[n] = NULL;

    d->bind = ssh_bind_new();
    ssh_bind_options_set(d->bind, SSH_BIND_OPTIONS_PROCESS_CONFIG, &no);
    if (ssh_bind_options_set(d->bind, SSH_BIND_OPTIONS_BANNER, SSHD_BANNER) != SSH_OK) {
        log_warn("ssh_bind: %s", ssh_get_error(d->bind));
        r = ERR_INTERNAL;
        goto out;
    }
    /* IMPORT_KEY takes ownership of the key; the bind frees it. */
    if (ssh_bind_options_set(d->bind, SSH_BIND_OPTIONS_IMPORT_KEY, key) != SSH_OK) {
        log_warn("ssh_bind: %s", ssh_get_error(d->bind));
        r = ERR_INTERNAL;
        goto out;
    }
    key = NULL;
    *dp = d;
    d = NULL;
    r = 0;
out:
    ssh_key_free(key);
    ssh_string_free_char(b64);
    sshd_free(d);
    return r;
}

void
sshd_free(struct sshd *d)
{
    struct sess_rec *r, *next;
    struct conn *c;

    if (d == NULL)
        return;
    pthread_mutex_lock(&d->mu);
    d->stopping = 1;
    for (c = d->conns; c != NULL; c = c->next) {
        if (c->kill_msg == NULL)
            c->kill_msg = "airlock: agent shutting down";
        /* Wakes a thread stuck in the key exchange; libssh still owns the fd. */
        if (!c->authed && c->fd >= 0)
            shutdown(c->fd, SHUT_RDWR);
    }
    pthread_mutex_unlock(&d->mu);
    if (d->listening) {
        if (write(d->stop_pipe[1], "x", 1) < 0) {
            /* The listener also polls with a timeout. */
        }
        pthread_join(d->listen_th, NULL);
    }
    if (d->listen_fd >= 0)
        close(d->listen_fd);
    if (d->stop_pipe[0] >= 0) {
        close(d->stop_pipe[0]);
        close(d->stop_pipe[1]);
    }
    conn_reap(d, 1);
    if (d->tmux_sock != NULL)
        tmux_server_kill(d->tmux_sock);
    for (r = d->sessions; r != NULL; r = next) {
        next = r->next;
        sess_rec_free(r);
    }
    if (d->bind != NULL)
        ssh_bind_free(d->bind);
    for (size_t i = 0; d->env_drop != NULL && d->env_drop[i] != NULL; i++)
        free(d->env_drop[i]);
    free(d->env_drop);
    free(d->host_line);
    free(d->tmux_sock);
    free(d->ctl_sock);
    free(d->shell);
    free(d->path_env);
    pthread_mutex_destroy(&d->mu);
    pthread_mutex_destroy(&d->bind_mu);
    free(d);
}

const char *
sshd_host_key_line(const struct sshd *d)
{
    return d->host_line;
}

int
sshd_listen(struct sshd *d, const char *addr, int *port)
{
    struct addrinfo hints, *res = NULL, *ai;
    char host[256], portstr[16];
    int fd = -1, one = 1, r = ERR_SYSTEM;
    struct sockaddr_storage ss;
    socklen_t sl = sizeof(ss);

    if (split_addr(addr, host, sizeof(host), portstr, sizeof(portstr)) != 0) {
        log_warn("bad listen address '%s'", addr);
        return ERR_INVALID;
    }
    memset(&hints, 0, sizeof(hints));
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
    if (getaddrinfo(host[0] ? host : NULL, portstr, &hints, &res) != 0) {
        log_warn("cannot resolve listen address '%s'", addr);
        return ERR_INVALID;
    }
    for (ai = res; ai != NULL; ai = ai->ai_next) {
        fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC, ai->ai_protocol);
        if (fd < 0)
            continue;
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
        if (bind(fd, ai->ai_addr, ai->ai_addrlen) == 0 && listen(fd, 64) == 0)
            break;
        close(fd);
        fd = -1;
    }
    freeaddrinfo(res);
    if (fd < 0) {
        log_warn("cannot listen on %s: %s", addr, strerror(errno));
        return ERR_SYSTEM;
    }
    if (port != NULL && getsockname(fd, (struct sockaddr *)&ss, &sl) == 0)
        *port = ntohs(ss.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&ss)->sin6_port
                                               : ((struct sockaddr_in *)&ss)->sin_port);
    if (pipe2(d->stop_pipe, O_CLOEXEC) != 0) {
        close(fd);
        return ERR_SYSTEM;
    }
    d->listen_fd = fd;
    if (pthread_create(&d->listen_th, NULL, listen_main, d) != 0) {
        log_warn("cannot start the listener thread");
        return ERR_SYSTEM;
    }
    d->listening = 1;
    r = 0;
    return r;
}

void
sshd_serve_fd(struct sshd *d, int fd, const char *session, const char *conn_id)
{
    struct conn *c = xcalloc(1, sizeof(*c));
    int stopping;

    conn_reap(d, 0);
    c->d = d;
    c->fd = fd;
    c->id = xstrdup(conn_id ? conn_id : "?");
    c->fixed_session = session ? xstrdup(session) : NULL;
    pthread_mutex_lock(&d->mu);
    stopping = d->stopping;
    if (!stopping && d->n_conns >= SSHD_MAX_CONNS) {
        /* Unauthenticated connections hold a thread for up to AUTH_GRACE_MS: cap them. */
        log_warn("conn %s: refused, %d connections already", c->id, d->n_conns);
        stopping = 1;
    }
    if (!stopping) {
        c->next = d->conns;
        d->conns = c;
        d->n_conns++;
    }
    pthread_mutex_unlock(&d->mu);
    if (stopping || pthread_create(&c->th, NULL, conn_main, c) != 0) {
        if (!stopping) {
            log_warn("conn %s: cannot start a thread", c->id);
            struct conn **pp;

            pthread_mutex_lock(&d->mu);
            for (pp = &d->conns; *pp != NULL; pp = &(*pp)->next) {
                if (*pp == c) {
                    *pp = c->next;
                    break;
                }
            }
            d->n_conns--;
            pthread_mutex_unlock(&d->mu);
        }
        close(fd);
        free(c->id);
        free(c->fixed_session);
        free(c);
    }
}

/* ------------------------------------------------------------------------
 * Desired state and reconciliation
 * ------------------------------------------------------------------------ */

static struct sess_rec *
sess_find(struct sshd *d, const char *name)
{
    struct sess_rec *r;

    for (r = d->sessions; r != NULL; r = r->next)
        if (strcmp(r->s->name, name) == 0)
            return r;
    return NULL;
}

static void
sess_rec_free(struct sess_rec *r)
{
    size_t i;

    if (r == NULL)
        return;
    for (i = 0; i < r->n_keys; i++)
        ssh_key_free(r->keys[i].key);
    free(r->keys);
    dsess_free(r->s);
    free(r);
}

/*
 * XXX records of ended sessions are kept for the agent's lifetime (a few
 * hundred bytes each), so that a late dial-back for them is refused with
 * certainty; a host serving thousands of sessions would want them pruned.
 */
static struct sess_rec *
sess_rec_new(const struct dsess *s)
{
    struct sess_rec *r = xcalloc(1, sizeof(*r));
    size_t i, j, n = 0;

    r->s = dsess_dup(s);
    for (i = 0; i < s->n_members; i++)
        n += s->members[i].n_keys;
    r->keys = xcalloc(n ? n : 1, sizeof(*r->keys));
    for (i = 0; i < s->n_members; i++) {
        for (j = 0; j < s->members[i].n_keys; j++) {
            ssh_key k = NULL;

            if (parse_key_line(s->members[i].keys[j], &k) != 0) {
                log_warn("session %s: ignoring an unreadable key of %s", s->name,
                         s->members[i].user);
                continue;
            }
            r->keys[r->n_keys].member = i;
            r->keys[r->n_keys].key = k;
            r->n_keys++;
        }
    }
    return r;
}

/* The member of r named user (case-insensitive), or NULL. */
static const struct dsess_member *
member_find(const struct sess_rec *r, const char *user)
{
    size_t i;

    for (i = 0; i < r->s->n_members; i++)
        if (str_ieq(r->s->members[i].user, user))
            return &r->s->members[i];
    return NULL;
}

void
sshd_session_update(struct sshd *d, const struct dsess *s)
{
    struct sess_rec *nr = sess_rec_new(s), **pp;
    struct conn *c;
    int ended = dsess_state_ended(s->state);

    pthread_mutex_lock(&d->mu);
    for (pp = &d->sessions; *pp != NULL; pp = &(*pp)->next) {
        if (strcmp((*pp)->s->name, s->name) == 0) {
            struct sess_rec *old = *pp;

            nr->next = old->next;
            *pp = nr;
            sess_rec_free(old);
            break;
        }
    }
    if (*pp == NULL) {
        nr->next = d->sessions;
        d->sessions = nr;
    }
    for (c = d->conns; c != NULL; c = c->next) {
        const struct dsess_member *m;

        if (!c->authed || c->session == NULL || strcmp(c->session, s->name) != 0 ||
            c->kill_msg != NULL)
            continue;
        if (ended || strcmp(s->state, "Active") != 0) {
            c->kill_msg = MSG_ENDED;
            continue;
        }
        m = member_find(nr, c->user);
        if (m == NULL || m->role != c->role)
            c->kill_msg = MSG_REMOVED;
    }
    pthread_mutex_unlock(&d->mu);
    if (ended) {
        /*
         * The connection threads write their one-line reason before they
         * close; the tmux clients they run may exit first, which the
         * threads see as kill_msg already set.
         */
        if (tmux_session_kill(d->tmux_sock, s->name) == 0)
            log_info("session %s: %s, tmux session killed", s->name, s->state);
    }
}

struct dsess *
sshd_session_get(struct sshd *d, const char *name)
{
    struct sess_rec *r;
    struct dsess *s = NULL;

    pthread_mutex_lock(&d->mu);
    r = sess_find(d, name);
    if (r != NULL)
        s = dsess_dup(r->s);
    pthread_mutex_unlock(&d->mu);
    return s;
}

int
sshd_conn_count(struct sshd *d, const char *session)
{
    struct conn *c;
    int n = 0;

    pthread_mutex_lock(&d->mu);
    for (c = d->conns; c != NULL; c = c->next)
        if (c->authed && !c->finished &&
            (session == NULL || (c->session && strcmp(c->session, session) == 0)))
            n++;
    pthread_mutex_unlock(&d->mu);
    return n;
}

int64_t
sshd_last_input_ms(struct sshd *d, const char *session)
{
    struct conn *c;
    int64_t t = 0;

    pthread_mutex_lock(&d->mu);
    for (c = d->conns; c != NULL; c = c->next)
        if (c->authed && c->session && strcmp(c->session, session) == 0 && c->last_input_ms > t)
            t = c->last_input_ms;
    pthread_mutex_unlock(&d->mu);
    return t;
}

char *
sshd_attribute(struct sshd *d, const char *session, const char *conn_id)
{
    struct conn *c, *by_input = NULL, *by_auth = NULL;
    struct sess_rec *r;
    char *user = NULL;

    pthread_mutex_lock(&d->mu);
    for (c = d->conns; c != NULL; c = c->next) {
        if (!c->authed || c->finished || c->role == ROLE_VIEWER || c->session == NULL ||
            strcmp(c->session, session) != 0)
            continue;
        if (conn_id != NULL && conn_id[0] && strcmp(c->id, conn_id) == 0) {
            user = xstrdup(c->user);
            goto out;
        }
        if (c->last_input_ms > 0 &&
            (by_input == NULL || c->last_input_ms > by_input->last_input_ms))
            by_input = c;
        if (by_auth == NULL || c->authed_ms > by_auth->authed_ms)
            by_auth = c;
    }
    if (by_input != NULL) {
        user = xstrdup(by_input->user);
    } else if (by_auth != NULL) {
        user = xstrdup(by_auth->user);
    } else if ((r = sess_find(d, session)) != NULL) {
        for (size_t i = 0; i < r->s->n_members; i++)
            if (r->s->members[i].role == ROLE_OWNER) {
                user = xstrdup(r->s->members[i].user);
                break;
            }
    }
out:
    pthread_mutex_unlock(&d->mu);
    return user;
}

/* ------------------------------------------------------------------------
 * TCP listener
 * ------------------------------------------------------------------------ */

static void *
listen_main(void *arg)
{
    struct sshd *d = arg;

    for (;;) {
        struct pollfd p[2] = {{d->listen_fd, POLLIN, 0}, {d->stop_pipe[0], POLLIN, 0}};
        char id[32];
        int fd;

        if (poll(p, 2, 1000) < 0 && errno != EINTR)
            break;
        if (p[1].revents != 0)
            break;
        pthread_mutex_lock(&d->mu);
        if (d->stopping) {
            pthread_mutex_unlock(&d->mu);
            break;
        }
        pthread_mutex_unlock(&d->mu);
        if (!(p[0].revents & POLLIN))
            continue;
        fd = accept4(d->listen_fd, NULL, NULL, SOCK_CLOEXEC);
        if (fd < 0)
            continue;
        snprintf(id, sizeof(id), "tcp-%lu", ++d->n_tcp);
        sshd_serve_fd(d, fd, NULL, id);
    }
    return NULL;
}

/* Joins finished connection threads (all of them when all is set). */
static void
conn_reap(struct sshd *d, int all)
{
    for (;;) {
        struct conn **pp, *c = NULL;

        pthread_mutex_lock(&d->mu);
        for (pp = &d->conns; *pp != NULL; pp = &(*pp)->next) {
            if ((*pp)->finished || all) {
                c = *pp;
                *pp = c->next;
                d->n_conns--;
                break;
            }
        }
        pthread_mutex_unlock(&d->mu);
        if (c == NULL)
            return;
        pthread_join(c->th, NULL);
        free(c->id);
        free(c->fixed_session);
        free(c->session);
        free(c->user);
        free(c);
    }
}

/* ------------------------------------------------------------------------
 * Authentication
 * ------------------------------------------------------------------------ */

/*
 * Finds the session and member holding pk among Active sessions: only the
 * connection's session for a tunnel; for a TCP connection the session the SSH
 * user name names, or else any. Called with d->mu held.
 */
static int
auth_lookup(struct sshd *d, const struct conn *c, const char *ssh_user, ssh_key pk,
            struct sess_rec **rp, const struct dsess_member **mp)
{
    const char *only = c->fixed_session;
    struct sess_rec *r;
    size_t i;

    if (only == NULL && ssh_user != NULL && sess_find(d, ssh_user) != NULL)
        only = ssh_user;
    for (r = d->sessions; r != NULL; r = r->next) {
        if (only != NULL && strcmp(r->s->name, only) != 0)
            continue;
        if (strcmp(r->s->state, "Active") != 0)
            continue;
        for (i = 0; i < r->n_keys; i++) {
            if (ssh_key_cmp(pk, r->keys[i].key, SSH_KEY_CMP_PUBLIC) == 0) {
                *rp = r;
                *mp = &r->s->members[r->keys[i].member];
                return 0;
            }
        }
    }
    return ERR_AUTH;
}

static int
auth_pubkey(ssh_session s, const char *user, struct ssh_key_struct *pk, char state, void *ud)
{
    struct conn *c = ud;
    struct sshd *d = c->d;
    struct sess_rec *r = NULL;
    const struct dsess_member *m = NULL;
    int ok;

    (void)s;
    if (state != SSH_PUBLICKEY_STATE_NONE && state != SSH_PUBLICKEY_STATE_VALID)
        return SSH_AUTH_DENIED;
    pthread_mutex_lock(&d->mu);
    ok = auth_lookup(d, c, user, pk, &r, &m) == 0;
    if (ok && state == SSH_PUBLICKEY_STATE_VALID) {
        free(c->session);
        free(c->user);
        c->session = xstrdup(r->s->name);
        c->user = xstrdup(m->user);
        c->role = m->role;
        c->ops = r->s->ops;
        c->authed = 1;
        c->authed_ms = mono_ms();
    }
    pthread_mutex_unlock(&d->mu);
    if (!ok) {
        c->auth_tries++;
        return SSH_AUTH_DENIED;
    }
    if (state == SSH_PUBLICKEY_STATE_VALID)
        log_info("conn %s: %s (%s) authenticated for session %s", c->id, c->user,
                 dsess_role_name(c->role), c->session);
    return SSH_AUTH_SUCCESS;
}

/* Current allowed operations of the connection's session (0 if it is gone). */
static unsigned
conn_ops(struct conn *c)
{
    struct sess_rec *r;
    unsigned ops = 0;

    pthread_mutex_lock(&c->d->mu);
    r = sess_find(c->d, c->session);
    if (r != NULL && strcmp(r->s->state, "Active") == 0)
        ops = r->s->ops;
    pthread_mutex_unlock(&c->d->mu);
    return ops;
}

/* ------------------------------------------------------------------------
 * Channels
 * ------------------------------------------------------------------------ */

static void chan_refuse_msg(struct chan *ch, const char *what);
static int chan_start(struct chan *ch, const char *const *argv, int use_pty, int is_shell,
                      const char *cmd_for_env);

static int
on_pty_request(ssh_session s, ssh_channel channel, const char *term, int w, int h, int pw, int ph,
               void *ud)
{
    struct chan *ch = ud;

    (void)s;
    (void)channel;
    (void)pw;
    (void)ph;
    if (ch->started)
        return -1;
    ch->pty = 1;
    /* tmux refuses TERM=dumb or an empty TERM (LIBS.md 5, pitfall 5). */
    if (term == NULL || term[0] == '\0' || strcmp(term, "dumb") == 0 || strlen(term) >= 64 ||
        strspn(term, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-+._") !=
            strlen(term))
        snprintf(ch->term, sizeof(ch->term), "%s", TMUX_DEFAULT_TERM);
    else
        snprintf(ch->term, sizeof(ch->term), "%s", term);
    ch->cols = w;
    ch->rows = h;
    return 0;
}

static int
on_window_change(ssh_session s, ssh_channel channel, int w, int h, int pw, int ph, void *ud)
{
    struct chan *ch = ud;

    (void)s;
    (void)channel;
    (void)pw;
    (void)ph;
    ch->cols = w;
    ch->rows = h;
    if (ch->pty && ch->fd_out >= 0)
        tmux_pty_resize(ch->fd_out, w, h);
    return 0;
}

static int
on_shell(ssh_session s, ssh_channel channel, void *ud)
{
    struct chan *ch = ud;
    struct conn *c = ch->c;
    const char *argv[TMUX_ARGV_MAX];
    char env_session[256], env_sock[1024];
    int viewer = c->role == ROLE_VIEWER;

    (void)s;
    (void)channel;
    if (ch->started)
        return 1;
    if (!(conn_ops(c) & DSESS_OP_SHELL)) {
        chan_refuse_msg(ch, "a shell");
        return 1;
    }
    if (!ch->pty) {
        /* tmux needs a terminal; give one even to `ssh -T`. */
        ch->pty = 1;
        snprintf(ch->term, sizeof(ch->term), "%s", TMUX_DEFAULT_TERM);
    }
    tmux_shell_argv(c->d->tmux_sock, c->session, viewer, c->d->ctl_sock, c->d->shell, env_session,
                    sizeof(env_session), env_sock, sizeof(env_sock), argv);
    return chan_start(ch, argv, 1, 1, NULL) == 0 ? 0 : 1;
}

/* The user's login shell from passwd, else $SHELL, else /bin/sh. New string. */
static char *
find_shell(void)
{
    struct passwd pw, *res = NULL;
    char buf[4096];
    const char *sh = getenv("SHELL");

    if (getpwuid_r(getuid(), &pw, buf, sizeof(buf), &res) == 0 && res != NULL &&
        pw.pw_shell != NULL && pw.pw_shell[0] == '/' && access(pw.pw_shell, X_OK) == 0)
        return xstrdup(pw.pw_shell);
    if (sh != NULL && sh[0] == '/' && access(sh, X_OK) == 0)
        return xstrdup(sh);
    return xstrdup("/bin/sh");
}

/*
 * `airlock extend` must work in the shell even when the CI job ran airlock
 * from a path that is not in PATH: put airlock's own directory first. NULL
 * when it is in PATH already. New string.
 */
static char *
find_path_env(void)
{
    char exe[4096], *slash;
    const char *path = getenv("PATH");
    ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
    size_t dl;
    const char *p;

    if (n <= 0)
        return NULL;
    exe[n] = '\0';
    if ((slash = strrchr(exe, '/')) == NULL)
        return NULL;
    *slash = '\0';
    dl = strlen(exe);
    for (p = path; p != NULL && *p;) {
        size_t l = strcspn(p, ":");

        if (l == dl && strncmp(p, exe, l) == 0)
            return NULL;
        p += l;
        if (*p == ':')
            p++;
    }
    return xasprintf("PATH=%s%s%s", exe, path && *path ? ":" : "", path ? path : "");
}

static int
on_exec(ssh_session s, ssh_channel channel, const char *command, void *ud)
{
    struct chan *ch = ud;
    struct conn *c = ch->c;
    const char *argv[4];

    (void)s;
    (void)channel;
    if (ch->started)
        return 1;
    if (c->role == ROLE_VIEWER) {
        chan_refuse_msg(ch, "commands for viewers");
        return 1;
    }
    if (!(conn_ops(c) & DSESS_OP_EXEC)) {
        chan_refuse_msg(ch, "exec");
        return 1;
    }
    /*
     * An exec request is by definition a command line for the user's shell,
     * as with OpenSSH (scp -O sends "scp -t …"). It runs as the agent's user,
     * which every participant already has through the shell.
     */
    argv[0] = c->d->shell;
    argv[1] = "-c";
    argv[2] = command;
    argv[3] = NULL;
    return chan_start(ch, argv, ch->pty, 0, command) == 0 ? 0 : 1;
}

static int
on_subsystem(ssh_session s, ssh_channel channel, const char *subsystem, void *ud)
{
    struct chan *ch = ud;
    struct conn *c = ch->c;
    const char *argv[] = {SFTP_SERVER, NULL};

    (void)s;
    (void)channel;
    if (ch->started || strcmp(subsystem, "sftp") != 0)
        return 1;
    if (c->role == ROLE_VIEWER) {
        chan_refuse_msg(ch, "sftp for viewers");
        return 1;
    }
    if (!(conn_ops(c) & DSESS_OP_SFTP)) {
        chan_refuse_msg(ch, "sftp");
        return 1;
    }
    if (access(SFTP_SERVER, X_OK) != 0) {
        log_warn("conn %s: %s is missing", c->id, SFTP_SERVER);
        return 1;
    }
    return chan_start(ch, argv, 0, 0, NULL) == 0 ? 0 : 1;
}

static int
on_env(ssh_session s, ssh_channel channel, const char *name, const char *value, void *ud)
{
    (void)s;
    (void)channel;
    (void)name;
    (void)value;
    (void)ud;
    return 1; /* refused, like sshd without AcceptEnv */
}

static struct chan *
chan_new(struct conn *c, ssh_channel channel, enum chan_kind kind)
{
    struct chan *ch = xcalloc(1, sizeof(*ch));

    ch->c = c;
    ch->ch = channel;
    ch->kind = kind;
    ch->pid = -1;
    ch->fd_in = ch->fd_out = ch->fd_err = -1;
    ch->ibuf = xmalloc(CHAN_BUF_MAX);
    ssh_callbacks_init(&ch->cb);
    ch->cb.userdata = ch;
    if (kind == CHAN_SESSION) {
        ch->cb.channel_pty_request_function = on_pty_request;
        ch->cb.channel_pty_window_change_function = on_window_change;
        ch->cb.channel_shell_request_function = on_shell;
        ch->cb.channel_exec_request_function = on_exec;
        ch->cb.channel_subsystem_request_function = on_subsystem;
        ch->cb.channel_env_request_function = on_env;
    }
    ssh_set_channel_callbacks(channel, &ch->cb);
    c->chans[c->n_chans++] = ch;
    return ch;
}

static ssh_channel
on_open_session(ssh_session s, void *ud)
{
    struct conn *c = ud;
    ssh_channel channel;

    if (!c->authed || c->n_chans >= CONN_MAX_CHANS || c->kill_msg != NULL)
        return NULL;
    channel = ssh_channel_new(s);
    if (channel == NULL)
        return NULL;
    chan_new(c, channel, CHAN_SESSION);
    return channel;
}

/* Connects to host:port within FORWARD_CONNECT_MS. Returns the socket or -1. */
static int
forward_connect(const char *host, int port)
{
    struct addrinfo hints, *res = NULL, *ai;
    char portstr[16];
    int fd = -1;

    memset(&hints, 0, sizeof(hints));
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_NUMERICSERV;
    snprintf(portstr, sizeof(portstr), "%d", port);
    if (getaddrinfo(host, portstr, &hints, &res) != 0)
        return -1;
    for (ai = res; ai != NULL && fd < 0; ai = ai->ai_next) {
        struct pollfd p;
        int err = 0;
        socklen_t el = sizeof(err);

        fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC | SOCK_NONBLOCK, ai->ai_protocol);
        if (fd < 0)
            continue;
        if (connect(fd, ai->ai_addr, ai->ai_addrlen) == 0)
            break;
        p.fd = fd;
        p.events = POLLOUT;
        if (errno == EINPROGRESS && poll(&p, 1, FORWARD_CONNECT_MS) == 1 &&
            getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &el) == 0 && err == 0)
            break;
        close(fd);
        fd = -1;
    }
    freeaddrinfo(res);
    return fd;
}

static struct chan *
chan_find(struct conn *c, ssh_channel channel)
{
    size_t i;

    for (i = 0; channel != NULL && i < c->n_chans; i++)
        if (c->chans[i]->ch == channel)
            return c->chans[i];
    return NULL;
}

/*
 * A channel request libssh has no name for. libssh 0.10 hands those over as
 * SSH_CHANNEL_REQUEST_UNKNOWN with neither the request's name nor its
 * want-reply flag. The only such requests OpenSSH's client sends are
 * eow@openssh.com, when its stdout fails, and "break" (~B), which it sends
 * only on a channel with a pty (it has no escape character otherwise). So on
 * a command or sftp channel without a pty, from an OpenSSH client, it is eow:
 * stop reading the command's stdout and close it, as sshd does, so that the
 * command gets SIGPIPE (or EPIPE) on its next write. Its stderr still flows.
 * On a pty it may be a break: left alone (`ssh -t host cmd | head` then runs
 * until ^C, which the raw terminal passes on). The default reply follows
 * (a failure, sent only when a reply is wanted).
 */
static void
on_unknown_request(struct conn *c, ssh_message msg)
{
    struct chan *ch = chan_find(c, ssh_message_channel_request_channel(msg));

    if (ch == NULL || ch->kind != CHAN_SESSION || !ch->started || ch->pty || ch->is_shell ||
        !c->openssh || ch->eow)
        return;
    ch->eow = 1; /* acted on by chan_service, outside libssh */
    log_info("conn %s: %s's client stopped writing the output (eow): closing the command's stdout",
             c->id, c->user);
}

/* libssh's catch-all for requests without a callback: direct-tcpip opens. 0 = handled. */
static int
on_message(ssh_session s, ssh_message msg, void *ud)
{
    struct conn *c = ud;
    const char *host;
    ssh_channel channel;
    struct chan *ch;
    int port, fd;

    (void)s;
    if (ssh_message_type(msg) == SSH_REQUEST_CHANNEL &&
        ssh_message_subtype(msg) == SSH_CHANNEL_REQUEST_UNKNOWN) {
        on_unknown_request(c, msg);
        return 1;
    }
    if (ssh_message_type(msg) != SSH_REQUEST_CHANNEL_OPEN ||
        ssh_message_subtype(msg) != SSH_CHANNEL_DIRECT_TCPIP)
        return 1;
    if (!c->authed || c->role == ROLE_VIEWER || !(conn_ops(c) & DSESS_OP_FORWARD) ||
        c->n_chans >= CONN_MAX_CHANS || c->kill_msg != NULL) {
        log_info("conn %s: %s: port forwarding refused", c->id, c->user ? c->user : "?");
        return 1;
    }
    host = ssh_message_channel_request_open_destination(msg);
    port = ssh_message_channel_request_open_destination_port(msg);
    if (host == NULL || port <= 0 || port > 65535)
        return 1;
    fd = forward_connect(host, port);
    if (fd < 0) {
        log_info("conn %s: forward to %s:%d failed", c->id, host, port);
        return 1;
    }
    channel = ssh_message_channel_request_open_reply_accept(msg);
    if (channel == NULL) {
        close(fd);
        return 1;
    }
    ch = chan_new(c, channel, CHAN_FORWARD);
    ch->fd_in = ch->fd_out = fd;
    ch->started = 1;
    ch->err_eof = 1;
    log_info("conn %s: %s forwards to %s:%d", c->id, c->user, host, port);
    return 0;
}

/* Tells the client why a request is refused (the protocol has no room for a reason). */
static void
chan_refuse_msg(struct chan *ch, const char *what)
{
    char msg[160];
    int n = snprintf(msg, sizeof(msg), "airlock: %s not allowed in this session\r\n", what);

    if (n > 0 && (uint32_t)n <= ssh_channel_window_size(ch->ch))
        (void)ssh_channel_write_stderr(ch->ch, msg, (uint32_t)n);
    log_info("conn %s: %s: %s refused", ch->c->id, ch->c->user, what);
}

static int
chan_start(struct chan *ch, const char *const *argv, int use_pty, int is_shell,
           const char *cmd_for_env)
{
    struct conn *c = ch->c;
    char e_term[96], e_sess[256], e_sock[1024], e_conn[160], e_user[320];
    const char *set[7];
    size_t n = 0;
    char **envp;
    int r;

    (void)cmd_for_env;
    snprintf(e_sess, sizeof(e_sess), "AIRLOCK_SESSION=%s", c->session);
    snprintf(e_sock, sizeof(e_sock), "AIRLOCK_SOCK=%s", c->d->ctl_sock);
    set[n++] = e_sess;
    set[n++] = e_sock;
    if (c->d->path_env != NULL)
        set[n++] = c->d->path_env;
    if (use_pty) {
        snprintf(e_term, sizeof(e_term), "TERM=%s", ch->term[0] ? ch->term : TMUX_DEFAULT_TERM);
        set[n++] = e_term;
    }
    if (!is_shell) {
        /* A command belongs to one connection, so it can name its user. The shared shell cannot. */
        snprintf(e_conn, sizeof(e_conn), "AIRLOCK_CONN=%s", c->id);
        snprintf(e_user, sizeof(e_user), "AIRLOCK_USER=%s", c->user);
        set[n++] = e_conn;
        set[n++] = e_user;
    }
    set[n] = NULL;
    envp = tmux_env_build(environ, (const char *const *)c->d->env_drop, set);
    if (is_shell && c->role == ROLE_VIEWER &&
        tmux_session_ensure(c->d->tmux_sock, c->session, c->d->ctl_sock, c->d->shell, envp) != 0) {
        tmux_env_free(envp);
        log_warn("conn %s: cannot create tmux session %s", c->id, c->session);
        return ERR_SYSTEM;
    }
    if (use_pty) {
        r = tmux_spawn_pty(argv, envp, ch->cols, ch->rows, &ch->pid, &ch->fd_in);
        ch->fd_out = ch->fd_in;
        ch->err_eof = 1;
    } else {
        r = tmux_spawn_pipes(argv, envp, &ch->pid, &ch->fd_in, &ch->fd_out, &ch->fd_err);
    }
    tmux_env_free(envp);
    if (r != 0)
        return r;
    ch->started = 1;
    ch->is_shell = is_shell;
    log_info("conn %s: %s started %s%s", c->id, c->user, is_shell ? "a shell" : argv[0],
             use_pty ? " on a pty" : "");
    return 0;
}

/* ------------------------------------------------------------------------
 * The connection loop
 * ------------------------------------------------------------------------ */

static int
fd_wake(socket_t fd, int revents, void *ud)
{
    (void)fd;
    (void)revents;
    (void)ud;
    return 0; /* the loop does the I/O after ssh_event_dopoll returns */
}

static void
reg_want(struct reg *want, size_t *n, int fd, short ev)
{
    size_t i;

    if (fd < 0 || ev == 0)
        return;
    for (i = 0; i < *n; i++) {
        if (want[i].fd == fd) {
            want[i].events |= ev;
            return;
        }
    }
    want[*n].fd = fd;
    want[*n].events = ev;
    (*n)++;
}

/* Registers with the ssh_event exactly the fds (and directions) the channels can use now. */
static void
regs_sync(struct conn *c)
{
    struct reg want[CONN_MAX_CHANS * 2];
    size_t n = 0, i, j;

    for (i = 0; i < c->n_chans; i++) {
        struct chan *ch = c->chans[i];
        int win = ch->ch != NULL && !ch->closing && ssh_channel_window_size(ch->ch) > 0;

        if (ch->dead || !ch->started)
            continue;
        /* With bytes pending (a KEX runs), the session's fd is what wakes us. */
        if (win && !ch->out_eof && ch->oq.len == 0)
            reg_want(want, &n, ch->fd_out, POLLIN);
        if (win && !ch->err_eof && ch->eq.len == 0)
            reg_want(want, &n, ch->fd_err, POLLIN);
        if (ch->ilen > 0)
            reg_want(want, &n, ch->fd_in, POLLOUT);
    }
    /* Drop registrations that changed or went away, then add what is new. */
    for (i = 0; i < c->n_regs;) {
        int keep = 0;

        for (j = 0; j < n; j++)
            if (want[j].fd == c->regs[i].fd && want[j].events == c->regs[i].events)
                keep = 1;
        if (!keep) {
            ssh_event_remove_fd(c->ev, c->regs[i].fd);
            c->regs[i] = c->regs[--c->n_regs];
        } else {
            i++;
        }
    }
    for (j = 0; j < n; j++) {
        int have = 0;

        for (i = 0; i < c->n_regs; i++)
            if (c->regs[i].fd == want[j].fd)
                have = 1;
        if (!have && ssh_event_add_fd(c->ev, want[j].fd, want[j].events, fd_wake, c) == SSH_OK)
            c->regs[c->n_regs++] = want[j];
    }
}

/* Forgets the registration of fd before it is closed. */
static void
regs_drop(struct conn *c, int fd)
{
    size_t i;

    for (i = 0; i < c->n_regs; i++) {
        if (c->regs[i].fd == fd) {
            ssh_event_remove_fd(c->ev, fd);
            c->regs[i] = c->regs[--c->n_regs];
            return;
        }
    }
}

static void
chan_close_fd(struct chan *ch, int *fdp)
{
    int fd = *fdp;

    if (fd < 0)
        return;
    /* fd_in and fd_out may be the same descriptor (pty, socket). */
    if (ch->fd_in == fd)
        ch->fd_in = -1;
    if (ch->fd_out == fd)
        ch->fd_out = -1;
    if (ch->fd_err == fd)
        ch->fd_err = -1;
    regs_drop(ch->c, fd);
    close(fd);
}

static void
note_input(struct conn *c)
{
    pthread_mutex_lock(&c->d->mu);
    c->last_input_ms = mono_ms();
    pthread_mutex_unlock(&c->d->mu);
}

/* Client -> child: pull what fits from libssh's buffer and write what the fd takes. */
static void
chan_pump_in(struct chan *ch)
{
    int got_input = 0;

    while (!ch->client_eof && ch->ilen < CHAN_BUF_MAX && !ch->closing) {
        int n = ssh_channel_read_nonblocking(ch->ch, ch->ibuf + ch->ilen,
                                             (uint32_t)(CHAN_BUF_MAX - ch->ilen), 0);

        if (n == SSH_EOF || (n == 0 && ssh_channel_is_eof(ch->ch))) {
            ch->client_eof = 1;
            break;
        }
        if (n <= 0)
            break;
        ch->ilen += (size_t)n;
        got_input = 1;
    }
    if (got_input && ch->c->role != ROLE_VIEWER)
        note_input(ch->c);
    while (ch->ilen > 0 && ch->fd_in >= 0) {
        ssize_t w = write(ch->fd_in, ch->ibuf, ch->ilen);

        if (w < 0 && errno == EINTR)
            continue;
        if (w < 0 && errno == EAGAIN)
            break;
        if (w <= 0) {
            /* The child stopped reading for good: drop its input. */
            ch->ilen = 0;
            if (ch->fd_in != ch->fd_out)
                chan_close_fd(ch, &ch->fd_in);
            break;
        }
        memmove(ch->ibuf, ch->ibuf + w, ch->ilen - (size_t)w);
        ch->ilen -= (size_t)w;
    }
    if (!ch->started)
        ch->ilen = 0;
    if (ch->client_eof && ch->ilen == 0 && ch->fd_in >= 0 && !ch->in_shut) {
        ch->in_shut = 1;
        if (ch->kind == CHAN_FORWARD) {
            shutdown(ch->fd_in, SHUT_WR);
        } else if (!ch->pty) {
            chan_close_fd(ch, &ch->fd_in);
        }
        /* A pty keeps its master: EOF from the client means nothing to a terminal. */
    }
}

/*
 * Sends what q holds, never more than the client's window. 1 when q is empty,
 * 0 when bytes remain (window closed, or a key re-exchange runs: libssh then
 * writes nothing and returns 0), -1 when the channel is broken.
 */
static int
chan_flush_out(struct chan *ch, struct outq *q, int is_stderr)
{
    while (q->len > 0) {
        uint32_t win = ssh_channel_window_size(ch->ch);
        uint32_t n = q->len < win ? (uint32_t)q->len : win;
        int rc;

        if (n == 0)
            return 0;
        rc = is_stderr ? ssh_channel_write_stderr(ch->ch, q->buf + q->off, n)
                       : ssh_channel_write(ch->ch, q->buf + q->off, n);
        if (rc < 0 || (uint32_t)rc > n)
            return -1;
        if (rc == 0)
            return 0;
        q->off += (size_t)rc;
        q->len -= (size_t)rc;
    }
    q->off = 0;
    return 1;
}

/* Child -> client, never more than the client's window. Returns bytes moved. */
static size_t
chan_pump_out(struct chan *ch, int *fdp, int *eofp, struct outq *q, int is_stderr)
{
    size_t moved = 0;
    int rounds;

    for (rounds = 0; rounds < 8 && !*eofp && !ch->closing; rounds++) {
        uint32_t win;
        size_t want, before = q->len;
        ssize_t n;
        int rc = chan_flush_out(ch, q, is_stderr);

        moved += before - q->len;
        if (rc < 0) {
            q->len = 0;
            *eofp = 1;
            break;
        }
        if (rc == 0 || *fdp < 0)
            break;
        win = ssh_channel_window_size(ch->ch);
        want = win < sizeof(q->buf) ? win : sizeof(q->buf);
        if (want == 0)
            break;
        n = read(*fdp, q->buf, want);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && errno == EAGAIN)
            break;
        if (n <= 0) {
            /* EOF, or EIO from a pty whose last slave closed. */
            *eofp = 1;
            /* A pty or socket stays open for the other direction. */
            if (ch->fd_in != *fdp)
                chan_close_fd(ch, fdp);
            break;
        }
        q->off = 0;
        q->len = (size_t)n;
    }
    return moved;
}

static void
chan_send_exit(struct chan *ch)
{
    if (WIFSIGNALED(ch->status)) {
        const char *sig = "KILL";

        switch (WTERMSIG(ch->status)) {
        case SIGHUP:
            sig = "HUP";
            break;
        case SIGINT:
            sig = "INT";
            break;
        case SIGTERM:
            sig = "TERM";
            break;
        case SIGSEGV:
            sig = "SEGV";
            break;
        case SIGABRT:
            sig = "ABRT";
            break;
        case SIGPIPE:
            sig = "PIPE";
            break;
        case SIGQUIT:
            sig = "QUIT";
            break;
        }
        (void)ssh_channel_request_send_exit_signal(ch->ch, sig, 0, "", "");
    } else {
        (void)ssh_channel_request_send_exit_status(ch->ch, WEXITSTATUS(ch->status));
    }
}

/* Sends EOF and close once, after an optional reason on stderr. */
static void
chan_finish(struct chan *ch, const char *reason, int with_status)
{
    if (ch->closing)
        return;
    if (ssh_channel_is_open(ch->ch)) {
        if (reason != NULL && ch->kind == CHAN_SESSION) {
            char line[160];
            int n = snprintf(line, sizeof(line), "%s%s\r\n", ch->pty ? "\r\n" : "", reason);
            uint32_t win = ssh_channel_window_size(ch->ch);

            if (n > 0 && (uint32_t)n <= win)
                (void)ssh_channel_write_stderr(ch->ch, line, (uint32_t)n);
        }
        if (with_status)
            chan_send_exit(ch);
        (void)ssh_channel_send_eof(ch->ch);
        (void)ssh_channel_close(ch->ch);
    }
    ch->closing = 1;
}

/* Stops the child: SIGHUP to its process group, then reaped by chan_free. */
static void
chan_free(struct chan *ch)
{
    int i, st;

    if (ch->fd_in >= 0)
        chan_close_fd(ch, &ch->fd_in);
    if (ch->fd_out >= 0)
        chan_close_fd(ch, &ch->fd_out);
    if (ch->fd_err >= 0)
        chan_close_fd(ch, &ch->fd_err);
    if (ch->pid > 0 && !ch->exited) {
        kill(-ch->pid, SIGHUP);
        kill(ch->pid, SIGHUP);
        for (i = 0; i < 20; i++) {
            if (waitpid(ch->pid, &st, WNOHANG) == ch->pid) {
                ch->exited = 1;
                break;
            }
            usleep(50 * 1000);
        }
        if (!ch->exited) {
            kill(-ch->pid, SIGKILL);
            kill(ch->pid, SIGKILL);
            (void)waitpid(ch->pid, &st, 0);
        }
    }
    if (ch->ch != NULL) {
        ssh_remove_channel_callbacks(ch->ch, &ch->cb);
        ssh_channel_free(ch->ch);
    }
    free(ch->ibuf);
    free(ch);
}

static const char *
conn_kill_msg(struct conn *c)
{
    const char *m;

    pthread_mutex_lock(&c->d->mu);
    m = c->kill_msg;
    pthread_mutex_unlock(&c->d->mu);
    return m;
}

/* 1 while an exec'd command or sftp-server of the connection still runs. */
static int
conn_running_cmd(const struct conn *c)
{
    size_t i;

    for (i = 0; i < c->n_chans; i++) {
        const struct chan *ch = c->chans[i];

        if (ch->kind == CHAN_SESSION && ch->started && !ch->is_shell && !ch->closing && !ch->dead)
            return 1;
    }
    return 0;
}

/* One pass over a channel after ssh_event_dopoll. */
static void
chan_service(struct chan *ch, int64_t now)
{
    int st;

    if (ch->closing) {
        if (ssh_channel_is_closed(ch->ch))
            ch->dead = 1;
        return;
    }
    if (ssh_channel_is_closed(ch->ch)) {
        /* The client closed the channel. */
        ch->dead = 1;
        return;
    }
    if (!ch->started) {
        /* Drain and ignore anything sent before a request started something. */
        chan_pump_in(ch);
        return;
    }
    chan_pump_in(ch);
    if (ch->eow && !ch->out_eof && ch->fd_out != ch->fd_in) {
        /* The client drops what we would send: the command's next write fails. */
        ch->oq.len = 0;
        ch->oq.off = 0;
        ch->out_eof = 1;
        chan_close_fd(ch, &ch->fd_out);
    }
    chan_pump_out(ch, &ch->fd_out, &ch->out_eof, &ch->oq, 0);
    chan_pump_out(ch, &ch->fd_err, &ch->err_eof, &ch->eq, 1);

    if (ch->kind == CHAN_FORWARD) {
        if (ch->out_eof && !ch->sent_eof) {
            ch->sent_eof = 1;
            (void)ssh_channel_send_eof(ch->ch);
        }
        if (ch->out_eof && ch->client_eof && ch->ilen == 0)
            chan_finish(ch, NULL, 0);
        return;
    }
    if (ch->pid > 0 && !ch->exited && waitpid(ch->pid, &st, WNOHANG) == ch->pid) {
        ch->exited = 1;
        ch->status = st;
        ch->exit_ms = now;
    }
    if (!ch->exited)
        return;
    if (ch->pty && !ch->out_eof && ch->oq.len == 0 && now - ch->exit_ms > PTY_EXIT_DRAIN_MS &&
        ssh_channel_window_size(ch->ch) > 0)
        ch->out_eof = 1; /* a background process still holds the pty: stop waiting */
    if (!ch->out_eof || !ch->err_eof)
        return;
    /*
     * A shell whose tmux client exited because the session was just killed
     * must end with the reason, which conn_kill() writes: leave it to that.
     */
    if (ch->is_shell && conn_kill_msg(ch->c) != NULL)
        return;
    chan_finish(ch, NULL, 1);
}

/* Writes the reason, closes every channel, and gives the client a moment to close back. */
static void
conn_kill(struct conn *c, const char *msg)
{
    int64_t deadline;
    size_t i;

    log_info("conn %s: closing %s: %s", c->id, c->user ? c->user : "?", msg);
    for (i = 0; i < c->n_chans; i++)
        chan_finish(c->chans[i], msg, 0);
    /* Only the session socket from here: a child's fd must not spin the poll. */
    while (c->n_regs > 0)
        regs_drop(c, c->regs[0].fd);
    /* Flush, and let the client read the reason and close first. */
    deadline = mono_ms() + CLOSE_GRACE_MS;
    while (mono_ms() < deadline) {
        if (ssh_get_status(c->s) & (SSH_CLOSED | SSH_CLOSED_ERROR))
            break;
        if (ssh_event_dopoll(c->ev, 50) == SSH_ERROR)
            break;
    }
}

static void
conn_loop(struct conn *c)
{
    int64_t start = mono_ms(), kill_at = 0;
    const char *kill_msg = NULL;
    size_t i;
    int errors = 0;

    for (;;) {
        int64_t now;
        int rc;

        if (c->authed)
            regs_sync(c);
        rc = ssh_event_dopoll(c->ev, POLL_MS);
        if (ssh_get_status(c->s) & (SSH_CLOSED | SSH_CLOSED_ERROR))
            break;
        /* An error that does not close the session would spin: give up on a run of them. */
        errors = rc == SSH_ERROR ? errors + 1 : 0;
        if (errors > 50) {
            log_warn("conn %s: polling fails: %s", c->id, ssh_get_error(c->s));
            break;
        }
        now = mono_ms();
        if (!c->authed) {
            if (now - start > AUTH_GRACE_MS || c->auth_tries > AUTH_MAX_TRIES) {
                log_info("conn %s: authentication %s", c->id,
                         c->auth_tries > AUTH_MAX_TRIES ? "failed too often" : "timed out");
                break;
            }
        }
        kill_msg = conn_kill_msg(c);
        if (kill_msg != NULL) {
            /*
             * A command that is finishing anyway (`airlock resume` itself,
             * whose request ended the session) gets a moment to deliver its
             * output and exit status; a shell is closed at once.
             */
            if (kill_at == 0)
                kill_at = now + EXEC_DRAIN_MS;
            if (now >= kill_at || !conn_running_cmd(c)) {
                conn_kill(c, kill_msg);
                break;
            }
        }
        for (i = 0; i < c->n_chans; i++)
            chan_service(c->chans[i], now);
        /* Free finished channels (never inside a libssh callback). */
        for (i = 0; i < c->n_chans;) {
            if (c->chans[i]->dead) {
                struct chan *ch = c->chans[i];

                memmove(&c->chans[i], &c->chans[i + 1], (c->n_chans - i - 1) * sizeof(ch));
                c->n_chans--;
                chan_free(ch);
            } else {
                i++;
            }
        }
    }
}

static void *
conn_main(void *arg)
{
    struct conn *c = arg;
    struct sshd *d = c->d;
    long timeout = KEX_TIMEOUT_S;
    const char *banner;
    int rc;
    size_t i;

    c->s = ssh_new();
    pthread_mutex_lock(&d->bind_mu);
    /* ssh_bind_accept_fd may import keys into the shared bind: one at a time. */
    rc = ssh_bind_accept_fd(d->bind, c->s, c->fd);
    pthread_mutex_unlock(&d->bind_mu);
    if (rc != SSH_OK) {
        /* The session may already own the fd: ssh_free below closes it then. */
        log_warn("conn %s: accept: %s", c->id, ssh_get_error(d->bind));
        goto out;
    }
    ssh_options_set(c->s, SSH_OPTIONS_TIMEOUT, &timeout);
    ssh_callbacks_init(&c->scb);
    c->scb.userdata = c;
    c->scb.auth_pubkey_function = auth_pubkey;
    c->scb.channel_open_request_session_function = on_open_session;
    ssh_set_server_callbacks(c->s, &c->scb);
    ssh_set_message_callback(c->s, on_message, c);
    ssh_set_auth_methods(c->s, SSH_AUTH_METHOD_PUBLICKEY);
    if (ssh_handle_key_exchange(c->s) != SSH_OK) {
        log_info("conn %s: key exchange failed: %s", c->id, ssh_get_error(c->s));
        goto out;
    }
    banner = ssh_get_clientbanner(c->s);
    c->openssh = banner != NULL && strncmp(banner, "SSH-2.0-OpenSSH", 15) == 0;
    /* From here on nothing may block: see the header comment. */
    ssh_set_blocking(c->s, 0);
    c->ev = ssh_event_new();
    ssh_event_add_session(c->ev, c->s);
    conn_loop(c);
out:
    for (i = 0; i < c->n_chans; i++)
        chan_free(c->chans[i]);
    c->n_chans = 0;
    if (c->ev != NULL) {
        for (i = 0; i < c->n_regs; i++)
            ssh_event_remove_fd(c->ev, c->regs[i].fd);
        ssh_event_remove_session(c->ev, c->s);
        ssh_event_free(c->ev);
    }
    ssh_disconnect(c->s);
    ssh_free(c->s); /* closes the fd: a tunnel sees EOF */
    pthread_mutex_lock(&d->mu);
    if (c->authed)
        log_info("conn %s: %s left session %s", c->id, c->user, c->session);
    c->fd = -1;
    c->finished = 1;
    pthread_mutex_unlock(&d->mu);
    return NULL;
}

/* ------------------------------------------------------------------------
 * Small helpers
 * ------------------------------------------------------------------------ */

static int64_t
mono_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* "ssh-ed25519 AAAA… comment" -> key. 0 or ERR_INVALID. */
static int
parse_key_line(const char *line, ssh_key *key)
{
    char type[64], *b64 = NULL;
    const char *p = line, *sp;
    enum ssh_keytypes_e kt;
    size_t len;
    int r = ERR_INVALID;

    *key = NULL;
    while (*p == ' ')
        p++;
    sp = strchr(p, ' ');
    if (sp == NULL || (size_t)(sp - p) >= sizeof(type))
        return ERR_INVALID;
    memcpy(type, p, (size_t)(sp - p));
    type[sp - p] = '\0';
    p = sp;
    while (*p == ' ')
        p++;
    len = strcspn(p, " \t\r\n");
    if (len == 0)
        return ERR_INVALID;
    kt = ssh_key_type_from_name(type);
    if (kt == SSH_KEYTYPE_UNKNOWN)
        return ERR_INVALID;
    b64 = xstrndup(p, len);
    if (ssh_pki_import_pubkey_base64(b64, kt, key) == SSH_OK)
        r = 0;
    free(b64);
    return r;
}

/* "host:port", "[v6]:port" or ":port" -> host (may be empty) and port. */
static int
split_addr(const char *addr, char *host, size_t host_len, char *port, size_t port_len)
{
    const char *colon;
    size_t hl;

    if (addr[0] == '[') {
        const char *end = strchr(addr, ']');

        if (end == NULL || end[1] != ':')
            return ERR_INVALID;
        hl = (size_t)(end - addr - 1);
        if (hl >= host_len)
            return ERR_INVALID;
        memcpy(host, addr + 1, hl);
        host[hl] = '\0';
        colon = end + 1;
    } else {
        colon = strrchr(addr, ':');
        if (colon == NULL)
            return ERR_INVALID;
        hl = (size_t)(colon - addr);
        if (hl >= host_len)
            return ERR_INVALID;
        memcpy(host, addr, hl);
        host[hl] = '\0';
    }
    if (strlen(colon + 1) == 0 || strlen(colon + 1) >= port_len ||
        strspn(colon + 1, "0123456789") != strlen(colon + 1))
        return ERR_INVALID;
    snprintf(port, port_len, "%s", colon + 1);
    return 0;
}
