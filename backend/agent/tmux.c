/*
 * tmux and child processes. See tmux.h for the rules (argv only, no shell
 * strings, close_range before exec).
 *
 * fork() happens in a multi-threaded process (one thread per SSH
 * connection), so everything the child needs (argv, envp) is built before
 * the fork, and the child only calls async-signal-safe functions before
 * execvpe.
 */
#include <errno.h>
#include <fcntl.h>
#include <pty.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include "err.h"
#include "log.h"
#include "tmux.h"
#include "xmalloc.h"

extern char **environ;

static int run_quiet(const char *const *argv, char *const *envp);
static int run_capture(const char *const *argv, char *out, size_t out_len);
static void child_exec(const char *const *argv, char *const *envp);
static void set_nonblock_cloexec(int fd);

void
tmux_shell_argv(const char *tmux_sock, const char *session, int viewer, const char *ctl_sock,
                const char *shell, char *env_session, size_t env_session_len, char *env_sock,
                size_t env_sock_len, const char **argv)
{
    size_t i = 0;

    argv[i++] = "tmux";
    argv[i++] = "-S";
    argv[i++] = tmux_sock;
    if (viewer) {
        /* "=" asks for an exact match: never attach a viewer to a prefix. */
        snprintf(env_session, env_session_len, "=%s", session);
        argv[i++] = "attach-session";
        argv[i++] = "-r";
        argv[i++] = "-t";
        argv[i++] = env_session;
    } else {
        /*
         * -e sets the variables in the new session's environment: the tmux
         * server's global environment comes from whichever client started
         * the server, which is another session's when the agent serves more
         * than one.
         */
        snprintf(env_session, env_session_len, "AIRLOCK_SESSION=%s", session);
        snprintf(env_sock, env_sock_len, "AIRLOCK_SOCK=%s", ctl_sock ? ctl_sock : "");
        argv[i++] = "new-session";
        argv[i++] = "-A";
        argv[i++] = "-s";
        argv[i++] = session;
        argv[i++] = "-e";
        argv[i++] = env_session;
        argv[i++] = "-e";
        argv[i++] = env_sock;
        /* One argument: tmux runs it directly, no `sh -c`, and not as a login shell. */
        if (shell != NULL)
            argv[i++] = shell;
    }
    argv[i] = NULL;
}

int
tmux_session_ensure(const char *tmux_sock, const char *session, const char *ctl_sock,
                    const char *shell, char *const *envp)
{
    char target[256], env_session[256], env_sock[512];
    const char *has[] = {"tmux", "-S", tmux_sock, "has-session", "-t", target, NULL};
    const char *create[] = {"tmux",      "-S", tmux_sock, "new-session", "-d", "-s",
                            session,     "-x", "80",      "-y",          "24", "-e",
                            env_session, "-e", env_sock,  shell,         NULL};

    snprintf(target, sizeof(target), "=%s", session);
    snprintf(env_session, sizeof(env_session), "AIRLOCK_SESSION=%s", session);
    snprintf(env_sock, sizeof(env_sock), "AIRLOCK_SOCK=%s", ctl_sock ? ctl_sock : "");
    if (run_quiet(has, envp) == 0)
        return 0;
    /* A concurrent creator makes this fail with "duplicate session": check again. */
    if (run_quiet(create, envp) == 0 || run_quiet(has, envp) == 0)
        return 0;
    return ERR_SYSTEM;
}

int
tmux_session_kill(const char *tmux_sock, const char *session)
{
    char target[256];
    const char *argv[] = {"tmux", "-S", tmux_sock, "kill-session", "-t", target, NULL};

    snprintf(target, sizeof(target), "=%s", session);
    return run_quiet(argv, environ) == 0 ? 0 : ERR_NOT_FOUND;
}

int
tmux_status_set(const char *tmux_sock, const char *session, const char *text)
{
    char target[256];
    const char *argv[] = {"tmux",
                          "-S",
                          tmux_sock,
                          "set-option",
                          "-t",
                          target,
                          "status-right",
                          text,
                          ";",
                          "set-option",
                          "-t",
                          target,
                          "status-right-length",
                          "80",
                          NULL};

    /* set-option takes a pane: "=NAME:" is session NAME exactly, its current window */
    snprintf(target, sizeof(target), "=%s:", session);
    return run_quiet(argv, environ) == 0 ? 0 : ERR_NOT_FOUND;
}

