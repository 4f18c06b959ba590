/*
 * From a verified payload to a struct identity (DESIGN.md 5, 7.1): the
 * username (falling back to "sub"), the email when it may identify the
 * person (claims_email_trusted), display name, groups, and for agent
 * issuers the require rules, the expanded agentName and the owner. Every
 * claim that names a person must be clean text (claims_text_clean): they end
 * up in logs, JSON and terminal titles.
 */
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <jansson.h>

#include "auth_int.h"
#include "claims.h"
#include "err.h"
#include "glob.h"
#include "xmalloc.h"

#define AGENT_NAME_MAX 255

/* Room for reasons that name a claim ("claim repository missing"); valid until the next call. */
static _Thread_local char why_buf[CLAIM_NAME_MAX + 32];

/* NumericDate claim floored to an integer, or dflt when absent or not a number. */
int64_t
auth_num_claim(const json_t *payload, const char *name, int64_t dflt)
{
    const json_t *v = json_object_get(payload, name);
    double d;

    if (json_is_integer(v))
        return (int64_t)json_integer_value(v);
    if (!json_is_real(v))
        return dflt;
    d = json_real_value(v);
    if (d >= 9.2e18)
        return INT64_MAX;
    if (!(d > -9.2e18)) /* also NaN */
        return INT64_MIN;
    return (int64_t)d - ((double)(int64_t)d > d); /* floor */
}

/* A non-empty string claim, or NULL. Borrowed from payload. */
static const char *
str_claim(const json_t *payload, const char *name)
{
    const char *s = json_string_value(json_object_get(payload, name));

    return s != NULL && *s != '\0' ? s : NULL;
}

/*
 * Text of a scalar claim for templates and require rules: strings as they
 * are, integers in decimal, booleans as "true"/"false". Returns NULL for
 * anything else. The result is borrowed from v or written into buf.
 */
static const char *
claim_text(const json_t *v, char *buf, size_t buf_len)
{
    if (json_is_string(v))
        return json_string_value(v);
    if (json_is_integer(v)) {
        snprintf(buf, buf_len, "%lld", (long long)json_integer_value(v));
        return buf;
    }
    if (json_is_boolean(v))
        return json_is_true(v) ? "true" : "false";
    return NULL;
}

static const char *
why_claim(const char *claim, const char *what)
{
    snprintf(why_buf, sizeof(why_buf), "claim %s %s", claim, what);
    return why_buf;
}

/* Groups: an array of strings (others skipped) or one string; at most AUTH_MAX_GROUPS. */
static void
groups_read(const json_t *payload, const char *claim, struct identity *id)
{
    const json_t *v = json_object_get(payload, claim), *e = NULL;
    size_t i;

    if (json_is_string(v) && *json_string_value(v) != '\0') {
        id->groups = xcalloc(1, sizeof(*id->groups));
        id->groups[id->n_groups++] = xstrdup(json_string_value(v));
        return;
    }
    if (!json_is_array(v) || json_array_size(v) == 0)
        return;
    id->groups = xcalloc(json_array_size(v), sizeof(*id->groups));
    json_array_foreach(v, i, e)
    {
        if (id->n_groups == AUTH_MAX_GROUPS)
            break;
        if (json_is_string(e) && *json_string_value(e) != '\0')
            id->groups[id->n_groups++] = xstrdup(json_string_value(e));
    }
}

/* 1 if the claim value (scalar, or any element of an array) matches one of globs. */
static int
rule_matches(const json_t *v, const struct strlist *globs)
{
    char buf[32];
    const char *text = NULL;
    const json_t *e = NULL;
    size_t i, k;

    if (json_is_array(v)) {
        json_array_foreach(v, k, e)
        {
            if (!json_is_array(e) && rule_matches(e, globs))
                return 1;
        }
        return 0;
    }
    if ((text = claim_text(v, buf, sizeof(buf))) == NULL)
        return 0;
    for (i = 0; i < globs->n; i++) {
        if (glob_match(globs->v[i], text, 0))
            return 1;
    }
    return 0;
}

/* The issuer's "require" rules: every listed claim must match one of its globs. */
static int
require_check(const struct issuer *is, const json_t *payload, const char **why)
{
    size_t i;

    for (i = 0; i < is->n_require; i++) {
        const struct claim_rule *rule = &is->require[i];
        const json_t *v = json_object_get(payload, rule->claim);

        if (v == NULL) {
            *why = why_claim(rule->claim, "missing");
            return ERR_AUTH;
        }
        if (!rule_matches(v, &rule->globs)) {
            *why = why_claim(rule->claim, "not allowed");
            return ERR_AUTH;
        }
    }
    return 0;
}

/*
 * Expands an agentName template ("gh/{repository}/{run_id}") from string,
 * integer or boolean claims. Control characters are refused: the name ends up
 * in URLs, logs and ssh host names. *out is a new string on success.
 */
