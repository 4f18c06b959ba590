#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <curl/curl.h>

#include "err.h"
#include "httpc.h"
#include "xmalloc.h"

struct body {
    char *data;
    size_t len, max;
    int too_big;
};

static size_t
body_cb(char *p, size_t size, size_t n, void *ud)
{
    struct body *b = ud;
    size_t add = size * n;

    if (add > b->max - b->len) {
        b->too_big = 1;
        return 0;
    }
    b->data = xrealloc(b->data, b->len + add + 1);
    memcpy(b->data + b->len, p, add);
    b->len += add;
    b->data[b->len] = '\0';
    return add;
}

/* rs->server_version from the answer's X-Airlock-Version header (printable ASCII only). */
static void
server_version(CURL *c, struct httpc_resp *rs)
{
    struct curl_header *hd = NULL;
    size_t i, n;

    if (curl_easy_header(c, "X-Airlock-Version", 0, CURLH_HEADER, -1, &hd) != CURLHE_OK)
        return;
    n = strlen(hd->value);
    if (n >= sizeof(rs->server_version))
        n = sizeof(rs->server_version) - 1;
    for (i = 0; i < n; i++)
        rs->server_version[i] = hd->value[i] > ' ' && hd->value[i] < 127 ? hd->value[i] : '?';
    rs->server_version[n] = '\0';
}

/* One warning per process when the server runs another version (issue 10). */
static void
warn_version_once(const char *url, const char *theirs)
{
    static atomic_int warned;
    const char *p = strstr(url, "://");
    int origin = p != NULL ? (int)(p + 3 - url) + (int)strcspn(p + 3, "/?#") : (int)strlen(url);

    if (theirs[0] == '\0' || strcmp(theirs, AIRLOCK_VERSION) == 0 || atomic_exchange(&warned, 1))
        return;
    fprintf(stderr,
            "airlock: warning: the server %.*s runs airlock %s, this is airlock %s; get the "
            "matching agent from %.*s/download/airlock-linux-amd64.tar.gz\n",
            origin, url, theirs, AIRLOCK_VERSION, origin, url);
}

int
httpc_request(const struct httpc_req *rq, int want_json, struct httpc_resp *rs, char *err,
              size_t err_len)
{
    CURL *c = curl_easy_init();
    struct curl_slist *h = NULL;
    struct body b = {NULL, 0, rq->max_body ? rq->max_body : HTTPC_MAX_BODY, 0};
    char *ct = NULL, cerr[CURL_ERROR_SIZE] = "";
    CURLcode rc;
    int r = ERR_UNAVAILABLE;

    memset(rs, 0, sizeof(*rs));
    if (c == NULL) {
        snprintf(err, err_len, "curl_easy_init failed");
        return ERR_INTERNAL;
    }
    h = curl_slist_append(h, "Accept: application/json");
    if (rq->auth_header != NULL)
        h = curl_slist_append(h, rq->auth_header);
    for (size_t i = 0; rq->headers != NULL && rq->headers[i] != NULL; i++)
        h = curl_slist_append(h, rq->headers[i]);
    if (rq->body != NULL) {
        ct =
            xasprintf("Content-Type: %s", rq->content_type ? rq->content_type : "application/json");
        h = curl_slist_append(h, ct);
        curl_easy_setopt(c, CURLOPT_POSTFIELDS, rq->body);
        curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE, (long)strlen(rq->body));
    }
    curl_easy_setopt(c, CURLOPT_URL, rq->url);
    curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, rq->method);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, body_cb);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, &b);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, 0L);
    curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, (long)HTTPC_CONNECT_TIMEOUT_MS);
    curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, rq->timeout_ms);
    curl_easy_setopt(c, CURLOPT_MAXFILESIZE_LARGE, (curl_off_t)b.max);
    curl_easy_setopt(c, CURLOPT_USERAGENT, rq->user_agent ? rq->user_agent : "airlock");
    curl_easy_setopt(c, CURLOPT_ERRORBUFFER, cerr);
    curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
    if (rq->ca_file != NULL && rq->ca_file[0] != '\0')
        curl_easy_setopt(c, CURLOPT_CAINFO, rq->ca_file);
    if (rq->no_proxy)
        curl_easy_setopt(c, CURLOPT_NOPROXY, "*");
    rc = curl_easy_perform(c);
    if (b.too_big || rc == CURLE_FILESIZE_EXCEEDED) {
        rs->too_large = 1;
    } else if (rc != CURLE_OK) {
        snprintf(err, err_len, "cannot reach %s: %s", rq->url,
                 cerr[0] ? cerr : curl_easy_strerror(rc));
        goto out;
    }
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &rs->status);
    server_version(c, rs);
    if (want_json && b.data != NULL && !rs->too_large)
        rs->json = json_loadb(b.data, b.len, rq->strict_json ? JSON_REJECT_DUPLICATES : 0, NULL);
    r = 0;
out:
    curl_slist_free_all(h);
    curl_easy_cleanup(c);
    free(ct);
    free(b.data);
    return r;
}

int
httpc_call(const char *method, const char *url, const char *auth_header, const char *content_type,
           const char *body, const char *ca_file, long timeout_ms, long *status, json_t **out,
           char *err, size_t err_len)
{
    struct httpc_req rq = {.method = method,
                           .url = url,
                           .auth_header = auth_header,
                           .body = body,
                           .content_type = content_type,
                           .ca_file = ca_file,
                           .timeout_ms = timeout_ms};
    struct httpc_resp rs;
    int r = httpc_request(&rq, 1, &rs, err, err_len);

    if (r == 0)
        warn_version_once(url, rs.server_version);
    *status = rs.status;
    *out = rs.json;
    return r;
}
