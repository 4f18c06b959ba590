/*
 * backend/server/relay.c and relay_splice.c with fake upgraded sockets: each
 * side is a socketpair whose server end goes to relay_run_participant/
 * relay_run_agent (in threads, as http.c would call them) and whose other end
 * is spoken by a wslay client peer (ws_testpeer.h). Both files are included
 * with their timers turned into variables: the production values by default,
 * so that a loaded machine cannot time a pair out while a test sets it up,
 * and short ones in the tests of the timers themselves, so they run quickly.
 * upgraded_close() is a stub here (the real one lives in http.c).
 *
 * RELAY_TEST_MB sets the bulk size per direction (default 50).
 */
#include <pthread.h>
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include "relay.h"
static int64_t test_dial_ms, test_ping_ms, test_idle_ms;
#undef RELAY_DIAL_TIMEOUT_MS
#define RELAY_DIAL_TIMEOUT_MS test_dial_ms
#define RELAY_PING_MS test_ping_ms
#define RELAY_IDLE_MS test_idle_ms
#include "../../backend/server/relay.c"
#include "../../backend/server/relay_splice.c"

#include "ws_testpeer.h"

static _Atomic int n_upgraded_closed;

/* Before each test (no relay thread runs then): the production timers. */
static int
timers_default(void **state)
{
    (void)state;
    test_dial_ms = 10000;
    test_ping_ms = 30000;
    test_idle_ms = 90000;
    return 0;
}

/* For the tests of the dial timeout. */
static void
timers_short_dial(void)
{
    test_dial_ms = 400;
}

/*
 * For the test of pings and idle closes. Timers are what is tested here, so
 * wall-clock waits are right; the idle limit is ten pings long so that a
 * thread starved for a second on a loaded machine is not taken for silence.
 */
static void
timers_short_idle(void)
{
    test_ping_ms = 300;
    test_idle_ms = 3000;
}

void
upgraded_close(struct upgraded *u)
{
    close(u->fd);
    free(u->extra);
    free(u);
    atomic_fetch_add(&n_upgraded_closed, 1);
}

struct runner {
    struct relay *rl;
    char id[64];
    struct upgraded *u;
    int agent;
    pthread_t th;
    _Atomic int done;
};

static void *
runner_main(void *arg)
{
    struct runner *r = arg;

    if (r->agent)
        relay_run_agent(r->rl, r->id, r->u);
    else
        relay_run_participant(r->rl, r->id, r->u);
    r->done = 1;
    return NULL;
}

/* Starts a relay_run_* thread on a fresh socketpair; *peer_fd gets the client end. */
static struct runner *
run_side(struct relay *rl, const char *id, int agent, int *peer_fd, const void *extra,
         size_t extra_len)
{
    struct runner *r = calloc(1, sizeof(*r));
    int sv[2];

    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
    fcntl(sv[0], F_SETFL, O_NONBLOCK);
    r->rl = rl;
    snprintf(r->id, sizeof(r->id), "%s", id);
    r->agent = agent;
    r->u = calloc(1, sizeof(*r->u));
    r->u->fd = sv[0];
    if (extra_len > 0) {
        r->u->extra = malloc(extra_len);
        memcpy(r->u->extra, extra, extra_len);
        r->u->extra_len = extra_len;
    }
    *peer_fd = sv[1];
    assert_int_equal(pthread_create(&r->th, NULL, runner_main, r), 0);
    return r;
}

static void
join_side(struct runner *r)
{
    pthread_join(r->th, NULL);
    free(r);
}

/* A spliced pair seen from the two clients. */
struct duo {
    struct relay *rl;
    struct runner *rp, *ra;
    struct peer p, a;
};

