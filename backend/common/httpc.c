#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <curl/curl.h>

#include "err.h"
#include "httpc.h"
#include "xmalloc.h"

struct body {
    char *data;
    size_t len;
    int too_big;
};

static size_t
body_cb(char *p, size_t size, size_t n, void *ud)
{
    struct body *b = ud;
    size_t add = size * n;

    if (add > HTTPC_MAX_BODY - b->len) {
        b->too_big = 1;
        return 0;
    }
    b->data = xrealloc(b->data, b->len + add + 1);
    memcpy(b->data + b->len, p, add);
    b->len += add;
    b->data[b->len] = '\0';
    return add;
}

int
httpc_call(const char *method, const char *url, const char *auth_header,
           const char *content_type, const char *body, const char *ca_file, long timeout_ms,
           long *status, json_t **out, char *err, size_t err_len)
{
    CURL *c = curl_easy_init();
    struct curl_slist *h = NULL;
    struct body b = {NULL, 0, 0};
    char *ct = NULL, cerr[CURL_ERROR_SIZE] = "";
    CURLcode rc;
    int r = ERR_UNAVAILABLE;

    *status = 0;
    *out = NULL;
    if (c == NULL) {
        snprintf(err, err_len, "curl_easy_init failed");
        return ERR_INTERNAL;
    }
    h = curl_slist_append(h, "Accept: application/json");
    if (auth_header != NULL)
        h = curl_slist_append(h, auth_header);
    if (body != NULL) {
        ct = xasprintf("Content-Type: %s", content_type ? content_type : "application/json");
        h = curl_slist_append(h, ct);
        curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
        curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE, (long)strlen(body));
    }
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, body_cb);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, &b);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, (long)HTTPC_CONNECT_TIMEOUT_MS);
    curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, timeout_ms);
    curl_easy_setopt(c, CURLOPT_USERAGENT, "airlock");
    curl_easy_setopt(c, CURLOPT_ERRORBUFFER, cerr);
    curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
    if (ca_file != NULL && ca_file[0] != '\0')
        curl_easy_setopt(c, CURLOPT_CAINFO, ca_file);
    rc = curl_easy_perform(c);
    if (rc != CURLE_OK && !(rc == CURLE_WRITE_ERROR && b.too_big)) {
        snprintf(err, err_len, "cannot reach %s: %s", url, cerr[0] ? cerr : curl_easy_strerror(rc));
        goto out;
    }
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, status);
    if (b.data != NULL && !b.too_big)
        *out = json_loadb(b.data, b.len, 0, NULL);
    r = 0;
out:
    curl_slist_free_all(h);
    curl_easy_cleanup(c);
    free(ct);
    free(b.data);
    return r;
}
