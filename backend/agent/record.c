/*
 * The agent's recorder (record.h, docs/recording.md).
 *
 * One thread per recorded session. It owns everything of its recording
 * (the FIFO, the asciicast text not yet uploaded, the chunk number); the
 * recorder's list and each entry's state are under rc->mu.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "asciicast.h"
#include "err.h"
#include "httpc.h"
#include "log.h"
#include "record.h"
#include "tmux.h"
#include "util.h"
#include "xmalloc.h"

/* After the end, cat may still be copying what the pane printed last: read until it is quiet. */
#define RECORD_DRAIN_QUIET_MS 200
#define RECORD_DRAIN_MAX_MS 1000
#define RECORD_UPLOAD_TIMEOUT_MS 15000

enum rs_state { RS_STARTING, RS_LIVE, RS_DONE };

struct rsess {
    struct recorder *rc;
    char *name;
    int required;
    enum rs_state state; /* under rc->mu */
    int stop_pipe[2];
    pthread_t th;
    /* the thread's own */
    int fifo;
    char *fifo_path;
    struct acbuf pending; /* asciicast lines not yet accepted by airlockd */
    int64_t seq, t0_ms, first_ms, retry_ms;
    int cols, rows, gave_up;
    struct rsess *next;
};

struct recorder {
    struct record_cfg cfg;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    struct rsess *list;
};

static void *rs_main(void *arg);

struct recorder *
record_new(const struct record_cfg *cfg)
{
    struct recorder *rc = xcalloc(1, sizeof(*rc));

    rc->cfg = *cfg;
    rc->cfg.server = xstrdup(cfg->server);
    rc->cfg.agent_path = xstrdup(cfg->agent_path);
    rc->cfg.credential = xstrdup(cfg->credential);
    rc->cfg.ca_file = cfg->ca_file ? xstrdup(cfg->ca_file) : NULL;
    rc->cfg.run_dir = xstrdup(cfg->run_dir);
    rc->cfg.tmux_sock = xstrdup(cfg->tmux_sock);
    pthread_mutex_init(&rc->mu, NULL);
    pthread_cond_init(&rc->cv, NULL);
    return rc;
}

static struct rsess *
find(struct recorder *rc, const char *session)
{
    struct rsess *rs;

    for (rs = rc->list; rs != NULL; rs = rs->next)
        if (strcmp(rs->name, session) == 0)
            return rs;
    return NULL;
}

static void
rs_stop(struct rsess *rs)
{
    if (rs->stop_pipe[1] >= 0 && write(rs->stop_pipe[1], "x", 1) < 0 && errno != EAGAIN)
        log_warn("recording %s: cannot signal the end: %s", rs->name, strerror(errno));
}

void
record_update(struct recorder *rc, const char *session, const char *state, int enabled,
              int required)
{
    int ended = strcmp(state, "Expired") == 0 || strcmp(state, "Terminated") == 0 ||
                strcmp(state, "Failed") == 0;
    struct rsess *rs;

    if (rc == NULL)
        return;
    pthread_mutex_lock(&rc->mu);
    rs = find(rc, session);
    if (rs != NULL && ended) {
        rs_stop(rs);
    } else if (rs == NULL && enabled && strcmp(state, "Active") == 0) {
        rs = xcalloc(1, sizeof(*rs));
        rs->rc = rc;
        rs->name = xstrdup(session);
        rs->required = required;
        rs->fifo = -1;
        rs->state = RS_STARTING;
        if (pipe2(rs->stop_pipe, O_CLOEXEC | O_NONBLOCK) != 0 ||
            pthread_create(&rs->th, NULL, rs_main, rs) != 0) {
            log_warn("recording %s: cannot start a thread", session);
            rs->state = RS_DONE;
            rs->th = pthread_self(); /* marks "no thread" for record_free */
        }
        rs->next = rc->list;
        rc->list = rs;
    }
    pthread_mutex_unlock(&rc->mu);
}

