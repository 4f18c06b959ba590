/*
 * Shared by the agent's control*.c files (the public side is control.h):
 *   control.c           the control loop: connect with back-off, hello,
 *                       session messages, the box, activity, timers, exit;
 *   control_register.c  registration (POST /api/v1/agents), GitHub's token;
 *   control_tunnel.c    one thread per "open": dial back, bridge to sshd;
 *   control_requests.c  $AIRLOCK_SOCK requests (extend, resume, status)
 *                       relayed over the control channel and answered;
 *   control_clock.c     the time left in each shared shell (tmux).
 * All of them run on the control loop's thread except the tunnel threads,
 * which share only what agent.mu guards (and the agent's immutable fields).
 */
#ifndef AIRLOCK_AGENT_CONTROL_INT_H
#define AIRLOCK_AGENT_CONTROL_INT_H
#include <pthread.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "control.h"
#include "ctlsock.h"
#include "sshd.h"
#include "ws.h"

#define CONNECT_TIMEOUT_MS 10000 /* a WebSocket upgrade, control channel or tunnel */
#define MAX_PENDING 32
#define MAX_SEEN 64

/* A $AIRLOCK_SOCK request waiting for the server's reply. */
struct pending {
    char id[24];
    unsigned client;
    int64_t deadline;
    char *msg; /* to send (NULL once sent) */
    int used;
};

/* A session the box and the activity messages keep track of. */
struct seen {
    char *name;
    char *key;       /* what the box showed last (state, people, connections) */
    int conns;       /* in the last report; -1: report again (the server forgot) */
    char *conns_key; /* the ids in the last report ("a,b,") */
    int64_t input_sent_ms, activity_ms;
    int ended;
    /* the clock in the shell (control_clock.c) */
    char *status;        /* the status text tmux shows now (NULL: not set yet) */
    int warned;          /* the last warning level shown (clock_level), 0: none */
    int64_t clock_since; /* Unix s the agent first saw it Active: idle counts from here */
};

/* The agent: one per process, owned by control_agent_main(). */
struct agent {
    const struct control_cfg *cfg;
    struct sshd *sshd;
    struct ctlsock *cs;
    struct recorder *rec; /* record.h: the recorded sessions' uploads */
    char *run_dir, *tmux_sock, *ctl_sock;
    int own_run_dir;
    char *name, *credential, *control_url, *tunnel_base;
    char *session; /* wait: the session followed */
    char *owner;   /* its requester, from the registration answer */
    struct ws *ws;
    int64_t backoff_ms, next_connect_ms, last_ping_ms, connected_ms;
    int fail_count;
    int refused_count; /* consecutive 401/403/404 answers to the control upgrade */
    struct pending pend[MAX_PENDING];
    unsigned next_req;
    struct seen seen[MAX_SEEN];
    size_t n_seen;
    int64_t started_ms, box_ms;
    int ever_connected;
    int done, exit_code;
    int timeout_answered;
    int stop_pipe[2];   /* written once at stop: every tunnel's bridge closes (1001) */
    pthread_mutex_t mu; /* stopping, n_tunnels, sshd use by tunnels */
    pthread_cond_t cv;
    int stopping;
    int n_tunnels;
};

/*
 * Registers (retrying a few times while the server answers 502-504). Fills
 * a->name, credential, control_url, tunnel_base and, for wait, session and
 * owner. Returns 0, or the process exit code to leave with (1 refused,
 * 3 unreachable); the message is printed.
 */
int control_agent_register(struct agent *a);

/* Starts a detached tunnel thread for an "open" of conn in session (both borrowed, copied). */
void control_agent_tunnel_start(struct agent *a, const char *conn, const char *session);

/*
 * Once a second: each Active session's time left on its tmux status line,
 * and a message to every tmux client at 10, 5 and 1 minutes before the end
 * (control_clock.c).
 */
void control_agent_clock(struct agent *a);
/* What the clock of session s (seen as sn) starts from, at now (Unix s). */
struct clock_in;
void control_agent_clock_in(struct agent *a, struct seen *sn, const struct dsess *s, int64_t now,
                            struct clock_in *c);
/* Starts a detached browser-terminal thread for a {"type":"terminal"} message m (term.c). */
void control_agent_term_start(struct agent *a, const json_t *m);

/* The ctlsock_req_fn: a request from $AIRLOCK_SOCK (ud is the agent). */
void control_agent_request(struct ctlsock *cs, unsigned client, json_t *req, void *ud);
/* A {"type":"reply"} from the server: answers the request it names (m borrowed). */
void control_agent_reply(struct agent *a, const json_t *m);
/* Sends the requests not sent yet (the control channel is up again). */
void control_agent_requests_flush(struct agent *a);
/* Answers UNAVAILABLE to the requests past their deadline. */
void control_agent_requests_expire(struct agent *a);
/* Answers UNAVAILABLE to every request still waiting and frees them (the agent stops). */
void control_agent_requests_abort(struct agent *a);

#endif
