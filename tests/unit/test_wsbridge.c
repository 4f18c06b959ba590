/*
 * backend/common/wsbridge.c over socketpairs: the bridge's WebSocket is the
 * server side of ws.c facing a wslay client peer (ws_testpeer.h), its fd
 * side faces the test playing sshd (or ssh). One thread drives all three
 * in rounds of non-blocking steps, so "nothing can move any more" is a fact
 * the test observes (three rounds in a row without a change), not a timer.
 *
 * What a user would notice: a large transfer both ways with readers that
 * stop, then take small bites, neither deadlocks nor buffers without bound,
 * and arrives intact; the end of either side reaches the other (EOF becomes
 * a close, a close becomes EOF), and a stop closes with 1001.
 */
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "err.h"
#include "ws.h"
#include "ws_testpeer.h"
#include "wsbridge.h"

#define HWM (64 * 1024)
#define CHUNK (16 * 1024)
#define MAX_MSG (64 * 1024)
#define BIG (8u << 20)
#define SEED_WS 11  /* the peer's stream toward the fd side */
#define SEED_FD 23  /* the fd side's stream toward the peer */
#define QUIET_ROUNDS 3
#define MAX_ROUNDS 10000000L /* a loop that never settles is a bug, not a slow machine */

struct rig {
    int in_fd, out_fd;       /* the bridge's */
    int side_in, side_out;   /* the test's ends of them (the same socket for a socketpair) */
    int ws_fds[2];
    int stop[2];
    struct ws *w;
    struct wsbridge br;
    struct peer p;
    int running;
    int peer_reads;          /* 0: the peer leaves its socket unread */
    size_t bite;             /* bytes the fd side reads per round; 0: it does not read */
    uint64_t side_rx, side_rx_bad, side_tx, side_tx_total;
    int side_eof;
};

static void
nonblock(int fd)
{
    fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
}

/* A bridge over one socketpair (the tunnel's shape), or over two pipes (the proxy's). */
static void
rig_open(struct rig *g, int pipes)
{
    struct wsbridge_cfg cfg = {
        .stop_fd = -1,
        .hwm = HWM,
        .chunk = CHUNK,
        .close_wait_ms = 60000,
        .in_eof_reason = "in ended",
        .out_gone_reason = "out gone",
        .stop_reason = "stopping",
    };
    int a[2], b[2];

    memset(g, 0, sizeof(*g));
    if (pipes) {
        assert_int_equal(pipe(a), 0); /* the test writes a[1], the bridge reads a[0] */
        assert_int_equal(pipe(b), 0); /* the bridge writes b[1], the test reads b[0] */
        g->in_fd = a[0];
        g->side_in = a[1];
        g->out_fd = b[1];
        g->side_out = b[0];
    } else {
        assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, a), 0);
        g->in_fd = g->out_fd = a[0];
        g->side_in = g->side_out = a[1];
    }
    assert_int_equal(pipe(g->stop), 0);
    nonblock(g->in_fd);
    nonblock(g->out_fd);
    nonblock(g->side_in);
    nonblock(g->side_out);
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, g->ws_fds), 0);
    nonblock(g->ws_fds[0]);
    cfg.in_fd = g->in_fd;
    cfg.out_fd = g->out_fd;
    cfg.stop_fd = g->stop[0];
    wsbridge_init(&g->br, &cfg);
    g->w = ws_server_new(g->ws_fds[0], NULL, 0, MAX_MSG, wsbridge_on_msg, &g->br);
    peer_init(&g->p, g->ws_fds[1], SEED_FD); /* it receives the fd side's stream */
    g->peer_reads = 1;
    g->running = 1;
    wsbridge_start(&g->br, g->w);
}

static void
rig_close(struct rig *g)
{
    wsbridge_cleanup(&g->br);
    ws_free(g->w);
    close(g->ws_fds[0]);
    peer_free(&g->p);
    close(g->in_fd);
    if (g->out_fd != g->in_fd)
        close(g->out_fd);
    if (g->side_in >= 0)
        close(g->side_in);
    if (g->side_out >= 0 && g->side_out != g->side_in)
        close(g->side_out);
    close(g->stop[0]);
    close(g->stop[1]);
}

