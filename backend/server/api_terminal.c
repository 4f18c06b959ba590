/*
 * The browser terminal (issue 13): POST /debug-sessions/{name}/terminal-ticket
 * and GET /debug-sessions/{name}/terminal (WebSocket).
 *
 * Authentication: a browser cannot set Authorization on an upgrade, so it
 * trades its bearer for a single-use ticket (term_ticket.h) and opens the
 * WebSocket with ?ticket=; other clients may send the bearer itself. Either
 * way the upgrade makes the ticket request's checks again, with the session
 * as it is then: 404 unless the caller may see it, then
 * policy_check_terminal() (403 browser off or rw not allowed, 409 unless
 * Active).
 *
 * The stream: the relay pairs the browser's socket with the agent's
 * dial-back (control message "terminal", like "open" for SSH) and splices
 * them; for a read-only caller it refuses binary frames (keystrokes) at the
 * server. Removal and the end of the session close it at once
 * (relay_close_terminals from core_after_run). Unlike SSH, these bytes are
 * plain terminal output that airlockd can read (docs/security.md).
 */
#include <stdlib.h>
#include <string.h>

#include "api.h"
#include "control.h"
#include "err.h"
#include "relay.h"
#include "store.h"
#include "term_ticket.h"
#include "util.h"
#include "xmalloc.h"

#define TERM_SIZE_MAX 1000 /* cols and rows */

/* What the browser's WebSocket thread needs once upgraded. */
struct term_job {
    struct relay *relay;
    char *conn;
};

static void
term_job_free(void *p)
{
    struct term_job *j = p;

    free(j->conn);
    free(j);
}

static void
run_term(struct upgraded *u, void *arg)
{
    struct term_job *j = arg;

    relay_run_participant(j->relay, j->conn, u);
}

/* "ro"/"rw"/NULL to POLICY_TERM_*; -1 for anything else. */
static int
parse_mode(const char *m)
{
    if (m == NULL)
        return POLICY_TERM_ANY;
    if (strcmp(m, "ro") == 0)
        return POLICY_TERM_RO;
    if (strcmp(m, "rw") == 0)
        return POLICY_TERM_RW;
    return -1;
}

/*
 * Loads session name for req->p and applies policy_check_terminal(want).
 * On 0, *sp is the session and *read_only the mode.
 */
static int
authorize(struct api_req *req, struct api_reply *rep, int want, struct sess **sp, int *read_only)
{
    struct sess_pview pv;
    const char *why = NULL;
    int r;

    pthread_mutex_lock(&req->app->lock);
    r = api_load_visible(req, rep, req->params[0], sp);
    pthread_mutex_unlock(&req->app->lock);
    if (r != 0)
        return r;
    sess_pview_init(&pv, *sp);
    r = policy_check_terminal(&pv.v, &req->p, want, read_only, &why);
    sess_pview_cleanup(&pv);
    if (r != 0) {
        sess_free(*sp);
        *sp = NULL;
        return api_fail(rep, r, "%s", why);
    }
    return 0;
}

int
api_terminal_ticket(struct api_req *req, struct api_reply *rep)
{
    static const struct field fields[] = {{"mode", F_STRING, 0, 8}};
    struct sess *s = NULL;
    char *ticket = NULL, *path, *url, at[21];
    int r, want, ro;

    if ((r = api_body_check(req, rep, fields, 1)) != 0)
        return r;
    if ((want = parse_mode(api_str(req, "mode"))) < 0)
        return api_fail(rep, ERR_INVALID, "field 'mode' must be \"ro\" or \"rw\"");
    if ((r = authorize(req, rep, want, &s, &ro)) != 0)
        return r;
    r = term_ticket_issue(req->app->term_tickets, s->name, &req->id, ro, req->now, &ticket);
    if (r != 0) {
        sess_free(s);
        return api_fail(rep, r, "too many terminal tickets waiting (limit %d)", TERM_TICKET_MAX);
    }
    path = xasprintf("/api/v1/debug-sessions/%s/terminal?ticket=%s", s->name, ticket);
    url = api_ws_url(req->app, path);
    time_fmt(req->now + TERM_TICKET_TTL_S, at);
    rep->json = json_pack("{s:s, s:s, s:s, s:s}", "ticket", ticket, "expiresAt", at, "mode",
                          ro ? "ro" : "rw", "url", url);
    explicit_bzero(ticket, strlen(ticket));
    explicit_bzero(path, strlen(path));
    explicit_bzero(url, strlen(url));
    free(ticket);
    free(path);
    free(url);
    sess_free(s);
    return 0;
}

