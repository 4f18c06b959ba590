/*
 * backend/common/ws.c against a second WebSocket implementation: the server
 * side runs over one end of a socketpair with a wslay client peer on the
 * other (ws_testpeer.h); the client side does a real HTTP upgrade against a
 * small server thread on 127.0.0.1.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>
#include <curl/curl.h>

#include "err.h"
#include "ws.h"
#include "ws_testpeer.h"

/* ------------------------------------------------------------ server side */

struct srv {
    struct ws *w;
    int n_msgs;
    int last_op;
    size_t last_len;
    uint64_t total;
    char text[512];
    int echo;
    const uint8_t *expect; /* when set, binary messages must match its start */
    int mismatches;
};

struct pair {
    struct srv s;
    struct peer p;
    int sfd;
};

static void
srv_on_msg(struct ws *w, int op, const uint8_t *m, size_t len, void *ud)
{
    struct srv *s = ud;

    s->n_msgs++;
    s->last_op = op;
    s->last_len = len;
    s->total += len;
    if (op == WS_OP_TEXT) {
        size_t n = len < sizeof(s->text) - 1 ? len : sizeof(s->text) - 1;

        memcpy(s->text, m, n);
        s->text[n] = '\0';
    }
    if (op == WS_OP_BINARY && s->expect != NULL && memcmp(m, s->expect, len) != 0)
        s->mismatches++;
    if (s->echo)
        assert_int_equal(ws_send(w, op, m, len), 0);
}

static void
pair_open(struct pair *pr, size_t max_msg, const void *pre, size_t pre_len, int echo)
{
    int sv[2];

    memset(pr, 0, sizeof(*pr));
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
    fcntl(sv[0], F_SETFL, O_NONBLOCK);
    pr->sfd = sv[0];
    pr->s.echo = echo;
    pr->s.w = ws_server_new(sv[0], pre, pre_len, max_msg, srv_on_msg, &pr->s);
    peer_init(&pr->p, sv[1], 7);
}

static void
pair_close(struct pair *pr)
{
    ws_free(pr->s.w);
    close(pr->sfd);
    peer_free(&pr->p);
}

/* Pumps both ends until done(pr) or the timeout. Returns 0 when done. */
static int
pair_run(struct pair *pr, int (*done)(struct pair *), int timeout_ms)
{
    int64_t end = peer_now_ms() + timeout_ms;

    while (!done(pr)) {
        struct pollfd pf[2] = {
            {ws_alive(pr->s.w) ? ws_fd(pr->s.w) : -1, ws_poll_events(pr->s.w), 0},
            {peer_alive(&pr->p) ? pr->p.fd : -1, peer_events(&pr->p), 0},
        };

        if (peer_now_ms() > end)
            return -1;
        poll(pf, 2, 10);
        if (ws_alive(pr->s.w))
            (void)ws_pump(pr->s.w, pf[0].revents);
        if (peer_alive(&pr->p))
            (void)peer_pump(&pr->p, pf[1].revents);
    }
    return 0;
}

static int
got_one_text(struct pair *pr)
{
    return pr->p.n_text >= 1;
}

static int
got_300k(struct pair *pr)
{
    return pr->p.rx_bytes >= 300000 && pr->p.n_msgs >= 1;
}

static int
got_pong(struct pair *pr)
{
    return pr->p.n_pongs >= 1;
}

static int
peer_got_close(struct pair *pr)
{
    return pr->p.got_close;
}

static int
both_closed(struct pair *pr)
{
    return pr->p.got_close && !ws_alive(pr->s.w) && !peer_alive(&pr->p);
}

static int
srv_got_msg(struct pair *pr)
{
    return pr->s.n_msgs >= 1;
}

static int
never(struct pair *pr)
{
    (void)pr;
    return 0;
}

