/*
 * Configuration loading (DESIGN.md section 3).
 *
 * The YAML file is loaded whole with libyaml's document API and then walked
 * against static tables: each mapping in the file has a `struct table` that
 * lists its keys, their types and where the value lands (an offset into the
 * target struct). parse_map() does the common work for every mapping
 * (unknown keys, duplicate keys, required keys, type checks); a table's
 * `post` hook checks the rules that span several keys (defaultDuration <=
 * maxDuration, duplicate template names, ...). Lists of mappings (issuers,
 * templates, webhooks) go through parse_items().
 *
 * While walking, struct ctx keeps the key path ("templates[1].constraints")
 * so that every error can name the file, the line and the key at fault. Only
 * the first error is reported.
 *
 * A null value ("key:", "key: ~", "key: null") means "not set": the default
 * stays. Booleans are plain true/false, integers are plain decimal.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <yaml.h>

#include "clientaddr.h"
#include "config.h"
#include "tmpl.h"
#include "duration.h"
#include "err.h"
#include "log.h"
#include "util.h"
#include "xmalloc.h"

#define CONFIG_MAX_BYTES (1024 * 1024) /* a config file is small; refuse anything huge */
#define MAX_FIELDS 16                  /* most keys any one table has */

const char *const config_ui_scopes_default[] = {"openid", "profile", "email", NULL};

/* The events a webhook may subscribe to: the audit event types of DESIGN.md section 6. */
static const char *const event_names[] = {
    "created",   "approval_required", "approved",      "rejected",
    "activated", "invited",           "joined",        "left",
    "renewed",   "expiring",          "expired",       "terminated",
    "failed",    "agent_online",      "agent_offline",
};

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

static int parse_map(struct ctx *c, yaml_node_t *n, const struct table *t, void *target);
static int parse_log_format(struct ctx *c, yaml_node_t *n, void *target);
static int parse_issuers(struct ctx *c, yaml_node_t *n, void *target);
static int parse_kind(struct ctx *c, yaml_node_t *n, void *target);
static int parse_require(struct ctx *c, yaml_node_t *n, void *target);
static int parse_templates(struct ctx *c, yaml_node_t *n, void *target);
static int parse_webhooks(struct ctx *c, yaml_node_t *n, void *target);
static int parse_provider(struct ctx *c, yaml_node_t *n, void *target);
static int parse_ui_scopes(struct ctx *c, yaml_node_t *n, void *target);
static int check_listen(struct ctx *c, yaml_node_t *n, const char *s);
static int check_http_url(struct ctx *c, yaml_node_t *n, const char *s);
static int check_issuer_url(struct ctx *c, yaml_node_t *n, const char *s);
static int check_agent_name(struct ctx *c, yaml_node_t *n, const char *s);
static int check_tmpl_name(struct ctx *c, yaml_node_t *n, const char *s);
static int check_glob(struct ctx *c, yaml_node_t *n, const char *s);
static int check_event(struct ctx *c, yaml_node_t *n, const char *s);
static int check_scope(struct ctx *c, yaml_node_t *n, const char *s);
static int issuer_post(struct ctx *c, yaml_node_t *map, void *target, yaml_node_t **found);
static int tmpl_post(struct ctx *c, yaml_node_t *map, void *target, yaml_node_t **found);
static int constraints_post(struct ctx *c, yaml_node_t *map, void *target, yaml_node_t **found);
static int reason_post(struct ctx *c, yaml_node_t *map, void *target, yaml_node_t **found);
static int read_file(const char *path, char **out, size_t *out_len, char *err, size_t err_len);
static int load_yaml(struct config *cfg, const char *file, const char *text, size_t len, char *err,
                     size_t err_len);
static int verr(char *err, size_t err_len, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static int cfg_err(struct ctx *c, const yaml_node_t *n, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static size_t path_push(struct ctx *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int key_err(struct ctx *c, const yaml_node_t *n, const char *key, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static int listen_ok(const char *s);
static int url_has_scheme(const char *s, const char *scheme);
static int host_of(const char *s, char *buf, size_t len);
static int host_is_loopback(const char *host);
static void set_str(char **dst, const char *s);
static void strlist_add(struct strlist *l, const char *s);
static void issuer_free(struct issuer_cfg *is);
static void tmpl_free(struct tmpl_cfg *t);

/* ------------------------------------------------------------------------ */
/* Key tables                                                                */
/* ------------------------------------------------------------------------ */

/* clang-format off */
#define SUBJ(st, m, k) {.key = k, .type = F_LIST, .off = offsetof(st, m), .check = check_glob}
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
};
static const struct table sharing_table = {sharing_fields, NELEM(sharing_fields), NULL};

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
     .check = check_tmpl_name},
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
     .check = check_issuer_url},
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
     .check = check_agent_name},
    ISTR(owner_claim, "ownerClaim"),
    {.key = "require", .type = F_FN, .fn = parse_require},
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

