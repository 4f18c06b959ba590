/*
 * PURE. The CI box. See box.h.
 *
 * ASCII only: CI log viewers render box-drawing characters unevenly, and a
 * plain "|" still lines up when the log is copied into an issue.
 */
#include <stdio.h>
#include <string.h>

#include "box.h"
#include "util.h"

#define BOX_LINES 8
#define BOX_LINE_MAX 512

void
box_left(int64_t secs, char *out, size_t out_len)
{
    if (secs <= 0)
        snprintf(out, out_len, "expired");
    else if (secs >= 86400)
        snprintf(out, out_len, "%lldd%02lldh", (long long)(secs / 86400),
                 (long long)(secs % 86400 / 3600));
    else if (secs >= 3600)
        snprintf(out, out_len, "%lldh%02lldm", (long long)(secs / 3600),
                 (long long)(secs % 3600 / 60));
    else if (secs >= 60)
        snprintf(out, out_len, "%lldm%02llds", (long long)(secs / 60), (long long)(secs % 60));
    else
        snprintf(out, out_len, "%llds", (long long)secs);
}

static void
state_line(const struct box_info *bi, int64_t now, char *out, size_t len)
{
    char left[32], exp[21];

    if (bi->session == NULL) {
        snprintf(out, len, "state:  no session yet (request one for this agent)");
        return;
    }
    if (bi->state == NULL) {
        snprintf(out, len, "state:  unknown (waiting for the server)");
    } else if (strcmp(bi->state, "Active") == 0 && bi->idle_ends_at > 0) {
        box_left(bi->idle_ends_at - now, left, sizeof(left));
        time_fmt(bi->idle_ends_at, exp);
        snprintf(out, len, "state:  Active, %s left (idle: ends at %s unless someone types)", left,
                 exp);
    } else if (strcmp(bi->state, "Active") == 0 && bi->expires_at > 0) {
        box_left(bi->expires_at - now, left, sizeof(left));
        time_fmt(bi->expires_at, exp);
        snprintf(out, len, "state:  Active, %s left (until %s)", left, exp);
    } else if (strcmp(bi->state, "PendingApproval") == 0) {
        snprintf(out, len, "state:  PendingApproval, waiting for an approver");
    } else if (bi->message != NULL && bi->message[0]) {
        snprintf(out, len, "state:  %s (%s)", bi->state, bi->message);
    } else {
        snprintf(out, len, "state:  %s", bi->state);
    }
}

size_t
box_render(const struct box_info *bi, int64_t now, char *out, size_t out_len)
{
    char lines[BOX_LINES][BOX_LINE_MAX];
    size_t n = 0, width = BOX_WIDTH, i, o = 0;
    int w;

    if (bi->session != NULL)
        snprintf(lines[n++], BOX_LINE_MAX, "airlock debug session %s", bi->session);
    else
        snprintf(lines[n++], BOX_LINE_MAX, "airlock agent %s", bi->agent ? bi->agent : "");
    state_line(bi, now, lines[n++], BOX_LINE_MAX);
    if (bi->session != NULL) {
        snprintf(lines[n++], BOX_LINE_MAX, "join:   airlock --server %s join %s", bi->server,
                 bi->session);
        snprintf(lines[n++], BOX_LINE_MAX, "web:    %s/debug-sessions/%s", bi->server, bi->session);
    } else {
        snprintf(lines[n++], BOX_LINE_MAX, "web:    %s", bi->server);
    }
    if (bi->n_participants > 0) {
        size_t l = (size_t)snprintf(lines[n], BOX_LINE_MAX, "people: ");

        for (i = 0; i < bi->n_participants && l < BOX_LINE_MAX; i++)
            l += (size_t)snprintf(lines[n] + l, BOX_LINE_MAX - l, "%s%s", i ? ", " : "",
                                  bi->participants[i]);
        if (l < BOX_LINE_MAX)
            snprintf(lines[n] + l, BOX_LINE_MAX - l, "; %d connected", bi->connections);
        n++;
    }
    if (bi->listen != NULL)
        snprintf(lines[n++], BOX_LINE_MAX, "ssh:    also listening on %s", bi->listen);
    if (bi->session != NULL && bi->state != NULL && strcmp(bi->state, "Active") == 0)
        snprintf(lines[n++], BOX_LINE_MAX,
                 "inside: airlock extend --for 30m | airlock resume | airlock status");
    for (i = 0; i < n; i++)
        if (strlen(lines[i]) > width)
            width = strlen(lines[i]);
#define EMIT(...)                                                                                  \
    do {                                                                                           \
        w = snprintf(out_len > o ? out + o : NULL, out_len > o ? out_len - o : 0, __VA_ARGS__);    \
        if (w > 0)                                                                                 \
            o += (size_t)w;                                                                        \
    } while (0)
    EMIT("+");
    for (i = 0; i < width + 2; i++)
        EMIT("-");
    EMIT("+\n");
    for (i = 0; i < n; i++)
        EMIT("| %-*s |\n", (int)width, lines[i]);
    EMIT("+");
    for (i = 0; i < width + 2; i++)
        EMIT("-");
    EMIT("+\n");
#undef EMIT
    if (o >= out_len && out_len > 0)
        o = out_len - 1;
    return o;
}
