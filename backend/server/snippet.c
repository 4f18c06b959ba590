/*
 * The CI snippets (see snippet.h). GitHub and GitLab get the one-line path
 * (the action, the template include), which downloads the agent from this
 * server and checks it; a host gets the CLI's own commands.
 */
#include <stdlib.h>
#include <string.h>

#include "err.h"
#include "policy.h"
#include "snippet.h"
#include "xmalloc.h"

static char *
render_github(const struct snippet_in *in)
{
    char *tmpl =
        in->template_name ? xasprintf("\n          template: %s", in->template_name) : xstrdup("");
    char *s = xasprintf("# .github/workflows/ci.yml\n"
                        "jobs:\n"
                        "  test:\n"
                        "    runs-on: ubuntu-latest\n"
                        "    permissions:\n"
                        "      id-token: write   # the job's OIDC token is its airlock credential\n"
                        "      contents: read\n"
                        "    steps:\n"
                        "      - uses: actions/checkout@v4\n"
                        "      - run: make test\n"
                        "      - name: Debug with airlock if the job failed\n"
                        "        if: failure()\n"
                        "        uses: %s\n"
                        "        with:\n"
                        "          server: %s%s\n",
                        in->github_action, in->server, tmpl);

    free(tmpl);
    return s;
}

static char *
render_gitlab(const struct snippet_in *in)
{
    char *tmpl = in->template_name ? xasprintf("\n    AIRLOCK_TEMPLATE: %s", in->template_name)
                                   : xstrdup("");
    char *s = xasprintf("# .gitlab-ci.yml\n"
                        "include:\n"
                        "  - remote: %s\n"
                        "\n"
                        "test:\n"
                        "  extends: .airlock   # the id_token (aud airlock) and $AIRLOCK_SCRIPT\n"
                        "  variables:\n"
                        "    AIRLOCK_SERVER: %s%s\n"
                        "  script:\n"
                        "    - make test || { rc=$?; sh -c \"$AIRLOCK_SCRIPT\"; exit $rc; }\n",
                        in->gitlab_include, in->server, tmpl);

    free(tmpl);
    return s;
}

char *
snippet_render(const struct snippet_in *in)
{
    if (strcmp(in->ci, "github") == 0)
        return render_github(in);
    if (strcmp(in->ci, "gitlab") == 0)
        return render_gitlab(in);
    if (strcmp(in->ci, "host") == 0)
        return xasprintf("# on a long-lived host, as a user in an agent-registrar group\n"
                         "curl -fsSLO %s/download/airlock-linux-amd64.tar.gz\n"
                         "curl -fsSL %s/download/airlock-linux-amd64.tar.gz.sha256 | sha256sum -c\n"
                         "tar -xzf airlock-linux-amd64.tar.gz   # airlock/airlock runs as it is\n"
                         "airlock/airlock --server %s login\n"
                         "airlock/airlock --server %s agent --name \"$(hostname)\"\n",
                         in->server, in->server, in->server, in->server);
    return NULL;
}

int
snippet_get(struct api_req *req, struct api_reply *rep)
{
    const struct config *cfg = req->app->cfg;
    char *want = api_query(req, "template"), *text;
    const struct tmpl_cfg *t = NULL;
    struct snippet_in in = {.ci = req->params[0],
                            .server = cfg->public_url,
                            .github_action = cfg->snippet_github_action,
                            .gitlab_include = cfg->snippet_gitlab_include};
    size_t i;

    if (want != NULL) {
        t = config_template(cfg, want);
        if (t == NULL || !policy_template_usable(t, &req->p)) {
            int r = api_fail(rep, ERR_NOT_FOUND, "template '%s' not found", want);

            free(want);
            return r;
        }
        free(want);
    }
    for (i = 0; t == NULL && i < cfg->n_templates; i++)
        if (policy_template_usable(&cfg->templates[i], &req->p))
            t = &cfg->templates[i];
    in.template_name = t ? t->name : NULL;
    if ((text = snippet_render(&in)) == NULL)
        return api_fail(rep, ERR_NOT_FOUND, "no snippet for '%s' (github, gitlab or host)", in.ci);
    rep->json =
        json_pack("{s:s, s:s?, s:s}", "ci", in.ci, "template", in.template_name, "text", text);
    free(text);
    return 0;
}
