/*
 * airlock join (client.h): asks the server for a join ticket, pins the
 * agent's host key in ~/.config/airlock/known_hosts under the session's
 * name, and runs the person's own OpenSSH client with this program as its
 * ProxyCommand (client_proxy.c carries the bytes).
 */
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <jansson.h>

#include "client.h"
#include "client_int.h"
#include "util.h"
#include "xmalloc.h"

/* Appends n bytes of s to the growing NUL-terminated string *b (*len used, *cap allocated). */
static void
out_append(char **b, size_t *len, size_t *cap, const char *s, size_t n)
{
    if (*len + n + 1 > *cap) {
        *cap = (*len + n + 1) * 2;
        *b = xrealloc(*b, *cap);
    }
    memcpy(*b + *len, s, n);
    *len += n;
    (*b)[*len] = '\0';
}

/* ----------------------------------------------------------------- join */

static int
exists(const char *path)
{
    struct stat st;

    return stat(path, &st) == 0 && S_ISREG(st.st_mode);
}

/*
 * Resolves --key (or the default keys) into the public key file and, when
 * one sits beside it, the private key. 0 or an exit code (message printed).
 */
static int
find_key(const char *key, char **pub, char **priv)
{
    static const char *const defaults[] = {"id_ed25519", "id_ecdsa", "id_rsa"};
    size_t n;

    *pub = *priv = NULL;
    if (key != NULL) {
        n = strlen(key);
        if (n > 4 && strcmp(key + n - 4, ".pub") == 0) {
            *pub = xstrdup(key);
            *priv = xstrndup(key, n - 4);
        } else {
            *pub = xasprintf("%s.pub", key);
            *priv = xstrdup(key);
        }
        if (!exists(*pub)) {
            fprintf(stderr, "airlock: join: no public key at %s\n", *pub);
            free(*pub);
            free(*priv);
            *pub = *priv = NULL;
            return CLIENT_EXIT_USAGE;
        }
    } else {
        const char *home = getenv("HOME");

        for (size_t i = 0; i < sizeof(defaults) / sizeof(defaults[0]) && *pub == NULL; i++) {
            char *p = xasprintf("%s/.ssh/%s.pub", home ? home : ".", defaults[i]);

            if (exists(p)) {
                *pub = p;
                *priv = xasprintf("%s/.ssh/%s", home ? home : ".", defaults[i]);
            } else {
                free(p);
            }
        }
        if (*pub == NULL) {
            fprintf(stderr, "airlock: join: no SSH key in ~/.ssh (id_ed25519.pub): create one "
                            "with 'ssh-keygen -t ed25519' or pass --key FILE\n");
            return CLIENT_EXIT_USAGE;
        }
    }
    if (!exists(*priv)) {
        free(*priv);
        *priv = NULL;
    }
    return 0;
}

/* The first two fields ("type base64") of a public key file, as a new string. */
static char *
read_pubkey(const char *path)
{
    char *text = NULL, *cur, *line, *type, *b64, *out = NULL;

    if (client_file_read(path, 64 * 1024, &text) != 0)
        return NULL;
    cur = text;
    while ((line = client_next_token(&cur, "\n")) != NULL) {
        char *fields = line;

        client_trim(line);
        if (line[0] == '\0' || line[0] == '#')
            continue;
        type = client_next_token(&fields, " \t");
        b64 = client_next_token(&fields, " \t");
        if (type != NULL && b64 != NULL)
            out = xasprintf("%s %s", type, b64);
        break;
    }
    free(text);
    return out;
}

/*
 * Replaces the lines for the hosts named in lines (ssh known_hosts format,
 * one or more lines) in the known_hosts file at path. 0 or ERR_SYSTEM.
 */
