/*
 * The clock in each shared shell (issue 12): once a second, for every
 * Active session, the time left (expiry, or idle end when that comes first)
 * on its tmux status line, and a message to every attached tmux client at
 * 10, 5 and 1 minutes before the end, naming `airlock extend --for 30m`
 * when the server says a renewal is allowed (canExtend). The texts are
 * clock.c's; this file only decides when to hand them to tmux.
 *
 * tmux is asked only when something changed: the status text (once a minute
 * until the last 10 minutes), or a warning level not shown yet. A warning
 * counts as shown once a client saw it, so someone who connects with 4
 * minutes left still gets the 5-minute one.
 */
#include <stdlib.h>
#include <string.h>

#include "clock.h"
#include "control_int.h"
#include "sshd.h"
#include "tmux.h"
#include "util.h"
#include "xmalloc.h"

void
control_agent_clock_in(struct agent *a, struct seen *sn, const struct dsess *s, int64_t now,
                       struct clock_in *c)
{
    int64_t in = sshd_last_input_ms(a->sshd, s->name), mono = time_mono_ms();

    if (sn->clock_since == 0)
        sn->clock_since = now;
    memset(c, 0, sizeof(*c));
    c->expires_at = s->expires_at;
    c->idle_timeout_s = s->idle_timeout_s;
    c->idle_since = in > 0 ? now - (mono - in) / 1000 : sn->clock_since;
    if (c->idle_since < sn->clock_since)
        c->idle_since = sn->clock_since; /* input before it became Active */
    c->can_extend = s->can_extend;
}

static void
tick(struct agent *a, struct seen *sn, const struct dsess *s, int64_t now)
{
    struct clock_in c;
    char text[CLOCK_TEXT_MAX];
    int idle, level, conns = sshd_conn_count(a->sshd, sn->name);

    control_agent_clock_in(a, sn, s, now, &c);
    clock_status(&c, now, text, sizeof(text));
    /* the tmux session exists once someone connected; until then there is nothing to set */
    if ((sn->status == NULL && conns > 0) ||
        (sn->status != NULL && strcmp(sn->status, text) != 0)) {
        if (tmux_status_set(a->tmux_sock, sn->name, text) == 0) {
            free(sn->status);
            sn->status = xstrdup(text);
        }
    }
    level = clock_level(clock_end(&c, &idle) - now);
    if (level == 0 || (sn->warned != 0 && level > sn->warned)) {
        sn->warned = level; /* renewed, or someone typed: the end moved away */
    } else if ((sn->warned == 0 || level < sn->warned) && conns > 0) {
        char msg[CLOCK_TEXT_MAX];

        clock_warning(&c, now, msg, sizeof(msg));
        if (tmux_message_all(a->tmux_sock, sn->name, msg) > 0)
            sn->warned = level;
    }
}

void
control_agent_clock(struct agent *a)
{
    static int64_t last; /* the loop wakes for every message: the clock moves once a second */
    int64_t now = time_now();
    size_t i;

    if (now == last)
        return;
    last = now;
    for (i = 0; i < a->n_seen; i++) {
        struct seen *sn = &a->seen[i];
        struct dsess *s;

        if (sn->ended)
            continue;
        s = sshd_session_get(a->sshd, sn->name);
        if (s != NULL && strcmp(s->state, "Active") == 0)
            tick(a, sn, s, now);
        dsess_free(s);
    }
}
