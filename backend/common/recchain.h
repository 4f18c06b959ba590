/*
 * The recording's hash chain (docs/recording.md): a recording is uploaded
 * as numbered chunks, and after chunk n the chain is
 *   chain_0 = SHA-256(chunk_0),  chain_n = SHA-256(chain_{n-1} || chunk_n)
 * with chain_{n-1} as its 32 raw bytes. The last chain value is the
 * recording's digest, written into the session's audit events when it is
 * finished. Both programs use it: the agent to name each chunk's digest,
 * airlockd to store the chain and to verify a file against it.
 */
#ifndef AIRLOCK_RECCHAIN_H
#define AIRLOCK_RECCHAIN_H
#include <stddef.h>
#include <stdint.h>

#define RECCHAIN_HEX 65 /* 64 hex characters and a NUL */

/*
 * Advances the chain: prev_hex is chain_{n-1} as hex, or NULL/"" for the
 * first chunk; out_hex receives chain_n. Returns 0, or ERR_INVALID when
 * prev_hex is not 64 hex characters.
 */
int recchain_next(const char *prev_hex, const void *chunk, size_t len, char out_hex[RECCHAIN_HEX]);

/* 1 when s is exactly 64 lowercase hex characters. */
int recchain_hex_ok(const char *s);

#endif
