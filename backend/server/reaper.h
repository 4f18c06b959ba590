/*
 * The reaper: a thread that, once a second, moves Active sessions past
 * expiresAt to Expired, PendingApproval sessions past the approval timeout
 * to Failed, Active sessions whose agent has been away longer than the grace
 * period to Failed, records "expiring" five minutes ahead, and deletes ended
 * sessions older than the retention.
 */
#ifndef AIRLOCK_REAPER_H
#define AIRLOCK_REAPER_H

#include "api.h"

#define REAPER_EXPIRING_S 300
/*
 * The reaper's clock: expiry and the other time-driven transitions are due
 * at a time, not on an event, and so are the relay's backstop closes past
 * their bound (core.c; an agent going offline runs those at once).
 */
#define REAPER_TICK_MS 250

struct reaper;

struct reaper *reaper_start(struct app *app);
void reaper_stop(struct reaper *rp);
/* One pass at now (exposed for tests). */
void reaper_pass(struct app *app, int64_t now);

#endif
