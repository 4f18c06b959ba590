/*
 * auth.c end to end, without the HTTP server: the dev issuer (mint, verify,
 * and hand-crafted attacks: alg none, HS256 with the public key as the HMAC
 * secret, tampering, expiry, unknown kid, oversize, garbage), the result
 * cache, and a real JWKS issuer served from a small loopback HTTP thread
 * (RS256, PS256, ES256, ES384, key rotation with the 30 s refetch limit,
 * fetch failures, agent-name templates and require rules).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <jansson.h>
#include <jwt.h>
#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>

#include "auth.h"
#include "config.h"
#include "err.h"
#include "log.h"
#include "util.h"
#include "xmalloc.h"

/* ------------------------------------------------------------------------ */
/* Token crafting                                                           */
/* ------------------------------------------------------------------------ */

static char *
b64s(const char *s)
{
    return b64url_encode((const unsigned char *)s, strlen(s));
}

/* Signs input with pk for alg (RS*, PS256, ES*); returns the base64url signature. */
static char *
sign_b64(EVP_PKEY *pk, const char *alg, const char *input)
{
    const EVP_MD *md = strstr(alg, "384")   ? EVP_sha384()
                       : strstr(alg, "512") ? EVP_sha512()
                                            : EVP_sha256();
    EVP_MD_CTX *m = EVP_MD_CTX_new();
    EVP_PKEY_CTX *pc = NULL;
    unsigned char *sig = NULL, raw[2 * 66];
    size_t sig_len = 0;
    char *out = NULL;

    assert_int_equal(EVP_DigestSignInit(m, &pc, md, NULL, pk), 1);
    if (alg[0] == 'P') {
        assert_int_equal(EVP_PKEY_CTX_set_rsa_padding(pc, RSA_PKCS1_PSS_PADDING), 1);
        assert_int_equal(EVP_PKEY_CTX_set_rsa_pss_saltlen(pc, RSA_PSS_SALTLEN_DIGEST), 1);
    }
    assert_int_equal(EVP_DigestSign(m, NULL, &sig_len, (const unsigned char *)input, strlen(input)),
                     1);
    sig = xmalloc(sig_len);
    assert_int_equal(EVP_DigestSign(m, sig, &sig_len, (const unsigned char *)input, strlen(input)),
                     1);
    if (EVP_PKEY_is_a(pk, "EC")) {
        /* DER -> JOSE r || s, each padded to the curve size */
        const unsigned char *p = sig;
        ECDSA_SIG *es = d2i_ECDSA_SIG(NULL, &p, (long)sig_len);
        int half = (EVP_PKEY_get_bits(pk) + 7) / 8;

        assert_non_null(es);
        BN_bn2binpad(ECDSA_SIG_get0_r(es), raw, half);
        BN_bn2binpad(ECDSA_SIG_get0_s(es), raw + half, half);
        ECDSA_SIG_free(es);
        out = b64url_encode(raw, 2 * (size_t)half);
    } else {
        out = b64url_encode(sig, sig_len);
    }
    free(sig);
    EVP_MD_CTX_free(m);
    return out;
}

/*
 * "b64(hdr).b64(payload).sig": signed with pk for sign_alg, with HMAC-SHA256
 * under secret when sign_alg is "HS256", or with an empty signature when
 * sign_alg is NULL. New string.
 */
static char *
craft(const char *hdr, const char *payload, EVP_PKEY *pk, const char *sign_alg, const void *secret,
      size_t secret_len)
{
    char *h = b64s(hdr), *p = b64s(payload), *input = xasprintf("%s.%s", h, p), *sig = NULL;
    char *tok = NULL;

    if (sign_alg == NULL) {
        sig = xstrdup("");
    } else if (strcmp(sign_alg, "HS256") == 0) {
        unsigned char mac[EVP_MAX_MD_SIZE];
        unsigned int mac_len = 0;

        HMAC(EVP_sha256(), secret, (int)secret_len, (const unsigned char *)input, strlen(input),
             mac, &mac_len);
        sig = b64url_encode(mac, mac_len);
    } else {
        sig = sign_b64(pk, sign_alg, input);
    }
    tok = xasprintf("%s.%s", input, sig);
    free(h);
    free(p);
    free(input);
    free(sig);
    return tok;
}

/* A standard payload for iss/aud, exp = now + ttl. New string. */
static char *
payload_std(const char *iss, const char *aud, const char *sub, int64_t now, int64_t ttl)
{
    return xasprintf("{\"iss\":\"%s\",\"aud\":\"%s\",\"sub\":\"%s\",\"preferred_username\":\"%s\","
                     "\"groups\":[\"dev\"],\"iat\":%lld,\"exp\":%lld}",
                     iss, aud, sub, sub, (long long)now, (long long)(now + ttl));
}

/* The kid in a token's header. New string. */
static char *
header_kid(const char *tok)
{
    unsigned char *raw = NULL;
    size_t raw_len = 0;
    json_t *h = NULL;
    char *kid = NULL;

    assert_int_equal(b64url_decode(tok, (size_t)(strchr(tok, '.') - tok), &raw, &raw_len), 0);
    h = json_loadb((const char *)raw, raw_len, 0, NULL);
    assert_non_null(json_string_value(json_object_get(h, "kid")));
    kid = xstrdup(json_string_value(json_object_get(h, "kid")));
    json_decref(h);
    free(raw);
    return kid;
}

static char *
pubkey_pem(EVP_PKEY *pk, size_t *len)
{
    BIO *bio = BIO_new(BIO_s_mem());
    char *mem = NULL, *out = NULL;
    long n;

    assert_int_equal(PEM_write_bio_PUBKEY(bio, pk), 1);
    n = BIO_get_mem_data(bio, &mem);
    out = xstrndup(mem, (size_t)n);
    *len = (size_t)n;
    BIO_free(bio);
    return out;
}

/* ------------------------------------------------------------------------ */
/* Dev issuer                                                               */
/* ------------------------------------------------------------------------ */

struct dev_fx {
    char dir[64];
    char *data_dir;
    struct config cfg;
    struct auth *a;
    EVP_PKEY *priv; /* the dev key as read back from disk */
    char *kid;
    char *iss;
};

static struct auth *
dev_auth(struct dev_fx *fx)
{
    struct auth *a = NULL;
    char err[256];

    assert_int_equal(auth_new(&fx->cfg, &a, err, sizeof(err)), 0);
    return a;
}

