/*
 * The relay hop against socat, on loopback TCP.
 *
 *   relay-bench relay MB ROUNDS     airlock's relay (relay.c, in a child process)
 *   relay-bench socat MB ROUNDS     socat -b 262144 in the same place
 *
 * A "participant" sends MB MiB of masked 64 KiB WebSocket frames to an
 * "agent" through the hop (bulk MB/s, several runs), then sends ROUNDS one-byte
 * frames that the agent echoes, one at a time (round-trip latency, p50/p99).
 * Both ends are raw socket code, cheap next to the hop, so the hop's cost
 * shows. With socat the frames pass through untouched; with the relay they
 * are unmasked and re-framed, as in production. The relay process gets no
 * HTTP layer: the sockets are handed to relay_run_* as if upgraded.
 *
 * Output: one line per metric, "name value unit"; hop_cpu_ms_per_GiB is the
 * CPU time (user + system) the hop's process used per GiB of bulk data, the
 * figure that matters when the hop shares two cores with ssh and sshd.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <fcntl.h>
#include <time.h>
#include <unistd.h>

#include "relay.h"

#define FRAME 65536

static int64_t
now_us(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static int
listen_any(int *port)
{
    struct sockaddr_in a = {.sin_family = AF_INET};
    socklen_t alen = sizeof(a);
    int fd = socket(AF_INET, SOCK_STREAM, 0), one = 1;

    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    if (bind(fd, (struct sockaddr *)&a, sizeof(a)) != 0 || listen(fd, 16) != 0)
        exit(2);
    getsockname(fd, (struct sockaddr *)&a, &alen);
    *port = ntohs(a.sin_port);
    return fd;
}

static int
dial(int port)
{
    struct sockaddr_in a = {.sin_family = AF_INET};
    int fd, one = 1;

    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    a.sin_port = htons((uint16_t)port);
    for (int i = 0; i < 200; i++) {
        fd = socket(AF_INET, SOCK_STREAM, 0);
        if (connect(fd, (struct sockaddr *)&a, sizeof(a)) == 0) {
            setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
            return fd;
        }
        close(fd);
        usleep(10000);
    }
    exit(2);
}

/* ------------------------------------------------------- the relay process */

void
upgraded_close(struct upgraded *u)
{
    close(u->fd);
    free(u->extra);
    free(u);
}

struct job {
    struct relay *rl;
    struct upgraded *u;
    int agent;
};

static void *
job_main(void *arg)
{
    struct job *j = arg;

    if (j->agent)
        relay_run_agent(j->rl, "c1", j->u);
    else
        relay_run_participant(j->rl, "c1", j->u);
    free(j);
    return NULL;
}

static void
spawn(struct relay *rl, int fd, int agent, pthread_t *th)
{
    struct job *j = calloc(1, sizeof(*j));
    int one = 1;

    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    fcntl(fd, F_SETFL, O_NONBLOCK);
    j->rl = rl;
    j->agent = agent;
    j->u = calloc(1, sizeof(*j->u));
    j->u->fd = fd;
    pthread_create(th, NULL, job_main, j);
}

/* Accepts one participant on lp and one agent on la, splices them, exits. */
static void
relay_process(int lp, int la)
{
    struct relay *rl = relay_new();
    pthread_t tp, ta;
    int p, a;

    relay_expect(rl, "c1", "ds-bench", "agent", "alice", 4);
    p = accept(lp, NULL, NULL);
    spawn(rl, p, 0, &tp);
    a = accept(la, NULL, NULL);
    spawn(rl, a, 1, &ta);
    pthread_join(tp, NULL);
    pthread_join(ta, NULL);
    relay_free(rl);
    _exit(0);
}

/* ------------------------------------------------------------- the clients */

static void
write_all(int fd, const void *buf, size_t len)
{
    const uint8_t *p = buf;

    while (len > 0) {
        ssize_t n = write(fd, p, len);

        if (n <= 0) {
            if (n < 0 && errno == EINTR)
                continue;
            perror("write");
            exit(1);
        }
        p += n;
        len -= (size_t)n;
    }
}

static size_t
masked_frame(uint8_t *f, const uint8_t *payload, size_t len)
{
    static const uint8_t key[4] = {0x12, 0x34, 0x56, 0x78};
    size_t h;

    f[0] = 0x82;
    if (len < 126) {
        f[1] = (uint8_t)(0x80 | len);
        h = 2;
    } else if (len < 65536) {
        f[1] = 0x80 | 126;
        f[2] = (uint8_t)(len >> 8);
        f[3] = (uint8_t)len;
        h = 4;
    } else {
        f[1] = 0x80 | 127;
        for (int i = 0; i < 8; i++)
            f[2 + i] = (uint8_t)((uint64_t)len >> (56 - 8 * i));
        h = 10;
    }
    memcpy(f + h, key, 4);
    for (size_t i = 0; i < len; i++)
        f[h + 4 + i] = payload[i] ^ key[i & 3];
    return h + 4 + len;
}

