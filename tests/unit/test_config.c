/*
 * Unit tests for backend/server/config.c: each case writes a YAML file into a
 * temporary directory, loads it, and checks either the values or the exact
 * "FILE:LINE: key 'path': message" error.
 */
#include <errno.h>
#include <limits.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "config.h"
#include "err.h"

static char tmpdir[64];
static char yaml_path[128];

/* Writes text to the test's config file; returns its path. */
static const char *
write_yaml(const char *text)
{
    FILE *f = fopen(yaml_path, "w");

    assert_non_null(f);
    assert_int_equal(fputs(text, f) >= 0, 1);
    assert_int_equal(fclose(f), 0);
    return yaml_path;
}

static int
load_text(struct config *cfg, const char *text, char *err, size_t err_len)
{
    return config_load(cfg, write_yaml(text), err, err_len);
}

/*
 * A file of the source tree: found relative to this source file (the Makefile
 * compiles tests/unit/test_config.c from the top of the tree), or else
 * relative to the current directory.
 */
static void
tree_path(const char *rel, char *out, size_t len)
{
    const char *slash = strrchr(__FILE__, '/');

    snprintf(out, len, "%.*s/../../%s", slash != NULL ? (int)(slash - __FILE__) : 1,
             slash != NULL ? __FILE__ : ".", rel);
    if (access(out, R_OK) != 0)
        snprintf(out, len, "%s", rel);
}

static int
setup(void **state)
{
    (void)state;
    snprintf(tmpdir, sizeof(tmpdir), "/tmp/airlock-config-XXXXXX");
    if (mkdtemp(tmpdir) == NULL)
        return -1;
    snprintf(yaml_path, sizeof(yaml_path), "%s/airlock.yaml", tmpdir);
    return 0;
}

static int
teardown(void **state)
{
    (void)state;
    unlink(yaml_path);
    return rmdir(tmpdir);
}

/* ------------------------------------------------------------------------ */

static void
test_defaults(void **state)
{
    struct config cfg;
    char err[512];
    (void)state;

    assert_int_equal(config_load(&cfg, NULL, err, sizeof(err)), 0);
    assert_string_equal(cfg.listen, "127.0.0.1:8080");
    assert_null(cfg.public_url);
    assert_string_equal(cfg.data_dir, "var");
    assert_string_equal(cfg.ui_dir, "frontend/dist");
    assert_string_equal(cfg.download_dir, "build/dist");
    assert_string_equal(cfg.snippet_github_action, "airlock/airlock@v" AIRLOCK_VERSION);
    assert_int_equal(cfg.approval_timeout_s, 24 * 3600);
    assert_int_equal(cfg.agent_grace_s, 300);
    assert_int_equal(cfg.retention_s, 168 * 3600);
    assert_int_equal(cfg.dev, 0);
    assert_int_equal(cfg.log_json, 0);
    assert_int_equal(cfg.n_issuers, 0);
    assert_int_equal(cfg.n_templates, 0);
    config_free(&cfg);

    /* An empty file is all defaults too. */
    assert_int_equal(load_text(&cfg, "# nothing here\n", err, sizeof(err)), 0);
    assert_string_equal(cfg.listen, "127.0.0.1:8080");
    config_free(&cfg);
    config_free(NULL);
}

static void
test_top_level_values(void **state)
{
    static const char yaml[] = "listen: 0.0.0.0:9090\n"
                               "publicUrl: https://airlock.example.com/\n"
                               "dataDir: /var/lib/airlock\n"
                               "uiDir: /usr/share/airlock/ui\n"
                               "download: { dir: /usr/share/airlock/dist }\n"
                               "snippets: { githubAction: acme/airlock@v1 }\n"
                               "approvalTimeout: 1d12h\n"
                               "agentGracePeriod: 90s\n"
                               "retention: 30d\n"
                               "logFormat: json\n"
                               "tls: { cert: /etc/a.pem, key: /etc/a.key }\n"
                               "auth:\n"
                               "  dev: false\n"
                               "  admins: { groups: [airlock-admins], users: [root@example.com] }\n"
                               "  agentRegistrars: { groups: [ops] }\n"
                               "notifications:\n"
                               "  webhooks:\n"
                               "    - url: https://hooks.example.com/a\n"
                               "      events: [created, agent_offline]\n"
                               "    - url: http://10.0.0.5/b\n";
    struct config cfg;
    char err[512];
    (void)state;

    assert_int_equal(load_text(&cfg, yaml, err, sizeof(err)), 0);
    assert_string_equal(cfg.listen, "0.0.0.0:9090");
    assert_string_equal(cfg.data_dir, "/var/lib/airlock");
    assert_string_equal(cfg.ui_dir, "/usr/share/airlock/ui");
    assert_string_equal(cfg.download_dir, "/usr/share/airlock/dist");
    assert_string_equal(cfg.snippet_github_action, "acme/airlock@v1");
    assert_int_equal(cfg.approval_timeout_s, 36 * 3600);
    assert_int_equal(cfg.agent_grace_s, 90);
    assert_int_equal(cfg.retention_s, 30 * 86400);
    assert_int_equal(cfg.log_json, 1);
    assert_string_equal(cfg.tls_cert, "/etc/a.pem");
    assert_string_equal(cfg.tls_key, "/etc/a.key");
    assert_int_equal(cfg.admins.groups.n, 1);
    assert_string_equal(cfg.admins.users.v[0], "root@example.com");
    assert_string_equal(cfg.agent_registrars.groups.v[0], "ops");
    assert_int_equal(cfg.n_webhooks, 2);
    assert_int_equal(cfg.webhooks[0].events.n, 2);
    assert_string_equal(cfg.webhooks[0].events.v[1], "agent_offline");
    assert_int_equal(cfg.webhooks[1].events.n, 0); /* empty = all events */
    config_finish(&cfg);
    assert_string_equal(cfg.public_url, "https://airlock.example.com");
    config_free(&cfg);
}

