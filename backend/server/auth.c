/*
 * Bearer-token authentication (DESIGN.md 7). This file is the verifier's
 * lifecycle and auth_verify(): size cap, result cache, split, parse the
 * header and payload ourselves, header whitelist (claims.c), issuer by exact
 * "iss", key by "kid", signature (jwk.c: OpenSSL EVP with the digest,
 * padding and curve fixed by our own algorithm table), claims (claims.c),
 * then the identity. The other parts, sharing auth_int.h:
 *
 *   auth_identity.c  verified payload -> struct identity (username, trusted
 *                    email, groups, agent name, require rules, clean text).
 *   auth_cache.c     a 4-way set-associative table of verified tokens keyed
 *                    by the SHA-256 of the token, so that repeated requests
 *                    with the same bearer skip the public-key operation.
 *   auth_issuer.c    per issuer: settings, discovery + JWKS fetched (httpc.c)
 *                    on first use, JWK -> EVP_PKEY (jwk.c), at most one
 *                    refetch per 30 s.
 *   auth_dev.c       the built-in ES256 issuer (key in dataDir), auth_dev_mint().
 *
 * Why not jwt_decode() for verification, as LIBS.md 3 suggests: libjwt 1.10
 * rejects every "typ" other than "JWT" (jwt_verify_head: strcasecmp(typ,
 * "JWT")), so the RFC 9068 access tokens real providers issue ("typ":
 * "at+jwt") could never verify, and it has no PS256. It also picks its
 * verification algorithm from the token, which is the root of the HS256
 * confusion it accepts. Verifying with EVP from our own table removes that
 * class of bug: no HMAC code exists on this path, and a key is only ever used
 * with the algorithm family of its type. libjwt is still used to sign dev
 * tokens, which also makes the dev tests an interoperability check.
 *
 * Locking: each issuer has "mu" (its key list and fetch bookkeeping, held
 * only for lookups and swaps) and "fetch_mu" (held across an HTTP fetch, so
 * one fetch runs per issuer and others wait for its result). The cache has
 * its own mutex. No lock is held while another is taken, except fetch_mu ->
 * mu and fetch_mu -> cache_mu.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <curl/curl.h>
#include <jansson.h>
#include <openssl/evp.h>

#include "auth.h"
#include "auth_int.h"
#include "claims.h"
#include "err.h"
#include "jwk.h"
#include "log.h"
#include "util.h"
#include "xmalloc.h"

/* The parts of a token that verification needs. */
struct token {
    json_t *header, *payload;
    size_t signed_len; /* bytes of "header.payload" at the start of the token */
    unsigned char *sig;
    size_t sig_len;
};

static int token_split(const char *tok, size_t len, struct token *t, const char **why);
static void token_cleanup(struct token *t);
static struct issuer *issuer_find(struct auth *a, const char *iss);

/* ------------------------------------------------------------------------ */
/* Lifecycle                                                                */
/* ------------------------------------------------------------------------ */

/*
 * Creates the verifier for cfg's issuers, and the dev issuer when cfg->dev
 * (its key is read from, or on first use generated into,
 * dataDir/dev-signing-key.pem). Nothing is fetched here: an unreachable
 * issuer is noticed on its first token. The strings of cfg are copied, so
 * cfg may be freed afterwards. On success *ap receives a new verifier, freed
 * with auth_free(). Returns 0, ERR_INVALID (bad issuer settings) or
 * ERR_SYSTEM (dev key unreadable or not writable), with a message in err.
 */
int
auth_new(const struct config *cfg, struct auth **ap, char *err, size_t err_len)
{
    struct auth *a = NULL;
    size_t i, j;
    int r = ERR_INTERNAL;

    *ap = NULL;
    if (err_len > 0)
        err[0] = '\0';
    curl_global_init(CURL_GLOBAL_DEFAULT);
    a = xcalloc(1, sizeof(*a));
    pthread_mutex_init(&a->cache_mu, NULL);
    a->cache = xcalloc(CACHE_SETS, sizeof(*a->cache));
    a->issuers = xcalloc(cfg->n_issuers + 1, sizeof(*a->issuers));
    for (i = 0; i < cfg->n_issuers; i++) {
        r = auth_issuer_init(&a->issuers[i], &cfg->issuers[i], i, err, err_len);
        a->n_issuers++; /* even on failure, so that auth_free() cleans it up */
        if (r != 0)
            goto out;
        for (j = 0; j < i; j++) {
            if (strcmp(a->issuers[j].iss, a->issuers[i].iss) == 0) {
                snprintf(err, err_len, "issuers %s and %s have the same issuer URL",
                         a->issuers[j].name, a->issuers[i].name);
                r = ERR_INVALID;
                goto out;
            }
        }
    }
    if (cfg->dev && (r = auth_dev_init(a, cfg, err, err_len)) != 0)
        goto out;

    *ap = a;
    a = NULL;
    r = 0;
out:
    auth_free(a);
    return r;
}