static void
duo_open(struct duo *d, struct relay *rl, const char *id, const char *session, const char *user)
{
    int pfd, afd;

    memset(d, 0, sizeof(*d));
    d->rl = rl;
    assert_int_equal(relay_expect(rl, id, session, "gh/acme/web/1-1", user, 8), 0);
    d->rp = run_side(rl, id, 0, &pfd, NULL, 0);
    peer_init(&d->p, pfd, 2); /* the participant receives the agent's pattern (seed 2) */
    assert_int_equal(relay_pending_for_agent(rl, id, "gh/acme/web/1-1"), 1);
    d->ra = run_side(rl, id, 1, &afd, NULL, 0);
    peer_init(&d->a, afd, 1);
}

static void
duo_join(struct duo *d)
{
    join_side(d->rp);
    join_side(d->ra);
    peer_free(&d->p);
    peer_free(&d->a);
}

static int
duo_closed(void *arg)
{
    struct duo *d = arg;

    return d->p.got_close && d->a.got_close && d->rp->done && d->ra->done;
}

static int
duo_one_msg_each(void *arg)
{
    struct duo *d = arg;

    return d->p.n_msgs >= 1 && d->a.n_msgs >= 1;
}

/* The agent has everything the participant sent so far. */
static int
duo_a_got_all(void *arg)
{
    struct duo *d = arg;

    return d->a.rx_bytes >= d->p.tx_bytes;
}

static int
duo_a_got_msg(void *arg)
{
    struct duo *d = arg;

    return d->a.n_msgs >= 1;
}

static int
run_duo(struct duo *d, int (*done)(void *), int timeout_ms)
{
    struct peer *ps[2] = {&d->p, &d->a};

    return peers_run(ps, 2, done, d, timeout_ms);
}

/* ------------------------------------------------------------------ tests */

static void
test_bulk_both_ways(void **state)
{
    const char *mb = getenv("RELAY_TEST_MB");
    uint64_t total = (uint64_t)(mb ? strtoul(mb, NULL, 10) : 50) << 20;
    struct relay *rl = relay_new();
    struct relay_stats st;
    struct duo d;
    int64_t t0, end;
    int closed0 = n_upgraded_closed;

    (void)state;
    duo_open(&d, rl, "c-bulk", "ds-bulk", "alice");
    t0 = peer_now_ms();
    end = t0 + 600000;
    while (d.p.rx_bytes < total || d.a.rx_bytes < total) {
        struct peer *ps[2] = {&d.p, &d.a};
        struct pollfd pf[2];

        assert_true(peer_now_ms() < end);
        /* Keep about 1 MiB queued at each client, in 64 KiB messages. */
        for (int i = 0; i < 2; i++) {
            while (ps[i]->tx_bytes < total &&
                   wslay_event_get_queued_msg_length(ps[i]->ctx) < (1u << 20)) {
                uint64_t left = total - ps[i]->tx_bytes;

                peer_send_pattern(ps[i], i == 0 ? 1 : 2, left < 65536 ? left : 65536);
            }
            pf[i] = (struct pollfd){ps[i]->fd, peer_events(ps[i]), 0};
        }
        assert_true(poll(pf, 2, 1000) >= 0);
        for (int i = 0; i < 2; i++)
            assert_int_equal(peer_pump(ps[i], pf[i].revents), 0);
    }
    print_message("bulk: %llu MiB each way in %lld ms\n", (unsigned long long)(total >> 20),
                  (long long)(peer_now_ms() - t0));
    assert_int_equal(d.p.rx_bytes, total);
    assert_int_equal(d.a.rx_bytes, total);
    assert_int_equal(d.p.rx_bad, 0);
    assert_int_equal(d.a.rx_bad, 0);
    relay_get_stats(rl, &st);
    assert_int_equal(st.conns_active, 1);
    assert_int_equal(st.conns_pending, 0);
    assert_int_equal(st.bytes_up, total);
    assert_int_equal(st.bytes_down, total);

    /* The participant closes: the agent gets that close, both handshakes finish. */
    assert_int_equal(wslay_event_queue_close(d.p.ctx, 1000, (const uint8_t *)"bye", 3), 0);
    assert_int_equal(run_duo(&d, duo_closed, 5000), 0);
    assert_int_equal(d.a.close_code, 1000);
    assert_string_equal(d.a.close_reason, "bye");
    assert_int_equal(d.p.close_code, 1000);
    duo_join(&d);
    assert_int_equal(n_upgraded_closed - closed0, 2);
    relay_get_stats(rl, &st);
    assert_int_equal(st.conns_active, 0);
    assert_int_equal(st.conns_total, 1);
    relay_free(rl);
}

