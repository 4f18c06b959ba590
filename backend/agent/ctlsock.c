/*
 * The agent's unix control socket and its command-line client. See
 * ctlsock.h for the protocol.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "box.h"
#include "ctlsock.h"
#include "duration.h"
#include "err.h"
#include "log.h"
#include "util.h"
#include "xmalloc.h"

struct client {
    int fd;
    unsigned id;
    char *buf;
    size_t len;
    int answered; /* request handed to the handler: stop reading */
};

struct ctlsock {
    int fd;
    char *path;
    ctlsock_req_fn fn;
    void *ud;
    struct client clients[CTLSOCK_MAX_CLIENTS];
    unsigned next_id;
};

static void client_drop(struct client *c);

int
ctlsock_listen(const char *path, ctlsock_req_fn fn, void *ud, struct ctlsock **csp)
{
    struct sockaddr_un sa;
    struct ctlsock *cs;
    int fd, i;

    *csp = NULL;
    memset(&sa, 0, sizeof(sa));
    sa.sun_family = AF_UNIX;
    if (strlen(path) >= sizeof(sa.sun_path)) {
        log_warn("control socket path too long: %s", path);
        return ERR_INVALID;
    }
    memcpy(sa.sun_path, path, strlen(path) + 1);
    fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (fd < 0)
        return ERR_SYSTEM;
    (void)unlink(path);
    if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0 || chmod(path, 0600) != 0 ||
        listen(fd, 16) != 0) {
        log_warn("cannot listen on %s: %s", path, strerror(errno));
        close(fd);
        return ERR_SYSTEM;
    }
    cs = xcalloc(1, sizeof(*cs));
    cs->fd = fd;
    cs->path = xstrdup(path);
    cs->fn = fn;
    cs->ud = ud;
    for (i = 0; i < CTLSOCK_MAX_CLIENTS; i++)
        cs->clients[i].fd = -1;
    *csp = cs;
    return 0;
}

void
ctlsock_free(struct ctlsock *cs)
{
    int i;

    if (cs == NULL)
        return;
    for (i = 0; i < CTLSOCK_MAX_CLIENTS; i++)
        client_drop(&cs->clients[i]);
    close(cs->fd);
    (void)unlink(cs->path);
    free(cs->path);
    free(cs);
}

size_t
ctlsock_pollfds(struct ctlsock *cs, struct pollfd *p, size_t max)
{
    size_t n = 0;
    int i;

    if (max == 0)
        return 0;
    p[n].fd = cs->fd;
    p[n].events = POLLIN;
    p[n++].revents = 0;
    for (i = 0; i < CTLSOCK_MAX_CLIENTS && n < max; i++) {
        if (cs->clients[i].fd < 0)
            continue;
        p[n].fd = cs->clients[i].fd;
        /* An answered client is polled only to notice that it hung up. */
        p[n].events = cs->clients[i].answered ? 0 : POLLIN;
        p[n++].revents = 0;
    }
    return n;
}

static struct client *
client_by_fd(struct ctlsock *cs, int fd)
{
    int i;

    for (i = 0; i < CTLSOCK_MAX_CLIENTS; i++)
        if (cs->clients[i].fd == fd)
            return &cs->clients[i];
    return NULL;
}

static struct client *
client_by_id(struct ctlsock *cs, unsigned id)
{
    int i;

    for (i = 0; i < CTLSOCK_MAX_CLIENTS; i++)
        if (cs->clients[i].fd >= 0 && cs->clients[i].id == id)
            return &cs->clients[i];
    return NULL;
}

static void
client_drop(struct client *c)
{
    if (c->fd >= 0)
        close(c->fd);
    c->fd = -1;
    free(c->buf);
    c->buf = NULL;
    c->len = 0;
    c->answered = 0;
}

