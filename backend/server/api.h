/*
 * The API layer: the shared application context, the request and reply a
 * handler sees, and the helpers every api_*.c uses. Handlers return 0 or an
 * ERR_* code; api_status_for() reads the status from err.c's one table.
 */
#ifndef AIRLOCK_API_H
#define AIRLOCK_API_H
#include <pthread.h>
#include <stdint.h>

#include <jansson.h>

#include "auth.h"
#include "config.h"
#include "policy.h"
#include "store.h"
#include "upgrade.h"

#ifndef AIRLOCK_VERSION /* the Makefile's AIRLOCK_VERSION */
#error "AIRLOCK_VERSION must come from the Makefile"
#endif
#define API_MAX_BODY (64 * 1024)
#define API_MAX_STRING 4096 /* any string field, unless the field says less */
#define API_MAX_LIST 100    /* any array field */
#define API_MAX_PAGE 500    /* sessions per list page (query 'limit') */

struct relay;
struct control;
struct term_tickets;
struct core_after;
struct metrics;
struct tmpl_cfg;

struct app {
    struct config *_Atomic cfg; /* current generation (reload.c swaps it on SIGHUP; old ones */
    struct auth *_Atomic auth;  /* live until shutdown): read it once per request or pass */
    struct store *store;
    struct relay *relay;
    struct control *control;
    struct term_tickets *term_tickets; /* browser terminal tickets (term_ticket.h) */
    pthread_mutex_t lock;              /* serialises every use of store */
    int64_t started_at;
};

struct api_req {
    struct app *app;
    void *conn; /* struct MHD_Connection */
    const char *method;
    const char *path;        /* raw (undecoded) path, borrowed from MHD */
    struct metrics *metrics; /* the HTTP edge's counters (GET /metrics) */
    char *params[3];         /* decoded path segments matched by ':' */
    json_t *body;            /* parsed body, NULL when empty */
    const char *raw;         /* ROUTE_BYTES: the body as sent (borrowed), raw_len bytes */
    size_t raw_len;
    int authed;
    struct identity id;
    struct principal p; /* points into id */
    int64_t now;
};

struct api_reply {
    int status;   /* 0: derived from the handler's return */
    json_t *json; /* response body (stolen) */
    char *body;   /* ... or the body already as JSON text (stolen) */
    size_t body_len;
    char *error; /* message for an error reply */
    json_t *details;
    const char *content_type; /* static string; NULL: application/json */
    const char *cache;        /* Cache-Control, static string; NULL: no-store */
    char *csp;                /* Content-Security-Policy (new string), or NULL */
    int has_file;             /* set: send file_fd (taken), file_size bytes, as the body */
    int file_fd;
    uint64_t file_size;
    upgrade_fn upgrade; /* set: answer 101 and run upgrade(u, upgrade_arg) */
    void *upgrade_arg;
    void (*upgrade_arg_free)(void *);
    int commit_on_error; /* an action's writes stand even though it answers an error */
};

typedef int (*api_handler_fn)(struct api_req *req, struct api_reply *rep);

