/*
 * The built-in dev issuer (DESIGN.md 7.3): an ES256 key generated into
 * dataDir/dev-signing-key.pem on first use (mode 0600, linked into place so a
 * concurrent start never sees half a key), its public half as the issuer's
 * only key, and auth_dev_mint() to sign tokens with it through libjwt. The
 * dev issuer trusts the emails it mints (trustEmail) and is its own identity
 * domain, "dev".
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <jansson.h>
#include <jwt.h>
#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/param_build.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include "auth_int.h"
#include "err.h"
#include "jwk.h"
#include "log.h"
#include "util.h"
#include "xmalloc.h"

#define DEV_NAME "dev"
#define DEV_AUDIENCE "airlock"
#define DEV_KEY_FILE "dev-signing-key.pem"
#define DEV_MAX_TTL_S (365LL * 86400)

/* Never prompt on a terminal for a pass phrase: an encrypted dev key is an error. */
static int
no_passphrase(char *buf, int size, int rwflag, void *ud)
{
    (void)buf;
    (void)size;
    (void)rwflag;
    (void)ud;
    return -1;
}

/* mkdir -p with mode 0700 for the directories it creates. */
static int
mkdir_p(const char *dir)
{
    char *p = xstrdup(dir), *s = NULL;
    int r = 0;

    for (s = p + 1; *s != '\0' && r == 0; s++) {
        if (*s != '/')
            continue;
        *s = '\0';
        if (mkdir(p, 0700) != 0 && errno != EEXIST)
            r = ERR_SYSTEM;
        *s = '/';
    }
    if (r == 0 && mkdir(p, 0700) != 0 && errno != EEXIST)
        r = ERR_SYSTEM;
    free(p);
    return r;
}

/*
 * Generates a P-256 key into path with mode 0600. It is written to a
 * temporary file and link()ed into place, so a concurrent start never sees a
 * half-written key and never overwrites one.
 */
static int
dev_key_generate(const char *path, char *err, size_t err_len)
{
    EVP_PKEY *pk = NULL;
    FILE *f = NULL;
    char *tmp = xasprintf("%s.XXXXXX", path);
    int fd = -1, r = ERR_SYSTEM;

    if ((pk = EVP_EC_gen("P-256")) == NULL) {
        snprintf(err, err_len, "cannot generate the dev signing key");
        r = ERR_INTERNAL;
        goto out;
    }
    if ((fd = mkstemp(tmp)) < 0 || fchmod(fd, 0600) != 0 || (f = fdopen(fd, "w")) == NULL) {
        snprintf(err, err_len, "%s: %s", tmp, strerror(errno));
        goto out;
    }
    fd = -1;
    if (PEM_write_PrivateKey(f, pk, NULL, NULL, 0, NULL, NULL) != 1 || fflush(f) != 0 ||
        fsync(fileno(f)) != 0) {
        snprintf(err, err_len, "%s: cannot write the dev signing key", tmp);
        goto out;
    }
    if (link(tmp, path) != 0 && errno != EEXIST) {
        snprintf(err, err_len, "%s: %s", path, strerror(errno));
        goto out;
    }
    log_info("generated dev signing key %s", path);
    r = 0;
out:
    if (f != NULL)
        fclose(f);
    if (fd >= 0)
        close(fd);
    unlink(tmp);
    free(tmp);
    EVP_PKEY_free(pk);
    ERR_clear_error();
    return r;
}

/* Reads the dev key from path; it must be an EC P-256 private key. *pkp is new. */
static int
dev_key_load(const char *path, EVP_PKEY **pkp, char *err, size_t err_len)
{
    EVP_PKEY *pk = NULL;
    FILE *f = NULL;
    struct stat st;
    char group[64] = "";
    int r = ERR_SYSTEM;

    *pkp = NULL;
    if ((f = fopen(path, "r")) == NULL || fstat(fileno(f), &st) != 0) {
        snprintf(err, err_len, "%s: %s", path, strerror(errno));
        goto out;
    }
    if (st.st_mode & 077)
        log_warn("%s is readable by others; it should be mode 0600", path);
    pk = PEM_read_PrivateKey(f, NULL, no_passphrase, NULL);
    if (pk == NULL || !EVP_PKEY_is_a(pk, "EC") ||
        EVP_PKEY_get_utf8_string_param(pk, OSSL_PKEY_PARAM_GROUP_NAME, group, sizeof(group),
                                       NULL) != 1 ||
        strcmp(group, "prime256v1") != 0) {
        snprintf(err, err_len, "%s: not an unencrypted EC P-256 private key", path);
        r = ERR_INVALID;
        goto out;
    }
    *pkp = pk;
    pk = NULL;
    r = 0;
out:
    if (f != NULL)
        fclose(f);
    EVP_PKEY_free(pk);
    ERR_clear_error();
    return r;
}