int
tmux_message_all(const char *tmux_sock, const char *session, const char *msg)
{
    char target[256], clients[4096], delay[16], *line, *save = NULL;
    const char *list[] = {"tmux",           "-S", tmux_sock, "list-clients", "-t", target, "-F",
                          "#{client_name}", NULL};
    int n = 0;

    snprintf(target, sizeof(target), "=%s", session);
    snprintf(delay, sizeof(delay), "%d", TMUX_MESSAGE_MS);
    if (run_capture(list, clients, sizeof(clients)) != 0)
        return 0;
    for (line = strtok_r(clients, "\n", &save); line != NULL; line = strtok_r(NULL, "\n", &save)) {
        const char *show[] = {"tmux", "-S", tmux_sock, "display-message", "-c", line, "-d",
                              delay,  msg,  NULL};

        if (run_quiet(show, environ) == 0)
            n++;
    }
    return n;
}

int
tmux_pipe_pane(const char *tmux_sock, const char *session, const char *fifo)
{
    char target[256], cmd[1100];
    const char *argv[] = {"tmux", "-S", tmux_sock, "pipe-pane", "-O", "-t", target, cmd, NULL};

    if (strchr(fifo, '\'') != NULL || strlen(fifo) > 1000)
        return ERR_INVALID;
    /* a pane target: "=NAME" alone names no pane */
    snprintf(target, sizeof(target), "=%s:", session);
    snprintf(cmd, sizeof(cmd), "exec cat >>'%s'", fifo);
    return run_quiet(argv, environ) == 0 ? 0 : ERR_SYSTEM;
}

int
tmux_pane_size(const char *tmux_sock, const char *session, int *cols, int *rows)
{
    char target[256], out[64];
    const char *argv[] = {"tmux", "-S", tmux_sock, "display-message",
                          "-p",   "-t", target,    "#{pane_width} #{pane_height}",
                          NULL};

    /* a pane target: "=NAME" alone names no pane */
    snprintf(target, sizeof(target), "=%s:", session);
    if (run_capture(argv, out, sizeof(out)) != 0 || sscanf(out, "%d %d", cols, rows) != 2 ||
        *cols <= 0 || *rows <= 0)
        return ERR_SYSTEM;
    return 0;
}

void
tmux_status_note(const char *tmux_sock, const char *session, const char *text)
{
    char target[256];
    const char *argv[] = {
        "tmux",       "-S", tmux_sock, "set-option",         "-t", target, "status-left", text, ";",
        "set-option", "-t", target,    "status-left-length", "40", NULL};

    snprintf(target, sizeof(target), "=%s:", session);
    (void)run_quiet(argv, environ);
}

void
tmux_server_kill(const char *tmux_sock)
{
    const char *argv[] = {"tmux", "-S", tmux_sock, "kill-server", NULL};

    if (access(tmux_sock, F_OK) == 0)
        (void)run_quiet(argv, environ);
}

char **
tmux_env_build(char *const *base, const char *const *drop, const char *const *set)
{
    size_t n_base = 0, n_set = 0, i, j, o = 0;
    char **env;

    while (base != NULL && base[n_base] != NULL)
        n_base++;
    while (set != NULL && set[n_set] != NULL)
        n_set++;
    env = xcalloc(n_base + n_set + 1, sizeof(*env));
    for (i = 0; i < n_base; i++) {
        const char *eq = strchr(base[i], '=');
        size_t name_len = eq ? (size_t)(eq - base[i]) : strlen(base[i]);
        int skip = 0;

        for (j = 0; drop != NULL && drop[j] != NULL && !skip; j++)
            skip = strlen(drop[j]) == name_len && strncmp(drop[j], base[i], name_len) == 0;
        for (j = 0; j < n_set && !skip; j++)
            skip = strncmp(set[j], base[i], name_len) == 0 && set[j][name_len] == '=';
        if (!skip)
            env[o++] = xstrdup(base[i]);
    }
    for (j = 0; j < n_set; j++)
        env[o++] = xstrdup(set[j]);
    env[o] = NULL;
    return env;
}

void
tmux_env_free(char **envp)
{
    size_t i;

    for (i = 0; envp != NULL && envp[i] != NULL; i++)
        free(envp[i]);
    free(envp);
}

int
tmux_spawn_pty(const char *const *argv, char *const *envp, int cols, int rows, pid_t *pid,
               int *master)
{
    struct winsize ws;
    int fd = -1;
    pid_t p;

    memset(&ws, 0, sizeof(ws));
    /* ssh -tt without a local tty sends 0x0 (LIBS.md 5, pitfall 6). */
    ws.ws_col = cols > 0 ? (unsigned short)cols : 80;
    ws.ws_row = rows > 0 ? (unsigned short)rows : 24;
    *pid = -1;
    *master = -1;
    p = forkpty(&fd, NULL, NULL, &ws);
    if (p < 0) {
        log_warn("forkpty: %s", strerror(errno));
        return ERR_SYSTEM;
    }
    if (p == 0)
        child_exec(argv, envp);
    set_nonblock_cloexec(fd);
    *pid = p;
    *master = fd;
    return 0;
}