/* Sets rep->error from fmt and returns r, so handlers can `return api_fail(...)`. */
int api_fail(struct api_reply *rep, int r, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* The HTTP status for r (err.c's table). */
int api_status_for(int r);
/*
 * The error envelope {"error", "code", "details"?} for r: msg, or err_str(r)
 * when msg is NULL (bytes of msg that are not UTF-8 become '?'). details is
 * borrowed (the envelope takes a reference). Returns a new reference.
 */
json_t *api_error_json(int r, const char *msg, const json_t *details);
/* Frees what rep holds (JSON, body, error, file, upgrade argument); rep stays zeroed. */
void api_reply_cleanup(struct api_reply *rep);
/* Frees what req holds (params, body, identity). */
void api_req_cleanup(struct api_req *req);
/*
 * Checks tok, a JWT (borrowed; NULL: none), and fills req->id and req->p:
 * 401, or 503 when the issuer cannot be reached; an agent's token is 403
 * unless agent_ok.
 */
int api_authenticate(struct api_req *req, struct api_reply *rep, const char *tok, int agent_ok);
/* Points req->p into req->id (admin from the current config). */
void api_principal_set(struct api_req *req);
/* Number of Unicode characters in the len bytes of UTF-8 at s. */
size_t api_utf8_chars(const char *s, size_t len);

/* Strict body schema: unknown fields, wrong types and over-long strings are 400. */
enum field_type { F_STRING, F_INT, F_BOOL, F_STRARRAY, F_OBJECT };
struct field {
    const char *name;
    enum field_type type;
    int required;
    size_t max_len; /* strings and string items; 0: API_MAX_STRING */
};
int api_body_check(struct api_req *req, struct api_reply *rep, const struct field *fields,
                   size_t n_fields);
const char *api_str(const struct api_req *req, const char *name);
/* The request's "Authorization: Bearer" token, or NULL. Borrowed. */
const char *api_bearer(const struct api_req *req);
/* Request header name, or NULL. Borrowed (valid until the request completes). */
const char *api_header(const struct api_req *req, const char *name);
/* Checks the agent credential (bearer) for agent name: 0, or 401. */
int api_agent_auth(struct api_req *req, struct api_reply *rep, const char *name);
/* A query argument, percent-decoded (new string) or NULL. */
char *api_query(const struct api_req *req, const char *name);

/* Session and agent JSON for the caller p (can* flags depend on p). New reference. */
json_t *api_session_json(struct app *app, const struct sess *s, const struct principal *p);
json_t *api_agent_json(struct app *app, const struct agent_rec *a, int with_sessions);
/* "SHA256:..." fingerprints (JSON array) of "type base64 [comment]" public keys. */
json_t *api_fingerprints(const json_t *host_keys);
/* Validates an OpenSSH public key line; returns 0 or ERR_INVALID. */
int api_check_pubkey(const char *line);

/* publicUrl with http(s) turned into ws(s), followed by path. New string. */
char *api_ws_url(const struct app *app, const char *path);

/* 1 if p may see s. */
int api_can_see(const struct sess *s, const struct principal *p);

/*
 * Creates a session from template t for requester (validating spec: the
 * request body or the agent's registration) inside the caller's
 * transaction; *name_out gets its name (new string). Caller holds app->lock.
 */
int api_session_new(struct app *app, const struct tmpl_cfg *t, const char *agent,
                    const struct principal *requester, const char *display_name, const json_t *spec,
                    int64_t now, struct api_reply *rep, char **name_out, struct core_after *after);

/* Loads session name visible to req->p (404 otherwise). Caller holds app->lock. */
int api_load_visible(struct api_req *req, struct api_reply *rep, const char *name,
                     struct sess **sp);

/*
 * Session views (viewcache.h): a session's reply rendered once per change.
 * api_session_view renders s (taken) into a new view and caches it unless
 * something was dropped since gen (read before s was loaded). api_view_visible gets
 * session name visible to req->p from the cache, or loads it (taking
 * app->lock: the caller must not hold it) and caches it; 404 otherwise.
 * api_view_render writes the reply for caller p into out, which holds at
 * least api_view_size(v) bytes, and returns its length (no NUL).
 */
struct sess_view;
struct sess_view *api_session_view(struct app *app, struct sess *s, uint64_t gen);
int api_view_visible(struct api_req *req, struct api_reply *rep, const char *name,
                     struct sess_view **vp);
size_t api_view_size(const struct sess_view *v);
size_t api_view_render(const struct sess_view *v, const struct principal *p, char *out);
/* Sets rep's body to v as caller p sees it. */
void api_reply_view(struct api_reply *rep, const struct sess_view *v, const struct principal *p);

/* Handlers (one file per resource). */
int api_health_get(struct api_req *req, struct api_reply *rep);
int api_ready_get(struct api_req *req, struct api_reply *rep);
int api_config_get(struct api_req *req, struct api_reply *rep);
int api_me_get(struct api_req *req, struct api_reply *rep);
int api_dev_token(struct api_req *req, struct api_reply *rep);
int api_templates_list(struct api_req *req, struct api_reply *rep);
int api_templates_get(struct api_req *req, struct api_reply *rep);
int api_sessions_list(struct api_req *req, struct api_reply *rep);
int api_sessions_create(struct api_req *req, struct api_reply *rep);
int api_sessions_get(struct api_req *req, struct api_reply *rep);
int api_sessions_approve(struct api_req *req, struct api_reply *rep);
int api_sessions_reject(struct api_req *req, struct api_reply *rep);
int api_sessions_join(struct api_req *req, struct api_reply *rep);
int api_participants_role(struct api_req *req, struct api_reply *rep);
int api_participants_remove(struct api_req *req, struct api_reply *rep);
/*
 * Runs fn on the session req->params[0] names (404 unless visible) inside
 * one transaction, then replies with the session and does the post-commit
 * work (api_sessions.c; the actions of other files use it too).
 */
struct core_after;
typedef int (*api_action_fn)(struct api_req *req, struct api_reply *rep, struct sess *s,
                             struct core_after *after);
int api_sessions_mutate(struct api_req *req, struct api_reply *rep, api_action_fn fn);
int api_sessions_leave(struct api_req *req, struct api_reply *rep);
int api_sessions_renew(struct api_req *req, struct api_reply *rep);
int api_sessions_terminate(struct api_req *req, struct api_reply *rep);
int api_sessions_invite(struct api_req *req, struct api_reply *rep);
int api_sessions_events(struct api_req *req, struct api_reply *rep);
int api_sessions_connect(struct api_req *req, struct api_reply *rep);
int api_terminal_ticket(struct api_req *req, struct api_reply *rep);
int api_terminal_open(struct api_req *req, struct api_reply *rep);
int api_agents_list(struct api_req *req, struct api_reply *rep);
int api_agents_register(struct api_req *req, struct api_reply *rep);
int api_agents_get(struct api_req *req, struct api_reply *rep);
int api_agents_control(struct api_req *req, struct api_reply *rep);
int api_agents_tunnel(struct api_req *req, struct api_reply *rep);
int api_recording_chunk(struct api_req *req, struct api_reply *rep);
int api_recording_failure(struct api_req *req, struct api_reply *rep);
int api_recording_get(struct api_req *req, struct api_reply *rep);
int api_recording_verify(struct api_req *req, struct api_reply *rep);

#endif
