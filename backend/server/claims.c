/*
 * PURE. The checks libjwt 1.10 leaves to us (LIBS.md 3): the JOSE header
 * (algorithm whitelist, typ, crit) and the time, issuer and audience claims.
 * No I/O, no clock: the caller passes "now". auth.c calls
 * claims_check_header() before it looks for a key and claims_check() after
 * the signature has been verified.
 */
#include <stdint.h>
#include <string.h>
#include <strings.h>

#include <jansson.h>

#include "claims.h"
#include "err.h"

/*
 * Times are clamped to +-2^62 before any arithmetic, so adding or
 * subtracting the leeway can never overflow, whatever a token says.
 */
#define TIME_CLAMP ((int64_t)1 << 62)

static const char *const allowed_algs[] = {"RS256", "RS384", "RS512", "ES256", "ES384", "PS256"};

/* RFC 7515 4.1.9 lets "application/" be left out of typ; accept both spellings. */
static const char *const allowed_typs[] = {"JWT", "at+jwt", "application/jwt",
                                           "application/at+jwt"};

static int64_t clamp_time(int64_t t);
static int get_time(const json_t *payload, const char *name, int64_t *t);
static int aud_contains(const json_t *aud, const char *want);

/*
 * Checks payload (a parsed JWT claims object) against iss and aud at time
 * now. exp is required and must satisfy now < exp + leeway; nbf and iat,
 * when present, must be numbers no later than now + leeway. Returns 0, or
 * ERR_AUTH with *why set to a static reason.
 */
int
claims_check(const json_t *payload, const char *iss, const char *aud, int64_t now, const char **why)
{
    const json_t *v = NULL;
    int64_t exp = 0, nbf = 0, iat = 0;
    int r = ERR_AUTH, has;

    *why = "malformed token";
    if (!json_is_object(payload) || iss == NULL || aud == NULL)
        goto out;
    now = clamp_time(now);

    if ((has = get_time(payload, "exp", &exp)) < 0)
        goto out;
    if (has == 0) {
        *why = "token has no exp";
        goto out;
    }
    /* now < exp + leeway, written so that nothing can overflow */
    if (exp <= now - CLAIMS_LEEWAY_S) {
        *why = "token expired";
        goto out;
    }
    if ((has = get_time(payload, "nbf", &nbf)) < 0)
        goto out;
    if (has && nbf > now + CLAIMS_LEEWAY_S) {
        *why = "token not yet valid";
        goto out;
    }
    if ((has = get_time(payload, "iat", &iat)) < 0)
        goto out;
    if (has && iat > now + CLAIMS_LEEWAY_S) {
        *why = "token issued in the future";
        goto out;
    }

    v = json_object_get(payload, "iss");
    if (!json_is_string(v) || strcmp(json_string_value(v), iss) != 0) {
        *why = "wrong issuer";
        goto out;
    }
    if (!aud_contains(json_object_get(payload, "aud"), aud)) {
        *why = "wrong audience";
        goto out;
    }

    *why = NULL;
    r = 0;
out:
    return r;
}

/*
 * Checks the JOSE header: alg must be one of RS256 RS384 RS512 ES256 ES384
 * PS256 (case-sensitive, as RFC 7518 spells them), typ absent or "JWT" /
 * "at+jwt" (case-insensitive, "application/" prefix allowed), crit absent,
 * kid absent or a string. Returns 0 or ERR_AUTH with *why set.
 */
int
claims_check_header(const json_t *header, const char **why)
{
    const json_t *alg = NULL, *typ = NULL, *kid = NULL;
    size_t i;
    int r = ERR_AUTH, ok = 0;

    *why = "malformed token";
    if (!json_is_object(header))
        goto out;

    alg = json_object_get(header, "alg");
    for (i = 0; json_is_string(alg) && i < sizeof(allowed_algs) / sizeof(allowed_algs[0]); i++)
        ok |= strcmp(json_string_value(alg), allowed_algs[i]) == 0;
    if (!ok) {
        *why = "unsupported algorithm";
        goto out;
    }

    typ = json_object_get(header, "typ");
    if (typ != NULL) {
        ok = 0;
        for (i = 0; json_is_string(typ) && i < sizeof(allowed_typs) / sizeof(allowed_typs[0]); i++)
            ok |= strcasecmp(json_string_value(typ), allowed_typs[i]) == 0;
        if (!ok) {
            *why = "unsupported token type";
            goto out;
        }
    }

    /* We understand no extension, so any "crit" list means we must refuse (RFC 7515 4.1.11). */
    if (json_object_get(header, "crit") != NULL) {
        *why = "unsupported critical header";
        goto out;
    }

    kid = json_object_get(header, "kid");
    if (kid != NULL && !json_is_string(kid))
        goto out;

    *why = NULL;
    r = 0;
out:
    return r;
}

