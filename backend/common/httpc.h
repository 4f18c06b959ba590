/*
 * A small HTTP client over libcurl for JSON APIs, shared by the agent, the
 * CLI and airlockd (JWKS discovery, webhooks): one request, a bounded
 * response body, parsed as JSON. No redirects are followed.
 */
#ifndef AIRLOCK_HTTPC_H
#define AIRLOCK_HTTPC_H
#include <stddef.h>

#include <jansson.h>

#define HTTPC_MAX_BODY (16 * 1024 * 1024) /* larger answers are not parsed */
#define HTTPC_CONNECT_TIMEOUT_MS 10000

struct httpc_req {
    const char *method; /* "GET", "POST", ... */
    const char *url;
    const char *auth_header;    /* "Authorization: ..." or NULL */
    const char *const *headers; /* more "Name: value" lines, NULL-terminated; may be NULL */
    const char *body;           /* NULL: none */
    const char *content_type;   /* of body; NULL: application/json */
    const char *ca_file;        /* NULL or "": the system store */
    const char *user_agent;     /* NULL: "airlock" */
    long timeout_ms;            /* whole request; connecting takes at most 10 s of it */
    size_t max_body;            /* 0: HTTPC_MAX_BODY */
    int no_proxy;               /* ignore proxies from the environment */
    int strict_json;            /* reject duplicate keys in the answer */
};

struct httpc_resp {
    long status;
    json_t *json;            /* the body parsed, new; NULL if not JSON, too large or unwanted */
    int too_large;           /* the body was larger than max_body */
    char server_version[32]; /* the X-Airlock-Version header, or "" */
};

/*
 * Sends rq. When the server answers, whatever the status, returns 0 and
 * fills rs (rs->json only if want_json). Returns ERR_UNAVAILABLE with a
 * message in err when the server cannot be reached or the answer breaks
 * off, ERR_INTERNAL when libcurl cannot start.
 */
int httpc_request(const struct httpc_req *rq, int want_json, struct httpc_resp *rs, char *err,
                  size_t err_len);

/*
 * httpc_request for the agent and the CLI, with the answer's JSON in *out.
 * The first answer from an airlockd of another version than this program's
 * AIRLOCK_VERSION prints one warning on stderr naming both.
 */
int httpc_call(const char *method, const char *url, const char *auth_header,
               const char *content_type, const char *body, const char *ca_file, long timeout_ms,
               long *status, json_t **out, char *err, size_t err_len);

#endif