struct sink {
    int fd;
    uint64_t want;
};

/* Reads until want bytes (frames included) or EOF. */
static void *
sink_main(void *arg)
{
    struct sink *s = arg;
    static uint8_t buf[1 << 18];
    uint64_t got = 0;

    while (got < s->want) {
        ssize_t n = read(s->fd, buf, sizeof(buf));

        if (n <= 0)
            break;
        got += (uint64_t)n;
    }
    s->want = got;
    return NULL;
}

static int
cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;

    return x < y ? -1 : x > y;
}

/* Reads exactly one frame of a known total size. */
static void
read_n(int fd, uint8_t *buf, size_t n)
{
    size_t got = 0;

    while (got < n) {
        ssize_t k = read(fd, buf + got, n - got);

        if (k <= 0) {
            perror("read");
            exit(1);
        }
        got += (size_t)k;
    }
}

int
main(int argc, char **argv)
{
    int relay = argc > 1 && strcmp(argv[1], "relay") == 0;
    uint64_t mb = argc > 2 ? strtoull(argv[2], NULL, 10) : 1024;
    int rounds = argc > 3 ? (int)strtol(argv[3], NULL, 10) : 2000;
    int lp, la, pport, aport, pfd, afd, runs = 3;
    pid_t child;
    uint8_t *payload = calloc(1, FRAME), *frame = malloc(FRAME + 14), small[16], echo[16];
    size_t flen, out_frame, in_frame;
    int64_t *rtt = calloc((size_t)rounds, sizeof(int64_t));
    double best = 0;

    signal(SIGPIPE, SIG_IGN);
    for (size_t i = 0; i < FRAME; i++)
        payload[i] = (uint8_t)(i * 7);
    flen = masked_frame(frame, payload, FRAME);
    lp = listen_any(&pport);
    la = listen_any(&aport);
    if (relay) {
        if ((child = fork()) == 0)
            relay_process(lp, la);
        close(lp);
        close(la);
        pfd = dial(pport);
        afd = dial(aport);
    } else {
        char a1[64], a2[64];

        close(lp);
        snprintf(a1, sizeof(a1), "TCP-LISTEN:%d,reuseaddr,nodelay", pport);
        snprintf(a2, sizeof(a2), "TCP:127.0.0.1:%d,nodelay", aport);
        if ((child = fork()) == 0) {
            close(la);
            execlp("socat", "socat", "-b", "262144", a1, a2, (char *)NULL);
            _exit(127);
        }
        pfd = dial(pport);
        afd = accept(la, NULL, NULL);
        close(la);
    }
    {
        int one = 1;

        setsockopt(afd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    }

    /* Bulk: best of a few runs. The agent sees unmasked headers through the relay. */
    for (int r = 0; r < runs; r++) {
        uint64_t n_frames = (mb << 20) / FRAME;
        size_t per = relay ? FRAME + 10 : flen;
        struct sink s = {afd, n_frames * per};
        pthread_t th;
        int64_t t0 = now_us(), dt;
        double mbs;

        pthread_create(&th, NULL, sink_main, &s);
        for (uint64_t i = 0; i < n_frames; i++)
            write_all(pfd, frame, flen);
        pthread_join(th, NULL);
        dt = now_us() - t0;
        mbs = (double)(n_frames * FRAME) / ((double)dt / 1e6) / 1e6;
        if (mbs > best)
            best = mbs;
    }
    printf("%s_bulk_MBps %.0f MB/s\n", relay ? "relay" : "socat", best);

    /* Echo: one-byte frames, agent echoes each back. */
    out_frame = masked_frame(small, (const uint8_t *)"k", 1);
    in_frame = relay ? 3 : out_frame;
    for (int i = 0; i < rounds; i++) {
        int64_t t0 = now_us();

        write_all(pfd, small, out_frame);
        read_n(afd, echo, in_frame);
        write_all(afd, small, out_frame);
        read_n(pfd, echo, in_frame);
        rtt[i] = now_us() - t0;
    }
    qsort(rtt, (size_t)rounds, sizeof(int64_t), cmp_i64);
    printf("%s_echo_p50_us %lld us\n", relay ? "relay" : "socat", (long long)rtt[rounds / 2]);
    printf("%s_echo_p99_us %lld us\n", relay ? "relay" : "socat",
           (long long)rtt[rounds * 99 / 100]);
    close(pfd);
    close(afd);
    if (!relay) {
        usleep(100000);
        kill(child, SIGTERM);
    }
    {
        struct rusage ru;
        double cpu_ms;

        wait4(child, NULL, 0, &ru);
        cpu_ms = (double)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) * 1e3 +
                 (double)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e3;
        printf("%s_hop_cpu_ms_per_GiB %.0f ms\n", relay ? "relay" : "socat",
               cpu_ms / ((double)(mb * (uint64_t)runs) / 1024.0));
    }
    free(payload);
    free(frame);
    free(rtt);
    return 0;
}
