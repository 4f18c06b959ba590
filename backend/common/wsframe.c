/*
 * WebSocket frame headers and masking (see wsframe.h). Pure: the one place
 * airlock reads or writes a frame header or applies a mask key; ws.c and
 * the relay's splice keep only their buffering and their policy (which
 * frames they take themselves, what they close with).
 *
 * Masking is on the relay's and the client's data path, so it goes 8 bytes
 * at a time: the key is repeated into a 64-bit word that starts at the
 * current phase, and since 8 is a multiple of 4 every word keeps that phase.
 * The bytes up to dst's next 8-byte boundary go one by one first, so that
 * the word stores are aligned.
 */
#include <stdint.h>
#include <string.h>

#include "err.h"
#include "wsframe.h"

int
wsframe_decode(const uint8_t *b, size_t avail, struct wsframe_hdr *h)
{
    uint64_t len;
    size_t ext;

    memset(h, 0, sizeof(*h));
    h->hdr_len = 2;
    if (avail < 2)
        return ERR_AGAIN;
    h->fin = b[0] >> 7;
    h->rsv = b[0] & 0x70;
    h->opcode = b[0] & 0x0f;
    h->masked = b[1] >> 7;
    len = b[1] & 0x7f;
    ext = len == 126 ? 2 : len == 127 ? 8 : 0;
    h->hdr_len = 2 + ext + (h->masked ? 4 : 0);
    if (avail >= h->hdr_len) {
        if (ext > 0)
            len = 0;
        for (size_t i = 0; i < ext; i++)
            len = len << 8 | b[2 + i];
        h->len = len;
        if (h->masked)
            memcpy(h->mask, b + 2 + ext, 4);
    }
    if (h->rsv != 0) {
        h->err = WSFRAME_E_RSV;
        return ERR_INVALID;
    }
    if (avail < h->hdr_len)
        return ERR_AGAIN;
    if ((h->opcode > WSFRAME_BINARY && h->opcode < WSFRAME_CLOSE) || h->opcode > WSFRAME_PONG)
        h->err = WSFRAME_E_OPCODE;
    else if (h->opcode >= WSFRAME_CLOSE && (!h->fin || h->len > WSFRAME_CONTROL_MAX))
        h->err = WSFRAME_E_CONTROL;
    else if ((ext == 2 && h->len < 126) || (ext == 8 && (h->len < 65536 || h->len >> 63)))
        h->err = WSFRAME_E_LENGTH;
    return h->err == WSFRAME_E_NONE ? 0 : ERR_INVALID;
}

size_t
wsframe_encode(uint8_t out[WSFRAME_HDR_MAX], int fin, int opcode, uint64_t len,
               const uint8_t *mask_key)
{
    size_t hl = 2;

    out[0] = (uint8_t)((fin ? 0x80 : 0) | (opcode & 0x0f));
    if (len < 126) {
        out[1] = (uint8_t)len;
    } else if (len < 65536) {
        out[1] = 126;
        out[2] = (uint8_t)(len >> 8);
        out[3] = (uint8_t)len;
        hl = 4;
    } else {
        out[1] = 127;
        for (int i = 0; i < 8; i++)
            out[2 + i] = (uint8_t)(len >> (56 - 8 * i));
        hl = 10;
    }
    if (mask_key != NULL) {
        out[1] |= 0x80;
        memcpy(out + hl, mask_key, 4);
        hl += 4;
    }
    return hl;
}

unsigned
wsframe_mask(uint8_t *dst, const uint8_t *src, size_t n, const uint8_t key[4], unsigned phase)
{
    unsigned end_phase = (unsigned)((phase + n) & 3);
    uint8_t k8[8];
    uint64_t k;
    size_t i = 0;

    phase &= 3;
    while (i < n && ((uintptr_t)(dst + i) & 7) != 0) {
        dst[i] = src[i] ^ key[phase];
        phase = (phase + 1) & 3;
        i++;
    }
    for (int j = 0; j < 8; j++)
        k8[j] = key[(phase + (unsigned)j) & 3];
    memcpy(&k, k8, 8);
    for (; i + 8 <= n; i += 8) {
        uint64_t v;

        memcpy(&v, src + i, 8);
        v ^= k;
        memcpy(dst + i, &v, 8);
    }
    for (size_t j = 0; i < n; i++, j++)
        dst[i] = src[i] ^ k8[j];
    return end_phase;
}

const char *
wsframe_err_str(enum wsframe_err err)
{
    switch (err) {
    case WSFRAME_E_NONE:
        return "valid frame header";
    case WSFRAME_E_RSV:
        return "reserved bits set";
    case WSFRAME_E_OPCODE:
        return "reserved opcode";
    case WSFRAME_E_CONTROL:
        return "bad control frame";
    case WSFRAME_E_LENGTH:
        return "length not in its shortest form";
    }
    return "unknown frame error"; /* every enum is covered above */
}
