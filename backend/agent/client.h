/*
 * The person-side commands of the airlock CLI (DESIGN.md 8.5): login,
 * sessions, join and proxy (the ssh ProxyCommand).
 *
 * Each cmd_* takes the server URL (from --server or AIRLOCK_SERVER, without a
 * trailing slash; NULL falls back to the URL saved by the last `airlock
 * login`) and the command's own arguments, argv[0] being the command name,
 * and returns the process exit code: CLIENT_EXIT_*.
 *
 * Files, all under ~/.config/airlock (directory mode 0700):
 *   tokens/<host>-<port>/users/<user>, .../active   tokens per server and user
 *                (client_tokens.c); token, the old single file, is still read
 *   server       the server URL of the last login
 *   known_hosts  the pinned host keys of joined sessions (ssh's format)
 * Environment: AIRLOCK_TOKEN overrides the cached token; AIRLOCK_CA_FILE
 * names a CA bundle for https:// servers with a private CA.
 */
#ifndef AIRLOCK_CLIENT_H
#define AIRLOCK_CLIENT_H

#define CLIENT_EXIT_OK 0
#define CLIENT_EXIT_REFUSED 1 /* the server said no; its message was printed */
#define CLIENT_EXIT_USAGE 2
#define CLIENT_EXIT_UNREACHABLE 3 /* cannot reach the server */

/*
 * login [--dev --user U [--email E] [--groups G,...]] [--token-file F]
 * Without options: the OIDC device flow against the server's issuer.
 */
int cmd_login(const char *server, int argc, char **argv);
/* sessions [--state S,...] [--mine] [--json] */
int cmd_sessions(const char *server, int argc, char **argv);
/*
 * request --template T --agent A [--duration D] [--reason R] [--invite U]...,
 * approve|reject|terminate NAME [--reason R], renew NAME [--for D],
 * invite NAME USER... [--role R], events NAME, agents; each with --json
 * (client_verbs.c). argv[0] names the verb.
 */
int cmd_verb(const char *server, int argc, char **argv);
/* whoami [--json]: the active identity (user, issuer, expiry), the server, the cached ones. */
int cmd_whoami(const char *server, int argc, char **argv);
/*
 * The server (--server or AIRLOCK_SERVER; NULL: the saved one) and the
 * cached identity (--as or AIRLOCK_USER; NULL: the active one) whose token
 * the commands use. Borrowed; call before any command.
 */
void client_identity_set(const char *server, const char *as);
/*
 * An agent named agent takes the cached token of the person it ran as the
 * last time on this server (tokens/<host-port>/agents/<name>), so someone
 * else's `airlock login` on the machine does not change whom a restarted
 * agent runs as. The first run, and every run with --as, records the user.
 */
void client_agent_identity(const char *agent);
/* join NAME [--read-only] [--key FILE] [--print] [-- COMMAND...]: runs ssh (execvp) unless --print.
 */
int cmd_join(const char *server, int argc, char **argv);
/* proxy NAME [--ticket T]: stdin/stdout <-> the session's relay WebSocket. */
int cmd_proxy(const char *server, int argc, char **argv);
/* verify-recording NAME [--json]: 0 when the recording is intact, 1 otherwise. */
int cmd_verify_recording(const char *server, int argc, char **argv);

/*
 * Loads the person's token: AIRLOCK_TOKEN, else the cache for the server
 * and user (client_tokens.c), else the old ~/.config/airlock/token.
 * On success *token is a new string (free it, after explicit_bzero). Returns
 * 0, ERR_NOT_FOUND (no token: not logged in) or ERR_AUTH (the token is a
 * JWT whose exp has passed).
 */
int cmd_token_load(char **token);

#endif
