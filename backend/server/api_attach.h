/*
 * The attach block of POST .../join (api_attach.c).
 */
#ifndef AIRLOCK_API_ATTACH_H
#define AIRLOCK_API_ATTACH_H
#include <stdint.h>

#include <jansson.h>

#include "api.h"

/*
 * {command, knownHostsLine, hostKeyFingerprints, connectUrl, ticket,
 * ticketExpiresAt} for session s and ticket (expiring at ticket_exp). Call
 * with app->lock held (reads the agent's host keys). New reference.
 */
json_t *api_attach_json(struct app *app, const struct sess *s, const char *ticket,
                        int64_t ticket_exp);

#endif