static void
test_accept_key(void **state)
{
    char out[29];

    (void)state;
    /* RFC 6455 section 1.3 */
    ws_accept_key("dGhlIHNhbXBsZSBub25jZQ==", out);
    assert_string_equal(out, "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
}

static void
test_text_echo(void **state)
{
    struct pair pr;

    (void)state;
    pair_open(&pr, 0, NULL, 0, 1);
    peer_send(&pr.p, WSLAY_TEXT_FRAME, "hello, relay", 12);
    assert_int_equal(pair_run(&pr, got_one_text, 5000), 0);
    assert_string_equal(pr.s.text, "hello, relay");
    assert_int_equal(pr.s.last_op, WS_OP_TEXT);
    assert_string_equal(pr.p.last_text, "hello, relay");
    pair_close(&pr);
}

static void
test_binary_300k(void **state)
{
    struct pair pr;

    (void)state;
    pair_open(&pr, 0, NULL, 0, 1);
    pr.p.seed_rx = 42; /* the echo must follow the pattern we send */
    peer_send_pattern(&pr.p, 42, 300000);
    assert_int_equal(pair_run(&pr, got_300k, 10000), 0);
    assert_int_equal(pr.s.n_msgs, 1);
    assert_int_equal(pr.s.last_op, WS_OP_BINARY);
    assert_int_equal(pr.s.last_len, 300000);
    assert_int_equal(pr.p.rx_bytes, 300000);
    assert_int_equal(pr.p.rx_bad, 0);
    assert_int_equal(pr.p.n_msgs, 1);
    assert_int_equal(ws_queued(pr.s.w), 0);
    pair_close(&pr);
}

static void
test_ping_pong(void **state)
{
    struct pair pr;
    struct wslay_event_msg ping = {WSLAY_PING, (const uint8_t *)"x", 1};
    int64_t before;

    (void)state;
    pair_open(&pr, 0, NULL, 0, 0);
    /* The peer pings: ws.c answers. */
    assert_int_equal(wslay_event_queue_msg(pr.p.ctx, &ping), 0);
    assert_int_equal(pair_run(&pr, got_pong, 5000), 0);
    /* ws.c pings: the peer's pong moves last_rx. */
    usleep(30000); /* a timer is right: the clock must move past the last receive */
    before = peer_now_ms();
    assert_int_equal(ws_ping(pr.s.w), 0);
    (void)pair_run(&pr, never, 200);
    assert_true(ws_last_rx_ms(pr.s.w) >= before);
    assert_int_equal(pr.s.n_msgs, 0); /* control frames are not messages */
    pair_close(&pr);
}

static void
test_oversize_1009(void **state)
{
    struct pair pr;

    (void)state;
    pair_open(&pr, 1000, NULL, 0, 0);
    peer_send_pattern(&pr.p, 1, 2000);
    assert_int_equal(pair_run(&pr, peer_got_close, 5000), 0);
    assert_int_equal(pr.p.close_code, 1009);
    assert_int_equal(pr.s.n_msgs, 0);
    (void)pair_run(&pr, never, 100);
    assert_false(ws_alive(pr.s.w));
    pair_close(&pr);
}

static int
srv_gone(struct pair *pr)
{
    return !ws_alive(pr->s.w);
}

/*
 * A frame whose header breaks RFC 6455 is never delivered, fast path or
 * not, and ends the connection: with a 1002 close, or (a length not in its
 * shortest form, a fragmented or oversized control frame: wslay's frame
 * parser fails on these before it can queue a close) by dropping it. A good
 * frame before it is still delivered.
 */
static void
test_broken_header_1002(void **state)
{
    static const struct {
        const char *name;
        uint8_t b[16];
        size_t n;
        uint16_t want_code; /* 0: dropped without a close */
    } cases[] = {
        {"RSV1 binary", {0xc2, 0x81, 1, 2, 3, 4, 'x'}, 7, 1002},
        {"16-bit length for 1 byte", {0x82, 0xfe, 0, 1, 1, 2, 3, 4, 'x'}, 9, 0},
        {"64-bit length for 1 byte", {0x82, 0xff, 0, 0, 0, 0, 0, 0, 0, 1, 1, 2, 3, 4, 'x'}, 15, 0},
        {"reserved opcode 3", {0x83, 0x81, 1, 2, 3, 4, 'x'}, 7, 1002},
        {"unmasked binary", {0x82, 0x01, 'x'}, 3, 1002},
        {"fragmented ping", {0x09, 0x81, 1, 2, 3, 4, 'x'}, 7, 0},
        {"ping of 126 bytes", {0x89, 0xfe, 0, 126, 1, 2, 3, 4}, 8, 0},
    };
    static const uint8_t good[] = {0x82, 0x81, 0, 0, 0, 0, 'g'};
    (void)state;

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct pair pr;
        uint8_t f[sizeof(good) + 16];

        memcpy(f, good, sizeof(good));
        memcpy(f + sizeof(good), cases[i].b, cases[i].n);
        pair_open(&pr, 0, NULL, 0, 0);
        assert_int_equal(write(pr.p.fd, f, sizeof(good) + cases[i].n),
                         (ssize_t)(sizeof(good) + cases[i].n));
        if (pair_run(&pr, cases[i].want_code ? peer_got_close : srv_gone, 5000) != 0 ||
            pr.p.close_code != cases[i].want_code || pr.s.n_msgs != 1 || pr.s.last_len != 1)
            fail_msg("%s: close %d, %d messages", cases[i].name, pr.p.close_code, pr.s.n_msgs);
        if (cases[i].want_code == 0)
            assert_int_equal(ws_pump(pr.s.w, 0), ERR_SYSTEM); /* gone, not closing */
        pair_close(&pr);
    }
}

