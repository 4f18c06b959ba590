/*
 * The pure halves of `limits:`: client addresses and CIDRs (clientaddr.c),
 * X-Forwarded-For with trusted proxies, token buckets and their bounded table
 * (ratelimit.c), and the per-address connection table with its deadline
 * sweep (conntab.c). Time is passed in, so every boundary is tested exactly.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <cmocka.h>

#include "clientaddr.h"
#include "conntab.h"
#include "err.h"
#include "ratelimit.h"

#define N(a) (sizeof(a) / sizeof((a)[0]))

static struct caddr
A(const char *s)
{
    struct caddr a;

    assert_int_equal(clientaddr_parse(s, &a), 0);
    return a;
}

static void
test_addr_parse_format(void **state)
{
    static const struct {
        const char *in, *out; /* out NULL: invalid */
    } cases[] = {
        {"192.0.2.1", "192.0.2.1"},
        {"127.0.0.2", "127.0.0.2"},
        {"::1", "::1"},
        {"2001:db8::1", "2001:db8::1"},
        {"::ffff:10.1.2.3", "10.1.2.3"}, /* v4-mapped is the same client as 10.1.2.3 */
        {"", NULL},
        {"1.2.3", NULL},
        {"256.1.1.1", NULL},
        {"1.2.3.4:80", NULL},
        {"[::1]", NULL},
        {"example.com", NULL},
        {" 1.2.3.4", NULL},
    };
    size_t i;
    (void)state;

    for (i = 0; i < N(cases); i++) {
        struct caddr a;
        char s[CLIENTADDR_STRLEN];
        int r = clientaddr_parse(cases[i].in, &a);

        if (cases[i].out == NULL) {
            assert_int_equal(r, ERR_INVALID);
            continue;
        }
        assert_int_equal(r, 0);
        clientaddr_format(&a, s);
        assert_string_equal(s, cases[i].out);
    }
    {
        struct caddr m = A("::ffff:10.1.2.3"), v4 = A("10.1.2.3"), other = A("10.1.2.4");

        assert_true(clientaddr_eq(&m, &v4));
        assert_int_equal(clientaddr_hash(&m), clientaddr_hash(&v4));
        assert_false(clientaddr_eq(&v4, &other));
    }
    {
        /* the limits count an IPv6 client by its /64, an IPv4 client by its address */
        struct caddr a = A("2001:db8:1:2:aaaa::1"), b = A("2001:db8:1:2:bbbb::2");
        struct caddr c = A("2001:db8:1:3::1"), k1, k2, k3, v4 = A("192.0.2.1"), kv4;

        k1 = clientaddr_key(&a);
        k2 = clientaddr_key(&b);
        k3 = clientaddr_key(&c);
        kv4 = clientaddr_key(&v4);
        assert_true(clientaddr_eq(&k1, &k2));
        assert_false(clientaddr_eq(&k1, &k3));
        assert_true(clientaddr_eq(&kv4, &v4));
    }
}

static void
test_addr_from_sockaddr(void **state)
{
    struct sockaddr_in s4 = {.sin_family = AF_INET};
    struct sockaddr_in6 s6 = {.sin6_family = AF_INET6};
    struct sockaddr un = {.sa_family = AF_UNIX};
    struct caddr a, b;
    (void)state;

    inet_pton(AF_INET, "198.51.100.7", &s4.sin_addr);
    assert_int_equal(clientaddr_from_sockaddr((struct sockaddr *)&s4, &a), 0);
    b = A("198.51.100.7");
    assert_true(clientaddr_eq(&a, &b));
    inet_pton(AF_INET6, "2001:db8::7", &s6.sin6_addr);
    assert_int_equal(clientaddr_from_sockaddr((struct sockaddr *)&s6, &a), 0);
    b = A("2001:db8::7");
    assert_true(clientaddr_eq(&a, &b));
    assert_int_equal(clientaddr_from_sockaddr(&un, &a), ERR_INVALID);
    assert_int_equal(clientaddr_from_sockaddr(NULL, &a), ERR_INVALID);
}

