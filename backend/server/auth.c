/*
 * Bearer-token authentication (DESIGN.md 7).
 *
 * The file has four parts:
 *
 *   verify     auth_verify(): size cap, result cache, split, parse the header
 *              and payload ourselves, header whitelist (claims.c), issuer by
 *              exact "iss", key by "kid", signature (jwk.c: OpenSSL EVP with
 *              the digest, padding and curve fixed by our own algorithm
 *              table), claims (claims.c), then the identity
 *              (username/email/groups, agent name, require).
 *   cache      a 4-way set-associative table of verified tokens keyed by the
 *              SHA-256 of the token, so that repeated requests with the same
 *              bearer skip the public-key operation.
 *   jwks       per issuer: discovery + JWKS fetched (httpc.c) on first use,
 *              JWK -> EVP_PKEY (jwk.c), at most one refetch per 30 s.
 *   dev        the built-in ES256 issuer (key in dataDir), and auth_dev_mint().
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
#include <arpa/inet.h>
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include <curl/curl.h>
#include <jansson.h>
#include <jwt.h>
#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/param_build.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>
#include <openssl/sha.h>
#include <openssl/x509.h>

#include "auth.h"
#include "claims.h"
#include "err.h"
#include "glob.h"
#include "httpc.h"
#include "jwk.h"
#include "log.h"
#include "util.h"
#include "xmalloc.h"

#define CACHE_WAYS 4
#define CACHE_SETS 1024     /* 4096 entries in all */
#define REFETCH_MIN_S 30    /* unknown kid: at most one refetch per issuer per 30 s */
#define JWKS_MAX_AGE_S 3600 /* refetch keys this old, so removed keys go away */
#define HTTP_TIMEOUT_S 5L
#define HTTP_MAX_BODY (1024 * 1024)
#define AGENT_NAME_MAX 255
#define CLAIM_NAME_MAX 128
#define DEV_NAME "dev"
#define DEV_AUDIENCE "airlock"
#define DEV_KEY_FILE "dev-signing-key.pem"
#define DEV_MAX_TTL_S (365LL * 86400)

struct issuer {
    size_t idx; /* position in auth->issuers (tags cache entries) */
    char *name;
    char *iss;
    char *audience;
    enum issuer_kind kind;
    char *username_claim, *email_claim, *name_claim, *groups_claim;
    char *agent_name; /* template, kind agent only */
    char *owner_claim;
    struct claim_rule *require;
    size_t n_require;
    int is_dev; /* keys held in memory, never fetched */
    int trust_email; /* an email claim counts without email_verified */
    char *domain;    /* identity domain (identityDomain, default the name); agent: may be NULL */

    pthread_mutex_t fetch_mu; /* held across one HTTP fetch */
    pthread_mutex_t mu;       /* everything below */
    struct key *keys;
    size_t n_keys;
    int attempted;      /* a fetch has completed (well or not) */
    int64_t attempt_at; /* when the last fetch completed */
    int64_t ok_at;      /* when the last good fetch completed */
    unsigned gen;       /* bumped by every completed fetch */
};

struct cache_entry {
    int used;
    char hash[65]; /* SHA-256 of the token, hex */
    size_t issuer;
    int64_t exp, nbf;
    struct identity id;
};

struct auth {
    struct issuer *issuers; /* configured issuers, then the dev issuer */
    size_t n_issuers;
    struct issuer *dev; /* points into issuers, or NULL */
    char *dev_priv_pem; /* PKCS#8 PEM of the dev signing key, wiped at free */
    size_t dev_priv_len;
    char *dev_kid;

    pthread_mutex_t cache_mu;
    struct cache_entry (*cache)[CACHE_WAYS];
    unsigned cache_clock; /* round-robin victim within a full set */
};

/* The parts of a token that verification needs. */
struct token {
    json_t *header, *payload;
    size_t signed_len; /* bytes of "header.payload" at the start of the token */
    unsigned char *sig;
    size_t sig_len;
};

/* Room for reasons that name a claim ("claim repository missing"); valid until the next call. */
static _Thread_local char why_buf[CLAIM_NAME_MAX + 32];

static int token_split(const char *tok, size_t len, struct token *t, const char **why);
static void token_cleanup(struct token *t);
static struct issuer *issuer_find(struct auth *a, const char *iss);
static int identity_build(const struct issuer *is, const json_t *payload, struct identity *id,
                          const char **why);
