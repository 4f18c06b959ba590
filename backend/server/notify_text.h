/*
 * PURE. The Slack-compatible `text` of a webhook body: one line a person can
 * act on, for Slack and Mattermost incoming webhooks unchanged (session,
 * who, what, time left, the UI link; for a request, who may approve and the
 * approve link). Names and reasons come from claims and requests, so `&`,
 * `<` and `>` are escaped as Slack asks.
 */
#ifndef AIRLOCK_NOTIFY_TEXT_H
#define AIRLOCK_NOTIFY_TEXT_H
#include <stdint.h>

#include <jansson.h>

#include "config.h"

struct notify_event {
    const char *type, *session, *actor;
    const json_t *data; /* the audit event's data, or NULL */
    /* the session as it is after the event (all may be NULL / 0 when unknown) */
    const char *template_name, *agent, *requested_by, *reason;
    const struct subjects *approvers;
    int active;         /* the session is Active: time left is shown */
    int64_t expires_at; /* epoch seconds, 0: none */
    int64_t now;
    const char *public_url; /* the UI's base (no trailing slash needed) */
};

/* The text (a new string). */
char *notify_text(const struct notify_event *e);

#endif
