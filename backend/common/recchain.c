/* The recording's hash chain (recchain.h). */
#include <string.h>

#include <openssl/evp.h>

#include "err.h"
#include "recchain.h"

static int
hex_to_bytes(const char *hex, unsigned char out[32])
{
    size_t i;

    if (!recchain_hex_ok(hex))
        return ERR_INVALID;
    for (i = 0; i < 32; i++) {
        char hi = hex[2 * i], lo = hex[2 * i + 1];

        out[i] = (unsigned char)(((hi <= '9' ? hi - '0' : hi - 'a' + 10) << 4) |
                                 (lo <= '9' ? lo - '0' : lo - 'a' + 10));
    }
    return 0;
}

int
recchain_next(const char *prev_hex, const void *chunk, size_t len, char out_hex[RECCHAIN_HEX])
{
    static const char digits[] = "0123456789abcdef";
    unsigned char prev[32], md[EVP_MAX_MD_SIZE];
    unsigned int md_len = 0;
    EVP_MD_CTX *ctx;
    int have_prev = prev_hex != NULL && prev_hex[0] != '\0', ok;
    size_t i;

    out_hex[0] = '\0';
    if (have_prev && hex_to_bytes(prev_hex, prev) != 0)
        return ERR_INVALID;
    ctx = EVP_MD_CTX_new();
    ok = ctx != NULL && EVP_DigestInit_ex(ctx, EVP_sha256(), NULL) == 1 &&
         (!have_prev || EVP_DigestUpdate(ctx, prev, sizeof(prev)) == 1) &&
         (len == 0 || EVP_DigestUpdate(ctx, chunk, len) == 1) &&
         EVP_DigestFinal_ex(ctx, md, &md_len) == 1 && md_len == 32;
    EVP_MD_CTX_free(ctx);
    if (!ok)
        return ERR_INTERNAL;
    for (i = 0; i < 32; i++) {
        out_hex[2 * i] = digits[md[i] >> 4];
        out_hex[2 * i + 1] = digits[md[i] & 15];
    }
    out_hex[64] = '\0';
    return 0;
}

int
recchain_hex_ok(const char *s)
{
    size_t i;

    if (s == NULL)
        return 0;
    for (i = 0; i < 64; i++)
        if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
            return 0;
    return s[64] == '\0';
}
