/*
 * libmicrohttpd's own error answers (a malformed request line, a bad
 * Content-Length, an HTTP version other than 1.x, ...) carry our JSON error
 * envelope: mhderr.c stands in for MHD_create_response_from_buffer and
 * MHD_queue_response and answers in place of libmicrohttpd's HTML.
 */
#ifndef AIRLOCK_MHDERR_H
#define AIRLOCK_MHDERR_H

/* Told of each answer swapped, with its status (for /metrics). */
typedef void (*mhderr_observe_fn)(void *arg, int status);

/* Sets the observer (NULL: none). Set once at start-up, before MHD serves. */
void mhderr_set_observer(mhderr_observe_fn fn, void *arg);

/*
 * 1 if this thread answered one of libmicrohttpd's errors since the last
 * call (MHD then logs that it could not queue its own answer: not news).
 */
int mhderr_take_answered(void);

#endif
