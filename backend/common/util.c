#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>
#include <errno.h>

#include <openssl/evp.h>
#include <openssl/sha.h>

#include "err.h"
#include "log.h"
#include "util.h"
#include "xmalloc.h"

static const char b64url_chars[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

char *
b64url_encode(const unsigned char *in, size_t len)
{
    char *out = xmalloc(len / 3 * 4 + 5);
    size_t i, o = 0;

    for (i = 0; i + 2 < len; i += 3) {
        uint32_t v = (uint32_t)in[i] << 16 | (uint32_t)in[i + 1] << 8 | in[i + 2];

        out[o++] = b64url_chars[v >> 18 & 63];
        out[o++] = b64url_chars[v >> 12 & 63];
        out[o++] = b64url_chars[v >> 6 & 63];
        out[o++] = b64url_chars[v & 63];
    }
    if (len - i == 1) {
        uint32_t v = (uint32_t)in[i] << 16;

        out[o++] = b64url_chars[v >> 18 & 63];
        out[o++] = b64url_chars[v >> 12 & 63];
    } else if (len - i == 2) {
        uint32_t v = (uint32_t)in[i] << 16 | (uint32_t)in[i + 1] << 8;

        out[o++] = b64url_chars[v >> 18 & 63];
        out[o++] = b64url_chars[v >> 12 & 63];
        out[o++] = b64url_chars[v >> 6 & 63];
    }
    out[o] = '\0';
    return out;
}

static int
b64url_val(unsigned char c)
{
    if (c >= 'A' && c <= 'Z')
        return c - 'A';
    if (c >= 'a' && c <= 'z')
        return c - 'a' + 26;
    if (c >= '0' && c <= '9')
        return c - '0' + 52;
    if (c == '-')
        return 62;
    if (c == '_')
        return 63;
    return -1;
}

int
b64url_decode(const char *in, size_t in_len, unsigned char **out, size_t *out_len)
{
    unsigned char *buf;
    uint32_t acc = 0;
    size_t i, o = 0;
    int bits = 0;

    *out = NULL;
    *out_len = 0;
    while (in_len > 0 && in[in_len - 1] == '=')
        in_len--;
    if (in_len % 4 == 1)
        return ERR_INVALID;
    buf = xmalloc(in_len / 4 * 3 + 4);
    for (i = 0; i < in_len; i++) {
        int v = b64url_val((unsigned char)in[i]);

        if (v < 0) {
            free(buf);
            return ERR_INVALID;
        }
        acc = acc << 6 | (uint32_t)v;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            buf[o++] = (unsigned char)(acc >> bits);
        }
    }
    buf[o] = '\0';
    *out = buf;
    *out_len = o;
    return 0;
}

char *
b64_encode(const unsigned char *in, size_t len)
{
    char *out = xmalloc((len + 2) / 3 * 4 + 1);

    EVP_EncodeBlock((unsigned char *)out, in, (int)len);
    return out;
}

void
random_bytes(void *buf, size_t len)
{
    unsigned char *p = buf;

    while (len > 0) {
        ssize_t n = getrandom(p, len, 0);

        if (n < 0) {
            if (errno == EINTR)
                continue;
            fatal("getrandom: %s", strerror(errno));
        }
        p += n;
        len -= (size_t)n;
    }
}

char *
random_token(size_t n)
{
    unsigned char buf[64];
    char *s;

    if (n > sizeof(buf))
        n = sizeof(buf);
    random_bytes(buf, n);
    s = b64url_encode(buf, n);
    explicit_bzero(buf, sizeof(buf));
    return s;
}

void
sha256_hex(const void *data, size_t len, char out[65])
{
    static const char hex[] = "0123456789abcdef";
    unsigned char md[SHA256_DIGEST_LENGTH];
    size_t i;

    SHA256(data, len, md);
    for (i = 0; i < sizeof(md); i++) {
        out[2 * i] = hex[md[i] >> 4];
        out[2 * i + 1] = hex[md[i] & 15];
    }
    out[2 * i] = '\0';
}

int
ct_streq(const char *a, const char *b)
{
    size_t la, lb, i;
    unsigned char d;

    if (a == NULL || b == NULL)
        return 0;
    la = strlen(a);
    lb = strlen(b);
    d = (unsigned char)(la != lb);
    for (i = 0; i < la && i < lb; i++)
        d |= (unsigned char)(a[i] ^ b[i]);
    return d == 0;
}

void
time_fmt(int64_t t, char out[21])
{
    time_t tt = (time_t)t;
    struct tm tm;

    gmtime_r(&tt, &tm);
    strftime(out, 21, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

int
time_parse(const char *s, int64_t *t)
{
    struct tm tm;
    const char *end;

    char back[21];

    memset(&tm, 0, sizeof(tm));
    if (strlen(s) != 20)
        return ERR_INVALID;
    end = strptime(s, "%Y-%m-%dT%H:%M:%SZ", &tm);
    if (end == NULL || *end != '\0')
        return ERR_INVALID;
    *t = (int64_t)timegm(&tm);
    /* strptime accepts 2026-02-30 and unpadded fields: only a round trip is exact */
    time_fmt(*t, back);
    return strcmp(back, s) == 0 ? 0 : ERR_INVALID;
}

int64_t
time_now(void)
{
    return (int64_t)time(NULL);
}

int64_t
time_mono_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int
parse_uint(const char *s, uint64_t max, uint64_t *out)
{
    uint64_t v = 0;

    if (s == NULL || *s == '\0')
        return ERR_INVALID;
    for (; *s; s++) {
        if (*s < '0' || *s > '9')
            return ERR_INVALID;
        uint64_t d = (uint64_t)(*s - '0');

        if (d > max || v > (max - d) / 10)
            return ERR_INVALID;
        v = v * 10 + d;
    }
    *out = v;
    return 0;
}

int
str_ieq(const char *a, const char *b)
{
    if (a == NULL || b == NULL)
        return a == b;
    return strcasecmp(a, b) == 0;
}

char *
self_exe(void)
{
    const char *env = getenv("AIRLOCK_EXE");
    char buf[4096];
    ssize_t n;

    if (env != NULL && env[0] == '/' && access(env, X_OK) == 0)
        return xstrdup(env);
    n = readlink("/proc/self/exe", buf, sizeof(buf) - 1);
    if (n <= 0)
        return NULL;
    buf[n] = '\0';
    return xstrdup(buf);
}