/* Frees a verifier and everything it holds. NULL is a no-op. */
void
auth_free(struct auth *a)
{
    size_t i, w;

    if (a == NULL)
        return;
    for (i = 0; i < a->n_issuers; i++)
        auth_issuer_cleanup(&a->issuers[i]);
    free(a->issuers);
    for (i = 0; i < CACHE_SETS; i++) {
        for (w = 0; w < CACHE_WAYS; w++)
            identity_cleanup(&a->cache[i][w].id);
    }
    free(a->cache);
    pthread_mutex_destroy(&a->cache_mu);
    if (a->dev_priv_pem != NULL)
        explicit_bzero(a->dev_priv_pem, a->dev_priv_len);
    free(a->dev_priv_pem);
    free(a->dev_kid);
    free(a);
    curl_global_cleanup();
}

/* ------------------------------------------------------------------------ */
/* Verify                                                                   */
/* ------------------------------------------------------------------------ */

/*
 * Verifies token at time now. On success *id is filled (the caller frees
 * it with identity_cleanup()); on failure *id is zeroed. Returns 0,
 * ERR_AUTH with *why set to a short reason that is safe to show the client
 * (a static string, or a thread-local one valid until this thread's next
 * call), or ERR_UNAVAILABLE when the issuer's keys have never been fetched
 * successfully. The token is never logged.
 */
int
auth_verify(struct auth *a, const char *token, int64_t now, struct identity *id, const char **why)
{
    struct token t = {0};
    const struct alg_info *alg = NULL;
    struct issuer *is = NULL;
    EVP_PKEY *pk = NULL;
    const char *kid = NULL;
    char hash[65];
    size_t len;
    int r = ERR_AUTH;

    memset(id, 0, sizeof(*id));
    *why = "malformed token";
    if (token == NULL || *token == '\0') {
        *why = "missing token";
        goto out;
    }
    /* Refuse oversized tokens without reading past the cap. */
    len = strnlen(token, AUTH_MAX_TOKEN + 1);
    if (len > AUTH_MAX_TOKEN) {
        *why = "token too large";
        goto out;
    }
    sha256_hex(token, len, hash);
    if (auth_cache_get(a, hash, now, id) == 0) {
        *why = NULL;
        r = 0;
        goto out;
    }

    if ((r = token_split(token, len, &t, why)) != 0)
        goto out;
    if ((r = claims_check_header(t.header, why)) != 0)
        goto out;
    r = ERR_AUTH;
    /* claims_check_header allows PS256 etc.; alg_find is what we can verify. */
    if ((alg = jwk_alg_find(json_string_value(json_object_get(t.header, "alg")))) == NULL) {
        *why = "unsupported algorithm";
        goto out;
    }
    if ((is = issuer_find(a, json_string_value(json_object_get(t.payload, "iss")))) == NULL) {
        *why = "unknown issuer";
        goto out;
    }
    kid = json_string_value(json_object_get(t.header, "kid"));
    if ((r = auth_issuer_key(a, is, kid, alg, now, &pk, why)) != 0)
        goto out;
    r = ERR_AUTH;
    if (!jwk_sig_verify(pk, alg, (const unsigned char *)token, t.signed_len, t.sig, t.sig_len)) {
        *why = "signature invalid";
        goto out;
    }
    /* Only now is the payload authentic; claims and identity come after. */
    if ((r = claims_check(t.payload, is->iss, is->audience, now, why)) != 0)
        goto out;
    if ((r = auth_identity_build(is, t.payload, id, why)) != 0)
        goto out;
    auth_cache_put(a, hash, is->idx, id->expires_at, auth_num_claim(t.payload, "nbf", INT64_MIN),
                   id, now);

    *why = NULL;
    r = 0;
out:
    if (r != 0) {
        log_debug("token refused (issuer %s): %s", is != NULL ? is->name : "-",
                  *why != NULL ? *why : err_str(r));
        identity_cleanup(id);
    }
    EVP_PKEY_free(pk);
    token_cleanup(&t);
    return r;
}