static void
test_close_after_data(void **state)
{
    struct pair pr;
    uint8_t *big = malloc(200000);

    (void)state;
    pair_open(&pr, 0, NULL, 0, 0);
    pattern_fill(big, 200000, 7, 0);
    /* Data first, then the close: the close must not overtake the data. */
    assert_int_equal(ws_send(pr.s.w, WS_OP_BINARY, big, 200000), 0);
    ws_close(pr.s.w, 1000, "bye");
    assert_int_equal(ws_send(pr.s.w, WS_OP_TEXT, "late", 4), ERR_CONFLICT);
    assert_int_equal(pair_run(&pr, both_closed, 5000), 0);
    assert_int_equal(pr.p.rx_bytes, 200000);
    assert_int_equal(pr.p.rx_bad, 0);
    assert_int_equal(pr.p.close_code, 1000);
    assert_string_equal(pr.p.close_reason, "bye");
    /* The peer echoed our close. */
    assert_int_equal(ws_peer_close_code(pr.s.w), 1000);
    free(big);
    pair_close(&pr);
}

static void
test_peer_closes(void **state)
{
    struct pair pr;

    (void)state;
    pair_open(&pr, 0, NULL, 0, 0);
    assert_int_equal(wslay_event_queue_close(pr.p.ctx, 1001, (const uint8_t *)"gone", 4), 0);
    assert_int_equal(pair_run(&pr, both_closed, 5000), 0);
    assert_int_equal(ws_peer_close_code(pr.s.w), 1001);
    assert_int_equal(pr.p.close_code, 1001); /* the automatic reply echoes the code */
    assert_int_equal(ws_pump(pr.s.w, 0) == 0 || !ws_alive(pr.s.w), 1);
    pair_close(&pr);
}

static void
test_peer_vanishes(void **state)
{
    struct pair pr;
    struct pollfd pf;

    (void)state;
    pair_open(&pr, 0, NULL, 0, 0);
    close(pr.p.fd); /* no close frame: a plain TCP close */
    pr.p.fd = -1;
    pf = (struct pollfd){ws_fd(pr.s.w), ws_poll_events(pr.s.w), 0};
    assert_int_equal(poll(&pf, 1, 1000), 1);
    assert_int_equal(ws_pump(pr.s.w, pf.revents), ERR_SYSTEM);
    assert_false(ws_alive(pr.s.w));
    assert_int_equal(ws_peer_close_code(pr.s.w), 0);
    pair_close(&pr);
}