static void
test_small_messages_and_fragments(void **state)
{
    struct relay *rl = relay_new();
    struct duo d;
    uint8_t f[64];
    static const uint8_t key[4] = {9, 8, 7, 6};
    int pfd, afd;

    (void)state;
    /* The participant's first frame arrives with the handshake (extra bytes). */
    memset(&d, 0, sizeof(d));
    d.rl = rl;
    assert_int_equal(relay_expect(rl, "c-x", "ds-x", "ag", "alice", 8), 0);
    f[0] = 0x82;
    f[1] = 0x80 | 10;
    memcpy(f + 2, key, 4);
    pattern_fill(f + 6, 10, 1, 0);
    for (int i = 0; i < 10; i++)
        f[6 + i] ^= key[i & 3];
    d.rp = run_side(rl, "c-x", 0, &pfd, f, 16);
    peer_init(&d.p, pfd, 2);
    d.p.tx_bytes = 10;
    d.ra = run_side(rl, "c-x", 1, &afd, NULL, 0);
    peer_init(&d.a, afd, 1);

    /* Keystrokes both ways, then a fragmented message. */
    for (int i = 0; i < 200; i++) {
        peer_send_pattern(&d.p, 1, 1);
        peer_send_pattern(&d.a, 2, (size_t)(1 + i % 3));
    }
    assert_int_equal(run_duo(&d, duo_one_msg_each, 5000), 0);
    while (d.a.rx_bytes < d.p.tx_bytes || d.p.rx_bytes < d.a.tx_bytes)
        if (run_duo(&d, duo_closed, 100) == 0)
            break;
    assert_int_equal(d.a.rx_bytes, d.p.tx_bytes);
    assert_int_equal(d.p.rx_bytes, d.a.tx_bytes);
    assert_int_equal(d.a.n_msgs, 201);
    assert_int_equal(d.a.rx_bad + d.p.rx_bad, 0);

    /* A ping is answered by the relay itself. */
    {
        struct wslay_event_msg ping = {WSLAY_PING, (const uint8_t *)"p", 1};

        assert_int_equal(wslay_event_queue_msg(d.p.ctx, &ping), 0);
        (void)run_duo(&d, duo_closed, 200);
        assert_int_equal(d.p.n_pongs, 1);
    }

    relay_close(rl, "ds-x", NULL, "terminated by carol");
    assert_int_equal(run_duo(&d, duo_closed, 5000), 0);
    assert_int_equal(d.p.close_code, 1000);
    assert_int_equal(d.a.close_code, 1000);
    assert_string_equal(d.p.close_reason, "terminated by carol");
    assert_string_equal(d.a.close_reason, "terminated by carol");
    duo_join(&d);
    relay_free(rl);
}

static ssize_t
frag_read(wslay_event_context_ptr ctx, uint8_t *buf, size_t len,
          const union wslay_event_msg_source *src, int *eof, void *ud)
{
    int *left = src->data;

    (void)ctx;
    (void)ud;
    (void)len;
    /* Three frames of 1000 pattern bytes each (seed 1, offsets continue). */
    pattern_fill(buf, 1000, 1, (uint64_t)(3 - *left) * 1000);
    if (--*left == 0)
        *eof = 1;
    return 1000;
}

static int
agent_got_msg(void *arg)
{
    return ((struct duo *)arg)->a.n_msgs >= 1;
}

