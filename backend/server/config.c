/*
 * Configuration loading (DESIGN.md section 3): the key tables of airlockd's
 * YAML file, the values with a syntax of their own (issuer kind, require
 * rules, UI scopes, terminal provider), the cross-key rules (a table's
 * `post` hook: unique names, defaultDuration <= maxDuration, agent-only
 * issuer keys, ...) and the public API of config.h. The parser these tables
 * drive is config_yaml.c; single-string checks are config_check.c.
 */
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <yaml.h>

#include "clientaddr.h"
#include "config.h"
#include "config_int.h"
#include "duration.h"
#include "err.h"
#include "tmpl.h"
#include "util.h"
#include "xmalloc.h"

const char *const config_ui_scopes_default[] = {"openid", "profile", "email", NULL};

static int parse_log_format(struct ctx *c, yaml_node_t *n, void *target);
static int parse_issuers(struct ctx *c, yaml_node_t *n, void *target);
static int parse_kind(struct ctx *c, yaml_node_t *n, void *target);
static int parse_require(struct ctx *c, yaml_node_t *n, void *target);
static int parse_templates(struct ctx *c, yaml_node_t *n, void *target);
static int parse_webhooks(struct ctx *c, yaml_node_t *n, void *target);
static int parse_provider(struct ctx *c, yaml_node_t *n, void *target);
static int parse_ui_scopes(struct ctx *c, yaml_node_t *n, void *target);
static int issuer_post(struct ctx *c, yaml_node_t *map, void *target, yaml_node_t **found);
static int tmpl_post(struct ctx *c, yaml_node_t *map, void *target, yaml_node_t **found);
static int recording_post(struct ctx *c, yaml_node_t *map, void *target, yaml_node_t **found);
static int constraints_post(struct ctx *c, yaml_node_t *map, void *target, yaml_node_t **found);
static int parse_clock_starts(struct ctx *c, yaml_node_t *n, void *target);
static int reason_post(struct ctx *c, yaml_node_t *map, void *target, yaml_node_t **found);
static void issuer_free(struct issuer_cfg *is);

/* ------------------------------------------------------------------------ */
/* Key tables                                                                */
/* ------------------------------------------------------------------------ */

/* clang-format off */
#define SUBJ(st, m, k) {.key = k, .type = F_LIST, .off = offsetof(st, m), .check = config_check_glob}
/* clang-format on */

static const struct field people_fields[] = {
    SUBJ(struct subjects, groups, "groups"),
    SUBJ(struct subjects, users, "users"),
};
static const struct table people_table = {people_fields, NELEM(people_fields), NULL};

static const struct field subjects_fields[] = {
    SUBJ(struct subjects, groups, "groups"),
    SUBJ(struct subjects, users, "users"),
    SUBJ(struct subjects, agents, "agents"),
};
static const struct table subjects_table = {subjects_fields, NELEM(subjects_fields), NULL};

static const struct field approvers_fields[] = {
    SUBJ(struct tmpl_cfg, approvers.groups, "groups"),
    SUBJ(struct tmpl_cfg, approvers.users, "users"),
    {.key = "autoApproveFor",
     .type = F_MAP,
     .off = offsetof(struct tmpl_cfg, auto_approve),
     .sub = &subjects_table},
};
static const struct table approvers_table = {approvers_fields, NELEM(approvers_fields), NULL};

static const struct field auto_extend_fields[] = {
    {.key = "step", .type = F_DUR, .flags = FL_REQ, .off = offsetof(struct tmpl_cfg, auto_step_s)},
    {.key = "maxTotal", .type = F_DUR, .off = offsetof(struct tmpl_cfg, auto_max_total_s)},
};
static const struct table auto_extend_table = {auto_extend_fields, NELEM(auto_extend_fields), NULL};

static const struct field constraints_fields[] = {
    {.key = "maxDuration", .type = F_DUR, .off = offsetof(struct tmpl_cfg, max_duration_s)},
    {.key = "defaultDuration", .type = F_DUR, .off = offsetof(struct tmpl_cfg, default_duration_s)},
    {.key = "minDuration", .type = F_DUR, .off = offsetof(struct tmpl_cfg, min_duration_s)},
    {.key = "allowRenewal", .type = F_BOOL, .off = offsetof(struct tmpl_cfg, allow_renewal)},
    {.key = "maxRenewals",
     .type = F_INT,
     .off = offsetof(struct tmpl_cfg, max_renewals),
     .lo = 0,
     .hi = 1000},
    {.key = "maxOpenSessionsPerUser", /* sessquota.c */
     .type = F_INT,
     .off = offsetof(struct tmpl_cfg, max_open_per_user),
     .lo = 0,
     .hi = 1000000},
    {.key = "claimDeadline", .type = F_DUR, .off = offsetof(struct tmpl_cfg, claim_deadline_s)},
    {.key = "clockStartsAt", .type = F_FN, .fn = parse_clock_starts},
    {.key = "idleTimeout", .type = F_DUR, .off = offsetof(struct tmpl_cfg, idle_timeout_s)},
    {.key = "autoExtend", .type = F_MAP, .off = 0, .sub = &auto_extend_table},
};
static const struct table constraints_table = {constraints_fields, NELEM(constraints_fields),
                                               constraints_post};