int
tmux_spawn_pipes(const char *const *argv, char *const *envp, pid_t *pid, int *in, int *out,
                 int *err)
{
    int pin[2] = {-1, -1}, pout[2] = {-1, -1}, perr[2] = {-1, -1};
    pid_t p;

    *pid = -1;
    *in = *out = *err = -1;
    if (pipe2(pin, O_CLOEXEC) != 0 || pipe2(pout, O_CLOEXEC) != 0 || pipe2(perr, O_CLOEXEC) != 0)
        goto fail;
    p = fork();
    if (p < 0)
        goto fail;
    if (p == 0) {
        /* dup2 clears close-on-exec on 0, 1, 2. */
        if (dup2(pin[0], 0) < 0 || dup2(pout[1], 1) < 0 || dup2(perr[1], 2) < 0)
            _exit(127);
        setsid();
        child_exec(argv, envp);
    }
    close(pin[0]);
    close(pout[1]);
    close(perr[1]);
    set_nonblock_cloexec(pin[1]);
    set_nonblock_cloexec(pout[0]);
    set_nonblock_cloexec(perr[0]);
    *pid = p;
    *in = pin[1];
    *out = pout[0];
    *err = perr[0];
    return 0;
fail:
    log_warn("spawn %s: %s", argv[0], strerror(errno));
    for (int i = 0; i < 2; i++) {
        if (pin[i] >= 0)
            close(pin[i]);
        if (pout[i] >= 0)
            close(pout[i]);
        if (perr[i] >= 0)
            close(perr[i]);
    }
    return ERR_SYSTEM;
}

void
tmux_pty_resize(int master, int cols, int rows)
{
    struct winsize ws;

    memset(&ws, 0, sizeof(ws));
    ws.ws_col = cols > 0 ? (unsigned short)cols : 80;
    ws.ws_row = rows > 0 ? (unsigned short)rows : 24;
    (void)ioctl(master, TIOCSWINSZ, &ws);
}

/* In the child after fork: only async-signal-safe calls. Never returns. */
static void
child_exec(const char *const *argv, char *const *envp)
{
    sigset_t none;

    /* The agent may block or ignore signals in its threads; the child starts clean. */
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, NULL);
    signal(SIGPIPE, SIG_DFL);
    signal(SIGCHLD, SIG_DFL);
    signal(SIGINT, SIG_DFL);
    signal(SIGTERM, SIG_DFL);
    signal(SIGHUP, SIG_DFL);
    close_range(3, ~0U, 0);
    execvpe(argv[0], (char *const *)argv, envp);
    _exit(127);
}

/* Runs argv with stdin/stdout/stderr on /dev/null and waits; returns its exit status or -1. */
static int
run_quiet(const char *const *argv, char *const *envp)
{
    int st = 0;
    pid_t p = fork();

    if (p < 0)
        return -1;
    if (p == 0) {
        int nul = open("/dev/null", O_RDWR);

        if (nul >= 0) {
            dup2(nul, 0);
            dup2(nul, 1);
            dup2(nul, 2);
        }
        setsid();
        child_exec(argv, envp);
    }
    while (waitpid(p, &st, 0) < 0) {
        if (errno != EINTR)
            return -1;
    }
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

/* Runs argv and keeps the start of its stdout (NUL-terminated) in out: 0 or ERR_SYSTEM. */
static int
run_capture(const char *const *argv, char *out, size_t out_len)
{
    int fds[2], st = 0;
    size_t got = 0;
    ssize_t n;
    pid_t p;

    out[0] = '\0';
    if (pipe2(fds, O_CLOEXEC) != 0)
        return ERR_SYSTEM;
    if ((p = fork()) < 0) {
        close(fds[0]);
        close(fds[1]);
        return ERR_SYSTEM;
    }
    if (p == 0) {
        int nul = open("/dev/null", O_RDWR);

        if (nul >= 0) {
            dup2(nul, 0);
            dup2(nul, 2);
        }
        dup2(fds[1], 1);
        setsid();
        child_exec(argv, environ);
    }
    close(fds[1]);
    while ((n = read(fds[0], out + got, out_len - 1 - got)) > 0 || (n < 0 && errno == EINTR))
        if (n > 0 && (got += (size_t)n) == out_len - 1)
            break;
    out[got] = '\0';
    close(fds[0]);
    while (waitpid(p, &st, 0) < 0)
        if (errno != EINTR)
            return ERR_SYSTEM;
    return WIFEXITED(st) && WEXITSTATUS(st) == 0 ? 0 : ERR_SYSTEM;
}

static void
set_nonblock_cloexec(int fd)
{
    int fl = fcntl(fd, F_GETFL);

    if (fl >= 0)
        (void)fcntl(fd, F_SETFL, fl | O_NONBLOCK);
    (void)fcntl(fd, F_SETFD, FD_CLOEXEC);
}