static void
test_fragmented(void **state)
{
    struct relay *rl = relay_new();
    struct duo d;
    int left = 3;
    struct wslay_event_fragmented_msg m = {WSLAY_BINARY_FRAME, {.data = &left}, frag_read};

    (void)state;
    duo_open(&d, rl, "c-f", "ds-f", "alice");
    assert_int_equal(wslay_event_queue_fragmented_msg(d.p.ctx, &m), 0);
    assert_int_equal(run_duo(&d, agent_got_msg, 5000), 0);
    assert_int_equal(d.a.n_msgs, 1);
    assert_int_equal(d.a.rx_bytes, 3000);
    assert_int_equal(d.a.rx_bad, 0);
    assert_int_equal(wslay_event_queue_close(d.a.ctx, 1000, NULL, 0), 0);
    assert_int_equal(run_duo(&d, duo_closed, 5000), 0);
    assert_int_equal(d.p.close_code, 1000);
    duo_join(&d);
    relay_free(rl);
}

static void
test_cap_and_ids(void **state)
{
    struct relay *rl = relay_new();
    struct relay_stats st;

    (void)state;
    timers_short_dial();
    assert_int_equal(relay_expect(rl, "a1", "ds-cap", "ag", "alice", 3), 0);
    assert_int_equal(relay_expect(rl, "a2", "ds-cap", "ag", "alice", 3), 0);
    assert_int_equal(relay_expect(rl, "a2", "ds-other", "ag", "alice", 3), ERR_CONFLICT);
    assert_int_equal(relay_expect(rl, "a3", "ds-cap", "ag", "bob", 3), 0);
    assert_int_equal(relay_expect(rl, "a4", "ds-cap", "ag", "bob", 3), ERR_TOO_MANY);
    assert_int_equal(relay_expect(rl, "b1", "ds-other", "ag", "bob", 3), 0);
    relay_get_stats(rl, &st);
    assert_int_equal(st.conns_pending, 4);
    assert_int_equal(relay_pending_for_agent(rl, "a1", "ag"), 1);
    assert_int_equal(relay_pending_for_agent(rl, "a1", "other-agent"), 0);
    assert_int_equal(relay_pending_for_agent(rl, "nope", "ag"), 0);
    /* Closing a session drops its unclaimed entries: the cap frees up. */
    relay_close(rl, "ds-cap", "bob", "left");
    assert_int_equal(relay_pending_for_agent(rl, "a3", "ag"), 0);
    assert_int_equal(relay_pending_for_agent(rl, "a1", "ag"), 1);
    assert_int_equal(relay_expect(rl, "a4", "ds-cap", "ag", "bob", 3), 0);
    /* Entries expire after the dial timeout. */
    usleep((RELAY_DIAL_TIMEOUT_MS + 50) * 1000); /* a timer is right: expiry is due at a time */
    assert_int_equal(relay_pending_for_agent(rl, "a1", "ag"), 0);
    assert_int_equal(relay_expect(rl, "a5", "ds-cap", "ag", "bob", 1), 0);
    relay_get_stats(rl, &st);
    assert_int_equal(st.conns_pending, 1);
    relay_free(rl);
}

static int
never_done(void *arg)
{
    (void)arg;
    return 0;
}

static int
peer_closed(void *arg)
{
    return ((struct peer *)arg)->got_close;
}