static int
known_hosts_update(const char *path, const char *lines)
{
    char *old = NULL, *copy = xstrdup(lines), *cur = copy, *l, *out = NULL;
    char **hosts = NULL;
    size_t n_hosts = 0, len = 0, cap = 0;
    int r;

    while ((l = client_next_token(&cur, "\n")) != NULL) {
        size_t hl = strcspn(l, " \t");

        if (hl == 0)
            continue;
        hosts = xrealloc(hosts, (n_hosts + 1) * sizeof(*hosts));
        hosts[n_hosts++] = xstrndup(l, hl);
    }
    out_append(&out, &len, &cap, "", 0);
    if (client_file_read(path, 16u << 20, &old) == 0) {
        cur = old;
        while ((l = client_next_token(&cur, "\n")) != NULL) {
            size_t hl = strcspn(l, " \t");
            int drop = 0;

            for (size_t i = 0; i < n_hosts && !drop; i++)
                drop = hl == strlen(hosts[i]) && strncmp(l, hosts[i], hl) == 0;
            if (drop)
                continue;
            out_append(&out, &len, &cap, l, strlen(l));
            out_append(&out, &len, &cap, "\n", 1);
        }
    }
    out_append(&out, &len, &cap, lines, strlen(lines));
    if (len > 0 && out[len - 1] != '\n')
        out_append(&out, &len, &cap, "\n", 1);
    r = client_file_write(path, out, len, 0600);
    for (size_t i = 0; i < n_hosts; i++)
        free(hosts[i]);
    free(hosts);
    free(copy);
    free(old);
    free(out);
    return r;
}

/* s in single quotes for sh, with % doubled for ssh's ProxyCommand tokens. New string. */
static char *
quote_for_proxycommand(const char *s)
{
    size_t n = 2;
    char *out, *o;

    for (const char *p = s; *p; p++)
        n += *p == '\'' ? 4 : *p == '%' ? 2 : 1;
    out = o = xmalloc(n + 1);
    *o++ = '\'';
    for (const char *p = s; *p; p++) {
        if (*p == '\'') {
            memcpy(o, "'\\''", 4);
            o += 4;
        } else if (*p == '%') {
            *o++ = '%';
            *o++ = '%';
        } else {
            *o++ = *p;
        }
    }
    *o++ = '\'';
    *o = '\0';
    return out;
}

static char *
self_path(void)
{
    char *exe = self_exe();

    return exe != NULL ? exe : xstrdup("airlock");
}

/*
 * POST .../join with the public key. On success *j receives the answer (new
 * reference). 0 or an exit code (message printed).
 */
static int
join_request(const char *srv, const char *name, const char *pubkey, int read_only,
             const char *token, json_t **j)
{
    char *esc = client_url_escape(name), *url, err[512];
    json_t *body = json_pack("{s:s}", "sshPublicKey", pubkey);
    long status;
    int code = 0;

    *j = NULL;
    url = xasprintf("%s/api/v1/debug-sessions/%s/join", srv, esc);
    if (read_only)
        json_object_set_new(body, "role", json_string("viewer"));
    if (client_http_json("POST", url, token, body, &status, j, err, sizeof(err)) != 0) {
        fprintf(stderr, "airlock: %s\n", err);
        code = CLIENT_EXIT_UNREACHABLE;
    } else if (status != 200 && status != 201) {
        code = client_refused("join", status, *j);
    } else if (json_string_value(json_object_get(json_object_get(*j, "attach"), "ticket")) ==
               NULL) {
        fprintf(stderr, "airlock: join: no ticket in the server's answer\n");
        code = CLIENT_EXIT_REFUSED;
    }
    json_decref(body);
    free(url);
    free(esc);
    return code;
}

/*
 * Runs ssh (execvp) to name through `airlock proxy` with ticket, the pinned
 * known_hosts file kh_path and the private key priv (may be NULL). Returns
 * only when ssh cannot be run: the exit code.
 */