/* The fd side: writes its pattern stream as far as it goes, reads one bite and checks it. */
static void
side_round(struct rig *g)
{
    uint8_t buf[CHUNK];

    while (g->side_in >= 0 && g->side_tx < g->side_tx_total) {
        size_t n = g->side_tx_total - g->side_tx < sizeof(buf) ? g->side_tx_total - g->side_tx
                                                               : sizeof(buf);
        ssize_t k;

        pattern_fill(buf, n, SEED_FD, g->side_tx);
        k = write(g->side_in, buf, n);
        if (k <= 0)
            break;
        g->side_tx += (uint64_t)k;
    }
    if (g->bite > 0 && !g->side_eof && g->side_out >= 0) {
        ssize_t k = read(g->side_out, buf, g->bite < sizeof(buf) ? g->bite : sizeof(buf));

        if (k == 0)
            g->side_eof = 1;
        for (ssize_t i = 0; i < k; i++)
            if (buf[i] != pattern_byte(SEED_WS, g->side_rx + (uint64_t)i))
                g->side_rx_bad++;
        if (k > 0)
            g->side_rx += (uint64_t)k;
    }
}

/* One round of the peer, the bridge and the fd side, none of them waiting. */
static void
round_once(struct rig *g)
{
    struct pollfd pf = {g->p.fd, peer_events(&g->p), 0};

    (void)poll(&pf, 1, 0);
    if (!g->peer_reads)
        pf.revents &= (short)~(POLLIN | POLLHUP | POLLERR);
    if (peer_alive(&g->p))
        (void)peer_pump(&g->p, pf.revents);
    if (g->running)
        g->running = wsbridge_step(&g->br, 0);
    side_round(g);
    /* The bounds hold at every moment, not only at the end. */
    assert_true(wsbridge_pending(&g->br) <= HWM + MAX_MSG);
    assert_true(ws_queued(g->w) <= HWM + CHUNK + 64);
}

static void
snap(const struct rig *g, uint64_t v[9])
{
    v[0] = g->p.rx_bytes;
    v[1] = wslay_event_get_queued_msg_length(g->p.ctx);
    v[2] = g->side_rx;
    v[3] = g->side_tx;
    v[4] = wsbridge_pending(&g->br);
    v[5] = ws_queued(g->w);
    v[6] = (uint64_t)g->running;
    v[7] = (uint64_t)g->p.got_close;
    v[8] = (uint64_t)g->side_eof;
}

/*
 * Rounds until done(g) (NULL: until nothing moves). Returns 1 when done(g)
 * held, 0 when everything settled first.
 */
static int
run(struct rig *g, int (*done)(const struct rig *))
{
    uint64_t before[9], after[9];
    int quiet = 0;

    for (long i = 0; i < MAX_ROUNDS; i++) {
        if (done != NULL && done(g))
            return 1;
        snap(g, before);
        round_once(g);
        snap(g, after);
        quiet = memcmp(before, after, sizeof(before)) == 0 ? quiet + 1 : 0;
        if (quiet >= QUIET_ROUNDS)
            return done != NULL && done(g);
    }
    fail_msg("the rig never settled");
    return 0;
}

static int
both_delivered(const struct rig *g)
{
    return g->side_rx == BIG && g->p.rx_bytes == BIG;
}

/* wslay sends a close ahead of queued data: the peer closes only once its data is out. */
static int
peer_sent_all(const struct rig *g)
{
    return wslay_event_get_queued_msg_count(g->p.ctx) == 0;
}

static int
side_eof_and_done(const struct rig *g)
{
    return g->side_eof && !g->running;
}

/* Queues len bytes of the peer's stream in messages of at most MAX_MSG. */
static void
peer_queue(struct rig *g, size_t len)
{
    while (len > 0) {
        size_t n = len < MAX_MSG ? len : MAX_MSG;

        peer_send_pattern(&g->p, SEED_WS, n);
        len -= n;
    }
}

/*
 * 8 MiB each way while neither reader reads: the bridge stops reading both
 * sides with bounded buffers (no deadlock, no unbounded growth); then slow
 * readers take it all, intact.
 */
static void
test_wsbridge_both_ways_slow_readers(void **state)
{
    struct rig g;
    (void)state;

    rig_open(&g, 0);
    peer_queue(&g, BIG);
    g.side_tx_total = BIG;
    g.peer_reads = 0;
    g.bite = 0;
    assert_int_equal(run(&g, NULL), 0);
    /* Both directions stalled with the bridge still up and most bytes still at the senders. */
    assert_true(g.running);
    assert_true(wslay_event_get_queued_msg_length(g.p.ctx) > BIG / 2);
    assert_true(g.side_tx < BIG / 2);
    assert_true(g.br.paused);
    /* Slow readers: the fd side takes 1 KiB a round, the peer reads every round. */
    g.peer_reads = 1;
    g.bite = 1024;
    assert_int_equal(run(&g, both_delivered), 1);
    assert_int_equal(g.side_rx_bad, 0);
    assert_int_equal(g.p.rx_bad, 0);
    assert_true(g.running);
    rig_close(&g);
}

