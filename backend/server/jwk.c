/* JSON Web Keys and JWS signatures: see jwk.h. */
#include <string.h>

#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/err.h>
#include <openssl/ec.h>
#include <openssl/param_build.h>
#include <openssl/rsa.h>

#include "err.h"
#include "jwk.h"
#include "log.h"
#include "util.h"
#include "xmalloc.h"

static const struct alg_info algs[] = {
    {"RS256", KEY_RSA, EVP_sha256, 0, 0},      {"RS384", KEY_RSA, EVP_sha384, 0, 0},
    {"RS512", KEY_RSA, EVP_sha512, 0, 0},      {"ES256", KEY_EC_P256, EVP_sha256, 32, 0},
    {"ES384", KEY_EC_P384, EVP_sha384, 48, 0}, {"PS256", KEY_RSA, EVP_sha256, 0, 1},
};

static char *
dup_or_null(const char *s)
{
    return s ? xstrdup(s) : NULL;
}

const struct alg_info *
jwk_alg_find(const char *name)
{
    size_t i;

    for (i = 0; name != NULL && i < sizeof(algs) / sizeof(algs[0]); i++) {
        if (strcmp(algs[i].name, name) == 0)
            return &algs[i];
    }
    return NULL;
}

/* JOSE ECDSA signatures are r || s, fixed width; OpenSSL wants DER. *der is new. */
static int
ecdsa_jose_to_der(const unsigned char *sig, size_t half, unsigned char **der, size_t *der_len)
{
    ECDSA_SIG *es = NULL;
    BIGNUM *br = NULL, *bs = NULL;
    unsigned char *p = NULL;
    int n, r = ERR_AUTH;

    *der = NULL;
    br = BN_bin2bn(sig, (int)half, NULL);
    bs = BN_bin2bn(sig + half, (int)half, NULL);
    if (br == NULL || bs == NULL || (es = ECDSA_SIG_new()) == NULL)
        goto out;
    if (ECDSA_SIG_set0(es, br, bs) != 1)
        goto out;
    br = bs = NULL; /* owned by es now */
    if ((n = i2d_ECDSA_SIG(es, &p)) <= 0)
        goto out;
    *der = p;
    *der_len = (size_t)n;
    r = 0;
out:
    BN_free(br);
    BN_free(bs);
    ECDSA_SIG_free(es);
    return r;
}

/*
 * 1 if sig is a valid alg signature of msg under pk. The digest, padding and
 * signature format come from alg, which the caller has already matched to
 * the key's type.
 */
int
jwk_sig_verify(EVP_PKEY *pk, const struct alg_info *alg, const unsigned char *msg, size_t msg_len,
               const unsigned char *sig, size_t sig_len)
{
    EVP_MD_CTX *mctx = NULL;
    EVP_PKEY_CTX *pctx = NULL;
    unsigned char *der = NULL;
    size_t der_len = 0;
    int ok = 0;

    if (alg->ec_half > 0) {
        if (sig_len != 2 * alg->ec_half ||
            ecdsa_jose_to_der(sig, alg->ec_half, &der, &der_len) != 0)
            goto out;
        sig = der;
        sig_len = der_len;
    }
    if ((mctx = EVP_MD_CTX_new()) == NULL)
        goto out;
    if (EVP_DigestVerifyInit(mctx, &pctx, alg->md(), NULL, pk) != 1)
        goto out;
    if (alg->pss && (EVP_PKEY_CTX_set_rsa_padding(pctx, RSA_PKCS1_PSS_PADDING) != 1 ||
                     EVP_PKEY_CTX_set_rsa_pss_saltlen(pctx, RSA_PSS_SALTLEN_DIGEST) != 1 ||
                     EVP_PKEY_CTX_set_rsa_mgf1_md(pctx, alg->md()) != 1))
        goto out;
    ok = EVP_DigestVerify(mctx, sig, sig_len, msg, msg_len) == 1;
out:
    ERR_clear_error();
    OPENSSL_free(der);
    EVP_MD_CTX_free(mctx);
    return ok;
}

