/*
 * Counts behind the per-user session caps (limits.sessionsPerUser and a
 * template's constraints.maxOpenSessionsPerUser; sessquota.c decides).
 * Both statements use the sessions_requester index (requested_by COLLATE
 * NOCASE) and read only that person's rows.
 */
#include <sqlite3.h>

#include "err.h"
#include "store.h"
#include "store_int.h"

int
store_sess_count_open(struct store *st, const char *user, const char *domain, const char *tmpl,
                      int64_t *n)
{
    /* the person is the username in their domain; a NULL domain on either side is any */
    static const char all[] = "SELECT count(*) FROM sessions WHERE requested_by = ?1 COLLATE NOCASE"
                              " AND (requested_by_issuer IS NULL OR ?3 IS NULL OR "
                              "requested_by_issuer = ?3 COLLATE NOCASE)"
                              " AND state IN ('Pending', 'PendingApproval', 'Active')";
    static const char one[] =
        "SELECT count(*) FROM sessions WHERE requested_by = ?1 COLLATE NOCASE"
        " AND (requested_by_issuer IS NULL OR ?3 IS NULL OR requested_by_issuer = ?3 COLLATE "
        "NOCASE)"
        " AND state IN ('Pending', 'PendingApproval', 'Active') AND template = ?2";
    sqlite3_stmt *stmt = NULL;
    int r;

    *n = 0;
    if ((r = store_prepare(st, &stmt, tmpl ? one : all)) != 0)
        return r;
    sqlite3_bind_text(stmt, 1, user, -1, SQLITE_STATIC);
    if (tmpl != NULL)
        sqlite3_bind_text(stmt, 2, tmpl, -1, SQLITE_STATIC);
    store_bind_text(stmt, 3, domain);
    if (sqlite3_step(stmt) == SQLITE_ROW)
        *n = sqlite3_column_int64(stmt, 0);
    else
        r = ERR_DB;
    store_finish(st, stmt);
    return r;
}
