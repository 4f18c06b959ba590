/*
 * idle-agents PORT FILE: opens one agent control WebSocket
 * (GET /api/v1/agents/{name}/control, Authorization: Bearer <credential>)
 * for every "name credential" line of FILE against 127.0.0.1:PORT, sends
 * each a hello as the agent does, then keeps them all open and idle: pings
 * are answered with pongs, everything else is read and dropped. Prints
 *   CONNECTED <ok> <failed> <seconds>
 * once every handshake is done, then runs until SIGTERM/SIGINT and prints
 *   CLOSED <connections the server closed meanwhile>
 * One process, one thread, epoll: the client's own memory does not matter,
 * the benchmark reads the server's VmRSS.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>
#include <fcntl.h>

#include "parse.h"

#define BUF 65536

struct conn {
    int fd;
    int open;
    size_t len;
    unsigned char buf[BUF];
};

static volatile sig_atomic_t stop;

static void
on_sig(int s)
{
    (void)s;
    stop = 1;
}

static double
now_s(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int
write_all(int fd, const void *p, size_t n)
{
    const char *c = p;

    while (n > 0) {
        ssize_t w = send(fd, c, n, MSG_NOSIGNAL);

        if (w < 0 && errno == EINTR)
            continue;
        if (w < 0 && errno == EAGAIN) {
            usleep(1000);
            continue;
        }
        if (w <= 0)
            return -1;
        c += w;
        n -= (size_t)w;
    }
    return 0;
}

/* A masked client frame. */
static int
send_frame(int fd, int opcode, const void *data, size_t len)
{
    unsigned char h[14 + 125], *out;
    size_t hl = 0, i;
    unsigned char mask[4] = {(unsigned char)rand(), (unsigned char)rand(), (unsigned char)rand(),
                             (unsigned char)rand()};
    int r;

    h[hl++] = (unsigned char)(0x80 | opcode);
    if (len < 126) {
        h[hl++] = (unsigned char)(0x80 | len);
    } else {
        h[hl++] = 0x80 | 126;
        h[hl++] = (unsigned char)(len >> 8);
        h[hl++] = (unsigned char)len;
    }
    memcpy(h + hl, mask, 4);
    hl += 4;
    out = malloc(hl + len);
    memcpy(out, h, hl);
    for (i = 0; i < len; i++)
        out[hl + i] = ((const unsigned char *)data)[i] ^ mask[i & 3];
    r = write_all(fd, out, hl + len);
    free(out);
    return r;
}

static int
handshake(struct conn *c, int port, const char *name, const char *cred)
{
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    char req[2048];
    size_t n = 0;
    char *end;
    int one = 1;

    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    c->fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (c->fd < 0 || connect(c->fd, (struct sockaddr *)&sa, sizeof(sa)) != 0)
        return -1;
    setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    snprintf(req, sizeof(req),
             "GET /api/v1/agents/%s/control HTTP/1.1\r\nHost: 127.0.0.1:%d\r\n"
             "Upgrade: websocket\r\nConnection: Upgrade\r\n"
             "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n"
             "Authorization: Bearer %s\r\n\r\n",
             name, port, cred);
    if (write_all(c->fd, req, strlen(req)) != 0)
        return -1;
    for (;;) {
        ssize_t r = recv(c->fd, c->buf + n, BUF - 1 - n, 0);

        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            return -1;
        n += (size_t)r;
        c->buf[n] = '\0';
        if ((end = strstr((char *)c->buf, "\r\n\r\n")) != NULL)
            break;
        if (n >= BUF - 1)
            return -1;
    }
    if (strncmp((char *)c->buf, "HTTP/1.1 101", 12) != 0) {
        fprintf(stderr, "idle-agents: %s: %.*s\n", name, (int)strcspn((char *)c->buf, "\r"),
                (char *)c->buf);
        return -1;
    }
    end += 4;
    c->len = n - (size_t)(end - (char *)c->buf);
    memmove(c->buf, end, c->len);
    {
        char hello[128];
        int hl = snprintf(hello, sizeof(hello), "{\"type\":\"hello\",\"version\":\"bench\"}");

        if (send_frame(c->fd, 0x1, hello, (size_t)hl) != 0)
            return -1;
    }
    fcntl(c->fd, F_SETFL, fcntl(c->fd, F_GETFL) | O_NONBLOCK);
    c->open = 1;
    return 0;
}