static int
dev_setup(void **state)
{
    struct dev_fx *fx = xcalloc(1, sizeof(*fx));
    char *path = NULL, *tok = NULL;
    FILE *f = NULL;

    snprintf(fx->dir, sizeof(fx->dir), "/tmp/airlock-test-auth-XXXXXX");
    assert_non_null(mkdtemp(fx->dir));
    fx->data_dir = xasprintf("%s/data/nested", fx->dir); /* created by auth_new */
    fx->cfg.dev = 1;
    fx->cfg.listen = "127.0.0.1:8080";
    fx->cfg.data_dir = fx->data_dir;
    fx->a = dev_auth(fx);
    fx->iss = xstrdup(auth_dev_issuer(fx->a));

    path = xasprintf("%s/dev-signing-key.pem", fx->data_dir);
    assert_non_null(f = fopen(path, "r"));
    assert_non_null(fx->priv = PEM_read_PrivateKey(f, NULL, NULL, NULL));
    fclose(f);
    assert_int_equal(auth_dev_mint(fx->a, "x", NULL, NULL, NULL, 0, 60, &tok), 0);
    fx->kid = header_kid(tok);
    free(tok);
    free(path);
    *state = fx;
    return 0;
}

static int
dev_teardown(void **state)
{
    struct dev_fx *fx = *state;
    char *cmd = xasprintf("rm -rf '%s'", fx->dir);

    auth_free(fx->a);
    EVP_PKEY_free(fx->priv);
    assert_int_equal(system(cmd), 0);
    free(cmd);
    free(fx->kid);
    free(fx->iss);
    free(fx->data_dir);
    free(fx);
    return 0;
}

static void
test_dev_mint_verify(void **state)
{
    struct dev_fx *fx = *state;
    const char *groups[] = {"sre", "developers"};
    struct identity id, id2, cp;
    struct auth *a2 = NULL;
    const char *why = NULL;
    char *tok = NULL, *path = NULL;
    int64_t now = time_now();
    struct stat st;

    assert_string_equal(fx->iss, "http://127.0.0.1:8080/dev");
    path = xasprintf("%s/dev-signing-key.pem", fx->data_dir);
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0600);

    assert_int_equal(
        auth_dev_mint(fx->a, "alice", "alice@example.com", "Alice A", groups, 2, 3600, &tok), 0);
    assert_int_equal(auth_verify(fx->a, tok, now, &id, &why), 0);
    assert_null(why);
    assert_string_equal(id.issuer_name, "dev");
    assert_int_equal(id.is_agent, 0);
    assert_string_equal(id.subject, "alice");
    assert_string_equal(id.user, "alice");
    assert_string_equal(id.email, "alice@example.com");
    assert_string_equal(id.display_name, "Alice A");
    assert_int_equal(id.n_groups, 2);
    assert_string_equal(id.groups[0], "sre");
    assert_string_equal(id.groups[1], "developers");
    assert_null(id.agent_name);
    assert_null(id.owner);
    assert_true(id.expires_at >= now + 3600 && id.expires_at <= now + 3610);

    /* The second call is a cache hit and must give the same answer. */
    assert_int_equal(auth_verify(fx->a, tok, now, &id2, &why), 0);
    assert_string_equal(id2.user, "alice");
    assert_int_equal(id2.n_groups, 2);
    assert_int_equal(id2.expires_at, id.expires_at);
    identity_copy(&cp, &id2);
    assert_string_equal(cp.groups[1], "developers");
    identity_cleanup(&cp);
    identity_cleanup(&id2);

    /* Cache entries never outlive exp, and the time checks run on every hit. */
    assert_int_equal(auth_verify(fx->a, tok, id.expires_at + 59, &id2, &why), 0); /* leeway */
    identity_cleanup(&id2);
    assert_int_equal(auth_verify(fx->a, tok, id.expires_at + 60, &id2, &why), ERR_AUTH);
    assert_string_equal(why, "token expired");
    assert_null(id2.user);
    assert_int_equal(auth_verify(fx->a, tok, now, &id2, &why), 0);
    identity_cleanup(&id2);

    /* A restart reads the same key: same kid, old tokens still verify. */
    a2 = dev_auth(fx);
    assert_int_equal(auth_verify(a2, tok, now, &id2, &why), 0);
    assert_string_equal(id2.user, "alice");
    identity_cleanup(&id2);
    auth_free(a2);

    identity_cleanup(&id);
    identity_cleanup(&id); /* twice is harmless */
    free(tok);
    free(path);
}

