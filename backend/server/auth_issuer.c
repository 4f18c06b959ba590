/*
 * One issuer: its settings (copied from the config), discovery + JWKS
 * fetched on first use with httpc.c, JWK -> EVP_PKEY through jwk.c, at most
 * one refetch per 30 s for an unknown kid, keys older than an hour
 * refetched, a failed fetch keeping the old keys (DESIGN.md 7.2).
 *
 * Locking: "mu" guards the key list and fetch bookkeeping and is held only
 * for lookups and swaps; "fetch_mu" is held across one HTTP fetch, so one
 * fetch runs per issuer and others wait for its result. Order: fetch_mu ->
 * mu, and fetch_mu -> the cache's lock.
 */
#include <arpa/inet.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <jansson.h>
#include <openssl/evp.h>

#include "auth_int.h"
#include "err.h"
#include "httpc.h"
#include "jwk.h"
#include "log.h"
#include "util.h"
#include "xmalloc.h"

#define REFETCH_MIN_S 30    /* unknown kid: at most one refetch per issuer per 30 s */
#define JWKS_MAX_AGE_S 3600 /* refetch keys this old, so removed keys go away */
#define HTTP_TIMEOUT_S 5L
#define HTTP_MAX_BODY (1024 * 1024)

/*
 * Looks up (kid, alg) among is->keys; is->mu must be held. Returns 0 with a
 * new reference in *pk, ERR_NOT_FOUND when no key has that kid (or the token
 * has no kid and the set is not exactly one key), or ERR_AUTH when keys with
 * that kid exist but none suits alg.
 */
static int
keys_find(struct issuer *is, const char *kid, const struct alg_info *alg, EVP_PKEY **pk)
{
    size_t i;
    int seen = 0;

    *pk = NULL;
    if (kid == NULL && is->n_keys != 1)
        return ERR_NOT_FOUND;
    for (i = 0; i < is->n_keys; i++) {
        const struct key *k = &is->keys[i];

        if (kid != NULL && (k->kid == NULL || strcmp(k->kid, kid) != 0))
            continue;
        seen = 1;
        if (jwk_key_fits(k, alg)) {
            EVP_PKEY_up_ref(k->pkey);
            *pk = k->pkey;
            return 0;
        }
    }
    return seen ? ERR_AUTH : ERR_NOT_FOUND;
}

/* 1 if a fetch is due: never tried, or (allowed by the 30 s limit and (key missing or keys old)).
 */
static int
jwks_due(const struct issuer *is, int missing, int64_t now)
{
    int allowed;

    if (is->is_dev)
        return 0;
    if (!is->attempted)
        return 1;
    /* A clock that went backwards must not block refetches for good. */
    allowed = now < is->attempt_at || now - is->attempt_at >= REFETCH_MIN_S;
    return allowed && (missing || is->n_keys == 0 || now - is->ok_at >= JWKS_MAX_AGE_S);
}

/* 1 for https URLs, and for http URLs whose host is loopback. */
static int
url_allowed(const char *url)
{
    if (strncasecmp(url, "https://", 8) == 0)
        return 1;
    return strncasecmp(url, "http://", 7) == 0 && auth_url_is_loopback(url);
}

/*
 * GETs url (https, or http on loopback; no redirects; 5 s; at most 1 MiB)
 * and parses the body as a JSON object into *out (new). Failures are logged
 * here, with what naming the document. Returns 0 or ERR_UNAVAILABLE.
 */
static int
http_get_json(const char *what, const char *url, json_t **out)
{
    struct httpc_req rq = {.method = "GET",
                           .url = url,
                           .user_agent = "airlockd",
                           .timeout_ms = HTTP_TIMEOUT_S * 1000,
                           .max_body = HTTP_MAX_BODY,
                           .strict_json = 1};
    struct httpc_resp rs;
    char err[256];

    *out = NULL;
    if (!url_allowed(url)) {
        log_warn("%s %s: refused, https is required off loopback", what, url);
        return ERR_UNAVAILABLE;
    }
    rq.no_proxy =
        auth_url_is_loopback(url); /* a proxy from the environment must not see local traffic */
    if (httpc_request(&rq, 1, &rs, err, sizeof(err)) != 0) {
        log_warn("%s: %s", what, err);
        return ERR_UNAVAILABLE;
    }
    if (rs.too_large) {
        log_warn("%s %s: response too large", what, url);
    } else if (rs.status != 200) {
        log_warn("%s %s: HTTP status %ld", what, url, rs.status);
    } else if (!json_is_object(rs.json)) {
        log_warn("%s %s: not a JSON object", what, url);
    } else {
        *out = rs.json;
        return 0;
    }
    json_decref(rs.json);
    return ERR_UNAVAILABLE;
}

