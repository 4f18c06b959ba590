/*
 * The agent side of airlock (DESIGN.md 8.1-8.3): registration, the control
 * channel and the dial-back tunnels. control_agent_main() is the body of
 * both `airlock wait` (follow one session, exit when it ends) and `airlock
 * agent` (serve every session bound to this host, never exit on a session
 * end).
 *
 * Threads: the calling thread runs the control loop (control WebSocket,
 * $AIRLOCK_SOCK clients, timers, signals). Each "open" gets a tunnel thread
 * that dials back, hands one end of a socketpair to sshd_serve_fd() and
 * bridges the other end to the WebSocket with bounded buffers. sshd.c runs
 * one thread per SSH connection.
 *
 * Symbols are control_agent_* / control_session_* / control_token_* so that
 * they never meet the server's control_* in a test binary that links both.
 */
#ifndef AIRLOCK_AGENT_CONTROL_H
#define AIRLOCK_AGENT_CONTROL_H
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "sshd.h"

#ifndef AIRLOCK_VERSION /* the Makefile's AIRLOCK_VERSION */
#error "AIRLOCK_VERSION must come from the Makefile"
#endif

#define CONTROL_AGENT_PING_MS 15000
#define CONTROL_AGENT_DEAD_MS 45000
#define CONTROL_AGENT_BACKOFF_MIN_MS 500
#define CONTROL_AGENT_BACKOFF_MAX_MS 30000

enum control_mode { CONTROL_WAIT, CONTROL_HOST };

struct control_cfg {
    enum control_mode mode;
    const char *server; /* base URL, no trailing slash */
    const char *token;  /* bearer for the registration */
    const char *name;   /* NULL: the server derives it (CI) */
    char **labels;      /* "K=V" */
    size_t n_labels;
    const char *tmpl;     /* wait: session template (NULL: no session requested) */
    const char *duration; /* wait: requestedDuration */
    const char *reason;
    char **invite;
    size_t n_invite;
    int64_t timeout_s;    /* wait --timeout: 0 = none */
    int exit_code;        /* wait: exit code when the session ends */
    const char *listen;   /* --listen ADDR */
    const char *host_key; /* --host-key FILE */
    const char *run_dir;  /* --run-dir DIR (tmux and control sockets) */
    const char *ca_file;  /* $AIRLOCK_CA_FILE */
    char **env_drop;      /* variables kept out of shells (NULL-terminated) */
};

/*
 * Registers, then holds the control channel until done. Returns the process
 * exit code: wait: cfg->exit_code when the session ends or --timeout fires;
 * 1 registration refused; 3 server unreachable; 130/143 on SIGINT/SIGTERM.
 * agent: 0 on SIGINT/SIGTERM.
 */
int control_agent_main(const struct control_cfg *cfg);

/*
 * Parses the "session" object of a {"type":"session"} message into a new
 * struct dsess (dsess_free). Unknown roles and malformed participants are
 * skipped; a missing name or state is ERR_INVALID. PURE.
 */
int control_session_parse(const json_t *j, struct dsess **sp);

/*
 * GitHub Actions OIDC: GET $ACTIONS_ID_TOKEN_REQUEST_URL&audience=A with the
 * request token; *token receives a new string. 0, ERR_INVALID (not in
 * Actions / bad answer) or ERR_UNAVAILABLE, with a message in err.
 */
int control_token_github(const char *audience, const char *ca_file, char **token, char *err,
                         size_t err_len);

/* Percent-encodes s for one URL path segment ("/" becomes %2F). New string. */
char *control_path_escape(const char *s);

#endif
