/*
 * Private to the auth_*.c files: the verifier's state, shared between
 * auth.c (lifecycle and verification), auth_identity.c (claims -> identity),
 * auth_cache.c (verified-token cache), auth_issuer.c (issuer settings,
 * discovery, JWKS and key lookup) and auth_dev.c (the dev issuer).
 */
#ifndef AIRLOCK_AUTH_INT_H
#define AIRLOCK_AUTH_INT_H
#include <pthread.h>
#include <stdint.h>

#include <jansson.h>
#include <openssl/evp.h>

#include "auth.h"
#include "config.h"
#include "jwk.h"

#define CACHE_WAYS 4
#define CACHE_SETS 1024    /* 4096 entries in all */
#define CLAIM_NAME_MAX 128 /* longest claim name in templates and reasons */

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
    int is_dev;      /* keys held in memory, never fetched */
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

/* auth_identity.c */

/*
 * Fills id from a verified payload of issuer is (see auth.h for the fields).
 * Returns 0, or ERR_AUTH with *why set (static, or thread-local until this
 * thread's next call). On failure id may be partly filled: the caller
 * cleans it up with identity_cleanup().
 */
int auth_identity_build(const struct issuer *is, const json_t *payload, struct identity *id,
                        const char **why);
/* NumericDate claim floored to an integer, or dflt when absent or not a number. */
int64_t auth_num_claim(const json_t *payload, const char *name, int64_t dflt);
/* A new copy of s, or NULL for NULL. */
char *auth_dup_or_null(const char *s);

/* auth_cache.c */

/*
 * Copies the cached identity for hash (SHA-256 hex of the token) into id
 * when the entry is still good at now. Returns 0 on a hit, ERR_NOT_FOUND
 * otherwise.
 */
int auth_cache_get(struct auth *a, const char *hash, int64_t now, struct identity *id);
/* Remembers id (copied) for hash until exp; nbf is checked again on every hit. */
void auth_cache_put(struct auth *a, const char *hash, size_t issuer, int64_t exp, int64_t nbf,
                    const struct identity *id, int64_t now);
/* Forgets every token of one issuer, after its key set was replaced. */
void auth_cache_drop_issuer(struct auth *a, size_t issuer);

/* auth_issuer.c */

/* Copies the settings of c into is (idx: its position). 0 or ERR_INVALID with a message. */
int auth_issuer_init(struct issuer *is, const struct issuer_cfg *c, size_t idx, char *err,
                     size_t err_len);
/* Initialises the two locks of is (auth_issuer_init does it too). */
void auth_issuer_locks_init(struct issuer *is);
/* Frees what is holds (not is itself). */
void auth_issuer_cleanup(struct issuer *is);
/*
 * The key for (kid, alg) from is, fetching the JWKS when due. *pk receives a
 * new reference. Returns 0, ERR_AUTH or ERR_UNAVAILABLE, with *why set.
 */
int auth_issuer_key(struct auth *a, struct issuer *is, const char *kid, const struct alg_info *alg,
                    int64_t now, EVP_PKEY **pk, const char **why);
/* 1 if url's host is localhost, 127.0.0.0/8 or [::1]. */
int auth_url_is_loopback(const char *url);

/* auth_dev.c */

/* Adds the dev issuer to a (key from or into cfg's dataDir). 0 or ERR_* with a message. */
int auth_dev_init(struct auth *a, const struct config *cfg, char *err, size_t err_len);

#endif
