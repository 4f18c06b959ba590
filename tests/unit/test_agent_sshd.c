/*
 * The agent's SSH server against the real OpenSSH client and tmux, without
 * airlockd: the session state is fed straight into sshd_session_update(), as
 * the control channel would. Needs ssh, ssh-keygen, sftp, tmux and
 * /usr/lib/openssh/sftp-server (scripts/install-deps installs them); skips
 * itself when they are missing.
 *
 * Every ssh runs with -F /dev/null, a temporary HOME and a known_hosts file
 * holding the agent's host key, so the host key check is part of each case.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "sshd.h"
#include "tmux.h"
#include "xmalloc.h"

static char dir[256];
static char tmux_sock[320];
static struct sshd *d;
static int port;
static char *keys[4]; /* alice (owner), bob (participant), vic (viewer), mallory (not joined) */
static const char *names[4] = {"alice", "bob", "vic", "mallory"};

static char *
slurp(const char *path)
{
    FILE *f = fopen(path, "r");
    char *buf = xcalloc(1, 4096);
    size_t n;

    if (f == NULL)
        return buf;
    n = fread(buf, 1, 4095, f);
    buf[n] = '\0';
    while (n > 0 && (buf[n - 1] == '\n' || buf[n - 1] == '\r'))
        buf[--n] = '\0';
    fclose(f);
    return buf;
}