static void
test_cidr(void **state)
{
    static const struct {
        const char *cidr, *addr;
        int want; /* 1 in, 0 out, -1 the CIDR is invalid */
    } cases[] = {
        {"10.0.0.0/8", "10.255.1.2", 1},
        {"10.0.0.0/8", "11.0.0.0", 0},
        {"10.0.0.0/8", "9.255.255.255", 0},
        {"10.1.2.3/8", "10.9.9.9", 1}, /* host bits are ignored */
        {"192.168.1.0/25", "192.168.1.127", 1},
        {"192.168.1.0/25", "192.168.1.128", 0},
        {"127.0.0.1", "127.0.0.1", 1},
        {"127.0.0.1", "127.0.0.2", 0},
        {"127.0.0.1/32", "127.0.0.1", 1},
        {"0.0.0.0/0", "203.0.113.9", 1},
        {"0.0.0.0/0", "2001:db8::1", 0}, /* an IPv4 /0 covers IPv4 only */
        {"::/0", "2001:db8::1", 1},
        {"::/0", "203.0.113.9", 1},
        {"2001:db8::/32", "2001:db8:ffff::1", 1},
        {"2001:db8::/32", "2001:db9::1", 0},
        {"2001:db8::/33", "2001:db8:8000::", 0},
        {"2001:db8::/33", "2001:db8:7fff::", 1},
        {"::1", "::1", 1},
        {"10.0.0.0/33", "10.0.0.1", -1},
        {"2001:db8::/129", "2001:db8::", -1},
        {"10.0.0.0/", "10.0.0.1", -1},
        {"10.0.0.0/-1", "10.0.0.1", -1},
        {"10.0.0.0/8x", "10.0.0.1", -1},
        {"/8", "10.0.0.1", -1},
        {"garbage", "10.0.0.1", -1},
    };
    size_t i;
    (void)state;

    for (i = 0; i < N(cases); i++) {
        struct cidr c;
        struct caddr a = A(cases[i].addr);
        int r = clientaddr_cidr_parse(cases[i].cidr, &c);

        if (cases[i].want < 0) {
            assert_int_equal(r, ERR_INVALID);
            continue;
        }
        assert_int_equal(r, 0);
        if (clientaddr_in_cidr(&a, &c) != cases[i].want)
            fail_msg("%s in %s: want %d", cases[i].addr, cases[i].cidr, cases[i].want);
    }
}

static void
test_xff_pick(void **state)
{
    static const char *const trusted_s[] = {"127.0.0.1", "10.0.0.0/8", "2001:db8::/32"};
    static const struct {
        const char *peer, *xff, *want;
    } cases[] = {
        /* an untrusted peer is the client, whatever it writes */
        {"203.0.113.5", "198.51.100.1", "203.0.113.5"},
        {"203.0.113.5", NULL, "203.0.113.5"},
        /* a trusted peer without the header is the client */
        {"127.0.0.1", NULL, "127.0.0.1"},
        /* the right-most untrusted entry, not the left-most the client wrote */
        {"127.0.0.1", "198.51.100.1", "198.51.100.1"},
        {"127.0.0.1", "6.6.6.6, 198.51.100.1", "198.51.100.1"},
        {"127.0.0.1", "6.6.6.6,198.51.100.1, 10.0.0.5", "198.51.100.1"},
        {"10.1.1.1", "6.6.6.6, 198.51.100.1, 10.0.0.5, 127.0.0.1", "198.51.100.1"},
        /* every hop trusted: the left-most is the client */
        {"127.0.0.1", "10.0.0.7, 10.0.0.5", "10.0.0.7"},
        /* garbage stops the walk at the last trusted hop */
        {"127.0.0.1", "198.51.100.1, unknown", "127.0.0.1"},
        {"127.0.0.1", "198.51.100.1, unknown, 10.0.0.5", "10.0.0.5"},
        {"127.0.0.1", "", "127.0.0.1"},
        {"127.0.0.1", " , ", "127.0.0.1"},
        /* ports and brackets some proxies add */
        {"127.0.0.1", "198.51.100.1:4711", "198.51.100.1"},
        {"127.0.0.1", "[2001:db9::1]:443", "2001:db9::1"},
        {"127.0.0.1", "[2001:db9::1]", "2001:db9::1"},
        {"127.0.0.1", "2001:db9::1", "2001:db9::1"},
        {"127.0.0.1", "[2001:db9::1]x", "127.0.0.1"},
        /* IPv6 peers and trusted IPv6 ranges */
        {"2001:db8::9", "192.0.2.44", "192.0.2.44"},
        {"2001:db8::9", "192.0.2.44, 2001:db8::1", "192.0.2.44"},
    };
    struct cidr trusted[N(trusted_s)];
    size_t i;
    (void)state;

    for (i = 0; i < N(trusted_s); i++)
        assert_int_equal(clientaddr_cidr_parse(trusted_s[i], &trusted[i]), 0);
    for (i = 0; i < N(cases); i++) {
        struct caddr peer = A(cases[i].peer), got;
        char s[CLIENTADDR_STRLEN];

        clientaddr_pick(&peer, cases[i].xff, trusted, N(trusted), &got);
        clientaddr_format(&got, s);
        if (strcmp(s, cases[i].want) != 0)
            fail_msg("peer %s, X-Forwarded-For \"%s\": got %s, want %s", cases[i].peer,
                     cases[i].xff ? cases[i].xff : "(none)", s, cases[i].want);
    }
    {
        /* no trusted proxies at all: the header is never read */
        struct caddr peer = A("127.0.0.1"), got, want = A("127.0.0.1");

        clientaddr_pick(&peer, "198.51.100.1", NULL, 0, &got);
        assert_true(clientaddr_eq(&got, &want));
    }
}

