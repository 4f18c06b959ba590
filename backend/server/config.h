/*
 * Server configuration: one YAML file (DESIGN.md section 3), then flags and
 * AIRLOCK_* variables on top. config_load() validates everything (unknown
 * keys, bad durations, non-https issuers off loopback) and reports the file,
 * line and key at fault.
 */
#ifndef AIRLOCK_CONFIG_H
#define AIRLOCK_CONFIG_H
#include <stddef.h>
#include <stdint.h>

/* A list of strings (groups, users, agent globs, event names). */
struct strlist {
    char **v;
    size_t n;
};

/* Who a rule applies to: exact or glob entries. */
struct subjects {
    struct strlist groups; /* case-insensitive, globs allowed */
    struct strlist users;  /* usernames or emails, case-insensitive, globs allowed */
    struct strlist agents; /* agent-name globs, case-sensitive */
};

struct claim_rule {
    char *claim;          /* claim name */
    struct strlist globs; /* the claim's value must match one (case-sensitive) */
};

enum issuer_kind { ISSUER_USER, ISSUER_AGENT };

struct issuer_cfg {
    char *name;
    char *issuer;   /* exact "iss"; https:// unless loopback */
    char *audience; /* required in "aud" */
    enum issuer_kind kind;
    char *username_claim;     /* default "preferred_username" (falls back to "sub") */
    char *email_claim;        /* default "email" */
    char *name_claim;         /* default "name" */
    char *groups_claim;       /* default "groups" */
    char *ui_client_id;       /* SPA client id, optional */
    struct strlist ui_scopes; /* scopes the SPA asks for; default config_ui_scopes_default */
    char *agent_name;  /* kind agent: template like "gh/{repository}/{run_id}-{run_attempt}" */
    char *owner_claim; /* kind agent: claim naming the person who owns the session */
    struct claim_rule *require;
    size_t n_require;
    int trust_email;       /* kind user: an email claim counts without email_verified */
    char *identity_domain; /* people with the same username in two issuers of one domain
                              are one person; default: the issuer's name (never merged) */
};

struct tmpl_cfg {
    char *name;
    char *display_name;
    char *description;
    struct subjects allowed;
    struct subjects approvers;    /* groups + users that may approve */
    struct subjects auto_approve; /* approvers.autoApproveFor: groups + agents (+ users) */
    int64_t max_duration_s;       /* default 4h */
    int64_t default_duration_s;   /* default min(1h, max) */
    int64_t min_duration_s;       /* 0 = none */
    int allow_renewal;            /* default 1 */
    int max_renewals;             /* default 3; 0 = none */
    int sharing_enabled;          /* default 1 */
    int max_participants;         /* default 5 */
    int read_only_participants;   /* default 0 */
    int sharing_browser;          /* terminalSharing.browser: the browser terminal; default 1 */
    int op_shell, op_exec, op_sftp, op_port_forward; /* defaults 1,1,1,0 */
    int reason_mandatory;                            /* default 0 */
    int reason_min_len;                              /* default 0 */
    int reason_max_len;                              /* default 1000 */
    int reject_reason_mandatory; /* approvalReason.mandatoryForRejection, default 0 */
    int max_open_per_user;       /* constraints.maxOpenSessionsPerUser; 0 = none (sessquota.c) */
    /* time rules (timerules.h) */
    int64_t claim_deadline_s; /* constraints.claimDeadline; 0 = none */
    int clock_first_connect;  /* constraints.clockStartsAt: firstConnect (needs claimDeadline) */
    int64_t idle_timeout_s;   /* constraints.idleTimeout; 0 = none */
    int64_t auto_step_s;      /* constraints.autoExtend.step; 0 = no autoExtend */
    int64_t auto_max_total_s; /* constraints.autoExtend.maxTotal; default maxDuration */
    int rec_enabled;          /* recording.enabled, default 0 (recording.c) */
    int rec_required;         /* recording.required, default 0: needs enabled */
    int rec_max_mib;          /* recording.maxMiB: the size cap per session */
};
#define TMPL_REC_MAX_MIB_DEFAULT 256