static const struct field sharing_fields[] = {
    {.key = "enabled", .type = F_BOOL, .off = offsetof(struct tmpl_cfg, sharing_enabled)},
    {.key = "provider", .type = F_FN, .fn = parse_provider},
    {.key = "maxParticipants",
     .type = F_INT,
     .off = offsetof(struct tmpl_cfg, max_participants),
     .lo = 1,
     .hi = 100},
    {.key = "readOnlyParticipants",
     .type = F_BOOL,
     .off = offsetof(struct tmpl_cfg, read_only_participants)},
    {.key = "browser", .type = F_BOOL, .off = offsetof(struct tmpl_cfg, sharing_browser)},
};
static const struct table sharing_table = {sharing_fields, NELEM(sharing_fields), NULL};

static const struct field recording_fields[] = {
    {.key = "enabled", .type = F_BOOL, .off = offsetof(struct tmpl_cfg, rec_enabled)},
    {.key = "required", .type = F_BOOL, .off = offsetof(struct tmpl_cfg, rec_required)},
    {.key = "maxMiB",
     .type = F_INT,
     .off = offsetof(struct tmpl_cfg, rec_max_mib),
     .lo = 1,
     .hi = 1048576},
};
static const struct table recording_table = {recording_fields, NELEM(recording_fields),
                                             recording_post};

static const struct field ops_fields[] = {
    {.key = "shell", .type = F_BOOL, .off = offsetof(struct tmpl_cfg, op_shell)},
    {.key = "exec", .type = F_BOOL, .off = offsetof(struct tmpl_cfg, op_exec)},
    {.key = "sftp", .type = F_BOOL, .off = offsetof(struct tmpl_cfg, op_sftp)},
    {.key = "portForward", .type = F_BOOL, .off = offsetof(struct tmpl_cfg, op_port_forward)},
};
static const struct table ops_table = {ops_fields, NELEM(ops_fields), NULL};

static const struct field reason_fields[] = {
    {.key = "mandatory", .type = F_BOOL, .off = offsetof(struct tmpl_cfg, reason_mandatory)},
    {.key = "minLength",
     .type = F_INT,
     .off = offsetof(struct tmpl_cfg, reason_min_len),
     .lo = 0,
     .hi = 65536},
    {.key = "maxLength",
     .type = F_INT,
     .off = offsetof(struct tmpl_cfg, reason_max_len),
     .lo = 0,
     .hi = 65536},
};
static const struct table reason_table = {reason_fields, NELEM(reason_fields), reason_post};

static const struct field approval_reason_fields[] = {
    {.key = "mandatoryForRejection",
     .type = F_BOOL,
     .off = offsetof(struct tmpl_cfg, reject_reason_mandatory)},
};
static const struct table approval_reason_table = {approval_reason_fields,
                                                   NELEM(approval_reason_fields), NULL};

static const struct field tmpl_fields[] = {
    {.key = "name",
     .type = F_STR,
     .flags = FL_REQ,
     .off = offsetof(struct tmpl_cfg, name),
     .check = config_check_tmpl_name},
    {.key = "displayName", .type = F_STR, .off = offsetof(struct tmpl_cfg, display_name)},
    {.key = "description",
     .type = F_STR,
     .flags = FL_EMPTY_OK,
     .off = offsetof(struct tmpl_cfg, description)},
    {.key = "allowed",
     .type = F_MAP,
     .off = offsetof(struct tmpl_cfg, allowed),
     .sub = &subjects_table},
    {.key = "approvers", .type = F_MAP, .off = 0, .sub = &approvers_table},
    {.key = "constraints", .type = F_MAP, .off = 0, .sub = &constraints_table},
    {.key = "terminalSharing", .type = F_MAP, .off = 0, .sub = &sharing_table},
    {.key = "allowedOperations", .type = F_MAP, .off = 0, .sub = &ops_table},
    {.key = "recording", .type = F_MAP, .off = 0, .sub = &recording_table},
    {.key = "requestReason", .type = F_MAP, .off = 0, .sub = &reason_table},
    {.key = "approvalReason", .type = F_MAP, .off = 0, .sub = &approval_reason_table},
};
static const struct table tmpl_table = {tmpl_fields, NELEM(tmpl_fields), tmpl_post};

