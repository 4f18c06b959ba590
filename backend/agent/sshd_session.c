/*
 * Debug sessions as the agent's SSH server sees them: the struct dsess
 * helpers, the registry of the last state the control channel sent for each
 * session (struct sess_rec, with each participant's keys parsed once, which
 * sshd_conn.c authenticates against), the reconciliation that closes the
 * connections of removed users and ended sessions, and the questions the
 * control channel asks about a session's connections (count, last input,
 * attribution).
 *
 * The registry and the connection list are read and changed under d->mu.
 * Reconciliation only sets a connection's kill_msg; its thread acts on it
 * within one poll (sshd_conn.c).
 */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include <libssh/libssh.h>

#include "err.h"
#include "log.h"
#include "sshd.h"
#include "sshd_int.h"
#include "tmux.h"
#include "util.h"
#include "xmalloc.h"

extern char **environ;

#define MSG_ENDED "airlock: session ended"
#define MSG_REMOVED "airlock: you were removed from the session"
#define MSG_DEMOTED "airlock: your role is now viewer; join again to watch read-only"

static int parse_key_line(const char *line, ssh_key *key);

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
 * Desired state and reconciliation
 * ------------------------------------------------------------------------ */

struct sess_rec *
sshd_session_find(struct sshd *d, const char *name)
{
    struct sess_rec *r;

    for (r = d->sessions; r != NULL; r = r->next)
        if (strcmp(r->s->name, name) == 0)
            return r;
    return NULL;
}

void
sshd_session_rec_free(struct sess_rec *r)
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
            nr->term_input_ms = old->term_input_ms;
            *pp = nr;
            sshd_session_rec_free(old);
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
        /* a promoted viewer keeps watching; their next connection writes */
        m = member_find(nr, c->user);
        if (m == NULL)
            c->kill_msg = MSG_REMOVED;
        else if (m->role == ROLE_VIEWER && c->role != ROLE_VIEWER)
            c->kill_msg = MSG_DEMOTED;
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
    r = sshd_session_find(d, name);
    if (r != NULL)
        s = dsess_dup(r->s);
    pthread_mutex_unlock(&d->mu);
    return s;
}

int
sshd_term_spawn(struct sshd *d, const char *session, int read_only, int cols, int rows, int *pid,
                int *master)
{
    struct dsess *s = sshd_session_get(d, session);
    char target[256], e_sess[256], e_sock[1024], e_term[32];
    const char *set[5] = {e_sess, e_sock, e_term, d->path_env, NULL};
    const char *argv[] = {"tmux", "-S", d->tmux_sock, "attach-session", "-t", target, NULL, NULL};
    pid_t p = -1;
    char **envp;
    int r, ok;

    *pid = *master = -1;
    ok = s != NULL && strcmp(s->state, "Active") == 0 && s->sharing &&
         (read_only || (s->ops & DSESS_OP_SHELL));
    dsess_free(s);
    if (!ok)
        return ERR_FORBIDDEN;
    snprintf(target, sizeof(target), "=%s", session);
    if (read_only) { /* attach-session -r -t =NAME */
        argv[4] = "-r";
        argv[5] = "-t";
        argv[6] = target;
    }
    snprintf(e_sess, sizeof(e_sess), "AIRLOCK_SESSION=%s", session);
    snprintf(e_sock, sizeof(e_sock), "AIRLOCK_SOCK=%s", d->ctl_sock);
    snprintf(e_term, sizeof(e_term), "TERM=%s", TMUX_DEFAULT_TERM);
    envp = tmux_env_build(environ, (const char *const *)d->env_drop, set);
    r = tmux_session_ensure(d->tmux_sock, session, d->ctl_sock, d->shell, envp);
    if (r == 0)
        r = tmux_spawn_pty(argv, envp, cols, rows, &p, master);
    tmux_env_free(envp);
    *pid = (int)p;
    return r;
}

/* ------------------------------------------------------------------------
 * Connections of a session
 * ------------------------------------------------------------------------ */

void
sshd_conn_hold(struct sshd *d, const char *session, const char *conn_id)
{
    struct conn *c;

    if (session == NULL || conn_id == NULL || conn_id[0] == '\0')
        return;
    pthread_mutex_lock(&d->mu);
    for (c = d->conns; c != NULL; c = c->next) {
        if (!c->authed || c->finished || c->session == NULL || strcmp(c->session, session) != 0 ||
            strcmp(c->id, conn_id) != 0)
            continue;
        c->hold = 1;
        log_debug("conn %s: asked to end session %s; it closes after its command", c->id, session);
        break;
    }
    pthread_mutex_unlock(&d->mu);
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
    struct sess_rec *r;
    int64_t t = 0;

    pthread_mutex_lock(&d->mu);
    for (c = d->conns; c != NULL; c = c->next)
        if (c->authed && c->session && strcmp(c->session, session) == 0 && c->last_input_ms > t)
            t = c->last_input_ms;
    if ((r = sshd_session_find(d, session)) != NULL && r->term_input_ms > t)
        t = r->term_input_ms;
    pthread_mutex_unlock(&d->mu);
    return t;
}

void
sshd_term_input(struct sshd *d, const char *session)
{
    struct sess_rec *r;

    pthread_mutex_lock(&d->mu);
    if ((r = sshd_session_find(d, session)) != NULL)
        r->term_input_ms = time_mono_ms();
    pthread_mutex_unlock(&d->mu);
}

int64_t
sshd_term_input_ms(struct sshd *d, const char *session)
{
    struct sess_rec *r;
    int64_t t = 0;

    pthread_mutex_lock(&d->mu);
    if ((r = sshd_session_find(d, session)) != NULL)
        t = r->term_input_ms;
    pthread_mutex_unlock(&d->mu);
    return t;
}

void
sshd_conn_list(struct sshd *d, const char *session, struct sshd_conn_info **v, size_t *n)
{
    struct conn *c;
    size_t cap = 0, i, j;

    *v = NULL;
    *n = 0;
    pthread_mutex_lock(&d->mu);
    for (c = d->conns; c != NULL; c = c->next) {
        if (!c->authed || c->finished || c->session == NULL || strcmp(c->session, session) != 0)
            continue;
        if (*n == cap) {
            cap = cap ? cap * 2 : 4;
            *v = xrealloc(*v, cap * sizeof(**v));
        }
        (*v)[*n].id = xstrdup(c->id ? c->id : "?");
        (*v)[*n].user = xstrdup(c->user ? c->user : "?");
        (*v)[*n].role = c->role;
        (*v)[*n].authed_ms = c->authed_ms;
        (*v)[(*n)++].last_input_ms = c->last_input_ms;
    }
    pthread_mutex_unlock(&d->mu);
    for (i = 1; i < *n; i++) /* oldest first: a few entries, insertion sort */
        for (j = i; j > 0 && (*v)[j - 1].authed_ms > (*v)[j].authed_ms; j--) {
            struct sshd_conn_info t = (*v)[j];

            (*v)[j] = (*v)[j - 1];
            (*v)[j - 1] = t;
        }
}

void
sshd_conn_list_free(struct sshd_conn_info *v, size_t n)
{
    size_t i;

    for (i = 0; i < n; i++) {
        free(v[i].id);
        free(v[i].user);
    }
    free(v);
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
    } else if ((r = sshd_session_find(d, session)) != NULL) {
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
 * Small helpers
 * ------------------------------------------------------------------------ */

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
