/* Small helpers both programs share: encodings, randomness, hashing, time. */
#ifndef AIRLOCK_UTIL_H
#define AIRLOCK_UTIL_H
#include <stddef.h>
#include <stdint.h>
#include <time.h>

/* base64url without padding. Returns a new string. */
char *b64url_encode(const unsigned char *in, size_t len);
/*
 * Decodes base64url (padding tolerated, no other characters). On success
 * *out is a new buffer (NUL-terminated for convenience) of *out_len bytes.
 * Returns 0 or ERR_INVALID.
 */
int b64url_decode(const char *in, size_t in_len, unsigned char **out, size_t *out_len);
/* Standard base64 with padding, for SSH keys and WebSocket accept. New string. */
char *b64_encode(const unsigned char *in, size_t len);

/* Fills buf with cryptographically random bytes; fatal if the system cannot. */
void random_bytes(void *buf, size_t len);
/* A new random token: n random bytes, base64url encoded (32 bytes -> 43 chars). */
char *random_token(size_t n);

/* SHA-256 of s as 64 lowercase hex characters in out (65 bytes with NUL). */
void sha256_hex(const void *data, size_t len, char out[65]);
/* Compares two strings in time that depends only on their lengths. 1 if equal. */
int ct_streq(const char *a, const char *b);

/*
 * This program's own executable, absolute: $AIRLOCK_EXE when the portable
 * bundle's launcher set it (/proc/self/exe is then the bundled loader), else
 * /proc/self/exe. New string, or NULL when neither is known.
 */
char *self_exe(void);

/* Formats t as RFC 3339 UTC ("2026-11-22T10:00:00Z") into out[21]. */
void time_fmt(int64_t t, char out[21]);
/* Parses "YYYY-MM-DDTHH:MM:SSZ". Returns 0 or ERR_INVALID. */
int time_parse(const char *s, int64_t *t);
/* Seconds since the epoch. */
int64_t time_now(void);
/* Monotonic milliseconds. */
int64_t time_mono_ms(void);

/* Strict unsigned decimal parse of a whole string within [0, max]. 0 or ERR_INVALID. */
int parse_uint(const char *s, uint64_t max, uint64_t *out);

/* Case-insensitive ASCII equality; NULLs are equal only to each other. */
int str_ieq(const char *a, const char *b);

#endif