/* clang-format off */
#define ISTR(m, k) {.key = k, .type = F_STR, .off = offsetof(struct issuer_cfg, m)}
/* clang-format on */

static const struct field issuer_fields[] = {
    {.key = "name", .type = F_STR, .flags = FL_REQ, .off = offsetof(struct issuer_cfg, name)},
    {.key = "issuer",
     .type = F_STR,
     .flags = FL_REQ,
     .off = offsetof(struct issuer_cfg, issuer),
     .check = config_check_issuer_url},
    {.key = "audience",
     .type = F_STR,
     .flags = FL_REQ,
     .off = offsetof(struct issuer_cfg, audience)},
    {.key = "kind", .type = F_FN, .fn = parse_kind},
    ISTR(username_claim, "usernameClaim"),
    ISTR(email_claim, "emailClaim"),
    ISTR(name_claim, "nameClaim"),
    ISTR(groups_claim, "groupsClaim"),
    ISTR(ui_client_id, "uiClientId"),
    {.key = "uiScopes", .type = F_FN, .fn = parse_ui_scopes},
    {.key = "agentName",
     .type = F_STR,
     .off = offsetof(struct issuer_cfg, agent_name),
     .check = config_check_agent_name},
    ISTR(owner_claim, "ownerClaim"),
    {.key = "require", .type = F_FN, .fn = parse_require},
    {.key = "trustEmail", .type = F_BOOL, .off = offsetof(struct issuer_cfg, trust_email)},
    ISTR(identity_domain, "identityDomain"),
};
static const struct table issuer_table = {issuer_fields, NELEM(issuer_fields), issuer_post};

static const struct field auth_fields[] = {
    {.key = "dev", .type = F_BOOL, .off = offsetof(struct config, dev)},
    {.key = "issuers", .type = F_FN, .fn = parse_issuers},
    {.key = "admins", .type = F_MAP, .off = offsetof(struct config, admins), .sub = &people_table},
    {.key = "agentRegistrars",
     .type = F_MAP,
     .off = offsetof(struct config, agent_registrars),
     .sub = &people_table},
};
static const struct table auth_table = {auth_fields, NELEM(auth_fields), NULL};

static const struct field tls_fields[] = {
    {.key = "cert", .type = F_STR, .off = offsetof(struct config, tls_cert)},
    {.key = "key", .type = F_STR, .off = offsetof(struct config, tls_key)},
};
static const struct table tls_table = {tls_fields, NELEM(tls_fields), NULL};

static const struct field download_fields[] = {
    {.key = "dir", .type = F_STR, .off = offsetof(struct config, download_dir)},
};
static const struct table download_table = {download_fields, NELEM(download_fields), NULL};

static const struct field snippet_fields[] = {
    {.key = "githubAction", .type = F_STR, .off = offsetof(struct config, snippet_github_action)},
    {.key = "gitlabInclude",
     .type = F_STR,
     .off = offsetof(struct config, snippet_gitlab_include),
     .check = config_check_http_url},
};
static const struct table snippet_table = {snippet_fields, NELEM(snippet_fields), NULL};

static const struct field webhook_fields[] = {
    {.key = "url",
     .type = F_STR,
     .flags = FL_REQ,
     .off = offsetof(struct webhook_cfg, url),
     .check = config_check_http_url},
    {.key = "events",
     .type = F_LIST,
     .off = offsetof(struct webhook_cfg, events),
     .check = config_check_event},
};
static const struct table webhook_table = {webhook_fields, NELEM(webhook_fields), NULL};

static const struct field notif_fields[] = {
    {.key = "webhooks", .type = F_FN, .fn = parse_webhooks},
};
static const struct table notif_table = {notif_fields, NELEM(notif_fields), NULL};

/* ---- limits: (read by connguard.c and sessquota.c; see docs/configuration.md) ---- */
static int
check_cidr(struct ctx *c, yaml_node_t *n, const char *s)
{
    struct cidr cidr;

    if (clientaddr_cidr_parse(s, &cidr) != 0)
        return config_err(c, n, "'%s' is not an IP address or CIDR (e.g. 10.0.0.0/8)", s);
    return 0;
}

#define LIM(m) offsetof(struct config, limits.m)
static const struct field limits_fields[] = {
    {.key = "connectionsPerClient",
     .type = F_INT,
     .off = LIM(connections_per_client),
     .hi = 1 << 20},
    {.key = "requestsPerSecond", .type = F_INT, .off = LIM(requests_per_second), .hi = 1 << 20},
    {.key = "burst", .type = F_INT, .off = LIM(burst), .lo = 1, .hi = 1 << 20},
    {.key = "requestDeadline", .type = F_DUR, .off = LIM(request_deadline_s)},
    {.key = "sessionsPerUser", .type = F_INT, .off = LIM(sessions_per_user), .hi = 1000000},
    {.key = "trustedProxies", .type = F_LIST, .off = LIM(trusted_proxies), .check = check_cidr},
};
static const struct table limits_table = {limits_fields, NELEM(limits_fields), NULL};
/* ---- end of limits: ---- */