/* Parses whole frames in c->buf; answers pings. Returns -1 on close. */
static int
frames(struct conn *c)
{
    size_t off = 0;
    int r = 0;

    while (c->len - off >= 2) {
        unsigned char *p = c->buf + off;
        int op = p[0] & 0x0f;
        uint64_t len = p[1] & 0x7f;
        size_t hl = 2;

        if (len == 126) {
            if (c->len - off < 4)
                break;
            len = ((uint64_t)p[2] << 8) | p[3];
            hl = 4;
        } else if (len == 127) {
            if (c->len - off < 10)
                break;
            len = 0;
            for (int i = 0; i < 8; i++)
                len = (len << 8) | p[2 + i];
            hl = 10;
        }
        if (p[1] & 0x80)
            hl += 4; /* a server must not mask, but skip it if it does */
        if (hl + len > BUF) {
            r = -1; /* larger than this client cares to hold */
            break;
        }
        if (c->len - off < hl + len)
            break;
        if (op == 0x9)
            send_frame(c->fd, 0xA, p + hl, (size_t)len);
        else if (op == 0x8) {
            send_frame(c->fd, 0x8, p + hl, len >= 2 ? 2 : 0);
            r = -1;
        }
        off += hl + (size_t)len;
    }
    memmove(c->buf, c->buf + off, c->len - off);
    c->len -= off;
    return r;
}

int
main(int argc, char **argv)
{
    struct conn **cs = NULL;
    size_t n = 0, cap = 0, ok = 0, failed = 0, closed = 0, i;
    char name[512], cred[512];
    struct sigaction sa = {.sa_handler = on_sig};
    double t0;
    FILE *f;
    long port;
    int ep;

    if (argc != 3) {
        fprintf(stderr, "usage: idle-agents PORT FILE\n");
        return 2;
    }
    if (parse_long("PORT", argv[1], 1, 65535, &port) != 0)
        return 2;
    if ((f = fopen(argv[2], "r")) == NULL) {
        perror(argv[2]);
        return 1;
    }
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);
    srand((unsigned)getpid());
    ep = epoll_create1(EPOLL_CLOEXEC);
    t0 = now_s();
    while (!stop && fscanf(f, "%511s %511s", name, cred) == 2) {
        struct conn *c = calloc(1, sizeof(*c));
        struct epoll_event ev = {.events = EPOLLIN};

        if (n == cap) {
            cap = cap ? cap * 2 : 1024;
            cs = realloc(cs, cap * sizeof(*cs));
        }
        cs[n++] = c;
        if (handshake(c, port, name, cred) != 0) {
            failed++;
            if (c->fd >= 0)
                close(c->fd);
            c->fd = -1;
            continue;
        }
        ok++;
        ev.data.ptr = c;
        epoll_ctl(ep, EPOLL_CTL_ADD, c->fd, &ev);
        if (c->len > 0 && frames(c) != 0)
            c->open = 0;
    }
    fclose(f);
    printf("CONNECTED %zu %zu %.2f\n", ok, failed, now_s() - t0);
    fflush(stdout);
    while (!stop) {
        struct epoll_event evs[64];
        int k = epoll_wait(ep, evs, 64, 500);

        for (int e = 0; e < k; e++) {
            struct conn *c = evs[e].data.ptr;
            ssize_t r;

            while ((r = recv(c->fd, c->buf + c->len, BUF - c->len, 0)) > 0) {
                c->len += (size_t)r;
                if (frames(c) != 0) {
                    r = 0;
                    break;
                }
            }
            if (r == 0 || (r < 0 && errno != EAGAIN && errno != EINTR)) {
                epoll_ctl(ep, EPOLL_CTL_DEL, c->fd, NULL);
                if (c->open)
                    closed++;
                c->open = 0;
            }
        }
    }
    printf("CLOSED %zu\n", closed);
    for (i = 0; i < n; i++) {
        if (cs[i]->fd >= 0) {
            if (cs[i]->open)
                send_frame(cs[i]->fd, 0x8, "\x03\xe8", 2);
            close(cs[i]->fd);
        }
        free(cs[i]);
    }
    free(cs);
    return 0;
}