static int run(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static int
run(const char *fmt, ...)
{
    char cmd[4096];
    va_list ap;
    int st;

    va_start(ap, fmt);
    vsnprintf(cmd, sizeof(cmd), fmt, ap);
    va_end(ap);
    st = system(cmd);
    if (st == -1 || !WIFEXITED(st))
        return -1;
    return WEXITSTATUS(st);
}

/* The ssh command line for user i (key file), with everything pinned. */
static void
ssh_cmd(char *out, size_t len, int i)
{
    snprintf(out, len,
             "ssh -F /dev/null -o BatchMode=yes -o StrictHostKeyChecking=yes "
             "-o UserKnownHostsFile=%s/known_hosts -o IdentitiesOnly=yes -o LogLevel=ERROR "
             "-o ConnectTimeout=10 -i %s/%s -p %d",
             dir, dir, names[i], port);
}

static void
set_session(const char *state, unsigned ops, int with_bob)
{
    struct dsess s;
    struct dsess_member m[3];
    char *k0[1] = {keys[0]}, *k1[1] = {keys[1]}, *k2[1] = {keys[2]};

    memset(&s, 0, sizeof(s));
    memset(m, 0, sizeof(m));
    m[0].user = "alice";
    m[0].role = ROLE_OWNER;
    m[0].keys = k0;
    m[0].n_keys = 1;
    m[1].user = "vic";
    m[1].role = ROLE_VIEWER;
    m[1].keys = k2;
    m[1].n_keys = 1;
    m[2].user = "bob";
    m[2].role = ROLE_PARTICIPANT;
    m[2].keys = k1;
    m[2].n_keys = 1;
    s.name = "ds-test000001";
    s.state = (char *)state;
    s.expires_at = time(NULL) + 3600;
    s.members = m;
    s.n_members = with_bob ? 3 : 2;
    s.ops = ops;
    s.sharing = 1;
    sshd_session_update(d, &s);
}

#define OPS_ALL (DSESS_OP_SHELL | DSESS_OP_EXEC | DSESS_OP_SFTP | DSESS_OP_FORWARD)

static int
setup(void **state)
{
    struct sshd_opts o;
    FILE *f;
    int i;

    (void)state;
    if (run("command -v ssh tmux ssh-keygen sftp >/dev/null 2>&1") != 0 ||
        access("/usr/lib/openssh/sftp-server", X_OK) != 0)
        return -1;
    signal(SIGPIPE, SIG_IGN);
    snprintf(dir, sizeof(dir), "/tmp/airlock-sshd-test.XXXXXX");
    if (mkdtemp(dir) == NULL)
        return -1;
    setenv("HOME", dir, 1);
    unsetenv("SSH_AUTH_SOCK");
    setenv("SHELL", "/bin/sh", 1);
    snprintf(tmux_sock, sizeof(tmux_sock), "%s/tmux.sock", dir);
    for (i = 0; i < 4; i++) {
        char path[400];

        if (run("ssh-keygen -q -t ed25519 -N '' -C %s -f %s/%s", names[i], dir, names[i]) != 0)
            return -1;
        snprintf(path, sizeof(path), "%s/%s.pub", dir, names[i]);
        keys[i] = slurp(path);
    }
    memset(&o, 0, sizeof(o));
    o.tmux_sock = tmux_sock;
    o.ctl_sock = "/nonexistent/ctl.sock";
    if (sshd_new(&o, &d) != 0 || sshd_listen(d, "127.0.0.1:0", &port) != 0)
        return -1;
    {
        char path[400];

        snprintf(path, sizeof(path), "%s/known_hosts", dir);
        f = fopen(path, "w");
        if (f == NULL)
            return -1;
        fprintf(f, "[127.0.0.1]:%d %s\n", port, sshd_host_key_line(d));
        fclose(f);
    }
    set_session("Active", OPS_ALL, 1);
    return 0;
}

static int
teardown(void **state)
{
    (void)state;
    sshd_free(d);
    if (dir[0])
        run("rm -rf %s", dir);
    for (int i = 0; i < 4; i++)
        free(keys[i]);
    return 0;
}

static void
test_exec_status_and_stdin(void **state)
{
    char ssh[1024];

    (void)state;
    set_session("Active", OPS_ALL, 1);
    ssh_cmd(ssh, sizeof(ssh), 0);
    assert_int_equal(run("%s 127.0.0.1 'exit 3'", ssh), 3);
    assert_int_equal(run("test \"$(printf 'a\\nb\\n' | %s 127.0.0.1 'wc -l')\" = 2", ssh), 0);
    /* A pty: tty prints a device, exit status still comes back. */
    assert_int_equal(
        run("%s -tt 127.0.0.1 'tty | grep -q /dev/pts; exit 5' </dev/null >/dev/null", ssh), 5);
    /* AIRLOCK_* reach commands, and AIRLOCK_USER names the connection's user. */
    assert_int_equal(run("test \"$(%s 127.0.0.1 'echo $AIRLOCK_SESSION $AIRLOCK_USER')\" = "
                         "'ds-test000001 alice'",
                         ssh),
                     0);
}

static void
test_bulk_both_ways(void **state)
{
    char ssh[1024];

    (void)state;
    ssh_cmd(ssh, sizeof(ssh), 1);
    assert_int_equal(run("head -c 20000000 /dev/urandom > %s/big && "
                         "%s 127.0.0.1 cat < %s/big > %s/big.out && cmp %s/big %s/big.out",
                         dir, ssh, dir, dir, dir, dir),
                     0);
    assert_int_equal(
        run("test $(%s 127.0.0.1 'head -c 20000000 /dev/zero' | wc -c) = 20000000", ssh), 0);
}

/*
 * A key re-exchange in the middle of a stream (OpenSSH re-keys after
 * RekeyLimit bytes; chacha20-poly1305 after 1 GiB by default) must not stall
 * or cut either direction: exec over pipes, exec on a pty, and an upload.
 */
static void
test_bulk_across_rekey(void **state)
{
    char ssh[1024];

    (void)state;
    set_session("Active", OPS_ALL, 1);
    ssh_cmd(ssh, sizeof(ssh), 1);
    assert_int_equal(run("test \"$(timeout 60 %s -o RekeyLimit=16M 127.0.0.1 "
                         "'head -c 209715200 /dev/zero' | wc -c)\" = 209715200",
                         ssh),
                     0);
    /* stderr shares the channel window with stdout. */
    assert_int_equal(run("test \"$(timeout 60 %s -o RekeyLimit=8M 127.0.0.1 "
                         "'head -c 67108864 /dev/zero >&2' 2>&1 >/dev/null | wc -c)\" = 67108864",
                         ssh),
                     0);
    assert_int_equal(run("test \"$(timeout 60 %s -tt -o RekeyLimit=8M 127.0.0.1 "
                         "'head -c 67108864 /dev/zero' </dev/null | wc -c)\" = 67108864",
                         ssh),
                     0);
    assert_int_equal(run("test \"$(head -c 104857600 /dev/zero | timeout 60 %s "
                         "-o RekeyLimit=16M 127.0.0.1 'wc -c')\" = 104857600",
                         ssh),
                     0);
}

static void
test_refusals(void **state)
{
    char ssh[1024];

    (void)state;
    set_session("Active", OPS_ALL, 1);
    ssh_cmd(ssh, sizeof(ssh), 3); /* mallory: a key nobody joined with */
    assert_int_equal(run("%s 127.0.0.1 true 2>/dev/null", ssh), 255);
    ssh_cmd(ssh, sizeof(ssh), 2); /* vic: viewer */
    assert_int_not_equal(run("%s 127.0.0.1 true 2>/dev/null", ssh), 0);
    assert_int_not_equal(run("echo pwd | sftp -b - -F /dev/null -o BatchMode=yes "
                             "-o UserKnownHostsFile=%s/known_hosts -o IdentitiesOnly=yes "
                             "-i %s/vic -P %d 127.0.0.1 >/dev/null 2>&1",
                             dir, dir, port),
                         0);
    /* bob removed from the session: denied. */
    set_session("Active", OPS_ALL, 0);
    ssh_cmd(ssh, sizeof(ssh), 1);
    assert_int_equal(run("%s 127.0.0.1 true 2>/dev/null", ssh), 255);
    /* Not Active: nobody gets in. */
    set_session("Pending", OPS_ALL, 1);
    ssh_cmd(ssh, sizeof(ssh), 0);
    assert_int_equal(run("%s 127.0.0.1 true 2>/dev/null", ssh), 255);
    set_session("Active", OPS_ALL, 1);
    assert_int_equal(run("%s 127.0.0.1 true", ssh), 0);
}

static void
test_sftp_and_ops(void **state)
{
    char sftp[1024];

    (void)state;
    snprintf(sftp, sizeof(sftp),
             "sftp -b - -F /dev/null -o BatchMode=yes -o StrictHostKeyChecking=yes "
             "-o UserKnownHostsFile=%s/known_hosts -o IdentitiesOnly=yes -o LogLevel=ERROR "
             "-i %s/alice -P %d 127.0.0.1",
             dir, dir, port);
    set_session("Active", OPS_ALL, 1);
    assert_int_equal(run("head -c 3000000 /dev/urandom > %s/f1 && printf 'put %s/f1 %s/f2\\nget "
                         "%s/f2 %s/f3\\n' | %s >/dev/null && cmp %s/f1 %s/f3",
                         dir, dir, dir, dir, dir, sftp, dir, dir),
                     0);
    /* scp uses the sftp protocol by default in OpenSSH 9; -O uses exec. */
    assert_int_equal(run("scp -q -F /dev/null -o BatchMode=yes -o UserKnownHostsFile=%s/known_hosts"
                         " -o IdentitiesOnly=yes -i %s/alice -P %d %s/f1 127.0.0.1:%s/f4 && "
                         "cmp %s/f1 %s/f4",
                         dir, dir, port, dir, dir, dir, dir),
                     0);
    set_session("Active", DSESS_OP_SHELL | DSESS_OP_EXEC, 1);
    assert_int_not_equal(run("echo pwd | %s >/dev/null 2>&1", sftp), 0);
    set_session("Active", DSESS_OP_SHELL | DSESS_OP_SFTP, 1);
    {
        char ssh[1024];

        ssh_cmd(ssh, sizeof(ssh), 0);
        assert_int_not_equal(run("%s 127.0.0.1 true 2>/dev/null", ssh), 0);
    }
    set_session("Active", OPS_ALL, 1);
}

static void
test_forward(void **state)
{
    char ssh[1024];
    int lport = port + 1000 > 65000 ? port - 1000 : port + 1000;

    (void)state;
    set_session("Active", OPS_ALL, 1);
    ssh_cmd(ssh, sizeof(ssh), 0);
    /*
     * Forward a local port to the agent's own SSH port and read its banner.
     * With ExitOnForwardFailure, `ssh -f` goes to the background once the
     * forward is up; its command keeps the connection until fwd.done exists
     * (polled every 0.05 s).
     */
    (void)run("rm -f %s/fwd.done", dir);
    assert_int_equal(run("%s -o ExitOnForwardFailure=yes -f -L %d:127.0.0.1:%d 127.0.0.1 "
                         "'while [ ! -e %s/fwd.done ]; do sleep 0.05; done' && "
                         "timeout 3 socat -u TCP:127.0.0.1:%d - | head -c 7 | grep -q SSH-2.0",
                         ssh, lport, port, dir, lport),
                     0);
    assert_int_equal(run("touch %s/fwd.done", dir), 0);
    for (int i = 0; i < 100 && sshd_conn_count(d, NULL) > 0; i++)
        usleep(50 * 1000); /* the poll interval of this wait for the connection to go */
    assert_int_equal(sshd_conn_count(d, NULL), 0);
    set_session("Active", OPS_ALL & ~DSESS_OP_FORWARD, 1);
    assert_int_not_equal(run("%s -o ExitOnForwardFailure=yes -W 127.0.0.1:%d 127.0.0.1 </dev/null "
                             ">/dev/null 2>&1",
                             ssh, port),
                         0);
    set_session("Active", OPS_ALL, 1);
}

/* Starts an interactive ssh for user i in the background (a pty from script). Returns pid. */
static pid_t
start_shell(int i, const char *log)
{
    char ssh[1024], cmd[2048];
    pid_t p;

    ssh_cmd(ssh, sizeof(ssh), i);
    snprintf(cmd, sizeof(cmd), "exec script -qfec \"%s -tt 127.0.0.1\" %s/%s </dev/null >/dev/null",
             ssh, dir, log);
    p = fork();
    if (p == 0) {
        execl("/bin/sh", "sh", "-c", cmd, (char *)NULL);
        _exit(127);
    }
    return p;
}

static int
wait_exit(pid_t p, int ms)
{
    int st;

    for (int i = 0; i < ms / 50; i++) {
        if (waitpid(p, &st, WNOHANG) == p)
            return 0;
        usleep(50 * 1000); /* the poll interval of a wait for the condition above */
    }
    kill(p, SIGKILL);
    waitpid(p, &st, 0);
    return -1;
}

static void
test_shared_shell_and_removal(void **state)
{
    pid_t a, b, v;
    int i;

    (void)state;
    set_session("Active", OPS_ALL, 1);
    a = start_shell(0, "a.log");
    for (i = 0; i < 100 && sshd_conn_count(d, "ds-test000001") < 1; i++)
        usleep(100 * 1000); /* the poll interval of a wait for the condition above */
    for (i = 0;
         i < 100 && run("tmux -S %s has-session -t =ds-test000001 2>/dev/null", tmux_sock) != 0;
         i++)
        usleep(100 * 1000); /* the poll interval of a wait for the condition above */
    b = start_shell(1, "b.log");
    v = start_shell(2, "v.log");
    for (i = 0; i < 100 && run("test $(tmux -S %s list-clients -t =ds-test000001 | wc -l) -ge 3",
                               tmux_sock) != 0;
         i++)
        usleep(100 * 1000); /* the poll interval of a wait for the condition above */
    assert_int_equal(run("tmux -S %s list-clients -F '#{client_readonly}' -t =ds-test000001 | "
                         "sort | tr -d '\\n' | grep -qx 001",
                         tmux_sock),
                     0);
    /* Neither the listening socket nor any SSH connection leaked into the tmux server. */
    assert_int_equal(run("ss -tanp 2>/dev/null | grep -q tmux"), 1);
    /* What one participant's shell prints, everyone's pane shows. */
    assert_int_equal(
        run("tmux -S %s send-keys -t ds-test000001 'echo shared-$((6*7))' Enter", tmux_sock), 0);
    for (i = 0;
         i < 50 && run("grep -q shared-42 %s/v.log && grep -q shared-42 %s/b.log", dir, dir) != 0;
         i++)
        usleep(100 * 1000); /* the poll interval of a wait for the condition above */
    assert_int_equal(run("grep -q shared-42 %s/v.log && grep -q shared-42 %s/b.log", dir, dir), 0);
    /* The shell knows where it is. */
    assert_int_equal(
        run("tmux -S %s send-keys -t ds-test000001 'echo in-$AIRLOCK_SESSION' Enter", tmux_sock), 0);
    for (i = 0; i < 50 && run("tmux -S %s capture-pane -p -t ds-test000001 | grep -q "
                              "in-ds-test000001",
                              tmux_sock) != 0;
         i++)
        usleep(100 * 1000); /* the poll interval of this wait for the output */
    assert_int_equal(
        run("tmux -S %s capture-pane -p -t ds-test000001 | grep -q in-ds-test000001", tmux_sock),
        0);
    /* Attribution: nobody typed through SSH yet, so the latest non-viewer to authenticate. */
    {
        char *u = sshd_attribute(d, "ds-test000001", NULL);

        assert_non_null(u);
        assert_true(strcmp(u, "bob") == 0 || strcmp(u, "alice") == 0);
        free(u);
    }
    /* The activity report's list (issue 12): each connection with its user and role, oldest first. */
    {
        struct sshd_conn_info *cl = NULL;
        size_t n = 0, k, seen_owner = 0, seen_viewer = 0, seen_part = 0;

        sshd_conn_list(d, "ds-test000001", &cl, &n);
        assert_int_equal(n, 3);
        assert_string_equal(cl[0].user, "alice"); /* she connected first */
        for (k = 0; k < n; k++) {
            assert_true(cl[k].id != NULL && cl[k].id[0] != '\0');
            assert_true(k == 0 || cl[k - 1].authed_ms <= cl[k].authed_ms);
            seen_owner += strcmp(cl[k].user, "alice") == 0 && cl[k].role == ROLE_OWNER;
            seen_viewer += strcmp(cl[k].user, "vic") == 0 && cl[k].role == ROLE_VIEWER;
            seen_part += strcmp(cl[k].user, "bob") == 0 && cl[k].role == ROLE_PARTICIPANT;
        }
        assert_true(seen_owner == 1 && seen_viewer == 1 && seen_part == 1);
        sshd_conn_list_free(cl, n);
        sshd_conn_list(d, "ds-nosuch00000", &cl, &n);
        assert_int_equal(n, 0);
        sshd_conn_list_free(cl, n);
    }
    /* bob removed: his connection closes within a second, with the reason. */
    {
        struct timespec t0, t1;

        clock_gettime(CLOCK_MONOTONIC, &t0);
        set_session("Active", OPS_ALL, 0);
        assert_int_equal(wait_exit(b, 1500), 0);
        clock_gettime(CLOCK_MONOTONIC, &t1);
        assert_true((t1.tv_sec - t0.tv_sec) * 1000 + (t1.tv_nsec - t0.tv_nsec) / 1000000 < 1200);
        assert_int_equal(run("grep -q 'airlock: you were removed from the session' %s/b.log", dir),
                         0);
    }
    /* Session ended: everyone out, tmux session gone. */
    set_session("Expired", OPS_ALL, 1);
    assert_int_equal(wait_exit(a, 1500), 0);
    assert_int_equal(wait_exit(v, 1500), 0);
    assert_int_equal(run("grep -q 'airlock: session ended' %s/a.log", dir), 0);
    assert_int_not_equal(run("tmux -S %s has-session -t =ds-test000001 2>/dev/null", tmux_sock), 0);
    for (i = 0; i < 30 && sshd_conn_count(d, NULL) > 0; i++)
        usleep(100 * 1000); /* the poll interval of a wait for the condition above */
    assert_int_equal(sshd_conn_count(d, NULL), 0);
    set_session("Active", OPS_ALL, 1);
}

/* Runs the shell command cmd in the background; returns its pid. */
static pid_t
spawn_sh(const char *cmd)
{
    pid_t p = fork();

    if (p == 0) {
        execl("/bin/sh", "sh", "-c", cmd, (char *)NULL);
        _exit(127);
    }
    return p;
}

/* Waits up to ms for p to exit; its wait status, or -1 (then it is killed). */
static int
exit_status(pid_t p, int ms)
{
    int st;

    for (int i = 0; i < ms / 50; i++) {
        if (waitpid(p, &st, WNOHANG) == p)
            return st;
        usleep(50 * 1000); /* the poll interval of this wait for the exit */
    }
    kill(p, SIGKILL);
    waitpid(p, &st, 0);
    return -1;
}

/*
 * `airlock resume` from `ssh host cmd` (sshd_conn_hold): when the session
 * ends, the connection whose command asked stays until that command has
 * exited, and ssh gets its exit status; another connection's command is cut
 * at once. Event order, no timer: alice's connection is closed while bob's
 * command still waits for the go file, then bob's exits with 5.
 */
static void
test_end_waits_for_the_command_that_asked(void **state)
{
    char ssh[1024], cmd[4096], path[400], *conn_id, *out;
    pid_t held, other;
    int st, i;

    (void)state;
    set_session("Active", OPS_ALL, 1);
    snprintf(path, sizeof(path), "%s/held.conn", dir);
    (void)unlink(path);
    ssh_cmd(ssh, sizeof(ssh), 1);
    snprintf(cmd, sizeof(cmd),
             "exec %s 127.0.0.1 'echo $AIRLOCK_CONN >%s; "
             "while [ ! -e %s/held.go ]; do sleep 0.05; done; echo done; exit 5' >%s/held.out",
             ssh, path, dir, dir);
    held = spawn_sh(cmd); /* it polls for held.go every 0.05 s */
    ssh_cmd(ssh, sizeof(ssh), 0);
    /* A command that runs until it is cut (sleep is its work, not a wait). */
    snprintf(cmd, sizeof(cmd), "exec %s 127.0.0.1 'echo up >%s/other.up; exec sleep 60'", ssh,
             dir);
    other = spawn_sh(cmd);
    for (i = 0; i < 200 && (run("test -s %s && test -s %s/other.up", path, dir) != 0); i++)
        usleep(50 * 1000); /* the poll interval of this wait for both commands to run */
    conn_id = slurp(path);
    assert_true(conn_id[0] != '\0');
    sshd_conn_hold(d, "ds-test000001", conn_id);
    set_session("Expired", OPS_ALL, 1);
    st = exit_status(other, 10000);
    assert_true(st != -1 && WIFEXITED(st) && WEXITSTATUS(st) == 255); /* cut at once */
    /* The cut connection's thread ends just after its client has gone. */
    for (i = 0; i < 100 && sshd_conn_count(d, "ds-test000001") > 1; i++)
        usleep(50 * 1000); /* the poll interval of this wait for that thread */
    assert_int_equal(waitpid(held, &st, WNOHANG), 0); /* still there */
    assert_int_equal(sshd_conn_count(d, "ds-test000001"), 1);
    assert_int_equal(run("touch %s/held.go", dir), 0);
    st = exit_status(held, 10000);
    assert_true(st != -1 && WIFEXITED(st));
    assert_int_equal(WEXITSTATUS(st), 5);
    snprintf(path, sizeof(path), "%s/held.out", dir);
    out = slurp(path);
    assert_string_equal(out, "done");
    for (i = 0; i < 100 && sshd_conn_count(d, NULL) > 0; i++)
        usleep(50 * 1000); /* the poll interval of this wait for the connection to go */
    assert_int_equal(sshd_conn_count(d, NULL), 0);
    free(out);
    free(conn_id);
    set_session("Active", OPS_ALL, 1);
}

static void
test_env_build(void **state)
{
    char *base[] = {"A=1", "TERM=dumb", "SECRET=x", "B=2", NULL};
    const char *drop[] = {"SECRET", NULL};
    const char *set[] = {"TERM=xterm", "C=3", NULL};
    char **env = tmux_env_build(base, drop, set);

    (void)state;
    assert_string_equal(env[0], "A=1");
    assert_string_equal(env[1], "B=2");
    assert_string_equal(env[2], "TERM=xterm");
    assert_string_equal(env[3], "C=3");
    assert_null(env[4]);
    tmux_env_free(env);
}

static void
test_shell_argv(void **state)
{
    const char *argv[TMUX_ARGV_MAX];
    char a[64], b[64];

    (void)state;
    tmux_shell_argv("/s", "ds-x", 0, "/c", "/bin/bash", a, sizeof(a), b, sizeof(b), argv);
    assert_string_equal(argv[3], "new-session");
    assert_string_equal(argv[4], "-A");
    assert_string_equal(argv[6], "ds-x");
    assert_string_equal(argv[8], "AIRLOCK_SESSION=ds-x");
    assert_string_equal(argv[10], "AIRLOCK_SOCK=/c");
    assert_string_equal(argv[11], "/bin/bash"); /* one argument: no sh -c, no login shell */
    assert_null(argv[12]);
    tmux_shell_argv("/s", "ds-x", 1, "/c", "/bin/bash", a, sizeof(a), b, sizeof(b), argv);
    assert_string_equal(argv[3], "attach-session");
    assert_string_equal(argv[4], "-r");
    assert_string_equal(argv[6], "=ds-x");
    assert_null(argv[7]);
}

int
main(void)
{
    const struct CMUnitTest pure[] = {
        cmocka_unit_test(test_env_build),
        cmocka_unit_test(test_shell_argv),
    };
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_exec_status_and_stdin),
        cmocka_unit_test(test_bulk_both_ways),
        cmocka_unit_test(test_bulk_across_rekey),
        cmocka_unit_test(test_refusals),
        cmocka_unit_test(test_sftp_and_ops),
        cmocka_unit_test(test_forward),
        cmocka_unit_test(test_shared_shell_and_removal),
        cmocka_unit_test(test_end_waits_for_the_command_that_asked),
    };
    int failed = cmocka_run_group_tests_name("agent_tmux", pure, NULL, NULL);

    failed += cmocka_run_group_tests_name("agent_sshd", tests, setup, teardown);
    return failed ? 1 : 0;
}