static void
test_dial_timeout(void **state)
{
    struct relay *rl = relay_new();
    struct relay_stats st;
    struct runner *rp, *ra;
    struct peer p, a;
    struct peer *ps[1];
    int fd, closed0 = n_upgraded_closed;
    int64_t t0 = peer_now_ms();

    (void)state;
    timers_short_dial();
    assert_int_equal(relay_expect(rl, "t1", "ds-t", "ag", "alice", 2), 0);
    rp = run_side(rl, "t1", 0, &fd, NULL, 0);
    peer_init(&p, fd, 0);
    /* ssh speaks first: its banner waits in the socket, unread. */
    peer_send(&p, WSLAY_BINARY_FRAME, "SSH-2.0-OpenSSH_9.2\r\n", 21);
    ps[0] = &p;
    assert_int_equal(peers_run(ps, 1, peer_closed, &p, 5000), 0);
    assert_int_equal(p.close_code, 1011);
    assert_string_equal(p.close_reason, "agent did not answer");
    assert_true(peer_now_ms() - t0 >= RELAY_DIAL_TIMEOUT_MS - 10);
    peer_free(&p); /* hang up first: the relay lingers until we do */
    join_side(rp);
    relay_get_stats(rl, &st);
    assert_int_equal(st.conns_pending, 0);
    assert_int_equal(relay_pending_for_agent(rl, "t1", "ag"), 0);

    /* The agent dials back too late: refused. */
    ra = run_side(rl, "t1", 1, &fd, NULL, 0);
    peer_init(&a, fd, 0);
    ps[0] = &a;
    assert_int_equal(peers_run(ps, 1, peer_closed, &a, 5000), 0);
    assert_int_equal(a.close_code, 1011);
    peer_free(&a);
    join_side(ra);

    /* The agent comes but the participant never does. */
    assert_int_equal(relay_expect(rl, "t2", "ds-t", "ag", "alice", 2), 0);
    ra = run_side(rl, "t2", 1, &fd, NULL, 0);
    peer_init(&a, fd, 0);
    ps[0] = &a;
    assert_int_equal(peers_run(ps, 1, peer_closed, &a, 5000), 0);
    assert_int_equal(a.close_code, 1011);
    assert_string_equal(a.close_reason, "participant did not arrive");
    peer_free(&a);
    join_side(ra);
    assert_int_equal(n_upgraded_closed - closed0, 3);
    relay_get_stats(rl, &st);
    assert_int_equal(st.conns_pending + st.conns_active, 0);
    relay_free(rl);
}

static void *
free_main(void *arg)
{
    relay_free(arg);
    return NULL;
}

static void
test_close_one_user(void **state)
{
    struct relay *rl = relay_new();
    struct duo alice, bob;

    (void)state;
    duo_open(&alice, rl, "u1", "ds-u", "alice");
    duo_open(&bob, rl, "u2", "ds-u", "bob");
    peer_send_pattern(&alice.p, 1, 100);
    peer_send_pattern(&bob.a, 2, 100);
    assert_int_equal(run_duo(&alice, duo_closed, 300), -1);
    assert_int_equal(run_duo(&bob, duo_closed, 300), -1);
    relay_close(rl, "ds-u", "bob", "bob left");
    assert_int_equal(run_duo(&bob, duo_closed, 5000), 0);
    assert_string_equal(bob.p.close_reason, "bob left");
    assert_int_equal(bob.p.rx_bytes, 100);
    duo_join(&bob);
    /* Alice's connection still works. */
    assert_false(alice.p.got_close);
    peer_send_pattern(&alice.p, 1, 100);
    assert_int_equal(run_duo(&alice, duo_a_got_all, 5000), 0);
    assert_int_equal(alice.a.rx_bytes, 200);
    assert_int_equal(alice.a.rx_bad, 0);
    assert_false(alice.a.got_close);
    /* relay_free closes what is left with 1001. */
    {
        struct relay_stats st;

        relay_get_stats(rl, &st);
        assert_int_equal(st.conns_active, 1);
    }
    {
        pthread_t th;

        assert_int_equal(pthread_create(&th, NULL, free_main, rl), 0);
        assert_int_equal(run_duo(&alice, duo_closed, 5000), 0);
        pthread_join(th, NULL);
    }
    assert_int_equal(alice.p.close_code, 1001);
    assert_string_equal(alice.a.close_reason, "server shutting down");
    duo_join(&alice);
}

static int
threads_done(void *arg)
{
    struct duo *d = arg;

    return d->rp->done && d->ra->done;
}