int
claims_text_clean(const char *s)
{
    const unsigned char *p = (const unsigned char *)s;

    for (; *p != '\0'; p++) {
        if (*p < 0x20 || *p == 0x7f)
            return 0;
        if (p[0] == 0xc2 && p[1] >= 0x80 && p[1] <= 0x9f) /* C1 */
            return 0;
        if (p[0] == 0xe2 && p[1] == 0x80 && (p[2] == 0xa8 || p[2] == 0xa9)) /* U+2028/9 */
            return 0;
    }
    return 1;
}

int
claims_email_valid(const char *s)
{
    const char *at = strchr(s, '@'), *p = NULL;
    size_t local_len, label_len = 0, n_labels = 0;

    if (at == NULL || strchr(at + 1, '@') != NULL)
        return 0;
    local_len = (size_t)(at - s);
    if (local_len == 0 || local_len > 64 || s[0] == '.' || at[-1] == '.')
        return 0;
    for (p = s; p < at; p++) {
        if ((unsigned char)*p <= 0x20 || (unsigned char)*p >= 0x7f ||
            strchr("()<>[]:;,\\\"", *p) != NULL)
            return 0;
        if (p[0] == '.' && p[1] == '.')
            return 0;
    }
    if (strlen(at + 1) > 253)
        return 0;
    for (p = at + 1;; p++) {
        if (*p == '.' || *p == '\0') {
            if (label_len == 0 || label_len > 63 || p[-1] == '-')
                return 0;
            n_labels++;
            label_len = 0;
            if (*p == '\0')
                break;
            continue;
        }
        if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
              (*p == '-' && label_len > 0)))
            return 0;
        label_len++;
    }
    return n_labels >= 2;
}

int
claims_email_verified(const json_t *payload)
{
    const json_t *v = json_object_get(payload, "email_verified");

    return json_is_true(v) || (json_is_string(v) && strcmp(json_string_value(v), "true") == 0);
}

const char *
claims_email_trusted(const char *email, const json_t *payload, int trust_email)
{
    if (email == NULL || !claims_email_valid(email))
        return NULL;
    return trust_email || claims_email_verified(payload) ? email : NULL;
}

static int64_t
clamp_time(int64_t t)
{
    if (t > TIME_CLAMP)
        return TIME_CLAMP;
    if (t < -TIME_CLAMP)
        return -TIME_CLAMP;
    return t;
}

/*
 * Reads NumericDate claim name. Returns 1 with *t set, 0 when absent, -1 when
 * present but not a number. Fractions are floored (RFC 7519 allows them).
 */
static int
get_time(const json_t *payload, const char *name, int64_t *t)
{
    const json_t *v = json_object_get(payload, name);
    double d;

    if (v == NULL)
        return 0;
    if (json_is_integer(v)) {
        *t = clamp_time((int64_t)json_integer_value(v));
        return 1;
    }
    if (!json_is_real(v))
        return -1;
    d = json_real_value(v);
    if (!(d > -(double)TIME_CLAMP)) { /* also catches NaN */
        *t = -TIME_CLAMP;
    } else if (d > (double)TIME_CLAMP) {
        *t = TIME_CLAMP;
    } else {
        *t = (int64_t)d; /* truncates toward zero; make it floor */
        if ((double)*t > d)
            (*t)--;
    }
    return 1;
}

/* 1 if aud is the string want, or an array with want among its elements. */
static int
aud_contains(const json_t *aud, const char *want)
{
    size_t i;
    const json_t *e = NULL;

    if (json_is_string(aud))
        return strcmp(json_string_value(aud), want) == 0;
    if (!json_is_array(aud))
        return 0;
    json_array_foreach(aud, i, e)
    {
        if (json_is_string(e) && strcmp(json_string_value(e), want) == 0)
            return 1;
    }
    return 0;
}
