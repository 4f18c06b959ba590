/*
 * PURE. The webhook body's Slack-compatible `text`. See notify_text.h.
 *
 * One line: "airlock ds-4k9x2mq7ab (ci-debug on lab/web, requested by
 * alice): carol approved it. Time left: 59m. https://…/debug-sessions/ds-…".
 * URLs are left bare: Slack and Mattermost both link them.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "duration.h"
#include "notify_text.h"
#include "xmalloc.h"

#define REASON_MAX 200 /* characters of a reason quoted in the text */

/* Writes s with Slack's three escapes; at most max bytes of s (0: all). */
static void
put_esc(FILE *f, const char *s, size_t max)
{
    size_t i;

    for (i = 0; s != NULL && s[i] != '\0' && (max == 0 || i < max); i++) {
        if (s[i] == '&')
            fputs("&amp;", f);
        else if (s[i] == '<')
            fputs("&lt;", f);
        else if (s[i] == '>')
            fputs("&gt;", f);
        else if ((unsigned char)s[i] < 0x20)
            fputc(' ', f); /* one line */
        else
            fputc(s[i], f);
    }
    if (s != NULL && max != 0 && strlen(s) > max)
        fputs("…", f);
}

static const char *
dstr(const struct notify_event *e, const char *key)
{
    return json_string_value(json_object_get(e->data, key));
}

/* "alice", "carol, group sre-leads" ... */
static void
put_approvers(FILE *f, const struct subjects *a)
{
    size_t i, n = 0;

    for (i = 0; a != NULL && i < a->users.n; i++, n++) {
        fputs(n ? ", " : "", f);
        put_esc(f, a->users.v[i], 0);
    }
    for (i = 0; a != NULL && i < a->groups.n; i++, n++) {
        fputs(n ? ", group " : "group ", f);
        put_esc(f, a->groups.v[i], 0);
    }
    if (n == 0)
        fputs("an admin", f);
}

/* What happened, after "actor ": the verb phrase of each audit event type. */
static void
put_what(FILE *f, const struct notify_event *e)
{
    const char *t = e->type, *user = dstr(e, "user"), *reason = dstr(e, "reason");

    if (strcmp(t, "created") == 0) {
        fputs(" requested it", f);
    } else if (strcmp(t, "approval_required") == 0) {
        fputs(" asks for approval by ", f);
        put_approvers(f, e->approvers);
    } else if (strcmp(t, "invited") == 0 || strcmp(t, "removed") == 0) {
        fprintf(f, " %s ", t);
        put_esc(f, user ? user : "someone", 0);
        if (strcmp(t, "invited") == 0 && dstr(e, "role")) {
            fputs(" as ", f);
            put_esc(f, dstr(e, "role"), 0);
        }
    } else if (strcmp(t, "role_changed") == 0) {
        fputs(" made ", f);
        put_esc(f, user ? user : "someone", 0);
        fputs(" a ", f);
        put_esc(f, dstr(e, "to") ? dstr(e, "to") : "?", 0);
    } else if (strcmp(t, "renewed") == 0) {
        fputs(" extended it", f);
        if (dstr(e, "extendBy")) {
            fputs(" by ", f);
            put_esc(f, dstr(e, "extendBy"), 0);
        }
    } else if (strcmp(t, "expiring") == 0) {
        fputs(": it expires soon", f);
    } else if (strcmp(t, "activated") == 0) {
        fputs(": it is active", f);
    } else if (strcmp(t, "agent_online") == 0 || strcmp(t, "agent_offline") == 0) {
        fprintf(f, ": the agent went %s", t + 6);
    } else if (strcmp(t, "expired") == 0 || strcmp(t, "failed") == 0) {
        fprintf(f, ": it %s", t);
    } else if (strcmp(t, "approved") == 0 || strcmp(t, "rejected") == 0 ||
               strcmp(t, "terminated") == 0) {
        fprintf(f, " %s it", t);
    } else {
        size_t i;

        fputc(' ', f); /* joined, left, and types this file does not know, in words */
        for (i = 0; t[i] != '\0'; i++)
            fputc(t[i] == '_' ? ' ' : t[i], f);
    }
    if (reason != NULL && *reason) {
        fputs(" (", f);
        put_esc(f, reason, REASON_MAX);
        fputc(')', f);
    }
}

char *
notify_text(const struct notify_event *e)
{
    char *out = NULL, left[32];
    size_t len = 0;
    FILE *f = open_memstream(&out, &len);

    if (f == NULL)
        abort(); /* out of memory, like xmalloc */
    fputs("airlock ", f);
    put_esc(f, e->session ? e->session : "?", 0);
    if (e->template_name != NULL) {
        fputs(" (", f);
        put_esc(f, e->template_name, 0);
        fputs(" on ", f);
        put_esc(f, e->agent, 0);
        fputs(", requested by ", f);
        put_esc(f, e->requested_by, 0);
        fputc(')', f);
    }
    fputs(": ", f);
    put_esc(f, e->actor ? e->actor : "airlock", 0);
    put_what(f, e);
    fputc('.', f);
    if (strcmp(e->type, "created") == 0 && e->reason != NULL) {
        fputs(" Reason: ", f);
        put_esc(f, e->reason, REASON_MAX);
        fputc('.', f);
    }
    if (e->active && e->expires_at > e->now) {
        int64_t secs = e->expires_at - e->now;

        duration_format(secs >= 60 ? secs / 60 * 60 : secs, left, sizeof(left));
        fprintf(f, " Time left: %s.", left);
    }
    if (e->public_url != NULL && e->session != NULL) {
        const char *u = e->public_url;
        size_t n = strlen(u);

        while (n > 0 && u[n - 1] == '/')
            n--;
        fputs(strcmp(e->type, "approval_required") == 0 ? " Approve: " : " ", f);
        fprintf(f, "%.*s/debug-sessions/%s", (int)n, u, e->session);
    }
    if (fclose(f) != 0)
        abort();
    return out;
}