static void
test_participant_vanishes(void **state)
{
    struct relay *rl = relay_new();
    struct duo d;
    struct peer *ps[1];

    (void)state;
    duo_open(&d, rl, "v1", "ds-v", "alice");
    peer_send_pattern(&d.p, 1, 5000);
    assert_int_equal(run_duo(&d, duo_a_got_all, 5000), 0);
    assert_int_equal(d.a.rx_bytes, 5000);
    close(d.p.fd); /* ssh died: no close frame */
    d.p.fd = -1;
    ps[0] = &d.a;
    assert_int_equal(peers_run(ps, 1, peer_closed, &d.a, 5000), 0);
    assert_int_equal(d.a.close_code, 1001);
    assert_string_equal(d.a.close_reason, "participant disconnected");
    assert_int_equal(peers_run(ps, 1, threads_done, &d, 3000), 0);
    duo_join(&d);
    relay_free(rl);
}

/* One raw frame from the participant, then whatever the relay makes of it. */
struct raw_case {
    const char *name;
    uint8_t b[24]; /* header; a masked payload follows when pay_len > 0 */
    size_t hdr_len, pay_len;
    uint16_t want_p, want_a; /* close codes the two sides get; 0: passed on */
    const char *want_reason;
};

/*
 * Header rules (RFC 6455 5.2, 5.5): a broken header closes the participant
 * with 1002 and the reason, and the agent with 1011. A length not in its
 * shortest form has always been passed on, re-encoded (the agent's
 * WebSocket library would drop a connection that sent it).
 */
static void
test_header_rules(void **state)
{
    static const struct raw_case cases[] = {
        {"RSV1", {0xc2, 0x85, 1, 2, 3, 4}, 6, 5, 1002, 1011, "reserved bits set"},
        {"opcode 3", {0x83, 0x85, 1, 2, 3, 4}, 6, 5, 1002, 1011, "unexpected frame opcode"},
        {"opcode 0xB", {0x8b, 0x80, 1, 2, 3, 4}, 6, 0, 1002, 1011, "bad control frame"},
        {"fragmented ping", {0x09, 0x80, 1, 2, 3, 4}, 6, 0, 1002, 1011, "bad control frame"},
        {"ping of 126", {0x89, 0xfe, 0, 126, 1, 2, 3, 4}, 8, 0, 1002, 1011, "bad control frame"},
        {"continuation first", {0x80, 0x85, 1, 2, 3, 4}, 6, 5, 1002, 1011,
         "unexpected frame opcode"},
        {"16-bit length for 5", {0x82, 0xfe, 0, 5, 1, 2, 3, 4}, 8, 5, 0, 0, NULL},
        {"64-bit length for 5", {0x82, 0xff, 0, 0, 0, 0, 0, 0, 0, 5, 1, 2, 3, 4}, 14, 5, 0, 0, NULL},
    };
    struct relay *rl = relay_new();
    (void)state;

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        const struct raw_case *c = &cases[i];
        const uint8_t *key = c->b + c->hdr_len - 4;
        uint8_t f[64];
        char id[16];
        struct duo d;

        snprintf(id, sizeof(id), "h%zu", i);
        memcpy(f, c->b, c->hdr_len);
        pattern_fill(f + c->hdr_len, c->pay_len, 1, 0);
        for (size_t k = 0; k < c->pay_len; k++)
            f[c->hdr_len + k] ^= key[k & 3];
        duo_open(&d, rl, id, "ds-h", "alice");
        assert_int_equal(send(d.p.fd, f, c->hdr_len + c->pay_len, 0),
                         (ssize_t)(c->hdr_len + c->pay_len));
        if (c->want_p != 0) {
            assert_int_equal(run_duo(&d, duo_closed, 5000), 0);
            if (d.p.close_code != c->want_p || d.a.close_code != c->want_a ||
                strcmp(d.p.close_reason, c->want_reason) != 0 || d.a.rx_bytes != 0)
                fail_msg("%s: closes %d/%d \"%s\", %llu bytes through", c->name, d.p.close_code,
                         d.a.close_code, d.p.close_reason, (unsigned long long)d.a.rx_bytes);
        } else {
            d.p.tx_bytes = c->pay_len;
            assert_int_equal(run_duo(&d, duo_a_got_msg, 5000), 0);
            assert_int_equal(d.a.rx_bytes, c->pay_len);
            assert_int_equal(d.a.rx_bad, 0);
            assert_false(d.a.got_close || d.p.got_close);
            relay_close(rl, "ds-h", NULL, "done");
            assert_int_equal(run_duo(&d, duo_closed, 5000), 0);
        }
        duo_join(&d);
    }
    relay_free(rl);
}