static const struct field root_fields[] = {
    {.key = "listen",
     .type = F_STR,
     .off = offsetof(struct config, listen),
     .check = config_check_listen},
    {.key = "publicUrl",
     .type = F_STR,
     .off = offsetof(struct config, public_url),
     .check = config_check_http_url},
    {.key = "dataDir", .type = F_STR, .off = offsetof(struct config, data_dir)},
    {.key = "uiDir", .type = F_STR, .off = offsetof(struct config, ui_dir)},
    {.key = "approvalTimeout", .type = F_DUR, .off = offsetof(struct config, approval_timeout_s)},
    {.key = "agentGracePeriod", .type = F_DUR, .off = offsetof(struct config, agent_grace_s)},
    {.key = "retention", .type = F_DUR, .off = offsetof(struct config, retention_s)},
    {.key = "tls", .type = F_MAP, .off = 0, .sub = &tls_table},
    {.key = "download", .type = F_MAP, .off = 0, .sub = &download_table},
    {.key = "snippets", .type = F_MAP, .off = 0, .sub = &snippet_table},
    {.key = "logFormat", .type = F_FN, .fn = parse_log_format},
    {.key = "auth", .type = F_MAP, .off = 0, .sub = &auth_table},
    {.key = "templates", .type = F_FN, .fn = parse_templates},
    {.key = "notifications", .type = F_MAP, .off = 0, .sub = &notif_table},
    {.key = "limits", .type = F_MAP, .off = 0, .sub = &limits_table},
};
static const struct table root_table = {root_fields, NELEM(root_fields), NULL};

/* ------------------------------------------------------------------------ */
/* Public functions                                                          */
/* ------------------------------------------------------------------------ */

int
config_load(struct config *cfg, const char *path, char *err, size_t err_len)
{
    char *text = NULL;
    size_t len = 0;
    int r;

    if (err_len > 0)
        err[0] = '\0';
    config_defaults(cfg);
    if (path == NULL)
        return 0;
    if ((r = config_read_file(path, &text, &len, err, err_len)) != 0)
        return r;
    r = config_load_yaml(cfg, path, text, len, &root_table, err, err_len);
    free(text);
    return r;
}

void
config_defaults(struct config *cfg)
{
    memset(cfg, 0, sizeof(*cfg));
    cfg->listen = xstrdup("127.0.0.1:8080");
    cfg->data_dir = xstrdup("var");
    cfg->ui_dir = xstrdup("frontend/dist");
    cfg->download_dir = xstrdup("build/dist"); /* make dist; installed: --download-dir */
    cfg->snippet_github_action = xstrdup(CONFIG_GITHUB_ACTION);
    cfg->snippet_gitlab_include = xstrdup(CONFIG_GITLAB_INCLUDE);
    cfg->approval_timeout_s = 24 * 3600;
    cfg->agent_grace_s = 5 * 60;
    cfg->retention_s = 168 * 3600;
    cfg->limits = (struct limits_cfg){.connections_per_client = 64,
                                      .requests_per_second = 20,
                                      .burst = 100,
                                      .request_deadline_s = 30,
                                      .sessions_per_user = 10}; /* connguard.c, sessquota.c */
}

int
config_validate(const struct config *cfg, char *err, size_t err_len)
{
    if (cfg->listen == NULL || !config_listen_ok(cfg->listen))
        return config_verr(err, err_len, "listen '%s': expected HOST:PORT (e.g. 127.0.0.1:8080)",
                           cfg->listen ? cfg->listen : "");
    if (cfg->public_url != NULL && !config_url_has_scheme(cfg->public_url, "http://") &&
        !config_url_has_scheme(cfg->public_url, "https://"))
        return config_verr(err, err_len, "publicUrl '%s': expected an http:// or https:// URL",
                           cfg->public_url);
    if (cfg->data_dir == NULL || cfg->data_dir[0] == '\0')
        return config_verr(err, err_len, "dataDir must not be empty");
    if (cfg->dev && !cfg->dev_allow_remote && !config_is_loopback(cfg->listen))
        return config_verr(
            err, err_len,
            "dev mode must listen on loopback, not '%s' (--dev-allow-remote overrides)",
            cfg->listen);
    if ((cfg->tls_cert == NULL) != (cfg->tls_key == NULL))
        return config_verr(err, err_len, "tls.cert and tls.key must be set together");
    if (cfg->n_issuers == 0 && !cfg->dev)
        return config_verr(err, err_len, "no auth.issuers configured and dev mode is off");
    return 0;
}