/* A masked client frame carrying text, as a browser might send with its handshake. */
static size_t
masked_text_frame(uint8_t *f, const char *text)
{
    size_t n = strlen(text);
    static const uint8_t key[4] = {0x11, 0x22, 0x33, 0x44};

    f[0] = 0x81;
    f[1] = (uint8_t)(0x80 | n);
    memcpy(f + 2, key, 4);
    for (size_t i = 0; i < n; i++)
        f[6 + i] = (uint8_t)text[i] ^ key[i & 3];
    return 6 + n;
}

static void
test_pre_bytes(void **state)
{
    struct pair pr;
    uint8_t f[64];
    size_t n = masked_text_frame(f, "early");

    (void)state;
    pair_open(&pr, 0, f, n, 0);
    assert_int_equal(ws_pump(pr.s.w, 0), 0); /* no POLLIN needed for pre bytes */
    assert_int_equal(pr.s.n_msgs, 1);
    assert_string_equal(pr.s.text, "early");
    pair_close(&pr);
}

static void
test_read_pause(void **state)
{
    struct pair pr;

    (void)state;
    pair_open(&pr, 0, NULL, 0, 0);
    ws_set_read_paused(pr.s.w, 1);
    assert_int_equal(ws_poll_events(pr.s.w) & POLLIN, 0);
    peer_send(&pr.p, WSLAY_TEXT_FRAME, "wait", 4);
    (void)pair_run(&pr, never, 150);
    assert_int_equal(pr.s.n_msgs, 0);
    ws_set_read_paused(pr.s.w, 0);
    assert_int_equal(ws_pump(pr.s.w, 0), 0); /* resuming reads without a POLLIN */
    assert_int_equal(pr.s.n_msgs, 1);
    assert_string_equal(pr.s.text, "wait");
    pair_close(&pr);
}

static void
test_many_small_then_big(void **state)
{
    struct pair pr;

    (void)state;
    /* Keystroke-sized messages interleaved with bulk, both ways through the echo. */
    pair_open(&pr, 0, NULL, 0, 1);
    pr.p.seed_rx = 9;
    for (int i = 0; i < 500; i++)
        peer_send_pattern(&pr.p, 9, (size_t)(1 + i % 7));
    peer_send_pattern(&pr.p, 9, 700000);
    assert_int_equal(pair_run(&pr, srv_got_msg, 5000), 0);
    while (pr.p.rx_bytes < pr.p.tx_bytes)
        if (pair_run(&pr, never, 50) == 0)
            break;
    assert_int_equal(pr.p.rx_bytes, pr.p.tx_bytes);
    assert_int_equal(pr.p.rx_bad, 0);
    assert_int_equal(pr.s.n_msgs, 501);
    pair_close(&pr);
}

static ssize_t
frag_read(wslay_event_context_ptr ctx, uint8_t *buf, size_t len,
          const union wslay_event_msg_source *src, int *eof, void *ud)
{
    struct peer *p = ud;
    int *left = src->data;

    (void)ctx;
    (void)len;
    /* Three 1000-byte frames continuing the pattern stream (seed 5). */
    pattern_fill(buf, 1000, 5, p->tx_bytes);
    p->tx_bytes += 1000;
    if (--*left == 0)
        *eof = 1;
    return 1000;
}

static int
got_all_echoed(struct pair *pr)
{
    return pr->p.rx_bytes >= pr->p.tx_bytes && pr->p.n_text >= 1 && pr->p.n_pongs >= 1;
}

