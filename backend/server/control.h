/*
 * The agent control channel (DESIGN.md 8.2), server side. One thread per
 * connected agent runs a WebSocket loop. The channel is level-triggered: on
 * connect and whenever control_notify() is called for the agent, the thread
 * rebuilds the whole desired state of each session bound to the agent and
 * sends it. Requests from the agent (extend, resume) go through core.c with
 * the same policy as the REST API.
 */
#ifndef AIRLOCK_CONTROL_H
#define AIRLOCK_CONTROL_H

#include "api.h"

#define CONTROL_PING_MS 15000
#define CONTROL_DEAD_MS 45000
#define CONTROL_MAX_MSG (64 * 1024)

struct control *control_new(struct app *app);
/*
 * Closes every channel (1001 "server shutting down") and waits up to 5 s for
 * their threads; a channel that starts later is closed at once. Memory stays.
 */
void control_shutdown(struct control *c);
/* control_shutdown, then frees (unless a channel still runs: then it leaks). */
void control_free(struct control *c);
/* Runs agent's channel on u in the calling (upgrade) thread until it ends. */
void control_run(struct control *c, const char *agent, struct upgraded *u);
/* Marks session's desired state dirty (NULL: all of agent's): it will be resent promptly. */
void control_notify(struct control *c, const char *agent, const char *session);
/* Asks agent to dial back for conn. ERR_UNAVAILABLE if the agent is not connected. */
int control_send_open(struct control *c, const char *agent, const char *conn, const char *session);
/*
 * Asks agent for a browser terminal on conn: {"type":"terminal", conn,
 * session, mode "ro"|"rw", cols, rows}. ERR_UNAVAILABLE if not connected.
 */
int control_send_terminal(struct control *c, const char *agent, const char *conn,
                          const char *session, int read_only, int cols, int rows);
int control_is_connected(struct control *c, const char *agent);
/* Number of connected agents. */
int control_count(struct control *c);

#endif