static void
test_protocol_errors(void **state)
{
    struct relay *rl = relay_new();
    struct duo d;
    static const uint8_t unmasked[] = {0x82, 0x01, 'x'};

    (void)state;
    /* An unmasked frame from a client is a protocol error. */
    duo_open(&d, rl, "e1", "ds-e", "alice");
    assert_int_equal(send(d.p.fd, unmasked, sizeof(unmasked), 0), 3);
    assert_int_equal(run_duo(&d, duo_closed, 5000), 0);
    assert_int_equal(d.p.close_code, 1002);
    assert_int_equal(d.a.close_code, 1011);
    duo_join(&d);

    /* A message over the limit: 1009 to both. */
    duo_open(&d, rl, "e2", "ds-e", "alice");
    peer_send_pattern(&d.a, 2, RELAY_MAX_MSG + 1);
    assert_int_equal(run_duo(&d, duo_closed, 10000), 0);
    assert_int_equal(d.a.close_code, 1009);
    assert_int_equal(d.p.close_code, 1009);
    assert_int_equal(d.p.rx_bytes, 0);
    duo_join(&d);
    relay_free(rl);
}

static void
test_backpressure(void **state)
{
    struct relay *rl = relay_new();
    struct relay_stats st;
    struct duo d;
    struct peer *ps[1];
    int64_t end;

    (void)state;
    duo_open(&d, rl, "bp", "ds-bp", "alice");
    /* The agent reads nothing while the participant pushes 16 MiB. */
    for (int i = 0; i < 256; i++)
        peer_send_pattern(&d.p, 1, 65536);
    ps[0] = &d.p;
    (void)peers_run(ps, 1, never_done, NULL, 700);
    relay_get_stats(rl, &st);
    /* What left the relay fits in the agent's socket buffer: nothing piles up. */
    assert_true(st.bytes_up < (4u << 20));
    assert_true(wslay_event_get_queued_msg_length(d.p.ctx) > (8u << 20));
    print_message("backpressure: %llu bytes forwarded while the agent slept\n",
                  (unsigned long long)st.bytes_up);
    /* Now the agent reads: everything arrives intact. */
    end = peer_now_ms() + 30000;
    while (d.a.rx_bytes < d.p.tx_bytes && peer_now_ms() < end)
        (void)run_duo(&d, duo_closed, 50);
    assert_int_equal(d.a.rx_bytes, 256 * 65536);
    assert_int_equal(d.a.rx_bad, 0);
    assert_int_equal(wslay_event_queue_close(d.a.ctx, 1000, NULL, 0), 0);
    assert_int_equal(run_duo(&d, duo_closed, 5000), 0);
    duo_join(&d);
    relay_free(rl);
}

