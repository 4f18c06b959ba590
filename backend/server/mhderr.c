/*
 * libmicrohttpd's own error answers, in our error envelope.
 *
 * libmicrohttpd 0.9.75 answers some requests itself, before any callback of
 * ours sees them: a request line that is not HTTP, a bad Content-Length or
 * chunked encoding, an unsupported HTTP version, a header block over its
 * per-connection memory. Its one path for these (transmit_error_response_len
 * in connection.c) builds a response from a static HTML text with
 * MHD_create_response_from_buffer and queues it with MHD_queue_response; it
 * has no option or hook to change that answer. (It is also buggy: after a
 * bad Content-Length, MHD's state machine sends the header block twice.)
 *
 * So airlockd defines both functions itself and forwards every call to the
 * library's (dlsym RTLD_NEXT); the dynamic linker binds libmicrohttpd's own
 * calls to the executable's definitions, which the linker exports because
 * the library defines them too. A call whose return address lies inside
 * libmicrohttpd is one of those answers: the HTML text is noted, and the
 * queue call writes our answer to the socket itself (the status, our
 * headers, `Connection: close` and the envelope, ERR_* by status from err.c's
 * table, with the text of MHD's message) and refuses the queue, so MHD
 * closes the connection as it would after its own answer. Our own calls
 * never come from inside libmicrohttpd; MHD's one other internal caller
 * (digest-auth failures) is never reached, since airlockd uses no digest
 * auth.
 */
#include <dlfcn.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>

#include <microhttpd.h>

#include "api.h"
#include "err.h"
#include "http.h"
#include "log.h"
#include "mhderr.h"

#define MSG_MAX 256         /* the envelope's text, from MHD's HTML */
#define ANSWER_HEAD_MAX 512 /* the status line and headers */

typedef struct MHD_Response *(*create_fn)(size_t, void *, enum MHD_ResponseMemoryMode);
typedef enum MHD_Result (*queue_fn)(struct MHD_Connection *, unsigned int, struct MHD_Response *);

static pthread_once_t once = PTHREAD_ONCE_INIT;
static create_fn real_create;
static queue_fn real_queue;
static void *mhd_base; /* libmicrohttpd's load address */
static mhderr_observe_fn observe;
static void *observe_arg;

/* The body text MHD gave its last error response on this thread (static in MHD). */
static _Thread_local const char *last_body;
static _Thread_local size_t last_body_len;
static _Thread_local int answered; /* mhderr_take_answered */

static void answer(struct MHD_Connection *c, unsigned status);

static void
resolve(void)
{
    Dl_info di;

    real_create = (create_fn)dlsym(RTLD_NEXT, "MHD_create_response_from_buffer");
    real_queue = (queue_fn)dlsym(RTLD_NEXT, "MHD_queue_response");
    if (real_create == NULL || real_queue == NULL)
        fatal("libmicrohttpd: cannot find MHD_queue_response: %s", dlerror());
    if (dladdr((void *)real_queue, &di) != 0)
        mhd_base = di.dli_fbase;
}

/* 1 if the code at ret (a return address) is libmicrohttpd's. */
static int
from_mhd(const void *ret)
{
    Dl_info di;

    return mhd_base != NULL && dladdr(ret, &di) != 0 && di.dli_fbase == mhd_base;
}

/* The ERR_* whose row in err.c has this status (ERR_INVALID for a 4xx without one). */
static int
err_for_status(unsigned status)
{
    static const int codes[] = {ERR_INVALID,           ERR_TOO_LARGE,    ERR_URI_TOO_LONG,
                                ERR_HEADERS_TOO_LARGE, ERR_HTTP_VERSION, ERR_INTERNAL};
    size_t i;

    for (i = 0; i < sizeof(codes) / sizeof(codes[0]); i++)
        if ((unsigned)err_http_status(codes[i]) == status)
            return codes[i];
    return status >= 500 ? ERR_INTERNAL : ERR_INVALID;
}

/*
 * The text of MHD's HTML message: its <body> with the tags dropped and
 * &quot; as '"' ("Your HTTP request has wrong value for Content-Length
 * header."). Empty when there is none.
 */