/* The fd side ends: everything it wrote arrives, then a close 1000 with the reason. */
static void
test_wsbridge_fd_eof_becomes_close(void **state)
{
    struct rig g;
    (void)state;

    rig_open(&g, 0);
    g.side_tx_total = 1u << 20;
    g.bite = CHUNK;
    assert_int_equal(run(&g, NULL), 0);
    assert_int_equal(g.side_tx, 1u << 20);
    assert_int_equal(shutdown(g.side_in, SHUT_WR), 0);
    assert_int_equal(run(&g, side_eof_and_done), 1);
    assert_int_equal(g.p.rx_bytes, 1u << 20);
    assert_int_equal(g.p.rx_bad, 0);
    assert_true(g.p.got_close);
    assert_int_equal(g.p.close_code, 1000);
    assert_string_equal(g.p.close_reason, "in ended");
    assert_true(g.br.we_closed);
    rig_close(&g);
}

/* The peer closes: what it sent before reaches the fd side, then EOF. */
static void
test_wsbridge_close_becomes_fd_eof(void **state)
{
    struct rig g;
    (void)state;

    rig_open(&g, 0);
    peer_queue(&g, 3u << 20);
    g.bite = 4096;
    assert_int_equal(run(&g, peer_sent_all), 1);
    assert_int_equal(wslay_event_queue_close(g.p.ctx, 1000, NULL, 0), 0);
    assert_int_equal(run(&g, side_eof_and_done), 1);
    assert_int_equal(g.side_rx, 3u << 20);
    assert_int_equal(g.side_rx_bad, 0);
    assert_false(g.br.we_closed);
    assert_int_equal(ws_peer_close_code(g.w), 1000);
    rig_close(&g);
}

/* The proxy's shape (two pipes): out_fd's reader goes away, the peer learns why. */
static void
test_wsbridge_out_gone_becomes_close(void **state)
{
    struct rig g;
    (void)state;

    rig_open(&g, 1);
    close(g.side_out);
    g.side_out = -1;
    peer_queue(&g, 1000);
    assert_int_equal(run(&g, NULL), 0);
    assert_true(g.p.got_close);
    assert_int_equal(g.p.close_code, 1000);
    assert_string_equal(g.p.close_reason, "out gone");
    assert_true(g.br.out_dead);
    assert_false(g.running);
    rig_close(&g);
}

/* stop_fd turning readable closes with 1001 and ends the bridge; the fd side sees EOF. */
static void
test_wsbridge_stop(void **state)
{
    struct rig g;
    (void)state;

    rig_open(&g, 0);
    g.bite = CHUNK;
    assert_int_equal(run(&g, NULL), 0);
    assert_true(g.running);
    assert_int_equal(write(g.stop[1], "s", 1), 1);
    assert_int_equal(run(&g, side_eof_and_done), 1);
    assert_true(g.p.got_close);
    assert_int_equal(g.p.close_code, 1001);
    assert_string_equal(g.p.close_reason, "stopping");
    rig_close(&g);
}

/* wsbridge_run() on its own: the peer closes at once, run returns 0 and the fd side sees EOF. */
static void
test_wsbridge_run_returns(void **state)
{
    struct rig g;
    uint8_t buf[256];
    (void)state;

    rig_open(&g, 0);
    peer_queue(&g, 100);
    while (wslay_event_want_write(g.p.ctx))
        assert_int_equal(peer_pump(&g.p, 0), 0);
    assert_int_equal(wslay_event_queue_close(g.p.ctx, 1000, NULL, 0), 0);
    while (wslay_event_want_write(g.p.ctx))
        assert_int_equal(peer_pump(&g.p, 0), 0);
    assert_int_equal(wsbridge_run(&g.br, g.w), 0);
    g.running = 0;
    assert_int_equal(read(g.side_out, buf, sizeof(buf)), 100);
    assert_int_equal(read(g.side_out, buf, sizeof(buf)), 0);
    rig_close(&g);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_wsbridge_both_ways_slow_readers),
        cmocka_unit_test(test_wsbridge_fd_eof_becomes_close),
        cmocka_unit_test(test_wsbridge_close_becomes_fd_eof),
        cmocka_unit_test(test_wsbridge_out_gone_becomes_close),
        cmocka_unit_test(test_wsbridge_stop),
        cmocka_unit_test(test_wsbridge_run_returns),
    };

    signal(SIGPIPE, SIG_IGN);
    return cmocka_run_group_tests(tests, NULL, NULL);
}