static void
test_issuers(void **state)
{
    static const char yaml[] =
        "auth:\n"
        "  issuers:\n"
        "    - name: corp\n"
        "      issuer: https://idp.example.com/realms/corp\n"
        "      audience: airlock\n"
        "      uiClientId: airlock-ui\n"
        "      groupsClaim: roles\n"
        "    - name: corp-new\n"
        "      issuer: https://login.example.com\n"
        "      audience: airlock\n"
        "      trustEmail: true\n"
        "      identityDomain: corp\n"
        "    - name: github-actions\n"
        "      issuer: https://token.actions.githubusercontent.com\n"
        "      audience: airlock\n"
        "      kind: agent\n"
        "      agentName: \"gh/{repository}/{run_id}-{run_attempt}\"\n"
        "      ownerClaim: actor\n"
        "      require: { repository_owner: [\"acme\", \"acme-*\"], ref: refs/heads/main }\n";
    struct config cfg;
    const struct issuer_cfg *is;
    char err[512];
    (void)state;

    assert_int_equal(load_text(&cfg, yaml, err, sizeof(err)), 0);
    assert_int_equal(cfg.n_issuers, 3);
    is = &cfg.issuers[0];
    assert_string_equal(is->name, "corp");
    assert_int_equal(is->kind, ISSUER_USER);
    assert_string_equal(is->username_claim, "preferred_username");
    assert_string_equal(is->email_claim, "email");
    assert_string_equal(is->name_claim, "name");
    assert_string_equal(is->groups_claim, "roles");
    assert_string_equal(is->ui_client_id, "airlock-ui");
    assert_null(is->agent_name);
    assert_int_equal(is->trust_email, 0);
    assert_null(is->identity_domain);
    is = &cfg.issuers[1];
    assert_int_equal(is->trust_email, 1);
    assert_string_equal(is->identity_domain, "corp");
    is = &cfg.issuers[2];
    assert_int_equal(is->kind, ISSUER_AGENT);
    assert_string_equal(is->agent_name, "gh/{repository}/{run_id}-{run_attempt}");
    assert_string_equal(is->owner_claim, "actor");
    assert_int_equal(is->n_require, 2);
    assert_string_equal(is->require[0].claim, "repository_owner");
    assert_int_equal(is->require[0].globs.n, 2);
    assert_string_equal(is->require[0].globs.v[1], "acme-*");
    assert_string_equal(is->require[1].claim, "ref");
    assert_int_equal(is->require[1].globs.n, 1); /* a single string is a list of one */
    assert_string_equal(is->require[1].globs.v[0], "refs/heads/main");
    config_free(&cfg);
}

/* uiScopes: the default, a list of its own (replacing the default), null keeping the default. */
static void
test_ui_scopes(void **state)
{
    static const char yaml[] = "auth:\n"
                               "  issuers:\n"
                               "    - name: dex\n"
                               "      issuer: https://dex.example.com\n"
                               "      audience: airlock\n"
                               "      uiClientId: airlock-ui\n"
                               "      uiScopes: [openid, groups, offline_access, "
                               "\"!#$%&'()*+,-./09:;<=>?@AZ[]^_`az{|}~\"]\n"
                               "    - name: keycloak\n"
                               "      issuer: https://kc.example.com/realms/corp\n"
                               "      audience: airlock\n"
                               "      uiClientId: airlock-ui\n"
                               "      uiScopes:\n"
                               "    - name: plain\n"
                               "      issuer: https://idp.example.com\n"
                               "      audience: airlock\n";
    static const char *const defaults[] = {"openid", "profile", "email"};
    struct config cfg;
    const struct issuer_cfg *is;
    char err[512];
    size_t i, k;
    (void)state;

    if (load_text(&cfg, yaml, err, sizeof(err)) != 0)
        fail_msg("%s", err);
    is = &cfg.issuers[0];
    assert_int_equal(is->ui_scopes.n, 4);
    assert_string_equal(is->ui_scopes.v[0], "openid");
    assert_string_equal(is->ui_scopes.v[1], "groups");
    assert_string_equal(is->ui_scopes.v[2], "offline_access");
    /* every character RFC 6749 allows in a scope-token, at both ends of each range */
    assert_string_equal(is->ui_scopes.v[3], "!#$%&'()*+,-./09:;<=>?@AZ[]^_`az{|}~");
    /* "uiScopes:" with no value and no uiScopes at all both mean the default */
    for (k = 1; k < 3; k++) {
        is = &cfg.issuers[k];
        assert_int_equal(is->ui_scopes.n, 3);
        for (i = 0; i < 3; i++)
            assert_string_equal(is->ui_scopes.v[i], defaults[i]);
    }
    for (i = 0; i < 3; i++)
        assert_string_equal(config_ui_scopes_default[i], defaults[i]);
    assert_null(config_ui_scopes_default[3]);
    config_free(&cfg);
}

/* uiScopes limits, both sides: 32 entries and 128 characters pass, one more is refused. */
static void
test_ui_scopes_limits(void **state)
{
    static const char head[] = "auth:\n  issuers:\n    - name: a\n      issuer: https://a.example\n"
                               "      audience: x\n      uiClientId: ui\n      uiScopes: [openid";
    struct config cfg;
    char yaml[8192], err[1024], want[1024], longest[CONFIG_UI_SCOPE_MAX_LEN + 2];
    size_t i, len;
    int r, extra;
    (void)state;

    /* 32 entries: openid and s1..s31; then 33 */
    for (extra = 0; extra < 2; extra++) {
        len = (size_t)snprintf(yaml, sizeof(yaml), "%s", head);
        for (i = 1; i < CONFIG_UI_SCOPES_MAX + (size_t)extra; i++)
            len += (size_t)snprintf(yaml + len, sizeof(yaml) - len, ", s%zu", i);
        snprintf(yaml + len, sizeof(yaml) - len, "]\n");
        r = load_text(&cfg, yaml, err, sizeof(err));
        if (extra == 0) {
            assert_int_equal(r, 0);
            assert_int_equal(cfg.issuers[0].ui_scopes.n, CONFIG_UI_SCOPES_MAX);
        } else {
            snprintf(want, sizeof(want),
                     "%s:7: key 'auth.issuers[0].uiScopes': at most 32 scopes, got 33", yaml_path);
            assert_int_equal(r, ERR_INVALID);
            assert_string_equal(err, want);
        }
        config_free(&cfg);
    }

    /* a scope of 128 characters; then 129 */
    for (extra = 0; extra < 2; extra++) {
        memset(longest, 'x', sizeof(longest));
        longest[CONFIG_UI_SCOPE_MAX_LEN + extra] = '\0';
        snprintf(yaml, sizeof(yaml), "%s, %s]\n", head, longest);
        r = load_text(&cfg, yaml, err, sizeof(err));
        if (extra == 0) {
            assert_int_equal(r, 0);
            assert_string_equal(cfg.issuers[0].ui_scopes.v[1], longest);
        } else {
            snprintf(want, sizeof(want),
                     "%s:7: key 'auth.issuers[0].uiScopes[1]': scope longer than 128 characters "
                     "(129)",
                     yaml_path);
            assert_int_equal(r, ERR_INVALID);
            assert_string_equal(err, want);
        }
        config_free(&cfg);
    }
}