/* Frees the strings of id and zeroes it. NULL-safe, and safe to call twice. */
void
identity_cleanup(struct identity *id)
{
    size_t i;

    if (id == NULL)
        return;
    free(id->issuer_name);
    free(id->domain);
    free(id->subject);
    free(id->user);
    free(id->email);
    free(id->display_name);
    for (i = 0; i < id->n_groups; i++)
        free(id->groups[i]);
    free(id->groups);
    free(id->agent_name);
    free(id->owner);
    memset(id, 0, sizeof(*id));
}

/* Deep copy of src into dst; dst's previous contents are overwritten, not freed. */
void
identity_copy(struct identity *dst, const struct identity *src)
{
    size_t i;

    memset(dst, 0, sizeof(*dst));
    dst->issuer_name = auth_dup_or_null(src->issuer_name);
    dst->domain = auth_dup_or_null(src->domain);
    dst->is_agent = src->is_agent;
    dst->subject = auth_dup_or_null(src->subject);
    dst->user = auth_dup_or_null(src->user);
    dst->email = auth_dup_or_null(src->email);
    dst->display_name = auth_dup_or_null(src->display_name);
    if (src->n_groups > 0) {
        dst->groups = xcalloc(src->n_groups, sizeof(*dst->groups));
        for (i = 0; i < src->n_groups; i++)
            dst->groups[i] = xstrdup(src->groups[i]);
        dst->n_groups = src->n_groups;
    }
    dst->agent_name = auth_dup_or_null(src->agent_name);
    dst->owner = auth_dup_or_null(src->owner);
    dst->expires_at = src->expires_at;
}

static json_t *
segment_json(const char *seg, size_t len)
{
    unsigned char *raw = NULL;
    size_t raw_len = 0;
    json_t *v = NULL;

    if (len == 0 || b64url_decode(seg, len, &raw, &raw_len) != 0)
        return NULL;
    /* Duplicate keys could make two parsers disagree about a claim: refuse them. */
    v = json_loadb((const char *)raw, raw_len, JSON_REJECT_DUPLICATES, NULL);
    free(raw);
    if (!json_is_object(v)) {
        json_decref(v);
        return NULL;
    }
    return v;
}

/* Splits "h.p.s" (exactly two dots), decoding and parsing h and p and decoding s. */
static int
token_split(const char *tok, size_t len, struct token *t, const char **why)
{
    const char *d1 = NULL, *d2 = NULL, *sig = NULL;
    int r = ERR_AUTH;

    *why = "malformed token";
    if ((d1 = memchr(tok, '.', len)) == NULL)
        goto out;
    if ((d2 = memchr(d1 + 1, '.', len - (size_t)(d1 + 1 - tok))) == NULL)
        goto out;
    sig = d2 + 1;
    if (memchr(sig, '.', len - (size_t)(sig - tok)) != NULL || *sig == '\0')
        goto out;
    if ((t->header = segment_json(tok, (size_t)(d1 - tok))) == NULL)
        goto out;
    if ((t->payload = segment_json(d1 + 1, (size_t)(d2 - d1 - 1))) == NULL)
        goto out;
    if (b64url_decode(sig, len - (size_t)(sig - tok), &t->sig, &t->sig_len) != 0)
        goto out;
    t->signed_len = (size_t)(d2 - tok);
    r = 0;
out:
    return r;
}

static void
token_cleanup(struct token *t)
{
    json_decref(t->header);
    json_decref(t->payload);
    free(t->sig);
    memset(t, 0, sizeof(*t));
}

static struct issuer *
issuer_find(struct auth *a, const char *iss)
{
    size_t i;

    for (i = 0; iss != NULL && i < a->n_issuers; i++) {
        if (strcmp(a->issuers[i].iss, iss) == 0)
            return &a->issuers[i];
    }
    return NULL;
}
