/* Small resources: /healthz, /readyz, /config, /me, /dev/token and the templates. */
#include <stdlib.h>
#include <string.h>

#include "api.h"
#include "err.h"
#include "tmpl.h"
#include "util.h"
#include "xmalloc.h"

#define DEV_TOKEN_TTL_S (12 * 3600)

/* The scopes as a new JSON array: those in l, or the defaults when l is NULL or empty. */
static json_t *
scopes_json(const struct strlist *l)
{
    json_t *a = json_array();
    size_t i;

    if (l == NULL || l->n == 0) {
        for (i = 0; config_ui_scopes_default[i] != NULL; i++)
            json_array_append_new(a, json_string(config_ui_scopes_default[i]));
        return a;
    }
    for (i = 0; i < l->n; i++)
        json_array_append_new(a, json_string(l->v[i]));
    return a;
}

/* GET /healthz: the process answers. */
int
api_health_get(struct api_req *req, struct api_reply *rep)
{
    (void)req;
    rep->json = json_pack("{s:s}", "status", "ok");
    return 0;
}

/* GET /readyz: the database can be written (503 otherwise). */
int
api_ready_get(struct api_req *req, struct api_reply *rep)
{
    int r;

    pthread_mutex_lock(&req->app->lock);
    r = store_check_writable(req->app->store);
    pthread_mutex_unlock(&req->app->lock);
    if (r != 0)
        return api_fail(rep, ERR_UNAVAILABLE, "database is not writable");
    rep->json = json_pack("{s:s}", "status", "ok");
    return 0;
}

int
api_config_get(struct api_req *req, struct api_reply *rep)
{
    const struct config *cfg = req->app->cfg;
    const struct issuer_cfg *ui = NULL;
    const char *issuer = NULL;
    size_t i;

    for (i = 0; i < cfg->n_issuers && ui == NULL; i++)
        if (cfg->issuers[i].kind == ISSUER_USER && cfg->issuers[i].ui_client_id != NULL)
            ui = &cfg->issuers[i];
    if (ui != NULL)
        issuer = ui->issuer;
    else if (cfg->dev)
        issuer = auth_dev_issuer(req->app->auth);
    rep->json = json_pack("{s:s, s:b, s:s, s:{s:s?, s:s?, s:o}}", "version", AIRLOCK_VERSION, "dev",
                          cfg->dev, "publicUrl", cfg->public_url, "oidc", "issuer", issuer,
                          "clientId", ui != NULL ? ui->ui_client_id : NULL, "scopes",
                          scopes_json(ui != NULL ? &ui->ui_scopes : NULL));
    return 0;
}

int
api_me_get(struct api_req *req, struct api_reply *rep)
{
    json_t *groups = json_array();
    size_t i;

    for (i = 0; i < req->id.n_groups; i++)
        json_array_append_new(groups, json_string(req->id.groups[i]));
    rep->json =
        json_pack("{s:s, s:s?, s:s?, s:o, s:b}", "user", req->id.user, "email", req->id.email,
                  "displayName", req->id.display_name, "groups", groups, "admin", req->p.admin);
    return 0;
}

int
api_dev_token(struct api_req *req, struct api_reply *rep)
{
    static const struct field fields[] = {{"user", F_STRING, 1, 64},
                                          {"email", F_STRING, 0, 254},
                                          {"displayName", F_STRING, 0, 128},
                                          {"groups", F_STRARRAY, 0, 64}};
    const json_t *ga;
    const char *user;
    const char **groups = NULL;
    char *token = NULL, exp[21];
    size_t i, n;
    int r;

    if (!req->app->cfg->dev)
        return api_fail(rep, ERR_NOT_FOUND, "no such endpoint (dev mode is off)");
    if ((r = api_body_check(req, rep, fields, sizeof(fields) / sizeof(fields[0]))) != 0)
        return r;
    user = api_str(req, "user");
    if (*user == '\0' || strpbrk(user, " \t\r\n") != NULL)
        return api_fail(rep, ERR_INVALID, "field 'user' must be a non-empty name without spaces");
    ga = json_object_get(req->body, "groups");
    n = json_array_size(ga);
    groups = xcalloc(n + 1, sizeof(*groups));
    for (i = 0; i < n; i++)
        groups[i] = json_string_value(json_array_get(ga, i));
    r = auth_dev_mint(req->app->auth, user, api_str(req, "email"), api_str(req, "displayName"),
                      groups, n, DEV_TOKEN_TTL_S, &token);
    free(groups);
    if (r != 0)
        return api_fail(rep, r, "cannot mint a dev token");
    time_fmt(req->now + DEV_TOKEN_TTL_S, exp);
    rep->json = json_pack("{s:s, s:s}", "token", token, "expiresAt", exp);
    explicit_bzero(token, strlen(token));
    free(token);
    return 0;
}

static json_t *
template_json(const struct tmpl_cfg *t, const struct principal *p)
{
    json_t *j = tmpl_to_json(t);

    json_object_set_new(j, "approvalRequired", json_boolean(policy_approval_required(t, p, NULL)));
    return j;
}

int
api_templates_list(struct api_req *req, struct api_reply *rep)
{
    const struct config *cfg = req->app->cfg;
    json_t *arr = json_array();
    size_t i;

    for (i = 0; i < cfg->n_templates; i++)
        if (policy_template_usable(&cfg->templates[i], &req->p))
            json_array_append_new(arr, template_json(&cfg->templates[i], &req->p));
    rep->json =
        json_pack("{s:o, s:I}", "templates", arr, "total", (json_int_t)json_array_size(arr));
    return 0;
}

int
api_templates_get(struct api_req *req, struct api_reply *rep)
{
    const struct tmpl_cfg *t = config_template(req->app->cfg, req->params[0]);

    if (t == NULL || !policy_template_usable(t, &req->p))
        return api_fail(rep, ERR_NOT_FOUND, "template '%s' not found", req->params[0]);
    rep->json = template_json(t, &req->p);
    return 0;
}