static void
test_fast_path_mix(void **state)
{
    struct pair pr;
    struct wslay_event_msg ping = {WSLAY_PING, (const uint8_t *)"p", 1};
    int left = 3;
    struct wslay_event_fragmented_msg fm = {WSLAY_BINARY_FRAME, {.data = &left}, frag_read};

    (void)state;
    /*
     * Binary frames take the zero-copy path; a ping, a fragmented binary
     * message and a text message in between go through wslay. The echo of
     * every binary byte must come back in order.
     */
    pair_open(&pr, 0, NULL, 0, 1);
    pr.p.seed_rx = 5;
    peer_send_pattern(&pr.p, 5, 10);
    assert_int_equal(wslay_event_queue_msg(pr.p.ctx, &ping), 0);
    peer_send_pattern(&pr.p, 5, 200000); /* grows rbuf */
    assert_int_equal(wslay_event_queue_fragmented_msg(pr.p.ctx, &fm), 0);
    assert_int_equal(pair_run(&pr, srv_got_msg, 5000), 0);
    while (left > 0)
        if (pair_run(&pr, never, 20) == 0)
            break;
    peer_send_pattern(&pr.p, 5, 5);
    peer_send(&pr.p, WSLAY_TEXT_FRAME, "t", 1);
    peer_send_pattern(&pr.p, 5, 70000);
    assert_int_equal(pair_run(&pr, got_all_echoed, 10000), 0);
    assert_int_equal(pr.p.rx_bytes, 10 + 200000 + 3000 + 5 + 70000);
    assert_int_equal(pr.p.rx_bad, 0);
    assert_int_equal(pr.s.n_msgs, 6); /* 5 binary (one of them fragmented) + 1 text */
    assert_int_equal(pr.p.n_pongs, 1);
    assert_string_equal(pr.p.last_text, "t");
    pair_close(&pr);
}

static void
test_pause_binary(void **state)
{
    struct pair pr;
    uint8_t f[64];
    static const uint8_t key[4] = {1, 2, 3, 4};

    (void)state;
    /* A binary frame that came with the handshake, then three more while paused. */
    f[0] = 0x82;
    f[1] = 0x80 | 4;
    memcpy(f + 2, key, 4);
    memcpy(f + 6, "abcd", 4);
    for (int i = 0; i < 4; i++)
        f[6 + i] ^= key[i & 3];
    pair_open(&pr, 0, f, 10, 0);
    ws_set_read_paused(pr.s.w, 1);
    assert_int_equal(ws_pump(pr.s.w, 0), 0);
    assert_int_equal(pr.s.n_msgs, 0);
    for (int i = 0; i < 3; i++)
        peer_send_pattern(&pr.p, 9, 1000);
    (void)pair_run(&pr, never, 150);
    assert_int_equal(pr.s.n_msgs, 0);
    ws_set_read_paused(pr.s.w, 0);
    assert_int_equal(ws_pump(pr.s.w, 0), 0);
    assert_int_equal(pr.s.n_msgs, 4);
    assert_int_equal(pr.s.total, 3004);
    pair_close(&pr);
}

/* ------------------------------------------------------------ client side */

struct httpd {
    int lfd;
    int port;
    int status;       /* 101, or a refusal */
    const char *body; /* for a refusal */
    char request[4096];
    pthread_t th;
};

static void
cli_on_msg(struct ws *w, int op, const uint8_t *m, size_t len, void *ud)
{
    struct srv *s = ud;

    (void)w;
    srv_on_msg(NULL, op, m, len, s);
}

static void
echo_loop(int fd, const char *pre, size_t pre_len)
{
    struct srv s = {.echo = 1};

    s.w = ws_server_new(fd, pre, pre_len, 0, srv_on_msg, &s);
    while (ws_alive(s.w)) {
        struct pollfd p = {fd, ws_poll_events(s.w), 0};

        poll(&p, 1, 1000);
        if (ws_pump(s.w, p.revents) != 0)
            break;
    }
    ws_free(s.w);
}

