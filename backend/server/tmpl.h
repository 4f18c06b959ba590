/*
 * Templates as JSON: the API's template representation, and the snapshot
 * stored with each session (resolved_template) so that a session keeps the
 * rules it was created under when the config changes.
 */
#ifndef AIRLOCK_TMPL_H
#define AIRLOCK_TMPL_H
#include <jansson.h>

#include "config.h"

/* New JSON object for t (DESIGN.md template shape). */
json_t *tmpl_to_json(const struct tmpl_cfg *t);
/* Fills *t from a tmpl_to_json() object. Returns 0 or ERR_INVALID. Free with tmpl_cleanup. */
int tmpl_from_json(const json_t *o, struct tmpl_cfg *t);
/* Frees what *t owns (strings, lists) and zeroes it; config.c frees its templates with it too. */
void tmpl_cleanup(struct tmpl_cfg *t);
/* JSON array of strings from a strlist, and back. */
json_t *strlist_to_json(const struct strlist *l);
void strlist_from_json(const json_t *a, struct strlist *l);
void strlist_cleanup(struct strlist *l);
void subjects_cleanup(struct subjects *s);

#endif
