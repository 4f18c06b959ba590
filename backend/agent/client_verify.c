/*
 * `airlock verify-recording NAME [--json]`: asks airlockd to re-read the
 * session's recording against its hash chain (GET
 * /debug-sessions/{name}/recording/verify) and says whether the file still
 * matches. Exit 0 when intact, 1 when altered or missing (or refused).
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "client.h"
#include "client_int.h"
#include "xmalloc.h"

#define USAGE "usage: airlock verify-recording NAME [--json]\n"

static void
print_check(const char *name, const json_t *j)
{
    const char *integrity = json_string_value(json_object_get(j, "integrity"));
    const char *sha = json_string_value(json_object_get(j, "sha256"));
    const json_t *bad = json_object_get(j, "firstBadChunk");

    printf("recording of %s: %s\n", name, integrity ? integrity : "?");
    printf("  state %s, %lld bytes in %lld chunks\n",
           json_string_value(json_object_get(j, "state")) ?: "?",
           (long long)json_integer_value(json_object_get(j, "bytes")),
           (long long)json_integer_value(json_object_get(j, "chunks")));
    if (sha != NULL)
        printf("  sha256 %s\n", sha);
    if (json_is_integer(bad))
        printf("  first chunk that differs: %lld\n", (long long)json_integer_value(bad));
}

int
cmd_verify_recording(const char *server, int argc, char **argv)
{
    static const struct option opts[] = {
        {"json", no_argument, NULL, 'j'}, {"help", no_argument, NULL, 'h'}, {NULL, 0, NULL, 0}};
    char *srv = NULL, *token = NULL, *esc = NULL, *url = NULL, err[256];
    json_t *j = NULL;
    long status = 0;
    int c, as_json = 0, code = CLIENT_EXIT_USAGE;

    optind = 0;
    while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        if (c == 'j') {
            as_json = 1;
        } else if (c == 'h') {
            printf(USAGE);
            return 0;
        } else {
            fprintf(stderr, USAGE);
            return CLIENT_EXIT_USAGE;
        }
    }
    if (optind != argc - 1) {
        fprintf(stderr, USAGE);
        return CLIENT_EXIT_USAGE;
    }
    if ((srv = client_server_url(server)) == NULL)
        goto out;
    if ((token = client_need_token()) == NULL) {
        code = CLIENT_EXIT_REFUSED;
        goto out;
    }
    esc = client_url_escape(argv[optind]);
    url = xasprintf("%s/api/v1/debug-sessions/%s/recording/verify", srv, esc);
    if (client_http_call("GET", url, token, NULL, NULL, &status, &j, err, sizeof(err)) != 0) {
        fprintf(stderr, "airlock: cannot reach %s: %s\n", srv, err);
        code = CLIENT_EXIT_UNREACHABLE;
        goto out;
    }
    if (status != 200) {
        code = client_refused("verify-recording", status, j);
        goto out;
    }
    if (as_json) {
        json_dumpf(j, stdout, JSON_INDENT(2));
        putchar('\n');
    } else {
        print_check(argv[optind], j);
    }
    code = strcmp(json_string_value(json_object_get(j, "integrity")) ?: "", "intact") == 0
               ? CLIENT_EXIT_OK
               : CLIENT_EXIT_REFUSED;
out:
    json_decref(j);
    free(url);
    free(esc);
    free(srv);
    client_secret_free(token);
    return code;
}
