/*
 * Port forwarding in the agent's SSH server: a direct-tcpip open (`ssh -L`,
 * `ssh -W`) is gated on the connection's role and the session's
 * allowedOperations, connected to its destination, and accepted as a
 * CHAN_FORWARD channel whose fd is the TCP socket. From there sshd_chan.c moves
 * its bytes like any other channel's, half-closing the socket on the client's
 * EOF and sending EOF when the socket ends.
 *
 * XXX the connect runs inside libssh's message callback, so the connection's
 * other channels wait for it: the name lookup, then up to FORWARD_CONNECT_MS
 * per address.
 */
#include <errno.h>
#include <netdb.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <libssh/libssh.h>
#include <libssh/server.h>

#include "log.h"
#include "sshd.h"
#include "sshd_int.h"

#define FORWARD_CONNECT_MS 5000

/* Connects to host:port within FORWARD_CONNECT_MS. Returns the socket or -1. */
static int
forward_connect(const char *host, int port)
{
    struct addrinfo hints, *res = NULL, *ai;
    char portstr[16];
    int fd = -1;

    memset(&hints, 0, sizeof(hints));
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_NUMERICSERV;
    snprintf(portstr, sizeof(portstr), "%d", port);
    if (getaddrinfo(host, portstr, &hints, &res) != 0)
        return -1;
    for (ai = res; ai != NULL && fd < 0; ai = ai->ai_next) {
        struct pollfd p;
        int err = 0;
        socklen_t el = sizeof(err);

        fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC | SOCK_NONBLOCK, ai->ai_protocol);
        if (fd < 0)
            continue;
        if (connect(fd, ai->ai_addr, ai->ai_addrlen) == 0)
            break;
        p.fd = fd;
        p.events = POLLOUT;
        if (errno == EINPROGRESS && poll(&p, 1, FORWARD_CONNECT_MS) == 1 &&
            getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &el) == 0 && err == 0)
            break;
        close(fd);
        fd = -1;
    }
    freeaddrinfo(res);
    return fd;
}

int
sshd_fwd_open(struct conn *c, ssh_message msg)
{
    const char *host;
    ssh_channel channel;
    struct chan *ch;
    int port, fd;

    if (!c->authed || c->role == ROLE_VIEWER || !(sshd_conn_ops(c) & DSESS_OP_FORWARD) ||
        c->n_chans >= CONN_MAX_CHANS || c->kill_msg != NULL) {
        log_info("conn %s: %s: port forwarding refused", c->id, c->user ? c->user : "?");
        return 1;
    }
    host = ssh_message_channel_request_open_destination(msg);
    port = ssh_message_channel_request_open_destination_port(msg);
    if (host == NULL || port <= 0 || port > 65535)
        return 1;
    fd = forward_connect(host, port);
    if (fd < 0) {
        log_info("conn %s: forward to %s:%d failed", c->id, host, port);
        return 1;
    }
    channel = ssh_message_channel_request_open_reply_accept(msg);
    if (channel == NULL) {
        close(fd);
        return 1;
    }
    ch = sshd_chan_new(c, channel, CHAN_FORWARD);
    ch->fd_in = ch->fd_out = fd;
    ch->started = 1;
    ch->err_eof = 1;
    log_info("conn %s: %s forwards to %s:%d", c->id, c->user, host, port);
    return 0;
}
