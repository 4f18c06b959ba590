/*
 * Channels of the agent's SSH server (struct chan). A session channel runs
 * tmux (shell), a command (exec) or sftp-server (subsystem), on a pty or on
 * pipes; a direct-tcpip channel (opened by sshd_fwd.c) is a TCP socket. Both
 * are "an fd we write the client's bytes to and fds we read the client's bytes
 * from", and everything below the session requests treats them alike. The
 * connection loop (sshd_conn.c) calls sshd_chan_service on every channel after
 * each poll and frees the dead ones with sshd_chan_free.
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
 */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <libssh/callbacks.h>
#include <libssh/libssh.h>

#include "err.h"
#include "log.h"
#include "sshd.h"
#include "sshd_int.h"
#include "record.h"
#include "tmux.h"
#include "util.h"
#include "xmalloc.h"

extern char **environ;

#define CHAN_BUF_MAX (256 * 1024) /* client bytes waiting for a slow child, per channel */
/*
 * After the child of a pty exits, its output ends when the pty's last holder
 * closes it (EIO: the event). A background process the command left behind
 * may hold it for ever, and a pty does not tell us: past this bound we stop
 * waiting (as sshd does, without a bound of its own).
 */
#define PTY_EXIT_DRAIN_MS 300
#define SFTP_SERVER "/usr/lib/openssh/sftp-server"

static void chan_refuse_msg(struct chan *ch, const char *what);
static int rec_gate(struct chan *ch, int is_shell);
static int chan_start(struct chan *ch, const char *const *argv, int use_pty, int is_shell,
                      const char *cmd_for_env);

/* ------------------------------------------------------------------------
 * Session requests
 * ------------------------------------------------------------------------ */

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
    if (!(sshd_conn_ops(c) & DSESS_OP_SHELL)) {
        chan_refuse_msg(ch, "a shell");
        return 1;
    }
    if (!ch->pty) {
        /* tmux needs a terminal; give one even to `ssh -T`. */
        ch->pty = 1;
        snprintf(ch->term, sizeof(ch->term), "%s", TMUX_DEFAULT_TERM);
    }
    if (rec_gate(ch, 1) != 0)
        return 1;
    tmux_shell_argv(c->d->tmux_sock, c->session, viewer, c->d->ctl_sock, c->d->shell, env_session,
                    sizeof(env_session), env_sock, sizeof(env_sock), argv);
    return chan_start(ch, argv, 1, 1, NULL) == 0 ? 0 : 1;
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
    if (!(sshd_conn_ops(c) & DSESS_OP_EXEC)) {
        chan_refuse_msg(ch, "exec");
        return 1;
    }
    if (rec_gate(ch, 0) != 0)
        return 1;
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
    if (!(sshd_conn_ops(c) & DSESS_OP_SFTP)) {
        chan_refuse_msg(ch, "sftp");
        return 1;
    }
    if (rec_gate(ch, 0) != 0)
        return 1;
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

struct chan *
sshd_chan_new(struct conn *c, ssh_channel channel, enum chan_kind kind)
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
void
sshd_chan_unknown_request(struct conn *c, ssh_message msg)
{
    struct chan *ch = chan_find(c, ssh_message_channel_request_channel(msg));

    if (ch == NULL || ch->kind != CHAN_SESSION || !ch->started || ch->pty || ch->is_shell ||
        !c->openssh || ch->eow)
        return;
    ch->eow = 1; /* acted on by sshd_chan_service, outside libssh */
    log_info("conn %s: %s's client stopped writing the output (eow): closing the command's stdout",
             c->id, c->user);
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

/* Writes a line to the client's terminal (stdout, or stderr), if the window has room for it. */
static void
chan_say(struct chan *ch, const char *line, int is_stderr)
{
    uint32_t n = (uint32_t)strlen(line);

    if (n <= ssh_channel_window_size(ch->ch))
        (void)(is_stderr ? ssh_channel_write_stderr(ch->ch, line, n)
                         : ssh_channel_write(ch->ch, line, n));
}

/*
 * Recorded sessions (record.h). A shell's first line says the session is
 * recorded; while a required recording is not running nothing starts, and
 * with a required recording nothing runs outside the recorded terminal.
 * 0: go on; -1: refused (the client was told).
 */
static int
rec_gate(struct chan *ch, int is_shell)
{
    struct conn *c = ch->c;
    int required = 0;
    enum record_status st = record_status(c->d->rec, c->session, RECORD_LIVE_WAIT_MS, &required);

    if (st == RECORD_OFF)
        return 0;
    if (st == RECORD_MISSING && required) {
        chan_say(ch, "airlock: this session must be recorded and its recording is not running\r\n",
                 1);
        log_info("conn %s: %s refused: the required recording is not running", c->id, c->user);
        return -1;
    }
    if (!is_shell) {
        if (required)
            chan_refuse_msg(ch, "commands outside the recorded terminal");
        return required ? -1 : 0;
    }
    chan_say(ch,
             st == RECORD_LIVE
                 ? "airlock: this session is recorded: the shared terminal's output is kept by "
                   "the airlock server\r\n"
                 : "airlock: this session is to be recorded, but its recording is not running\r\n",
             0);
    return 0;
}

void
sshd_set_recorder(struct sshd *d, struct recorder *rc)
{
    pthread_mutex_lock(&d->mu);
    d->rec = rc;
    pthread_mutex_unlock(&d->mu);
}

int
sshd_tmux_ensure(struct sshd *d, const char *session)
{
    char e_sess[256], e_sock[1024];
    const char *set[5];
    size_t n = 0;
    char **envp;
    int r;

    snprintf(e_sess, sizeof(e_sess), "AIRLOCK_SESSION=%s", session);
    snprintf(e_sock, sizeof(e_sock), "AIRLOCK_SOCK=%s", d->ctl_sock);
    set[n++] = e_sess;
    set[n++] = e_sock;
    if (d->path_env != NULL)
        set[n++] = d->path_env;
    set[n++] = "TERM=" TMUX_DEFAULT_TERM;
    set[n] = NULL;
    envp = tmux_env_build(environ, (const char *const *)d->env_drop, set);
    r = tmux_session_ensure(d->tmux_sock, session, d->ctl_sock, d->shell, envp);
    tmux_env_free(envp);
    return r;
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
 * Moving bytes, and closing
 * ------------------------------------------------------------------------ */

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
    sshd_conn_regs_drop(ch->c, fd);
    close(fd);
}

static void
note_input(struct conn *c)
{
    pthread_mutex_lock(&c->d->mu);
    c->last_input_ms = time_mono_ms();
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
void
sshd_chan_finish(struct chan *ch, const char *reason, int with_status)
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

/* Stops the child: SIGHUP to its process group, then reaped by sshd_chan_free. */
void
sshd_chan_free(struct chan *ch)
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
        /* Polls for the exit (waitpid has no timeout); a child that ignores SIGHUP gets 1 s. */
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

/* One pass over a channel after ssh_event_dopoll. */
void
sshd_chan_service(struct chan *ch, int64_t now)
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
            sshd_chan_finish(ch, NULL, 0);
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
     * must end with the reason, which conn_kill() (sshd_conn.c) writes:
     * leave it to that.
     */
    if (ch->is_shell && sshd_conn_kill_msg(ch->c) != NULL)
        return;
    sshd_chan_finish(ch, NULL, 1);
}