enum record_status
record_status(struct recorder *rc, const char *session, int wait_ms, int *required)
{
    int64_t until = time_mono_ms() + wait_ms;
    enum record_status st = RECORD_OFF;
    struct rsess *rs;

    *required = 0;
    if (rc == NULL)
        return RECORD_OFF;
    pthread_mutex_lock(&rc->mu);
    while ((rs = find(rc, session)) != NULL && rs->state == RS_STARTING && time_mono_ms() < until) {
        struct timespec ts;

        /* The recorder signals the change; 100 ms only bounds a lost wake-up. */
        clock_gettime(CLOCK_REALTIME, &ts);
        ts.tv_nsec += 100 * 1000000L;
        if (ts.tv_nsec >= 1000000000L) {
            ts.tv_sec++;
            ts.tv_nsec -= 1000000000L;
        }
        pthread_cond_timedwait(&rc->cv, &rc->mu, &ts);
    }
    if (rs != NULL) {
        *required = rs->required;
        st = rs->state == RS_LIVE ? RECORD_LIVE : RECORD_MISSING;
    }
    pthread_mutex_unlock(&rc->mu);
    return st;
}

void
record_free(struct recorder *rc)
{
    struct rsess *rs, *next;

    if (rc == NULL)
        return;
    pthread_mutex_lock(&rc->mu);
    for (rs = rc->list; rs != NULL; rs = rs->next)
        rs_stop(rs);
    pthread_mutex_unlock(&rc->mu);
    for (rs = rc->list; rs != NULL; rs = next) {
        next = rs->next;
        if (!pthread_equal(rs->th, pthread_self()))
            pthread_join(rs->th, NULL);
        if (rs->stop_pipe[0] >= 0)
            close(rs->stop_pipe[0]);
        if (rs->stop_pipe[1] >= 0)
            close(rs->stop_pipe[1]);
        free(rs->name);
        free(rs);
    }
    free((char *)rc->cfg.server);
    free((char *)rc->cfg.agent_path);
    if (rc->cfg.credential != NULL)
        explicit_bzero((char *)rc->cfg.credential, strlen(rc->cfg.credential));
    free((char *)rc->cfg.credential);
    free((char *)rc->cfg.ca_file);
    free((char *)rc->cfg.run_dir);
    free((char *)rc->cfg.tmux_sock);
    pthread_mutex_destroy(&rc->mu);
    pthread_cond_destroy(&rc->cv);
    free(rc);
}

/* ------------------------------------------------------------------------
 * The recording thread
 * ------------------------------------------------------------------------ */

static void
set_state(struct rsess *rs, enum rs_state st)
{
    pthread_mutex_lock(&rs->rc->mu);
    rs->state = st;
    pthread_cond_broadcast(&rs->rc->cv);
    pthread_mutex_unlock(&rs->rc->mu);
}

/* "Authorization: Bearer <credential>" (new string). */
static char *
auth_header(const struct recorder *rc)
{
    return xasprintf("Authorization: Bearer %s", rc->cfg.credential);
}

/* Tells airlockd the recording cannot be made (a required one then ends the session). */
static void
report_failure(struct rsess *rs, const char *why)
{
    const struct recorder *rc = rs->rc;
    char *url =
        xasprintf("%s%s/recordings/%s/failure", rc->cfg.server, rc->cfg.agent_path, rs->name);
    char *auth = auth_header(rc), *body, err[256];
    json_t *j = json_pack("{s:s}", "reason", why), *ans = NULL;
    long status = 0;

    body = json_dumps(j, JSON_COMPACT);
    json_decref(j);
    log_warn("recording %s: %s", rs->name, why);
    if (httpc_call("POST", url, auth, NULL, body, rc->cfg.ca_file, RECORD_UPLOAD_TIMEOUT_MS,
                   &status, &ans, err, sizeof(err)) != 0 ||
        status != 200)
        log_warn("recording %s: cannot report the failure (%ld %s)", rs->name, status, err);
    json_decref(ans);
    explicit_bzero(auth, strlen(auth));
    free(auth);
    free(body);
    free(url);
}

/*
 * Uploads len bytes of rs->pending as chunk rs->seq. 0: accepted; 1: try
 * again later (airlockd unreachable or busy); -1: refused for good.
 */