/* Discovery, then the JWKS it names. *keysp is new. Returns 0 or ERR_UNAVAILABLE. */
static int
jwks_fetch(const struct issuer *is, struct key **keysp, size_t *np)
{
    json_t *disc = NULL, *jwks = NULL;
    char *url = NULL;
    const char *jwks_uri = NULL, *disc_iss = NULL;
    size_t base_len = strlen(is->iss);
    int r = ERR_UNAVAILABLE;

    /* OIDC Discovery 4: a trailing '/' of the issuer is removed before appending. */
    if (base_len > 0 && is->iss[base_len - 1] == '/')
        base_len--;
    url = xasprintf("%.*s/.well-known/openid-configuration", (int)base_len, is->iss);
    if (http_get_json("discovery", url, &disc) != 0)
        goto out;
    disc_iss = json_string_value(json_object_get(disc, "issuer"));
    if (disc_iss == NULL || strcmp(disc_iss, is->iss) != 0) {
        log_warn("issuer %s: discovery document names issuer \"%s\"", is->name,
                 disc_iss != NULL ? disc_iss : "");
        goto out;
    }
    if ((jwks_uri = json_string_value(json_object_get(disc, "jwks_uri"))) == NULL) {
        log_warn("issuer %s: discovery document has no jwks_uri", is->name);
        goto out;
    }
    if (http_get_json("jwks", jwks_uri, &jwks) != 0)
        goto out;
    if (jwk_set_parse(is->name, jwks, keysp, np) != 0) {
        log_warn("issuer %s: %s has no usable signing keys", is->name, jwks_uri);
        goto out;
    }
    r = 0;
out:
    json_decref(disc);
    json_decref(jwks);
    free(url);
    return r;
}

/*
 * Fetches the issuer's keys unless another thread completed a fetch since
 * the caller looked (gen). A failure keeps the old keys. After a good fetch,
 * cached tokens of this issuer are forgotten, so removed keys stop working.
 */
static void
jwks_refresh(struct auth *a, struct issuer *is, unsigned gen, int64_t now)
{
    struct key *keys = NULL;
    size_t n = 0;
    int r;

    pthread_mutex_lock(&is->fetch_mu);
    pthread_mutex_lock(&is->mu);
    r = is->gen == gen;
    pthread_mutex_unlock(&is->mu);
    if (!r) /* someone else just fetched: use their result */
        goto out;

    r = jwks_fetch(is, &keys, &n);

    pthread_mutex_lock(&is->mu);
    is->attempted = 1;
    is->attempt_at = now;
    is->gen++;
    if (r == 0) {
        struct key *old = is->keys;
        size_t n_old = is->n_keys;

        is->keys = keys;
        is->n_keys = n;
        is->ok_at = now;
        keys = old;
        n = n_old;
        log_info("issuer %s: %zu signing keys loaded", is->name, is->n_keys);
    }
    pthread_mutex_unlock(&is->mu);
    if (r == 0)
        auth_cache_drop_issuer(a, is->idx);
out:
    pthread_mutex_unlock(&is->fetch_mu);
    jwk_keys_free(keys, n);
}

/*
 * The key for (kid, alg) from is, fetching the JWKS on first use, when the
 * kid is unknown (at most once per REFETCH_MIN_S) or when the keys are older
 * than JWKS_MAX_AGE_S. *pk receives a new reference. Returns 0; ERR_AUTH
 * ("unknown signing key", "signing key does not match algorithm"); or
 * ERR_UNAVAILABLE when the issuer has never served usable keys.
 */
