/*
 * Issue 12's server side: a template's time rules applied to sessions
 * (timerules.c decides), the agent's activity reports (presence, first
 * connection, last input) and the connected/disconnected audit events.
 * Every core_rules_* call that writes runs with app->lock held inside a
 * store transaction, like core.h's.
 */
#ifndef AIRLOCK_CORE_RULES_H
#define AIRLOCK_CORE_RULES_H
#include <stdint.h>

#include <jansson.h>

#include "core.h"
#include "timerules.h"

/* The rules of s's template and s's times, as timerules.c takes them. */
void core_rules_of(const struct sess *s, struct timerules_cfg *c, struct timerules_in *in);
/* Sets s->rules_at: when the reaper should next look (0: no rule pending). Before an update. */
void core_rules_schedule(struct sess *s, int64_t now);
/* When the idle rule ends s (0: not counting), for the session JSON. */
int64_t core_rules_idle_ends_at(const struct sess *s);
/* A renewal is possible now (the control channel's canExtend). */
int core_rules_can_extend(const struct sess *s);
/*
 * The reaper's pass over one Active session whose rules are due: ends it
 * (claim deadline, idle), extends it (autoExtend, a `renewed` event by
 * airlock), or reschedules.
 */
int core_rules_apply(struct app *app, struct sess *s, int64_t now, struct core_after *after);
/*
 * The session is ending: each live connection gets its `disconnected` event
 * (the agent closes them) and the table forgets them.
 */
int core_rules_presence_end(struct app *app, struct sess *s, int64_t now);
/*
 * An `activity` message from agent (borrowed JSON): the live connections
 * (connected/disconnected events, presence), the first connection (with
 * clockStartsAt: firstConnect the clock starts then) and the last input.
 * Takes app->lock and its own transaction. 0, or an ERR_* with *why.
 */
int core_rules_activity(struct app *app, const char *agent, const json_t *m, int64_t now,
                        const char **why);

#endif
