/*
 * PURE: the open HTTP connections as connguard.c sees them (DESIGN.md 3
 * `limits.connectionsPerClient`, `limits.requestDeadline`). The table counts
 * connections per client address, for the per-client cap, and keeps each
 * connection's phase and since when it is in it, for the deadline sweep:
 *
 *   accept ─▶ RECEIVING ──request read──▶ HANDLING ──reply sent──▶ IDLE
 *                 ▲                      (WebSockets stay here)     │
 *                 └─────────────── next request line ◀──────────────┘
 *
 * A connection may stay RECEIVING for the request deadline (counted from
 * accept, or from the next request line on a kept-alive connection, and not
 * reset by each byte) and IDLE for the idle timeout; HANDLING has no limit
 * here (the handler and MHD's own timeout own it). Time is passed in.
 * Not thread-safe: the caller serialises.
 */
#ifndef AIRLOCK_CONNTAB_H
#define AIRLOCK_CONNTAB_H
#include <stddef.h>
#include <stdint.h>

#include "clientaddr.h"

enum conn_phase { CONN_RECEIVING, CONN_HANDLING, CONN_IDLE, CONN__COUNT };

struct conn_rec {
    struct caddr key; /* what the cap counts: clientaddr_key() of the TCP peer */
    int fd;           /* the client's socket, for the sweep */
    int capped;       /* counted against peer's cap (peer is no trusted proxy) */
    enum conn_phase phase;
    int64_t since_ms; /* start of the phase */
    int swept;        /* the sweep already shut it down */
    struct conn_rec *prev, *next;
};

struct conntab;

/* New, empty table. Never NULL. */
struct conntab *conntab_new(void);
/* Frees t (not the records: their owner frees them). NULL is a no-op. */
void conntab_free(struct conntab *t);
/* Capped connections open under key a (see clientaddr_key). */
unsigned conntab_count(const struct conntab *t, const struct caddr *a);
/* Links rec (borrowed until conntab_del) and counts it when rec->capped. */
void conntab_add(struct conntab *t, struct conn_rec *rec);
/* Unlinks rec and uncounts it. */
void conntab_del(struct conntab *t, struct conn_rec *rec);
/* Moves rec to phase at now_ms. */
void conntab_phase(struct conn_rec *rec, enum conn_phase phase, int64_t now_ms);
/*
 * Calls fn(rec, arg) once for every connection past its limit at now_ms:
 * RECEIVING for longer than deadline_ms, IDLE for longer than idle_ms (a
 * limit of 0 is none), and marks it swept. Returns how many were found.
 */
size_t conntab_sweep(struct conntab *t, int64_t now_ms, int64_t deadline_ms, int64_t idle_ms,
                     void (*fn)(struct conn_rec *rec, void *arg), void *arg);
/* Connections in the table. */
size_t conntab_size(const struct conntab *t);

#endif
