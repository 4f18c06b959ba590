/*
 * claims.c: the header whitelist and the time/iss/aud checks, table-driven,
 * with "now" passed in. Every boundary is tested on both sides.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>
#include <jansson.h>

#include "claims.h"
#include "err.h"

#define NOW 1800000000LL
#define ISS "https://idp.example.com/realms/corp"
#define AUD "airlock"

static void
test_claims_table(void **state)
{
    static const struct {
        const char *name;
        const char *payload; /* JSON text */
        int want_r;
        const char *want_why;
    } cases[] = {
        {"valid", "{\"iss\":\"" ISS "\",\"aud\":\"airlock\",\"exp\":1800000600}", 0, NULL},
        {"expired long ago", "{\"iss\":\"" ISS "\",\"aud\":\"airlock\",\"exp\":1799990000}",
         ERR_AUTH, "token expired"},
        /* now < exp + 60: exp = now - 59 is still good, exp = now - 60 is not */
        {"exp inside leeway", "{\"iss\":\"" ISS "\",\"aud\":\"airlock\",\"exp\":1799999941}", 0,
         NULL},
        {"exp at leeway edge", "{\"iss\":\"" ISS "\",\"aud\":\"airlock\",\"exp\":1799999940}",
         ERR_AUTH, "token expired"},
        {"exp fractional", "{\"iss\":\"" ISS "\",\"aud\":\"airlock\",\"exp\":1800000600.5}", 0,
         NULL},
        {"exp fraction is floored",
         "{\"iss\":\"" ISS "\",\"aud\":\"airlock\",\"exp\":1799999940.9}", ERR_AUTH,
         "token expired"},
        {"exp missing", "{\"iss\":\"" ISS "\",\"aud\":\"airlock\"}", ERR_AUTH, "token has no exp"},
        {"exp a string", "{\"iss\":\"" ISS "\",\"aud\":\"airlock\",\"exp\":\"1800000600\"}",
         ERR_AUTH, "malformed token"},
        {"exp huge", "{\"iss\":\"" ISS "\",\"aud\":\"airlock\",\"exp\":9223372036854775807}", 0,
         NULL},
        /* nbf <= now + 60 */
        {"nbf inside leeway",
         "{\"iss\":\"" ISS "\",\"aud\":\"airlock\",\"exp\":1800000600,\"nbf\":1800000060}", 0,
         NULL},
        {"nbf past leeway",
         "{\"iss\":\"" ISS "\",\"aud\":\"airlock\",\"exp\":1800000600,\"nbf\":1800000061}",
         ERR_AUTH, "token not yet valid"},
        {"nbf far future",
         "{\"iss\":\"" ISS "\",\"aud\":\"airlock\",\"exp\":1800009999,\"nbf\":1800003600}",
         ERR_AUTH, "token not yet valid"},
        {"nbf not a number",
         "{\"iss\":\"" ISS "\",\"aud\":\"airlock\",\"exp\":1800000600,\"nbf\":true}", ERR_AUTH,
         "malformed token"},
        /* iat <= now + 60 */
        {"iat inside leeway",
         "{\"iss\":\"" ISS "\",\"aud\":\"airlock\",\"exp\":1800000600,\"iat\":1800000060}", 0,
         NULL},
        {"iat in the future",
         "{\"iss\":\"" ISS "\",\"aud\":\"airlock\",\"exp\":1800000600,\"iat\":1800000061}",
         ERR_AUTH, "token issued in the future"},
        {"wrong iss",
         "{\"iss\":\"https://evil.example.com\",\"aud\":\"airlock\",\"exp\":1800000600}", ERR_AUTH,
         "wrong issuer"},
        {"iss with trailing slash", "{\"iss\":\"" ISS "/\",\"aud\":\"airlock\",\"exp\":1800000600}",
         ERR_AUTH, "wrong issuer"},
        {"iss missing", "{\"aud\":\"airlock\",\"exp\":1800000600}", ERR_AUTH, "wrong issuer"},
        {"iss not a string", "{\"iss\":[\"" ISS "\"],\"aud\":\"airlock\",\"exp\":1800000600}",
         ERR_AUTH, "wrong issuer"},
        {"aud string mismatch", "{\"iss\":\"" ISS "\",\"aud\":\"other\",\"exp\":1800000600}",
         ERR_AUTH, "wrong audience"},
        {"aud differs in case", "{\"iss\":\"" ISS "\",\"aud\":\"Airlock\",\"exp\":1800000600}",
         ERR_AUTH, "wrong audience"},
        {"aud array containing",
         "{\"iss\":\"" ISS "\",\"aud\":[\"account\",\"airlock\"],\"exp\":1800000600}", 0, NULL},
        {"aud array not containing",
         "{\"iss\":\"" ISS "\",\"aud\":[\"account\",\"web\"],\"exp\":1800000600}", ERR_AUTH,
         "wrong audience"},
        {"aud empty array", "{\"iss\":\"" ISS "\",\"aud\":[],\"exp\":1800000600}", ERR_AUTH,
         "wrong audience"},
        {"aud missing", "{\"iss\":\"" ISS "\",\"exp\":1800000600}", ERR_AUTH, "wrong audience"},
        {"aud number", "{\"iss\":\"" ISS "\",\"aud\":7,\"exp\":1800000600}", ERR_AUTH,
         "wrong audience"},
        {"not an object", "[1,2,3]", ERR_AUTH, "malformed token"},
    };
    size_t i;
    (void)state;

    for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        json_t *p = json_loads(cases[i].payload, JSON_DECODE_ANY, NULL);
        const char *why = "unset";
        int r;

        assert_non_null(p);
        r = claims_check(p, ISS, AUD, NOW, &why);
        if (r != cases[i].want_r)
            fail_msg("case \"%s\": r = %d, want %d (%s)", cases[i].name, r, cases[i].want_r,
                     why != NULL ? why : "-");
        if (cases[i].want_why != NULL && (why == NULL || strcmp(why, cases[i].want_why) != 0))
            fail_msg("case \"%s\": why = \"%s\", want \"%s\"", cases[i].name,
                     why != NULL ? why : "(null)", cases[i].want_why);
        json_decref(p);
    }
}

