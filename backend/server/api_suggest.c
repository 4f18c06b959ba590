/*
 * api_suggest.h: the candidate names the caller may use, then suggest.c.
 */
#include <stdlib.h>

#include <jansson.h>

#include "api_suggest.h"
#include "policy.h"
#include "suggest.h"
#include "xmalloc.h"

/* {"field", "value", "suggestions"} from the candidates names[0..n). New reference. */
static json_t *
details(const char *field, const char *want, const char *const *names, size_t n)
{
    const char *out[API_SUGGEST_MAX];
    size_t k = suggest_names(want, names, n, out, API_SUGGEST_MAX);
    json_t *arr = json_array();

    for (size_t i = 0; i < k; i++)
        json_array_append_new(arr, json_string(out[i]));
    return json_pack("{s:s, s:s, s:o}", "field", field, "value", want, "suggestions", arr);
}

json_t *
api_suggest_template(const struct config *cfg, const struct principal *p, const char *want)
{
    const char **names = xcalloc(cfg->n_templates ? cfg->n_templates : 1, sizeof(*names));
    size_t n = 0;
    json_t *j;

    for (size_t i = 0; i < cfg->n_templates; i++)
        if (policy_template_usable(&cfg->templates[i], p))
            names[n++] = cfg->templates[i].name;
    j = details("template", want, names, n);
    free(names);
    return j;
}

json_t *
api_suggest_agent(struct app *app, const struct tmpl_cfg *t, const struct principal *p,
                  const char *want)
{
    struct agent_rec **list = NULL;
    const char **names;
    size_t n_list = 0, n = 0;
    json_t *j;

    if (!policy_template_usable(t, p) || store_agent_list(app->store, &list, &n_list) != 0)
        n_list = 0;
    names = xcalloc(n_list ? n_list : 1, sizeof(*names));
    for (size_t i = 0; i < n_list; i++)
        if (policy_template_allows_agent(t, list[i]->name))
            names[n++] = list[i]->name;
    j = details("agent", want, names, n);
    free(names);
    agent_list_free(list, n_list);
    return j;
}
