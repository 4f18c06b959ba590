/*
 * The ceiling for the API benchmarks: a libmicrohttpd hello-world started
 * with the same daemon flags and options as airlockd's http.c
 * (internal polling thread + epoll, a pool of 4 threads, upgrade allowed,
 * same connection limit and timeout). Every request gets the same small
 * JSON body from one shared response object: no routing, no auth, no
 * database, no allocation per request.
 *
 *   hello PORT     listens on 127.0.0.1:PORT until SIGTERM/SIGINT
 *
 * bench/run builds it with cc into $BUILD/bench/hello.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <microhttpd.h>

#include "parse.h"

#define HTTP_THREADS 4          /* as in backend/server/http.c */
#define HTTP_MAX_CONNECTIONS 4096
#define HTTP_TIMEOUT_S 60

static const char body[] = "{\"hello\":\"world\"}";
static struct MHD_Response *resp;

static enum MHD_Result
handler(void *cls, struct MHD_Connection *c, const char *url, const char *method,
        const char *version, const char *upload_data, size_t *upload_data_size, void **req_cls)
{
    (void)cls;
    (void)url;
    (void)method;
    (void)version;
    (void)upload_data;
    if (*req_cls == NULL) { /* first call: headers only, as MHD's own examples do */
        *req_cls = (void *)1;
        return MHD_YES;
    }
    *upload_data_size = 0;
    return MHD_queue_response(c, MHD_HTTP_OK, resp);
}

int
main(int argc, char **argv)
{
    struct sockaddr_in sa;
    struct MHD_Daemon *d;
    sigset_t set;
    long port;
    int sig;

    if (argc != 2) {
        fprintf(stderr, "usage: hello PORT\n");
        return 2;
    }
    if (parse_long("PORT", argv[1], 1, 65535, &port) != 0)
        return 2;
    memset(&sa, 0, sizeof(sa));
    sa.sin_family = AF_INET;
    sa.sin_port = htons((unsigned short)port);
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);

    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    pthread_sigmask(SIG_BLOCK, &set, NULL); /* MHD's threads inherit the mask */

    resp = MHD_create_response_from_buffer(sizeof(body) - 1, (void *)body, MHD_RESPMEM_PERSISTENT);
    MHD_add_response_header(resp, "Content-Type", "application/json");
    MHD_add_response_header(resp, "Cache-Control", "no-store");
    d = MHD_start_daemon(MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_EPOLL | MHD_ALLOW_UPGRADE |
                             MHD_USE_ERROR_LOG,
                         0, NULL, NULL, handler, NULL, MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&sa,
                         MHD_OPTION_THREAD_POOL_SIZE, (unsigned)HTTP_THREADS,
                         MHD_OPTION_CONNECTION_LIMIT, (unsigned)HTTP_MAX_CONNECTIONS,
                         MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)HTTP_TIMEOUT_S,
                         MHD_OPTION_LISTENING_ADDRESS_REUSE, (unsigned)1, MHD_OPTION_END);
    if (d == NULL) {
        fprintf(stderr, "hello: cannot listen on 127.0.0.1:%s\n", argv[1]);
        return 1;
    }
    sigwait(&set, &sig);
    MHD_stop_daemon(d);
    MHD_destroy_response(resp);
    return 0;
}
