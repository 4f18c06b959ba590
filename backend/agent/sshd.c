/*
 * The agent's embedded SSH server (libssh 0.10.6). See sshd.h for the
 * interface and DESIGN.md 8.4 for the contract.
 *
 * The server is split by concern; sshd_int.h holds the structs the parts
 * share and says which file owns which shared function:
 *   - sshd.c (this file): struct sshd, i.e. host key, ssh_bind, the TCP
 *     listener, and the list of connections (one thread each, started by
 *     sshd_serve_fd and joined by conn_reap);
 *   - sshd_session.c: debug-session records (struct dsess and the registry of
 *     the last state the server sent, with each participant's keys parsed
 *     once), reconciliation, and what the control channel asks about a session;
 *   - sshd_conn.c: one thread per connection (sshd_conn_main): key exchange,
 *     public-key auth against the registry, then an ssh_event loop that drives
 *     every channel;
 *   - sshd_chan.c: channels (struct chan): a session channel runs tmux (shell),
 *     a command (exec) or sftp-server (subsystem). Flow control and the re-key
 *     stall are described there;
 *   - sshd_fwd.c: a direct-tcpip channel is a TCP socket. Both kinds are "an fd
 *     we write the client's bytes to and fds we read the client's bytes from".
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
#include <poll.h>
#include <pthread.h>
#include <pwd.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <libssh/libssh.h>
#include <libssh/server.h>

#include "err.h"
#include "log.h"
#include "sshd.h"
#include "sshd_int.h"
#include "tmux.h"
#include "util.h"
#include "xmalloc.h"

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

static void *listen_main(void *arg);
static void conn_reap(struct sshd *d, int all);
static char *find_shell(void);
static char *find_path_env(void);
static int split_addr(const char *addr, char *host, size_t host_len, char *port, size_t port_len);

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
sshd_stop(struct sshd *d)
{
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
            /* The listener also sees d->stopping on its next (1 s) poll. */
        }
        pthread_join(d->listen_th, NULL);
        d->listening = 0;
    }
    if (d->listen_fd >= 0)
        close(d->listen_fd);
    d->listen_fd = -1;
    if (d->stop_pipe[0] >= 0) {
        close(d->stop_pipe[0]);
        close(d->stop_pipe[1]);
    }
    d->stop_pipe[0] = d->stop_pipe[1] = -1;
    /* Waits for each connection thread: a held one until its command has exited. */
    conn_reap(d, 1);
}

void
sshd_free(struct sshd *d)
{
    struct sess_rec *r, *next;

    if (d == NULL)
        return;
    sshd_stop(d);
    if (d->tmux_sock != NULL)
        tmux_server_kill(d->tmux_sock);
    for (r = d->sessions; r != NULL; r = next) {
        next = r->next;
        sshd_session_rec_free(r);
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
    if (stopping || pthread_create(&c->th, NULL, sshd_conn_main, c) != 0) {
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
 * TCP listener and connection threads
 * ------------------------------------------------------------------------ */

static void *
listen_main(void *arg)
{
    struct sshd *d = arg;

    for (;;) {
        struct pollfd p[2] = {{d->listen_fd, POLLIN, 0}, {d->stop_pipe[0], POLLIN, 0}};
        char id[32];
        int fd;

        /* stop_pipe is the event that ends us; the 1 s only re-checks d->stopping. */
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
 * Small helpers
 * ------------------------------------------------------------------------ */

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
    char *exe = self_exe(), *slash, *env;
    const char *path = getenv("PATH");
    size_t dl;
    const char *p;

    if (exe == NULL || (slash = strrchr(exe, '/')) == NULL) {
        free(exe);
        return NULL;
    }
    *slash = '\0';
    dl = strlen(exe);
    for (p = path; p != NULL && *p;) {
        size_t l = strcspn(p, ":");

        if (l == dl && strncmp(p, exe, l) == 0) {
            free(exe);
            return NULL;
        }
        p += l;
        if (*p == ':')
            p++;
    }
    env = xasprintf("PATH=%s%s%s", exe, path && *path ? ":" : "", path ? path : "");
    free(exe);
    return env;
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