static int
agent_name_expand(const char *tmpl, const json_t *payload, char **out, const char **why)
{
    char name[AGENT_NAME_MAX + 1], claim[CLAIM_NAME_MAX + 1], buf[32];
    const char *p = tmpl, *close = NULL, *text = NULL;
    size_t n = 0, k;
    int r = ERR_AUTH;

    *out = NULL;
    while (*p != '\0') {
        if (*p != '{') {
            if (n == AGENT_NAME_MAX)
                goto too_long;
            name[n++] = *p++;
            continue;
        }
        /* auth_new checked the template: every '{' has a '}' and a short name. */
        close = strchr(p, '}');
        memcpy(claim, p + 1, (size_t)(close - p - 1));
        claim[close - p - 1] = '\0';
        p = close + 1;
        text = claim_text(json_object_get(payload, claim), buf, sizeof(buf));
        if (text == NULL || *text == '\0') {
            *why = why_claim(claim, "missing");
            goto out;
        }
        for (k = 0; text[k] != '\0'; k++) {
            if ((unsigned char)text[k] < 0x20 || text[k] == 0x7f) {
                *why = why_claim(claim, "not allowed");
                goto out;
            }
            if (n == AGENT_NAME_MAX)
                goto too_long;
            name[n++] = text[k];
        }
    }
    name[n] = '\0';
    *out = xstrdup(name);
    r = 0;
    goto out;
too_long:
    *why = "agent name too long";
out:
    return r;
}

/*
 * The claims that name a person must be clean text (claims_text_clean): they
 * end up in logs, in JSON and in terminal titles. ERR_AUTH names the claim.
 */
static int
identity_clean(const struct issuer *is, const struct identity *id, const char **why)
{
    size_t i;

    if (!claims_text_clean(id->subject)) {
        *why = why_claim("sub", "has control characters");
        return ERR_AUTH;
    }
    if (!claims_text_clean(id->user)) {
        *why = why_claim(is->username_claim, "has control characters");
        return ERR_AUTH;
    }
    if (id->email != NULL && !claims_text_clean(id->email)) {
        *why = why_claim(is->email_claim, "has control characters");
        return ERR_AUTH;
    }
    if (id->display_name != NULL && !claims_text_clean(id->display_name)) {
        *why = why_claim(is->name_claim, "has control characters");
        return ERR_AUTH;
    }
    for (i = 0; i < id->n_groups; i++) {
        if (!claims_text_clean(id->groups[i])) {
            *why = why_claim(is->groups_claim, "has control characters");
            return ERR_AUTH;
        }
    }
    if (id->owner != NULL && !claims_text_clean(id->owner)) {
        *why = why_claim(is->owner_claim, "has control characters");
        return ERR_AUTH;
    }
    return 0;
}

/*
 * Fills id from a verified payload; see auth.h for the fields. The email is
 * kept only when it may identify the person (claims_email_trusted): a valid
 * address that the token verified or whose issuer is trustEmail.
 */
int
auth_identity_build(const struct issuer *is, const json_t *payload, struct identity *id,
                    const char **why)
{
    const char *sub = NULL, *user = NULL, *email = NULL;
    int r = ERR_AUTH;

    if ((sub = str_claim(payload, "sub")) == NULL) {
        *why = "token has no sub";
        goto out;
    }
    if ((r = require_check(is, payload, why)) != 0)
        goto out;
    r = ERR_AUTH;
    id->issuer_name = xstrdup(is->name);
    id->domain = auth_dup_or_null(is->domain);
    id->is_agent = is->kind == ISSUER_AGENT;
    id->subject = xstrdup(sub);
    user = str_claim(payload, is->username_claim);
    id->user = xstrdup(user != NULL ? user : sub);
    email = str_claim(payload, is->email_claim);
    if (email != NULL && !claims_text_clean(email)) {
        *why = why_claim(is->email_claim, "has control characters");
        goto out;
    }
    id->email = auth_dup_or_null(claims_email_trusted(email, payload, is->trust_email));
    id->display_name = auth_dup_or_null(str_claim(payload, is->name_claim));
    groups_read(payload, is->groups_claim, id);
    id->expires_at = auth_num_claim(payload, "exp", 0);
    if (is->kind == ISSUER_AGENT) {
        if ((r = agent_name_expand(is->agent_name, payload, &id->agent_name, why)) != 0)
            goto out;
        if (is->owner_claim != NULL)
            id->owner = auth_dup_or_null(str_claim(payload, is->owner_claim));
    }
    if ((r = identity_clean(is, id, why)) != 0)
        goto out;
    r = 0;
out:
    return r;
}

/* A new copy of s, or NULL for NULL. */
char *
auth_dup_or_null(const char *s)
{
    return s != NULL ? xstrdup(s) : NULL;
}
