/*
 * PURE. The box `airlock wait` prints into the CI log (DESIGN.md 8.4): the
 * session, its state, the time left, the UI link and the join command. No
 * I/O and no clock: the caller passes `now`.
 */
#ifndef AIRLOCK_BOX_H
#define AIRLOCK_BOX_H
#include <stddef.h>
#include <stdint.h>

#define BOX_WIDTH 78 /* inner width; longer lines (a long URL) widen the box */

struct box_info {
    const char *server;   /* base URL, no trailing slash */
    const char *agent;    /* agent name */
    const char *session;  /* session name, NULL while none is bound yet */
    const char *state;    /* "PendingApproval", "Active", ...; NULL = unknown */
    const char *message;  /* status message, may be NULL */
    int64_t expires_at;   /* Unix seconds, 0 = not started */
    int64_t idle_ends_at; /* when no input ends it first (clock.h), 0 = not before expiry */
    const char *const *participants; /* "alice (owner)" strings */
    size_t n_participants;
    int connections;    /* open SSH connections */
    const char *listen; /* --listen address, NULL if none */
};

/*
 * Formats the box (several lines, each ending in '\n') into out. Returns the
 * length written (truncated to out_len - 1 like snprintf).
 */
size_t box_render(const struct box_info *bi, int64_t now, char *out, size_t out_len);

/* "1h02m", "4m05s", "37s"; "expired" for <= 0. Writes into out. */
void box_left(int64_t secs, char *out, size_t out_len);

#endif
