/*
 * GET /metrics: request counters by route row (route.h) and status with a
 * latency histogram, plus gauges read at scrape time (sessions by state,
 * the view cache, agents online, the relay, webhook deliveries).
 */
#ifndef AIRLOCK_METRICS_H
#define AIRLOCK_METRICS_H
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "api.h"

struct metrics;

/* Returns new counters, one row per route plus "other"; free with metrics_free(). */
struct metrics *metrics_new(void);
void metrics_free(struct metrics *m);
/* Writes more Prometheus lines to f at each scrape (e.g. connguard's counters). */
typedef void (*metrics_write_fn)(void *arg, FILE *f);
/* Makes every scrape also call fn(arg, f); arg is borrowed and must outlive m's use. */
void metrics_set_extra(struct metrics *m, metrics_write_fn fn, void *arg);
/*
 * Counts one reply: row as route_find() gave it (route_count() when no row
 * matched), the status actually sent and the time it took. Thread-safe.
 */
void metrics_observe(struct metrics *m, size_t row, int status, int64_t us);
/* The handler: Prometheus text from req->metrics and req->app. */
int metrics_get(struct api_req *req, struct api_reply *rep);

#endif
