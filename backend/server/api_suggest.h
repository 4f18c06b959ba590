/*
 * The "did you mean" details of a 400 for an unknown template or agent
 * (POST /api/v1/debug-sessions): {"field", "value", "suggestions": [...]},
 * the suggestions drawn only from names the caller may use, so the answer
 * reveals nothing a GET would not.
 */
#ifndef AIRLOCK_API_SUGGEST_H
#define AIRLOCK_API_SUGGEST_H
#include <jansson.h>

#include "api.h"

#define API_SUGGEST_MAX 3 /* names in "suggestions" */

/* Details for the unknown template want: the templates p may use. New reference. */
json_t *api_suggest_template(const struct config *cfg, const struct principal *p, const char *want);
/*
 * Details for the unknown agent want: the agents template t allows (none
 * when p may not use t). Call with app->lock held. New reference.
 */
json_t *api_suggest_agent(struct app *app, const struct tmpl_cfg *t, const struct principal *p,
                          const char *want);

#endif
