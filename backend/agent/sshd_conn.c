/*
 * One SSH connection of the agent's server, in its own thread
 * (sshd_conn_main): key exchange, public-key auth against the registry of
 * debug sessions (sshd_session.c), libssh's server callbacks, then the
 * ssh_event loop that drives every channel (sshd_chan.c, sshd_fwd.c).
 *
 * Only this thread touches its ssh_session. The loop registers with the
 * ssh_event exactly the fds (and directions) its channels can use now, polls
 * for at most POLL_MS, then services each channel outside libssh. The session
 * is non-blocking after the key exchange, so nothing in the loop blocks (the
 * flow control that makes that hold is described in sshd_chan.c) and a
 * removal (kill_msg, set under d->mu by sshd_session.c) is acted on within
 * one poll.
 */
#include <poll.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <libssh/callbacks.h>
#include <libssh/libssh.h>
#include <libssh/server.h>

#include "err.h"
#include "log.h"
#include "sshd.h"
#include "sshd_int.h"
#include "util.h"
#include "xmalloc.h"

/*
 * Timers here are bounds on waits for events, or the pace of a loop that
 * waits for events, never a schedule:
 */
#define KEX_TIMEOUT_S 30    /* a peer that never finishes the key exchange */
#define AUTH_GRACE_MS 60000 /* a peer that never authenticates (sshd's LoginGraceTime is 120 s) */
#define AUTH_MAX_TRIES 20
/*
 * The loop's longest sleep: the fds it waits on wake it at once; this bounds
 * how late it notices what no fd reports (a kill_msg set by another thread,
 * a child that exited without closing its output).
 */
#define POLL_MS 100
/*
 * After our close, the client closes back (SSH_CLOSED, the event we wait
 * for); this bounds the wait for a client that does not. What we sent is in
 * the socket by then and reaches the client either way.
 */
#define CLOSE_GRACE_MS 400
/*
 * A connection whose command asked to end the session (sshd_conn_hold) is
 * closed once that command has exited and its exit status is sent: an event,
 * not a timer (it was a 1.5 s timer, which a loaded machine lost). This is
 * only the safety bound, for a command that goes on after asking
 * (`airlock resume; sleep 1d`). The command has its answer before the end
 * reaches us (the server answers, then sends the new state, in that order on
 * one channel), so all it has to do is run and exit: 10 s is several times
 * what that takes under sanitizers on a loaded machine. The server's relay
 * gives an online agent longer than this (CORE_RELAY_CLOSE_MAX_MS).
 */
#define CONN_HOLD_MAX_MS 10000

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

    if (only == NULL && ssh_user != NULL && sshd_session_find(d, ssh_user) != NULL)
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
        c->authed_ms = time_mono_ms();
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
unsigned
sshd_conn_ops(struct conn *c)
{
    struct sess_rec *r;
    unsigned ops = 0;

    pthread_mutex_lock(&c->d->mu);
    r = sshd_session_find(c->d, c->session);
    if (r != NULL && strcmp(r->s->state, "Active") == 0)
        ops = r->s->ops;
    pthread_mutex_unlock(&c->d->mu);
    return ops;
}

/* ------------------------------------------------------------------------
 * Server callbacks: channel opens and requests without a callback
 * ------------------------------------------------------------------------ */

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
    sshd_chan_new(c, channel, CHAN_SESSION);
    return channel;
}

/*
 * libssh's catch-all for requests without a callback: channel requests it has
 * no name for (sshd_chan.c) and direct-tcpip opens (sshd_fwd.c). 0 = handled.
 */
