/*
 * The field-table parser behind config.c (see config_int.h): the file is
 * loaded whole with libyaml's document API and walked against static tables.
 * Each mapping has a `struct table` listing its keys, their types and where
 * the value lands (an offset into the target struct); parse_map() does the
 * common work for every mapping (unknown, duplicate and required keys, type
 * checks) and then calls the table's `post` hook for cross-key rules. Lists
 * of mappings go through config_items_parse().
 *
 * While walking, struct ctx keeps the key path ("templates[1].constraints")
 * so that every error can name the file, the line and the key at fault. Only
 * the first error is reported.
 *
 * A null value ("key:", "key: ~", "key: null") means "not set": the default
 * stays. Booleans are plain true/false, integers are plain decimal.
 */
#include <errno.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <yaml.h>

#include "config_int.h"
#include "duration.h"
#include "err.h"
#include "log.h"
#include "tmpl.h"
#include "util.h"
#include "xmalloc.h"

#define CONFIG_MAX_BYTES (1024 * 1024) /* a config file is small; refuse anything huge */
#define MAX_FIELDS 16                  /* most keys any one table has */

static int parse_map(struct ctx *c, yaml_node_t *n, const struct table *t, void *target);
static void set_str(char **dst, const char *s);

/* ------------------------------------------------------------------------ */
/* Reading the file and driving libyaml                                      */
/* ------------------------------------------------------------------------ */

/* Reads path whole into a new buffer. ERR_SYSTEM with "path: strerror" on failure. */
int
config_read_file(const char *path, char **out, size_t *out_len, char *err, size_t err_len)
{
    FILE *f = NULL;
    char *buf = NULL;
    size_t len;
    int r = ERR_INTERNAL;

    *out = NULL;
    *out_len = 0;
    if ((f = fopen(path, "rb")) == NULL) {
        config_verr(err, err_len, "%s: %s", path, strerror(errno));
        r = ERR_SYSTEM;
        goto out;
    }
    buf = xmalloc(CONFIG_MAX_BYTES + 1);
    len = fread(buf, 1, CONFIG_MAX_BYTES + 1, f);
    if (ferror(f)) {
        config_verr(err, err_len, "%s: %s", path, strerror(errno));
        r = ERR_SYSTEM;
        goto out;
    }
    if (len > CONFIG_MAX_BYTES) {
        r = config_verr(err, err_len, "%s: larger than %d bytes", path, CONFIG_MAX_BYTES);
        goto out;
    }
    *out = buf;
    *out_len = len;
    buf = NULL;
    r = 0;
out:
    if (f != NULL)
        fclose(f);
    free(buf);
    return r;
}

/* Reports a libyaml parse error as "FILE:LINE: YAML syntax error: problem (context ...)". */
static int
syntax_err(struct ctx *c, const yaml_parser_t *p)
{
    const char *problem = p->problem != NULL ? p->problem : "cannot parse";

    if (p->context != NULL)
        return config_verr(c->err, c->err_len,
                           "%s:%zu: YAML syntax error: %s (%s started at line %zu)", c->file,
                           p->problem_mark.line + 1, problem, p->context, p->context_mark.line + 1);
    return config_verr(c->err, c->err_len, "%s:%zu: YAML syntax error: %s", c->file,
                       p->problem_mark.line + 1, problem);
}

/*
 * Parses text as exactly one YAML document and applies it to cfg. An empty
 * file is a valid configuration (all defaults).
 */
int
config_load_yaml(struct config *cfg, const char *file, const char *text, size_t len,
                 const struct table *root_table, char *err, size_t err_len)
{
    yaml_parser_t parser;
    yaml_document_t doc, extra;
    yaml_node_t *root, *extra_root;
    int have_doc = 0, have_extra = 0, r = ERR_INTERNAL;
    struct ctx c = {.file = file, .doc = &doc, .cfg = cfg, .err = err, .err_len = err_len};

    if (!yaml_parser_initialize(&parser))
        fatal("yaml_parser_initialize: out of memory");
    yaml_parser_set_input_string(&parser, (const unsigned char *)text, len);
    if (!yaml_parser_load(&parser, &doc)) {
        r = syntax_err(&c, &parser);
        goto out;
    }
    have_doc = 1;
    if (!yaml_parser_load(&parser, &extra)) {
        r = syntax_err(&c, &parser);
        goto out;
    }
    have_extra = 1;
    if ((extra_root = yaml_document_get_root_node(&extra)) != NULL) {
        r = config_verr(err, err_len, "%s:%zu: only one YAML document is allowed", file,
                        extra_root->start_mark.line + 1);
        goto out;
    }
    root = yaml_document_get_root_node(&doc);
    r = root != NULL ? parse_map(&c, root, root_table, cfg) : 0;
out:
    if (have_extra)
        yaml_document_delete(&extra);
    if (have_doc)
        yaml_document_delete(&doc);
    yaml_parser_delete(&parser);
    return r;
}

