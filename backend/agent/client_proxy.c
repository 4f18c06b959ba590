/*
 * airlock proxy (client.h), the ssh ProxyCommand: stdin/stdout carried over
 * the session's /connect WebSocket by the fd<->WebSocket bridge
 * (wsbridge.h), with flow control both ways: stdin is read only while less
 * than PROXY_HWM is queued toward the server, and the WebSocket is read only
 * while less than PROXY_HWM waits for stdout.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "client.h"
#include "client_int.h"
#include "err.h"
#include "util.h"
#include "ws.h"
#include "wsbridge.h"
#include "xmalloc.h"

#define PROXY_BUF (256 * 1024)  /* one stdin read, one message */
#define PROXY_HWM (1024 * 1024) /* queued bytes that stop reading the other side */
#define PROXY_CONNECT_MS 20000
#define PROXY_PING_MS 20000 /* keeps idle-timeout proxies (nginx: 60 s) happy */
#define PROXY_DEAD_MS 65000 /* nothing at all from the server this long: gone */
#define PROXY_CLOSE_WAIT_MS 3000

/* ---------------------------------------------------------------- proxy */

static const char *
close_meaning(uint16_t code)
{
    switch (code) {
    case 1001:
        return "going away";
    case 1002:
        return "protocol error";
    case 1008:
        return "policy violation";
    case 1009:
        return "message too big";
    case 1011:
        return "server or agent error (did the agent answer?)";
    default:
        return "closed";
    }
}

static int
set_nonblock(int fd, int *old)
{
    *old = fcntl(fd, F_GETFL);
    if (*old < 0)
        return -1;
    return fcntl(fd, F_SETFL, *old | O_NONBLOCK);
}

/*
 * Carries stdin/stdout over w until either side ends (wsbridge.h). Returns
 * the exit code: 0 when ssh ended it or the server closed normally.
 */
static int
proxy_loop(struct wsbridge *br, struct ws *w)
{
    uint16_t code;

    if (wsbridge_run(br, w) == ERR_UNAVAILABLE) {
        fprintf(stderr, "airlock proxy: no answer from the server for %d s\n",
                PROXY_DEAD_MS / 1000);
        return CLIENT_EXIT_UNREACHABLE;
    }
    code = ws_peer_close_code(w);
    if (br->we_closed || code == 1000 || code == 1001) {
        if (code == 1001 && !br->we_closed)
            fprintf(stderr, "airlock proxy: the server closed the connection (going away)\n");
        return 0;
    }
    if (code != 0) {
        fprintf(stderr, "airlock proxy: the server closed the connection: code %u, %s\n", code,
                close_meaning(code));
        return CLIENT_EXIT_REFUSED;
    }
    fprintf(stderr, "airlock proxy: lost the connection to the server\n");
    return CLIENT_EXIT_UNREACHABLE;
}

int
cmd_proxy(const char *server, int argc, char **argv)
{
    static const struct option opts[] = {{"ticket", required_argument, NULL, 't'},
                                         {"help", no_argument, NULL, 'h'},
                                         {NULL, 0, NULL, 0}};
    const struct wsbridge_cfg bc = {
        .in_fd = STDIN_FILENO,
        .out_fd = STDOUT_FILENO,
        .stop_fd = -1,
        .hwm = PROXY_HWM,
        .chunk = PROXY_BUF,
        .close_wait_ms = PROXY_CLOSE_WAIT_MS,
        .ping_ms = PROXY_PING_MS,
        .dead_ms = PROXY_DEAD_MS,
        .in_eof_reason = "ssh closed the connection",
        .out_gone_reason = "ssh exited",
    };
    const char *ticket = NULL;
    char *srv = NULL, *bearer = NULL, *url = NULL, *esc = NULL, err[512];
    struct wsbridge br;
    struct ws *w = NULL;
    int c, r, code = CLIENT_EXIT_USAGE, in_fl = -1, out_fl = -1;

    memset(&br, 0, sizeof(br)); /* wsbridge_cleanup() is safe on it from here */
    optind = 0;
    while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        switch (c) {
        case 't':
            ticket = optarg;
            break;
        case 'h':
            printf("usage: airlock proxy NAME [--ticket T]\n");
            return 0;
        default:
            goto usage;
        }
    }
    if (optind != argc - 1)
        goto usage;
    if ((srv = client_server_url(server)) == NULL)
        goto out;
    if (ticket != NULL && ticket[0] != '\0')
        bearer = xstrdup(ticket);
    else if ((bearer = client_need_token()) == NULL) {
        code = CLIENT_EXIT_REFUSED;
        goto out;
    }
    signal(SIGPIPE, SIG_IGN);
    esc = client_url_escape(argv[optind]);
    url = xasprintf("%s/api/v1/debug-sessions/%s/connect", srv, esc);
    wsbridge_init(&br, &bc);
    r = ws_client_connect(url, bearer, getenv("AIRLOCK_CA_FILE"), PROXY_CONNECT_MS,
                          WS_DEFAULT_MAX_MSG, wsbridge_on_msg, &br, &w, err, sizeof(err));
    client_secret_free(bearer);
    bearer = NULL;
    if (r != 0) {
        fprintf(stderr, "airlock proxy: %s\n", err);
        code = r == ERR_UNAVAILABLE ? CLIENT_EXIT_UNREACHABLE : CLIENT_EXIT_REFUSED;
        goto out;
    }
    if (set_nonblock(STDIN_FILENO, &in_fl) != 0 || set_nonblock(STDOUT_FILENO, &out_fl) != 0) {
        fprintf(stderr, "airlock proxy: stdin/stdout: %s\n", strerror(errno));
        code = CLIENT_EXIT_USAGE;
        goto out;
    }
    code = proxy_loop(&br, w);
    goto out;
usage:
    fprintf(stderr, "usage: airlock proxy NAME [--ticket T]\n");
    code = CLIENT_EXIT_USAGE;
out:
    if (in_fl >= 0)
        (void)fcntl(STDIN_FILENO, F_SETFL, in_fl);
    if (out_fl >= 0)
        (void)fcntl(STDOUT_FILENO, F_SETFL, out_fl);
    ws_free(w);
    wsbridge_cleanup(&br);
    free(srv);
    client_secret_free(bearer);
    free(url);
    free(esc);
    return code;
}
