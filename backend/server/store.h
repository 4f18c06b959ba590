/*
 * SQLite storage. One connection, WAL, foreign keys on, synchronous=FULL.
 * The caller serialises access (app->lock); every state change and its
 * audit event are written between store_begin() and store_commit().
 */
#ifndef AIRLOCK_STORE_H
#define AIRLOCK_STORE_H
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>
#include <sqlite3.h>

#include "config.h"
#include "err.h"
#include "policy.h"
#include "session.h"

struct store;

struct sess_participant {
    char *user, *email, *display_name;
    char *domain; /* identity domain; NULL for rows from before 0005 */
    enum policy_role role;
    int64_t joined_at, left_at; /* left_at 0: still in */
    char *ssh_public_key;       /* NULL until they join (the owner's row; '' in the table) */
    /* presence (0007, store_presence.c); times 0 = never */
    int64_t first_connected_at, last_input_at;
    int connections;         /* live SSH connections now */
    int64_t connected_since; /* start of the oldest live one */
};

struct sess_invite {
    char *who;
    enum policy_role role;
};

/* A debug session as stored, with its approval and participants. */
struct sess {
    char *name, *template_name, *agent;
    char *requested_by, *requested_by_email, *requested_by_name;
    char *requested_by_domain; /* requester's identity domain; NULL: before 0005, or any */
    json_t *requester_groups;  /* array of strings */
    char *reason;
    int64_t requested_duration_s;
    struct sess_invite *invited;
    size_t n_invited;
    enum session_state state;
    char *message;
    int64_t created_at, starts_at, expires_at, ended_at;
    /* time rules (0007, timerules.h); 0 = none yet */
    int64_t activated_at, first_connect_at, last_input_at, rules_at;
    int renewal_count;
    int approval_required;
    char *tmpl_text;             /* resolved template snapshot (JSON text), set for inserts */
    const struct tmpl_cfg *tmpl; /* parsed snapshot: shared, owned by the store's cache
                                    (or by owned_tmpl, or by the config for new sessions) */
    struct tmpl_cfg *owned_tmpl;
    int64_t version;
    char *decision, *decided_by, *decision_reason; /* NULL until decided */
    char *decided_by_domain;                       /* NULL: decided before 0006 (any) */
    int64_t decided_at;
    struct sess_participant *parts;
    size_t n_parts;
    int64_t rowid;               /* insertion order, for paging */
    int agent_online;            /* from the agents table at load time */
    int64_t agent_offline_since; /* ... and since when it is offline (0: unknown or online) */
    json_t *agent_host_keys;     /* array; empty when the agent is unknown */
    json_t *recording;           /* status.recording from its row (store_recording.c), or NULL */
};

struct agent_rec {
    char *name;
    json_t *labels;    /* object */
    json_t *host_keys; /* array of "ssh-ed25519 AAAA..." */
    char *version;
    char *registered_by;
    int64_t registered_at, last_seen_at, offline_since;
    char *credential_hash;
    int online;
};

/* List filter for store_sess_page. */
struct sess_filter {
    unsigned state_mask; /* bit per enum session_state; 0 = all */
    const char *agent;
    const char *user; /* requested_by (case-insensitive) */
    int mine;         /* requested, participating or invited */
    /* visibility: when !admin, only sessions the principal may see */
    int admin;
    const char *me_user, *me_email, *me_domain;
    char **approver_templates; /* templates where the caller is an approver */
    size_t n_approver_templates;
    int limit;
    int64_t cursor_rowid; /* rowid of the previous page's last row; 0: first page */
};

/* Opens path (creating it 0600) and applies migrations. Refuses a newer schema. */
int store_open(const char *path, struct store **stp, char *err, size_t err_len) WARN_UNUSED;
void store_close(struct store *st);
sqlite3 *store_db(struct store *st);
/* Rendered sessions (viewcache.h), kept true by the store's update hook. */
#define STORE_VIEWS 4096
struct viewcache *store_views(struct store *st);
int store_begin(struct store *st);
int store_commit(struct store *st);
void store_rollback(struct store *st);
/* 0 if the database answers a write (for /readyz). */
int store_check_writable(struct store *st);

void sess_free(struct sess *s);
/* Fills the policy view of s (borrowing from s; parts/invites into caller arrays of size n). */
void sess_policy_view(const struct sess *s, struct policy_session *v,
                      struct policy_participant *parts, struct policy_invite *invs);
/*
 * A session's policy view with its participant and invitation arrays on the
 * heap (their sizes come from database rows). It borrows from s;
 * sess_pview_cleanup() frees the arrays.
 */
struct sess_pview {
    struct policy_session v;
    struct policy_participant *parts;
    struct policy_invite *invs;
};
void sess_pview_init(struct sess_pview *pv, const struct sess *s);
void sess_pview_cleanup(struct sess_pview *pv);

