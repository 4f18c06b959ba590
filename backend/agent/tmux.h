/*
 * tmux and child processes for the agent's SSH server (DESIGN.md 8.4).
 *
 * Everything here builds argv arrays and calls execvp/execve: no shell
 * string is ever built, and nothing a participant sends ends up in one.
 * Children get close_range(3, ~0U, 0) before exec, so neither the SSH
 * sockets nor the control channel leak into the daemonised tmux server
 * (LIBS.md 5, pitfall 3).
 *
 * One tmux server per agent, on its own socket; one tmux session per debug
 * session, named after it.
 */
#ifndef AIRLOCK_TMUX_H
#define AIRLOCK_TMUX_H
#include <stddef.h>
#include <sys/types.h>

#define TMUX_DEFAULT_TERM "xterm-256color"
#define TMUX_ARGV_MAX 16

/*
 * Fills argv (at least TMUX_ARGV_MAX entries, NULL-terminated) with the
 * client command for a shell in debug session `session`:
 *   owner/participant: tmux -S SOCK new-session -A -s NAME -e AIRLOCK_SESSION=NAME
 *                          -e AIRLOCK_SOCK=CTL SHELL
 *   viewer:            tmux -S SOCK attach-session -r -t =NAME
 * SHELL (an absolute path) runs as a plain interactive shell, not a login
 * shell: a login shell would read /etc/profile and lose the CI job's PATH
 * and variables. env_session and env_sock are caller buffers that receive
 * the "-e" values (argv points into them). Every pointer is borrowed.
 */
void tmux_shell_argv(const char *tmux_sock, const char *session, int viewer, const char *ctl_sock,
                     const char *shell, char *env_session, size_t env_session_len, char *env_sock,
                     size_t env_sock_len, const char **argv);

/*
 * Makes sure tmux session `session` exists (detached, created with the
 * same environment and shell a participant's would get). A viewer that
 * arrives first needs something to attach to. Returns 0 or ERR_SYSTEM.
 */
int tmux_session_ensure(const char *tmux_sock, const char *session, const char *ctl_sock,
                        const char *shell, char *const *envp);
/*
 * Shows text at the right of tmux session `session`'s status line (an
 * option of that session; tmux redraws its clients). text must hold no '#'
 * (tmux expands formats there). 0, or ERR_NOT_FOUND while the tmux session
 * does not exist yet.
 */
int tmux_status_set(const char *tmux_sock, const char *session, const char *text);
/*
 * Shows msg for TMUX_MESSAGE_MS on every client attached to `session`
 * (display-message -c, one per client). msg must hold no '#'. Returns how
 * many clients were shown it.
 */
#define TMUX_MESSAGE_MS 15000
int tmux_message_all(const char *tmux_sock, const char *session, const char *msg);
/*
 * Recording (record.c): pipes the output of the session's pane into fifo
 * (tmux pipe-pane -O). tmux runs that command with /bin/sh: the one shell
 * string in the agent, built from our own run directory's path only, which
 * must not contain a single quote (ERR_INVALID). 0, ERR_INVALID or ERR_SYSTEM.
 */
int tmux_pipe_pane(const char *tmux_sock, const char *session, const char *fifo);
/* The size of the session's active pane: 0 or ERR_SYSTEM. */
int tmux_pane_size(const char *tmux_sock, const char *session, int *cols, int *rows);
/* Shows text on the left of the session's status line (the right holds the clock). */
void tmux_status_note(const char *tmux_sock, const char *session, const char *text);
/* Kills tmux session `session` (its shell and every client). 0 or ERR_NOT_FOUND. */
int tmux_session_kill(const char *tmux_sock, const char *session);
/* Kills the whole tmux server on tmux_sock (agent exit). */
void tmux_server_kill(const char *tmux_sock);

/*
 * A new NULL-terminated environment: the agent's own environ without the
 * names in drop (NULL-terminated list, may be NULL) and without any name
 * that appears in set, followed by set ("NAME=value" strings, NULL-terminated).
 * Free with tmux_env_free().
 */
char **tmux_env_build(char *const *base, const char *const *drop, const char *const *set);
void tmux_env_free(char **envp);

/*
 * Starts argv[0] (looked up in PATH) on a new pseudo-terminal of cols x rows
 * (0 means 80x24). On success *pid and *master (non-blocking, close-on-exec)
 * are set and 0 is returned; else ERR_SYSTEM.
 */
int tmux_spawn_pty(const char *const *argv, char *const *envp, int cols, int rows, pid_t *pid,
                   int *master);
/*
 * Starts argv[0] with three pipes. *in (we write the child's stdin), *out and
 * *err (we read) are non-blocking and close-on-exec. 0 or ERR_SYSTEM.
 */
int tmux_spawn_pipes(const char *const *argv, char *const *envp, pid_t *pid, int *in, int *out,
                     int *err);
/* Sets the window size of a pty master. */
void tmux_pty_resize(int master, int cols, int rows);

#endif