static void
test_claims_header_table(void **state)
{
    static const struct {
        const char *header;
        int want_r;
        const char *want_why;
    } cases[] = {
        {"{\"alg\":\"RS256\"}", 0, NULL},
        {"{\"alg\":\"RS384\",\"typ\":\"JWT\"}", 0, NULL},
        {"{\"alg\":\"RS512\",\"kid\":\"k1\"}", 0, NULL},
        {"{\"alg\":\"ES256\",\"typ\":\"JWT\",\"kid\":\"abc\"}", 0, NULL},
        {"{\"alg\":\"ES384\"}", 0, NULL},
        {"{\"alg\":\"PS256\"}", 0, NULL},
        {"{\"alg\":\"RS256\",\"typ\":\"at+jwt\"}", 0, NULL},
        {"{\"alg\":\"RS256\",\"typ\":\"AT+JWT\"}", 0, NULL},
        {"{\"alg\":\"RS256\",\"typ\":\"jwt\"}", 0, NULL},
        {"{\"alg\":\"RS256\",\"typ\":\"application/at+jwt\"}", 0, NULL},
        {"{\"alg\":\"none\"}", ERR_AUTH, "unsupported algorithm"},
        {"{\"alg\":\"None\",\"typ\":\"JWT\"}", ERR_AUTH, "unsupported algorithm"},
        {"{\"alg\":\"HS256\",\"typ\":\"JWT\"}", ERR_AUTH, "unsupported algorithm"},
        {"{\"alg\":\"HS512\"}", ERR_AUTH, "unsupported algorithm"},
        {"{\"alg\":\"ES512\"}", ERR_AUTH, "unsupported algorithm"},
        {"{\"alg\":\"rs256\"}", ERR_AUTH, "unsupported algorithm"},
        {"{\"alg\":\"EdDSA\"}", ERR_AUTH, "unsupported algorithm"},
        {"{\"typ\":\"JWT\"}", ERR_AUTH, "unsupported algorithm"},
        {"{\"alg\":256}", ERR_AUTH, "unsupported algorithm"},
        {"{\"alg\":\"RS256\",\"typ\":\"JWS\"}", ERR_AUTH, "unsupported token type"},
        {"{\"alg\":\"RS256\",\"typ\":\"dpop+jwt\"}", ERR_AUTH, "unsupported token type"},
        {"{\"alg\":\"RS256\",\"typ\":1}", ERR_AUTH, "unsupported token type"},
        {"{\"alg\":\"RS256\",\"crit\":[\"exp\"]}", ERR_AUTH, "unsupported critical header"},
        {"{\"alg\":\"RS256\",\"crit\":[]}", ERR_AUTH, "unsupported critical header"},
        {"{\"alg\":\"RS256\",\"b64\":false,\"crit\":[\"b64\"]}", ERR_AUTH,
         "unsupported critical header"},
        {"{\"alg\":\"RS256\",\"kid\":7}", ERR_AUTH, "malformed token"},
        {"\"RS256\"", ERR_AUTH, "malformed token"},
    };
    size_t i;
    (void)state;

    for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        json_t *h = json_loads(cases[i].header, JSON_DECODE_ANY, NULL);
        const char *why = "unset";
        int r;

        assert_non_null(h);
        r = claims_check_header(h, &why);
        if (r != cases[i].want_r)
            fail_msg("header %s: r = %d, want %d (%s)", cases[i].header, r, cases[i].want_r,
                     why != NULL ? why : "-");
        if (cases[i].want_why != NULL && (why == NULL || strcmp(why, cases[i].want_why) != 0))
            fail_msg("header %s: why = \"%s\", want \"%s\"", cases[i].header,
                     why != NULL ? why : "(null)", cases[i].want_why);
        json_decref(h);
    }
}

