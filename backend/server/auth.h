/*
 * Bearer-token authentication (DESIGN.md 7). auth_verify() parses the JWT
 * header itself, refuses anything but RS256/RS384/RS512/ES256/ES384/PS256,
 * picks the issuer by "iss" and the key by "kid" from that issuer's JWKS
 * (discovered and cached with libcurl), verifies the signature with libjwt
 * against a PEM made from the JWK, pins the algorithm to the key type, then
 * checks the claims (claims.c). Dev mode adds a local ES256 issuer whose key
 * lives in dataDir, and auth_dev_mint() to issue tokens from it.
 *
 * Thread-safe: called concurrently from MHD worker threads.
 */
#ifndef AIRLOCK_AUTH_H
#define AIRLOCK_AUTH_H
#include <stdint.h>

#include "config.h"

#define AUTH_MAX_TOKEN 16384
#define AUTH_MAX_GROUPS 256

struct auth;

/* Who a valid token speaks for. All strings owned by the identity. */
struct identity {
    char *issuer_name;  /* config name of the issuer ("dev" for the dev issuer) */
    char *domain;       /* identity domain: usernames are unique within it (the issuer's
                           identityDomain, default its name; agent issuers: NULL unless
                           set, then ownerClaim names a user of that domain) */
    int is_agent;       /* token from a kind: agent issuer */
    char *subject;      /* "sub" */
    char *user;         /* username claim, falling back to sub; never NULL */
    char *email;        /* trusted for matching (valid, and verified or trustEmail); may be NULL */
    char *display_name; /* may be NULL */
    char **groups;      /* n_groups entries */
    size_t n_groups;
    char *agent_name;   /* kind agent: agentName template expanded; else NULL */
    char *owner;        /* kind agent: ownerClaim value; else NULL */
    int64_t expires_at; /* exp */
};

/*
 * Creates the verifier for cfg's issuers (and the dev issuer when cfg->dev,
 * creating dataDir/dev-signing-key.pem on first use). Discovery happens
 * lazily on the first token of each issuer. Returns 0 or ERR_* with a
 * message in err.
 */
int auth_new(const struct config *cfg, struct auth **ap, char *err, size_t err_len);
void auth_free(struct auth *a);
/*
 * Reload: issuers of to (new, not yet in use) whose URL is an issuer's of
 * from keep the keys from has fetched (shared references), so a reload
 * needs no refetch. from may be in use by other threads.
 */
void auth_keys_adopt(struct auth *to, struct auth *from);

/*
 * Verifies token at time now. On success fills *id (free with
 * identity_cleanup). Returns 0, ERR_AUTH (any token problem; *why gets a
 * static reason such as "token expired", safe to show the client), or
 * ERR_UNAVAILABLE when the issuer's JWKS cannot be fetched at all.
 */
int auth_verify(struct auth *a, const char *token, int64_t now, struct identity *id,
                const char **why);

/*
 * Dev mode only: mints an ES256 token from the dev issuer for user, with
 * optional email, display name and groups, valid ttl_s seconds. *token is a
 * new string. Returns 0, or ERR_NOT_FOUND when dev mode is off.
 */
int auth_dev_mint(struct auth *a, const char *user, const char *email, const char *name,
                  const char *const *groups, size_t n_groups, int64_t ttl_s, char **token);

/* The dev issuer's "iss" (publicUrl + "/dev"), or NULL when dev mode is off. Borrowed. */
const char *auth_dev_issuer(const struct auth *a);

void identity_cleanup(struct identity *id);
/* Deep copy. */
void identity_copy(struct identity *dst, const struct identity *src);

#endif