void
config_free(struct config *cfg)
{
    size_t i;

    if (cfg == NULL)
        return;
    free(cfg->listen);
    free(cfg->public_url);
    free(cfg->data_dir);
    free(cfg->ui_dir);
    free(cfg->download_dir);
    free(cfg->snippet_github_action);
    free(cfg->snippet_gitlab_include);
    free(cfg->tls_cert);
    free(cfg->tls_key);
    for (i = 0; i < cfg->n_issuers; i++)
        issuer_free(&cfg->issuers[i]);
    free(cfg->issuers);
    subjects_cleanup(&cfg->admins);
    subjects_cleanup(&cfg->agent_registrars);
    for (i = 0; i < cfg->n_templates; i++)
        tmpl_cleanup(&cfg->templates[i]);
    free(cfg->templates);
    for (i = 0; i < cfg->n_webhooks; i++) {
        free(cfg->webhooks[i].url);
        strlist_cleanup(&cfg->webhooks[i].events);
    }
    free(cfg->webhooks);
    strlist_cleanup(&cfg->limits.trusted_proxies);
    memset(cfg, 0, sizeof(*cfg));
}

const struct tmpl_cfg *
config_template(const struct config *cfg, const char *name)
{
    size_t i;

    for (i = 0; i < cfg->n_templates; i++)
        if (cfg->templates[i].name != NULL && strcmp(cfg->templates[i].name, name) == 0)
            return &cfg->templates[i];
    return NULL;
}

int
config_is_loopback(const char *url_or_addr)
{
    char host[256];

    if (url_or_addr == NULL || config_host_of(url_or_addr, host, sizeof(host)) != 0)
        return 0;
    return config_host_is_loopback(host);
}

void
config_finish(struct config *cfg)
{
    size_t n;

    if (cfg->public_url == NULL && cfg->listen != NULL)
        cfg->public_url = xasprintf("%s://%s", cfg->tls_cert ? "https" : "http", cfg->listen);
    /* "https://x/" and "https://x" must produce the same links. */
    n = cfg->public_url != NULL ? strlen(cfg->public_url) : 0;
    while (n > 0 && cfg->public_url[n - 1] == '/')
        cfg->public_url[--n] = '\0';
}

/* ------------------------------------------------------------------------ */
/* Values with their own syntax                                              */
/* ------------------------------------------------------------------------ */

static int
parse_log_format(struct ctx *c, yaml_node_t *n, void *target)
{
    struct config *cfg = target;
    const char *s;
    int r;

    if ((r = config_get_scalar(c, n, "text or json", &s)) != 0)
        return r;
    if (strcmp(s, "text") != 0 && strcmp(s, "json") != 0)
        return config_err(c, n, "expected text or json, got '%s'", s);
    cfg->log_json = strcmp(s, "json") == 0;
    return 0;
}

static int
parse_kind(struct ctx *c, yaml_node_t *n, void *target)
{
    struct issuer_cfg *is = target;
    const char *s;
    int r;

    if ((r = config_get_scalar(c, n, "user or agent", &s)) != 0)
        return r;
    if (strcmp(s, "user") != 0 && strcmp(s, "agent") != 0)
        return config_err(c, n, "expected user or agent, got '%s'", s);
    is->kind = strcmp(s, "agent") == 0 ? ISSUER_AGENT : ISSUER_USER;
    return 0;
}

static int
parse_provider(struct ctx *c, yaml_node_t *n, void *target)
{
    const char *s;
    int r;

    (void)target; /* tmux is the only provider, so there is nothing to store */
    if ((r = config_get_scalar(c, n, "a string", &s)) != 0)
        return r;
    if (strcmp(s, "tmux") != 0)
        return config_err(c, n, "unsupported provider '%s' (only tmux)", s);
    return 0;
}

/* constraints.clockStartsAt: activation (the default) or firstConnect. */
static int
parse_clock_starts(struct ctx *c, yaml_node_t *n, void *target)
{
    struct tmpl_cfg *t = target;
    const char *s;
    int r;

    if ((r = config_get_scalar(c, n, "a string", &s)) != 0)
        return r;
    if (strcmp(s, "activation") == 0)
        t->clock_first_connect = 0;
    else if (strcmp(s, "firstConnect") == 0)
        t->clock_first_connect = 1;
    else
        return config_err(c, n, "clockStartsAt must be activation or firstConnect, not '%s'", s);
    return 0;
}