static int
upload(struct rsess *rs, size_t len, int final)
{
    const struct recorder *rc = rs->rc;
    char *url = xasprintf("%s%s/recordings/%s/chunks/%lld", rc->cfg.server, rc->cfg.agent_path,
                          rs->name, (long long)rs->seq);
    char *auth = auth_header(rc), *body = xstrndup(rs->pending.p ? rs->pending.p : "", len);
    char sha[65], h_sha[96], err[256];
    const char *headers[] = {h_sha, final ? "X-Recording-Final: 1" : NULL, NULL};
    struct httpc_req rq = {.method = "PUT",
                           .url = url,
                           .auth_header = auth,
                           .headers = headers,
                           .body = body,
                           .content_type = "application/x-asciicast",
                           .ca_file = rc->cfg.ca_file,
                           .timeout_ms = RECORD_UPLOAD_TIMEOUT_MS};
    struct httpc_resp rs_http;
    int r;

    sha256_hex(body, len, sha);
    snprintf(h_sha, sizeof(h_sha), "X-Chunk-SHA256: %s", sha);
    if (httpc_request(&rq, 1, &rs_http, err, sizeof(err)) != 0) {
        log_warn("recording %s: chunk %lld not sent: %s", rs->name, (long long)rs->seq, err);
        r = 1;
    } else if (rs_http.status == 200) {
        r = 0;
    } else {
        const char *msg = json_string_value(json_object_get(rs_http.json, "error"));

        log_warn("recording %s: chunk %lld refused (%ld): %s", rs->name, (long long)rs->seq,
                 rs_http.status, msg ? msg : "");
        r = rs_http.status == 429 || rs_http.status >= 500 ? 1 : -1;
    }
    json_decref(rs_http.json);
    explicit_bzero(auth, strlen(auth));
    free(auth);
    free(body);
    free(url);
    return r;
}

/* The length of the longest prefix of pending that ends a line and fits in one chunk. */
static size_t
chunk_len(const struct acbuf *b)
{
    size_t n = b->len < RECORD_CHUNK_MAX ? b->len : RECORD_CHUNK_MAX;

    while (n > 0 && b->p[n - 1] != '\n')
        n--;
    return n;
}

/* Sends what is pending, chunk by chunk; the last one final when asked. */
static void
flush(struct rsess *rs, int final)
{
    while (!rs->gave_up && (rs->pending.len > 0 || final)) {
        size_t n = chunk_len(&rs->pending);
        int last = final && n == rs->pending.len, r;

        if (n == 0 && !last)
            return; /* cannot happen: every line fits in a chunk */
        r = upload(rs, n, last);

        if (r == 1) {
            rs->retry_ms = time_mono_ms() + RECORD_FLUSH_MS;
            if (rs->pending.len > RECORD_PENDING_MAX) {
                log_warn("recording %s: airlockd unreachable, %zu bytes dropped", rs->name,
                         rs->pending.len);
                rs->gave_up = 1;
            }
            return;
        }
        if (r < 0) {
            rs->gave_up = 1; /* airlockd stopped it (size cap, session over): it says why */
            return;
        }
        rs->seq++;
        memmove(rs->pending.p, rs->pending.p + n, rs->pending.len - n);
        rs->pending.len -= n;
        rs->pending.p[rs->pending.len] = '\0';
        if (last)
            return;
    }
}

/* Appends one output event (and a resize event when the pane changed size since the last). */
static void
add_output(struct rsess *rs, const unsigned char *data, size_t len)
{
    double t = (double)(time_mono_ms() - rs->t0_ms) / 1000.0;
    int cols, rows;

    if (rs->pending.len == 0) {
        /* At most once per flush: tmux is asked, not polled. */
        if (tmux_pane_size(rs->rc->cfg.tmux_sock, rs->name, &cols, &rows) == 0 &&
            (cols != rs->cols || rows != rs->rows)) {
            char sz[32];
            int n = snprintf(sz, sizeof(sz), "%dx%d", cols, rows);

            asciicast_event(&rs->pending, t, "r", (const unsigned char *)sz, (size_t)n);
            rs->cols = cols;
            rs->rows = rows;
        }
        rs->first_ms = time_mono_ms();
    }
    asciicast_event(&rs->pending, t, "o", data, len);
}