/*
 * The upgrade's caller: the bearer (mode from ?mode=) or the ticket (its
 * mode). Fills req->id and req->p; *want gets the mode asked for.
 */
static int
term_identity(struct api_req *req, struct api_reply *rep, int *want)
{
    const char *tok = api_bearer(req);
    char *t, *m;
    int r, ro;

    if (tok != NULL) {
        m = api_query(req, "mode");
        *want = parse_mode(m);
        free(m);
        if (*want < 0)
            return api_fail(rep, ERR_INVALID, "query 'mode' must be \"ro\" or \"rw\"");
        return api_authenticate(req, rep, tok, 0);
    }
    if ((t = api_query(req, "ticket")) == NULL || *t == '\0') {
        free(t);
        return api_fail(rep, ERR_AUTH, "missing terminal ticket or bearer token");
    }
    r = term_ticket_take(req->app->term_tickets, t, req->params[0], req->now, &req->id, &ro);
    explicit_bzero(t, strlen(t));
    free(t);
    if (r != 0)
        return api_fail(rep, ERR_AUTH, "invalid, used or expired terminal ticket");
    req->authed = 1;
    api_principal_set(req);
    *want = ro ? POLICY_TERM_RO : POLICY_TERM_RW;
    return 0;
}

/* Query n as 1..TERM_SIZE_MAX (absent: def) into *v; 400 otherwise. */
static int
query_size(struct api_req *req, struct api_reply *rep, const char *n, int def, int *v)
{
    char *q = api_query(req, n), *end = NULL;
    long x = def;

    if (q != NULL)
        x = strtol(q, &end, 10);
    if (q != NULL && (*q == '\0' || *end != '\0' || x < 1 || x > TERM_SIZE_MAX)) {
        free(q);
        return api_fail(rep, ERR_INVALID, "query '%s' must be an integer from 1 to %d", n,
                        TERM_SIZE_MAX);
    }
    free(q);
    *v = (int)x;
    return 0;
}

/*
 * Whose stream it is for relay_close_terminals(): the participant row's
 * user when the caller is an active participant (leave and removal name
 * it), else the caller's own name (approvers, admins).
 */
static const char *
stream_user(const struct sess *s, const struct principal *p)
{
    for (size_t i = 0; i < s->n_parts; i++)
        if (s->parts[i].left_at == 0 &&
            policy_same_person(p, s->parts[i].user, s->parts[i].email, s->parts[i].domain))
            return s->parts[i].user;
    return p->user;
}

int
api_terminal_open(struct api_req *req, struct api_reply *rep)
{
    struct sess *s = NULL;
    struct term_job *job;
    char *conn = NULL;
    int r, want = 0, ro = 1, cols = 80, rows = 24, cap;

    if ((r = term_identity(req, rep, &want)) != 0 ||
        (r = query_size(req, rep, "cols", 80, &cols)) != 0 ||
        (r = query_size(req, rep, "rows", 24, &rows)) != 0 ||
        (r = authorize(req, rep, want, &s, &ro)) != 0)
        return r;
    cap = s->tmpl->max_participants * 4;
    conn = random_token(16);
    r = relay_expect_terminal(req->app->relay, conn, s->name, s->agent, stream_user(s, &req->p),
                              cap, ro);
    if (r == ERR_TOO_MANY)
        r = api_fail(rep, r, "too many connections to this session (limit %d)", cap);
    else if (r == ERR_UNAVAILABLE)
        r = api_fail(rep, r, "the server is shutting down");
    else if (r != 0)
        r = api_fail(rep, r, "cannot open a relayed connection");
    else if (control_send_terminal(req->app->control, s->agent, conn, s->name, ro, cols, rows) != 0)
        r = api_fail(rep, ERR_CONFLICT, "the session's agent is offline");
    if (r == 0) {
        job = xcalloc(1, sizeof(*job));
        job->relay = req->app->relay;
        job->conn = conn;
        conn = NULL;
        rep->upgrade = run_term;
        rep->upgrade_arg = job;
        rep->upgrade_arg_free = term_job_free;
    }
    sess_free(s);
    free(conn);
    return r;
}
