/*
 * The attach block of a join answer (DESIGN.md 6, docs/join.md): the paste-ready
 * ssh line with the host key pinned in it, the known_hosts line, the
 * fingerprints, the relay URL and the ticket.
 */
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "api.h"
#include "api_attach.h"
#include "util.h"
#include "xmalloc.h"

/*
 * The join command a person pastes. The host key pin travels in the line
 * itself (docs/join.md): ssh 8.5+ reads it from KnownHostsCommand, which must
 * be an absolute path, so /bin/echo prints the known_hosts line.
 */
static char *
attach_command(const char *public_url, const char *ticket, const char *kh, const char *name)
{
    if (kh[0] == '\0')
        return xasprintf("ssh -o ProxyCommand='airlock --server %s proxy %%n --ticket %s'"
                         " -o StrictHostKeyChecking=yes %s",
                         public_url, ticket, name);
    return xasprintf("ssh -o ProxyCommand='airlock --server %s proxy %%n --ticket %s'"
                     " -o KnownHostsCommand='/bin/echo %s'"
                     " -o UserKnownHostsFile=/dev/null -o StrictHostKeyChecking=yes %s",
                     public_url, ticket, kh, name);
}

json_t *
api_attach_json(struct app *app, const struct sess *s, const char *ticket, int64_t ticket_exp)
{
    struct agent_rec *a = NULL;
    const char *key = NULL, *b64;
    json_t *fps, *j;
    char *kh, *cmd, *url, exp[21];

    (void)store_agent_get(app->store, s->agent, &a);
    if (a != NULL)
        key = json_string_value(json_array_get(a->host_keys, 0));
    fps = api_fingerprints(a ? a->host_keys : NULL);
    /* "type base64" only (both checked at registration): the registrant's comment never
     * reaches a line a person pastes */
    if (key != NULL && (b64 = strchr(key, ' ')) != NULL)
        kh = xasprintf("%s %.*s", s->name, (int)(b64 + 1 - key + strcspn(b64 + 1, " ")), key);
    else
        kh = xstrdup("");
    cmd = attach_command(app->cfg->public_url, ticket, kh, s->name);
    {
        char *path = xasprintf("/api/v1/debug-sessions/%s/connect", s->name);

        url = api_ws_url(app, path);
        free(path);
    }
    time_fmt(ticket_exp, exp);
    j = json_pack("{s:s, s:s, s:o, s:s, s:s, s:s}", "command", cmd, "knownHostsLine", kh,
                  "hostKeyFingerprints", fps, "connectUrl", url, "ticket", ticket,
                  "ticketExpiresAt", exp);
    free(kh);
    free(cmd);
    free(url);
    agent_rec_free(a);
    return j;
}