struct webhook_cfg {
    char *url;
    struct strlist events; /* empty = all */
};

/* limits: one client cannot take the server down (connguard.c, docs/configuration.md) */
struct limits_cfg {
    int connections_per_client;     /* default 64; 0 = no cap */
    int requests_per_second;        /* default 20; 0 = no rate limit */
    int burst;                      /* default 100 */
    int64_t request_deadline_s;     /* default 30s: headers and body, from the request line */
    int sessions_per_user;          /* open sessions a person may have; default 10, 0 = no cap */
    struct strlist trusted_proxies; /* IPs/CIDRs whose X-Forwarded-For is believed; default none */
};

struct config {
    char *listen;                 /* "127.0.0.1:8080" */
    char *public_url;             /* default "http://<listen>" */
    char *data_dir;               /* default "var" */
    char *ui_dir;                 /* static SPA files; default "frontend/dist" */
    char *download_dir;           /* download.dir: the agent bundle; default "build/dist" */
    char *snippet_github_action;  /* snippets.githubAction; default CONFIG_GITHUB_ACTION */
    char *snippet_gitlab_include; /* snippets.gitlabInclude; default CONFIG_GITLAB_INCLUDE */
    int64_t approval_timeout_s;   /* default 24h */
    int64_t agent_grace_s;        /* default 5m */
    int64_t retention_s;          /* default 168h */
    int dev;                      /* auth.dev or --dev */
    int dev_allow_remote;         /* --dev-allow-remote */
    int log_json;                 /* --log-format json */
    char *tls_cert, *tls_key;     /* optional built-in TLS (PEM file paths) */
    struct issuer_cfg *issuers;
    size_t n_issuers;
    struct subjects admins; /* groups/users */
    struct subjects agent_registrars;
    struct tmpl_cfg *templates;
    size_t n_templates;
    struct webhook_cfg *webhooks;
    size_t n_webhooks;
    struct limits_cfg limits;
};

/* Where the snippets say the GitHub Action and the GitLab template are (docs/ci.md). */
#define CONFIG_GITHUB_ACTION "airlock/airlock@v" AIRLOCK_VERSION
#define CONFIG_GITLAB_INCLUDE                                                                      \
    "https://raw.githubusercontent.com/airlock/airlock/v" AIRLOCK_VERSION "/ci/gitlab/airlock.yml"

/* Limits on uiScopes (RFC 6749 section 3.3 scope-tokens). */
#define CONFIG_UI_SCOPES_MAX 32     /* entries */
#define CONFIG_UI_SCOPE_MAX_LEN 128 /* characters per scope */

/*
 * The scopes the web UI asks for when an issuer sets no uiScopes, and the ones
 * GET /api/v1/config reports when no issuer has a uiClientId. NULL-terminated.
 */
extern const char *const config_ui_scopes_default[];

/*
 * Fills *cfg with defaults, then reads path (if not NULL). On failure writes
 * "FILE:LINE: key 'x': problem" into err and returns ERR_INVALID (or
 * ERR_SYSTEM when the file cannot be read). cfg must be freed with
 * config_free() either way.
 */
int config_load(struct config *cfg, const char *path, char *err, size_t err_len);
/* Sets the defaults config_load starts from. */
void config_defaults(struct config *cfg);
/* Checks cross-field rules after flags were applied (dev on loopback, ...). */
int config_validate(const struct config *cfg, char *err, size_t err_len);
/* Frees everything cfg owns and zeroes it. NULL is a no-op. */
void config_free(struct config *cfg);
/* Template by name, or NULL. Borrowed. */
const struct tmpl_cfg *config_template(const struct config *cfg, const char *name);
/* 1 if the host part of url (or a "host:port" listen address) is loopback. */
int config_is_loopback(const char *url_or_addr);
/*
 * Fills the values that depend on other settings, once flags and AIRLOCK_*
 * variables were applied and before config_validate(): public_url defaults
 * to "http://<listen>" ("https://" when tls.cert is set), and trailing
 * slashes are removed from it.
 */
void config_finish(struct config *cfg);

#endif