/* Signed with the dev key, with chosen header and payload: each passes or fails as listed. */
static void
test_dev_crafted(void **state)
{
    struct dev_fx *fx = *state;
    int64_t now = time_now();
    char *hdr_ok = xasprintf("{\"alg\":\"ES256\",\"typ\":\"JWT\",\"kid\":\"%s\"}", fx->kid);
    char *hdr_atjwt = xasprintf("{\"alg\":\"ES256\",\"typ\":\"at+jwt\",\"kid\":\"%s\"}", fx->kid);
    char *hdr_crit =
        xasprintf("{\"alg\":\"ES256\",\"kid\":\"%s\",\"crit\":[\"exp\"],\"exp\":1}", fx->kid);
    char *hdr_typ =
        xasprintf("{\"alg\":\"ES256\",\"typ\":\"secevent+jwt\",\"kid\":\"%s\"}", fx->kid);
    char *hdr_es384 = xasprintf("{\"alg\":\"ES384\",\"kid\":\"%s\"}", fx->kid);
    char *p_ok = payload_std(fx->iss, "airlock", "bob", now, 600);
    char *p_aud = payload_std(fx->iss, "other", "bob", now, 600);
    char *p_iss = payload_std("https://evil.example.com/dev", "airlock", "bob", now, 600);
    char *p_noexp = xasprintf("{\"iss\":\"%s\",\"aud\":\"airlock\",\"sub\":\"bob\"}", fx->iss);
    char *p_nosub = xasprintf("{\"iss\":\"%s\",\"aud\":\"airlock\",\"exp\":%lld}", fx->iss,
                              (long long)now + 600);
    char *p_nbf = xasprintf("{\"iss\":\"%s\",\"aud\":\"airlock\",\"sub\":\"bob\",\"exp\":%lld,"
                            "\"nbf\":%lld}",
                            fx->iss, (long long)now + 7200, (long long)now + 3600);
    char *p_dup = xasprintf("{\"iss\":\"%s\",\"aud\":\"airlock\",\"sub\":\"bob\",\"sub\":\"root\","
                            "\"exp\":%lld}",
                            fx->iss, (long long)now + 600);
    char *p_user = xasprintf("{\"iss\":\"%s\",\"aud\":[\"x\",\"airlock\"],\"sub\":\"u-123\","
                             "\"groups\":\"solo\",\"exp\":%lld}",
                             fx->iss, (long long)now + 600);
    const struct {
        const char *name;
        const char *hdr, *payload;
        int want_r;
        const char *want_why;
        const char *want_user;
    } cases[] = {
        {"valid", hdr_ok, p_ok, 0, NULL, "bob"},
        {"typ at+jwt (libjwt 1.10 would refuse it)", hdr_atjwt, p_ok, 0, NULL, "bob"},
        {"no kid, single key", "{\"alg\":\"ES256\"}", p_ok, 0, NULL, "bob"},
        {"user falls back to sub, aud array, groups string", hdr_ok, p_user, 0, NULL, "u-123"},
        {"unknown kid", "{\"alg\":\"ES256\",\"kid\":\"nope\"}", p_ok, ERR_AUTH,
         "unknown signing key", NULL},
        {"wrong audience", hdr_ok, p_aud, ERR_AUTH, "wrong audience", NULL},
        {"unknown issuer", hdr_ok, p_iss, ERR_AUTH, "unknown issuer", NULL},
        {"no exp", hdr_ok, p_noexp, ERR_AUTH, "token has no exp", NULL},
        {"no sub", hdr_ok, p_nosub, ERR_AUTH, "token has no sub", NULL},
        {"not yet valid", hdr_ok, p_nbf, ERR_AUTH, "token not yet valid", NULL},
        {"duplicate claim", hdr_ok, p_dup, ERR_AUTH, "malformed token", NULL},
        {"crit", hdr_crit, p_ok, ERR_AUTH, "unsupported critical header", NULL},
        {"typ other", hdr_typ, p_ok, ERR_AUTH, "unsupported token type", NULL},
        {"ES384 header on a P-256 key", hdr_es384, p_ok, ERR_AUTH,
         "signing key does not match algorithm", NULL},
    };
    size_t i;
    (void)state;

    for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char *tok = craft(cases[i].hdr, cases[i].payload, fx->priv, "ES256", NULL, 0);
        struct identity id;
        const char *why = NULL;
        int r = auth_verify(fx->a, tok, now, &id, &why);

        if (r != cases[i].want_r)
            fail_msg("case \"%s\": r = %d, want %d (%s)", cases[i].name, r, cases[i].want_r,
                     why != NULL ? why : "-");
        if (cases[i].want_why != NULL && strcmp(why, cases[i].want_why) != 0)
            fail_msg("case \"%s\": why \"%s\", want \"%s\"", cases[i].name, why, cases[i].want_why);
        if (cases[i].want_user != NULL)
            assert_string_equal(id.user, cases[i].want_user);
        if (i == 3) {
            assert_int_equal(id.n_groups, 1);
            assert_string_equal(id.groups[0], "solo");
        }
        identity_cleanup(&id);
        free(tok);
    }
    free(hdr_ok);
    free(hdr_atjwt);
    free(hdr_crit);
    free(hdr_typ);
    free(hdr_es384);
    free(p_ok);
    free(p_aud);
    free(p_iss);
    free(p_noexp);
    free(p_nosub);
    free(p_nbf);
    free(p_dup);
    free(p_user);
}

static void
expect_refused(struct auth *a, const char *tok, int64_t now, const char *what, const char *why_want)
{
    struct identity id;
    const char *why = NULL;
    int r = auth_verify(a, tok, now, &id, &why);

    if (r != ERR_AUTH)
        fail_msg("%s: r = %d, want ERR_AUTH", what, r);
    assert_non_null(why);
    if (why_want != NULL && strcmp(why, why_want) != 0)
        fail_msg("%s: why \"%s\", want \"%s\"", what, why, why_want);
    assert_null(id.user);
}