/* Loads one session whole (row, approval, participants): 0, ERR_NOT_FOUND or ERR_DB. */
int store_sess_get(struct store *st, const char *name, struct sess **sp);
int store_sess_get_rowid(struct store *st, int64_t rowid, struct sess **sp);
int store_sess_insert(struct store *st, const struct sess *s);
/* Writes the mutable fields of s with optimistic locking; bumps s->version. */
int store_sess_update(struct store *st, struct sess *s);
int store_sess_delete_ended_before(struct store *st, int64_t t, int *n_deleted);
/* Names of sessions (new array of new strings) matching a SQL condition kind. */
int store_sess_names_due(struct store *st, const char *kind, int64_t now, int64_t arg,
                         char ***names, size_t *n);
/*
 * One page of f, newest first: the rowids of at most f->limit sessions into
 * ids; *total counts all matches, *has_more says whether a next page exists.
 */
int store_sess_page(struct store *st, const struct sess_filter *f, int64_t *ids, size_t *n,
                    int64_t *total, int *has_more);
/* Sessions bound to agent in the given states (state_mask 0: not ended). */
int store_sess_by_agent(struct store *st, const char *agent, unsigned state_mask,
                        struct sess ***list, size_t *n);
void sess_list_free(struct sess **list, size_t n);
/*
 * Open (Pending, PendingApproval, Active) sessions requested by user
 * (case-insensitive) of identity domain (NULL, or a session recorded without
 * one: any), of template when not NULL, into *n (store_quota.c).
 */
int store_sess_count_open(struct store *st, const char *user, const char *domain, const char *tmpl,
                          int64_t *n);

/* The decision on session by the approver by of identity domain by_domain. */
int store_approval_insert(struct store *st, const char *session, const char *decision,
                          const char *by, const char *by_domain, int64_t at, const char *reason);
/*
 * Joins p (borrowed) to session: a new row, or the existing one updated (key,
 * role, back in if they had left). joined_at stays as it was for a row that
 * is in and has no key yet: the owner's, listed since activation.
 */
int store_participant_upsert(struct store *st, const char *session,
                             const struct sess_participant *p);
/* Adds p (borrowed) unless session already has a row for p->user. 0 or ERR_DB. */
int store_participant_add(struct store *st, const char *session, const struct sess_participant *p);
int store_participant_leave(struct store *st, const char *session, const char *user, int64_t at);
/* Sets an active participant's role (joinedAt and key kept). */
int store_participant_role(struct store *st, const char *session, const char *user,
                           enum policy_role role);
int store_renewal_insert(struct store *st, const char *session, const char *by, int64_t at,
                         int64_t extend_s, int64_t old_exp, int64_t new_exp);
/* Appends an audit event (data may be NULL); *event_id gets its id when not NULL. */
int store_event_add(struct store *st, const char *session, int64_t at, const char *actor,
                    const char *type, json_t *data, int64_t *event_id);
/* {"events":[{at, actor, type, data}]} for session. New reference. */
int store_events_json(struct store *st, const char *session, json_t **out);

int store_ticket_insert(struct store *st, const char *hash, const char *session, const char *user,
                        int64_t expires_at);
/* Looks a ticket up by hash; *session and *user new strings. ERR_NOT_FOUND if absent/expired. */
int store_ticket_get(struct store *st, const char *hash, int64_t now, char **session, char **user);
int store_tickets_delete(struct store *st, const char *session, const char *user);

int store_agent_get(struct store *st, const char *name, struct agent_rec **ap);
int store_agent_put(struct store *st, const struct agent_rec *a);
int store_agent_set_online(struct store *st, const char *name, int online, int64_t now);
int store_agents_all_offline(struct store *st, int64_t now);
int store_agent_list(struct store *st, struct agent_rec ***list, size_t *n);
void agent_rec_free(struct agent_rec *a);
void agent_list_free(struct agent_rec **list, size_t n);

int store_outbox_add(struct store *st, int64_t event_id, const char *url, const char *body,
                     int64_t next_at);

/* Live SSH connections of a session as the agent reported them (store_presence.c). */
struct live_conn {
    char *conn, *user, *role;
    int64_t since;
};
/* The live connections of session (new array, live_conns_free). */
int store_live_conns_get(struct store *st, const char *session, struct live_conn **v, size_t *n);
/* Replaces the live connections of session with v (borrowed). */
int store_live_conns_put(struct store *st, const char *session, const struct live_conn *v,
                         size_t n);
void live_conns_free(struct live_conn *v, size_t n);
/* Records a participant's presence times (a 0 leaves that column as it is). */
int store_participant_presence(struct store *st, const char *session, const char *user,
                               int64_t first_connected_at, int64_t last_input_at);

#endif