static void
test_keepalive_and_idle(void **state)
{
    struct relay *rl = relay_new();
    struct duo d;
    struct peer *ps[1];
    int64_t t0;
    uint8_t *bulk = malloc(256 * 65536);

    (void)state;
    /*
     * The participant's 16 MiB is made before the pair opens: under ASAN on
     * a loaded machine, filling it took longer than the idle limit.
     */
    pattern_fill(bulk, 256 * 65536, 1, 0);
    timers_short_idle();
    duo_open(&d, rl, "k1", "ds-k", "alice");
    /* Both answer pings (wslay does): the pair stays up well past the idle limit. */
    assert_int_equal(run_duo(&d, duo_closed, RELAY_IDLE_MS * 3 / 2), -1);
    assert_true(d.p.n_pings >= 2);
    assert_true(d.a.n_pings >= 2);
    assert_false(d.p.got_close || d.a.got_close);

    /*
     * Held back by flow control is not idle. The agent reads nothing for
     * 1.5 times the idle limit while the participant pushes 16 MiB; the agent
     * stays alive by sending a small frame now and then (written raw, so
     * that its own reads stay stopped). Nobody may be closed.
     */
    assert_int_equal(d.p.tx_bytes, 0);
    for (int i = 0; i < 256; i++)
        peer_send(&d.p, WSLAY_BINARY_FRAME, bulk + (size_t)i * 65536, 65536);
    d.p.tx_bytes = 256 * 65536;
    free(bulk);
    t0 = peer_now_ms();
    ps[0] = &d.p;
    while (peer_now_ms() - t0 < RELAY_IDLE_MS * 3 / 2) {
        uint8_t f[6 + 16];

        f[0] = 0x82;
        f[1] = 0x80 | 16;
        memset(f + 2, 0, 4); /* mask key 0: the payload goes as is */
        pattern_fill(f + 6, 16, 2, d.a.tx_bytes);
        d.a.tx_bytes += 16;
        assert_int_equal(send(d.a.fd, f, sizeof(f), MSG_NOSIGNAL), (ssize_t)sizeof(f));
        (void)peers_run(ps, 1, never_done, NULL, RELAY_PING_MS / 2);
    }
    assert_false(d.p.got_close);
    while (d.a.rx_bytes < d.p.tx_bytes || d.p.rx_bytes < d.a.tx_bytes)
        if (run_duo(&d, duo_closed, 100) == 0)
            break;
    assert_false(d.p.got_close || d.a.got_close);
    assert_int_equal(d.a.rx_bytes, d.p.tx_bytes);
    assert_int_equal(d.p.rx_bytes, d.a.tx_bytes);
    assert_int_equal(d.a.rx_bad + d.p.rx_bad, 0);

    /* The agent goes silent (no pongs, nothing): closed as timed out. */
    t0 = peer_now_ms();
    assert_int_equal(peers_run(ps, 1, peer_closed, &d.p, RELAY_IDLE_MS * 3), 0);
    assert_int_equal(d.p.close_code, 1001);
    assert_string_equal(d.p.close_reason, "agent timed out");
    assert_true(peer_now_ms() - t0 >= RELAY_IDLE_MS / 2);
    peer_free(&d.a); /* gone for good */
    assert_int_equal(peers_run(ps, 1, threads_done, &d, 5000), 0);
    join_side(d.rp);
    join_side(d.ra);
    peer_free(&d.p);
    relay_free(rl);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup(test_cap_and_ids, timers_default),
        cmocka_unit_test_setup(test_small_messages_and_fragments, timers_default),
        cmocka_unit_test_setup(test_fragmented, timers_default),
        cmocka_unit_test_setup(test_dial_timeout, timers_default),
        cmocka_unit_test_setup(test_close_one_user, timers_default),
        cmocka_unit_test_setup(test_participant_vanishes, timers_default),
        cmocka_unit_test_setup(test_protocol_errors, timers_default),
        cmocka_unit_test_setup(test_header_rules, timers_default),
        cmocka_unit_test_setup(test_backpressure, timers_default),
        cmocka_unit_test_setup(test_keepalive_and_idle, timers_default),
        cmocka_unit_test_setup(test_bulk_both_ways, timers_default),
    };
    int failed = cmocka_run_group_tests(tests, NULL, NULL);

    printf("%d passed, %d failed\n", (int)(sizeof(tests) / sizeof(tests[0])) - failed, failed);
    return failed ? 1 : 0;
}