static int cache_get(struct auth *a, const char *hash, int64_t now, struct identity *id);
static void cache_put(struct auth *a, const char *hash, size_t issuer, int64_t exp, int64_t nbf,
                      const struct identity *id, int64_t now);
static void cache_drop_issuer(struct auth *a, size_t issuer);
static int issuer_key(struct auth *a, struct issuer *is, const char *kid,
                      const struct alg_info *alg, int64_t now, EVP_PKEY **pk, const char **why);
static int issuer_init(struct issuer *is, const struct issuer_cfg *c, size_t idx, char *err,
                       size_t err_len);
static void issuer_cleanup(struct issuer *is);
static int dev_init(struct auth *a, const struct config *cfg, char *err, size_t err_len);
static int is_loopback_url(const char *url);
static int64_t num_claim(const json_t *payload, const char *name, int64_t dflt);

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
        r = issuer_init(&a->issuers[i], &cfg->issuers[i], i, err, err_len);
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
    if (cfg->dev && (r = dev_init(a, cfg, err, err_len)) != 0)
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
        issuer_cleanup(&a->issuers[i]);
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
    if (cache_get(a, hash, now, id) == 0) {
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
    if ((r = issuer_key(a, is, kid, alg, now, &pk, why)) != 0)
        goto out;
    r = ERR_AUTH;
    if (!jwk_sig_verify(pk, alg, (const unsigned char *)token, t.signed_len, t.sig, t.sig_len)) {
        *why = "signature invalid";
        goto out;
    }
    /* Only now is the payload authentic; claims and identity come after. */
    if ((r = claims_check(t.payload, is->iss, is->audience, now, why)) != 0)
        goto out;
    if ((r = identity_build(is, t.payload, id, why)) != 0)
        goto out;
    cache_put(a, hash, is->idx, id->expires_at, num_claim(t.payload, "nbf", INT64_MIN), id, now);

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

static char *
dup_or_null(const char *s)
{
    return s != NULL ? xstrdup(s) : NULL;
}

/* Deep copy of src into dst; dst's previous contents are overwritten, not freed. */
void
identity_copy(struct identity *dst, const struct identity *src)
{
    size_t i;

    memset(dst, 0, sizeof(*dst));
    dst->issuer_name = dup_or_null(src->issuer_name);
    dst->domain = dup_or_null(src->domain);
    dst->is_agent = src->is_agent;
    dst->subject = dup_or_null(src->subject);
    dst->user = dup_or_null(src->user);
    dst->email = dup_or_null(src->email);
    dst->display_name = dup_or_null(src->display_name);
    if (src->n_groups > 0) {
        dst->groups = xcalloc(src->n_groups, sizeof(*dst->groups));
        for (i = 0; i < src->n_groups; i++)
            dst->groups[i] = xstrdup(src->groups[i]);
        dst->n_groups = src->n_groups;
    }
    dst->agent_name = dup_or_null(src->agent_name);
    dst->owner = dup_or_null(src->owner);
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

/* NumericDate claim floored to an integer, or dflt when absent or not a number. */
static int64_t
num_claim(const json_t *payload, const char *name, int64_t dflt)
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
static int
identity_build(const struct issuer *is, const json_t *payload, struct identity *id,
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
    id->domain = dup_or_null(is->domain);
    id->is_agent = is->kind == ISSUER_AGENT;
    id->subject = xstrdup(sub);
    user = str_claim(payload, is->username_claim);
    id->user = xstrdup(user != NULL ? user : sub);
    email = str_claim(payload, is->email_claim);
    if (email != NULL && !claims_text_clean(email)) {
        *why = why_claim(is->email_claim, "has control characters");
        goto out;
    }
    id->email = dup_or_null(claims_email_trusted(email, payload, is->trust_email));
    id->display_name = dup_or_null(str_claim(payload, is->name_claim));
    groups_read(payload, is->groups_claim, id);
    id->expires_at = num_claim(payload, "exp", 0);
    if (is->kind == ISSUER_AGENT) {
        if ((r = agent_name_expand(is->agent_name, payload, &id->agent_name, why)) != 0)
            goto out;
        if (is->owner_claim != NULL)
            id->owner = dup_or_null(str_claim(payload, is->owner_claim));
    }
    if ((r = identity_clean(is, id, why)) != 0)
        goto out;
    r = 0;
out:
    return r;
}



/* ------------------------------------------------------------------------ */
/* Cache                                                                    */
/* ------------------------------------------------------------------------ */

static struct cache_entry *
cache_set(struct auth *a, const char *hash)
{
    unsigned v = 0;
    int i;

    for (i = 0; i < 3; i++) {
        int c = hash[i];

        v = v << 4 | (unsigned)(c <= '9' ? c - '0' : c - 'a' + 10);
    }
    return a->cache[v % CACHE_SETS];
}

/*
 * Copies the cached identity for hash into id if the entry is still good at
 * now: before exp (an entry never outlives its token) and past nbf - leeway.
 * Returns 0 on a hit, ERR_NOT_FOUND otherwise. An entry that failed the time
 * check is dropped, so the full path decides and reports the reason.
 */
static int
cache_get(struct auth *a, const char *hash, int64_t now, struct identity *id)
{
    struct cache_entry *set = NULL;
    int w, r = ERR_NOT_FOUND;

    pthread_mutex_lock(&a->cache_mu);
    set = cache_set(a, hash);
    for (w = 0; w < CACHE_WAYS; w++) {
        struct cache_entry *e = &set[w];

        if (!e->used || memcmp(e->hash, hash, 64) != 0)
            continue;
        if (now < e->exp && e->nbf <= now + CLAIMS_LEEWAY_S) {
            identity_copy(id, &e->id);
            r = 0;
        } else {
            identity_cleanup(&e->id);
            e->used = 0;
        }
        break;
    }
    pthread_mutex_unlock(&a->cache_mu);
    return r;
}

static void
cache_put(struct auth *a, const char *hash, size_t issuer, int64_t exp, int64_t nbf,
          const struct identity *id, int64_t now)
{
    struct cache_entry *set = NULL, *e = NULL;
    int w;

    if (now >= exp) /* accepted only thanks to the leeway: not worth keeping */
        return;
    pthread_mutex_lock(&a->cache_mu);
    set = cache_set(a, hash);
    for (w = 0; w < CACHE_WAYS && e == NULL; w++) {
        if (!set[w].used || set[w].exp <= now || memcmp(set[w].hash, hash, 64) == 0)
            e = &set[w];
    }
    if (e == NULL)
        e = &set[a->cache_clock++ % CACHE_WAYS];
    identity_cleanup(&e->id);
    memcpy(e->hash, hash, sizeof(e->hash));
    e->issuer = issuer;
    e->exp = exp;
    e->nbf = nbf;
    identity_copy(&e->id, id);
    e->used = 1;
    pthread_mutex_unlock(&a->cache_mu);
}

/* Forgets every token of one issuer, after its key set was replaced. */
static void
cache_drop_issuer(struct auth *a, size_t issuer)
{
    size_t i;
    int w;

    pthread_mutex_lock(&a->cache_mu);
    for (i = 0; i < CACHE_SETS; i++) {
        for (w = 0; w < CACHE_WAYS; w++) {
            struct cache_entry *e = &a->cache[i][w];

            if (e->used && e->issuer == issuer) {
                identity_cleanup(&e->id);
                e->used = 0;
            }
        }
    }
    pthread_mutex_unlock(&a->cache_mu);
}

/* ------------------------------------------------------------------------ */
/* JWKS                                                                     */
/* ------------------------------------------------------------------------ */



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
    return strncasecmp(url, "http://", 7) == 0 && is_loopback_url(url);
}

/*
 * GETs url (https, or http on loopback; no redirects; 5 s; at most 1 MiB)
 * and parses the body as a JSON object into *out (new). Failures are logged
 * here, with what naming the document. Returns 0 or ERR_UNAVAILABLE.
 */
static int
http_get_json(const char *what, const char *url, json_t **out)
{
    struct httpc_req rq = {.method = "GET", .url = url, .user_agent = "airlockd",
                           .timeout_ms = HTTP_TIMEOUT_S * 1000, .max_body = HTTP_MAX_BODY,
                           .strict_json = 1};
    struct httpc_resp rs;
    char err[256];

    *out = NULL;
    if (!url_allowed(url)) {
        log_warn("%s %s: refused, https is required off loopback", what, url);
        return ERR_UNAVAILABLE;
    }
    rq.no_proxy = is_loopback_url(url); /* a proxy from the environment must not see local traffic */
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
        cache_drop_issuer(a, is->idx);
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
static int
issuer_key(struct auth *a, struct issuer *is, const char *kid, const struct alg_info *alg,
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

static void
issuer_locks_init(struct issuer *is)
{
    pthread_mutex_init(&is->mu, NULL);
    pthread_mutex_init(&is->fetch_mu, NULL);
}

/* Copies what verification needs from c, with the documented defaults. */
static int
issuer_init(struct issuer *is, const struct issuer_cfg *c, size_t idx, char *err, size_t err_len)
{
    size_t i, j;

    issuer_locks_init(is);
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
    is->agent_name = dup_or_null(c->agent_name);
    is->owner_claim = dup_or_null(c->owner_claim);
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

static void
issuer_cleanup(struct issuer *is)
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
static int
is_loopback_url(const char *url)
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

/* ------------------------------------------------------------------------ */
/* Dev issuer                                                               */
/* ------------------------------------------------------------------------ */

/* Never prompt on a terminal for a pass phrase: an encrypted dev key is an error. */
static int
no_passphrase(char *buf, int size, int rwflag, void *ud)
{
    (void)buf;
    (void)size;
    (void)rwflag;
    (void)ud;
    return -1;
}

/* mkdir -p with mode 0700 for the directories it creates. */
static int
mkdir_p(const char *dir)
{
    char *p = xstrdup(dir), *s = NULL;
    int r = 0;

    for (s = p + 1; *s != '\0' && r == 0; s++) {
        if (*s != '/')
            continue;
        *s = '\0';
        if (mkdir(p, 0700) != 0 && errno != EEXIST)
            r = ERR_SYSTEM;
        *s = '/';
    }
    if (r == 0 && mkdir(p, 0700) != 0 && errno != EEXIST)
        r = ERR_SYSTEM;
    free(p);
    return r;
}

/*
 * Generates a P-256 key into path with mode 0600. It is written to a
 * temporary file and link()ed into place, so a concurrent start never sees a
 * half-written key and never overwrites one.
 */
static int
dev_key_generate(const char *path, char *err, size_t err_len)
{
    EVP_PKEY *pk = NULL;
    FILE *f = NULL;
    char *tmp = xasprintf("%s.XXXXXX", path);
    int fd = -1, r = ERR_SYSTEM;

    if ((pk = EVP_EC_gen("P-256")) == NULL) {
        snprintf(err, err_len, "cannot generate the dev signing key");
        r = ERR_INTERNAL;
        goto out;
    }
    if ((fd = mkstemp(tmp)) < 0 || fchmod(fd, 0600) != 0 || (f = fdopen(fd, "w")) == NULL) {
        snprintf(err, err_len, "%s: %s", tmp, strerror(errno));
        goto out;
    }
    fd = -1;
    if (PEM_write_PrivateKey(f, pk, NULL, NULL, 0, NULL, NULL) != 1 || fflush(f) != 0 ||
        fsync(fileno(f)) != 0) {
        snprintf(err, err_len, "%s: cannot write the dev signing key", tmp);
        goto out;
    }
    if (link(tmp, path) != 0 && errno != EEXIST) {
        snprintf(err, err_len, "%s: %s", path, strerror(errno));
        goto out;
    }
    log_info("generated dev signing key %s", path);
    r = 0;
out:
    if (f != NULL)
        fclose(f);
    if (fd >= 0)
        close(fd);
    unlink(tmp);
    free(tmp);
    EVP_PKEY_free(pk);
    ERR_clear_error();
    return r;
}

/* Reads the dev key from path; it must be an EC P-256 private key. *pkp is new. */
static int
dev_key_load(const char *path, EVP_PKEY **pkp, char *err, size_t err_len)
{
    EVP_PKEY *pk = NULL;
    FILE *f = NULL;
    struct stat st;
    char group[64] = "";
    int r = ERR_SYSTEM;

    *pkp = NULL;
    if ((f = fopen(path, "r")) == NULL || fstat(fileno(f), &st) != 0) {
        snprintf(err, err_len, "%s: %s", path, strerror(errno));
        goto out;
    }
    if (st.st_mode & 077)
        log_warn("%s is readable by others; it should be mode 0600", path);
    pk = PEM_read_PrivateKey(f, NULL, no_passphrase, NULL);
    if (pk == NULL || !EVP_PKEY_is_a(pk, "EC") ||
        EVP_PKEY_get_utf8_string_param(pk, OSSL_PKEY_PARAM_GROUP_NAME, group, sizeof(group),
                                       NULL) != 1 ||
        strcmp(group, "prime256v1") != 0) {
        snprintf(err, err_len, "%s: not an unencrypted EC P-256 private key", path);
        r = ERR_INVALID;
        goto out;
    }
    *pkp = pk;
    pk = NULL;
    r = 0;
out:
    if (f != NULL)
        fclose(f);
    EVP_PKEY_free(pk);
    ERR_clear_error();
    return r;
}

/*
 * From the private dev key: its PKCS#8 PEM (for libjwt), a public-only copy
 * (for verification) and the kid, the first 16 characters of the base64url
 * SHA-256 of the public key's DER, so it is stable across restarts.
 */
static int
dev_key_export(struct auth *a, EVP_PKEY *priv, EVP_PKEY **pubp)
{
    BIO *bio = NULL;
    unsigned char *der = NULL, md[SHA256_DIGEST_LENGTH];
    const unsigned char *dp = NULL;
    char *mem = NULL, *kid = NULL;
    long mem_len;
    int der_len, r = ERR_INTERNAL;

    *pubp = NULL;
    /* A secure-heap BIO is wiped when freed: it briefly holds the private key. */
    if ((bio = BIO_new(BIO_s_secmem())) == NULL ||
        PEM_write_bio_PrivateKey(bio, priv, NULL, NULL, 0, NULL, NULL) != 1 ||
        (mem_len = BIO_get_mem_data(bio, &mem)) <= 0)
        goto out;
    a->dev_priv_pem = xmalloc((size_t)mem_len + 1);
    memcpy(a->dev_priv_pem, mem, (size_t)mem_len);
    a->dev_priv_pem[mem_len] = '\0';
    a->dev_priv_len = (size_t)mem_len;
    if ((der_len = i2d_PUBKEY(priv, &der)) <= 0)
        goto out;
    dp = der;
    if ((*pubp = d2i_PUBKEY(NULL, &dp, der_len)) == NULL)
        goto out;
    SHA256(der, (size_t)der_len, md);
    kid = b64url_encode(md, sizeof(md));
    kid[16] = '\0';
    a->dev_kid = kid;
    r = 0;
out:
    BIO_free(bio);
    OPENSSL_free(der);
    ERR_clear_error();
    return r;
}

/*
 * Sets up the dev issuer: iss = publicUrl + "/dev" (or "http://" + listen +
 * "/dev"), audience "airlock", one ES256 key loaded from or generated into
 * dataDir. The key is held in memory: no discovery, same verify path.
 */
static int
dev_init(struct auth *a, const struct config *cfg, char *err, size_t err_len)
{
    struct issuer *is = &a->issuers[a->n_issuers];
    const char *dir = cfg->data_dir != NULL ? cfg->data_dir : "var";
    char *path = NULL, *base = NULL;
    EVP_PKEY *priv = NULL, *pub = NULL;
    size_t i, base_len;
    int r = ERR_INTERNAL;

    if (cfg->public_url != NULL && *cfg->public_url != '\0')
        base = xstrdup(cfg->public_url);
    else
        base = xasprintf("http://%s", cfg->listen != NULL ? cfg->listen : "127.0.0.1:8080");
    base_len = strlen(base);
    while (base_len > 0 && base[base_len - 1] == '/')
        base[--base_len] = '\0';

    if (mkdir_p(dir) != 0) {
        snprintf(err, err_len, "%s: %s", dir, strerror(errno));
        r = ERR_SYSTEM;
        goto out;
    }
    path = xasprintf("%s/%s", dir, DEV_KEY_FILE);
    if (access(path, F_OK) != 0 && (r = dev_key_generate(path, err, err_len)) != 0)
        goto out;
    if ((r = dev_key_load(path, &priv, err, err_len)) != 0)
        goto out;
    if ((r = dev_key_export(a, priv, &pub)) != 0) {
        snprintf(err, err_len, "%s: cannot export the dev key", path);
        goto out;
    }

    issuer_locks_init(is);
    is->idx = a->n_issuers;
    is->name = xstrdup(DEV_NAME);
    is->iss = xasprintf("%s/dev", base);
    is->audience = xstrdup(DEV_AUDIENCE);
    is->kind = ISSUER_USER;
    is->username_claim = xstrdup("preferred_username");
    is->email_claim = xstrdup("email");
    is->name_claim = xstrdup("name");
    is->groups_claim = xstrdup("groups");
    is->is_dev = 1;
    is->trust_email = 1; /* the dev issuer mints whatever email it is asked for */
    is->domain = xstrdup(DEV_NAME);
    is->keys = xcalloc(1, sizeof(*is->keys));
    is->keys[0].kid = xstrdup(a->dev_kid);
    is->keys[0].alg = xstrdup("ES256");
    is->keys[0].kty = KEY_EC_P256;
    is->keys[0].pkey = pub;
    pub = NULL;
    is->n_keys = 1;
    a->dev = is;
    a->n_issuers++;
    for (i = 0; i + 1 < a->n_issuers; i++) {
        if (strcmp(a->issuers[i].iss, is->iss) == 0) {
            snprintf(err, err_len, "issuer %s has the dev issuer's URL %s", a->issuers[i].name,
                     is->iss);
            r = ERR_INVALID;
            goto out;
        }
    }
    log_info("dev issuer %s (kid %s)", is->iss, a->dev_kid);
    r = 0;
out:
    EVP_PKEY_free(priv);
    EVP_PKEY_free(pub);
    free(path);
    free(base);
    return r;
}

/*
 * Dev mode only: mints an ES256 token from the dev issuer (iss, aud
 * "airlock", sub and preferred_username = user, optional email, name and
 * groups, iat now, exp now + ttl_s; ttl_s may be negative to make an
 * expired token for tests). *token is a new string. Returns 0,
 * ERR_NOT_FOUND when dev mode is off, ERR_INVALID for an empty user or
 * ERR_INTERNAL if signing fails.
 */
int
auth_dev_mint(struct auth *a, const char *user, const char *email, const char *name,
              const char *const *groups, size_t n_groups, int64_t ttl_s, char **token)
{
    json_t *claims = NULL, *garr = NULL;
    jwt_t *j = NULL;
    char *grants = NULL, *out = NULL;
    int64_t now = time_now();
    size_t i;
    int r = ERR_INTERNAL;

    *token = NULL;
    if (a == NULL || a->dev == NULL) {
        r = ERR_NOT_FOUND;
        goto out;
    }
    if (user == NULL || *user == '\0' || ttl_s > DEV_MAX_TTL_S || ttl_s < -DEV_MAX_TTL_S) {
        r = ERR_INVALID;
        goto out;
    }
    garr = json_array();
    for (i = 0; i < n_groups && i < AUTH_MAX_GROUPS; i++)
        json_array_append_new(garr, json_string(groups[i]));
    claims = json_pack("{s:s, s:s, s:s, s:s, s:I, s:I, s:O}", "iss", a->dev->iss, "aud",
                       DEV_AUDIENCE, "sub", user, "preferred_username", user, "iat",
                       (json_int_t)now, "exp", (json_int_t)(now + ttl_s), "groups", garr);
    if (claims == NULL) { /* a group or the user was not valid UTF-8 */
        r = ERR_INVALID;
        goto out;
    }
    if (email != NULL && *email != '\0')
        json_object_set_new(claims, "email", json_string(email));
    if (name != NULL && *name != '\0')
        json_object_set_new(claims, "name", json_string(name));
    grants = json_dumps(claims, JSON_COMPACT);
    if (grants == NULL || jwt_new(&j) != 0 ||
        jwt_set_alg(j, JWT_ALG_ES256, (const unsigned char *)a->dev_priv_pem,
                    (int)a->dev_priv_len) != 0 ||
        jwt_add_header(j, "kid", a->dev_kid) != 0 || jwt_add_grants_json(j, grants) != 0 ||
        (out = jwt_encode_str(j)) == NULL) {
        log_warn("dev token: signing failed");
        goto out;
    }
    *token = xstrdup(out);
    r = 0;
out:
    if (out != NULL) {
        explicit_bzero(out, strlen(out));
        free(out);
    }
    jwt_free(j);
    free(grants);
    json_decref(garr);
    json_decref(claims);
    return r;
}

/* The dev issuer's "iss", or NULL when dev mode is off. Borrowed from a. */
const char *
auth_dev_issuer(const struct auth *a)
{
    return a != NULL && a->dev != NULL ? a->dev->iss : NULL;
}