/* The leeway boundaries again, computed from CLAIMS_LEEWAY_S rather than written out. */
static void
test_claims_leeway_edges(void **state)
{
    static const struct {
        const char *claim;
        int64_t offset; /* claim value = NOW + offset */
        int want_r;
    } cases[] = {
        {"exp", 1, 0},
        {"exp", 0, 0},
        {"exp", -(CLAIMS_LEEWAY_S - 1), 0},
        {"exp", -CLAIMS_LEEWAY_S, ERR_AUTH},
        {"exp", -(CLAIMS_LEEWAY_S + 1), ERR_AUTH},
        {"nbf", CLAIMS_LEEWAY_S - 1, 0},
        {"nbf", CLAIMS_LEEWAY_S, 0},
        {"nbf", CLAIMS_LEEWAY_S + 1, ERR_AUTH},
        {"iat", CLAIMS_LEEWAY_S, 0},
        {"iat", CLAIMS_LEEWAY_S + 1, ERR_AUTH},
    };
    size_t i;
    (void)state;

    for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        json_t *p =
            json_pack("{s:s, s:s, s:I}", "iss", ISS, "aud", AUD, "exp", (json_int_t)(NOW + 3600));
        const char *why = NULL;
        int r;

        json_object_set_new(p, cases[i].claim, json_integer(NOW + cases[i].offset));
        r = claims_check(p, ISS, AUD, NOW, &why);
        if (r != cases[i].want_r)
            fail_msg("%s = now%+lld: r = %d, want %d (%s)", cases[i].claim,
                     (long long)cases[i].offset, r, cases[i].want_r, why != NULL ? why : "-");
        json_decref(p);
    }
}

