/* PURE: asciicast v2 lines (asciicast.h). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "asciicast.h"
#include "xmalloc.h"

static void
grow(struct acbuf *b, size_t more)
{
    if (b->len + more + 1 <= b->cap)
        return;
    b->cap = b->cap ? b->cap : 256;
    while (b->len + more + 1 > b->cap)
        b->cap *= 2;
    b->p = xrealloc(b->p, b->cap);
}

static void
add(struct acbuf *b, const char *s, size_t len)
{
    grow(b, len);
    memcpy(b->p + b->len, s, len);
    b->len += len;
    b->p[b->len] = '\0';
}

/*
 * The length of the valid UTF-8 character at s (1-4), or 0 when s (n bytes
 * left) does not start one: overlong forms, surrogates and code points past
 * U+10FFFF are not UTF-8.
 */
static size_t
utf8_char(const unsigned char *s, size_t n)
{
    unsigned c = s[0];
    size_t need, i;
    unsigned long cp;

    if (c < 0x80)
        return 1;
    if (c >= 0xc2 && c <= 0xdf)
        need = 2, cp = c & 0x1f;
    else if (c >= 0xe0 && c <= 0xef)
        need = 3, cp = c & 0x0f;
    else if (c >= 0xf0 && c <= 0xf4)
        need = 4, cp = c & 0x07;
    else
        return 0;
    if (n < need)
        return 0;
    for (i = 1; i < need; i++) {
        if ((s[i] & 0xc0) != 0x80)
            return 0;
        cp = (cp << 6) | (s[i] & 0x3f);
    }
    if ((need == 3 && cp < 0x800) || (need == 4 && cp < 0x10000) || cp > 0x10ffff ||
        (cp >= 0xd800 && cp <= 0xdfff))
        return 0;
    return need;
}

size_t
asciicast_utf8_cut(const unsigned char *data, size_t len)
{
    size_t back, i, need;

    for (back = 1; back <= 3 && back <= len; back++) {
        unsigned c = data[len - back];

        if ((c & 0xc0) == 0x80)
            continue; /* a continuation byte: look further back for the lead */
        need = c >= 0xf0 ? 4 : c >= 0xe0 ? 3 : c >= 0xc0 ? 2 : 1;
        if (c < 0xc2 || c > 0xf4 || need <= back)
            return len; /* ASCII, not a lead byte, or complete: nothing held back */
        for (i = len - back + 1; i < len; i++)
            if ((data[i] & 0xc0) != 0x80)
                return len;
        return len - back;
    }
    return len;
}

void
asciicast_json_string(struct acbuf *b, const unsigned char *s, size_t len)
{
    size_t i = 0, n;
    char esc[8];

    grow(b, len + 2);
    add(b, "\"", 1);
    while (i < len) {
        unsigned c = s[i];

        if (c == '"' || c == '\\') {
            esc[0] = '\\';
            esc[1] = (char)c;
            add(b, esc, 2);
            i++;
        } else if (c < 0x20 || c == 0x7f) {
            snprintf(esc, sizeof(esc), "\\u%04x", c);
            add(b, esc, 6);
            i++;
        } else if ((n = utf8_char(s + i, len - i)) == 0) {
            add(b, "\\ufffd", 6);
            i++;
        } else {
            add(b, (const char *)s + i, n);
            i += n;
        }
    }
    add(b, "\"", 1);
}

void
asciicast_header(struct acbuf *b, int width, int height, int64_t timestamp, const char *title,
                 const char *term)
{
    char num[96];

    snprintf(num, sizeof(num),
             "{\"version\": 2, \"width\": %d, \"height\": %d, \"timestamp\": %lld", width, height,
             (long long)timestamp);
    add(b, num, strlen(num));
    add(b, ", \"title\": ", 11);
    asciicast_json_string(b, (const unsigned char *)title, strlen(title));
    add(b, ", \"env\": {\"TERM\": ", 18);
    asciicast_json_string(b, (const unsigned char *)term, strlen(term));
    add(b, "}}\n", 3);
}

void
asciicast_event(struct acbuf *b, double t, const char *code, const unsigned char *data, size_t len)
{
    char num[48];

    if (t < 0)
        t = 0;
    snprintf(num, sizeof(num), "[%.6f, ", t);
    add(b, num, strlen(num));
    asciicast_json_string(b, (const unsigned char *)code, strlen(code));
    add(b, ", ", 2);
    asciicast_json_string(b, data, len);
    add(b, "]\n", 2);
}