/* http:// issuers are accepted on loopback only. */
static void
test_issuer_url_loopback(void **state)
{
    static const struct {
        const char *url;
        int ok;
    } cases[] = {
        {"https://idp.example.com", 1},
        {"http://127.0.0.1:9000/realms/test", 1},
        {"http://127.8.9.10", 1},
        {"http://[::1]:8080/x", 1},
        {"http://localhost:4000", 1},
        {"http://LOCALHOST", 1},
        {"http://idp.example.com", 0},
        {"http://10.0.0.1:9000", 0},
        {"http://128.0.0.1", 0},
        {"http://127.0.0.1@evil.example/", 0},
        {"http://localhost.evil.example", 0},
        {"http://[::2]:8080", 0},
        {"ftp://127.0.0.1", 0},
        {"https://", 0},
    };
    size_t i;
    (void)state;

    for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct config cfg;
        char yaml[512], err[512];
        int r;

        snprintf(yaml, sizeof(yaml),
                 "auth:\n  issuers:\n    - name: t\n      issuer: \"%s\"\n      audience: a\n",
                 cases[i].url);
        r = load_text(&cfg, yaml, err, sizeof(err));
        if (cases[i].ok) {
            assert_int_equal(r, 0);
            assert_string_equal(cfg.issuers[0].issuer, cases[i].url);
        } else {
            assert_int_equal(r, ERR_INVALID);
            assert_non_null(strstr(err, ":4: key 'auth.issuers[0].issuer': "));
        }
        config_free(&cfg);
    }
}

static void
test_template_defaults(void **state)
{
    static const char yaml[] = "templates:\n"
                               "  - name: plain\n"
                               "  - name: short\n"
                               "    constraints: { maxDuration: 30m }\n"
                               "  - name: long-min\n"
                               "    constraints: { minDuration: 2h }\n";
    struct config cfg;
    const struct tmpl_cfg *t;
    char err[512];
    (void)state;

    assert_int_equal(load_text(&cfg, yaml, err, sizeof(err)), 0);
    t = config_template(&cfg, "plain");
    assert_non_null(t);
    assert_string_equal(t->display_name, "plain");
    assert_string_equal(t->description, "");
    assert_int_equal(t->max_duration_s, 4 * 3600);
    assert_int_equal(t->default_duration_s, 3600);
    assert_int_equal(t->min_duration_s, 0);
    assert_int_equal(t->allow_renewal, 1);
    assert_int_equal(t->max_renewals, 3);
    assert_int_equal(t->sharing_enabled, 1);
    assert_int_equal(t->max_participants, 5);
    assert_int_equal(t->read_only_participants, 0);
    assert_int_equal(t->op_shell, 1);
    assert_int_equal(t->op_exec, 1);
    assert_int_equal(t->op_sftp, 1);
    assert_int_equal(t->op_port_forward, 0);
    assert_int_equal(t->reason_mandatory, 0);
    assert_int_equal(t->reason_min_len, 0);
    assert_int_equal(t->reason_max_len, 1000);
    assert_int_equal(t->reject_reason_mandatory, 0);
    assert_int_equal(t->approvers.groups.n + t->approvers.users.n, 0);
    /* The default duration is min(1h, maxDuration), but never below minDuration. */
    assert_int_equal(config_template(&cfg, "short")->default_duration_s, 1800);
    assert_int_equal(config_template(&cfg, "long-min")->default_duration_s, 7200);
    assert_null(config_template(&cfg, "nope"));
    config_free(&cfg);
}

static void
test_template_values(void **state)
{
    static const char yaml[] =
        "templates:\n"
        "  - name: ci-debug\n"
        "    displayName: CI job debug\n"
        "    description: Shell into a failed CI job\n"
        "    allowed:   { groups: [developers], users: [], agents: [\"gh/acme/*\"] }\n"
        "    approvers: { groups: [sre-leads], users: [bob],\n"
        "                 autoApproveFor: { groups: [sre-leads], users: [carol],\n"
        "                                   agents: [\"gh/acme/sandbox/*\"] } }\n"
        "    constraints: { maxDuration: 4h, defaultDuration: 1h, minDuration: 5m,\n"
        "                   allowRenewal: false, maxRenewals: 0 }\n"
        "    terminalSharing: { enabled: false, provider: tmux, maxParticipants: 100,\n"
        "                       readOnlyParticipants: true }\n"
        "    allowedOperations: { shell: true, exec: false, sftp: false, portForward: true }\n"
        "    requestReason: { mandatory: true, minLength: 10, maxLength: 65536 }\n"
        "    approvalReason: { mandatoryForRejection: true }\n";
    struct config cfg;
    const struct tmpl_cfg *t;
    char err[512];
    (void)state;

    assert_int_equal(load_text(&cfg, yaml, err, sizeof(err)), 0);
    t = config_template(&cfg, "ci-debug");
    assert_non_null(t);
    assert_string_equal(t->display_name, "CI job debug");
    assert_string_equal(t->description, "Shell into a failed CI job");
    assert_int_equal(t->allowed.groups.n, 1);
    assert_int_equal(t->allowed.users.n, 0);
    assert_string_equal(t->allowed.agents.v[0], "gh/acme/*");
    assert_string_equal(t->approvers.groups.v[0], "sre-leads");
    assert_string_equal(t->approvers.users.v[0], "bob");
    assert_string_equal(t->auto_approve.groups.v[0], "sre-leads");
    assert_string_equal(t->auto_approve.users.v[0], "carol");
    assert_string_equal(t->auto_approve.agents.v[0], "gh/acme/sandbox/*");
    assert_int_equal(t->max_duration_s, 4 * 3600);
    assert_int_equal(t->default_duration_s, 3600);
    assert_int_equal(t->min_duration_s, 300);
    assert_int_equal(t->allow_renewal, 0);
    assert_int_equal(t->max_renewals, 0);
    assert_int_equal(t->sharing_enabled, 0);
    assert_int_equal(t->max_participants, 100);
    assert_int_equal(t->read_only_participants, 1);
    assert_int_equal(t->op_shell, 1);
    assert_int_equal(t->op_exec, 0);
    assert_int_equal(t->op_sftp, 0);
    assert_int_equal(t->op_port_forward, 1);
    assert_int_equal(t->reason_mandatory, 1);
    assert_int_equal(t->reason_min_len, 10);
    assert_int_equal(t->reason_max_len, 65536);
    assert_int_equal(t->reject_reason_mandatory, 1);
    config_free(&cfg);
}

