/*
 * SSH relay (DESIGN.md 8.3). A participant's `airlock proxy` opens
 * /debug-sessions/{name}/connect; the API layer authorises it, calls
 * relay_expect() with a fresh conn id, sends {"type":"open"} to the agent
 * over the control channel, and hands the upgraded socket to
 * relay_run_participant(). The agent dials back /agents/{name}/tunnel/{conn};
 * the API layer checks the agent credential and relay_pending_for_agent(),
 * and hands that socket to relay_run_agent(). The two WebSockets are then
 * spliced message for message (binary), with flow control (never read one
 * side while the other's queue is above a high-water mark), no copy kept.
 */
#ifndef AIRLOCK_RELAY_H
#define AIRLOCK_RELAY_H
#include <stdint.h>

#include "upgrade.h"

#define RELAY_DIAL_TIMEOUT_MS 10000
/* Relayed connections a session may have per allowed participant (DESIGN.md 8.3). */
#define RELAY_CONNS_PER_PARTICIPANT 4

struct relay;

struct relay_stats {
    uint64_t conns_active;  /* spliced pairs right now */
    uint64_t conns_pending; /* waiting for the agent's dial-back */
    uint64_t conns_total;   /* spliced since start */
    uint64_t bytes_up;      /* participant -> agent */
    uint64_t bytes_down;    /* agent -> participant */
};

struct relay *relay_new(void);
/*
 * Closes every connection (close code 1001) and waits for their threads;
 * from then on every new connection is refused. The memory stays, so a
 * WebSocket thread that starts late still finds a relay to be refused by.
 */
void relay_shutdown(struct relay *rl);
/* relay_shutdown, then frees: call once no WebSocket thread can start. */
void relay_free(struct relay *rl);

/*
 * Registers a pending connection conn_id for user in session, served by
 * agent. Returns 0, or ERR_TOO_MANY when the session already has cap
 * connections (pending + active).
 */
int relay_expect(struct relay *rl, const char *conn_id, const char *session, const char *agent,
                 const char *user, int cap);
/*
 * relay_expect for a browser terminal (api_terminal.c): the same pairing
 * and cap, but relay_close_terminals() closes it, and when read_only its
 * binary frames (keystrokes) are refused: the first one closes the pair with
 * 1008 before it reaches the agent.
 */
int relay_expect_terminal(struct relay *rl, const char *conn_id, const char *session,
                          const char *agent, const char *user, int cap, int read_only);
/* 1 if conn_id is pending (not yet paired, not timed out) for agent. */
int relay_pending_for_agent(struct relay *rl, const char *conn_id, const char *agent);
/*
 * Participant side, in the upgrade thread: waits up to RELAY_DIAL_TIMEOUT_MS
 * for the agent's dial-back (else closes with 1011 "agent did not answer"),
 * then splices until either side closes. Always ends u.
 */
void relay_run_participant(struct relay *rl, const char *conn_id, struct upgraded *u);
/* Agent side, in the upgrade thread: pairs with the waiting participant. Always ends u. */
void relay_run_agent(struct relay *rl, const char *conn_id, struct upgraded *u);
/* Closes every connection of session (or only user's when user != NULL), with reason. */
void relay_close(struct relay *rl, const char *session, const char *user, const char *reason);
/*
 * Closes the browser terminals of session (or only user's) at once. Unlike
 * SSH connections, which the agent closes itself (core.c defers
 * relay_close), nothing at the agent needs the last bytes of a terminal.
 */
void relay_close_terminals(struct relay *rl, const char *session, const char *user,
                           const char *reason);
void relay_get_stats(struct relay *rl, struct relay_stats *st);

#endif
