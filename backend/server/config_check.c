/*
 * Checks of single string values in the configuration (the check_fn of a
 * field): listen addresses, http(s) URLs, issuer URLs (https unless
 * loopback), agentName templates, template names, globs, webhook events and
 * UI scopes; and the address helpers they share with config_is_loopback().
 */
#include <arpa/inet.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include <yaml.h>

#include "config_int.h"
#include "err.h"
#include "glob.h"
#include "util.h"

/*
 * The events a webhook may subscribe to: the audit event types of DESIGN.md
 * section 6 (docs/api.md lists their data). "joined" is no longer recorded (a
 * ticket is `ticket_issued`, an SSH connection `connected`); it stays
 * accepted so that existing configuration files still load.
 */
static const char *const event_names[] = {
    "created",
    "approval_required",
    "approved",
    "rejected",
    "activated",
    "invited",
    "joined",
    "left",
    "renewed",
    "expiring",
    "expired",
    "terminated",
    "failed",
    "agent_online",
    "agent_offline",
    "ticket_issued",
    "connected",
    "disconnected",
    "removed",
    "role_changed",
    "recording_started",
    "recording_finished",
    "recording_stopped",
    "recording_failed",
    "recording_rejected",
};

static size_t count_char(const char *s, size_t n, char ch);

/* ------------------------------------------------------------------------ */
/* String checks                                                             */
/* ------------------------------------------------------------------------ */

int
config_check_listen(struct ctx *c, yaml_node_t *n, const char *s)
{
    if (!config_listen_ok(s))
        return config_err(c, n, "expected HOST:PORT (e.g. 127.0.0.1:8080 or [::1]:8080), got '%s'",
                          s);
    return 0;
}

int
config_check_http_url(struct ctx *c, yaml_node_t *n, const char *s)
{
    if (!config_url_has_scheme(s, "http://") && !config_url_has_scheme(s, "https://"))
        return config_err(c, n, "expected an http:// or https:// URL, got '%s'", s);
    return 0;
}

/* https://, or http:// when the host is loopback (tests, dev set-ups). */
int
config_check_issuer_url(struct ctx *c, yaml_node_t *n, const char *s)
{
    char host[256];

    if (config_url_has_scheme(s, "https://"))
        return 0;
    if (!config_url_has_scheme(s, "http://"))
        return config_err(c, n, "expected an https:// URL, got '%s'", s);
    if (config_host_of(s, host, sizeof(host)) != 0 || !config_host_is_loopback(host))
        return config_err(c, n, "'%s' must use https:// (http:// is allowed on loopback only)", s);
    return 0;
}

/* "gh/{repository}/{run_id}": every {claim} is closed and names a claim. */
int
config_check_agent_name(struct ctx *c, yaml_node_t *n, const char *s)
{
    static const char claim_chars[] = "abcdefghijklmnopqrstuvwxyz"
                                      "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-.";
    const char *p;
    size_t len;

    for (p = s; *p; p++) {
        if (*p == '}')
            return config_err(c, n, "unmatched '}' in '%s'", s);
        if (*p != '{')
            continue;
        len = strspn(p + 1, claim_chars);
        if (len == 0 || p[1 + len] != '}')
            return config_err(c, n, "bad placeholder in '%s' (expected {claim})", s);
        p += len + 1;
    }
    return 0;
}

int
config_check_tmpl_name(struct ctx *c, yaml_node_t *n, const char *s)
{
    size_t i, len = strlen(s);

    for (i = 0; i < len && len <= 63; i++) {
        if ((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= '0' && s[i] <= '9') || (s[i] == '-' && i > 0))
            continue;
        break;
    }
    if (len == 0 || len > 63 || i < len)
        return config_err(c, n, "template name '%s' must match [a-z0-9][a-z0-9-]{0,62}", s);
    return 0;
}

/* glob.c treats an unclosed '[' as a literal; in a config it is almost surely a typo. */
int
config_check_glob(struct ctx *c, yaml_node_t *n, const char *s)
{
    const char *p;

    for (p = s; *p; p++) {
        if (*p != '[')
            continue;
        p++;
        if (*p == '!' || *p == '^')
            p++;
        if (*p == ']')
            p++;
        if ((p = strchr(p, ']')) == NULL)
            return config_err(c, n, "unclosed '[' in pattern '%s'", s);
    }
    return 0;
}

int
config_check_event(struct ctx *c, yaml_node_t *n, const char *s)
{
    char all[1024]; /* every name, comma-separated */
    size_t i, len = 0;

    for (i = 0; i < NELEM(event_names); i++)
        if (strcmp(s, event_names[i]) == 0)
            return 0;
    all[0] = '\0';
    for (i = 0; i < NELEM(event_names) && len < sizeof(all); i++)
        len +=
            (size_t)snprintf(all + len, sizeof(all) - len, "%s%s", i ? ", " : "", event_names[i]);
    return config_err(c, n, "unknown event '%s' (one of %s)", s, all);
}