static void
html_text(const char *html, size_t len, char out[MSG_MAX])
{
    const char *p = html, *end = html + len, *b;
    size_t n = 0;
    int in_tag = 0;

    out[0] = '\0';
    if (html == NULL)
        return;
    if ((b = memmem(html, len, "<body>", 6)) != NULL)
        p = b + 6;
    for (; p < end && n + 1 < MSG_MAX; p++) {
        if (*p == '<' && end - p >= 7 && strncmp(p, "</body>", 7) == 0)
            break;
        if (*p == '<' || *p == '>') {
            in_tag = *p == '<';
            continue;
        }
        if (in_tag)
            continue;
        if (*p == '&' && end - p >= 6 && strncmp(p, "&quot;", 6) == 0) {
            out[n++] = '"';
            p += 5;
            continue;
        }
        out[n++] = (*p >= 0x20 && *p < 0x7f) ? *p : ' ';
    }
    out[n] = '\0';
}

void
mhderr_set_observer(mhderr_observe_fn fn, void *arg)
{
    observe = fn;
    observe_arg = arg;
}

struct MHD_Response *
MHD_create_response_from_buffer(size_t size, void *buffer, enum MHD_ResponseMemoryMode mode)
{
    pthread_once(&once, resolve);
    if (mode == MHD_RESPMEM_PERSISTENT && from_mhd(__builtin_return_address(0))) {
        last_body = buffer;
        last_body_len = size;
    }
    return real_create(size, buffer, mode);
}

enum MHD_Result
MHD_queue_response(struct MHD_Connection *c, unsigned int status, struct MHD_Response *resp)
{
    pthread_once(&once, resolve);
    if (status < 400 || !from_mhd(__builtin_return_address(0)))
        return real_queue(c, status, resp);
    answer(c, status);
    if (observe != NULL)
        observe(observe_arg, (int)status);
    answered = 1;
    return MHD_NO; /* MHD closes the connection, as it would after its own answer */
}

int
mhderr_take_answered(void)
{
    int was = answered;

    answered = 0;
    return was;
}

/*
 * Writes the whole answer to c's socket: the status line, our headers and the
 * envelope for status with MHD's text. Best effort: the socket is fresh and
 * non-blocking, and the answer (under 1 KiB) fits its send buffer.
 */
static void
answer(struct MHD_Connection *c, unsigned status)
{
    const union MHD_ConnectionInfo *fi =
        MHD_get_connection_info(c, MHD_CONNECTION_INFO_CONNECTION_FD);
    const char *reason = MHD_get_reason_phrase_for(status);
    char msg[MSG_MAX], head[ANSWER_HEAD_MAX];
    json_t *j;
    char *body;
    size_t n, i;

    html_text(last_body, last_body_len, msg);
    last_body = NULL;
    if (fi == NULL)
        return;
    j = api_error_json(err_for_status(status), msg[0] ? msg : NULL, NULL);
    body = json_dumps(j, JSON_COMPACT);
    json_decref(j);
    if (body == NULL)
        return;
    n = (size_t)snprintf(head, sizeof(head),
                         "HTTP/1.1 %u %s\r\nConnection: close\r\nContent-Type: application/json\r\n"
                         "Cache-Control: no-store\r\nContent-Length: %zu\r\n",
                         status, reason[0] ? reason : "Error", strlen(body));
    for (i = 0; http_security_headers[i][0] != NULL && n < sizeof(head); i++)
        n += (size_t)snprintf(head + n, sizeof(head) - n, "%s: %s\r\n", http_security_headers[i][0],
                              http_security_headers[i][1]);
    if (n + 2 < sizeof(head)) {
        struct iovec iov[2] = {{head, n + 2}, {body, strlen(body)}};
        struct msghdr mh = {.msg_iov = iov, .msg_iovlen = 2};

        memcpy(head + n, "\r\n", 3);
        (void)!sendmsg(fi->connect_fd, &mh, MSG_NOSIGNAL | MSG_DONTWAIT);
    }
    free(body);
}