/* ------------------------------------------------------------------------ */
/* Error messages and the key path                                           */
/* ------------------------------------------------------------------------ */

int
config_verr(char *err, size_t err_len, const char *fmt, ...)
{
    va_list ap;

    if (err != NULL && err_len > 0) {
        va_start(ap, fmt);
        vsnprintf(err, err_len, fmt, ap);
        va_end(ap);
    }
    return ERR_INVALID;
}

static size_t
line_of(const yaml_node_t *n)
{
    return n->start_mark.line + 1;
}

/* Writes "FILE:LINE: key 'PATH': message" for node n. Returns ERR_INVALID. */
int
config_err(struct ctx *c, const yaml_node_t *n, const char *fmt, ...)
{
    char msg[512];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    if (c->path_len == 0)
        return config_verr(c->err, c->err_len, "%s:%zu: top level: %s", c->file, line_of(n), msg);
    return config_verr(c->err, c->err_len, "%s:%zu: key '%s': %s", c->file, line_of(n), c->path,
                       msg);
}

/* Appends to the key path; returns the old length for config_path_pop(). */
size_t
config_path_push(struct ctx *c, const char *fmt, ...)
{
    size_t old = c->path_len, room = sizeof(c->path) - old;
    va_list ap;
    int n;

    va_start(ap, fmt);
    n = vsnprintf(c->path + old, room, fmt, ap);
    va_end(ap);
    if (n > 0)
        c->path_len = (size_t)n < room ? old + (size_t)n : sizeof(c->path) - 1;
    return old;
}

size_t
config_path_key(struct ctx *c, const char *key)
{
    return config_path_push(c, c->path_len > 0 ? ".%s" : "%s", key);
}

void
config_path_pop(struct ctx *c, size_t old)
{
    c->path_len = old;
    c->path[old] = '\0';
}

/* Like config_err, for the child key of the current path. */
int
config_key_err(struct ctx *c, const yaml_node_t *n, const char *key, const char *fmt, ...)
{
    char msg[512];
    size_t old;
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    old = config_path_key(c, key);
    config_err(c, n, "%s", msg);
    config_path_pop(c, old);
    return ERR_INVALID;
}

/* ------------------------------------------------------------------------ */
/* Nodes and scalars                                                         */
/* ------------------------------------------------------------------------ */

yaml_node_t *
config_node_at(struct ctx *c, int i)
{
    return yaml_document_get_node(c->doc, i);
}

/* A plain "", "~" or "null": the key is there but says nothing. */
static int
is_null(const yaml_node_t *n)
{
    static const char *const nulls[] = {"", "~", "null", "Null", "NULL"};
    size_t i;

    if (n->type != YAML_SCALAR_NODE || n->data.scalar.style != YAML_PLAIN_SCALAR_STYLE)
        return 0;
    for (i = 0; i < NELEM(nulls); i++)
        if (strcmp((const char *)n->data.scalar.value, nulls[i]) == 0)
            return 1;
    return 0;
}

static const char *
type_name(const yaml_node_t *n)
{
    if (is_null(n))
        return "nothing";
    if (n->type == YAML_MAPPING_NODE)
        return "a mapping";
    if (n->type == YAML_SEQUENCE_NODE)
        return "a list";
    return "a string";
}

int
config_expect(struct ctx *c, const yaml_node_t *n, const char *what)
{
    return config_err(c, n, "expected %s, got %s", what, type_name(n));
}

/* The text of scalar n (borrowed), or an error naming what was expected. */
int
config_get_scalar(struct ctx *c, yaml_node_t *n, const char *what, const char **out)
{
    *out = NULL;
    if (n->type != YAML_SCALAR_NODE || is_null(n))
        return config_expect(c, n, what);
    if (strlen((const char *)n->data.scalar.value) != n->data.scalar.length)
        return config_err(c, n, "contains a NUL character");
    *out = (const char *)n->data.scalar.value;
    return 0;
}

