/*
 * WebSocket frame headers and masking (RFC 6455 5.2), pure: no I/O, no
 * library besides libc. ws.c (the frame pump under wslay) and the relay's
 * splice (relay_splice.c) parse, build and (un)mask every frame through
 * these three functions.
 *
 *     struct wsframe_hdr h;
 *     int r = wsframe_decode(buf, avail, &h);   0, ERR_AGAIN or ERR_INVALID
 *     size_t hl = wsframe_encode(out, fin, opcode, len, key_or_NULL);
 *     phase = wsframe_mask(dst, src, n, key, phase);   in pieces or at once
 */
#ifndef AIRLOCK_WSFRAME_H
#define AIRLOCK_WSFRAME_H
#include <stddef.h>
#include <stdint.h>

#define WSFRAME_HDR_MAX 14      /* 2 + 8 (64-bit length) + 4 (mask key) */
#define WSFRAME_CONTROL_MAX 125 /* payload limit of a control frame */

enum wsframe_opcode {
    WSFRAME_CONT = 0x0,
    WSFRAME_TEXT = 0x1,
    WSFRAME_BINARY = 0x2,
    WSFRAME_CLOSE = 0x8,
    WSFRAME_PING = 0x9,
    WSFRAME_PONG = 0xA,
};

/* Which rule a header broke (wsframe_hdr.err), in the order they are checked. */
enum wsframe_err {
    WSFRAME_E_NONE = 0,
    WSFRAME_E_RSV,     /* a reserved bit (RSV1-3) is set: no extension is negotiated */
    WSFRAME_E_OPCODE,  /* opcode 0x3-0x7 or 0xB-0xF */
    WSFRAME_E_CONTROL, /* control frame fragmented or longer than 125 bytes */
    WSFRAME_E_LENGTH,  /* length not in its shortest form, or 64-bit length with the top bit set */
};

struct wsframe_hdr {
    uint8_t fin;     /* 1 on the last frame of a message */
    uint8_t rsv;     /* the three reserved bits, as they sit in byte 0 (0x70) */
    uint8_t opcode;  /* enum wsframe_opcode (or a reserved value, see err) */
    uint8_t masked;  /* 1 when a mask key follows the length */
    uint8_t mask[4]; /* the key when masked */
    uint64_t len;    /* payload length */
    size_t hdr_len;  /* header bytes, mask key included: 2 to 14 */
    enum wsframe_err err;
};

/*
 * Decodes the frame header at b (avail bytes there). Returns:
 *   0            a valid header; *h is filled and the payload starts at
 *                b + h->hdr_len (it may not have arrived yet).
 *   ERR_AGAIN    the header is not complete. With avail >= 2, fin, rsv,
 *                opcode, masked and hdr_len (the bytes the header needs)
 *                are already filled; with less, hdr_len is 2.
 *   ERR_INVALID  the header breaks a rule; h->err says which. The checks go
 *                in enum order: WSFRAME_E_RSV is reported as soon as 2 bytes
 *                are there (the length may still be missing: check
 *                avail >= h->hdr_len before using len); every other error
 *                only once the whole header is, with every field filled.
 * Fragmentation across frames (a continuation with no message open) is the
 * caller's state, not the header's. Nothing is read past b + avail.
 */
int wsframe_decode(const uint8_t *b, size_t avail, struct wsframe_hdr *h);

/*
 * Writes one frame header into out: FIN when fin, opcode, len in its
 * shortest form, and the mask bit and key when mask_key is not NULL.
 * Returns its length (2 to WSFRAME_HDR_MAX).
 */
size_t wsframe_encode(uint8_t out[WSFRAME_HDR_MAX], int fin, int opcode, uint64_t len,
                      const uint8_t *mask_key);

/*
 * dst = src XOR key, n bytes, starting at key byte phase (0-3: the payload
 * offset of src[0] modulo 4), so a payload can be masked or unmasked in
 * pieces: each call continues with the phase the previous one returned.
 * dst may equal src (in place); otherwise they must not overlap. Returns the
 * phase after the last byte, (phase + n) % 4.
 */
unsigned wsframe_mask(uint8_t *dst, const uint8_t *src, size_t n, const uint8_t key[4],
                      unsigned phase);

/* A short English description of err ("reserved bits set", ...). Never NULL. */
const char *wsframe_err_str(enum wsframe_err err);

#endif