static void *
httpd_main(void *arg)
{
    struct httpd *h = arg;
    int fd = accept(h->lfd, NULL, NULL);
    size_t have = 0;
    char *end = NULL, key[64] = "", acc[29], resp[1024];

    if (fd < 0)
        return NULL;
    while ((end = memmem(h->request, have, "\r\n\r\n", 4)) == NULL &&
           have < sizeof(h->request) - 1) {
        ssize_t n = recv(fd, h->request + have, sizeof(h->request) - 1 - have, 0);

        if (n <= 0)
            break;
        have += (size_t)n;
    }
    h->request[have] = '\0';
    if (end != NULL) {
        char *k = strcasestr(h->request, "Sec-WebSocket-Key: ");

        if (k != NULL) {
            size_t n = strcspn(k + 19, "\r");

            if (n < sizeof(key)) {
                memcpy(key, k + 19, n);
                key[n] = '\0';
            }
        }
    }
    if (h->status == 101) {
        ws_accept_key(key, acc);
        snprintf(resp, sizeof(resp),
                 "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
                 "Connection: Upgrade\r\nSec-WebSocket-Accept: %s\r\n\r\n",
                 acc);
        send(fd, resp, strlen(resp), MSG_NOSIGNAL);
        fcntl(fd, F_SETFL, O_NONBLOCK);
        echo_loop(fd, end + 4, have - (size_t)(end + 4 - h->request));
    } else {
        snprintf(resp, sizeof(resp),
                 "HTTP/1.1 %d Nope\r\nContent-Type: application/json\r\n"
                 "Content-Length: %zu\r\nConnection: close\r\n\r\n%s",
                 h->status, strlen(h->body), h->body);
        send(fd, resp, strlen(resp), MSG_NOSIGNAL);
    }
    close(fd);
    return NULL;
}

static void
httpd_start(struct httpd *h, int status, const char *body)
{
    struct sockaddr_in a = {.sin_family = AF_INET};
    socklen_t alen = sizeof(a);

    memset(h, 0, sizeof(*h));
    h->status = status;
    h->body = body;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    h->lfd = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(h->lfd >= 0);
    assert_int_equal(bind(h->lfd, (struct sockaddr *)&a, sizeof(a)), 0);
    assert_int_equal(listen(h->lfd, 4), 0);
    assert_int_equal(getsockname(h->lfd, (struct sockaddr *)&a, &alen), 0);
    h->port = ntohs(a.sin_port);
    assert_int_equal(pthread_create(&h->th, NULL, httpd_main, h), 0);
}

static void
httpd_stop(struct httpd *h)
{
    pthread_join(h->th, NULL);
    close(h->lfd);
}

static int
cli_run(struct ws *w, struct srv *s, int want_msgs, int timeout_ms)
{
    int64_t end = peer_now_ms() + timeout_ms;

    while (s->n_msgs < want_msgs && ws_alive(w)) {
        struct pollfd p = {ws_fd(w), ws_poll_events(w), 0};

        if (peer_now_ms() > end)
            return -1;
        poll(&p, 1, 50);
        if (ws_pump(w, p.revents) != 0)
            return -1;
    }
    return s->n_msgs >= want_msgs ? 0 : -1;
}

static void
test_client_upgrade(void **state)
{
    struct httpd h;
    struct srv s = {0};
    struct ws *w = NULL;
    char url[128], err[256];
    uint8_t *big = malloc(500000);
    int64_t end;

    (void)state;
    httpd_start(&h, 101, NULL);
    snprintf(url, sizeof(url), "ws://127.0.0.1:%d/api/v1/debug-sessions/ds-x/connect?a=1", h.port);
    assert_int_equal(
        ws_client_connect(url, "t0ken", NULL, 5000, 0, cli_on_msg, &s, &w, err, sizeof(err)), 0);
    assert_non_null(w);
    assert_non_null(strstr(h.request, "GET /api/v1/debug-sessions/ds-x/connect?a=1 HTTP/1.1\r\n"));
    assert_non_null(strstr(h.request, "\r\nAuthorization: Bearer t0ken\r\n"));
    assert_non_null(strstr(h.request, "\r\nSec-WebSocket-Version: 13\r\n"));
    assert_int_equal(ws_send_text(w, "hi"), 0);
    assert_int_equal(cli_run(w, &s, 1, 5000), 0);
    assert_string_equal(s.text, "hi");
    pattern_fill(big, 500000, 3, 0);
    s.expect = big;
    assert_int_equal(ws_send(w, WS_OP_BINARY, big, 500000), 0);
    assert_int_equal(cli_run(w, &s, 2, 10000), 0);
    assert_int_equal(s.last_len, 500000);
    assert_int_equal(ws_send(w, WS_OP_BINARY, big, 100000), 0); /* fast path both ways */
    assert_int_equal(cli_run(w, &s, 3, 10000), 0);
    assert_int_equal(s.last_len, 100000);
    assert_int_equal(s.mismatches, 0);
    ws_close(w, 1000, "done");
    end = peer_now_ms() + 5000;
    while (ws_alive(w) && peer_now_ms() < end) {
        struct pollfd p = {ws_fd(w), ws_poll_events(w), 0};

        poll(&p, 1, 50);
        if (ws_pump(w, p.revents) != 0)
            break;
    }
    assert_int_equal(ws_peer_close_code(w), 1000);
    ws_free(w);
    httpd_stop(&h);
    free(big);
}