static void
test_dev_attacks(void **state)
{
    struct dev_fx *fx = *state;
    int64_t now = time_now();
    char *hdr_none = xasprintf("{\"alg\":\"none\",\"typ\":\"JWT\",\"kid\":\"%s\"}", fx->kid);
    char *hdr_hs = xasprintf("{\"alg\":\"HS256\",\"typ\":\"JWT\",\"kid\":\"%s\"}", fx->kid);
    char *hdr_es = xasprintf("{\"alg\":\"ES256\",\"typ\":\"JWT\",\"kid\":\"%s\"}", fx->kid);
    char *hdr_rs = xasprintf("{\"alg\":\"RS256\",\"typ\":\"JWT\",\"kid\":\"%s\"}", fx->kid);
    char *hdr_ps = xasprintf("{\"alg\":\"PS256\",\"typ\":\"JWT\",\"kid\":\"%s\"}", fx->kid);
    char *p_ok = payload_std(fx->iss, "airlock", "mallory", now, 600);
    char *p_admin = payload_std(fx->iss, "airlock", "root", now, 600);
    size_t pem_len = 0;
    char *pem = pubkey_pem(fx->priv, &pem_len);
    char *tok = NULL, *good = NULL, *forged = NULL, *big = NULL, *t2 = NULL;
    const char *dot1 = NULL, *dot2 = NULL;
    EVP_PKEY *other = NULL;
    jwt_t *j = NULL;

    /* alg none: empty signature, and with a signature attached */
    tok = craft(hdr_none, p_ok, NULL, NULL, NULL, 0);
    expect_refused(fx->a, tok, now, "alg none, empty signature", NULL);
    free(tok);
    tok = xasprintf("%s", "eyJhbGciOiJub25lIn0.eyJzdWIiOiJ4In0");
    expect_refused(fx->a, tok, now, "alg none, two segments", "malformed token");
    free(tok);
    tok = craft("{\"alg\":\"none\"}", p_ok, fx->priv, "ES256", NULL, 0);
    expect_refused(fx->a, tok, now, "alg none with a signature", "unsupported algorithm");
    free(tok);

    /*
     * HS256 signed with the dev public key's PEM as the HMAC secret. libjwt
     * 1.10 accepts this token when handed that PEM as the key (LIBS.md 3);
     * checking that here proves the token is a real confusion attack.
     */
    tok = craft(hdr_hs, p_ok, NULL, "HS256", pem, pem_len);
    assert_int_equal(jwt_decode(&j, tok, (const unsigned char *)pem, (int)pem_len), 0);
    assert_int_equal(jwt_get_alg(j), JWT_ALG_HS256);
    jwt_free(j);
    expect_refused(fx->a, tok, now, "HS256 with the public PEM as secret", "unsupported algorithm");
    free(tok);
    /* ... and the same MAC under a header that claims ES256 */
    tok = craft(hdr_es, p_ok, NULL, "HS256", pem, pem_len);
    expect_refused(fx->a, tok, now, "HMAC under an ES256 header", "signature invalid");
    free(tok);

    /* RSA algorithms against the EC key */
    tok = craft(hdr_rs, p_ok, fx->priv, "ES256", NULL, 0);
    expect_refused(fx->a, tok, now, "RS256 header, EC key", "signing key does not match algorithm");
    free(tok);
    tok = craft(hdr_ps, p_ok, fx->priv, "ES256", NULL, 0);
    expect_refused(fx->a, tok, now, "PS256 header, EC key", "signing key does not match algorithm");
    free(tok);

    /* tampered payload: a good token with its payload swapped */
    good = craft(hdr_es, p_ok, fx->priv, "ES256", NULL, 0);
    dot1 = strchr(good, '.');
    dot2 = strchr(dot1 + 1, '.');
    t2 = b64s(p_admin);
    forged = xasprintf("%.*s.%s%s", (int)(dot1 - good), good, t2, dot2);
    expect_refused(fx->a, forged, now, "tampered payload", "signature invalid");
    free(forged);
    free(t2);
    /* truncated and bit-flipped signatures */
    forged = xstrndup(good, strlen(good) - 4);
    expect_refused(fx->a, forged, now, "truncated signature", "signature invalid");
    forged[strlen(forged) - 2] = forged[strlen(forged) - 2] == 'A' ? 'B' : 'A';
    expect_refused(fx->a, forged, now, "flipped signature", "signature invalid");
    free(forged);

    /* signed by another P-256 key under the dev kid */
    other = EVP_EC_gen("P-256");
    tok = craft(hdr_es, p_ok, other, "ES256", NULL, 0);
    expect_refused(fx->a, tok, now, "foreign key, dev kid", "signature invalid");
    free(tok);
    EVP_PKEY_free(other);

    /* expired: minted with a negative ttl; inside the leeway it still passes */
    assert_int_equal(auth_dev_mint(fx->a, "old", NULL, NULL, NULL, 0, -3600, &tok), 0);
    expect_refused(fx->a, tok, time_now(), "expired", "token expired");
    free(tok);
    {
        struct identity id;
        const char *why = NULL;

        assert_int_equal(auth_dev_mint(fx->a, "late", NULL, NULL, NULL, 0, -30, &tok), 0);
        assert_int_equal(auth_verify(fx->a, tok, time_now(), &id, &why), 0);
        identity_cleanup(&id);
        free(tok);
    }

    /* unknown kid, properly signed */
    tok =
        craft("{\"alg\":\"ES256\",\"kid\":\"AAAAAAAAAAAAAAAA\"}", p_ok, fx->priv, "ES256", NULL, 0);
    expect_refused(fx->a, tok, now, "unknown kid", "unknown signing key");
    free(tok);

    /* over 16 KiB: refused unread, even if otherwise valid */
    big = xmalloc(AUTH_MAX_TOKEN + 2);
    memset(big, 'A', AUTH_MAX_TOKEN + 1);
    big[AUTH_MAX_TOKEN + 1] = '\0';
    expect_refused(fx->a, big, now, "oversize", "token too large");
    free(big);
    {
        char *pad = xmalloc(AUTH_MAX_TOKEN);
        char *p_big = NULL;

        memset(pad, 'x', AUTH_MAX_TOKEN - 1);
        pad[AUTH_MAX_TOKEN - 1] = '\0';
        p_big = xasprintf("{\"iss\":\"%s\",\"aud\":\"airlock\",\"sub\":\"a\",\"exp\":%lld,"
                          "\"pad\":\"%s\"}",
                          fx->iss, (long long)now + 600, pad);
        tok = craft(hdr_es, p_big, fx->priv, "ES256", NULL, 0);
        expect_refused(fx->a, tok, now, "signed but oversize", "token too large");
        free(tok);
        free(p_big);
        free(pad);
    }

    /* garbage */
    {
        static const char *const junk[] = {
            "",
            "abc",
            "a.b",
            "a.b.c.d",
            "...",
            "!!!.@@@.###",
            "eyJhbGciOiJFUzI1NiJ9..c2ln",
            "bm90IGpzb24.eyJzdWIiOiJ4In0.c2ln",  /* header not JSON */
            "WyJFUzI1NiJd.eyJzdWIiOiJ4In0.c2ln", /* header is an array */
            "eyJhbGciOiJFUzI1NiJ9.WzFd.c2ln",    /* payload is an array */
            "eyJhbGciOiJFUzI1NiJ9.eyJzdWIiOiJ4In0.c2ln\n",
            "eyJhbGciOiJFUzI1NiJ9.eyJzdWIiOiJ4In0.c2ln=x",
        };
        size_t i;

        for (i = 0; i < sizeof(junk) / sizeof(junk[0]); i++)
            expect_refused(fx->a, junk[i], now, junk[i], NULL);
        expect_refused(fx->a, NULL, now, "NULL", "missing token");
    }

    free(good);
    free(pem);
    free(hdr_none);
    free(hdr_hs);
    free(hdr_es);
    free(hdr_rs);
    free(hdr_ps);
    free(p_ok);
    free(p_admin);
}

static void
test_dev_off(void **state)
{
    struct dev_fx *fx = *state;
    struct config cfg = {0};
    struct auth *a = NULL;
    struct identity id;
    const char *why = NULL;
    char err[256], *tok = NULL;

    cfg.listen = "127.0.0.1:8080";
    assert_int_equal(auth_new(&cfg, &a, err, sizeof(err)), 0);
    assert_null(auth_dev_issuer(a));
    assert_int_equal(auth_dev_mint(a, "alice", NULL, NULL, NULL, 0, 60, &tok), ERR_NOT_FOUND);
    assert_null(tok);
    /* a dev token from another server is just an unknown issuer here */
    assert_int_equal(auth_dev_mint(fx->a, "alice", NULL, NULL, NULL, 0, 60, &tok), 0);
    assert_int_equal(auth_verify(a, tok, time_now(), &id, &why), ERR_AUTH);
    assert_string_equal(why, "unknown issuer");
    free(tok);
    auth_free(a);

    /* public_url wins over listen, trailing slash dropped */
    cfg.dev = 1;
    cfg.public_url = "https://airlock.example.com/";
    cfg.data_dir = fx->data_dir;
    assert_int_equal(auth_new(&cfg, &a, err, sizeof(err)), 0);
    assert_string_equal(auth_dev_issuer(a), "https://airlock.example.com/dev");
    auth_free(a);

    /* an unreadable key is a configuration error */
    cfg.data_dir = "/proc/self/nonexistent/dir";
    assert_int_not_equal(auth_new(&cfg, &a, err, sizeof(err)), 0);
    assert_null(a);
    assert_true(strlen(err) > 0);
}