/* A key with no value ("key:", "~", "null") leaves the default in place. */
static void
test_null_keeps_default(void **state)
{
    static const char yaml[] = "listen:\n"
                               "dataDir: ~\n"
                               "templates:\n"
                               "  - name: a\n"
                               "    approvers:\n"
                               "    constraints: { maxRenewals: null }\n";
    struct config cfg;
    char err[512];
    (void)state;

    assert_int_equal(load_text(&cfg, yaml, err, sizeof(err)), 0);
    assert_string_equal(cfg.listen, "127.0.0.1:8080");
    assert_string_equal(cfg.data_dir, "var");
    assert_int_equal(cfg.templates[0].max_renewals, 3);
    config_free(&cfg);
}

/* An issuer with a uiClientId in lines 1-6 of a test file; its uiScopes go on line 7. */
#define UI_ISSUER                                                                                  \
    "auth:\n  issuers:\n    - name: a\n      issuer: https://a.example\n      audience: x\n"       \
    "      uiClientId: ui\n"

/* Every load error names the file, the line and the key at fault. */
static void
test_errors(void **state)
{
    static const struct {
        const char *yaml;
        const char *want; /* the message after "FILE:" */
    } cases[] = {
        /* unknown keys, at the top and deep down */
        {"listne: 1.2.3.4:5\n", "1: key 'listne': unknown key"},
        {"templates:\n  - name: a\n  - name: b\n    constraints:\n      maxDuratio: 2h\n",
         "5: key 'templates[1].constraints.maxDuratio': unknown key"},
        {"templates:\n  - name: a\n    approvers: { agents: [x] }\n",
         "3: key 'templates[0].approvers.agents': unknown key"},
        {"auth:\n  admins: { agents: [x] }\n", "2: key 'auth.admins.agents': unknown key"},
        {"listen: 127.0.0.1:1\nlisten: 127.0.0.1:2\n",
         "2: key 'listen': duplicate key (first at line 1)"},
        /* durations */
        {"approvalTimeout: 10x\n",
         "1: key 'approvalTimeout': bad duration '10x' (e.g. 90s, 30m, 1h30m, 2d; at most 365d)"},
        {"retention: 0s\n",
         "1: key 'retention': bad duration '0s' (e.g. 90s, 30m, 1h30m, 2d; at most 365d)"},
        {"templates:\n  - name: a\n    constraints: { maxDuration: 400d }\n",
         "3: key 'templates[0].constraints.maxDuration': bad duration '400d' (e.g. 90s, 30m, "
         "1h30m, 2d; at most 365d)"},
        /* wrong types */
        {"- listen\n", "1: top level: expected a mapping, got a list"},
        {"templates:\n  - name: a\n    constraints: [maxDuration, 2h]\n",
         "3: key 'templates[0].constraints': expected a mapping, got a list"},
        {"templates: { name: a }\n", "1: key 'templates': expected a list, got a mapping"},
        {"templates:\n  - name: a\n    allowed: { groups: developers }\n",
         "3: key 'templates[0].allowed.groups': expected a list, got a string"},
        {"templates:\n  - name: a\n    allowed: { groups: [[x]] }\n",
         "3: key 'templates[0].allowed.groups[0]': expected a string, got a list"},
        {"listen: { host: x }\n", "1: key 'listen': expected a string, got a mapping"},
        {"snippets: { gitlabInclude: ci/airlock.yml }\n",
         "1: key 'snippets.gitlabInclude': expected an http:// or https:// URL, got "
         "'ci/airlock.yml'"},
        /* booleans and integers */
        {"auth:\n  dev: yes\n", "2: key 'auth.dev': expected true or false, got 'yes'"},
        {"auth:\n  dev: \"true\"\n",
         "2: key 'auth.dev': expected true or false, got the quoted string 'true'"},
        {"templates:\n  - name: a\n    terminalSharing: { maxParticipants: 0 }\n",
         "3: key 'templates[0].terminalSharing.maxParticipants': expected an integer from 1 to "
         "100, got '0'"},
        {"templates:\n  - name: a\n    terminalSharing: { maxParticipants: 101 }\n",
         "3: key 'templates[0].terminalSharing.maxParticipants': expected an integer from 1 to "
         "100, got '101'"},
        {"templates:\n  - name: a\n    constraints: { maxRenewals: -1 }\n",
         "3: key 'templates[0].constraints.maxRenewals': expected an integer from 0 to 1000, "
         "got '-1'"},
        {"templates:\n  - name: a\n    constraints: { maxRenewals: 5x }\n",
         "3: key 'templates[0].constraints.maxRenewals': expected an integer from 0 to 1000, "
         "got '5x'"},
        {"templates:\n  - name: a\n    requestReason: { maxLength: 65537 }\n",
         "3: key 'templates[0].requestReason.maxLength': expected an integer from 0 to 65536, "
         "got '65537'"},
        /* cross-key rules */
        {"templates:\n  - name: a\n    constraints:\n      maxDuration: 2h\n"
         "      defaultDuration: 3h\n",
         "5: key 'templates[0].constraints.defaultDuration': defaultDuration (3h) is longer than "
         "maxDuration (2h)"},
        {"templates:\n  - name: a\n    constraints: { defaultDuration: 5h }\n",
         "3: key 'templates[0].constraints.defaultDuration': defaultDuration (5h) is longer than "
         "maxDuration (4h)"},
        {"templates:\n  - name: a\n    constraints: { minDuration: 2h, defaultDuration: 1h }\n",
         "3: key 'templates[0].constraints.defaultDuration': defaultDuration (1h) is shorter than "
         "minDuration (2h)"},
        {"templates:\n  - name: a\n    constraints: { maxDuration: 1h, minDuration: 2h }\n",
         "3: key 'templates[0].constraints.minDuration': minDuration (2h) is longer than "
         "maxDuration (1h)"},
        {"templates:\n  - name: a\n    requestReason: { minLength: 20, maxLength: 10 }\n",
         "3: key 'templates[0].requestReason.minLength': minLength (20) is greater than "
         "maxLength (10)"},
        {"templates:\n  - name: a\n    requestReason: { mandatory: true, maxLength: 0 }\n",
         "3: key 'templates[0].requestReason.maxLength': a mandatory reason needs a maxLength "
         "above 0"},
        /* templates */
        {"templates:\n  - name: a\n  - name: b\n  - name: a\n",
         "4: key 'templates[2].name': duplicate template name 'a'"},
        {"templates:\n  - displayName: X\n", "2: key 'templates[0].name': missing required key"},
        {"templates:\n  - name:\n", "2: key 'templates[0].name': required key has no value"},
        {"templates:\n  - name: Bad_Name\n",
         "2: key 'templates[0].name': template name 'Bad_Name' must match "
         "[a-z0-9][a-z0-9-]{0,62}"},
        {"templates:\n  - name: -a\n",
         "2: key 'templates[0].name': template name '-a' must match [a-z0-9][a-z0-9-]{0,62}"},
        {"templates:\n  - name: a234567890123456789012345678901234567890123456789012345678901234\n",
         "2: key 'templates[0].name': template name "
         "'a234567890123456789012345678901234567890123456789012345678901234' must match "
         "[a-z0-9][a-z0-9-]{0,62}"},
        {"templates:\n  - name: a\n    terminalSharing: { provider: screen }\n",
         "3: key 'templates[0].terminalSharing.provider': unsupported provider 'screen' (only "
         "tmux)"},
        {"templates:\n  - name: a\n    allowed: { agents: [\"gh/[abc\"] }\n",
         "3: key 'templates[0].allowed.agents[0]': unclosed '[' in pattern 'gh/[abc'"},
        {"templates:\n  - name: a\n    allowed: { users: [\"\"] }\n",
         "3: key 'templates[0].allowed.users[0]': must not be empty"},
        /* issuers */
        {"auth:\n  issuers:\n    - name: corp\n      issuer: http://idp.example.com\n"
         "      audience: airlock\n",
         "4: key 'auth.issuers[0].issuer': 'http://idp.example.com' must use https:// (http:// "
         "is allowed on loopback only)"},
        {"auth:\n  issuers:\n    - name: corp\n      issuer: https://idp.example.com\n",
         "3: key 'auth.issuers[0].audience': missing required key"},
        {"auth:\n  issuers:\n    - issuer: https://a.example\n      audience: x\n",
         "3: key 'auth.issuers[0].name': missing required key"},
        {"auth:\n  issuers:\n    - { name: a, issuer: \"https://a.example\", audience: x }\n"
         "    - { name: a, issuer: \"https://b.example\", audience: x }\n",
         "4: key 'auth.issuers[1].name': duplicate issuer name 'a'"},
        {"auth:\n  issuers:\n    - { name: a, issuer: \"https://a.example\", audience: x }\n"
         "    - { name: b, issuer: \"https://a.example\", audience: x }\n",
         "4: key 'auth.issuers[1].issuer': issuer 'https://a.example' is already configured as "
         "'a'"},
        {"auth:\n  issuers:\n    - { name: a, issuer: \"https://a.example\", audience: x,\n"
         "        kind: bot }\n",
         "4: key 'auth.issuers[0].kind': expected user or agent, got 'bot'"},
        {"auth:\n  issuers:\n    - { name: a, issuer: \"https://a.example\", audience: x,\n"
         "        agentName: \"gh/{repo}\" }\n",
         "4: key 'auth.issuers[0].agentName': only valid with kind: agent"},
        {"auth:\n  issuers:\n    - { name: a, issuer: \"https://a.example\", audience: x,\n"
         "        kind: agent, agentName: \"gh/{repo}\", trustEmail: true }\n",
         "4: key 'auth.issuers[0].trustEmail': only valid with kind: user"},
        {"auth:\n  issuers:\n    - { name: a, issuer: \"https://a.example\", audience: x,\n"
         "        trustEmail: yes }\n",
         "4: key 'auth.issuers[0].trustEmail': expected true or false, got 'yes'"},
        {"auth:\n  issuers:\n    - { name: a, issuer: \"https://a.example\", audience: x,\n"
         "        kind: agent, agentName: \"gh/{repo\" }\n",
         "4: key 'auth.issuers[0].agentName': bad placeholder in 'gh/{repo' (expected {claim})"},
        {"auth:\n  issuers:\n    - name: a\n      issuer: https://a.example\n      audience: x\n"
         "      require:\n        repository_owner: []\n",
         "7: key 'auth.issuers[0].require.repository_owner': needs at least one glob"},
        {"auth:\n  issuers:\n    - name: a\n      issuer: https://a.example\n      audience: x\n"
         "      require: [repository_owner]\n",
         "6: key 'auth.issuers[0].require': expected a mapping of claim: [globs], got a list"},
        /* issuers: uiScopes */
        {UI_ISSUER "      uiScopes: openid profile groups\n",
         "7: key 'auth.issuers[0].uiScopes': expected a list of scopes such as [openid, profile, "
         "email], got a string"},
        {UI_ISSUER "      uiScopes: { openid: true }\n",
         "7: key 'auth.issuers[0].uiScopes': expected a list of scopes, got a mapping"},
        {UI_ISSUER "      uiScopes: [openid, \"\"]\n",
         "7: key 'auth.issuers[0].uiScopes[1]': must not be empty"},
        {UI_ISSUER "      uiScopes: [openid, ~]\n",
         "7: key 'auth.issuers[0].uiScopes[1]': expected a string, got nothing"},
        {UI_ISSUER "      uiScopes: [openid, [groups]]\n",
         "7: key 'auth.issuers[0].uiScopes[1]': expected a string, got a list"},
        {UI_ISSUER "      uiScopes: [openid, \"profile email\"]\n",
         "7: key 'auth.issuers[0].uiScopes[1]': scope 'profile email' contains a space: write "
         "each scope as its own list entry"},
        {UI_ISSUER "      uiScopes: [openid, 'a\"b']\n",
         "7: key 'auth.issuers[0].uiScopes[1]': scope 'a\"b' contains '\"' (a scope is printable "
         "ASCII without space, '\"' or '\\')"},
        {UI_ISSUER "      uiScopes: [openid, 'a\\b']\n",
         "7: key 'auth.issuers[0].uiScopes[1]': scope 'a\\b' contains '\\' (a scope is printable "
         "ASCII without space, '\"' or '\\')"},
        {UI_ISSUER "      uiScopes: [openid, \"a\\tb\"]\n",
         "7: key 'auth.issuers[0].uiScopes[1]': scope contains the byte 0x09 (a scope is "
         "printable ASCII without space, '\"' or '\\')"},
        {UI_ISSUER "      uiScopes: [openid, \"a\\x7fb\"]\n",
         "7: key 'auth.issuers[0].uiScopes[1]': scope contains the byte 0x7f (a scope is "
         "printable ASCII without space, '\"' or '\\')"},
        {UI_ISSUER "      uiScopes: [openid, \"a b\\tc\"]\n",
         "7: key 'auth.issuers[0].uiScopes[1]': scope contains the byte 0x09 (a scope is "
         "printable ASCII without space, '\"' or '\\')"},
        {UI_ISSUER "      uiScopes: [openid, \"gr\xc3\xbcppen\"]\n",
         "7: key 'auth.issuers[0].uiScopes[1]': scope contains the byte 0xc3 (a scope is "
         "printable ASCII without space, '\"' or '\\')"},
        {UI_ISSUER "      uiScopes: [openid, groups, groups]\n",
         "7: key 'auth.issuers[0].uiScopes[2]': duplicate scope 'groups' (first at [1])"},
        {UI_ISSUER "      uiScopes: [profile, email, groups]\n",
         "7: key 'auth.issuers[0].uiScopes': must include openid (the web UI signs in with "
         "OpenID Connect)"},
        {UI_ISSUER "      uiScopes: [OpenID, profile]\n",
         "7: key 'auth.issuers[0].uiScopes': must include openid (the web UI signs in with "
         "OpenID Connect)"},
        {UI_ISSUER "      uiScopes: []\n",
         "7: key 'auth.issuers[0].uiScopes': must include openid (the web UI signs in with "
         "OpenID Connect)"},
        {UI_ISSUER "      uiScopes:\n        - openid\n        - \"a b\"\n",
         "9: key 'auth.issuers[0].uiScopes[1]': scope 'a b' contains a space: write each scope "
         "as its own list entry"},
        {UI_ISSUER "      uiScopes:\n        - profile\n        - groups\n",
         "8: key 'auth.issuers[0].uiScopes': must include openid (the web UI signs in with "
         "OpenID Connect)"},
        {"auth:\n  issuers:\n    - name: a\n      issuer: https://a.example\n      audience: x\n"
         "      uiScopes: [openid, groups]\n",
         "6: key 'auth.issuers[0].uiScopes': only valid together with uiClientId (the scopes the "
         "web UI asks for when it signs in with that client)"},
        {"auth:\n  issuers:\n    - name: a\n      issuer: https://a.example\n      audience: x\n"
         "      kind: agent\n      uiClientId: ui\n      uiScopes: [openid, groups]\n",
         "8: key 'auth.issuers[0].uiScopes': only valid with kind: user (the web UI signs people "
         "in)"},
        /* other values */
        {"listen: localhost\n",
         "1: key 'listen': expected HOST:PORT (e.g. 127.0.0.1:8080 or [::1]:8080), got "
         "'localhost'"},
        {"listen: 127.0.0.1:70000\n",
         "1: key 'listen': expected HOST:PORT (e.g. 127.0.0.1:8080 or [::1]:8080), got "
         "'127.0.0.1:70000'"},
        {"publicUrl: airlock.example.com\n",
         "1: key 'publicUrl': expected an http:// or https:// URL, got 'airlock.example.com'"},
        {"logFormat: xml\n", "1: key 'logFormat': expected text or json, got 'xml'"},
        {"tls: { cert: a.pem, chain: b.pem }\n", "1: key 'tls.chain': unknown key"},
        {"notifications:\n  webhooks:\n    - url: https://h.example\n"
         "      events: [created, exploded]\n",
         "4: key 'notifications.webhooks[0].events[1]': unknown event 'exploded' (one of "
         "created, approval_required, approved, rejected, activated, invited, joined, left, "
         "renewed, expiring, expired, terminated, failed, agent_online, agent_offline, "
         "ticket_issued, connected, disconnected, removed, role_changed, recording_started, "
         "recording_finished, recording_stopped, recording_failed, recording_rejected)"},
        /* issue 12: the time rules */
        {"templates:\n  - name: a\n    constraints: { clockStartsAt: firstConnect }\n",
         "3: key 'templates[0].constraints.clockStartsAt': clockStartsAt: firstConnect needs a "
         "claimDeadline"},
        {"templates:\n  - name: a\n    constraints: { clockStartsAt: later }\n",
         "3: key 'templates[0].constraints.clockStartsAt': clockStartsAt must be activation or "
         "firstConnect, not 'later'"},
        {"templates:\n  - name: a\n    constraints: { maxDuration: 1h, claimDeadline: 2h }\n",
         "3: key 'templates[0].constraints.claimDeadline': claimDeadline (2h) is longer than "
         "maxDuration (1h)"},
        {"templates:\n  - name: a\n    constraints: { idleTimeout: 0s }\n",
         "3: key 'templates[0].constraints.idleTimeout': bad duration '0s' (e.g. 90s, 30m, "
         "1h30m, 2d; at most 365d)"},
        {"templates:\n  - name: a\n    constraints:\n      autoExtend: { maxTotal: 2h }\n",
         "4: key 'templates[0].constraints.autoExtend.step': missing required key"},
        {"templates:\n  - name: a\n    constraints:\n      autoExtend: { step: 5h }\n",
         "4: key 'templates[0].constraints.autoExtend': autoExtend.step (5h) is longer than "
         "maxDuration (4h)"},
        {"templates:\n  - name: a\n    constraints:\n      autoExtend: { step: 5m, every: 1m }\n",
         "4: key 'templates[0].constraints.autoExtend.every': unknown key"},
        {"notifications:\n  webhooks:\n    - events: [created]\n",
         "3: key 'notifications.webhooks[0].url': missing required key"},
        {"listen: 127.0.0.1:1\n---\nlisten: 127.0.0.1:2\n", "3: only one YAML document is allowed"},
        /* recording (docs/recording.md) */
        {"templates:\n  - name: a\n    recording: { enabled: false, required: true }\n",
         "3: key 'templates[0].recording.required': a required recording needs enabled: true"},
        {"templates:\n  - name: a\n    recording:\n      enabled: true\n      maxMiB: 0\n",
         "5: key 'templates[0].recording.maxMiB': expected an integer from 1 to 1048576, got '0'"},
        {"templates:\n  - name: a\n    recording: { enabled: yes please }\n",
         "3: key 'templates[0].recording.enabled': expected true or false, got 'yes please'"},
    };
    size_t i;
    (void)state;

    for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct config cfg;
        char err[1024], want[1024];

        int r;

        snprintf(want, sizeof(want), "%s:%s", yaml_path, cases[i].want);
        r = load_text(&cfg, cases[i].yaml, err, sizeof(err));
        config_free(&cfg);
        if (r != ERR_INVALID || strcmp(err, want) != 0)
            fail_msg("case %zu: r=%d\n got: %s\nwant: %s", i, r, err, want);
    }
}

