/*
 * WebSocket client side: the connection and the HTTP/1.1 upgrade (RFC 6455
 * 4.1), after which the socket belongs to ws.c's frame pump (ws_new()).
 *
 * libcurl 7.88 has no WebSocket support, so libcurl only connects
 * (CONNECT_ONLY: TCP, TLS for https://, a CONNECT tunnel through a proxy) and
 * we write the upgrade request and read the answer ourselves: the 101 with
 * the right Sec-WebSocket-Accept, or a refusal whose status becomes an
 * ERR_* and whose JSON envelope (or status line) becomes the message. Bytes
 * read past the answer's head are handed to ws_new() as already received.
 * ws_accept_key() is here too: both sides' handshake computes it.
 */
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <netinet/in.h>
#include <netinet/tcp.h>

#include <curl/curl.h>
#include <jansson.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <openssl/sha.h>

#include "err.h"
#include "util.h"
#include "ws.h"
#include "ws_int.h"
#include "xmalloc.h"

#define WS_HDR_MAX (16u * 1024) /* HTTP response head limit */
#define WS_ERR_BODY_MAX 4096    /* error body we read to find the server's message */

/* Waits until the curl socket is ready for events or the deadline passes. */
static int
wait_fd(int fd, short events, int64_t deadline)
{
    for (;;) {
        int64_t left = deadline - time_mono_ms();
        struct pollfd p = {fd, events, 0};
        int n;

        if (left <= 0)
            return -1;
        n = poll(&p, 1, left > 1000 ? 1000 : (int)left);
        if (n > 0)
            return 0;
        if (n < 0 && errno != EINTR)
            return -1;
    }
}

static int
send_all(CURL *c, int fd, const char *buf, size_t len, int64_t deadline)
{
    while (len > 0) {
        size_t n = 0;
        CURLcode rc = curl_easy_send(c, buf, len, &n);

        if (rc == CURLE_AGAIN) {
            if (wait_fd(fd, POLLOUT, deadline) != 0)
                return -1;
            continue;
        }
        if (rc != CURLE_OK)
            return -1;
        buf += n;
        len -= n;
    }
    return 0;
}

/* Finds header name (case-insensitive) in an HTTP head; copies its value into out. */
static int
head_value(const char *head, const char *name, char *out, size_t out_len)
{
    size_t nlen = strlen(name);
    const char *p = strstr(head, "\r\n");

    while (p != NULL && p[2] != '\0' && p[2] != '\r') {
        const char *line = p + 2, *end = strstr(line, "\r\n");

        if (end == NULL)
            break;
        if ((size_t)(end - line) > nlen && strncasecmp(line, name, nlen) == 0 &&
            line[nlen] == ':') {
            const char *v = line + nlen + 1;
            size_t vlen;

            while (v < end && (*v == ' ' || *v == '\t'))
                v++;
            vlen = (size_t)(end - v);
            while (vlen > 0 && (v[vlen - 1] == ' ' || v[vlen - 1] == '\t'))
                vlen--;
            if (vlen >= out_len)
                vlen = out_len - 1;
            memcpy(out, v, vlen);
            out[vlen] = '\0';
            return 0;
        }
        p = end;
    }
    return -1;
}

static int
status_to_err(long status)
{
    switch (status) {
    case 400:
        return ERR_INVALID;
    case 401:
        return ERR_AUTH;
    case 403:
        return ERR_FORBIDDEN;
    case 404:
        return ERR_NOT_FOUND;
    case 409:
        return ERR_CONFLICT;
    case 429:
        return ERR_TOO_MANY;
    default:
        return status >= 500 ? ERR_UNAVAILABLE : ERR_INVALID;
    }
}

/*
 * Puts the server's message for a refused upgrade into err: the "error" field
 * of a JSON envelope when the body is one, else the status line's reason.
 */
