/*
 * airlock snippet github|gitlab|host [--template T]: the lines to paste
 * into a CI configuration (or run on a host), as this server renders them
 * for the UI's Agents page too (GET /api/v1/snippets/{ci}).
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "client.h"
#include "client_int.h"
#include "client_snippet.h"
#include "xmalloc.h"

#define SNIPPET_USAGE "usage: airlock --server URL snippet github|gitlab|host [--template T]\n"

/* GET the snippet and print its text. 0 or an exit code (message printed). */
static int
snippet_fetch(const char *srv, const char *token, const char *ci, const char *tmpl)
{
    char *c = client_url_escape(ci), *t = tmpl ? client_url_escape(tmpl) : NULL, err[512];
    char *url = xasprintf("%s/api/v1/snippets/%s%s%s", srv, c, t ? "?template=" : "", t ? t : "");
    json_t *j = NULL;
    long status;
    int code = 0;

    if (client_http_call("GET", url, token, NULL, NULL, &status, &j, err, sizeof(err)) != 0) {
        fprintf(stderr, "airlock: %s\n", err);
        code = CLIENT_EXIT_UNREACHABLE;
    } else if (status != 200 || !json_is_string(json_object_get(j, "text"))) {
        code = client_refused("snippet", status, j);
    } else {
        fputs(json_string_value(json_object_get(j, "text")), stdout);
    }
    json_decref(j);
    free(url);
    free(c);
    free(t);
    return code;
}

int
cmd_snippet(const char *server, int argc, char **argv)
{
    static const struct option opts[] = {{"template", required_argument, NULL, 't'},
                                         {"help", no_argument, NULL, 'h'},
                                         {NULL, 0, NULL, 0}};
    const char *tmpl = NULL, *ci;
    char *srv = NULL, *token = NULL;
    int c, code = CLIENT_EXIT_USAGE;

    optind = 0;
    while ((c = getopt_long(argc, argv, "t:h", opts, NULL)) != -1) {
        if (c == 't') {
            tmpl = optarg;
        } else if (c == 'h') {
            fputs(SNIPPET_USAGE, stdout);
            return 0;
        } else {
            fputs(SNIPPET_USAGE, stderr);
            return CLIENT_EXIT_USAGE;
        }
    }
    if (optind + 1 != argc) {
        fputs(SNIPPET_USAGE, stderr);
        return CLIENT_EXIT_USAGE;
    }
    ci = argv[optind];
    if (strcmp(ci, "github") != 0 && strcmp(ci, "gitlab") != 0 && strcmp(ci, "host") != 0) {
        fprintf(stderr, "airlock snippet: '%s' is not github, gitlab or host\n", ci);
        return CLIENT_EXIT_USAGE;
    }
    if ((srv = client_server_url(server)) == NULL)
        return CLIENT_EXIT_USAGE;
    if ((token = client_need_token()) == NULL) {
        code = CLIENT_EXIT_REFUSED;
    } else {
        code = snippet_fetch(srv, token, ci, tmpl);
    }
    client_secret_free(token);
    free(srv);
    return code;
}
