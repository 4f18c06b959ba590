/*
 * An HTTP connection that was upgraded to a WebSocket by http.c. The
 * handler that accepted the upgrade gets one of these in a thread of its own
 * (never an MHD worker) and must end it with upgraded_close(), which hands
 * the socket back to libmicrohttpd for closing (never close(fd) yourself).
 */
#ifndef AIRLOCK_UPGRADE_H
#define AIRLOCK_UPGRADE_H
#include <stddef.h>

struct upgraded {
    int fd;      /* non-blocking, TCP_NODELAY set */
    char *extra; /* bytes read past the handshake: feed them to wslay first */
    size_t extra_len;
    void *urh; /* MHD_UpgradeResponseHandle */
};

/* Runs after the 101 in a new thread; owns u and must call upgraded_close(u). */
typedef void (*upgrade_fn)(struct upgraded *u, void *arg);

/* Closes the socket through libmicrohttpd and frees u. */
void upgraded_close(struct upgraded *u);

#endif