/*
 * uiScopes: [openid, profile, email, groups]: the scopes the web UI asks for.
 * A list, not one space-separated string, so each scope is checked on its own:
 * at most CONFIG_UI_SCOPES_MAX scope-tokens, no duplicates, openid among them.
 * The list replaces the default; it is not added to it.
 */
static int
parse_ui_scopes(struct ctx *c, yaml_node_t *n, void *target)
{
    struct issuer_cfg *is = target;
    yaml_node_item_t *items;
    size_t i, j, n_items, old;
    int r, has_openid = 0;

    if (n->type == YAML_SCALAR_NODE)
        return config_err(c, n,
                          "expected a list of scopes such as [openid, profile, email], got "
                          "a string");
    if (n->type != YAML_SEQUENCE_NODE)
        return config_expect(c, n, "a list of scopes");
    items = n->data.sequence.items.start;
    n_items = (size_t)(n->data.sequence.items.top - items);
    if (n_items > CONFIG_UI_SCOPES_MAX)
        return config_err(c, n, "at most %d scopes, got %zu", CONFIG_UI_SCOPES_MAX, n_items);
    if ((r = config_get_strlist(c, n, config_check_scope, 0, &is->ui_scopes)) != 0)
        return r;
    for (i = 0; i < is->ui_scopes.n; i++) {
        has_openid |= strcmp(is->ui_scopes.v[i], "openid") == 0;
        for (j = 0; j < i; j++) {
            if (strcmp(is->ui_scopes.v[i], is->ui_scopes.v[j]) != 0)
                continue;
            old = config_path_push(c, "[%zu]", i);
            r = config_err(c, config_node_at(c, items[i]), "duplicate scope '%s' (first at [%zu])",
                           is->ui_scopes.v[i], j);
            config_path_pop(c, old);
            return r;
        }
    }
    if (!has_openid)
        return config_err(c, n, "must include openid (the web UI signs in with OpenID Connect)");
    return 0;
}

/* require: {claim: glob | [globs], ...}: every listed claim must match one of its globs. */
static int
parse_require(struct ctx *c, yaml_node_t *n, void *target)
{
    struct issuer_cfg *is = target;
    struct claim_rule *rule;
    yaml_node_pair_t *pair;
    const char *claim;
    size_t i, old;
    int r = 0;

    if (n->type != YAML_MAPPING_NODE)
        return config_expect(c, n, "a mapping of claim: [globs]");
    for (pair = n->data.mapping.pairs.start; pair < n->data.mapping.pairs.top && r == 0; pair++) {
        yaml_node_t *k = config_node_at(c, pair->key), *v = config_node_at(c, pair->value);

        if ((r = config_get_scalar(c, k, "a claim name", &claim)) != 0)
            return r;
        for (i = 0; i < is->n_require; i++)
            if (strcmp(is->require[i].claim, claim) == 0)
                return config_key_err(c, k, claim, "duplicate key");
        is->require = xrealloc(is->require, (is->n_require + 1) * sizeof(*is->require));
        rule = &is->require[is->n_require++];
        memset(rule, 0, sizeof(*rule));
        rule->claim = xstrdup(claim);
        old = config_path_key(c, claim);
        r = config_get_strlist(c, v, config_check_glob, 1, &rule->globs);
        if (r == 0 && rule->globs.n == 0)
            r = config_err(c, v, "needs at least one glob");
        config_path_pop(c, old);
    }
    return r;
}

static void
issuer_init(void *p)
{
    struct issuer_cfg *is = p;
    size_t i;

    is->kind = ISSUER_USER;
    is->username_claim = xstrdup("preferred_username");
    is->email_claim = xstrdup("email");
    is->name_claim = xstrdup("name");
    is->groups_claim = xstrdup("groups");
    for (i = 0; config_ui_scopes_default[i] != NULL; i++)
        config_strlist_add(&is->ui_scopes, config_ui_scopes_default[i]);
}

static int
parse_issuers(struct ctx *c, yaml_node_t *n, void *target)
{
    struct config *cfg = target;

    if (n->type != YAML_SEQUENCE_NODE)
        return config_expect(c, n, "a list");
    cfg->issuers = config_items_new(n, sizeof(*cfg->issuers), &cfg->n_issuers);
    return config_items_parse(c, n, &issuer_table, (char *)cfg->issuers, sizeof(*cfg->issuers),
                              issuer_init);
}

/*
 * Issuer names and "iss" values are unique; agentName/ownerClaim belong to
 * agent issuers; uiScopes belongs with a uiClientId on a user issuer (the only
 * place the web UI reads it), so that a misplaced list is not silently ignored.
 */