int
auth_issuer_key(struct auth *a, struct issuer *is, const char *kid, const struct alg_info *alg,
                int64_t now, EVP_PKEY **pk, const char **why)
{
    unsigned gen;
    int r = ERR_INTERNAL, pass, due, have_keys;

    *pk = NULL;
    for (pass = 0;; pass++) {
        pthread_mutex_lock(&is->mu);
        r = keys_find(is, kid, alg, pk);
        due = pass == 0 && jwks_due(is, r == ERR_NOT_FOUND, now);
        have_keys = is->n_keys > 0;
        gen = is->gen;
        pthread_mutex_unlock(&is->mu);
        if (!due)
            break;
        EVP_PKEY_free(*pk);
        *pk = NULL;
        jwks_refresh(a, is, gen, now);
    }
    if (r == ERR_NOT_FOUND && !have_keys) {
        *why = "issuer keys unavailable";
        r = ERR_UNAVAILABLE;
    } else if (r == ERR_NOT_FOUND) {
        *why = "unknown signing key";
        r = ERR_AUTH;
    } else if (r != 0) {
        *why = "signing key does not match algorithm";
        r = ERR_AUTH;
    }
    return r;
}

/* ------------------------------------------------------------------------ */
/* Issuers                                                                  */
/* ------------------------------------------------------------------------ */

static char *
dup_default(const char *s, const char *dflt)
{
    return xstrdup(s != NULL && *s != '\0' ? s : dflt);
}

/* Checks an agentName template: each '{' closes with '}' around 1..128 chars, no nesting. */
static int
template_ok(const char *t)
{
    const char *close = NULL;

    for (; *t != '\0'; t++) {
        if (*t == '}')
            return 0;
        if (*t != '{')
            continue;
        if ((close = strchr(t + 1, '}')) == NULL || close == t + 1 ||
            close - t - 1 > CLAIM_NAME_MAX || memchr(t + 1, '{', (size_t)(close - t - 1)))
            return 0;
        t = close;
    }
    return 1;
}

void
auth_issuer_locks_init(struct issuer *is)
{
    pthread_mutex_init(&is->mu, NULL);
    pthread_mutex_init(&is->fetch_mu, NULL);
}

/* Copies what verification needs from c, with the documented defaults. */
int
auth_issuer_init(struct issuer *is, const struct issuer_cfg *c, size_t idx, char *err,
                 size_t err_len)
{
    size_t i, j;

    auth_issuer_locks_init(is);
    is->idx = idx;
    is->name = dup_default(c->name, "issuer");
    is->kind = c->kind;
    if (c->issuer == NULL || *c->issuer == '\0' || c->audience == NULL || *c->audience == '\0') {
        snprintf(err, err_len, "issuer %s: issuer and audience are required", is->name);
        return ERR_INVALID;
    }
    if (!url_allowed(c->issuer)) {
        snprintf(err, err_len, "issuer %s: %s must be https (http only on loopback)", is->name,
                 c->issuer);
        return ERR_INVALID;
    }
    if (c->kind == ISSUER_AGENT && (c->agent_name == NULL || !template_ok(c->agent_name))) {
        snprintf(err, err_len, "issuer %s: kind agent needs a valid agentName template", is->name);
        return ERR_INVALID;
    }
    is->iss = xstrdup(c->issuer);
    is->audience = xstrdup(c->audience);
    is->username_claim = dup_default(c->username_claim, "preferred_username");
    is->email_claim = dup_default(c->email_claim, "email");
    is->name_claim = dup_default(c->name_claim, "name");
    is->groups_claim = dup_default(c->groups_claim, "groups");
    is->agent_name = auth_dup_or_null(c->agent_name);
    is->owner_claim = auth_dup_or_null(c->owner_claim);
    is->trust_email = c->trust_email;
    if (c->identity_domain != NULL && *c->identity_domain != '\0')
        is->domain = xstrdup(c->identity_domain);
    else if (c->kind == ISSUER_USER)
        is->domain = xstrdup(is->name);
    if (c->n_require > 0) {
        is->require = xcalloc(c->n_require, sizeof(*is->require));
        for (i = 0; i < c->n_require; i++) {
            struct claim_rule *d = &is->require[i];

            d->claim = xstrdup(c->require[i].claim);
            d->globs.v = xcalloc(c->require[i].globs.n + 1, sizeof(char *));
            for (j = 0; j < c->require[i].globs.n; j++)
                d->globs.v[j] = xstrdup(c->require[i].globs.v[j]);
            d->globs.n = c->require[i].globs.n;
            is->n_require++;
        }
    }
    return 0;
}