static void
test_bucket(void **state)
{
    struct ratelimit *rl = ratelimit_new(2, 3, 16); /* 2/s, burst 3 */
    struct caddr a = A("192.0.2.1"), b = A("192.0.2.2");
    int64_t retry = -1;
    int i;
    (void)state;

    /* the burst, then empty */
    for (i = 0; i < 3; i++)
        assert_int_equal(ratelimit_take(rl, &a, 1000, &retry), 0);
    assert_int_equal(ratelimit_take(rl, &a, 1000, &retry), ERR_TOO_MANY);
    assert_in_range(retry, 500, 501); /* one token every 500 ms */
    /* another address is not affected */
    assert_int_equal(ratelimit_take(rl, &b, 1000, NULL), 0);
    /* 499 ms later: still empty; at 500 ms one token */
    assert_int_equal(ratelimit_take(rl, &a, 1499, &retry), ERR_TOO_MANY);
    assert_in_range(retry, 1, 2);
    assert_int_equal(ratelimit_take(rl, &a, 1500, &retry), 0);
    assert_int_equal(ratelimit_take(rl, &a, 1500, &retry), ERR_TOO_MANY);
    /* a long pause refills only up to the burst */
    for (i = 0; i < 3; i++)
        assert_int_equal(ratelimit_take(rl, &a, 100000, NULL), 0);
    assert_int_equal(ratelimit_take(rl, &a, 100000, NULL), ERR_TOO_MANY);
    /* time going backwards adds nothing */
    assert_int_equal(ratelimit_take(rl, &a, 50000, NULL), ERR_TOO_MANY);
    ratelimit_free(rl);

    /* rate 0: no limit */
    rl = ratelimit_new(0, 1, 4);
    for (i = 0; i < 1000; i++)
        assert_int_equal(ratelimit_take(rl, &a, 0, NULL), 0);
    assert_int_equal(ratelimit_count(rl), 0);
    ratelimit_free(rl);
    ratelimit_free(NULL);
}

static void
test_bucket_table_bounded(void **state)
{
    struct ratelimit *rl = ratelimit_new(1, 2, 4); /* 4 addresses at most */
    struct caddr flood = A("192.0.2.100");
    char s[32];
    int i;
    (void)state;

    /* an address that emptied its bucket */
    assert_int_equal(ratelimit_take(rl, &flood, 0, NULL), 0);
    assert_int_equal(ratelimit_take(rl, &flood, 0, NULL), 0);
    assert_int_equal(ratelimit_take(rl, &flood, 0, NULL), ERR_TOO_MANY);
    /* many other addresses pass through: the table never holds more than 4 */
    for (i = 0; i < 1000; i++) {
        struct caddr a;

        snprintf(s, sizeof(s), "10.0.%d.%d", i / 256, i % 256);
        a = A(s);
        assert_int_equal(ratelimit_take(rl, &a, 10 + i, NULL), 0);
        assert_true(ratelimit_count(rl) <= 4);
    }
    assert_true(ratelimit_evictions(rl) >= 996);
    ratelimit_free(rl);

    /* full buckets go first: a recent, empty bucket survives a new address */
    rl = ratelimit_new(1, 2, 2);
    {
        struct caddr idle = A("192.0.2.1"), busy = A("192.0.2.2"), fresh = A("192.0.2.3");

        assert_int_equal(ratelimit_take(rl, &idle, 0, NULL), 0);    /* idle: refills by 5000 */
        assert_int_equal(ratelimit_take(rl, &busy, 4999, NULL), 0);
        assert_int_equal(ratelimit_take(rl, &busy, 4999, NULL), 0);
        assert_int_equal(ratelimit_take(rl, &fresh, 5000, NULL), 0); /* evicts idle, not busy */
        assert_int_equal(ratelimit_take(rl, &busy, 5000, NULL), ERR_TOO_MANY);
        assert_int_equal(ratelimit_evictions(rl), 1);
    }
    ratelimit_free(rl);
}