static void
client_accept(struct ctlsock *cs)
{
    int fd, i;

    while ((fd = accept4(cs->fd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK)) >= 0) {
        for (i = 0; i < CTLSOCK_MAX_CLIENTS && cs->clients[i].fd >= 0; i++)
            ;
        if (i == CTLSOCK_MAX_CLIENTS) {
            static const char busy[] = "{\"ok\":false,\"code\":\"TOO_MANY_REQUESTS\","
                                       "\"error\":\"the agent is busy\"}\n";

            (void)send(fd, busy, sizeof(busy) - 1, MSG_NOSIGNAL | MSG_DONTWAIT);
            close(fd);
            continue;
        }
        cs->clients[i].fd = fd;
        cs->clients[i].id = ++cs->next_id;
        cs->clients[i].buf = xmalloc(CTLSOCK_MAX_LINE + 1);
        cs->clients[i].len = 0;
        cs->clients[i].answered = 0;
    }
}

static void
client_read(struct ctlsock *cs, struct client *c)
{
    char *nl;
    json_t *req;
    ssize_t n;

    n = recv(c->fd, c->buf + c->len, CTLSOCK_MAX_LINE - c->len, 0);
    if (n < 0 && (errno == EAGAIN || errno == EINTR))
        return;
    if (n <= 0) {
        client_drop(c);
        return;
    }
    c->len += (size_t)n;
    c->buf[c->len] = '\0';
    nl = memchr(c->buf, '\n', c->len);
    if (nl == NULL) {
        if (c->len == CTLSOCK_MAX_LINE)
            ctlsock_reply_error(cs, c->id, "PAYLOAD_TOO_LARGE", "request too long");
        return;
    }
    *nl = '\0';
    req = json_loads(c->buf, 0, NULL);
    c->answered = 1;
    if (!json_is_object(req) || !json_is_string(json_object_get(req, "op")))
        ctlsock_reply_error(cs, c->id, "BAD_REQUEST", "not a request");
    else
        cs->fn(cs, c->id, req, cs->ud);
    json_decref(req);
}

void
ctlsock_handle(struct ctlsock *cs, const struct pollfd *p, size_t n)
{
    size_t i;

    for (i = 0; i < n; i++) {
        struct client *c;

        if (p[i].revents == 0)
            continue;
        if (p[i].fd == cs->fd) {
            client_accept(cs);
            continue;
        }
        c = client_by_fd(cs, p[i].fd);
        if (c == NULL)
            continue;
        if (c->answered) {
            if (p[i].revents & (POLLHUP | POLLERR))
                client_drop(c); /* gave up waiting: the reply has nowhere to go */
            continue;
        }
        client_read(cs, c);
    }
}

