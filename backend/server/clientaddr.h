/*
 * PURE: client addresses for the limits (DESIGN.md 3 `limits:`). An address
 * is 16 bytes, IPv4 stored as an IPv4-mapped IPv6 address, so that one table
 * and one comparison serve both families. A CIDR is an address and a prefix
 * length over those 128 bits (an IPv4 "/24" becomes "/120").
 *
 * Behind a reverse proxy the client is named by X-Forwarded-For, which the
 * client itself can write: clientaddr_pick() believes it only as far as the
 * chain of trusted proxies goes (the right-most address that is not itself a
 * trusted proxy).
 */
#ifndef AIRLOCK_CLIENTADDR_H
#define AIRLOCK_CLIENTADDR_H
#include <stddef.h>
#include <stdint.h>

struct sockaddr;

struct caddr {
    uint8_t b[16];
};

struct cidr {
    struct caddr a;  /* bits past prefix are zero */
    unsigned prefix; /* 0..128 */
};

#define CLIENTADDR_STRLEN 46 /* INET6_ADDRSTRLEN */

/* Parses "192.0.2.1" or "2001:db8::1" (no brackets, no port). 0 or ERR_INVALID. */
int clientaddr_parse(const char *s, struct caddr *out);
/* Parses an address or "addr/prefix". 0 or ERR_INVALID (also for a prefix out of range). */
int clientaddr_cidr_parse(const char *s, struct cidr *out);
/* From a struct sockaddr_in or sockaddr_in6. ERR_INVALID for other families. */
int clientaddr_from_sockaddr(const struct sockaddr *sa, struct caddr *out);
/* 1 if a lies inside c. */
int clientaddr_in_cidr(const struct caddr *a, const struct cidr *c);
/* 1 if a lies inside any of the n CIDRs. */
int clientaddr_in_any(const struct caddr *a, const struct cidr *v, size_t n);
/* Writes a in its usual text form (IPv4 dotted for mapped addresses) into out. */
void clientaddr_format(const struct caddr *a, char out[CLIENTADDR_STRLEN]);
/*
 * The key the limits count a under: a itself for IPv4, its /64 for IPv6
 * (one host usually gets a whole /64 and can use any address in it).
 */
struct caddr clientaddr_key(const struct caddr *a);
/* A hash of a for tables. */
uint32_t clientaddr_hash(const struct caddr *a);
/* 1 if a and b are the same address. */
int clientaddr_eq(const struct caddr *a, const struct caddr *b);

/*
 * The client's address for a request that arrived from peer with the given
 * X-Forwarded-For value (NULL when absent). When peer is not in trusted, the
 * client is the peer. Otherwise the header's entries are read right to left
 * and the first one not in trusted is the client; when every entry is
 * trusted the left-most one is; an entry that does not parse stops the walk
 * and the last trusted hop is the client (nothing to its left can be
 * believed). Fills *out; never fails.
 */
void clientaddr_pick(const struct caddr *peer, const char *xff, const struct cidr *trusted,
                     size_t n_trusted, struct caddr *out);

#endif