static void
sweep_note(struct conn_rec *rec, void *arg)
{
    int *fds = arg;

    fds[rec->fd] = 1;
}

static void
test_conntab_counts(void **state)
{
    struct conntab *t = conntab_new();
    struct conn_rec r[5];
    struct caddr x = A("127.0.0.1"), y = A("127.0.0.2");
    size_t i;
    (void)state;

    memset(r, 0, sizeof(r));
    for (i = 0; i < 5; i++) {
        r[i].key = i < 3 ? x : y;
        r[i].capped = i != 4; /* r[4]: a trusted proxy, never counted */
        r[i].fd = (int)i;
        conntab_add(t, &r[i]);
    }
    assert_int_equal(conntab_size(t), 5);
    assert_int_equal(conntab_count(t, &x), 3);
    assert_int_equal(conntab_count(t, &y), 1);
    conntab_del(t, &r[1]);
    conntab_del(t, &r[4]);
    assert_int_equal(conntab_count(t, &x), 2);
    assert_int_equal(conntab_count(t, &y), 1);
    conntab_del(t, &r[3]);
    assert_int_equal(conntab_count(t, &y), 0);
    conntab_del(t, &r[0]);
    conntab_del(t, &r[2]);
    assert_int_equal(conntab_count(t, &x), 0);
    assert_int_equal(conntab_size(t), 0);
    /* a freed count comes back from zero */
    conntab_add(t, &r[0]);
    assert_int_equal(conntab_count(t, &x), 1);
    conntab_del(t, &r[0]);
    conntab_free(t);
    conntab_free(NULL);
}

static void
test_conntab_sweep(void **state)
{
    struct conntab *t = conntab_new();
    struct conn_rec r[4];
    int hit[4] = {0};
    size_t i;
    (void)state;

    memset(r, 0, sizeof(r));
    for (i = 0; i < 4; i++) {
        r[i].fd = (int)i;
        r[i].key = A("127.0.0.1");
        conntab_add(t, &r[i]);
    }
    conntab_phase(&r[0], CONN_RECEIVING, 1000); /* slowloris: headers never end */
    conntab_phase(&r[1], CONN_HANDLING, 0);     /* a long request being answered */
    conntab_phase(&r[2], CONN_IDLE, 1000);      /* kept alive between requests */
    conntab_phase(&r[3], CONN_RECEIVING, 5000); /* a kept-alive connection's next request */
    /* at the deadline exactly nothing is due */
    assert_int_equal(conntab_sweep(t, 3000, 2000, 60000, sweep_note, hit), 0);
    assert_int_equal(conntab_sweep(t, 3001, 2000, 60000, sweep_note, hit), 1);
    assert_int_equal(hit[0], 1);
    /* once swept, never again */
    assert_int_equal(conntab_sweep(t, 4000, 2000, 60000, sweep_note, hit), 0);
    /* the next request's deadline counts from its own start */
    assert_int_equal(conntab_sweep(t, 7000, 2000, 60000, sweep_note, hit), 0);
    assert_int_equal(conntab_sweep(t, 7001, 2000, 60000, sweep_note, hit), 1);
    assert_int_equal(hit[3], 1);
    /* idle: the idle timeout, not the request deadline */
    assert_int_equal(conntab_sweep(t, 61000, 2000, 60000, sweep_note, hit), 0);
    assert_int_equal(conntab_sweep(t, 61001, 2000, 60000, sweep_note, hit), 1);
    assert_int_equal(hit[2], 1);
    /* handling is never swept; a limit of 0 is none */
    assert_int_equal(conntab_sweep(t, INT64_MAX / 2, 2000, 60000, sweep_note, hit), 0);
    assert_int_equal(hit[1], 0);
    r[1].swept = 0;
    conntab_phase(&r[1], CONN_RECEIVING, 0);
    assert_int_equal(conntab_sweep(t, INT64_MAX / 2, 0, 0, sweep_note, hit), 0);
    for (i = 0; i < 4; i++)
        conntab_del(t, &r[i]);
    conntab_free(t);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_addr_parse_format), cmocka_unit_test(test_addr_from_sockaddr),
        cmocka_unit_test(test_cidr),              cmocka_unit_test(test_xff_pick),
        cmocka_unit_test(test_bucket),            cmocka_unit_test(test_bucket_table_bounded),
        cmocka_unit_test(test_conntab_counts),    cmocka_unit_test(test_conntab_sweep),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
