/* Internal to store_*.c: the struct and small statement helpers. */
#ifndef AIRLOCK_STORE_INT_H
#define AIRLOCK_STORE_INT_H
#include <jansson.h>
#include <sqlite3.h>

struct store {
    sqlite3 *db;
};

int store_prepare(struct store *st, sqlite3_stmt **stmt, const char *sql);
/* Steps a statement that returns no rows: 0, ERR_CONFLICT (constraint) or ERR_DB. */
int store_step_done(struct store *st, sqlite3_stmt *stmt);
void store_bind_text(sqlite3_stmt *stmt, int i, const char *s);
void store_bind_json(sqlite3_stmt *stmt, int i, const json_t *j);
/* Binds t, or NULL when t == 0. */
void store_bind_time(sqlite3_stmt *stmt, int i, int64_t t);
char *store_col_text(sqlite3_stmt *stmt, int i);
/* Parsed JSON of column i, or dflt (stolen) when NULL or unparsable. */
json_t *store_col_json(sqlite3_stmt *stmt, int i, json_t *dflt);

#endif
