/*
 * The job summary `airlock wait` writes once its session is known: the join
 * command, the UI link and the known_hosts line, in Markdown. It goes to
 * $AIRLOCK_SUMMARY ("-" for standard output, as the GitLab template asks)
 * or else to $GITHUB_STEP_SUMMARY, so a GitHub job shows it on its page.
 */
#ifndef AIRLOCK_AGENT_SUMMARY_H
#define AIRLOCK_AGENT_SUMMARY_H
#include <stddef.h>

/*
 * PURE. The summary for session (on server, base URL without a trailing
 * '/') whose agent's host key is host_key ("ssh-ed25519 AAAA…"; NULL: the
 * known_hosts part is left out). Returns a new string.
 */
char *summary_render(const char *server, const char *session, const char *host_key);

/*
 * Appends summary_render()'s text to the file the environment names (see
 * above); nothing when none is named. A file that cannot be written is a
 * warning in the log, never a failure of the job.
 */
void summary_write(const char *server, const char *session, const char *host_key);

#endif
