/*
 * PURE: asciicast v2 (https://docs.asciinema.org/manual/asciicast/v2/) as
 * the agent's recorder writes it: a header line, then one line per event,
 * [t, "o", "data"], where data is the JSON string of terminal output that
 * is valid UTF-8. Output read from a terminal can stop in the middle of a
 * character: asciicast_utf8_cut() says how much of a read can be written
 * now (the rest waits for the next read); a byte that cannot be UTF-8 at
 * all becomes U+FFFD, so every line is valid JSON.
 */
#ifndef AIRLOCK_ASCIICAST_H
#define AIRLOCK_ASCIICAST_H
#include <stddef.h>
#include <stdint.h>

/* A growable text buffer; zero-initialise, free p with free(). */
struct acbuf {
    char *p;
    size_t len, cap;
};

/*
 * The length of the longest prefix of data (len bytes) that does not end
 * inside a UTF-8 character: len, less the 1-3 bytes of a character that
 * has begun but is not complete yet.
 */
size_t asciicast_utf8_cut(const unsigned char *data, size_t len);

/*
 * Appends the header line ({"version": 2, "width", "height", "timestamp",
 * "title", "env": {"TERM"}}) and its newline. title and term are escaped.
 */
void asciicast_header(struct acbuf *b, int width, int height, int64_t timestamp, const char *title,
                      const char *term);

/*
 * Appends the event line [t, code, data] and its newline: t in seconds with
 * microseconds, code "o" (output), "r" (resize, data "COLSxROWS") or "m"
 * (marker). Bytes of data that are not UTF-8 become U+FFFD.
 */
void asciicast_event(struct acbuf *b, double t, const char *code, const unsigned char *data,
                     size_t len);

/* Appends s (len bytes) to b as a JSON string with its quotes. */
void asciicast_json_string(struct acbuf *b, const unsigned char *s, size_t len);

#endif