void
jwk_keys_free(struct key *keys, size_t n)
{
    size_t i;

    for (i = 0; i < n; i++) {
        free(keys[i].kid);
        free(keys[i].alg);
        EVP_PKEY_free(keys[i].pkey);
    }
    free(keys);
}

int
jwk_key_fits(const struct key *k, const struct alg_info *alg)
{
    return k->kty == alg->kty && (k->alg == NULL || strcmp(k->alg, alg->name) == 0);
}

/* Decodes the base64url string member name of o. *out is new. */
static int
b64_member(const json_t *o, const char *name, unsigned char **out, size_t *out_len)
{
    const char *s = json_string_value(json_object_get(o, name));

    *out = NULL;
    if (s == NULL || *s == '\0')
        return ERR_INVALID;
    return b64url_decode(s, strlen(s), out, out_len);
}

/* EVP_PKEY_fromdata for a public key of type, plus OpenSSL's own sanity check. */
static int
pkey_build(const char *type, OSSL_PARAM_BLD *bld, EVP_PKEY **pk)
{
    OSSL_PARAM *params = NULL;
    EVP_PKEY_CTX *ctx = NULL, *chk = NULL;
    int r = ERR_INVALID;

    *pk = NULL;
    if ((params = OSSL_PARAM_BLD_to_param(bld)) == NULL ||
        (ctx = EVP_PKEY_CTX_new_from_name(NULL, type, NULL)) == NULL ||
        EVP_PKEY_fromdata_init(ctx) != 1 ||
        EVP_PKEY_fromdata(ctx, pk, EVP_PKEY_PUBLIC_KEY, params) != 1)
        goto out;
    if ((chk = EVP_PKEY_CTX_new_from_pkey(NULL, *pk, NULL)) == NULL ||
        EVP_PKEY_public_check(chk) != 1)
        goto out;
    r = 0;
out:
    if (r != 0) {
        EVP_PKEY_free(*pk);
        *pk = NULL;
    }
    ERR_clear_error();
    EVP_PKEY_CTX_free(chk);
    EVP_PKEY_CTX_free(ctx);
    OSSL_PARAM_free(params);
    return r;
}

/* RSA JWK (n, e) -> public key of at least RSA_MIN_BITS. */
static int
jwk_rsa(const json_t *jwk, EVP_PKEY **pk)
{
    unsigned char *n = NULL, *e = NULL;
    size_t n_len = 0, e_len = 0;
    BIGNUM *bn = NULL, *be = NULL;
    OSSL_PARAM_BLD *bld = NULL;
    int r = ERR_INVALID;

    *pk = NULL;
    if (b64_member(jwk, "n", &n, &n_len) != 0 || b64_member(jwk, "e", &e, &e_len) != 0)
        goto out;
    if (n_len > RSA_MAX_BYTES || e_len > 8)
        goto out;
    bn = BN_bin2bn(n, (int)n_len, NULL);
    be = BN_bin2bn(e, (int)e_len, NULL);
    if (bn == NULL || be == NULL || (bld = OSSL_PARAM_BLD_new()) == NULL ||
        OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_N, bn) != 1 ||
        OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_E, be) != 1)
        goto out;
    if ((r = pkey_build("RSA", bld, pk)) != 0)
        goto out;
    if (EVP_PKEY_get_bits(*pk) < RSA_MIN_BITS) {
        EVP_PKEY_free(*pk);
        *pk = NULL;
        r = ERR_INVALID;
        goto out;
    }
    r = 0;
out:
    OSSL_PARAM_BLD_free(bld);
    BN_free(bn);
    BN_free(be);
    free(n);
    free(e);
    return r;
}

