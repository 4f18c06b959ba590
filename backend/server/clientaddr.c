/*
 * PURE: client addresses, CIDRs and X-Forwarded-For (see clientaddr.h). No
 * I/O: inet_pton/inet_ntop are plain conversions.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>

#include "clientaddr.h"
#include "err.h"
#include "util.h"

#define XFF_MAX_HOPS 32 /* entries read from the right; more are not believed */

static const uint8_t v4_mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};

static int is_v4(const struct caddr *a);
static int parse_entry(const char *s, size_t len, struct caddr *out);

int
clientaddr_parse(const char *s, struct caddr *out)
{
    struct in_addr v4;

    memset(out, 0, sizeof(*out));
    if (inet_pton(AF_INET, s, &v4) == 1) {
        memcpy(out->b, v4_mapped, sizeof(v4_mapped));
        memcpy(out->b + 12, &v4, 4);
        return 0;
    }
    if (inet_pton(AF_INET6, s, out->b) == 1)
        return 0;
    return ERR_INVALID;
}

int
clientaddr_cidr_parse(const char *s, struct cidr *out)
{
    char host[CLIENTADDR_STRLEN];
    const char *slash = strchr(s, '/');
    size_t len = slash ? (size_t)(slash - s) : strlen(s);
    uint64_t prefix;
    unsigned i;

    memset(out, 0, sizeof(*out));
    if (len == 0 || len >= sizeof(host))
        return ERR_INVALID;
    memcpy(host, s, len);
    host[len] = '\0';
    if (clientaddr_parse(host, &out->a) != 0)
        return ERR_INVALID;
    if (slash == NULL) {
        out->prefix = 128;
        return 0;
    }
    if (parse_uint(slash + 1, strchr(host, ':') ? 128 : 32, &prefix) != 0)
        return ERR_INVALID;
    out->prefix = (unsigned)prefix + (strchr(host, ':') ? 0 : 96);
    /* clear the host bits so that matching compares whole bytes */
    for (i = out->prefix; i < 128; i++)
        out->a.b[i / 8] &= (uint8_t) ~(0x80u >> (i % 8));
    return 0;
}

int
clientaddr_from_sockaddr(const struct sockaddr *sa, struct caddr *out)
{
    memset(out, 0, sizeof(*out));
    if (sa == NULL)
        return ERR_INVALID;
    if (sa->sa_family == AF_INET) {
        const struct sockaddr_in *s4 = (const struct sockaddr_in *)(const void *)sa;

        memcpy(out->b, v4_mapped, sizeof(v4_mapped));
        memcpy(out->b + 12, &s4->sin_addr, 4);
        return 0;
    }
    if (sa->sa_family == AF_INET6) {
        const struct sockaddr_in6 *s6 = (const struct sockaddr_in6 *)(const void *)sa;

        memcpy(out->b, &s6->sin6_addr, 16);
        return 0;
    }
    return ERR_INVALID;
}

int
clientaddr_in_cidr(const struct caddr *a, const struct cidr *c)
{
    unsigned full = c->prefix / 8, rest = c->prefix % 8;

    if (memcmp(a->b, c->a.b, full) != 0)
        return 0;
    if (rest == 0)
        return 1;
    return ((a->b[full] ^ c->a.b[full]) & (uint8_t)(0xff00u >> rest)) == 0;
}

int
clientaddr_in_any(const struct caddr *a, const struct cidr *v, size_t n)
{
    size_t i;

    for (i = 0; i < n; i++)
        if (clientaddr_in_cidr(a, &v[i]))
            return 1;
    return 0;
}

void
clientaddr_format(const struct caddr *a, char out[CLIENTADDR_STRLEN])
{
    if (is_v4(a))
        inet_ntop(AF_INET, a->b + 12, out, CLIENTADDR_STRLEN);
    else
        inet_ntop(AF_INET6, a->b, out, CLIENTADDR_STRLEN);
}

struct caddr
clientaddr_key(const struct caddr *a)
{
    struct caddr k = *a;

    if (!is_v4(a))
        memset(k.b + 8, 0, 8);
    return k;
}

uint32_t
clientaddr_hash(const struct caddr *a)
{
    uint32_t h = 2166136261u; /* FNV-1a */
    size_t i;

    for (i = 0; i < sizeof(a->b); i++) {
        h ^= a->b[i];
        h *= 16777619u;
    }
    return h;
}

int
clientaddr_eq(const struct caddr *a, const struct caddr *b)
{
    return memcmp(a->b, b->b, sizeof(a->b)) == 0;
}

void
clientaddr_pick(const struct caddr *peer, const char *xff, const struct cidr *trusted,
                size_t n_trusted, struct caddr *out)
{
    const char *end;
    int hops;

    *out = *peer;
    if (xff == NULL || !clientaddr_in_any(peer, trusted, n_trusted))
        return;
    end = xff + strlen(xff);
    for (hops = 0; hops < XFF_MAX_HOPS && end > xff; hops++) {
        const char *start = end;
        struct caddr a;

        while (start > xff && start[-1] != ',')
            start--;
        if (parse_entry(start, (size_t)(end - start), &a) != 0)
            return; /* the last trusted hop is all we know */
        *out = a;
        if (!clientaddr_in_any(&a, trusted, n_trusted))
            return;
        end = start > xff ? start - 1 : start;
    }
}

/* ------------------------------------------------------------------------ */

static int
is_v4(const struct caddr *a)
{
    return memcmp(a->b, v4_mapped, sizeof(v4_mapped)) == 0;
}

/*
 * One X-Forwarded-For entry: blanks around it, "[v6]" or "[v6]:port", and
 * "v4:port" (some proxies add the port) are accepted.
 */
static int
parse_entry(const char *s, size_t len, struct caddr *out)
{
    char buf[CLIENTADDR_STRLEN + 8];
    char *p, *colon;

    while (len > 0 && (*s == ' ' || *s == '\t'))
        s++, len--;
    while (len > 0 && (s[len - 1] == ' ' || s[len - 1] == '\t'))
        len--;
    if (len == 0 || len >= sizeof(buf))
        return ERR_INVALID;
    memcpy(buf, s, len);
    buf[len] = '\0';
    p = buf;
    if (*p == '[') {
        char *close = strchr(p, ']');

        if (close == NULL || (close[1] != '\0' && close[1] != ':'))
            return ERR_INVALID;
        *close = '\0';
        p++;
    } else if ((colon = strchr(p, ':')) != NULL && strchr(colon + 1, ':') == NULL) {
        *colon = '\0'; /* one colon: v4 with a port */
    }
    return clientaddr_parse(p, out);
}
