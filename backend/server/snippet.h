/*
 * GET /api/v1/snippets/{ci}: the lines to paste into a CI configuration so
 * a job opens a debug session on this server, the same text for the UI's
 * Agents page and `airlock snippet`.
 */
#ifndef AIRLOCK_SNIPPET_H
#define AIRLOCK_SNIPPET_H

#include "api.h"

/* What a snippet is made of. Strings borrowed; template may be NULL (the server's default). */
struct snippet_in {
    const char *ci;             /* "github", "gitlab" or "host" */
    const char *server;         /* publicUrl */
    const char *template_name;  /* a template the viewer may use, or NULL */
    const char *github_action;  /* snippets.githubAction: "owner/repo@ref" */
    const char *gitlab_include; /* snippets.gitlabInclude: the template's URL */
};

/* PURE. The snippet's text for in, or NULL when in->ci is none of the three. New string. */
char *snippet_render(const struct snippet_in *in);

/*
 * The handler: ci from the path, ?template= (one the caller may use, else
 * 404; default: the first such template). Answers {ci, template, text}.
 */
int snippet_get(struct api_req *req, struct api_reply *rep);

#endif