/* Starts the pipe from tmux; NULL, or why it could not. */
static const char *
rs_setup(struct rsess *rs)
{
    const struct recorder *rc = rs->rc;
    char title[300];

    if (rc->cfg.ensure != NULL && rc->cfg.ensure(rc->cfg.ud, rs->name) != 0)
        return "cannot create the tmux session";
    rs->fifo_path = xasprintf("%s/rec-%s.fifo", rc->cfg.run_dir, rs->name);
    (void)unlink(rs->fifo_path);
    if (mkfifo(rs->fifo_path, 0600) != 0)
        return "cannot create the FIFO in the run directory";
    /* Read and write: the FIFO never reports end-of-file while cat comes and goes. */
    if ((rs->fifo = open(rs->fifo_path, O_RDWR | O_NONBLOCK | O_CLOEXEC)) < 0)
        return "cannot open the FIFO";
    if (tmux_pipe_pane(rc->cfg.tmux_sock, rs->name, rs->fifo_path) != 0)
        return "tmux pipe-pane failed";
    if (tmux_pane_size(rc->cfg.tmux_sock, rs->name, &rs->cols, &rs->rows) != 0) {
        rs->cols = 80;
        rs->rows = 24;
    }
    tmux_status_note(rc->cfg.tmux_sock, rs->name, "#[reverse] REC #[default] recorded");
    rs->t0_ms = time_mono_ms();
    snprintf(title, sizeof(title), "airlock session %s", rs->name);
    asciicast_header(&rs->pending, rs->cols, rs->rows, time_now(), title, TMUX_DEFAULT_TERM);
    return NULL;
}

/* Reads what the FIFO has: 1 when something came, 0 when nothing, -1 on an error. */
static int
read_fifo(struct rsess *rs, unsigned char *buf, size_t *held)
{
    ssize_t n = read(rs->fifo, buf + *held, RECORD_READ_MAX - *held);
    size_t total, cut;

    if (n < 0)
        return errno == EAGAIN || errno == EINTR ? 0 : -1;
    if (n == 0)
        return 0;
    total = *held + (size_t)n;
    cut = asciicast_utf8_cut(buf, total);
    if (cut > 0)
        add_output(rs, buf, cut);
    /* An unfinished character waits for the next read (at most 3 bytes). */
    memmove(buf, buf + cut, total - cut);
    *held = total - cut;
    return 1;
}

/* After the end: what the pane printed last, until the FIFO stays quiet (bounded). */
static void
drain(struct rsess *rs, unsigned char *buf, size_t *held)
{
    int64_t until = time_mono_ms() + RECORD_DRAIN_MAX_MS;

    while (time_mono_ms() < until) {
        struct pollfd p = {rs->fifo, POLLIN, 0};

        if (poll(&p, 1, RECORD_DRAIN_QUIET_MS) <= 0 || read_fifo(rs, buf, held) <= 0)
            break;
    }
    if (*held > 0)
        add_output(rs, buf, *held); /* a character that never completed: U+FFFD */
    *held = 0;
}

static void *
rs_main(void *arg)
{
    struct rsess *rs = arg;
    unsigned char buf[RECORD_READ_MAX];
    size_t held = 0;
    const char *why;

    if ((why = rs_setup(rs)) != NULL) {
        report_failure(rs, why);
        set_state(rs, RS_DONE);
        goto out;
    }
    log_info("recording %s: started (%dx%d)", rs->name, rs->cols, rs->rows);
    set_state(rs, RS_LIVE);
    flush(rs, 0); /* the header at once: airlockd knows the recording has started */
    for (;;) {
        struct pollfd p[2] = {{rs->fifo, POLLIN, 0}, {rs->stop_pipe[0], POLLIN, 0}};
        int64_t now = time_mono_ms(),
                due = rs->pending.len > 0 ? rs->first_ms + RECORD_FLUSH_MS : now + RECORD_FLUSH_MS;
        int timeout;

        if (rs->retry_ms > due)
            due = rs->retry_ms;
        timeout = due > now ? (int)(due - now) : 0;
        if (poll(p, 2, timeout) < 0 && errno != EINTR)
            break;
        if (p[1].revents)
            break;
        if ((p[0].revents & POLLIN) && read_fifo(rs, buf, &held) < 0)
            break;
        if (rs->pending.len >= RECORD_FLUSH_BYTES || (rs->pending.len > 0 && time_mono_ms() >= due))
            flush(rs, 0);
    }
    drain(rs, buf, &held);
    flush(rs, 1);
    log_info("recording %s: ended after %lld chunks%s", rs->name, (long long)rs->seq,
             rs->gave_up ? " (stopped early)" : "");
    set_state(rs, RS_DONE);
out:
    if (rs->fifo >= 0)
        close(rs->fifo);
    if (rs->fifo_path != NULL)
        (void)unlink(rs->fifo_path);
    free(rs->fifo_path);
    free(rs->pending.p);
    return NULL;
}