/* ------------------------------------------------------------------------ */
/* A JWKS issuer on loopback                                                */
/* ------------------------------------------------------------------------ */

struct idp {
    int fd;
    int port;
    pthread_t thr;
    pthread_mutex_t mu;
    int stop;
    int fail_jwks; /* answer /jwks with 500 */
    int n_jwks;    /* GET /jwks served */
    char *jwks;    /* current JWKS text */
};

static void
http_reply(int c, int status, const char *body)
{
    char *resp = xasprintf("HTTP/1.1 %d X\r\nContent-Type: application/json\r\n"
                           "Content-Length: %zu\r\nConnection: close\r\n\r\n%s",
                           status, strlen(body), body);
    ssize_t n = write(c, resp, strlen(resp));

    (void)n;
    free(resp);
}

static void *
idp_main(void *arg)
{
    struct idp *idp = arg;

    for (;;) {
        struct pollfd pfd = {.fd = idp->fd, .events = POLLIN};
        char req[4096], path[512], *body = NULL;
        size_t got = 0;
        int c, stop;

        pthread_mutex_lock(&idp->mu);
        stop = idp->stop;
        pthread_mutex_unlock(&idp->mu);
        if (stop)
            break;
        if (poll(&pfd, 1, 50) <= 0)
            continue;
        if ((c = accept(idp->fd, NULL, NULL)) < 0)
            continue;
        while (got < sizeof(req) - 1) {
            ssize_t n = read(c, req + got, sizeof(req) - 1 - got);

            if (n <= 0)
                break;
            got += (size_t)n;
            req[got] = '\0';
            if (strstr(req, "\r\n\r\n") != NULL)
                break;
        }
        req[got] = '\0';
        if (strncmp(req, "GET ", 4) != 0 || strcspn(req + 4, " ") >= sizeof(path)) {
            close(c);
            continue;
        }
        memcpy(path, req + 4, strcspn(req + 4, " "));
        path[strcspn(req + 4, " ")] = '\0';
        pthread_mutex_lock(&idp->mu);
        if (strstr(path, "/.well-known/openid-configuration") != NULL) {
            int base = (int)(strstr(path, "/.well-known/") - path);

            body = xasprintf("{\"issuer\":\"http://127.0.0.1:%d%.*s\","
                             "\"jwks_uri\":\"http://127.0.0.1:%d/jwks\"}",
                             idp->port, base, path, idp->port);
            http_reply(c, 200, body);
        } else if (strcmp(path, "/jwks") == 0) {
            idp->n_jwks++;
            http_reply(c, idp->fail_jwks ? 500 : 200, idp->fail_jwks ? "{}" : idp->jwks);
        } else {
            http_reply(c, 404, "{}");
        }
        pthread_mutex_unlock(&idp->mu);
        free(body);
        close(c);
    }
    return NULL;
}

static char *
bn_b64(const BIGNUM *bn, int pad)
{
    unsigned char buf[1024];
    int n = pad > 0 ? BN_bn2binpad(bn, buf, pad) : BN_bn2bin(bn, buf);

    return b64url_encode(buf, (size_t)n);
}

/* A JWK (JSON text) for the public half of pk. New string. */
static char *
jwk_of(EVP_PKEY *pk, const char *kid, const char *alg)
{
    BIGNUM *a = NULL, *b = NULL;
    char *x = NULL, *y = NULL, *out = NULL;
    char *alg_part = alg != NULL ? xasprintf(",\"alg\":\"%s\"", alg) : xstrdup("");

    if (EVP_PKEY_is_a(pk, "RSA")) {
        EVP_PKEY_get_bn_param(pk, OSSL_PKEY_PARAM_RSA_N, &a);
        EVP_PKEY_get_bn_param(pk, OSSL_PKEY_PARAM_RSA_E, &b);
        x = bn_b64(a, 0);
        y = bn_b64(b, 0);
        out = xasprintf(
            "{\"kty\":\"RSA\",\"use\":\"sig\",\"kid\":\"%s\"%s,\"n\":\"%s\",\"e\":\"%s\"}", kid,
            alg_part, x, y);
    } else {
        int half = (EVP_PKEY_get_bits(pk) + 7) / 8;

        EVP_PKEY_get_bn_param(pk, OSSL_PKEY_PARAM_EC_PUB_X, &a);
        EVP_PKEY_get_bn_param(pk, OSSL_PKEY_PARAM_EC_PUB_Y, &b);
        x = bn_b64(a, half);
        y = bn_b64(b, half);
        out =
            xasprintf("{\"kty\":\"EC\",\"kid\":\"%s\"%s,\"crv\":\"%s\",\"x\":\"%s\",\"y\":\"%s\"}",
                      kid, alg_part, half == 32 ? "P-256" : "P-384", x, y);
    }
    BN_free(a);
    BN_free(b);
    free(x);
    free(y);
    free(alg_part);
    return out;
}

struct idp_fx {
    struct idp idp;
    EVP_PKEY *r1, *r2, *small, *e256, *e384;
    char *iss, *iss_ci;
    struct issuer_cfg issuers[3];
    struct claim_rule rule;
    char *rule_globs[1];
    struct config cfg;
    struct auth *a;
};

static void
idp_set_jwks(struct idp_fx *fx, int with_r2)
{
    char *k1 = jwk_of(fx->r1, "r1", NULL), *k2 = jwk_of(fx->r2, "r2", "RS256");
    char *k3 = jwk_of(fx->small, "small", NULL), *k4 = jwk_of(fx->e256, "e256", "ES256");
    char *k5 = jwk_of(fx->e384, "e384", NULL);

    pthread_mutex_lock(&fx->idp.mu);
    free(fx->idp.jwks);
    fx->idp.jwks = xasprintf("{\"keys\":[%s,%s,%s,%s%s%s,"
                             "{\"kty\":\"oct\",\"kid\":\"h1\",\"k\":\"c2VjcmV0\"},"
                             "{\"kty\":\"RSA\",\"kid\":\"enc\",\"use\":\"enc\",\"n\":\"AQAB\","
                             "\"e\":\"AQAB\"}]}",
                             k1, k3, k4, k5, with_r2 ? "," : "", with_r2 ? k2 : "");
    pthread_mutex_unlock(&fx->idp.mu);
    free(k1);
    free(k2);
    free(k3);
    free(k4);
    free(k5);
}

static int
idp_jwks_count(struct idp_fx *fx)
{
    int n;

    pthread_mutex_lock(&fx->idp.mu);
    n = fx->idp.n_jwks;
    pthread_mutex_unlock(&fx->idp.mu);
    return n;
}

