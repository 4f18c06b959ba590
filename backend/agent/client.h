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
 *   token        the person's bearer token (mode 0600), plain text
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
/* join NAME [--read-only] [--key FILE] [--print]: runs ssh (execvp) unless --print. */
int cmd_join(const char *server, int argc, char **argv);
/* proxy NAME [--ticket T]: stdin/stdout <-> the session's relay WebSocket. */
int cmd_proxy(const char *server, int argc, char **argv);
/* verify-recording NAME [--json]: 0 when the recording is intact, 1 otherwise. */
int cmd_verify_recording(const char *server, int argc, char **argv);

/*
 * Loads the person's token: AIRLOCK_TOKEN, else ~/.config/airlock/token.
 * On success *token is a new string (free it, after explicit_bzero). Returns
 * 0, ERR_NOT_FOUND (no token: not logged in) or ERR_AUTH (the token is a
 * JWT whose exp has passed).
 */
int cmd_token_load(char **token);

#endif