static void
refusal_message(const char *status_line, const char *body, size_t body_len, char *err,
                size_t err_len)
{
    json_t *j = json_loadb(body, body_len, 0, NULL);
    const char *msg = json_string_value(json_object_get(j, "error"));
    const char *reason = strchr(status_line, ' ');

    if (msg != NULL)
        snprintf(err, err_len, "%s", msg);
    else
        snprintf(err, err_len, "server answered %.*s",
                 (int)strcspn(reason ? reason + 1 : "?", "\r"), reason ? reason + 1 : "?");
    json_decref(j);
}

/* Reads what is left of a refused response's body (bounded, best effort). */
static size_t
read_body(CURL *c, int fd, char *head, char *body_start, size_t have, char *body, size_t body_max,
          int64_t deadline)
{
    char lenbuf[32];
    size_t want = body_max, got;

    if (head_value(head, "Content-Length", lenbuf, sizeof(lenbuf)) == 0) {
        unsigned long v = strtoul(lenbuf, NULL, 10);

        if (v < want)
            want = v;
    }
    got = have < want ? have : want;
    memcpy(body, body_start, got);
    while (got < want) {
        size_t n = 0;
        CURLcode rc = curl_easy_recv(c, body + got, want - got, &n);

        if (rc == CURLE_AGAIN) {
            if (wait_fd(fd, POLLIN, deadline) != 0)
                break;
            continue;
        }
        if (rc != CURLE_OK || n == 0)
            break;
        got += n;
    }
    return got;
}

/* Builds the upgrade request for url into a new string; 0 or ERR_INVALID. */
static int
build_request(const char *url, const char *bearer, const char *key, char **http_url, char **req)
{
    CURLU *u = curl_url();
    char *scheme = NULL, *host = NULL, *port = NULL, *path = NULL, *query = NULL;
    int r = ERR_INVALID;

    *http_url = NULL;
    *req = NULL;
    if (strncasecmp(url, "ws://", 5) == 0)
        *http_url = xasprintf("http://%s", url + 5);
    else if (strncasecmp(url, "wss://", 6) == 0)
        *http_url = xasprintf("https://%s", url + 6);
    else
        *http_url = xstrdup(url);
    if (curl_url_set(u, CURLUPART_URL, *http_url, 0) != CURLUE_OK ||
        curl_url_get(u, CURLUPART_SCHEME, &scheme, 0) != CURLUE_OK ||
        (strcmp(scheme, "http") != 0 && strcmp(scheme, "https") != 0) ||
        curl_url_get(u, CURLUPART_HOST, &host, 0) != CURLUE_OK ||
        curl_url_get(u, CURLUPART_PATH, &path, 0) != CURLUE_OK)
        goto out;
    (void)curl_url_get(u, CURLUPART_PORT, &port, 0);
    (void)curl_url_get(u, CURLUPART_QUERY, &query, 0);
    *req = xasprintf("GET %s%s%s HTTP/1.1\r\n"
                     "Host: %s%s%s\r\n"
                     "User-Agent: airlock\r\n"
                     "Upgrade: websocket\r\n"
                     "Connection: Upgrade\r\n"
                     "Sec-WebSocket-Key: %s\r\n"
                     "Sec-WebSocket-Version: 13\r\n"
                     "%s%s%s"
                     "\r\n",
                     path, query ? "?" : "", query ? query : "", host, port ? ":" : "",
                     port ? port : "", key, bearer ? "Authorization: Bearer " : "",
                     bearer ? bearer : "", bearer ? "\r\n" : "");
    r = 0;
out:
    curl_free(scheme);
    curl_free(host);
    curl_free(port);
    curl_free(path);
    curl_free(query);
    curl_url_cleanup(u);
    return r;
}

/*
 * Connects libcurl to http_url without a request (CONNECT_ONLY). On success
 * *cp receives the new handle (the caller cleans it up) and *sockp its
 * socket. Returns 0, ERR_INTERNAL or ERR_UNAVAILABLE with a message in err.
 */