static int
idp_setup(void **state)
{
    struct idp_fx *fx = xcalloc(1, sizeof(*fx));
    struct sockaddr_in sa = {.sin_family = AF_INET};
    socklen_t sl = sizeof(sa);
    char err[256];

    fx->r1 = EVP_RSA_gen(2048);
    fx->r2 = EVP_RSA_gen(2048);
    fx->small = EVP_RSA_gen(1024);
    fx->e256 = EVP_EC_gen("P-256");
    fx->e384 = EVP_EC_gen("P-384");
    assert_true(fx->r1 && fx->r2 && fx->small && fx->e256 && fx->e384);

    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    fx->idp.fd = socket(AF_INET, SOCK_STREAM, 0);
    assert_int_equal(bind(fx->idp.fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
    assert_int_equal(listen(fx->idp.fd, 16), 0);
    assert_int_equal(getsockname(fx->idp.fd, (struct sockaddr *)&sa, &sl), 0);
    fx->idp.port = ntohs(sa.sin_port);
    pthread_mutex_init(&fx->idp.mu, NULL);
    idp_set_jwks(fx, 0);
    assert_int_equal(pthread_create(&fx->idp.thr, NULL, idp_main, &fx->idp), 0);

    fx->iss = xasprintf("http://127.0.0.1:%d", fx->idp.port);
    fx->iss_ci = xasprintf("http://127.0.0.1:%d/ci", fx->idp.port);
    fx->issuers[0].name = "corp";
    fx->issuers[0].issuer = fx->iss;
    fx->issuers[0].audience = "airlock";
    fx->issuers[0].kind = ISSUER_USER;

    fx->rule_globs[0] = "acme";
    fx->rule.claim = "repository_owner";
    fx->rule.globs.v = fx->rule_globs;
    fx->rule.globs.n = 1;
    fx->issuers[1].name = "github-actions";
    fx->issuers[1].issuer = fx->iss_ci;
    fx->issuers[1].audience = "airlock";
    fx->issuers[1].kind = ISSUER_AGENT;
    fx->issuers[1].agent_name = "gh/{repository}/{run_id}-{run_attempt}";
    fx->issuers[1].owner_claim = "actor";
    fx->issuers[1].require = &fx->rule;
    fx->issuers[1].n_require = 1;

    /* port 1 on loopback: connection refused at once */
    fx->issuers[2].name = "down";
    fx->issuers[2].issuer = "http://127.0.0.1:1";
    fx->issuers[2].audience = "airlock";

    fx->cfg.listen = "127.0.0.1:8080";
    fx->cfg.issuers = fx->issuers;
    fx->cfg.n_issuers = 3;
    assert_int_equal(auth_new(&fx->cfg, &fx->a, err, sizeof(err)), 0);
    *state = fx;
    return 0;
}

static int
idp_teardown(void **state)
{
    struct idp_fx *fx = *state;

    pthread_mutex_lock(&fx->idp.mu);
    fx->idp.stop = 1;
    pthread_mutex_unlock(&fx->idp.mu);
    pthread_join(fx->idp.thr, NULL);
    close(fx->idp.fd);
    pthread_mutex_destroy(&fx->idp.mu);
    auth_free(fx->a);
    free(fx->idp.jwks);
    EVP_PKEY_free(fx->r1);
    EVP_PKEY_free(fx->r2);
    EVP_PKEY_free(fx->small);
    EVP_PKEY_free(fx->e256);
    EVP_PKEY_free(fx->e384);
    free(fx->iss);
    free(fx->iss_ci);
    free(fx);
    return 0;
}

/* Signs payload with key under header {alg, kid[, typ]} and verifies it at now. */
static int
verify_with(struct idp_fx *fx, EVP_PKEY *key, const char *alg, const char *kid, const char *typ,
            const char *payload, int64_t now, struct identity *id, const char **why)
{
    char *hdr = typ != NULL
                    ? xasprintf("{\"alg\":\"%s\",\"kid\":\"%s\",\"typ\":\"%s\"}", alg, kid, typ)
                    : xasprintf("{\"alg\":\"%s\",\"kid\":\"%s\"}", alg, kid);
    char *tok = craft(hdr, payload, key, alg, NULL, 0);
    int r = auth_verify(fx->a, tok, now, id, why);

    free(hdr);
    free(tok);
    return r;
}

static void
test_jwks_issuer(void **state)
{
    struct idp_fx *fx = *state;
    int64_t now = time_now();
    char *p = xasprintf("{\"iss\":\"%s\",\"aud\":[\"airlock\"],\"sub\":\"1234\","
                        "\"preferred_username\":\"carol\",\"email\":\"carol@example.com\","
                        "\"email_verified\":true,"
                        "\"groups\":[\"sre\",7,\"ops\"],\"iat\":%lld,\"exp\":%lld}",
                        fx->iss, (long long)now, (long long)now + 3600);
    size_t pem_len = 0;
    char *pem = pubkey_pem(fx->r1, &pem_len), *tok = NULL;
    struct identity id;
    const char *why = NULL;

    /* RS256, first use: discovery + JWKS fetched once */
    assert_int_equal(verify_with(fx, fx->r1, "RS256", "r1", "at+jwt", p, now, &id, &why), 0);
    assert_string_equal(id.issuer_name, "corp");
    assert_string_equal(id.user, "carol");
    assert_string_equal(id.subject, "1234");
    assert_string_equal(id.email, "carol@example.com");
    assert_int_equal(id.n_groups, 2);
    assert_string_equal(id.groups[1], "ops");
    identity_cleanup(&id);
    assert_int_equal(idp_jwks_count(fx), 1);

    assert_int_equal(verify_with(fx, fx->r1, "RS384", "r1", NULL, p, now, &id, &why), 0);
    identity_cleanup(&id);
    assert_int_equal(verify_with(fx, fx->r1, "RS512", "r1", "JWT", p, now, &id, &why), 0);
    identity_cleanup(&id);
    assert_int_equal(verify_with(fx, fx->r1, "PS256", "r1", NULL, p, now, &id, &why), 0);
    identity_cleanup(&id);
    assert_int_equal(verify_with(fx, fx->e256, "ES256", "e256", NULL, p, now, &id, &why), 0);
    identity_cleanup(&id);
    assert_int_equal(verify_with(fx, fx->e384, "ES384", "e384", NULL, p, now, &id, &why), 0);
    identity_cleanup(&id);

    /* the JWK says ES256; an ES384 header under that kid must not use it */
    assert_int_equal(verify_with(fx, fx->e384, "ES384", "e256", NULL, p, now, &id, &why), ERR_AUTH);
    assert_string_equal(why, "signing key does not match algorithm");
    /* an RS256 signature presented as PS256 */
    {
        char *hdr = xasprintf("{\"alg\":\"PS256\",\"kid\":\"r1\"}");
        char *t = craft(hdr, p, fx->r1, "RS256", NULL, 0);

        assert_int_equal(auth_verify(fx->a, t, now, &id, &why), ERR_AUTH);
        assert_string_equal(why, "signature invalid");
        free(t);
        free(hdr);
    }
    /* RSA key under 2048 bits: skipped when the JWKS was read */
    assert_int_equal(verify_with(fx, fx->small, "RS256", "small", NULL, p, now, &id, &why),
                     ERR_AUTH);
    assert_string_equal(why, "unknown signing key");
    /* HS256 with the RSA public PEM as the secret, and with the JWKS "oct" key */
    tok = craft("{\"alg\":\"HS256\",\"kid\":\"r1\"}", p, NULL, "HS256", pem, pem_len);
    assert_int_equal(auth_verify(fx->a, tok, now, &id, &why), ERR_AUTH);
    assert_string_equal(why, "unsupported algorithm");
    free(tok);
    tok = craft("{\"alg\":\"HS256\",\"kid\":\"h1\"}", p, NULL, "HS256", "secret", 6);
    assert_int_equal(auth_verify(fx->a, tok, now, &id, &why), ERR_AUTH);
    free(tok);
    /* no kid with several keys in the set */
    tok = craft("{\"alg\":\"RS256\"}", p, fx->r1, "RS256", NULL, 0);
    assert_int_equal(auth_verify(fx->a, tok, now, &id, &why), ERR_AUTH);
    assert_string_equal(why, "unknown signing key");
    free(tok);
    /* none of the above refetched: the 30 s limit holds */
    assert_int_equal(idp_jwks_count(fx), 1);

    /* rotation: r2 appears; not fetched within 30 s, fetched after */
    idp_set_jwks(fx, 1);
    assert_int_equal(verify_with(fx, fx->r2, "RS256", "r2", NULL, p, now + 10, &id, &why),
                     ERR_AUTH);
    assert_string_equal(why, "unknown signing key");
    assert_int_equal(idp_jwks_count(fx), 1);
    assert_int_equal(verify_with(fx, fx->r2, "RS256", "r2", NULL, p, now + 31, &id, &why), 0);
    identity_cleanup(&id);
    assert_int_equal(idp_jwks_count(fx), 2);

    /* the provider fails: old keys stay, the refetch is counted once */
    pthread_mutex_lock(&fx->idp.mu);
    fx->idp.fail_jwks = 1;
    pthread_mutex_unlock(&fx->idp.mu);
    assert_int_equal(verify_with(fx, fx->r1, "RS256", "r3", NULL, p, now + 70, &id, &why),
                     ERR_AUTH);
    assert_string_equal(why, "unknown signing key");
    assert_int_equal(idp_jwks_count(fx), 3);
    assert_int_equal(verify_with(fx, fx->r1, "RS256", "r1", NULL, p, now + 71, &id, &why), 0);
    identity_cleanup(&id);
    assert_int_equal(verify_with(fx, fx->r2, "RS256", "r2", NULL, p, now + 72, &id, &why), 0);
    identity_cleanup(&id);
    assert_int_equal(idp_jwks_count(fx), 3);

    free(pem);
    free(p);
}

/* A corp token for user with extra claims (JSON members, may be empty), verified at now. */
static int
verify_claims(struct idp_fx *fx, const char *user_json, const char *extra, int64_t now,
              struct identity *id, const char **why)
{
    char *p = xasprintf("{\"iss\":\"%s\",\"aud\":\"airlock\",\"sub\":\"s-1\","
                        "\"preferred_username\":%s%s%s,\"iat\":%lld,\"exp\":%lld}",
                        fx->iss, user_json, *extra ? "," : "", extra, (long long)now,
                        (long long)now + 600);
    int r = verify_with(fx, fx->r1, "RS256", "r1", NULL, p, now, id, why);

    free(p);
    return r;
}

/*
 * Identity claims: an email identifies only when valid and verified (or the
 * issuer is trustEmail); the identity carries the issuer's domain; claims
 * with control characters are refused for people issuers.
 */
static void
test_jwks_identity_claims(void **state)
{
    static const struct {
        const char *user, *extra;
        int want_r;
        const char *want_email;
    } cases[] = {
        {"\"mallory\"", "\"email\":\"alice@example.com\"", 0, NULL},
        {"\"mallory\"", "\"email\":\"alice@example.com\",\"email_verified\":false", 0, NULL},
        {"\"alice\"", "\"email\":\"alice@example.com\",\"email_verified\":true", 0,
         "alice@example.com"},
        {"\"alice\"", "\"email\":\"alice@example.com\",\"email_verified\":\"true\"", 0,
         "alice@example.com"},
        {"\"alice\"", "\"email\":\"alice@@example.com\",\"email_verified\":true", 0, NULL},
        {"\"alice\"", "\"email\":\"alice\",\"email_verified\":true", 0, NULL},
        {"\"eve\\nINFO forged line\"", "", ERR_AUTH, NULL},
        {"\"eve\\u0007\"", "", ERR_AUTH, NULL},
        {"\"eve\\u0085\"", "", ERR_AUTH, NULL},
        {"\"eve\\u2028\"", "", ERR_AUTH, NULL},
        {"\"eve\\u007f\"", "", ERR_AUTH, NULL},
        {"\"eve\"", "\"name\":\"Eve\\u001b[31m\"", ERR_AUTH, NULL},
        {"\"eve\"", "\"groups\":[\"ops\",\"a\\rb\"]", ERR_AUTH, NULL},
        {"\"eve\"", "\"email\":\"e\\nve@example.com\",\"email_verified\":true", ERR_AUTH,
         NULL},
        {"\"\\u00e9ve\"", "\"name\":\"\\u00c9ve \\u2027\"", 0, NULL}, /* printable */
    };
    struct idp_fx *fx = *state;
    struct auth *trusting = NULL;
    int64_t now = time_now();
    struct identity id;
    const char *why = NULL;
    char err[256];
    size_t i;

    for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        int r = verify_claims(fx, cases[i].user, cases[i].extra, now, &id, &why);

        if (r != cases[i].want_r)
            fail_msg("row %zu: want %d, got %d (%s)", i, cases[i].want_r, r, why ? why : "");
        if (r == 0) {
            assert_string_equal(id.domain, "corp");
            if (cases[i].want_email == NULL)
                assert_null(id.email);
            else
                assert_string_equal(id.email, cases[i].want_email);
        }
        identity_cleanup(&id);
    }

    /* trustEmail: a valid email counts without email_verified; identityDomain maps the issuer */
    fx->issuers[0].trust_email = 1;
    fx->issuers[0].identity_domain = "people";
    assert_int_equal(auth_new(&fx->cfg, &trusting, err, sizeof(err)), 0);
    fx->issuers[0].trust_email = 0;
    fx->issuers[0].identity_domain = NULL;
    {
        struct auth *keep = fx->a;

        fx->a = trusting;
        assert_int_equal(verify_claims(fx, "\"alice\"", "\"email\":\"Alice@Example.com\"", now,
                                       &id, &why), 0);
        assert_string_equal(id.email, "Alice@Example.com");
        assert_string_equal(id.domain, "people");
        identity_cleanup(&id);
        assert_int_equal(verify_claims(fx, "\"alice\"", "\"email\":\"not an address\"", now,
                                       &id, &why), 0);
        assert_null(id.email);
        identity_cleanup(&id);
        fx->a = keep;
    }
    auth_free(trusting);
}

static void
test_jwks_agent_issuer(void **state)
{
    struct idp_fx *fx = *state;
    int64_t now = time_now();
    static const struct {
        const char *claims; /* inserted into the payload */
        int want_r;
        const char *want_why;
        const char *want_name;
    } cases[] = {
        {"\"repository\":\"acme/web\",\"run_id\":42,\"run_attempt\":\"1\","
         "\"repository_owner\":\"acme\",\"actor\":\"alice\"",
         0, NULL, "gh/acme/web/42-1"},
        {"\"repository\":\"acme/web\",\"run_id\":42,\"run_attempt\":\"1\","
         "\"repository_owner\":\"evil\",\"actor\":\"alice\"",
         ERR_AUTH, "claim repository_owner not allowed", NULL},
        {"\"repository\":\"acme/web\",\"run_id\":42,\"run_attempt\":\"1\",\"actor\":\"alice\"",
         ERR_AUTH, "claim repository_owner missing", NULL},
        {"\"repository\":\"acme/web\",\"run_attempt\":\"1\",\"repository_owner\":\"acme\"",
         ERR_AUTH, "claim run_id missing", NULL},
        {"\"repository\":\"acme/we\\nb\",\"run_id\":42,\"run_attempt\":\"1\","
         "\"repository_owner\":\"acme\"",
         ERR_AUTH, "claim repository not allowed", NULL},
        {"\"repository\":{\"x\":1},\"run_id\":42,\"run_attempt\":\"1\","
         "\"repository_owner\":\"acme\"",
         ERR_AUTH, "claim repository missing", NULL},
    };
    size_t i;
    (void)state;

    for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char *p = xasprintf("{\"iss\":\"%s\",\"aud\":\"airlock\",\"sub\":\"repo:acme/web\","
                            "\"exp\":%lld,%s}",
                            fx->iss_ci, (long long)now + 600, cases[i].claims);
        struct identity id;
        const char *why = NULL;
        int r = verify_with(fx, fx->e256, "ES256", "e256", NULL, p, now + 100, &id, &why);

        if (r != cases[i].want_r)
            fail_msg("agent case %zu: r = %d (%s)", i, r, why != NULL ? why : "-");
        if (cases[i].want_why != NULL)
            assert_string_equal(why, cases[i].want_why);
        if (cases[i].want_name != NULL) {
            assert_int_equal(id.is_agent, 1);
            assert_string_equal(id.issuer_name, "github-actions");
            assert_string_equal(id.agent_name, cases[i].want_name);
            assert_string_equal(id.owner, "alice");
        }
        identity_cleanup(&id);
        free(p);
    }
}