static void
test_syntax_error(void **state)
{
    struct config cfg;
    char err[512], want[256];
    (void)state;

    /* libyaml notices the missing ']' at the end of the file, where the flow list started. */
    snprintf(want, sizeof(want),
             "%s:4: YAML syntax error: did not find expected ',' or ']' (while parsing a flow "
             "sequence started at line 3)",
             yaml_path);
    assert_int_equal(load_text(&cfg, "listen: a:1\nauth:\n  dev: [true\n", err, sizeof(err)),
                     ERR_INVALID);
    config_free(&cfg);
    assert_string_equal(err, want);

    snprintf(want, sizeof(want),
             "%s:2: YAML syntax error: mapping values are not allowed in this context", yaml_path);
    assert_int_equal(load_text(&cfg, "listen: a:1\nauth: dev: true\n", err, sizeof(err)),
                     ERR_INVALID);
    config_free(&cfg);
    assert_string_equal(err, want);
}

static void
test_missing_file(void **state)
{
    struct config cfg;
    char err[512], want[512], path[256];
    (void)state;

    snprintf(path, sizeof(path), "%s/does-not-exist.yaml", tmpdir);
    snprintf(want, sizeof(want), "%s: %s", path, strerror(ENOENT));
    assert_int_equal(config_load(&cfg, path, err, sizeof(err)), ERR_SYSTEM);
    assert_string_equal(err, want);
    config_free(&cfg);

    /* A directory is not a file. */
    snprintf(want, sizeof(want), "%s: %s", tmpdir, strerror(EISDIR));
    assert_int_equal(config_load(&cfg, tmpdir, err, sizeof(err)), ERR_SYSTEM);
    assert_string_equal(err, want);
    config_free(&cfg);
}

