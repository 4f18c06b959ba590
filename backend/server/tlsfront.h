/*
 * Built-in TLS in front of libmicrohttpd: airlockd accepts on the TLS port
 * itself, terminates TLS with OpenSSL and hands the plaintext to MHD through
 * a loopback TCP pair, one pump thread per connection (tlsfront.c says why).
 */
#ifndef AIRLOCK_TLSFRONT_H
#define AIRLOCK_TLSFRONT_H
#include <stddef.h>
#include <sys/socket.h>

struct tlsfront;

/*
 * Hands a plaintext connection to the HTTP server: fd is the server's end of
 * a loopback TCP pair, sa the real client's address. Takes ownership of fd in every
 * case (closes it on failure). Returns 0 or ERR_*.
 */
typedef int (*tlsfront_add_fn)(void *arg, int fd, const struct sockaddr *sa, socklen_t sl);

/*
 * Loads the PEM certificate chain and key for the listening socket lfd
 * (http.c opened it; taken on success, left to the caller on failure; no
 * connection is accepted before tlsfront_start). TLS 1.2 and later only.
 * On success *fp is a new front that the caller frees with tlsfront_free().
 * Returns 0, ERR_INVALID (unusable certificate or key, err says which) or
 * ERR_SYSTEM (cannot read the files, err says why).
 */
int tlsfront_new(const char *cert_path, const char *key_path, int lfd, tlsfront_add_fn add,
                 void *add_arg, struct tlsfront **fp, char *err, size_t err_len);
/*
 * Admission of a new connection before its handshake (fd the client's
 * socket): 0 with *tok set to release it later, or nonzero to refuse it
 * (it is closed at once). The gate may shutdown(2) fd while it holds it
 * (a deadline); release comes before fd is closed, and before the
 * connection is handed to the HTTP server.
 */
struct tlsfront_gate {
    int (*hold)(void *arg, const struct sockaddr *sa, int fd, void **tok);
    void (*release)(void *arg, void *tok);
    void *arg;
};

/* Port actually bound (useful with port 0). */
unsigned tlsfront_port(const struct tlsfront *f);
/* Sets the admission gate (copied), before tlsfront_start. */
void tlsfront_set_gate(struct tlsfront *f, const struct tlsfront_gate *gate);
/* Starts accepting. Returns 0 or ERR_SYSTEM. */
int tlsfront_start(struct tlsfront *f);
/*
 * Stops accepting and stops handing connections to add(); connections that
 * were handed over keep flowing. Call it before the HTTP server stops.
 * Idempotent; NULL is a no-op.
 */
void tlsfront_quiesce(struct tlsfront *f);
/*
 * Ends every connection (each gets a moment to flush what the HTTP server
 * wrote before it stopped), waits for their threads and frees f. Call it
 * after the HTTP server stopped. NULL is a no-op.
 */
void tlsfront_free(struct tlsfront *f);

#endif