/*
 * From the private dev key: its PKCS#8 PEM (for libjwt), a public-only copy
 * (for verification) and the kid, the first 16 characters of the base64url
 * SHA-256 of the public key's DER, so it is stable across restarts.
 */
static int
dev_key_export(struct auth *a, EVP_PKEY *priv, EVP_PKEY **pubp)
{
    BIO *bio = NULL;
    unsigned char *der = NULL, md[SHA256_DIGEST_LENGTH];
    const unsigned char *dp = NULL;
    char *mem = NULL, *kid = NULL;
    long mem_len;
    int der_len, r = ERR_INTERNAL;

    *pubp = NULL;
    /* A secure-heap BIO is wiped when freed: it briefly holds the private key. */
    if ((bio = BIO_new(BIO_s_secmem())) == NULL ||
        PEM_write_bio_PrivateKey(bio, priv, NULL, NULL, 0, NULL, NULL) != 1 ||
        (mem_len = BIO_get_mem_data(bio, &mem)) <= 0)
        goto out;
    a->dev_priv_pem = xmalloc((size_t)mem_len + 1);
    memcpy(a->dev_priv_pem, mem, (size_t)mem_len);
    a->dev_priv_pem[mem_len] = '\0';
    a->dev_priv_len = (size_t)mem_len;
    if ((der_len = i2d_PUBKEY(priv, &der)) <= 0)
        goto out;
    dp = der;
    if ((*pubp = d2i_PUBKEY(NULL, &dp, der_len)) == NULL)
        goto out;
    SHA256(der, (size_t)der_len, md);
    kid = b64url_encode(md, sizeof(md));
    kid[16] = '\0';
    a->dev_kid = kid;
    r = 0;
out:
    BIO_free(bio);
    OPENSSL_free(der);
    ERR_clear_error();
    return r;
}

/*
 * Sets up the dev issuer: iss = publicUrl + "/dev" (or "http://" + listen +
 * "/dev"), audience "airlock", one ES256 key loaded from or generated into
 * dataDir. The key is held in memory: no discovery, same verify path.
 */
int
auth_dev_init(struct auth *a, const struct config *cfg, char *err, size_t err_len)
{
    struct issuer *is = &a->issuers[a->n_issuers];
    const char *dir = cfg->data_dir != NULL ? cfg->data_dir : "var";
    char *path = NULL, *base = NULL;
    EVP_PKEY *priv = NULL, *pub = NULL;
    size_t i, base_len;
    int r = ERR_INTERNAL;

    if (cfg->public_url != NULL && *cfg->public_url != '\0')
        base = xstrdup(cfg->public_url);
    else
        base = xasprintf("http://%s", cfg->listen != NULL ? cfg->listen : "127.0.0.1:8080");
    base_len = strlen(base);
    while (base_len > 0 && base[base_len - 1] == '/')
        base[--base_len] = '\0';

    if (mkdir_p(dir) != 0) {
        snprintf(err, err_len, "%s: %s", dir, strerror(errno));
        r = ERR_SYSTEM;
        goto out;
    }
    path = xasprintf("%s/%s", dir, DEV_KEY_FILE);
    if (access(path, F_OK) != 0 && (r = dev_key_generate(path, err, err_len)) != 0)
        goto out;
    if ((r = dev_key_load(path, &priv, err, err_len)) != 0)
        goto out;
    if ((r = dev_key_export(a, priv, &pub)) != 0) {
        snprintf(err, err_len, "%s: cannot export the dev key", path);
        goto out;
    }

    auth_issuer_locks_init(is);
    is->idx = a->n_issuers;
    is->name = xstrdup(DEV_NAME);
    is->iss = xasprintf("%s/dev", base);
    is->audience = xstrdup(DEV_AUDIENCE);
    is->kind = ISSUER_USER;
    is->username_claim = xstrdup("preferred_username");
    is->email_claim = xstrdup("email");
    is->name_claim = xstrdup("name");
    is->groups_claim = xstrdup("groups");
    is->is_dev = 1;
    is->trust_email = 1; /* the dev issuer mints whatever email it is asked for */
    is->domain = xstrdup(DEV_NAME);
    is->keys = xcalloc(1, sizeof(*is->keys));
    is->keys[0].kid = xstrdup(a->dev_kid);
    is->keys[0].alg = xstrdup("ES256");
    is->keys[0].kty = KEY_EC_P256;
    is->keys[0].pkey = pub;
    pub = NULL;
    is->n_keys = 1;
    a->dev = is;
    a->n_issuers++;
    for (i = 0; i + 1 < a->n_issuers; i++) {
        if (strcmp(a->issuers[i].iss, is->iss) == 0) {
            snprintf(err, err_len, "issuer %s has the dev issuer's URL %s", a->issuers[i].name,
                     is->iss);
            r = ERR_INVALID;
            goto out;
        }
    }
    log_info("dev issuer %s (kid %s)", is->iss, a->dev_kid);
    r = 0;
out:
    EVP_PKEY_free(priv);
    EVP_PKEY_free(pub);
    free(path);
    free(base);
    return r;
}