static int
curl_connect(const char *http_url, const char *ca_file, int timeout_ms, CURL **cp,
             curl_socket_t *sockp, char *err, size_t err_len)
{
    CURL *c = NULL;
    CURLcode rc;
    int r = ERR_UNAVAILABLE, one = 1;

    *cp = NULL;
    *sockp = CURL_SOCKET_BAD;
    if ((c = curl_easy_init()) == NULL) {
        snprintf(err, err_len, "curl_easy_init failed");
        r = ERR_INTERNAL;
        goto out;
    }
    curl_easy_setopt(c, CURLOPT_URL, http_url);
    curl_easy_setopt(c, CURLOPT_CONNECT_ONLY, 1L);
    /* The upgrade is HTTP/1.1 only: offered h2 by a TLS proxy (ALPN), libcurl's
       CONNECT_ONLY path then crashes inside nghttp2 on the first recv. */
    curl_easy_setopt(c, CURLOPT_HTTP_VERSION, (long)CURL_HTTP_VERSION_1_1);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c, CURLOPT_TCP_NODELAY, 1L);
    curl_easy_setopt(c, CURLOPT_HTTPPROXYTUNNEL, 1L); /* through a proxy: CONNECT, then raw */
    curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, (long)(timeout_ms > 0 ? timeout_ms : 30000));
    if (ca_file != NULL)
        curl_easy_setopt(c, CURLOPT_CAINFO, ca_file);
    if ((rc = curl_easy_perform(c)) != CURLE_OK) {
        snprintf(err, err_len, "cannot connect to %s: %s", http_url, curl_easy_strerror(rc));
        goto out;
    }
    if (curl_easy_getinfo(c, CURLINFO_ACTIVESOCKET, sockp) != CURLE_OK ||
        *sockp == CURL_SOCKET_BAD) {
        snprintf(err, err_len, "no socket from libcurl");
        goto out;
    }
    (void)setsockopt(*sockp, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    *cp = c;
    c = NULL;
    r = 0;
out:
    curl_easy_cleanup(c);
    return r;
}

/*
 * Reads the answer's head into head (WS_HDR_MAX bytes and a NUL) until its
 * blank line; *havep receives the bytes read (more may follow the head) and
 * *endp the position of the "\r\n\r\n". Returns 0, ERR_INVALID (head too
 * large) or ERR_UNAVAILABLE (no answer in time, connection closed), with a
 * message in err.
 */
static int
read_head(CURL *c, curl_socket_t sock, const char *http_url, char *head, size_t *havep, char **endp,
          int64_t deadline, char *err, size_t err_len)
{
    size_t have = 0;
    char *end;

    while ((end = memmem(head, have, "\r\n\r\n", 4)) == NULL) {
        size_t n = 0;
        CURLcode rc;

        if (have == WS_HDR_MAX) {
            snprintf(err, err_len, "%s: response head too large", http_url);
            return ERR_INVALID;
        }
        rc = curl_easy_recv(c, head + have, WS_HDR_MAX - have, &n);
        if (rc == CURLE_AGAIN) {
            if (wait_fd(sock, POLLIN, deadline) != 0) {
                snprintf(err, err_len, "%s: no answer to the upgrade request", http_url);
                return ERR_UNAVAILABLE;
            }
            continue;
        }
        if (rc != CURLE_OK || n == 0) {
            snprintf(err, err_len, "%s: connection closed during the upgrade", http_url);
            return ERR_UNAVAILABLE;
        }
        have += n;
    }
    *havep = have;
    *endp = end;
    return 0;
}

/*
 * Checks the answer whose head is head (NUL-terminated after its last
 * header line's CRLF) with body_len bytes of body read behind it at body:
 * a 101 with want_accept. A refusal reads the rest of its body (bounded)
 * for the server's message. Returns 0, the ERR_* of the refusal's status,
 * or ERR_INVALID (not HTTP, wrong accept key), with a message in err.
 */