/*
 * An RFC 6749 (section 3.3) scope-token: 1*( %x21 / %x23-5B / %x5D-7E ), that
 * is printable ASCII without space, '"' or '\'; here at most
 * CONFIG_UI_SCOPE_MAX_LEN characters. The UI joins the list with spaces, so a
 * space inside one entry would silently make two scopes.
 */
int
config_check_scope(struct ctx *c, yaml_node_t *n, const char *s)
{
    const unsigned char *p;
    size_t len = strlen(s);

    if (len > CONFIG_UI_SCOPE_MAX_LEN)
        return config_err(c, n, "scope longer than %d characters (%zu)", CONFIG_UI_SCOPE_MAX_LEN,
                          len);
    /* Control and non-ASCII bytes first: only then is s safe to quote in the message. */
    for (p = (const unsigned char *)s; *p; p++)
        if (*p < 0x20 || *p > 0x7e)
            return config_err(c, n,
                              "scope contains the byte 0x%02x (a scope is printable ASCII "
                              "without space, '\"' or '\\')",
                              *p);
    for (p = (const unsigned char *)s; *p; p++) {
        if (*p == ' ')
            return config_err(c, n,
                              "scope '%s' contains a space: write each scope as its own list "
                              "entry",
                              s);
        if (*p == '"' || *p == '\\')
            return config_err(c, n,
                              "scope '%s' contains '%c' (a scope is printable ASCII without "
                              "space, '\"' or '\\')",
                              s, *p);
    }
    return 0;
}

/* ------------------------------------------------------------------------ */
/* Addresses                                                                 */
/* ------------------------------------------------------------------------ */

static size_t
count_char(const char *s, size_t n, char ch)
{
    size_t i, k = 0;

    for (i = 0; i < n; i++)
        k += s[i] == ch;
    return k;
}

/*
 * Copies the host of a URL ("scheme://user@host:port/path") or of an address
 * ("host:port", "[v6]:port", a bare "::1") into buf, without brackets.
 * Returns 0, or -1 if there is no host or it does not fit.
 */
int
config_host_of(const char *s, char *buf, size_t len)
{
    size_t scheme = strspn(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789+.-");
    const char *end, *p, *close;
    int is_url = scheme > 0 && strncmp(s + scheme, "://", 3) == 0;
    size_t n;

    if (is_url)
        s += scheme + 3;
    end = s + strcspn(s, "/?#");
    /* Userinfo ends at the last '@': "http://127.0.0.1@evil.example" is evil.example. */
    for (p = s; p < end; p++)
        if (*p == '@')
            s = p + 1;
    n = (size_t)(end - s);
    if (*s == '[') {
        if ((close = memchr(s, ']', n)) == NULL)
            return -1;
        s++;
        n = (size_t)(close - s);
    } else if (is_url || count_char(s, n, ':') < 2) {
        n = strcspn(s, ":/?#");
    } /* else two colons and no brackets: a bare IPv6 address such as "::1" */
    if (n == 0 || n >= len)
        return -1;
    memcpy(buf, s, n);
    buf[n] = '\0';
    return 0;
}

int
config_host_is_loopback(const char *host)
{
    struct in_addr a4;
    struct in6_addr a6;

    if (strcasecmp(host, "localhost") == 0)
        return 1;
    if (inet_pton(AF_INET, host, &a4) == 1)
        return (ntohl(a4.s_addr) >> 24) == 127;
    if (inet_pton(AF_INET6, host, &a6) == 1)
        return IN6_IS_ADDR_LOOPBACK(&a6);
    return 0;
}

/* 1 if s is "host:port" or "[v6]:port" with a port in 1..65535. */
int
config_listen_ok(const char *s)
{
    struct in6_addr a6;
    const char *colon;
    char host[64];
    uint64_t port;
    size_t n;

    if (s[0] == '[') {
        colon = strchr(s, ']');
        n = colon != NULL ? (size_t)(colon - s - 1) : 0;
        if (colon == NULL || colon[1] != ':' || n >= sizeof(host))
            return 0;
        memcpy(host, s + 1, n);
        host[n] = '\0';
        if (inet_pton(AF_INET6, host, &a6) != 1)
            return 0;
        colon++;
    } else {
        colon = strchr(s, ':');
        if (colon == NULL || colon == s || strchr(colon + 1, ':') != NULL)
            return 0;
    }
    return parse_uint(colon + 1, 65535, &port) == 0 && port > 0;
}

/* 1 if s starts with scheme and has a non-empty authority after it. */
int
config_url_has_scheme(const char *s, const char *scheme)
{
    size_t n = strlen(scheme);

    return strncmp(s, scheme, n) == 0 && strcspn(s + n, "/?#") > 0;
}
