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

/*
 * 1 if s (UTF-8) holds no control character: no C0 (U+0000-U+001F), no DEL,
 * no C1 (U+0080-U+009F) and no U+2028/U+2029 line or paragraph separator.
 * Claims that name a person end up in logs, JSON and terminal titles; a
 * newline in a username would forge a log line.
 */
int claims_text_clean(const char *s);

/*
 * 1 if s is a syntactically valid address for matching: one '@', a local
 * part of 1..64 printable ASCII characters other than space and
 * ()<>[]:;,\" (no leading, trailing or double '.'), and a domain of two or
 * more dot-separated labels of letters, digits and '-' (at most 253 bytes).
 */
int claims_email_valid(const char *s);

/* 1 if payload says email_verified: true (the boolean, or the string "true"). */
int claims_email_verified(const json_t *payload);

/*
 * The email claim to trust for matching people, or NULL: email itself when
 * it is valid (claims_email_valid) and either the token verified it
 * (claims_email_verified) or the issuer is configured trustEmail. Borrowed
 * from email.
 */
const char *claims_email_trusted(const char *email, const json_t *payload, int trust_email);

#endif
