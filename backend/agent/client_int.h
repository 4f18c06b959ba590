/*
 * Shared by the person-side commands (client*.c), defined in client.c.
 * Every function that can fail prints its own message to stderr.
 */
#ifndef AIRLOCK_CLIENT_INT_H
#define AIRLOCK_CLIENT_INT_H
#include <stddef.h>
#include <sys/types.h>

#include <jansson.h>

#define CLIENT_TOKEN_FILE_MAX (64 * 1024)

/* ~/.config/airlock/<name> as a new string; the directory is created (0700). */
char *client_config_path(const char *name);
/* Writes data to path atomically with mode. Returns 0 or ERR_SYSTEM (message printed). */
int client_file_write(const char *path, const char *data, size_t len, mode_t mode);
/* Reads a whole (small) file into a new NUL-terminated string. 0, ERR_NOT_FOUND or ERR_SYSTEM. */
int client_file_read(const char *path, size_t max, char **out);
/* Trims ASCII whitespace at both ends, in place. */
void client_trim(char *s);
/*
 * Returns the next token of *cur delimited by any of delims, skipping empty
 * ones, and advances *cur past it (the delimiter is overwritten with NUL).
 * NULL when none is left. Borrowed from the caller's string.
 */
char *client_next_token(char **cur, const char *delims);
/* Wipes and frees a secret (NULL is fine). */
void client_secret_free(char *s);
/* The person's token (new string, free with client_secret_free), or a message and NULL. */
char *client_need_token(void);
/* The server URL to use: the argument, else the one saved at login. New string or NULL. */
char *client_server_url(const char *server);
/*
 * One HTTP request to the server (AIRLOCK_CA_FILE trusted when set);
 * bearer may be NULL. See httpc_call() for what it returns.
 */
int client_http_call(const char *method, const char *url, const char *bearer,
                     const char *content_type, const char *body, long *status, json_t **out,
                     char *err, size_t err_len);
/* client_http_call() with a JSON body (borrowed; NULL: none). */
int client_http_json(const char *method, const char *url, const char *bearer, json_t *body,
                     long *status, json_t **out, char *err, size_t err_len);
/*
 * Prints why the server refused and returns the exit code: 1, or 3 when
 * the answer did not come from airlockd at all (a gateway error without
 * our envelope).
 */
int client_refused(const char *what, long status, json_t *j);
/* "in 1h5m", "3m ago", "now", or "-" for the RFC 3339 time when (NULL: "-"). */
void client_relative(const char *when, char *out, size_t out_len);
/*
 * One API call as the logged-in person: the server (client_server_url), the
 * token, method on server + path (already escaped) with body (borrowed,
 * NULL: none). 0 with the answer in *out (a JSON object, new reference), or
 * an exit code with the server's error (and its suggestions) printed, what
 * naming the command.
 */
int client_api(const char *server, const char *method, const char *path, json_t *body,
               const char *what, json_t **out);
/* The payload of a JWT (a JSON object, new reference), or NULL when s is not one. */
json_t *client_jwt_payload(const char *s);
/*
 * Saves token as user's on server (client_tokens.c) and makes it the active
 * identity there; server becomes the saved server. 0 or ERR_SYSTEM (message
 * printed).
 */
int client_token_save(const char *server, const char *user, const char *token);
/*
 * The token to use: AIRLOCK_TOKEN, else the cached one for the server and
 * user in use (client_identity_set), else the old single file. 0 with
 * *token and *src (where it came from; new strings), or ERR_NOT_FOUND.
 */
int client_token_find(char **token, char **src);
/* s percent-encoded for a URL. New string. */
char *client_url_escape(const char *s);

#endif
