/*
 * Webhook delivery. Events are written to the outbox table in the same
 * transaction as the state change (core_event), so a crash loses none; this
 * thread POSTs them as JSON with libcurl and retries failures with
 * exponential back-off (5 s doubling to 1 h, given up after 20 attempts).
 */
#ifndef AIRLOCK_NOTIFY_H
#define AIRLOCK_NOTIFY_H

#include "api.h"

#define NOTIFY_MAX_ATTEMPTS 20

struct notify;

struct notify *notify_start(struct app *app);
void notify_stop(struct notify *n);
/* Webhook deliveries since start: answered 2xx, and failed attempts. */
void notify_counters(uint64_t *sent, uint64_t *failed);
/* Delivers what is due at now (exposed for tests). Returns how many were sent. */
int notify_pass(struct app *app, int64_t now);

#endif