void
ctlsock_reply(struct ctlsock *cs, unsigned client, const json_t *resp)
{
    struct client *c = client_by_id(cs, client);
    struct timeval tv = {2, 0}; /* bounds a client that does not read its answer */
    char *line;
    size_t len, off = 0;
    int fl;

    if (c == NULL)
        return;
    line = json_dumps(resp, JSON_COMPACT);
    if (line != NULL) {
        /* Replies are small: a short blocking write keeps this simple. */
        fl = fcntl(c->fd, F_GETFL);
        (void)fcntl(c->fd, F_SETFL, fl & ~O_NONBLOCK);
        (void)setsockopt(c->fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
        len = strlen(line);
        line[len] = '\n';
        while (off < len + 1) {
            ssize_t w = send(c->fd, line + off, len + 1 - off, MSG_NOSIGNAL);

            if (w <= 0)
                break;
            off += (size_t)w;
        }
        free(line);
    }
    client_drop(c);
}

void
ctlsock_reply_error(struct ctlsock *cs, unsigned client, const char *code, const char *msg)
{
    json_t *j = json_pack("{s:b, s:s, s:s}", "ok", 0, "code", code, "error", msg);

    ctlsock_reply(cs, client, j);
    json_decref(j);
}

/* ------------------------------------------------------------------------
 * Client side
 * ------------------------------------------------------------------------ */

int
ctlsock_call(const char *path, const json_t *req, int timeout_ms, json_t **resp, char *err,
             size_t err_len)
{
    struct sockaddr_un sa;
    char *line = NULL, buf[CTLSOCK_MAX_LINE + 1];
    size_t len = 0, off = 0;
    int fd = -1, r = ERR_UNAVAILABLE;
    struct timespec t0, t1;

    *resp = NULL;
    memset(&sa, 0, sizeof(sa));
    sa.sun_family = AF_UNIX;
    if (strlen(path) >= sizeof(sa.sun_path)) {
        snprintf(err, err_len, "socket path too long");
        return ERR_INVALID;
    }
    memcpy(sa.sun_path, path, strlen(path) + 1);
    fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0) {
        snprintf(err, err_len, "cannot reach the agent at %s: %s", path, strerror(errno));
        goto out;
    }
    line = json_dumps(req, JSON_COMPACT);
    if (line == NULL) {
        r = ERR_INVALID;
        goto out;
    }
    len = strlen(line);
    line[len++] = '\n';
    while (off < len) {
        ssize_t w = send(fd, line + off, len - off, MSG_NOSIGNAL);

        if (w <= 0) {
            snprintf(err, err_len, "the agent hung up");
            goto out;
        }
        off += (size_t)w;
    }
    clock_gettime(CLOCK_MONOTONIC, &t0);
    len = 0;
    for (;;) {
        struct pollfd p = {fd, POLLIN, 0};
        int64_t spent;
        ssize_t n;

        clock_gettime(CLOCK_MONOTONIC, &t1);
        spent = (t1.tv_sec - t0.tv_sec) * 1000 + (t1.tv_nsec - t0.tv_nsec) / 1000000;
        if (spent >= timeout_ms || poll(&p, 1, (int)(timeout_ms - spent)) <= 0) {
            snprintf(err, err_len, "no answer from the agent");
            goto out;
        }
        n = recv(fd, buf + len, sizeof(buf) - 1 - len, 0);
        if (n <= 0)
            break;
        len += (size_t)n;
        if (memchr(buf, '\n', len) != NULL || len == sizeof(buf) - 1)
            break;
    }
    buf[len] = '\0';
    *resp = json_loads(buf, JSON_DISABLE_EOF_CHECK, NULL);
    if (!json_is_object(*resp)) {
        json_decref(*resp);
        *resp = NULL;
        snprintf(err, err_len, "the agent sent no valid answer");
        r = ERR_INVALID;
        goto out;
    }
    r = 0;
out:
    free(line);
    if (fd >= 0)
        close(fd);
    return r;
}

/* expiresAt from either session shape (REST: status.expiresAt; control: expiresAt). */
static const char *
session_expires(const json_t *s)
{
    const char *e = json_string_value(json_object_get(s, "expiresAt"));

    if (e == NULL)
        e = json_string_value(json_object_get(json_object_get(s, "status"), "expiresAt"));
    return e;
}

static const char *
session_state(const json_t *s)
{
    const char *st = json_string_value(json_object_get(s, "state"));

    if (st == NULL)
        st = json_string_value(json_object_get(json_object_get(s, "status"), "state"));
    return st;
}

static void
print_expiry(const char *label, const json_t *s)
{
    const char *e = session_expires(s);
    int64_t t;
    char left[32];

    if (e == NULL || time_parse(e, &t) != 0) {
        printf("%s-\n", label);
        return;
    }
    box_left(t - time_now(), left, sizeof(left));
    printf("%s%s (%s left)\n", label, e, left);
}