/*
 * Dev mode only: mints an ES256 token from the dev issuer (iss, aud
 * "airlock", sub and preferred_username = user, optional email, name and
 * groups, iat now, exp now + ttl_s; ttl_s may be negative to make an
 * expired token for tests). *token is a new string. Returns 0,
 * ERR_NOT_FOUND when dev mode is off, ERR_INVALID for an empty user or
 * ERR_INTERNAL if signing fails.
 */
int
auth_dev_mint(struct auth *a, const char *user, const char *email, const char *name,
              const char *const *groups, size_t n_groups, int64_t ttl_s, char **token)
{
    json_t *claims = NULL, *garr = NULL;
    jwt_t *j = NULL;
    char *grants = NULL, *out = NULL;
    int64_t now = time_now();
    size_t i;
    int r = ERR_INTERNAL;

    *token = NULL;
    if (a == NULL || a->dev == NULL) {
        r = ERR_NOT_FOUND;
        goto out;
    }
    if (user == NULL || *user == '\0' || ttl_s > DEV_MAX_TTL_S || ttl_s < -DEV_MAX_TTL_S) {
        r = ERR_INVALID;
        goto out;
    }
    garr = json_array();
    for (i = 0; i < n_groups && i < AUTH_MAX_GROUPS; i++)
        json_array_append_new(garr, json_string(groups[i]));
    claims = json_pack("{s:s, s:s, s:s, s:s, s:I, s:I, s:O}", "iss", a->dev->iss, "aud",
                       DEV_AUDIENCE, "sub", user, "preferred_username", user, "iat",
                       (json_int_t)now, "exp", (json_int_t)(now + ttl_s), "groups", garr);
    if (claims == NULL) { /* a group or the user was not valid UTF-8 */
        r = ERR_INVALID;
        goto out;
    }
    if (email != NULL && *email != '\0')
        json_object_set_new(claims, "email", json_string(email));
    if (name != NULL && *name != '\0')
        json_object_set_new(claims, "name", json_string(name));
    grants = json_dumps(claims, JSON_COMPACT);
    if (grants == NULL || jwt_new(&j) != 0 ||
        jwt_set_alg(j, JWT_ALG_ES256, (const unsigned char *)a->dev_priv_pem,
                    (int)a->dev_priv_len) != 0 ||
        jwt_add_header(j, "kid", a->dev_kid) != 0 || jwt_add_grants_json(j, grants) != 0 ||
        (out = jwt_encode_str(j)) == NULL) {
        log_warn("dev token: signing failed");
        goto out;
    }
    *token = xstrdup(out);
    r = 0;
out:
    if (out != NULL) {
        explicit_bzero(out, strlen(out));
        free(out);
    }
    jwt_free(j);
    free(grants);
    json_decref(garr);
    json_decref(claims);
    return r;
}

/* The dev issuer's "iss", or NULL when dev mode is off. Borrowed from a. */
const char *
auth_dev_issuer(const struct auth *a)
{
    return a != NULL && a->dev != NULL ? a->dev->iss : NULL;
}
