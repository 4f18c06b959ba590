/*
 * The per-user cap on open sessions (DESIGN.md 3 `limits.sessionsPerUser`,
 * and a template's `constraints.maxOpenSessionsPerUser`), checked when a
 * session is created.
 */
#ifndef AIRLOCK_SESSQUOTA_H
#define AIRLOCK_SESSQUOTA_H

#include <stdint.h>

#include "api.h"

/*
 * Checks that p may open one more session of template t. Call under
 * app->lock inside the create's transaction, so that two creates cannot both
 * pass. 0 when allowed; ERR_TOO_MANY (429, message in rep) when p already
 * has as many open (Pending, PendingApproval, Active) sessions as either cap
 * allows; ERR_DB.
 */
int sessquota_check(struct app *app, const struct tmpl_cfg *t, const struct principal *p,
                    struct api_reply *rep);
/* Creates refused by either cap since start (airlock_limit_sessions_refused_total). */
uint64_t sessquota_refused(void);

#endif
