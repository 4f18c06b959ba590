/*
 * Private to config*.c: the field-table parser that config.c's key tables
 * drive. config_yaml.c holds the engine (reading the file, libyaml, the key
 * path and "FILE:LINE: key" errors, scalars, mappings and lists of
 * mappings); config_check.c the checks of single strings (listen addresses,
 * URLs, globs, names, events, scopes); config.c the key tables, the values
 * with their own syntax, the cross-key rules and the public API.
 */
#ifndef AIRLOCK_CONFIG_INT_H
#define AIRLOCK_CONFIG_INT_H
#include <stddef.h>
#include <stdint.h>

#include <yaml.h>

#include "config.h"

struct ctx {
    const char *file;
    yaml_document_t *doc;
    struct config *cfg;
    char path[256]; /* key path of the node being parsed, for messages */
    size_t path_len;
    char *err;
    size_t err_len;
};

enum ftype { F_STR, F_BOOL, F_INT, F_DUR, F_LIST, F_MAP, F_FN };

typedef int (*check_fn)(struct ctx *c, yaml_node_t *n, const char *s);
typedef int (*value_fn)(struct ctx *c, yaml_node_t *n, void *target);

struct table;

struct field {
    const char *key;
    enum ftype type;
    int flags;
#define FL_REQ 0x01          /* must be present and not null */
#define FL_EMPTY_OK 0x02     /* F_STR: "" is allowed */
    size_t off;              /* where the value goes in the target struct */
    int lo, hi;              /* F_INT: inclusive range */
    check_fn check;          /* F_STR, F_LIST items: extra validation */
    const struct table *sub; /* F_MAP: the nested mapping, target + off */
    value_fn fn;             /* F_FN: parses the value itself, given the target */
};

struct table {
    const struct field *fields;
    size_t n;
    /* Optional: cross-key checks once the mapping is parsed. found[i] is the value of fields[i]. */
    int (*post)(struct ctx *c, yaml_node_t *map, void *target, yaml_node_t **found);
};

#define NELEM(a) (sizeof(a) / sizeof((a)[0]))
#define AT(base, off, type) ((type *)(void *)((char *)(base) + (off)))

/* config_yaml.c: reading and errors */

/* Reads path whole into a new buffer *out. ERR_SYSTEM or ERR_INVALID with a message. */
int config_read_file(const char *path, char **out, size_t *out_len, char *err, size_t err_len);
/* Parses text as one YAML document and applies it to cfg following root_table. */
int config_load_yaml(struct config *cfg, const char *file, const char *text, size_t len,
                     const struct table *root_table, char *err, size_t err_len);
/* Writes the message into err; returns ERR_INVALID. */
int config_verr(char *err, size_t err_len, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* Writes "FILE:LINE: key 'PATH': message" for node n; returns ERR_INVALID. */
int config_err(struct ctx *c, const yaml_node_t *n, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* Like config_err, for the child key of the current path. */
int config_key_err(struct ctx *c, const yaml_node_t *n, const char *key, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
/* Appends to the key path; returns the old length for config_path_pop(). */
size_t config_path_push(struct ctx *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
size_t config_path_key(struct ctx *c, const char *key);
void config_path_pop(struct ctx *c, size_t old);

/* config_yaml.c: nodes, scalars, mappings */

yaml_node_t *config_node_at(struct ctx *c, int i);
/* "expected WHAT, got TYPE" at n; returns ERR_INVALID. */
int config_expect(struct ctx *c, const yaml_node_t *n, const char *what);
/* The text of scalar n (borrowed), or an error naming what was expected. */
int config_get_scalar(struct ctx *c, yaml_node_t *n, const char *what, const char **out);
/* A list of strings (or one string when allow_one), each passed to check. */
int config_get_strlist(struct ctx *c, yaml_node_t *n, check_fn check, int allow_one,
                       struct strlist *l);
/* The value node of key in a table's found[] array, or NULL. */
yaml_node_t *config_found_val(const struct table *t, yaml_node_t **found, const char *key);
/* A zeroed array with one element per item of list n (n checked by the caller). */
void *config_items_new(const yaml_node_t *n, size_t size, size_t *count);
/* Parses each mapping of list n into items[i] with table t, after init(items[i]). */
int config_items_parse(struct ctx *c, yaml_node_t *n, const struct table *t, char *items,
                       size_t size, void (*init)(void *));
/* Appends a copy of s to l. */
void config_strlist_add(struct strlist *l, const char *s);

/* config_check.c: checks of one string value (check_fn), and address helpers */

int config_check_listen(struct ctx *c, yaml_node_t *n, const char *s);
int config_check_http_url(struct ctx *c, yaml_node_t *n, const char *s);
int config_check_issuer_url(struct ctx *c, yaml_node_t *n, const char *s);
int config_check_agent_name(struct ctx *c, yaml_node_t *n, const char *s);
int config_check_tmpl_name(struct ctx *c, yaml_node_t *n, const char *s);
int config_check_glob(struct ctx *c, yaml_node_t *n, const char *s);
int config_check_event(struct ctx *c, yaml_node_t *n, const char *s);
int config_check_scope(struct ctx *c, yaml_node_t *n, const char *s);
/* The host of a URL or HOST:PORT into buf. 0 or ERR_INVALID. */
int config_host_of(const char *s, char *buf, size_t len);
/* 1 for localhost, 127.0.0.0/8 and ::1. */
int config_host_is_loopback(const char *host);
/* 1 if s is HOST:PORT. */
int config_listen_ok(const char *s);
/* 1 if s starts with scheme and has a host after it. */
int config_url_has_scheme(const char *s, const char *scheme);

#endif
