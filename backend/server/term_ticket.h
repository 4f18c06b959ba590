/*
 * Browser terminal tickets (api_terminal.c). A browser cannot set headers on
 * a WebSocket upgrade, so it trades its bearer for a ticket with an
 * authenticated POST and opens .../terminal?ticket= with it. A ticket is 32
 * random bytes (base64url, 43 characters), kept only as its SHA-256 in
 * memory (a restart forgets them: they live TERM_TICKET_TTL_S), compared in
 * constant time, bound to one session, and used at most once. It carries a
 * copy of the caller's identity, so that the upgrade can make the same
 * checks as the POST, with the state of that moment.
 */
#ifndef AIRLOCK_TERM_TICKET_H
#define AIRLOCK_TERM_TICKET_H
#include <stdint.h>

#include "auth.h"

#define TERM_TICKET_TTL_S 30 /* a ticket is for the upgrade that follows its POST */
#define TERM_TICKET_MAX 1024 /* live tickets at once (ERR_TOO_MANY past it: 429) */

struct term_tickets;

struct term_tickets *term_tickets_new(void);
/* Frees every ticket. NULL-safe. */
void term_tickets_free(struct term_tickets *tt);

/*
 * Issues a ticket for id (copied) in session, valid until now +
 * TERM_TICKET_TTL_S. *ticket gets it (new string; wipe and free it).
 * Returns 0, or ERR_TOO_MANY when TERM_TICKET_MAX tickets are live.
 */
int term_ticket_issue(struct term_tickets *tt, const char *session, const struct identity *id,
                      int read_only, int64_t now, char **ticket);
/*
 * Redeems ticket for session: removes it and fills *id (a copy the caller
 * cleans up with identity_cleanup) and *read_only. Returns 0, or
 * ERR_NOT_FOUND when it is unknown, used, expired or for another session
 * (a ticket for another session is used up all the same).
 */
int term_ticket_take(struct term_tickets *tt, const char *ticket, const char *session, int64_t now,
                     struct identity *id, int *read_only);

#endif