static int
check_answer(CURL *c, curl_socket_t sock, const char *http_url, char *head, char *body,
             size_t body_len, const char *want_accept, int64_t deadline, char *err, size_t err_len)
{
    char got_accept[64];
    long status;

    if (strncmp(head, "HTTP/1.", 7) != 0 || strlen(head) < 12) {
        snprintf(err, err_len, "%s: not an HTTP response", http_url);
        return ERR_INVALID;
    }
    status = strtol(head + 9, NULL, 10);
    if (status != 101) {
        char msg_body[WS_ERR_BODY_MAX];
        size_t blen =
            read_body(c, sock, head, body, body_len, msg_body, sizeof(msg_body), deadline);

        refusal_message(head, msg_body, blen, err, err_len);
        return status_to_err(status);
    }
    if (head_value(head, "Sec-WebSocket-Accept", got_accept, sizeof(got_accept)) != 0 ||
        strcmp(got_accept, want_accept) != 0) {
        snprintf(err, err_len, "%s: bad Sec-WebSocket-Accept in the upgrade answer", http_url);
        return ERR_INVALID;
    }
    return 0;
}

/* ------------------------------------------------------------------ public */

int
ws_client_connect(const char *url, const char *bearer, const char *ca_file, int timeout_ms,
                  size_t max_msg, ws_msg_fn on_msg, void *ud, struct ws **wp, char *err,
                  size_t err_len)
{
    int64_t deadline = time_mono_ms() + (timeout_ms > 0 ? timeout_ms : 30000);
    unsigned char nonce[16];
    char key[32], want_accept[29], *http_url = NULL, *req = NULL;
    char *head = xmalloc(WS_HDR_MAX + 1), *end = NULL;
    size_t have = 0, rest;
    curl_socket_t sock = CURL_SOCKET_BAD;
    CURL *c = NULL;
    int r = ERR_INVALID;

    *wp = NULL;
    if (err_len > 0)
        err[0] = '\0';
    if (RAND_bytes(nonce, sizeof(nonce)) != 1) {
        snprintf(err, err_len, "no randomness for the WebSocket key");
        r = ERR_INTERNAL;
        goto out;
    }
    EVP_EncodeBlock((unsigned char *)key, nonce, sizeof(nonce));
    ws_accept_key(key, want_accept);
    if (build_request(url, bearer, key, &http_url, &req) != 0) {
        snprintf(err, err_len, "invalid URL %s", url);
        goto out;
    }
    if ((r = curl_connect(http_url, ca_file, timeout_ms, &c, &sock, err, err_len)) != 0)
        goto out;
    if (send_all(c, sock, req, strlen(req), deadline) != 0) {
        snprintf(err, err_len, "%s: sending the upgrade request failed", http_url);
        r = ERR_UNAVAILABLE;
        goto out;
    }
    if ((r = read_head(c, sock, http_url, head, &have, &end, deadline, err, err_len)) != 0)
        goto out;
    end[2] = '\0'; /* head now ends with its last header line's CRLF */
    rest = have - (size_t)(end + 4 - head);
    if ((r = check_answer(c, sock, http_url, head, end + 4, rest, want_accept, deadline, err,
                          err_len)) != 0)
        goto out;
    *wp = ws_new(sock, c, 1, end + 4, rest, max_msg, on_msg, ud);
    c = NULL;
    r = 0;
out:
    curl_easy_cleanup(c);
    if (req != NULL) {
        explicit_bzero(req, strlen(req)); /* it carries the bearer */
        free(req);
    }
    free(http_url);
    free(head);
    return r;
}

void
ws_accept_key(const char *key, char out[29])
{
    static const char guid[] = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";
    unsigned char sha[SHA_DIGEST_LENGTH];
    char buf[128];
    int n = snprintf(buf, sizeof(buf), "%s%s", key, guid);

    if (n < 0 || (size_t)n >= sizeof(buf))
        n = 0; /* an absurd key: the accept value will simply not match */
    SHA1((const unsigned char *)buf, (size_t)n, sha);
    EVP_EncodeBlock((unsigned char *)out, sha, SHA_DIGEST_LENGTH);
}
