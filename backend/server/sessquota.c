/* The per-user cap on open sessions (see sessquota.h). */
#include <stdatomic.h>
#include <stdint.h>

#include "err.h"
#include "sessquota.h"

static _Atomic uint64_t n_refused;

int
sessquota_check(struct app *app, const struct tmpl_cfg *t, const struct principal *p,
                struct api_reply *rep)
{
    int cap_all = app->cfg->limits.sessions_per_user, cap_t = t->max_open_per_user;
    int64_t n = 0;
    int r;

    if (cap_all > 0) {
        if ((r = store_sess_count_open(app->store, p->user, p->domain, NULL, &n)) != 0)
            return r;
        if (n >= cap_all) {
            atomic_fetch_add(&n_refused, 1);
            return api_fail(rep, ERR_TOO_MANY,
                            "you have %lld open sessions, the most one person may have "
                            "(limits.sessionsPerUser = %d)",
                            (long long)n, cap_all);
        }
    }
    if (cap_t > 0) {
        if ((r = store_sess_count_open(app->store, p->user, p->domain, t->name, &n)) != 0)
            return r;
        if (n >= cap_t) {
            atomic_fetch_add(&n_refused, 1);
            return api_fail(rep, ERR_TOO_MANY,
                            "you have %lld open sessions of template '%s', its most per person "
                            "(maxOpenSessionsPerUser = %d)",
                            (long long)n, t->name, cap_t);
        }
    }
    return 0;
}

uint64_t
sessquota_refused(void)
{
    return atomic_load(&n_refused);
}