/* EC JWK (crv P-256 or P-384, x, y) -> public key; a point off the curve is refused. */
static int
jwk_ec(const json_t *jwk, EVP_PKEY **pk, enum key_type *kty)
{
    const char *crv = json_string_value(json_object_get(jwk, "crv")), *group = NULL;
    unsigned char *x = NULL, *y = NULL, pt[1 + 2 * 48];
    size_t x_len = 0, y_len = 0, half;
    OSSL_PARAM_BLD *bld = NULL;
    int r = ERR_INVALID;

    *pk = NULL;
    if (crv != NULL && strcmp(crv, "P-256") == 0) {
        group = "prime256v1";
        half = 32;
        *kty = KEY_EC_P256;
    } else if (crv != NULL && strcmp(crv, "P-384") == 0) {
        group = "secp384r1";
        half = 48;
        *kty = KEY_EC_P384;
    } else {
        goto out;
    }
    if (b64_member(jwk, "x", &x, &x_len) != 0 || b64_member(jwk, "y", &y, &y_len) != 0 ||
        x_len != half || y_len != half)
        goto out;
    pt[0] = 0x04; /* uncompressed point */
    memcpy(pt + 1, x, half);
    memcpy(pt + 1 + half, y, half);
    if ((bld = OSSL_PARAM_BLD_new()) == NULL ||
        OSSL_PARAM_BLD_push_utf8_string(bld, OSSL_PKEY_PARAM_GROUP_NAME, group, 0) != 1 ||
        OSSL_PARAM_BLD_push_octet_string(bld, OSSL_PKEY_PARAM_PUB_KEY, pt, 1 + 2 * half) != 1)
        goto out;
    r = pkey_build("EC", bld, pk);
out:
    OSSL_PARAM_BLD_free(bld);
    free(x);
    free(y);
    return r;
}

/*
 * One JWK -> key. Returns 0, or ERR_INVALID for keys we do not use: not for
 * signatures, a type other than RSA/EC ("oct" HMAC secrets in particular),
 * an unsupported curve, an RSA modulus under 2048 bits, a bad point.
 */
static int
jwk_to_key(const json_t *jwk, struct key *k)
{
    const char *kty = json_string_value(json_object_get(jwk, "kty"));
    const json_t *use = json_object_get(jwk, "use"), *kid = json_object_get(jwk, "kid");
    const json_t *alg = json_object_get(jwk, "alg");
    int r = ERR_INVALID;

    memset(k, 0, sizeof(*k));
    if (!json_is_object(jwk) || kty == NULL)
        goto out;
    if (use != NULL && !(json_is_string(use) && strcmp(json_string_value(use), "sig") == 0))
        goto out;
    if ((kid != NULL && !json_is_string(kid)) || (alg != NULL && !json_is_string(alg)))
        goto out;
    if (strcmp(kty, "RSA") == 0) {
        k->kty = KEY_RSA;
        r = jwk_rsa(jwk, &k->pkey);
    } else if (strcmp(kty, "EC") == 0) {
        r = jwk_ec(jwk, &k->pkey, &k->kty);
    }
    if (r != 0)
        goto out;
    k->kid = dup_or_null(json_string_value(kid));
    k->alg = dup_or_null(json_string_value(alg));
out:
    return r;
}

/* {"keys": [...]} -> keys we can use. Returns 0 (at least one key) or ERR_INVALID. */
int
jwk_set_parse(const char *issuer_name, const json_t *jwks, struct key **keysp, size_t *np)
{
    const json_t *arr = json_object_get(jwks, "keys"), *jwk = NULL;
    struct key *keys = NULL;
    size_t i, n = 0;
    int r = ERR_INVALID;

    *keysp = NULL;
    *np = 0;
    if (!json_is_array(arr) || json_array_size(arr) == 0)
        goto out;
    keys = xcalloc(json_array_size(arr), sizeof(*keys));
    json_array_foreach(arr, i, jwk)
    {
        if (n == JWKS_MAX_KEYS)
            break;
        if (jwk_to_key(jwk, &keys[n]) == 0)
            n++;
        else
            log_debug("issuer %s: JWKS entry %zu skipped (unusable for signatures)", issuer_name,
                      i);
    }
    if (n == 0)
        goto out;
    *keysp = keys;
    *np = n;
    keys = NULL;
    n = 0;
    r = 0;
out:
    jwk_keys_free(keys, n);
    return r;
}