static const struct field webhook_fields[] = {
    {.key = "url",
     .type = F_STR,
     .flags = FL_REQ,
     .off = offsetof(struct webhook_cfg, url),
     .check = check_http_url},
    {.key = "events",
     .type = F_LIST,
     .off = offsetof(struct webhook_cfg, events),
     .check = check_event},
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
        return cfg_err(c, n, "'%s' is not an IP address or CIDR (e.g. 10.0.0.0/8)", s);
    return 0;
}

#define LIM(m) offsetof(struct config, limits.m)
static const struct field limits_fields[] = {
    {.key = "connectionsPerClient", .type = F_INT, .off = LIM(connections_per_client), .hi = 1 << 20},
    {.key = "requestsPerSecond", .type = F_INT, .off = LIM(requests_per_second), .hi = 1 << 20},
    {.key = "burst", .type = F_INT, .off = LIM(burst), .lo = 1, .hi = 1 << 20},
    {.key = "requestDeadline", .type = F_DUR, .off = LIM(request_deadline_s)},
    {.key = "sessionsPerUser", .type = F_INT, .off = LIM(sessions_per_user), .hi = 1000000},
    {.key = "trustedProxies", .type = F_LIST, .off = LIM(trusted_proxies), .check = check_cidr},
};
static const struct table limits_table = {limits_fields, NELEM(limits_fields), NULL};
/* ---- end of limits: ---- */

static const struct field root_fields[] = {
    {.key = "listen", .type = F_STR, .off = offsetof(struct config, listen), .check = check_listen},
    {.key = "publicUrl",
     .type = F_STR,
     .off = offsetof(struct config, public_url),
     .check = check_http_url},
    {.key = "dataDir", .type = F_STR, .off = offsetof(struct config, data_dir)},
    {.key = "uiDir", .type = F_STR, .off = offsetof(struct config, ui_dir)},
    {.key = "approvalTimeout", .type = F_DUR, .off = offsetof(struct config, approval_timeout_s)},
    {.key = "agentGracePeriod", .type = F_DUR, .off = offsetof(struct config, agent_grace_s)},
    {.key = "retention", .type = F_DUR, .off = offsetof(struct config, retention_s)},
    {.key = "tls", .type = F_MAP, .off = 0, .sub = &tls_table},
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
    if ((r = read_file(path, &text, &len, err, err_len)) != 0)
        return r;
    r = load_yaml(cfg, path, text, len, err, err_len);
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
    cfg->approval_timeout_s = 24 * 3600;
    cfg->agent_grace_s = 5 * 60;
    cfg->retention_s = 168 * 3600;
    cfg->limits = (struct limits_cfg){.connections_per_client = 64, .requests_per_second = 20,
                                      .burst = 100, .request_deadline_s = 30,
                                      .sessions_per_user = 10}; /* connguard.c, sessquota.c */
}