/* Text and email checks that decide whether a claim may name a person. */
static void
test_claims_identity_text(void **state)
{
    static const struct {
        const char *s;
        int clean, email;
    } cases[] = {
        {"alice@example.com", 1, 1},
        {"Alice.Smith+ops@mail.example.co.uk", 1, 1},
        {"alice", 1, 0},
        {"alice@localhost", 1, 0},
        {"@example.com", 1, 0},
        {"alice@", 1, 0},
        {"alice@@example.com", 1, 0},
        {"al@ice@example.com", 1, 0},
        {".alice@example.com", 1, 0},
        {"alice.@example.com", 1, 0},
        {"al..ice@example.com", 1, 0},
        {"al ice@example.com", 1, 0},
        {"alice@exa_mple.com", 1, 0},
        {"alice@-example.com", 1, 0},
        {"alice@example-.com", 1, 0},
        {"alice@example..com", 1, 0},
        {"alice@example.com.", 1, 0},
        {"al<ice>@example.com", 1, 0},
        {"\xc3\xa9lise@example.com", 1, 0}, /* non-ASCII local part: not for matching */
        {"alice\n@example.com", 0, 0},
        {"eve\nINFO forged", 0, 0},
        {"bell\a", 0, 0},
        {"tab\there", 0, 0},
        {"del\x7f", 0, 0},
        {"c1\xc2\x85", 0, 0},          /* U+0085 NEL */
        {"c1\xc2\x9f", 0, 0},          /* U+009F */
        {"ls\xe2\x80\xa8", 0, 0},      /* U+2028 */
        {"ps\xe2\x80\xa9", 0, 0},      /* U+2029 */
        {"\xc2\xa0nbsp", 1, 0},         /* U+00A0 is printable */
        {"\xe2\x80\xa7ok", 1, 0},      /* U+2027 is printable */
        {"\xc3\x89ve", 1, 0},
    };
    size_t i;
    (void)state;

    for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        if (claims_text_clean(cases[i].s) != cases[i].clean)
            fail_msg("row %zu: text_clean want %d", i, cases[i].clean);
        if (claims_email_valid(cases[i].s) != cases[i].email)
            fail_msg("row %zu: email_valid want %d", i, cases[i].email);
    }
}

/* email_verified and trustEmail decide whether a valid email counts. */
static void
test_claims_email_trusted(void **state)
{
    json_t *none = json_pack("{}"), *yes = json_pack("{s:b}", "email_verified", 1);
    json_t *no = json_pack("{s:b}", "email_verified", 0);
    json_t *str = json_pack("{s:s}", "email_verified", "true");
    json_t *num = json_pack("{s:i}", "email_verified", 1);
    (void)state;

    assert_null(claims_email_trusted("a@example.com", none, 0));
    assert_null(claims_email_trusted("a@example.com", no, 0));
    assert_null(claims_email_trusted("a@example.com", num, 0));
    assert_string_equal(claims_email_trusted("a@example.com", yes, 0), "a@example.com");
    assert_string_equal(claims_email_trusted("a@example.com", str, 0), "a@example.com");
    assert_string_equal(claims_email_trusted("a@example.com", none, 1), "a@example.com");
    assert_string_equal(claims_email_trusted("a@example.com", no, 1), "a@example.com");
    assert_null(claims_email_trusted("not-an-address", yes, 1));
    assert_null(claims_email_trusted(NULL, yes, 1));
    json_decref(none);
    json_decref(yes);
    json_decref(no);
    json_decref(str);
    json_decref(num);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_claims_table),
        cmocka_unit_test(test_claims_header_table),
        cmocka_unit_test(test_claims_leeway_edges),
        cmocka_unit_test(test_claims_identity_text),
        cmocka_unit_test(test_claims_email_trusted),
    };
    int failed = cmocka_run_group_tests(tests, NULL, NULL);

    printf("%d passed, %d failed\n", (int)(sizeof(tests) / sizeof(tests[0])) - failed, failed);
    return failed != 0;
}