/* Plain-style scalar (not quoted): booleans and integers must be written bare. */
static int
get_plain(struct ctx *c, yaml_node_t *n, const char *what, const char **out)
{
    int r;

    if ((r = config_get_scalar(c, n, what, out)) != 0)
        return r;
    if (n->data.scalar.style != YAML_PLAIN_SCALAR_STYLE)
        return config_err(c, n, "expected %s, got the quoted string '%s'", what, *out);
    return 0;
}

static int
get_bool(struct ctx *c, yaml_node_t *n, int *out)
{
    const char *s;
    int r;

    if ((r = get_plain(c, n, "true or false", &s)) != 0)
        return r;
    if (strcmp(s, "true") != 0 && strcmp(s, "false") != 0)
        return config_err(c, n, "expected true or false, got '%s'", s);
    *out = strcmp(s, "true") == 0;
    return 0;
}

static int
get_int(struct ctx *c, yaml_node_t *n, int lo, int hi, int *out)
{
    const char *s;
    uint64_t v;
    int r;

    if ((r = get_plain(c, n, "an integer", &s)) != 0)
        return r;
    if (parse_uint(s, (uint64_t)hi, &v) != 0 || v < (uint64_t)lo)
        return config_err(c, n, "expected an integer from %d to %d, got '%s'", lo, hi, s);
    *out = (int)v;
    return 0;
}

static int
get_duration(struct ctx *c, yaml_node_t *n, int64_t *out)
{
    const char *s;
    int r;

    if ((r = config_get_scalar(c, n, "a duration", &s)) != 0)
        return r;
    if (duration_parse(s, out) != 0)
        return config_err(c, n, "bad duration '%s' (e.g. 90s, 30m, 1h30m, 2d; at most 365d)", s);
    return 0;
}

static int
get_string(struct ctx *c, const struct field *f, yaml_node_t *n, char **out)
{
    const char *s;
    int r;

    if ((r = config_get_scalar(c, n, "a string", &s)) != 0)
        return r;
    if (s[0] == '\0' && !(f->flags & FL_EMPTY_OK))
        return config_err(c, n, "must not be empty");
    if (f->check != NULL && (r = f->check(c, n, s)) != 0)
        return r;
    set_str(out, s);
    return 0;
}

/*
 * Replaces *l with the list n of non-empty strings, each passing check.
 * allow_one: a single string counts as a list of one.
 */
int
config_get_strlist(struct ctx *c, yaml_node_t *n, check_fn check, int allow_one, struct strlist *l)
{
    yaml_node_item_t *it;
    const char *s;
    size_t old;
    int r = 0;

    strlist_cleanup(l);
    if (allow_one && n->type == YAML_SCALAR_NODE) {
        if ((r = config_get_scalar(c, n, "a string or a list", &s)) != 0)
            return r;
        if (s[0] == '\0')
            return config_err(c, n, "must not be empty");
        if (check != NULL && (r = check(c, n, s)) != 0)
            return r;
        config_strlist_add(l, s);
        return 0;
    }
    if (n->type != YAML_SEQUENCE_NODE)
        return config_expect(c, n, allow_one ? "a string or a list" : "a list");
    for (it = n->data.sequence.items.start; it < n->data.sequence.items.top && r == 0; it++) {
        yaml_node_t *item = config_node_at(c, *it);

        old = config_path_push(c, "[%zu]", (size_t)(it - n->data.sequence.items.start));
        if ((r = config_get_scalar(c, item, "a string", &s)) == 0) {
            if (s[0] == '\0')
                r = config_err(c, item, "must not be empty");
            else if (check == NULL || (r = check(c, item, s)) == 0)
                config_strlist_add(l, s);
        }
        config_path_pop(c, old);
    }
    return r;
}

/* ------------------------------------------------------------------------ */
/* Mappings and lists of mappings                                            */
/* ------------------------------------------------------------------------ */

/* What parse_map saw: the key and the (non-null) value node of each field. */
struct seen {
    yaml_node_t *key[MAX_FIELDS];
    yaml_node_t *val[MAX_FIELDS];
};

static int
set_field(struct ctx *c, const struct field *f, yaml_node_t *v, void *target)
{
    switch (f->type) {
    case F_STR:
        return get_string(c, f, v, AT(target, f->off, char *));
    case F_BOOL:
        return get_bool(c, v, AT(target, f->off, int));
    case F_INT:
        return get_int(c, v, f->lo, f->hi, AT(target, f->off, int));
    case F_DUR:
        return get_duration(c, v, AT(target, f->off, int64_t));
    case F_LIST:
        return config_get_strlist(c, v, f->check, 0, AT(target, f->off, struct strlist));
    case F_MAP:
        return parse_map(c, v, f->sub, AT(target, f->off, char));
    case F_FN:
        return f->fn(c, v, target);
    }
    return ERR_INTERNAL; /* every enum value is handled above */
}