static void
test_jwks_unreachable(void **state)
{
    struct idp_fx *fx = *state;
    int64_t now = time_now();
    char *p = payload_std("http://127.0.0.1:1", "airlock", "x", now, 600);
    struct identity id;
    const char *why = NULL;

    assert_int_equal(verify_with(fx, fx->r1, "RS256", "r1", NULL, p, now, &id, &why),
                     ERR_UNAVAILABLE);
    /* within 30 s no new attempt, still unavailable */
    assert_int_equal(verify_with(fx, fx->r1, "RS256", "r1", NULL, p, now + 1, &id, &why),
                     ERR_UNAVAILABLE);
    free(p);
}

static void
test_config_errors(void **state)
{
    struct issuer_cfg is = {0};
    struct config cfg = {0};
    struct auth *a = NULL;
    char err[256];
    (void)state;

    cfg.issuers = &is;
    cfg.n_issuers = 1;
    is.name = "plain";
    is.issuer = "http://idp.example.com";
    is.audience = "airlock";
    assert_int_equal(auth_new(&cfg, &a, err, sizeof(err)), ERR_INVALID);
    assert_non_null(strstr(err, "https"));
    is.issuer = "https://idp.example.com";
    is.kind = ISSUER_AGENT;
    is.agent_name = "gh/{repository";
    assert_int_equal(auth_new(&cfg, &a, err, sizeof(err)), ERR_INVALID);
    is.agent_name = "gh/{repository}";
    assert_int_equal(auth_new(&cfg, &a, err, sizeof(err)), 0);
    auth_free(a);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_dev_mint_verify, dev_setup, dev_teardown),
        cmocka_unit_test_setup_teardown(test_dev_crafted, dev_setup, dev_teardown),
        cmocka_unit_test_setup_teardown(test_dev_attacks, dev_setup, dev_teardown),
        cmocka_unit_test_setup_teardown(test_dev_off, dev_setup, dev_teardown),
        cmocka_unit_test_setup_teardown(test_jwks_issuer, idp_setup, idp_teardown),
        cmocka_unit_test_setup_teardown(test_jwks_identity_claims, idp_setup, idp_teardown),
        cmocka_unit_test_setup_teardown(test_jwks_agent_issuer, idp_setup, idp_teardown),
        cmocka_unit_test_setup_teardown(test_jwks_unreachable, idp_setup, idp_teardown),
        cmocka_unit_test(test_config_errors),
    };
    int failed;

    log_min_level = getenv("AUTH_TEST_DEBUG") ? LOG_DEBUG : LOG_ERROR;
    failed = cmocka_run_group_tests(tests, NULL, NULL);
    printf("%d passed, %d failed\n", (int)(sizeof(tests) / sizeof(tests[0])) - failed, failed);
    return failed != 0;
}