static void
test_example_file(void **state)
{
    struct config cfg;
    const struct tmpl_cfg *t;
    char path[PATH_MAX], err[512];
    int r;
    (void)state;

    tree_path("docs/examples/airlock.yaml", path, sizeof(path));
    if ((r = config_load(&cfg, path, err, sizeof(err))) == 0) {
        config_finish(&cfg);
        r = config_validate(&cfg, err, sizeof(err));
    }
    if (r != 0) {
        config_free(&cfg);
        fail_msg("%s", err);
    }
    assert_int_equal(cfg.dev, 1);
    assert_string_equal(cfg.listen, "127.0.0.1:8080");
    assert_string_equal(cfg.public_url, "http://127.0.0.1:8080");
    assert_string_equal(cfg.data_dir, "var");
    assert_string_equal(cfg.admins.groups.v[0], "airlock-admins");
    assert_string_equal(cfg.agent_registrars.groups.v[0], "ops");

    t = config_template(&cfg, "sandbox");
    assert_non_null(t);
    assert_int_equal(t->approvers.groups.n + t->approvers.users.n, 0); /* auto-approved */
    assert_string_equal(t->allowed.groups.v[0], "developers");
    assert_string_equal(t->allowed.agents.v[0], "*");
    assert_int_equal(t->max_duration_s, 2 * 3600);

    t = config_template(&cfg, "ci-debug");
    assert_non_null(t);
    assert_string_equal(t->approvers.groups.v[0], "sre-leads");
    assert_int_equal(t->allowed.groups.n, 2);
    assert_int_equal(t->reason_mandatory, 1);
    assert_int_equal(t->reason_min_len, 10);
    assert_int_equal(t->reject_reason_mandatory, 1);
    assert_int_equal(t->max_duration_s, 4 * 3600);
    assert_int_equal(t->default_duration_s, 3600);
    assert_int_equal(t->max_renewals, 3);

    t = config_template(&cfg, "prod-readonly");
    assert_non_null(t);
    assert_string_equal(t->approvers.groups.v[0], "sre-leads");
    assert_int_equal(t->read_only_participants, 1);
    assert_int_equal(t->op_exec, 0);
    assert_int_equal(t->op_sftp, 0);
    assert_int_equal(t->max_duration_s, 3600);
    assert_int_equal(t->max_renewals, 1);
    config_free(&cfg);
}

