/*
 * PURE. The claim checks libjwt 1.10 does not do: exp (required), nbf, iat
 * with leeway, exact iss, aud (string or array) containing the audience.
 */
#ifndef AIRLOCK_CLAIMS_H
#define AIRLOCK_CLAIMS_H
#include <stdint.h>

#include <jansson.h>

#define CLAIMS_LEEWAY_S 60

/*
 * Checks payload (a parsed JWT claims object) against iss and aud at time
 * now. Returns 0, or ERR_AUTH with *why set to a static reason
 * ("token expired", "token not yet valid", "wrong issuer", "wrong audience",
 * "token has no exp", "token issued in the future").
 */
int claims_check(const json_t *payload, const char *iss, const char *aud, int64_t now,
                 const char **why);

/*
 * Checks the JOSE header: alg must be one of RS256 RS384 RS512 ES256 ES384
 * PS256, typ absent, "JWT" or "at+jwt", crit absent. Returns 0 or ERR_AUTH.
 */
int claims_check_header(const json_t *header, const char **why);

#endif