static int
on_message(ssh_session s, ssh_message msg, void *ud)
{
    struct conn *c = ud;

    (void)s;
    if (ssh_message_type(msg) == SSH_REQUEST_CHANNEL &&
        ssh_message_subtype(msg) == SSH_CHANNEL_REQUEST_UNKNOWN) {
        sshd_chan_unknown_request(c, msg);
        return 1;
    }
    if (ssh_message_type(msg) != SSH_REQUEST_CHANNEL_OPEN ||
        ssh_message_subtype(msg) != SSH_CHANNEL_DIRECT_TCPIP)
        return 1;
    return sshd_fwd_open(c, msg);
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
void
sshd_conn_regs_drop(struct conn *c, int fd)
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

const char *
sshd_conn_kill_msg(struct conn *c)
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

/*
 * Whether the connection is to be closed now; *msgp receives the reason (a
 * static string) or NULL. A connection marked by sshd_conn_hold waits for its
 * running commands, up to *hold_until (set here on the first call after the
 * end); any other one goes at once. The mark lapses while the session goes on
 * and no command runs (the request was refused, or its command gave up).
 */
static int
conn_kill_due(struct conn *c, int64_t now, int64_t *hold_until, const char **msgp)
{
    int running = conn_running_cmd(c), hold;
    const char *msg;

    pthread_mutex_lock(&c->d->mu);
    msg = c->kill_msg;
    if (msg == NULL && c->hold && !running)
        c->hold = 0;
    hold = c->hold;
    pthread_mutex_unlock(&c->d->mu);
    *msgp = msg;
    if (msg == NULL)
        return 0;
    if (!hold || !running)
        return 1;
    if (*hold_until == 0) {
        *hold_until = now + CONN_HOLD_MAX_MS;
        log_info("conn %s: %s; closing once the command that asked has exited", c->id, msg);
    }
    if (now < *hold_until)
        return 0;
    log_warn("conn %s: its command still runs %d s after the end", c->id, CONN_HOLD_MAX_MS / 1000);
    return 1;
}

/* Writes the reason, closes every channel, and gives the client a moment to close back. */
static void
conn_kill(struct conn *c, const char *msg)
{
    int64_t deadline;
    size_t i;

    log_info("conn %s: closing %s: %s", c->id, c->user ? c->user : "?", msg);
    for (i = 0; i < c->n_chans; i++)
        sshd_chan_finish(c->chans[i], msg, 0);
    /* Only the session socket from here: a child's fd must not spin the poll. */
    while (c->n_regs > 0)
        sshd_conn_regs_drop(c, c->regs[0].fd);
    /* Flush, and let the client read the reason and close first. */
    deadline = time_mono_ms() + CLOSE_GRACE_MS;
    while (time_mono_ms() < deadline) {
        if (ssh_get_status(c->s) & (SSH_CLOSED | SSH_CLOSED_ERROR))
            break;
        if (ssh_event_dopoll(c->ev, 50) == SSH_ERROR)
            break;
    }
}

static void
conn_loop(struct conn *c)
{
    int64_t start = time_mono_ms(), hold_until = 0;
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
        now = time_mono_ms();
        if (!c->authed) {
            if (now - start > AUTH_GRACE_MS || c->auth_tries > AUTH_MAX_TRIES) {
                log_info("conn %s: authentication %s", c->id,
                         c->auth_tries > AUTH_MAX_TRIES ? "failed too often" : "timed out");
                break;
            }
        }
        if (conn_kill_due(c, now, &hold_until, &kill_msg)) {
            conn_kill(c, kill_msg);
            break;
        }
        for (i = 0; i < c->n_chans; i++)
            sshd_chan_service(c->chans[i], now);
        /* Free finished channels (never inside a libssh callback). */
        for (i = 0; i < c->n_chans;) {
            if (c->chans[i]->dead) {
                struct chan *ch = c->chans[i];

                memmove(&c->chans[i], &c->chans[i + 1], (c->n_chans - i - 1) * sizeof(ch));
                c->n_chans--;
                sshd_chan_free(ch);
            } else {
                i++;
            }
        }
    }
}

void *
sshd_conn_main(void *arg)
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
    /* From here on nothing may block: see sshd_chan.c's header comment. */
    ssh_set_blocking(c->s, 0);
    c->ev = ssh_event_new();
    ssh_event_add_session(c->ev, c->s);
    conn_loop(c);
out:
    for (i = 0; i < c->n_chans; i++)
        sshd_chan_free(c->chans[i]);
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
