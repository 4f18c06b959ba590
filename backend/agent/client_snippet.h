/* airlock snippet (client_snippet.c). */
#ifndef AIRLOCK_CLIENT_SNIPPET_H
#define AIRLOCK_CLIENT_SNIPPET_H

/* snippet github|gitlab|host [--template T]: prints GET /api/v1/snippets/{ci}'s text. */
int cmd_snippet(const char *server, int argc, char **argv);

#endif
