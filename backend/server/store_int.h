/* Internal to store_*.c: the struct and small statement helpers. */
#ifndef AIRLOCK_STORE_INT_H
#define AIRLOCK_STORE_INT_H
#include <jansson.h>
#include <sqlite3.h>

#include "config.h"

#define STORE_STMT_CACHE 64

/* Prepared statements are cached by the address of their SQL text (string literals). */
struct stmt_slot {
    const char *sql;
    sqlite3_stmt *stmt;
    int in_use;
};

/* Statements built at run time (the list's filters), cached by their text. */
#define STORE_DYN_CACHE 32
struct dyn_slot {
    char *sql;
    sqlite3_stmt *stmt;
    int in_use;
};

#define STORE_TMPL_CACHE 64

/* Parsed template snapshots, keyed by their JSON text: sessions of one template share one. */
struct tmpl_slot {
    char *text;
    struct tmpl_cfg tmpl;
};

struct store {
    sqlite3 *db;
    struct viewcache *views; /* dropped from by the update hook (store.c) */
    struct stmt_slot cache[STORE_STMT_CACHE];
    struct dyn_slot dyn[STORE_DYN_CACHE];
    unsigned dyn_next; /* round-robin victim */
    struct tmpl_slot tmpls[STORE_TMPL_CACHE];
    size_t n_tmpls;
};

/* Prepares sql, reusing a cached statement for the same (literal) text. End with store_finish. */
int store_prepare(struct store *st, sqlite3_stmt **stmt, const char *sql);
/* Prepares sql that is built at run time: never cached. End with store_finish. */
int store_prepare_once(struct store *st, sqlite3_stmt **stmt, const char *sql);
/* Prepares sql built at run time, reusing a statement prepared for the same text. */
int store_prepare_text(struct store *st, sqlite3_stmt **stmt, const char *sql);
/* Resets a cached statement for reuse, or finalizes an uncached one. NULL is fine. */
void store_finish(struct store *st, sqlite3_stmt *stmt);
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