int
config_validate(const struct config *cfg, char *err, size_t err_len)
{
    if (cfg->listen == NULL || !listen_ok(cfg->listen))
        return verr(err, err_len, "listen '%s': expected HOST:PORT (e.g. 127.0.0.1:8080)",
                    cfg->listen ? cfg->listen : "");
    if (cfg->public_url != NULL && !url_has_scheme(cfg->public_url, "http://") &&
        !url_has_scheme(cfg->public_url, "https://"))
        return verr(err, err_len, "publicUrl '%s': expected an http:// or https:// URL",
                    cfg->public_url);
    if (cfg->data_dir == NULL || cfg->data_dir[0] == '\0')
        return verr(err, err_len, "dataDir must not be empty");
    if (cfg->dev && !cfg->dev_allow_remote && !config_is_loopback(cfg->listen))
        return verr(err, err_len,
                    "dev mode must listen on loopback, not '%s' (--dev-allow-remote overrides)",
                    cfg->listen);
    if ((cfg->tls_cert == NULL) != (cfg->tls_key == NULL))
        return verr(err, err_len, "tls.cert and tls.key must be set together");
    if (cfg->n_issuers == 0 && !cfg->dev)
        return verr(err, err_len, "no auth.issuers configured and dev mode is off");
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
    free(cfg->tls_cert);
    free(cfg->tls_key);
    for (i = 0; i < cfg->n_issuers; i++)
        issuer_free(&cfg->issuers[i]);
    free(cfg->issuers);
    subjects_cleanup(&cfg->admins);
    subjects_cleanup(&cfg->agent_registrars);
    for (i = 0; i < cfg->n_templates; i++)
        tmpl_free(&cfg->templates[i]);
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

    if (url_or_addr == NULL || host_of(url_or_addr, host, sizeof(host)) != 0)
        return 0;
    return host_is_loopback(host);
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
/* Reading the file and driving libyaml                                      */
/* ------------------------------------------------------------------------ */

/* Reads path whole into a new buffer. ERR_SYSTEM with "path: strerror" on failure. */
static int
read_file(const char *path, char **out, size_t *out_len, char *err, size_t err_len)
{
    FILE *f = NULL;
    char *buf = NULL;
    size_t len;
    int r = ERR_INTERNAL;

    *out = NULL;
    *out_len = 0;
    if ((f = fopen(path, "rb")) == NULL) {
        verr(err, err_len, "%s: %s", path, strerror(errno));
        r = ERR_SYSTEM;
        goto out;
    }
    buf = xmalloc(CONFIG_MAX_BYTES + 1);
    len = fread(buf, 1, CONFIG_MAX_BYTES + 1, f);
    if (ferror(f)) {
        verr(err, err_len, "%s: %s", path, strerror(errno));
        r = ERR_SYSTEM;
        goto out;
    }
    if (len > CONFIG_MAX_BYTES) {
        r = verr(err, err_len, "%s: larger than %d bytes", path, CONFIG_MAX_BYTES);
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
        return verr(c->err, c->err_len, "%s:%zu: YAML syntax error: %s (%s started at line %zu)",
                    c->file, p->problem_mark.line + 1, problem, p->context,
                    p->context_mark.line + 1);
    return verr(c->err, c->err_len, "%s:%zu: YAML syntax error: %s", c->file,
                p->problem_mark.line + 1, problem);
}

/*
 * Parses text as exactly one YAML document and applies it to cfg. An empty
 * file is a valid configuration (all defaults).
 */
static int
load_yaml(struct config *cfg, const char *file, const char *text, size_t len, char *err,
          size_t err_len)
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
        r = verr(err, err_len, "%s:%zu: only one YAML document is allowed", file,
                 extra_root->start_mark.line + 1);
        goto out;
    }
    root = yaml_document_get_root_node(&doc);
    r = root != NULL ? parse_map(&c, root, &root_table, cfg) : 0;
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

static int
verr(char *err, size_t err_len, const char *fmt, ...)
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
static int
cfg_err(struct ctx *c, const yaml_node_t *n, const char *fmt, ...)
{
    char msg[512];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    if (c->path_len == 0)
        return verr(c->err, c->err_len, "%s:%zu: top level: %s", c->file, line_of(n), msg);
    return verr(c->err, c->err_len, "%s:%zu: key '%s': %s", c->file, line_of(n), c->path, msg);
}

/* Appends to the key path; returns the old length for path_pop(). */
static size_t
path_push(struct ctx *c, const char *fmt, ...)
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

static size_t
path_key(struct ctx *c, const char *key)
{
    return path_push(c, c->path_len > 0 ? ".%s" : "%s", key);
}

static void
path_pop(struct ctx *c, size_t old)
{
    c->path_len = old;
    c->path[old] = '\0';
}

/* Like cfg_err, for the child key of the current path. */
static int
key_err(struct ctx *c, const yaml_node_t *n, const char *key, const char *fmt, ...)
{
    char msg[512];
    size_t old;
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    old = path_key(c, key);
    cfg_err(c, n, "%s", msg);
    path_pop(c, old);
    return ERR_INVALID;
}

/* ------------------------------------------------------------------------ */
/* Nodes and scalars                                                         */
/* ------------------------------------------------------------------------ */

static yaml_node_t *
node_at(struct ctx *c, int i)
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

static int
expect(struct ctx *c, const yaml_node_t *n, const char *what)
{
    return cfg_err(c, n, "expected %s, got %s", what, type_name(n));
}

/* The text of scalar n (borrowed), or an error naming what was expected. */
static int
get_scalar(struct ctx *c, yaml_node_t *n, const char *what, const char **out)
{
    *out = NULL;
    if (n->type != YAML_SCALAR_NODE || is_null(n))
        return expect(c, n, what);
    if (strlen((const char *)n->data.scalar.value) != n->data.scalar.length)
        return cfg_err(c, n, "contains a NUL character");
    *out = (const char *)n->data.scalar.value;
    return 0;
}

/* Plain-style scalar (not quoted): booleans and integers must be written bare. */
static int
get_plain(struct ctx *c, yaml_node_t *n, const char *what, const char **out)
{
    int r;

    if ((r = get_scalar(c, n, what, out)) != 0)
        return r;
    if (n->data.scalar.style != YAML_PLAIN_SCALAR_STYLE)
        return cfg_err(c, n, "expected %s, got the quoted string '%s'", what, *out);
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
        return cfg_err(c, n, "expected true or false, got '%s'", s);
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
        return cfg_err(c, n, "expected an integer from %d to %d, got '%s'", lo, hi, s);
    *out = (int)v;
    return 0;
}

static int
get_duration(struct ctx *c, yaml_node_t *n, int64_t *out)
{
    const char *s;
    int r;

    if ((r = get_scalar(c, n, "a duration", &s)) != 0)
        return r;
    if (duration_parse(s, out) != 0)
        return cfg_err(c, n, "bad duration '%s' (e.g. 90s, 30m, 1h30m, 2d; at most 365d)", s);
    return 0;
}

static int
get_string(struct ctx *c, const struct field *f, yaml_node_t *n, char **out)
{
    const char *s;
    int r;

    if ((r = get_scalar(c, n, "a string", &s)) != 0)
        return r;
    if (s[0] == '\0' && !(f->flags & FL_EMPTY_OK))
        return cfg_err(c, n, "must not be empty");
    if (f->check != NULL && (r = f->check(c, n, s)) != 0)
        return r;
    set_str(out, s);
    return 0;
}

/*
 * Replaces *l with the list n of non-empty strings, each passing check.
 * allow_one: a single string counts as a list of one.
 */
static int
get_strlist(struct ctx *c, yaml_node_t *n, check_fn check, int allow_one, struct strlist *l)
{
    yaml_node_item_t *it;
    const char *s;
    size_t old;
    int r = 0;

    strlist_cleanup(l);
    if (allow_one && n->type == YAML_SCALAR_NODE) {
        if ((r = get_scalar(c, n, "a string or a list", &s)) != 0)
            return r;
        if (s[0] == '\0')
            return cfg_err(c, n, "must not be empty");
        if (check != NULL && (r = check(c, n, s)) != 0)
            return r;
        strlist_add(l, s);
        return 0;
    }
    if (n->type != YAML_SEQUENCE_NODE)
        return expect(c, n, allow_one ? "a string or a list" : "a list");
    for (it = n->data.sequence.items.start; it < n->data.sequence.items.top && r == 0; it++) {
        yaml_node_t *item = node_at(c, *it);

        old = path_push(c, "[%zu]", (size_t)(it - n->data.sequence.items.start));
        if ((r = get_scalar(c, item, "a string", &s)) == 0) {
            if (s[0] == '\0')
                r = cfg_err(c, item, "must not be empty");
            else if (check == NULL || (r = check(c, item, s)) == 0)
                strlist_add(l, s);
        }
        path_pop(c, old);
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
        return get_strlist(c, v, f->check, 0, AT(target, f->off, struct strlist));
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
        return cfg_err(c, k, "a key must be a string, not %s", type_name(k));
    key = (const char *)k->data.scalar.value;
    for (i = 0; i < t->n && strcmp(t->fields[i].key, key) != 0; i++)
        ;
    old = path_key(c, key);
    if (i == t->n) {
        r = cfg_err(c, k, "unknown key");
    } else if (seen->key[i] != NULL) {
        r = cfg_err(c, k, "duplicate key (first at line %zu)", line_of(seen->key[i]));
    } else {
        seen->key[i] = k;
        if (!is_null(v)) {
            seen->val[i] = v;
            r = set_field(c, &t->fields[i], v, target);
        }
    }
    path_pop(c, old);
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
            return key_err(c, seen->key[i], t->fields[i].key, "required key has no value");
        return key_err(c, map, t->fields[i].key, "missing required key");
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
        return expect(c, n, "a mapping");
    memset(&seen, 0, sizeof(seen));
    for (pair = n->data.mapping.pairs.start; pair < n->data.mapping.pairs.top && r == 0; pair++)
        r = parse_pair(c, t, node_at(c, pair->key), node_at(c, pair->value), target, &seen);
    if (r == 0)
        r = check_required(c, n, t, &seen);
    if (r == 0 && t->post != NULL)
        r = t->post(c, n, target, seen.val);
    return r;
}

/* The value node of key in a table's found[] array, or NULL. */
static yaml_node_t *
found_val(const struct table *t, yaml_node_t **found, const char *key)
{
    size_t i;

    for (i = 0; i < t->n; i++)
        if (strcmp(t->fields[i].key, key) == 0)
            return found[i];
    return NULL;
}

/* A zeroed array with one element per item of list n (n checked by the caller). */
static void *
items_new(const yaml_node_t *n, size_t size, size_t *count)
{
    *count = (size_t)(n->data.sequence.items.top - n->data.sequence.items.start);
    return xcalloc(*count > 0 ? *count : 1, size);
}

/* Parses each mapping of list n into items[i] with table t, after init(items[i]). */
static int
items_parse(struct ctx *c, yaml_node_t *n, const struct table *t, char *items, size_t size,
            void (*init)(void *))
{
    yaml_node_item_t *it;
    size_t i, old;
    int r = 0;

    for (it = n->data.sequence.items.start; it < n->data.sequence.items.top && r == 0; it++) {
        i = (size_t)(it - n->data.sequence.items.start);
        old = path_push(c, "[%zu]", i);
        if (init != NULL)
            init(items + i * size);
        r = parse_map(c, node_at(c, *it), t, items + i * size);
        path_pop(c, old);
    }
    return r;
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

    if ((r = get_scalar(c, n, "text or json", &s)) != 0)
        return r;
    if (strcmp(s, "text") != 0 && strcmp(s, "json") != 0)
        return cfg_err(c, n, "expected text or json, got '%s'", s);
    cfg->log_json = strcmp(s, "json") == 0;
    return 0;
}

static int
parse_kind(struct ctx *c, yaml_node_t *n, void *target)
{
    struct issuer_cfg *is = target;
    const char *s;
    int r;

    if ((r = get_scalar(c, n, "user or agent", &s)) != 0)
        return r;
    if (strcmp(s, "user") != 0 && strcmp(s, "agent") != 0)
        return cfg_err(c, n, "expected user or agent, got '%s'", s);
    is->kind = strcmp(s, "agent") == 0 ? ISSUER_AGENT : ISSUER_USER;
    return 0;
}

static int
parse_provider(struct ctx *c, yaml_node_t *n, void *target)
{
    const char *s;
    int r;

    (void)target; /* tmux is the only provider, so there is nothing to store */
    if ((r = get_scalar(c, n, "a string", &s)) != 0)
        return r;
    if (strcmp(s, "tmux") != 0)
        return cfg_err(c, n, "unsupported provider '%s' (only tmux)", s);
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
        return cfg_err(c, n,
                       "expected a list of scopes such as [openid, profile, email], got "
                       "a string");
    if (n->type != YAML_SEQUENCE_NODE)
        return expect(c, n, "a list of scopes");
    items = n->data.sequence.items.start;
    n_items = (size_t)(n->data.sequence.items.top - items);
    if (n_items > CONFIG_UI_SCOPES_MAX)
        return cfg_err(c, n, "at most %d scopes, got %zu", CONFIG_UI_SCOPES_MAX, n_items);
    if ((r = get_strlist(c, n, check_scope, 0, &is->ui_scopes)) != 0)
        return r;
    for (i = 0; i < is->ui_scopes.n; i++) {
        has_openid |= strcmp(is->ui_scopes.v[i], "openid") == 0;
        for (j = 0; j < i; j++) {
            if (strcmp(is->ui_scopes.v[i], is->ui_scopes.v[j]) != 0)
                continue;
            old = path_push(c, "[%zu]", i);
            r = cfg_err(c, node_at(c, items[i]), "duplicate scope '%s' (first at [%zu])",
                        is->ui_scopes.v[i], j);
            path_pop(c, old);
            return r;
        }
    }
    if (!has_openid)
        return cfg_err(c, n, "must include openid (the web UI signs in with OpenID Connect)");
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
        return expect(c, n, "a mapping of claim: [globs]");
    for (pair = n->data.mapping.pairs.start; pair < n->data.mapping.pairs.top && r == 0; pair++) {
        yaml_node_t *k = node_at(c, pair->key), *v = node_at(c, pair->value);

        if ((r = get_scalar(c, k, "a claim name", &claim)) != 0)
            return r;
        for (i = 0; i < is->n_require; i++)
            if (strcmp(is->require[i].claim, claim) == 0)
                return key_err(c, k, claim, "duplicate key");
        is->require = xrealloc(is->require, (is->n_require + 1) * sizeof(*is->require));
        rule = &is->require[is->n_require++];
        memset(rule, 0, sizeof(*rule));
        rule->claim = xstrdup(claim);
        old = path_key(c, claim);
        r = get_strlist(c, v, check_glob, 1, &rule->globs);
        if (r == 0 && rule->globs.n == 0)
            r = cfg_err(c, v, "needs at least one glob");
        path_pop(c, old);
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
        strlist_add(&is->ui_scopes, config_ui_scopes_default[i]);
}

static int
parse_issuers(struct ctx *c, yaml_node_t *n, void *target)
{
    struct config *cfg = target;

    if (n->type != YAML_SEQUENCE_NODE)
        return expect(c, n, "a list");
    cfg->issuers = items_new(n, sizeof(*cfg->issuers), &cfg->n_issuers);
    return items_parse(c, n, &issuer_table, (char *)cfg->issuers, sizeof(*cfg->issuers),
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
            return key_err(c, found_val(&issuer_table, found, "name"), "name",
                           "duplicate issuer name '%s'", is->name);
        if (strcmp(c->cfg->issuers[i].issuer, is->issuer) == 0)
            return key_err(c, found_val(&issuer_table, found, "issuer"), "issuer",
                           "issuer '%s' is already configured as '%s'", is->issuer,
                           c->cfg->issuers[i].name);
    }
    if ((v = found_val(&issuer_table, found, "uiScopes")) != NULL) {
        if (is->kind == ISSUER_AGENT)
            return key_err(c, v, "uiScopes",
                           "only valid with kind: user (the web UI signs people in)");
        if (is->ui_client_id == NULL)
            return key_err(c, v, "uiScopes",
                           "only valid together with uiClientId (the scopes the web UI asks "
                           "for when it signs in with that client)");
    }
    if (is->kind == ISSUER_AGENT)
        return 0;
    if ((v = found_val(&issuer_table, found, "agentName")) != NULL)
        return key_err(c, v, "agentName", "only valid with kind: agent");
    if ((v = found_val(&issuer_table, found, "ownerClaim")) != NULL)
        return key_err(c, v, "ownerClaim", "only valid with kind: agent");
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
    t->max_participants = 5;
    t->op_shell = t->op_exec = t->op_sftp = 1;
    t->reason_max_len = 1000;
}

static int
parse_templates(struct ctx *c, yaml_node_t *n, void *target)
{
    struct config *cfg = target;

    if (n->type != YAML_SEQUENCE_NODE)
        return expect(c, n, "a list");
    cfg->templates = items_new(n, sizeof(*cfg->templates), &cfg->n_templates);
    return items_parse(c, n, &tmpl_table, (char *)cfg->templates, sizeof(*cfg->templates),
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
            return key_err(c, found_val(&tmpl_table, found, "name"), "name",
                           "duplicate template name '%s'", t->name);
    if (t->display_name == NULL)
        t->display_name = xstrdup(t->name);
    if (t->description == NULL)
        t->description = xstrdup("");
    if (t->default_duration_s == 0)
        tmpl_default_duration(t);
    return 0;
}

/* minDuration <= defaultDuration <= maxDuration, checked where the user wrote them. */
static int
constraints_post(struct ctx *c, yaml_node_t *map, void *target, yaml_node_t **found)
{
    const struct table *tb = &constraints_table;
    struct tmpl_cfg *t = target;
    yaml_node_t *min = found_val(tb, found, "minDuration");
    yaml_node_t *def = found_val(tb, found, "defaultDuration");
    char a[32], b[32];

    (void)map;
    duration_format(t->max_duration_s, b, sizeof(b));
    if (min != NULL && t->min_duration_s > t->max_duration_s) {
        duration_format(t->min_duration_s, a, sizeof(a));
        return key_err(c, min, "minDuration", "minDuration (%s) is longer than maxDuration (%s)", a,
                       b);
    }
    if (def == NULL) {
        tmpl_default_duration(t);
        return 0;
    }
    duration_format(t->default_duration_s, a, sizeof(a));
    if (t->default_duration_s > t->max_duration_s)
        return key_err(c, def, "defaultDuration",
                       "defaultDuration (%s) is longer than maxDuration (%s)", a, b);
    if (t->default_duration_s < t->min_duration_s) {
        duration_format(t->min_duration_s, b, sizeof(b));
        return key_err(c, def, "defaultDuration",
                       "defaultDuration (%s) is shorter than minDuration (%s)", a, b);
    }
    return 0;
}

/* minLength <= maxLength, and a mandatory reason must be able to have a length. */
static int
reason_post(struct ctx *c, yaml_node_t *map, void *target, yaml_node_t **found)
{
    struct tmpl_cfg *t = target;
    yaml_node_t *min = found_val(&reason_table, found, "minLength");
    yaml_node_t *max = found_val(&reason_table, found, "maxLength");

    if (t->reason_min_len > t->reason_max_len)
        return key_err(c, min != NULL ? min : map, "minLength",
                       "minLength (%d) is greater than maxLength (%d)", t->reason_min_len,
                       t->reason_max_len);
    if (t->reason_mandatory && t->reason_max_len == 0)
        return key_err(c, max != NULL ? max : map, "maxLength",
                       "a mandatory reason needs a maxLength above 0");
    return 0;
}

static int
parse_webhooks(struct ctx *c, yaml_node_t *n, void *target)
{
    struct config *cfg = target;

    if (n->type != YAML_SEQUENCE_NODE)
        return expect(c, n, "a list");
    cfg->webhooks = items_new(n, sizeof(*cfg->webhooks), &cfg->n_webhooks);
    return items_parse(c, n, &webhook_table, (char *)cfg->webhooks, sizeof(*cfg->webhooks), NULL);
}

/* ------------------------------------------------------------------------ */
/* String checks                                                             */
/* ------------------------------------------------------------------------ */

static int
check_listen(struct ctx *c, yaml_node_t *n, const char *s)
{
    if (!listen_ok(s))
        return cfg_err(c, n, "expected HOST:PORT (e.g. 127.0.0.1:8080 or [::1]:8080), got '%s'", s);
    return 0;
}

static int
check_http_url(struct ctx *c, yaml_node_t *n, const char *s)
{
    if (!url_has_scheme(s, "http://") && !url_has_scheme(s, "https://"))
        return cfg_err(c, n, "expected an http:// or https:// URL, got '%s'", s);
    return 0;
}

/* https://, or http:// when the host is loopback (tests, dev set-ups). */
static int
check_issuer_url(struct ctx *c, yaml_node_t *n, const char *s)
{
    char host[256];

    if (url_has_scheme(s, "https://"))
        return 0;
    if (!url_has_scheme(s, "http://"))
        return cfg_err(c, n, "expected an https:// URL, got '%s'", s);
    if (host_of(s, host, sizeof(host)) != 0 || !host_is_loopback(host))
        return cfg_err(c, n, "'%s' must use https:// (http:// is allowed on loopback only)", s);
    return 0;
}

/* "gh/{repository}/{run_id}": every {claim} is closed and names a claim. */
static int
check_agent_name(struct ctx *c, yaml_node_t *n, const char *s)
{
    static const char claim_chars[] = "abcdefghijklmnopqrstuvwxyz"
                                      "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-.";
    const char *p;
    size_t len;

    for (p = s; *p; p++) {
        if (*p == '}')
            return cfg_err(c, n, "unmatched '}' in '%s'", s);
        if (*p != '{')
            continue;
        len = strspn(p + 1, claim_chars);
        if (len == 0 || p[1 + len] != '}')
            return cfg_err(c, n, "bad placeholder in '%s' (expected {claim})", s);
        p += len + 1;
    }
    return 0;
}

static int
check_tmpl_name(struct ctx *c, yaml_node_t *n, const char *s)
{
    size_t i, len = strlen(s);

    for (i = 0; i < len && len <= 63; i++) {
        if ((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= '0' && s[i] <= '9') || (s[i] == '-' && i > 0))
            continue;
        break;
    }
    if (len == 0 || len > 63 || i < len)
        return cfg_err(c, n, "template name '%s' must match [a-z0-9][a-z0-9-]{0,62}", s);
    return 0;
}

/* glob.c treats an unclosed '[' as a literal; in a config it is almost surely a typo. */
static int
check_glob(struct ctx *c, yaml_node_t *n, const char *s)
{
    const char *p;

    for (p = s; *p; p++) {
        if (*p != '[')
            continue;
        p++;
        if (*p == '!' || *p == '^')
            p++;
        if (*p == ']')
            p++;
        if ((p = strchr(p, ']')) == NULL)
            return cfg_err(c, n, "unclosed '[' in pattern '%s'", s);
    }
    return 0;
}

static int
check_event(struct ctx *c, yaml_node_t *n, const char *s)
{
    char all[256];
    size_t i, len = 0;

    for (i = 0; i < NELEM(event_names); i++)
        if (strcmp(s, event_names[i]) == 0)
            return 0;
    all[0] = '\0';
    for (i = 0; i < NELEM(event_names) && len < sizeof(all); i++)
        len +=
            (size_t)snprintf(all + len, sizeof(all) - len, "%s%s", i ? ", " : "", event_names[i]);
    return cfg_err(c, n, "unknown event '%s' (one of %s)", s, all);
}

/*
 * An RFC 6749 (section 3.3) scope-token: 1*( %x21 / %x23-5B / %x5D-7E ), that
 * is printable ASCII without space, '"' or '\'; here at most
 * CONFIG_UI_SCOPE_MAX_LEN characters. The UI joins the list with spaces, so a
 * space inside one entry would silently make two scopes.
 */
static int
check_scope(struct ctx *c, yaml_node_t *n, const char *s)
{
    const unsigned char *p;
    size_t len = strlen(s);

    if (len > CONFIG_UI_SCOPE_MAX_LEN)
        return cfg_err(c, n, "scope longer than %d characters (%zu)", CONFIG_UI_SCOPE_MAX_LEN, len);
    /* Control and non-ASCII bytes first: only then is s safe to quote in the message. */
    for (p = (const unsigned char *)s; *p; p++)
        if (*p < 0x20 || *p > 0x7e)
            return cfg_err(c, n,
                           "scope contains the byte 0x%02x (a scope is printable ASCII "
                           "without space, '\"' or '\\')",
                           *p);
    for (p = (const unsigned char *)s; *p; p++) {
        if (*p == ' ')
            return cfg_err(c, n,
                           "scope '%s' contains a space: write each scope as its own list "
                           "entry",
                           s);
        if (*p == '"' || *p == '\\')
            return cfg_err(c, n,
                           "scope '%s' contains '%c' (a scope is printable ASCII without "
                           "space, '\"' or '\\')",
                           s, *p);
    }
    return 0;
}

/* ------------------------------------------------------------------------ */
/* Addresses                                                                 */
/* ------------------------------------------------------------------------ */

static size_t
count_char(const char *s, size_t n, char ch)
{
    size_t i, k = 0;

    for (i = 0; i < n; i++)
        k += s[i] == ch;
    return k;
}

/*
 * Copies the host of a URL ("scheme://user@host:port/path") or of an address
 * ("host:port", "[v6]:port", a bare "::1") into buf, without brackets.
 * Returns 0, or -1 if there is no host or it does not fit.
 */
static int
host_of(const char *s, char *buf, size_t len)
{
    size_t scheme = strspn(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789+.-");
    const char *end, *p, *close;
    int is_url = scheme > 0 && strncmp(s + scheme, "://", 3) == 0;
    size_t n;

    if (is_url)
        s += scheme + 3;
    end = s + strcspn(s, "/?#");
    /* Userinfo ends at the last '@': "http://127.0.0.1@evil.example" is evil.example. */
    for (p = s; p < end; p++)
        if (*p == '@')
            s = p + 1;
    n = (size_t)(end - s);
    if (*s == '[') {
        if ((close = memchr(s, ']', n)) == NULL)
            return -1;
        s++;
        n = (size_t)(close - s);
    } else if (is_url || count_char(s, n, ':') < 2) {
        n = strcspn(s, ":/?#");
    } /* else two colons and no brackets: a bare IPv6 address such as "::1" */
    if (n == 0 || n >= len)
        return -1;
    memcpy(buf, s, n);
    buf[n] = '\0';
    return 0;
}

static int
host_is_loopback(const char *host)
{
    struct in_addr a4;
    struct in6_addr a6;

    if (strcasecmp(host, "localhost") == 0)
        return 1;
    if (inet_pton(AF_INET, host, &a4) == 1)
        return (ntohl(a4.s_addr) >> 24) == 127;
    if (inet_pton(AF_INET6, host, &a6) == 1)
        return IN6_IS_ADDR_LOOPBACK(&a6);
    return 0;
}

/* 1 if s is "host:port" or "[v6]:port" with a port in 1..65535. */
static int
listen_ok(const char *s)
{
    struct in6_addr a6;
    const char *colon;
    char host[64];
    uint64_t port;
    size_t n;

    if (s[0] == '[') {
        colon = strchr(s, ']');
        n = colon != NULL ? (size_t)(colon - s - 1) : 0;
        if (colon == NULL || colon[1] != ':' || n >= sizeof(host))
            return 0;
        memcpy(host, s + 1, n);
        host[n] = '\0';
        if (inet_pton(AF_INET6, host, &a6) != 1)
            return 0;
        colon++;
    } else {
        colon = strchr(s, ':');
        if (colon == NULL || colon == s || strchr(colon + 1, ':') != NULL)
            return 0;
    }
    return parse_uint(colon + 1, 65535, &port) == 0 && port > 0;
}

/* 1 if s starts with scheme and has a non-empty authority after it. */
static int
url_has_scheme(const char *s, const char *scheme)
{
    size_t n = strlen(scheme);

    return strncmp(s, scheme, n) == 0 && strcspn(s + n, "/?#") > 0;
}

/* ------------------------------------------------------------------------ */
/* Freeing                                                                   */
/* ------------------------------------------------------------------------ */

static void
set_str(char **dst, const char *s)
{
    free(*dst);
    *dst = s != NULL ? xstrdup(s) : NULL;
}

static void
strlist_add(struct strlist *l, const char *s)
{
    l->v = xrealloc(l->v, (l->n + 1) * sizeof(*l->v));
    l->v[l->n++] = xstrdup(s);
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
    for (i = 0; i < is->n_require; i++) {
        free(is->require[i].claim);
        strlist_cleanup(&is->require[i].globs);
    }
    free(is->require);
}

static void
tmpl_free(struct tmpl_cfg *t)
{
    free(t->name);
    free(t->display_name);
    free(t->description);
    subjects_cleanup(&t->allowed);
    subjects_cleanup(&t->approvers);
    subjects_cleanup(&t->auto_approve);
}