static void
test_client_refused(void **state)
{
    static const struct {
        int status;
        int want;
    } cases[] = {
        {401, ERR_AUTH},     {403, ERR_FORBIDDEN},   {404, ERR_NOT_FOUND},
        {409, ERR_CONFLICT}, {503, ERR_UNAVAILABLE},
    };

    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct httpd h;
        struct ws *w = NULL;
        char url[128], err[256];

        httpd_start(&h, cases[i].status, "{\"error\":\"not a participant\",\"code\":\"X\"}");
        snprintf(url, sizeof(url), "http://127.0.0.1:%d/x", h.port);
        assert_int_equal(
            ws_client_connect(url, NULL, NULL, 5000, 0, cli_on_msg, NULL, &w, err, sizeof(err)),
            cases[i].want);
        assert_null(w);
        assert_string_equal(err, "not a participant");
        assert_null(strstr(h.request, "Authorization"));
        httpd_stop(&h);
    }
}

static void
test_client_unreachable(void **state)
{
    struct sockaddr_in a = {.sin_family = AF_INET};
    socklen_t alen = sizeof(a);
    struct ws *w = NULL;
    char url[128], err[256];
    int fd = socket(AF_INET, SOCK_STREAM, 0);

    (void)state;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof(a)), 0);
    assert_int_equal(getsockname(fd, (struct sockaddr *)&a, &alen), 0);
    close(fd); /* nobody listens on that port now */
    snprintf(url, sizeof(url), "wss://127.0.0.1:%d/x", ntohs(a.sin_port));
    assert_int_equal(
        ws_client_connect(url, NULL, NULL, 2000, 0, cli_on_msg, NULL, &w, err, sizeof(err)),
        ERR_UNAVAILABLE);
    assert_null(w);
    assert_true(strlen(err) > 0);
    assert_int_equal(ws_client_connect("ftp://127.0.0.1/x", NULL, NULL, 2000, 0, cli_on_msg, NULL,
                                       &w, err, sizeof(err)),
                     ERR_INVALID);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_accept_key),          cmocka_unit_test(test_text_echo),
        cmocka_unit_test(test_binary_300k),         cmocka_unit_test(test_ping_pong),
        cmocka_unit_test(test_oversize_1009),       cmocka_unit_test(test_close_after_data),
        cmocka_unit_test(test_peer_closes),         cmocka_unit_test(test_peer_vanishes),
        cmocka_unit_test(test_pre_bytes),           cmocka_unit_test(test_read_pause),
        cmocka_unit_test(test_many_small_then_big), cmocka_unit_test(test_fast_path_mix),
        cmocka_unit_test(test_pause_binary),        cmocka_unit_test(test_client_upgrade),
        cmocka_unit_test(test_client_refused),      cmocka_unit_test(test_client_unreachable),
        cmocka_unit_test(test_broken_header_1002),
    };
    int failed;

    curl_global_init(CURL_GLOBAL_DEFAULT);
    failed = cmocka_run_group_tests(tests, NULL, NULL);
    printf("%d passed, %d failed\n", (int)(sizeof(tests) / sizeof(tests[0])) - failed, failed);
    curl_global_cleanup();
    return failed ? 1 : 0;
}