/* The sketch in DESIGN.md section 3 is the contract: it loads as written. */
static void
test_design_sketch(void **state)
{
    struct config cfg;
    char path[PATH_MAX], err[512];
    int r;
    (void)state;

    tree_path("tests/unit/fixtures/config/design-sketch.yaml", path, sizeof(path));
    if ((r = config_load(&cfg, path, err, sizeof(err))) != 0) {
        config_free(&cfg);
        fail_msg("%s", err);
    }
    assert_int_equal(cfg.n_issuers, 2);
    assert_int_equal(cfg.issuers[1].kind, ISSUER_AGENT);
    assert_string_equal(cfg.issuers[1].require[0].globs.v[0], "acme");
    assert_int_equal(cfg.n_templates, 1);
    assert_string_equal(cfg.templates[0].auto_approve.agents.v[0], "gh/acme/sandbox/*");
    /* the time rules (issue 12) */
    assert_int_equal(cfg.templates[0].claim_deadline_s, 600);
    assert_int_equal(cfg.templates[0].clock_first_connect, 0);
    assert_int_equal(cfg.templates[0].idle_timeout_s, 1800);
    assert_int_equal(cfg.templates[0].auto_step_s, 900);
    assert_int_equal(cfg.templates[0].auto_max_total_s, 4 * 3600);
    assert_int_equal(cfg.n_webhooks, 1);
    assert_int_equal(cfg.webhooks[0].events.n, 7);
    config_free(&cfg);
}