static int
issuer_post(struct ctx *c, yaml_node_t *map, void *target, yaml_node_t **found)
{
    struct issuer_cfg *is = target;
    size_t i, idx = (size_t)(is - c->cfg->issuers);
    yaml_node_t *v;

    (void)map;
    for (i = 0; i < idx; i++) {
        if (strcmp(c->cfg->issuers[i].name, is->name) == 0)
            return config_key_err(c, config_found_val(&issuer_table, found, "name"), "name",
                                  "duplicate issuer name '%s'", is->name);
        if (strcmp(c->cfg->issuers[i].issuer, is->issuer) == 0)
            return config_key_err(c, config_found_val(&issuer_table, found, "issuer"), "issuer",
                                  "issuer '%s' is already configured as '%s'", is->issuer,
                                  c->cfg->issuers[i].name);
    }
    if ((v = config_found_val(&issuer_table, found, "uiScopes")) != NULL) {
        if (is->kind == ISSUER_AGENT)
            return config_key_err(c, v, "uiScopes",
                                  "only valid with kind: user (the web UI signs people in)");
        if (is->ui_client_id == NULL)
            return config_key_err(c, v, "uiScopes",
                                  "only valid together with uiClientId (the scopes the web UI asks "
                                  "for when it signs in with that client)");
    }
    if (is->kind == ISSUER_AGENT) {
        if ((v = config_found_val(&issuer_table, found, "trustEmail")) != NULL)
            return config_key_err(c, v, "trustEmail", "only valid with kind: user");
        return 0;
    }
    if ((v = config_found_val(&issuer_table, found, "agentName")) != NULL)
        return config_key_err(c, v, "agentName", "only valid with kind: agent");
    if ((v = config_found_val(&issuer_table, found, "ownerClaim")) != NULL)
        return config_key_err(c, v, "ownerClaim", "only valid with kind: agent");
    return 0;
}

static void
tmpl_init(void *p)
{
    struct tmpl_cfg *t = p;

    t->max_duration_s = 4 * 3600;
    t->allow_renewal = 1;
    t->max_renewals = 3;
    t->sharing_enabled = 1;
    t->sharing_browser = 1;
    t->max_participants = 5;
    t->op_shell = t->op_exec = t->op_sftp = 1;
    t->reason_max_len = 1000;
    t->rec_max_mib = TMPL_REC_MAX_MIB_DEFAULT;
}

static int
parse_templates(struct ctx *c, yaml_node_t *n, void *target)
{
    struct config *cfg = target;

    if (n->type != YAML_SEQUENCE_NODE)
        return config_expect(c, n, "a list");
    cfg->templates = config_items_new(n, sizeof(*cfg->templates), &cfg->n_templates);
    return config_items_parse(c, n, &tmpl_table, (char *)cfg->templates, sizeof(*cfg->templates),
                              tmpl_init);
}

/* The default when defaultDuration is not given: min(1h, max), but at least min. */
static void
tmpl_default_duration(struct tmpl_cfg *t)
{
    t->default_duration_s = t->max_duration_s < 3600 ? t->max_duration_s : 3600;
    if (t->default_duration_s < t->min_duration_s)
        t->default_duration_s = t->min_duration_s;
}

/* Unique names; displayName defaults to the name, description to "". */
static int
tmpl_post(struct ctx *c, yaml_node_t *map, void *target, yaml_node_t **found)
{
    struct tmpl_cfg *t = target;
    size_t i, idx = (size_t)(t - c->cfg->templates);

    (void)map;
    for (i = 0; i < idx; i++)
        if (strcmp(c->cfg->templates[i].name, t->name) == 0)
            return config_key_err(c, config_found_val(&tmpl_table, found, "name"), "name",
                                  "duplicate template name '%s'", t->name);
    if (t->display_name == NULL)
        t->display_name = xstrdup(t->name);
    if (t->description == NULL)
        t->description = xstrdup("");
    if (t->default_duration_s == 0)
        tmpl_default_duration(t);
    return 0;
}

/*
 * The time rules (timerules.h): firstConnect needs a claimDeadline (it bounds
 * the wait for the first connection), and neither claimDeadline nor
 * autoExtend.step may be longer than maxDuration. autoExtend.maxTotal
 * defaults to maxDuration; a larger one is allowed (maxDuration still caps).
 */