static int
join_exec(const char *srv, const char *name, const char *ticket, const char *kh_path,
          const char *kh, const char *priv, char **cmd)
{
    char *self = self_path(), *qs = quote_for_proxycommand(self),
         *qsrv = quote_for_proxycommand(srv), *qt = quote_for_proxycommand(ticket);
    char *proxy = xasprintf("ProxyCommand=%s --server %s proxy %%n --ticket %s", qs, qsrv, qt);
    char *khopt = xasprintf("UserKnownHostsFile=%s", kh_path);
    /* the pin as the pasted line carries it (api_attach.c); the file stays for scp and sftp */
    char *khcmd = kh && kh[0] ? xasprintf("KnownHostsCommand=/bin/echo %s", kh) : NULL;
    char *args[24];
    int a = 0;

    args[a++] = "ssh";
    args[a++] = "-o";
    args[a++] = proxy;
    args[a++] = "-o";
    args[a++] = khopt;
    args[a++] = "-o";
    args[a++] = "StrictHostKeyChecking=yes";
    if (khcmd != NULL) {
        args[a++] = "-o";
        args[a++] = khcmd;
    }
    if (priv != NULL) {
        args[a++] = "-i";
        args[a++] = (char *)priv;
        args[a++] = "-o";
        args[a++] = "IdentitiesOnly=yes";
    }
    args[a++] = (char *)name;
    for (int i = 0; cmd != NULL && cmd[i] != NULL && a < 23; i++)
        args[a++] = cmd[i];
    args[a] = NULL;
    fflush(NULL);
    execvp("ssh", args);
    fprintf(stderr, "airlock: join: cannot run ssh: %s\n", strerror(errno));
    free(self);
    free(qs);
    free(qsrv);
    free(qt);
    free(proxy);
    free(khopt);
    free(khcmd);
    return CLIENT_EXIT_REFUSED;
}

int
cmd_join(const char *server, int argc, char **argv)
{
    static const struct option opts[] = {{"read-only", no_argument, NULL, 'r'},
                                         {"key", required_argument, NULL, 'k'},
                                         {"print", no_argument, NULL, 'p'},
                                         {"help", no_argument, NULL, 'h'},
                                         {NULL, 0, NULL, 0}};
    const char *key = NULL, *name, *kh, *cmdline;
    char *srv = NULL, *token = NULL, *pub = NULL, *priv = NULL, *pubkey = NULL, *kh_path = NULL;
    char *ticket = NULL;
    json_t *j = NULL, *attach;
    char **cmd;
    int c, read_only = 0, print = 0, code = CLIENT_EXIT_USAGE;

    optind = 0;
    while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        switch (c) {
        case 'r':
            read_only = 1;
            break;
        case 'k':
            key = optarg;
            break;
        case 'p':
            print = 1;
            break;
        case 'h':
            printf(
                "usage: airlock join NAME [--read-only] [--key FILE] [--print] [-- COMMAND...]\n");
            return 0;
        default:
            goto usage;
        }
    }
    if (optind >= argc) /* NAME, then the command for ssh, if any */
        goto usage;
    name = argv[optind];
    cmd = argv + optind + 1;
    if (cmd[0] != NULL && strcmp(cmd[0], "--") == 0)
        cmd++;
    if ((srv = client_server_url(server)) == NULL)
        goto out;
    if ((code = find_key(key, &pub, &priv)) != 0)
        goto out;
    if ((pubkey = read_pubkey(pub)) == NULL) {
        fprintf(stderr, "airlock: join: %s is not an SSH public key\n", pub);
        code = CLIENT_EXIT_USAGE;
        goto out;
    }
    if ((token = client_need_token()) == NULL) {
        code = CLIENT_EXIT_REFUSED;
        goto out;
    }
    if ((code = join_request(srv, name, pubkey, read_only, token, &j)) != 0)
        goto out;
    attach = json_object_get(j, "attach");
    ticket = xstrdup(json_string_value(json_object_get(attach, "ticket")));
    kh = json_string_value(json_object_get(attach, "knownHostsLine"));
    cmdline = json_string_value(json_object_get(attach, "command"));
    kh_path = client_config_path("known_hosts");
    if (kh != NULL && kh[0] != '\0') {
        if (known_hosts_update(kh_path, kh) != 0) {
            code = CLIENT_EXIT_REFUSED;
            goto out;
        }
    } else {
        fprintf(stderr, "airlock: join: warning: the server sent no host key to pin; ssh will "
                        "refuse the connection (StrictHostKeyChecking=yes)\n");
    }
    if (print) {
        printf("%s\n", cmdline ? cmdline : "");
        code = 0;
        goto out;
    }
    client_secret_free(token);
    token = NULL;
    code = join_exec(srv, name, ticket, kh_path, kh, priv, cmd);
    goto out;
usage:
    fprintf(stderr,
            "usage: airlock join NAME [--read-only] [--key FILE] [--print] [-- COMMAND...]\n");
    code = CLIENT_EXIT_USAGE;
out:
    json_decref(j);
    free(srv);
    client_secret_free(token);
    client_secret_free(ticket);
    free(pub);
    free(priv);
    free(pubkey);
    free(kh_path);
    return code;
}
