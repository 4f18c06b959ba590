/*
 * The job summary (see summary.h). The text is built here and written in
 * one append, so a summary file shared with other steps never gets half of
 * it between their lines.
 */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "log.h"
#include "summary.h"
#include "xmalloc.h"

char *
summary_render(const char *server, const char *session, const char *host_key)
{
    char *kh = host_key != NULL && host_key[0] != '\0'
                   ? xasprintf("\nTo join with plain `ssh` (the command `airlock join` prints), "
                               "pin the agent's host key: add this line to "
                               "`~/.config/airlock/known_hosts`:\n\n```\n%s %s\n```\n",
                               session, host_key)
                   : xstrdup("");
    char *s = xasprintf("### airlock debug session `%s`\n\n"
                        "Join from your machine:\n\n```\nairlock --server %s join %s\n```\n\n"
                        "Web UI: %s/debug-sessions/%s\n%s",
                        session, server, session, server, session, kh);

    free(kh);
    return s;
}

/* Writes all of buf to fd. 0 or -1. */
static int
write_all(int fd, const char *buf, size_t len)
{
    while (len > 0) {
        ssize_t n = write(fd, buf, len);

        if (n < 0)
            return -1;
        buf += n;
        len -= (size_t)n;
    }
    return 0;
}

void
summary_write(const char *server, const char *session, const char *host_key)
{
    const char *path = getenv("AIRLOCK_SUMMARY");
    char *text;
    int fd, r;

    if (path == NULL || path[0] == '\0')
        path = getenv("GITHUB_STEP_SUMMARY");
    if (path == NULL || path[0] == '\0' || session == NULL)
        return;
    text = summary_render(server, session, host_key);
    if (strcmp(path, "-") == 0) {
        fflush(stdout);
        r = write_all(STDOUT_FILENO, text, strlen(text));
    } else if ((fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644)) < 0) {
        r = -1;
    } else {
        r = write_all(fd, text, strlen(text));
        r = close(fd) != 0 ? -1 : r;
    }
    if (r != 0)
        log_warn("cannot write the job summary to %s", path);
    free(text);
}