static int
time_rules_post(struct ctx *c, yaml_node_t *map, struct tmpl_cfg *t, yaml_node_t **found)
{
    const struct table *tb = &constraints_table;
    yaml_node_t *claim = config_found_val(tb, found, "claimDeadline");
    yaml_node_t *ext = config_found_val(tb, found, "autoExtend");
    char a[32], b[32];

    duration_format(t->max_duration_s, b, sizeof(b));
    if (t->clock_first_connect && t->claim_deadline_s == 0)
        return config_key_err(c, config_found_val(tb, found, "clockStartsAt"), "clockStartsAt",
                              "clockStartsAt: firstConnect needs a claimDeadline");
    if (claim != NULL && t->claim_deadline_s > t->max_duration_s) {
        duration_format(t->claim_deadline_s, a, sizeof(a));
        return config_key_err(c, claim, "claimDeadline",
                              "claimDeadline (%s) is longer than maxDuration (%s)", a, b);
    }
    if (ext != NULL && t->auto_step_s > t->max_duration_s) {
        duration_format(t->auto_step_s, a, sizeof(a));
        return config_key_err(c, ext, "autoExtend",
                              "autoExtend.step (%s) is longer than maxDuration (%s)", a, b);
    }
    if (t->auto_step_s > 0 && t->auto_max_total_s == 0)
        t->auto_max_total_s = t->max_duration_s;
    (void)map;
    return 0;
}

/* A recording cannot be required without being enabled. */
static int
recording_post(struct ctx *c, yaml_node_t *map, void *target, yaml_node_t **found)
{
    const struct tmpl_cfg *t = target;

    (void)map;
    if (t->rec_required && !t->rec_enabled)
        return config_key_err(c, config_found_val(&recording_table, found, "required"), "required",
                              "a required recording needs enabled: true");
    return 0;
}

/* minDuration <= defaultDuration <= maxDuration, checked where the user wrote them. */
static int
constraints_post(struct ctx *c, yaml_node_t *map, void *target, yaml_node_t **found)
{
    const struct table *tb = &constraints_table;
    struct tmpl_cfg *t = target;
    yaml_node_t *min = config_found_val(tb, found, "minDuration");
    yaml_node_t *def = config_found_val(tb, found, "defaultDuration");
    char a[32], b[32];
    int r;

    if ((r = time_rules_post(c, map, t, found)) != 0)
        return r;
    duration_format(t->max_duration_s, b, sizeof(b));
    if (min != NULL && t->min_duration_s > t->max_duration_s) {
        duration_format(t->min_duration_s, a, sizeof(a));
        return config_key_err(c, min, "minDuration",
                              "minDuration (%s) is longer than maxDuration (%s)", a, b);
    }
    if (def == NULL) {
        tmpl_default_duration(t);
        return 0;
    }
    duration_format(t->default_duration_s, a, sizeof(a));
    if (t->default_duration_s > t->max_duration_s)
        return config_key_err(c, def, "defaultDuration",
                              "defaultDuration (%s) is longer than maxDuration (%s)", a, b);
    if (t->default_duration_s < t->min_duration_s) {
        duration_format(t->min_duration_s, b, sizeof(b));
        return config_key_err(c, def, "defaultDuration",
                              "defaultDuration (%s) is shorter than minDuration (%s)", a, b);
    }
    return 0;
}

/* minLength <= maxLength, and a mandatory reason must be able to have a length. */
static int
reason_post(struct ctx *c, yaml_node_t *map, void *target, yaml_node_t **found)
{
    struct tmpl_cfg *t = target;
    yaml_node_t *min = config_found_val(&reason_table, found, "minLength");
    yaml_node_t *max = config_found_val(&reason_table, found, "maxLength");

    if (t->reason_min_len > t->reason_max_len)
        return config_key_err(c, min != NULL ? min : map, "minLength",
                              "minLength (%d) is greater than maxLength (%d)", t->reason_min_len,
                              t->reason_max_len);
    if (t->reason_mandatory && t->reason_max_len == 0)
        return config_key_err(c, max != NULL ? max : map, "maxLength",
                              "a mandatory reason needs a maxLength above 0");
    return 0;
}

static int
parse_webhooks(struct ctx *c, yaml_node_t *n, void *target)
{
    struct config *cfg = target;

    if (n->type != YAML_SEQUENCE_NODE)
        return config_expect(c, n, "a list");
    cfg->webhooks = config_items_new(n, sizeof(*cfg->webhooks), &cfg->n_webhooks);
    return config_items_parse(c, n, &webhook_table, (char *)cfg->webhooks, sizeof(*cfg->webhooks),
                              NULL);
}

static void
issuer_free(struct issuer_cfg *is)
{
    size_t i;

    free(is->name);
    free(is->issuer);
    free(is->audience);
    free(is->username_claim);
    free(is->email_claim);
    free(is->name_claim);
    free(is->groups_claim);
    free(is->ui_client_id);
    strlist_cleanup(&is->ui_scopes);
    free(is->agent_name);
    free(is->owner_claim);
    free(is->identity_domain);
    for (i = 0; i < is->n_require; i++) {
        free(is->require[i].claim);
        strlist_cleanup(&is->require[i].globs);
    }
    free(is->require);
}