void
auth_issuer_cleanup(struct issuer *is)
{
    size_t i, j;

    free(is->name);
    free(is->iss);
    free(is->audience);
    free(is->username_claim);
    free(is->email_claim);
    free(is->name_claim);
    free(is->groups_claim);
    free(is->agent_name);
    free(is->owner_claim);
    free(is->domain);
    for (i = 0; i < is->n_require; i++) {
        for (j = 0; j < is->require[i].globs.n; j++)
            free(is->require[i].globs.v[j]);
        free(is->require[i].globs.v);
        free(is->require[i].claim);
    }
    free(is->require);
    jwk_keys_free(is->keys, is->n_keys);
    pthread_mutex_destroy(&is->mu);
    pthread_mutex_destroy(&is->fetch_mu);
}

/* 1 if host (no brackets, no port) is localhost, 127.0.0.0/8 or ::1. */
static int
host_is_loopback(const char *host)
{
    struct in_addr v4;
    struct in6_addr v6;

    if (strcasecmp(host, "localhost") == 0)
        return 1;
    if (inet_pton(AF_INET, host, &v4) == 1)
        return (ntohl(v4.s_addr) >> 24) == 127;
    if (inet_pton(AF_INET6, host, &v6) == 1)
        return IN6_IS_ADDR_LOOPBACK(&v6);
    return 0;
}

/*
 * 1 if the host of url ("scheme://host[:port]/...") or of a bare
 * "host:port" is loopback. A URL with userinfo ('@') is never loopback: it
 * is the classic way to make a URL look local.
 */
int
auth_url_is_loopback(const char *url)
{
    char host[256];
    const char *p = strstr(url, "://"), *end = NULL;
    size_t n;

    p = p != NULL ? p + 3 : url;
    n = strcspn(p, "/?#");
    if (memchr(p, '@', n) != NULL)
        return 0;
    if (*p == '[') {
        if ((end = memchr(p, ']', n)) == NULL)
            return 0;
        p++;
        n = (size_t)(end - p);
    } else if ((end = memchr(p, ':', n)) != NULL) {
        n = (size_t)(end - p);
    }
    if (n == 0 || n >= sizeof(host))
        return 0;
    memcpy(host, p, n);
    host[n] = '\0';
    return host_is_loopback(host);
}

/*
 * Reload (reload.c): every issuer of to whose URL an issuer of from has
 * gets a copy of the keys from already fetched and its fetch times, so a
 * reload costs no refetch. to is new and not yet shared; from may be in use
 * (its issuers' locks are taken). The keys' EVP_PKEYs are shared by
 * reference.
 */
void
auth_keys_adopt(struct auth *to, struct auth *from)
{
    size_t i, j, k;

    for (i = 0; i < to->n_issuers; i++) {
        struct issuer *d = &to->issuers[i];

        for (j = 0; j < from->n_issuers; j++) {
            struct issuer *s = &from->issuers[j];

            if (d->is_dev || s->is_dev || strcmp(d->iss, s->iss) != 0)
                continue;
            pthread_mutex_lock(&s->mu);
            d->keys = xcalloc(s->n_keys + 1, sizeof(*d->keys));
            for (k = 0; k < s->n_keys; k++) {
                d->keys[k].kid = auth_dup_or_null(s->keys[k].kid);
                d->keys[k].alg = auth_dup_or_null(s->keys[k].alg);
                d->keys[k].kty = s->keys[k].kty;
                EVP_PKEY_up_ref(s->keys[k].pkey);
                d->keys[k].pkey = s->keys[k].pkey;
            }
            d->n_keys = s->n_keys;
            d->attempted = s->attempted;
            d->attempt_at = s->attempt_at;
            d->ok_at = s->ok_at;
            pthread_mutex_unlock(&s->mu);
            break;
        }
    }
}
