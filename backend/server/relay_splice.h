/*
 * Internal to the relay (relay.c pairs, relay_splice.c splices): the splice
 * loop for one pair of upgraded WebSockets, participant and agent, run by
 * the participant's upgrade thread once the agent has dialled back.
 */
#ifndef AIRLOCK_RELAY_SPLICE_H
#define AIRLOCK_RELAY_SPLICE_H
#include <stddef.h>
#include <stdint.h>

#include "upgrade.h"

/*
 * Called by the splice loop whenever wake_fd polls readable: resets wake_fd
 * (it is the caller's eventfd), and returns 1 and fills code and reason (a
 * NUL-terminated string of at most reason_len bytes) when the pair has been
 * asked to close (relay_close(), shutdown), else 0.
 */
typedef int (*relay_close_req_fn)(void *arg, uint16_t *code, char *reason, size_t reason_len);

struct relay_splice_io {
    struct upgraded *pu, *au; /* participant's and agent's sockets (borrowed) */
    int wake_fd;              /* eventfd that turns readable when close_req may say yes */
    relay_close_req_fn close_req;
    void *close_req_arg;
    _Atomic uint64_t *bytes_up;   /* participant -> agent payload bytes (counted here) */
    _Atomic uint64_t *bytes_down; /* agent -> participant */
    int refuse_input;             /* a read-only terminal: binary frames up close with 1008 */
};

/*
 * Splices io->pu and io->au until both have closed or gone (or the close
 * handshake's budget ran out). Leaves the sockets open: the caller ends its
 * upgraded connections. The bytes in pu->extra/au->extra (read past the
 * handshake) are forwarded first.
 */
void relay_splice_run(const struct relay_splice_io *io);

#endif
