/*
 * JSON Web Keys and JWS signatures (RFC 7515, 7517, 7518), with OpenSSL 3
 * only: no I/O, no locks. auth.c fetches the key sets and decides which key
 * a token may use; this file turns JWKs into public keys and checks
 * signatures with the digest, padding and curve fixed by our own algorithm
 * table, so that a key is only ever used with its own algorithm family (no
 * HMAC exists on this path: "alg": "HS256" is simply unknown).
 */
#ifndef AIRLOCK_JWK_H
#define AIRLOCK_JWK_H
#include <stddef.h>

#include <jansson.h>
#include <openssl/evp.h>

#define JWKS_MAX_KEYS 64
#define RSA_MIN_BITS 2048
#define RSA_MAX_BYTES 2048 /* 16384-bit modulus */

enum key_type { KEY_RSA, KEY_EC_P256, KEY_EC_P384 };

/* What each accepted "alg" means. The signature code reads only this table. */
struct alg_info {
    const char *name;
    enum key_type kty;
    const EVP_MD *(*md)(void);
    size_t ec_half; /* ECDSA: bytes of r (and of s) in the JOSE signature; 0 for RSA */
    int pss;        /* RSASSA-PSS, salt length = digest length (RFC 7518 3.5) */
};

struct key {
    char *kid; /* NULL when the JWK has none */
    char *alg; /* the JWK's "alg", or NULL */
    enum key_type kty;
    EVP_PKEY *pkey; /* public key; shared with verifiers through EVP_PKEY_up_ref */
};

/* The algorithm named "alg" if we verify it (RS256/384/512, PS256, ES256/384), else NULL. */
const struct alg_info *jwk_alg_find(const char *name);
/* 1 if sig is a valid signature of msg under pk with alg; 0 otherwise. */
int jwk_sig_verify(EVP_PKEY *pk, const struct alg_info *alg, const unsigned char *msg,
                   size_t msg_len, const unsigned char *sig, size_t sig_len);
/* 1 if key k may verify alg (same key type, and the JWK's own "alg" agrees). */
int jwk_key_fits(const struct key *k, const struct alg_info *alg);
/*
 * {"keys": [...]} -> the keys usable for signatures (at most JWKS_MAX_KEYS;
 * others are skipped with a debug line naming issuer_name). *keysp is new.
 * Returns 0 (at least one key) or ERR_INVALID.
 */
int jwk_set_parse(const char *issuer_name, const json_t *jwks, struct key **keysp, size_t *np);
void jwk_keys_free(struct key *keys, size_t n);

#endif