static int
parse_pair(struct ctx *c, const struct table *t, yaml_node_t *k, yaml_node_t *v, void *target,
           struct seen *seen)
{
    const char *key;
    size_t i, old;
    int r = 0;

    if (k->type != YAML_SCALAR_NODE)
        return config_err(c, k, "a key must be a string, not %s", type_name(k));
    key = (const char *)k->data.scalar.value;
    for (i = 0; i < t->n && strcmp(t->fields[i].key, key) != 0; i++)
        ;
    old = config_path_key(c, key);
    if (i == t->n) {
        r = config_err(c, k, "unknown key");
    } else if (seen->key[i] != NULL) {
        r = config_err(c, k, "duplicate key (first at line %zu)", line_of(seen->key[i]));
    } else {
        seen->key[i] = k;
        if (!is_null(v)) {
            seen->val[i] = v;
            r = set_field(c, &t->fields[i], v, target);
        }
    }
    config_path_pop(c, old);
    return r;
}

static int
check_required(struct ctx *c, yaml_node_t *map, const struct table *t, const struct seen *seen)
{
    size_t i;

    for (i = 0; i < t->n; i++) {
        if (!(t->fields[i].flags & FL_REQ) || seen->val[i] != NULL)
            continue;
        if (seen->key[i] != NULL)
            return config_key_err(c, seen->key[i], t->fields[i].key, "required key has no value");
        return config_key_err(c, map, t->fields[i].key, "missing required key");
    }
    return 0;
}

/* Applies mapping n to target following table t (unknown, duplicate, required keys). */
static int
parse_map(struct ctx *c, yaml_node_t *n, const struct table *t, void *target)
{
    struct seen seen;
    yaml_node_pair_t *pair;
    int r = 0;

    if (t->n > MAX_FIELDS)
        fatal("config: table with %zu keys, MAX_FIELDS is %d", t->n, MAX_FIELDS);
    if (n->type != YAML_MAPPING_NODE)
        return config_expect(c, n, "a mapping");
    memset(&seen, 0, sizeof(seen));
    for (pair = n->data.mapping.pairs.start; pair < n->data.mapping.pairs.top && r == 0; pair++)
        r = parse_pair(c, t, config_node_at(c, pair->key), config_node_at(c, pair->value), target,
                       &seen);
    if (r == 0)
        r = check_required(c, n, t, &seen);
    if (r == 0 && t->post != NULL)
        r = t->post(c, n, target, seen.val);
    return r;
}

/* The value node of key in a table's found[] array, or NULL. */
yaml_node_t *
config_found_val(const struct table *t, yaml_node_t **found, const char *key)
{
    size_t i;

    for (i = 0; i < t->n; i++)
        if (strcmp(t->fields[i].key, key) == 0)
            return found[i];
    return NULL;
}

/* A zeroed array with one element per item of list n (n checked by the caller). */
void *
config_items_new(const yaml_node_t *n, size_t size, size_t *count)
{
    *count = (size_t)(n->data.sequence.items.top - n->data.sequence.items.start);
    return xcalloc(*count > 0 ? *count : 1, size);
}

/* Parses each mapping of list n into items[i] with table t, after init(items[i]). */
int
config_items_parse(struct ctx *c, yaml_node_t *n, const struct table *t, char *items, size_t size,
                   void (*init)(void *))
{
    yaml_node_item_t *it;
    size_t i, old;
    int r = 0;

    for (it = n->data.sequence.items.start; it < n->data.sequence.items.top && r == 0; it++) {
        i = (size_t)(it - n->data.sequence.items.start);
        old = config_path_push(c, "[%zu]", i);
        if (init != NULL)
            init(items + i * size);
        r = parse_map(c, config_node_at(c, *it), t, items + i * size);
        config_path_pop(c, old);
    }
    return r;
}

/* ------------------------------------------------------------------------ */
/* Setting values                                                            */
/* ------------------------------------------------------------------------ */

static void
set_str(char **dst, const char *s)
{
    free(*dst);
    *dst = s != NULL ? xstrdup(s) : NULL;
}

void
config_strlist_add(struct strlist *l, const char *s)
{
    l->v = xrealloc(l->v, (l->n + 1) * sizeof(*l->v));
    l->v[l->n++] = xstrdup(s);
}