static void
print_status(const json_t *s)
{
    const json_t *parts = json_object_get(s, "participants"), *p;
    size_t i;

    printf("session:   %s\n", json_string_value(json_object_get(s, "name")) ?: "?");
    printf("state:     %s\n", session_state(s) ?: "?");
    print_expiry("expires:   ", s);
    printf("people:    ");
    json_array_foreach(parts, i, p)
    {
        printf("%s%s (%s)", i ? ", " : "", json_string_value(json_object_get(p, "user")) ?: "?",
               json_string_value(json_object_get(p, "role")) ?: "?");
    }
    printf("%s\n", json_array_size(parts) ? "" : "-");
    if (json_is_integer(json_object_get(s, "connections")))
        printf("connected: %lld\n",
               (long long)json_integer_value(json_object_get(s, "connections")));
    if (json_is_string(json_object_get(s, "attributedTo")))
        printf("you are:   %s\n", json_string_value(json_object_get(s, "attributedTo")));
}

static int
cli_usage(const char *cmd)
{
    if (strcmp(cmd, "extend") == 0)
        fprintf(stderr, "usage: airlock extend --for DURATION   (e.g. 30m, 1h)\n");
    else
        fprintf(stderr, "usage: airlock %s\n", cmd);
    return 2;
}

int
ctlsock_cli(int argc, char **argv)
{
    static const struct option opts[] = {{"for", required_argument, NULL, 'f'},
                                         {"help", no_argument, NULL, 'h'},
                                         {NULL, 0, NULL, 0}};
    const char *cmd = argv[0], *sock = getenv("AIRLOCK_SOCK"), *session = getenv("AIRLOCK_SESSION"),
               *conn = getenv("AIRLOCK_CONN");
    const char *by = NULL, *code;
    json_t *req = NULL, *resp = NULL;
    char err[256];
    int64_t secs;
    int c, r;

    optind = 1;
    while ((c = getopt_long(argc, argv, "+f:h", opts, NULL)) != -1) {
        if (c == 'f' && strcmp(cmd, "extend") == 0)
            by = optarg;
        else if (c == 'h') {
            cli_usage(cmd);
            return 0;
        } else
            return cli_usage(cmd);
    }
    if (optind < argc && by == NULL && strcmp(cmd, "extend") == 0)
        by = argv[optind++]; /* `airlock extend 30m` works too */
    if (optind < argc)
        return cli_usage(cmd);
    if (strcmp(cmd, "extend") == 0 && (by == NULL || duration_parse(by, &secs) != 0)) {
        if (by != NULL)
            fprintf(stderr, "airlock extend: '%s' is not a duration (90s, 30m, 1h30m, 2d)\n", by);
        return cli_usage(cmd);
    }
    if (sock == NULL || sock[0] == '\0' || session == NULL || session[0] == '\0') {
        fprintf(stderr,
                "airlock %s: not inside an airlock debug session "
                "(AIRLOCK_SOCK and AIRLOCK_SESSION are not set)\n",
                cmd);
        return 2;
    }
    req = json_pack("{s:s, s:s}", "op", cmd, "session", session);
    if (by != NULL)
        json_object_set_new(req, "by", json_string(by));
    if (conn != NULL && conn[0])
        json_object_set_new(req, "conn", json_string(conn));
    /* The deadline for the answer: the agent gives the server 20 s (REQ_TIMEOUT_MS) first. */
    r = ctlsock_call(sock, req, 30000, &resp, err, sizeof(err));
    json_decref(req);
    if (r != 0) {
        fprintf(stderr, "airlock %s: %s\n", cmd, err);
        return 3;
    }
    if (!json_is_true(json_object_get(resp, "ok"))) {
        code = json_string_value(json_object_get(resp, "code"));
        fprintf(stderr, "airlock %s: %s\n", cmd,
                json_string_value(json_object_get(resp, "error")) ?: "refused");
        r = code != NULL && strcmp(code, "UNAVAILABLE") == 0 ? 3 : 1;
        json_decref(resp);
        return r;
    }
    if (strcmp(cmd, "status") == 0) {
        print_status(json_object_get(resp, "session"));
    } else if (strcmp(cmd, "extend") == 0) {
        printf("extended by %s: ", by);
        print_expiry("now until ", json_object_get(resp, "session"));
    } else {
        printf("session %s ended; the job resumes\n", session);
    }
    json_decref(resp);
    return 0;
}