static void
test_is_loopback(void **state)
{
    static const struct {
        const char *s;
        int want;
    } cases[] = {
        {"127.0.0.1:8080", 1},
        {"127.255.0.9:1", 1},
        {"[::1]:8080", 1},
        {"::1", 1},
        {"localhost:8080", 1},
        {"localhost", 1},
        {"http://127.0.0.1:9000/x", 1},
        {"https://[::1]/", 1},
        {"http://localhost", 1},
        {"http://user:pw@127.0.0.1/", 1},
        {"0.0.0.0:8080", 0},
        {"[::]:8080", 0},
        {"10.1.2.3:80", 0},
        {"192.168.1.1", 0},
        {"http://127.0.0.1@evil.example/", 0},
        {"http://evil.example/127.0.0.1", 0},
        {"http://evil.example?x=localhost", 0},
        {"example.com:8080", 0},
        {":8080", 0},
        {"", 0},
        {"[::1", 0},
        {NULL, 0},
    };
    size_t i;
    (void)state;

    for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
        if (config_is_loopback(cases[i].s) != cases[i].want)
            fail_msg("config_is_loopback(%s) != %d", cases[i].s ? cases[i].s : "NULL",
                     cases[i].want);
}

/* Cross-field rules that hold after flags were applied. */
static void
test_validate(void **state)
{
    static const struct {
        const char *listen;
        int dev, allow_remote, issuers, cert, key;
        const char *want; /* NULL: valid */
    } cases[] = {
        {"127.0.0.1:8080", 1, 0, 0, 0, 0, NULL},
        {"[::1]:8080", 1, 0, 0, 0, 0, NULL},
        {"0.0.0.0:8080", 1, 0, 0, 0, 0,
         "dev mode must listen on loopback, not '0.0.0.0:8080' (--dev-allow-remote overrides)"},
        {"0.0.0.0:8080", 1, 1, 0, 0, 0, NULL},
        {"0.0.0.0:8080", 0, 0, 1, 0, 0, NULL},
        {"127.0.0.1:8080", 0, 0, 0, 0, 0, "no auth.issuers configured and dev mode is off"},
        {"127.0.0.1:8080", 1, 0, 0, 1, 0, "tls.cert and tls.key must be set together"},
        {"127.0.0.1:8080", 1, 0, 0, 0, 1, "tls.cert and tls.key must be set together"},
        {"127.0.0.1:8080", 1, 0, 0, 1, 1, NULL},
        {"127.0.0.1", 1, 0, 0, 0, 0,
         "listen '127.0.0.1': expected HOST:PORT (e.g. 127.0.0.1:8080)"},
    };
    size_t i;
    (void)state;

    for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct config cfg;
        char err[512];
        int r;

        config_defaults(&cfg);
        free(cfg.listen);
        cfg.listen = strdup(cases[i].listen);
        cfg.dev = cases[i].dev;
        cfg.dev_allow_remote = cases[i].allow_remote;
        cfg.n_issuers = 0;
        if (cases[i].issuers) {
            cfg.issuers = calloc(1, sizeof(*cfg.issuers));
            cfg.n_issuers = 1;
        }
        cfg.tls_cert = cases[i].cert ? strdup("c.pem") : NULL;
        cfg.tls_key = cases[i].key ? strdup("k.pem") : NULL;
        err[0] = '\0';
        r = config_validate(&cfg, err, sizeof(err));
        if (cases[i].want == NULL && r != 0)
            fail_msg("case %zu: unexpected error: %s", i, err);
        if (cases[i].want != NULL) {
            assert_int_equal(r, ERR_INVALID);
            assert_string_equal(err, cases[i].want);
        }
        config_free(&cfg);
    }
}

static void
test_finish_public_url(void **state)
{
    struct config cfg;
    (void)state;

    config_defaults(&cfg);
    config_finish(&cfg);
    assert_string_equal(cfg.public_url, "http://127.0.0.1:8080");
    config_free(&cfg);

    config_defaults(&cfg);
    cfg.tls_cert = strdup("c.pem");
    cfg.tls_key = strdup("k.pem");
    config_finish(&cfg);
    assert_string_equal(cfg.public_url, "https://127.0.0.1:8080");
    config_free(&cfg);

    config_defaults(&cfg);
    cfg.public_url = strdup("https://airlock.example.com/base//");
    config_finish(&cfg);
    assert_string_equal(cfg.public_url, "https://airlock.example.com/base");
    config_free(&cfg);
}

/* terminalSharing.browser (issue 13): default on, false turns the browser terminal off. */
static void
test_sharing_browser(void **state)
{
    static const char yaml[] = "templates:\n"
                               "  - name: a\n"
                               "  - name: b\n"
                               "    terminalSharing: { browser: false }\n";
    struct config cfg;
    char err[512];
    (void)state;

    assert_int_equal(load_text(&cfg, yaml, err, sizeof(err)), 0);
    assert_int_equal(config_template(&cfg, "a")->sharing_browser, 1);
    assert_int_equal(config_template(&cfg, "b")->sharing_browser, 0);
    assert_int_equal(config_template(&cfg, "b")->sharing_enabled, 1);
    config_free(&cfg);
    assert_int_not_equal(load_text(&cfg,
                                   "templates:\n  - name: a\n    terminalSharing: { browser: 2 }\n",
                                   err, sizeof(err)),
                         0);
    assert_non_null(strstr(err, "terminalSharing.browser"));
    config_free(&cfg);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_defaults),
        cmocka_unit_test(test_sharing_browser),
        cmocka_unit_test(test_top_level_values),
        cmocka_unit_test(test_issuers),
        cmocka_unit_test(test_ui_scopes),
        cmocka_unit_test(test_ui_scopes_limits),
        cmocka_unit_test(test_issuer_url_loopback),
        cmocka_unit_test(test_template_defaults),
        cmocka_unit_test(test_template_values),
        cmocka_unit_test(test_null_keeps_default),
        cmocka_unit_test(test_errors),
        cmocka_unit_test(test_syntax_error),
        cmocka_unit_test(test_missing_file),
        cmocka_unit_test(test_example_file),
        cmocka_unit_test(test_design_sketch),
        cmocka_unit_test(test_is_loopback),
        cmocka_unit_test(test_validate),
        cmocka_unit_test(test_finish_public_url),
    };

    return cmocka_run_group_tests_name("config", tests, setup, teardown);
}
