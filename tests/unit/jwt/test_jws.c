/*
 * Unit tests of the jwt module's core: base64url, compact JWS parsing, key
 * loading and signature verification.
 *
 * Public vectors are read from tests/vectors/ (relative to the project
 * root, where tests run; ENCORE_TESTDATA overrides it; see its README.md):
 * every case of Wycheproof's json_web_signature_test.json and of the
 * primitive suites (ECDSA P-256 P1363, Ed25519, HMAC-SHA256, RSA 2048
 * PKCS#1) is run through the JWS verification layer and must give
 * Wycheproof's verdict, except the expected rejects of the tables below.
 * Then the RFC 7515 / RFC 7520 examples and the RFC 8725 attacks.
 */

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>
#include <openssl/core_names.h>
#include <openssl/ec.h>
#include <openssl/hmac.h>

#include "../../../ngx_modules/jwt/encore_jws.h"
#include "../../../ngx_modules/jwt/encore_claims.h"
#include "../../../ngx_modules/jwt/encore_flat.h"
#include "b64_reference.h"


#define TOKEN_MAX  (2 * 1024 * 1024)


/*
 * Wycheproof JWS cases that Encore rejects although the suite calls them
 * valid.  Each row says why; nothing else may disagree with the suite.
 */
typedef struct {
    int          tc_id;
    const char  *reason;
} expected_reject_t;

static const expected_reject_t  jws_expected_rejects[] = {
    { 337, "unsupported algorithm: RS384" },
    { 338, "unsupported algorithm: RS384" },
    { 339, "unsupported algorithm: RS384" },
    { 340, "unsupported algorithm: RS384" },
    { 341, "unsupported algorithm: RS512" },
    { 342, "unsupported algorithm: RS512" },
    { 343, "unsupported algorithm: RS512" },
    { 344, "unsupported algorithm: RS512" },
    { 346, "unsupported algorithm: PS384" },
    { 347, "unsupported algorithm: ES512" },
    { 350, "unsupported algorithm: PS384" },
    { 351, "unsupported algorithm: ES512" },
    /* 372, 373: filled in below from the file by comment */
    { 0, NULL }
};

/* suite comments whose valid cases are expected rejects, and why */
typedef struct {
    const char  *comment;
    const char  *reason;
} expected_group_t;

static const expected_group_t  jws_expected_groups[] = {
    { "ps256", "unsupported algorithm: PS256" },
    { "ps384", "unsupported algorithm: PS384" },
    { "ps512", "unsupported algorithm: PS512" },
    { "rs384", "unsupported algorithm: RS384" },
    { "rs512", "unsupported algorithm: RS512" },
    { NULL, NULL }
};

/*
 * Suite defects: "invalid" cases whose token is byte-for-byte the token of
 * a "valid" case (the padding they describe was lost from the file).  The
 * test checks the identity instead of trusting this list.
 */
typedef struct {
    int  tc_id;
    int  same_as;
} suite_defect_t;

static const suite_defect_t  jws_suite_defects[] = {
    { 367, 357 },   /* invalidBase64Padding */
    { 370, 357 },   /* invalidBase64PaddingInPayload */
    { 0, 0 }
};

/*
 * Primitive suites: rules instead of ids, since they are per group.
 *   HMAC-SHA256, keySize < 256: key below our minimum (RFC 7518 3.2)
 *   HMAC-SHA256, tagSize < 256: truncated tag
 */


static const char *
testdata_dir(void)
{
    const char  *dir;

    dir = getenv("ENCORE_TESTDATA");

    return dir ? dir : "tests/vectors";
}


static json_t *
load_vectors(const char *name)
{
    char          path[1024];
    json_t       *json;
    json_error_t  err;

    snprintf(path, sizeof(path), "%s/%s", testdata_dir(), name);
    json = json_load_file(path, 0, &err);

    if (json == NULL) {
        fail_msg("cannot load %s: %s", path, err.text);
    }

    return json;
}


static char *
read_text(const char *name, size_t *len)
{
    char   path[1024], *buf;
    FILE  *f;
    long   n;

    snprintf(path, sizeof(path), "%s/%s", testdata_dir(), name);
    f = fopen(path, "rb");
    assert_non_null(f);
    fseek(f, 0, SEEK_END);
    n = ftell(f);
    fseek(f, 0, SEEK_SET);
    buf = malloc(n + 1);
    assert_non_null(buf);
    assert_int_equal(fread(buf, 1, n, f), (size_t) n);
    fclose(f);

    /* compact serialisations in files end with a newline */
    while (n > 0 && (buf[n - 1] == '\n' || buf[n - 1] == '\r')) {
        n--;
    }

    buf[n] = '\0';
    *len = n;

    return buf;
}


static unsigned char *
unhex(const char *hex, size_t *len)
{
    size_t          i, n;
    unsigned int    b;
    unsigned char  *out;

    n = strlen(hex) / 2;
    out = malloc(n + 1);
    assert_non_null(out);

    for (i = 0; i < n; i++) {
        sscanf(hex + 2 * i, "%2x", &b);
        out[i] = (unsigned char) b;
    }

    *len = n;

    return out;
}


static char *
b64url(const unsigned char *data, size_t len)
{
    char  *out;

    out = malloc((len + 2) / 3 * 4 + 1);
    assert_non_null(out);
    encore_base64url_encode(out, data, len);

    return out;
}


static encore_jwks_t *
jwks_from_json(json_t *jwk)
{
    char           *text, err[256];
    encore_jwks_t  *jwks;

    text = json_dumps(jwk, JSON_COMPACT);
    assert_non_null(text);
    jwks = encore_jwks_parse(text, strlen(text), err, sizeof(err));
    free(text);

    return jwks;
}


static encore_jwks_t *
jwks_from_string(const char *text)
{
    char  err[256];

    return encore_jwks_parse(text, strlen(text), err, sizeof(err));
}


/* full JWS-layer verdict: parse + key selection + signature */
static int
jws_check(const encore_jwks_t *jwks, const char *token, size_t len,
    unsigned algs)
{
    int           rc;
    encore_jws_t  jws;

    rc = encore_jws_parse(&jws, token, len, TOKEN_MAX, algs);

    if (rc == ENCORE_JWS_OK) {
        rc = jwks ? encore_jws_verify(&jws, jwks) : ENCORE_JWS_EKID;
    }

    encore_jws_free(&jws);

    return rc;
}


static int
jws_ok(const encore_jwks_t *jwks, const char *token, unsigned algs)
{
    return jws_check(jwks, token, strlen(token), algs) == ENCORE_JWS_OK;
}


/* the order n of P-256 and floor(n / 2), from OpenSSL rather than copied */
static BIGNUM *
p256_order(unsigned half)
{
    BIGNUM    *n;
    EC_GROUP  *g;

    g = EC_GROUP_new_by_curve_name(NID_X9_62_prime256v1);
    assert_non_null(g);
    n = BN_dup(EC_GROUP_get0_order(g));
    assert_non_null(n);
    EC_GROUP_free(g);

    if (half) {
        assert_int_equal(BN_rshift1(n, n), 1);
    }

    return n;
}


/* whether s of a 64-byte r || s is above n / 2 */
static int
es256_s_is_high(const unsigned char *sig)
{
    int      high;
    BIGNUM  *s, *half;

    s = BN_bin2bn(sig + 32, 32, NULL);
    half = p256_order(1);
    high = BN_cmp(s, half) > 0;
    BN_free(s);
    BN_free(half);

    return high;
}


/* the 64 bytes of an ES256 token's signature; 0, or -1 if not 64 bytes */
static int
es256_sig_of(const char *token, unsigned char *sig)
{
    size_t       len;
    const char  *dot;

    dot = strrchr(token, '.');
    if (dot == NULL
        || strlen(dot + 1) > 88
        || encore_base64url_decode(sig, &len, dot + 1, strlen(dot + 1)) != 0
        || len != 64)
    {
        return -1;
    }

    return 0;
}


/* s := n - s in place: the other signature of the same message */
static void
es256_flip(unsigned char *sig)
{
    BIGNUM  *s, *n;

    s = BN_bin2bn(sig + 32, 32, NULL);
    n = p256_order(0);
    assert_int_equal(BN_sub(s, n, s), 1);
    assert_int_equal(BN_bn2binpad(s, sig + 32, 32), 32);
    BN_free(s);
    BN_free(n);
}


/* the token with s replaced by n - s; the caller frees it */
static char *
es256_flipped(const char *token)
{
    char           *s, *out;
    const char     *dot;
    unsigned char   sig[66];

    assert_int_equal(es256_sig_of(token, sig), 0);
    es256_flip(sig);

    dot = strrchr(token, '.');
    s = b64url(sig, 64);
    assert_true(asprintf(&out, "%.*s.%s", (int) (dot - token), token, s) > 0);
    free(s);

    return out;
}


/* whether the token is refused with that error text */
static int
jws_error_is(const encore_jwks_t *jwks, const char *token, const char *error)
{
    int           rc, is;
    encore_jws_t  jws;

    rc = encore_jws_parse(&jws, token, strlen(token), TOKEN_MAX,
                          ENCORE_JWS_ALL);
    if (rc == ENCORE_JWS_OK) {
        rc = encore_jws_verify(&jws, jwks);
    }

    is = (rc != ENCORE_JWS_OK && jws.error && strcmp(jws.error, error) == 0);
    encore_jws_free(&jws);

    return is;
}


/* ---- base64url --------------------------------------------------------- */



static void
test_base64url(void **state)
{
    size_t         n;
    unsigned char  buf[64];
    char           out[64];

    assert_int_equal(encore_base64url_decode(buf, &n, "Zm9v", 4), 0);
    assert_int_equal(n, 3);
    assert_memory_equal(buf, "foo", 3);
    assert_int_equal(encore_base64url_decode(buf, &n, "Zm8", 3), 0);
    assert_int_equal(n, 2);
    assert_int_equal(encore_base64url_decode(buf, &n, "", 0), 0);
    assert_int_equal(n, 0);

    /* padding, standard alphabet, bad length, non-zero unused bits */
    assert_int_equal(encore_base64url_decode(buf, &n, "Zm8=", 4), -1);
    assert_int_equal(encore_base64url_decode(buf, &n, "+/+/", 4), -1);
    assert_int_equal(encore_base64url_decode(buf, &n, "Zm9vY", 5), -1);
    assert_int_equal(encore_base64url_decode(buf, &n, "Zm9", 3), -1);
    assert_int_equal(encore_base64url_decode(buf, &n, "AB", 2), -1);
    assert_int_equal(encore_base64url_decode(buf, &n, "Zm 9v", 5), -1);

    assert_int_equal(encore_base64url_encode(out, (const u_char *) "\xfb\xff",
                                             2), 3);
    assert_string_equal(out, "-_8");

    /*
     * The table-driven decoder against the reference: random strings over
     * the alphabet and its neighbours (every length mod 4, every unused-bit
     * pattern, bytes with the top bit set, NUL), and round trips.
     */
    {
        int            rc, ref;
        size_t         i, k, len, m;
        unsigned char  a[64], b[64], raw[48];
        char           in[80];

        static const char  chars[] =
            "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
            "+/=. \x80\xff\x7f@[`{";

        srand(7515);

        for (i = 0; i < 200000; i++) {
            len = (size_t) rand() % 13;

            for (k = 0; k < len; k++) {
                /* mostly the alphabet, now and then anything else */
                in[k] = (rand() % 16)
                        ? chars[rand() % 64]
                        : (rand() % 4 ? chars[rand() % (sizeof(chars) - 1)]
                                      : (char) (rand() % 256));
            }

            rc = encore_base64url_decode(a, &n, in, len);
            ref = base64url_reference(b, &m, in, len);

            assert_int_equal(rc, ref);

            if (rc == 0) {
                assert_int_equal(n, m);
                assert_memory_equal(a, b, n);
            }
        }

        for (i = 0; i < 20000; i++) {
            len = (size_t) rand() % sizeof(raw);

            for (k = 0; k < len; k++) {
                raw[k] = (unsigned char) rand();
            }

            k = encore_base64url_encode(in, raw, len);
            assert_int_equal(encore_base64url_decode(a, &n, in, k), 0);
            assert_int_equal(n, len);
            assert_memory_equal(a, raw, len);
        }
    }
}


/* ---- Wycheproof JWS ---------------------------------------------------- */

static const char *
jws_expected_reason(int tc_id, const char *group, const char *comment)
{
    size_t  i;

    for (i = 0; jws_expected_rejects[i].reason; i++) {
        if (jws_expected_rejects[i].tc_id == tc_id) {
            return jws_expected_rejects[i].reason;
        }
    }

    for (i = 0; jws_expected_groups[i].comment; i++) {
        if (strcmp(jws_expected_groups[i].comment, group) == 0) {
            return jws_expected_groups[i].reason;
        }
    }

    /*
     * The suite expects a verifier that drops a non-alphabet character
     * from a segment and then MACs the re-encoded input.  RFC 7515 5.2
     * verifies the received ASCII(header.payload), and a token carrying a
     * character outside base64url is not a compact JWS at all.
     */
    if (strcmp(comment, "InvalidCharacterInsertedInHeader") == 0
        || strcmp(comment, "InvalidCharacterInsertedInPayload") == 0)
    {
        return "non-base64url character: strict RFC 7515 parsing";
    }

    return NULL;
}


static const char *
jws_token_of(json_t *root, int tc_id)
{
    size_t   gi, ti;
    json_t  *group, *test;

    json_array_foreach(json_object_get(root, "testGroups"), gi, group) {
        json_array_foreach(json_object_get(group, "tests"), ti, test) {
            if (json_integer_value(json_object_get(test, "tcId")) == tc_id) {
                return json_string_value(json_object_get(test, "jws"));
            }
        }
    }

    return NULL;
}


static int
jws_suite_defect(json_t *root, int tc_id, const char *token)
{
    size_t       i;
    const char  *twin;

    for (i = 0; jws_suite_defects[i].tc_id; i++) {
        if (jws_suite_defects[i].tc_id == tc_id) {
            twin = jws_token_of(root, jws_suite_defects[i].same_as);
            return twin != NULL && strcmp(twin, token) == 0;
        }
    }

    return 0;
}


static void
test_wycheproof_jws(void **state)
{
    int             rc, ok;
    size_t          gi, ti, pass, expected, total, defects, high;
    json_t         *root, *group, *test, *key;
    const char     *token, *result, *comment, *gname, *reason;
    unsigned char   sig[66];
    encore_jwks_t  *jwks;

    root = load_vectors("wycheproof/json_web_signature_test.json");
    pass = expected = total = defects = high = 0;

    json_array_foreach(json_object_get(root, "testGroups"), gi, group) {
        gname = json_string_value(json_object_get(group, "comment"));
        key = json_object_get(group, "public");
        if (key == NULL) {
            key = json_object_get(group, "private");
        }

        jwks = jwks_from_json(key);

        json_array_foreach(json_object_get(group, "tests"), ti, test) {
            token = json_string_value(json_object_get(test, "jws"));
            result = json_string_value(json_object_get(test, "result"));
            comment = json_string_value(json_object_get(test, "comment"));
            int id = (int) json_integer_value(json_object_get(test, "tcId"));

            total++;
            rc = jws_check(jwks, token, strlen(token), ENCORE_JWS_ALL);
            ok = (rc == ENCORE_JWS_OK);

            if (strcmp(result, "valid") == 0 && !ok) {
                reason = jws_expected_reason(id, gname, comment);

                if (reason == NULL && rc == ENCORE_JWS_ESIG
                    && es256_sig_of(token, sig) == 0
                    && es256_s_is_high(sig))
                {
                    reason = "high S: only the low form is accepted";
                    high++;
                }

                if (reason == NULL) {
                    fail_msg("tcId %d (%s, %s) valid but rejected: %d", id,
                             gname, comment, rc);
                }

                expected++;
                continue;
            }

            if (strcmp(result, "invalid") == 0 && ok) {
                if (!jws_suite_defect(root, id, token)) {
                    fail_msg("tcId %d (%s, %s) invalid but accepted", id,
                             gname, comment);
                }

                defects++;
                continue;
            }

            pass++;
        }

        encore_jwks_free(jwks);
    }

    print_message("wycheproof jws: %zu cases, %zu as the suite says, "
                  "%zu expected rejects (%zu of them high S), "
                  "%zu suite defects\n", total, pass, expected, high,
                  defects);
    assert_int_equal(total, 401);
    assert_int_equal(defects, 2);
    json_decref(root);
}


/* ---- Wycheproof primitive suites at the JWS layer ---------------------- */

typedef struct {
    size_t  total;
    size_t  pass;
    size_t  expected;
} tally_t;


static void
primitive_case(tally_t *t, const encore_jwk_t *key, unsigned alg,
    json_t *test, const char *suite, const char *why_reject)
{
    int             rc, ok;
    size_t          mlen, slen;
    const char     *result, *sig_name;
    unsigned char  *msg, *sig;

    sig_name = json_object_get(test, "sig") ? "sig" : "tag";
    msg = unhex(json_string_value(json_object_get(test, "msg")), &mlen);
    sig = unhex(json_string_value(json_object_get(test, sig_name)), &slen);
    result = json_string_value(json_object_get(test, "result"));

    rc = key ? encore_jws_verify_signature(key, alg, msg, mlen, sig, slen)
             : ENCORE_JWS_EKID;
    ok = (rc == ENCORE_JWS_OK);

    if (alg == ENCORE_JWS_ES256 && why_reject == NULL && slen == 64
        && es256_s_is_high(sig))
    {
        why_reject = "high S: only the low form is accepted";
    }

    t->total++;

    if (strcmp(result, "valid") == 0 && !ok) {
        if (why_reject == NULL) {
            fail_msg("%s tcId %d valid but rejected", suite,
                     (int) json_integer_value(json_object_get(test, "tcId")));
        }

        t->expected++;

    } else if (strcmp(result, "invalid") == 0 && ok) {
        fail_msg("%s tcId %d invalid but accepted", suite,
                 (int) json_integer_value(json_object_get(test, "tcId")));

    } else {
        /* valid accepted, invalid rejected, or "acceptable" either way */
        t->pass++;
    }

    free(msg);
    free(sig);
}


static json_t *
ec_jwk_from_hex(json_t *pub)
{
    char           *xs, *ys;
    size_t          xl, yl;
    json_t         *jwk;
    unsigned char  *x, *y, xb[32], yb[32];

    x = unhex(json_string_value(json_object_get(pub, "wx")), &xl);
    y = unhex(json_string_value(json_object_get(pub, "wy")), &yl);

    /* Wycheproof writes coordinates as signed integers: strip or pad */
    while (xl > 32 && x[0] == 0) { memmove(x, x + 1, --xl); }
    while (yl > 32 && y[0] == 0) { memmove(y, y + 1, --yl); }
    assert_true(xl <= 32 && yl <= 32);
    memset(xb, 0, 32);
    memset(yb, 0, 32);
    memcpy(xb + 32 - xl, x, xl);
    memcpy(yb + 32 - yl, y, yl);

    xs = b64url(xb, 32);
    ys = b64url(yb, 32);
    jwk = json_pack("{s:s, s:s, s:s, s:s}", "kty", "EC", "crv", "P-256",
                    "x", xs, "y", ys);
    free(x);
    free(y);
    free(xs);
    free(ys);

    return jwk;
}


static void
test_wycheproof_primitives(void **state)
{
    size_t          gi, ti, klen;
    char           *k;
    json_t         *root, *group, *test, *jwk;
    tally_t         t;
    const char     *why;
    unsigned char  *kb;
    encore_jwks_t  *jwks;

    /* ECDSA P-256 SHA-256, IEEE P1363 (the JWS encoding) */
    memset(&t, 0, sizeof(t));
    root = load_vectors("wycheproof/ecdsa_secp256r1_sha256_p1363_test.json");

    json_array_foreach(json_object_get(root, "testGroups"), gi, group) {
        jwk = ec_jwk_from_hex(json_object_get(group, "publicKey"));
        jwks = jwks_from_json(jwk);
        assert_non_null(jwks);

        json_array_foreach(json_object_get(group, "tests"), ti, test) {
            primitive_case(&t, &jwks->keys[0], ENCORE_JWS_ES256, test,
                           "ecdsa", NULL);
        }

        encore_jwks_free(jwks);
        json_decref(jwk);
    }

    print_message("wycheproof ecdsa p-256 p1363: %zu cases, %zu as the suite "
                  "says, %zu expected rejects\n", t.total, t.pass, t.expected);
    assert_int_equal(t.total, 262);
    json_decref(root);

    /* Ed25519 */
    memset(&t, 0, sizeof(t));
    root = load_vectors("wycheproof/ed25519_test.json");

    json_array_foreach(json_object_get(root, "testGroups"), gi, group) {
        kb = unhex(json_string_value(
                   json_object_get(json_object_get(group, "publicKey"), "pk")),
                   &klen);
        k = b64url(kb, klen);
        jwk = json_pack("{s:s, s:s, s:s}", "kty", "OKP", "crv", "Ed25519",
                        "x", k);
        jwks = jwks_from_json(jwk);
        assert_non_null(jwks);

        json_array_foreach(json_object_get(group, "tests"), ti, test) {
            primitive_case(&t, &jwks->keys[0], ENCORE_JWS_EDDSA, test,
                           "ed25519", NULL);
        }

        encore_jwks_free(jwks);
        json_decref(jwk);
        free(kb);
        free(k);
    }

    print_message("wycheproof ed25519: %zu cases, %zu as the suite says, "
                  "%zu expected rejects\n", t.total, t.pass, t.expected);
    assert_int_equal(t.total, 151);
    json_decref(root);

    /* HMAC-SHA256 */
    memset(&t, 0, sizeof(t));
    root = load_vectors("wycheproof/hmac_sha256_test.json");

    json_array_foreach(json_object_get(root, "testGroups"), gi, group) {
        why = NULL;

        if (json_integer_value(json_object_get(group, "keySize")) < 256) {
            why = "key below our minimum (256 bits)";

        } else if (json_integer_value(json_object_get(group, "tagSize"))
                   < 256)
        {
            why = "truncated tag";
        }

        json_array_foreach(json_object_get(group, "tests"), ti, test) {
            kb = unhex(json_string_value(json_object_get(test, "key")), &klen);
            k = b64url(kb, klen);
            jwk = json_pack("{s:s, s:s}", "kty", "oct", "k", k);
            jwks = jwks_from_json(jwk);

            if (jwks == NULL) {
                assert_true(klen < ENCORE_JWK_HMAC_MIN_LEN);
            }

            primitive_case(&t, jwks ? &jwks->keys[0] : NULL, ENCORE_JWS_HS256,
                           test, "hmac", why);

            encore_jwks_free(jwks);
            json_decref(jwk);
            free(kb);
            free(k);
        }
    }

    print_message("wycheproof hmac-sha256: %zu cases, %zu as the suite says, "
                  "%zu expected rejects\n", t.total, t.pass, t.expected);
    assert_int_equal(t.total, 174);
    json_decref(root);

    /* RSA PKCS#1 v1.5 2048 SHA-256 */
    memset(&t, 0, sizeof(t));
    root = load_vectors("wycheproof/rsa_signature_2048_sha256_test.json");

    json_array_foreach(json_object_get(root, "testGroups"), gi, group) {
        jwks = jwks_from_json(json_object_get(group, "keyJwk"));
        assert_non_null(jwks);

        json_array_foreach(json_object_get(group, "tests"), ti, test) {
            primitive_case(&t, &jwks->keys[0], ENCORE_JWS_RS256, test,
                           "rsa", NULL);
        }

        encore_jwks_free(jwks);
    }

    print_message("wycheproof rsa 2048 sha-256: %zu cases, %zu as the suite "
                  "says, %zu expected rejects\n", t.total, t.pass, t.expected);
    assert_int_equal(t.total, 259);
    json_decref(root);
}


/* ---- RFC 7515 appendix A, RFC 7520 section 4 --------------------------- */

static time_t
fixed_clock(void *data)
{
    return *(time_t *) data;
}


static int
rfc_vector(const char *jwk_file, const char *jws_file, unsigned algs)
{
    int             rc;
    char           *key, *token;
    size_t          klen, tlen;
    encore_jwks_t  *jwks;

    key = read_text(jwk_file, &klen);
    token = read_text(jws_file, &tlen);
    jwks = jwks_from_string(key);

    rc = jws_check(jwks, token, tlen, algs);

    encore_jwks_free(jwks);
    free(key);
    free(token);

    return rc;
}


static void
test_rfc_vectors(void **state)
{
    int                     rc;
    char                   *key, *token, *high;
    size_t                  klen, tlen;
    time_t                  now;
    json_t                 *claims;
    long long               exp;
    const char             *err;
    encore_jws_t            jws;
    encore_jwks_t          *jwks;
    encore_claims_policy_t  policy;

    assert_int_equal(rfc_vector("jose/rfc7515_A.1.jwk",
                                "jose/rfc7515_A.1.jwsc",
                                ENCORE_JWS_HS256), ENCORE_JWS_OK);
    assert_int_equal(rfc_vector("jose/rfc7515_A.2.jwk",
                                "jose/rfc7515_A.2.jwsc",
                                ENCORE_JWS_RS256), ENCORE_JWS_OK);
    /* A.3's s happens to be high: refused; its low twin below verifies */
    assert_int_equal(rfc_vector("jose/rfc7515_A.3.jwk",
                                "jose/rfc7515_A.3.jwsc",
                                ENCORE_JWS_ES256), ENCORE_JWS_ESIG);
    /* ES512 (A.4) is not supported: the key set has no usable key */
    assert_int_not_equal(rfc_vector("jose/rfc7515_A.4.jwk",
                                    "jose/rfc7515_A.4.jwsc",
                                    ENCORE_JWS_ALL), ENCORE_JWS_OK);
    /* A.5 is an unsecured JWS: alg none */
    assert_int_equal(rfc_vector("jose/rfc7515_A.3.jwk",
                                "jose/rfc7515_A.5.jwsc",
                                ENCORE_JWS_ALL), ENCORE_JWS_EMALFORMED);
    /* RFC 7520 4.1 RS256, 4.4 HS256; 4.2 PS384 and 4.3 ES512 unsupported */
    assert_int_equal(rfc_vector("jose/rfc7520_4.1.jwk",
                                "jose/rfc7520_4.1.jwsc",
                                ENCORE_JWS_RS256), ENCORE_JWS_OK);
    assert_int_equal(rfc_vector("jose/rfc7520_4.4.jwk",
                                "jose/rfc7520_4.4.jwsc",
                                ENCORE_JWS_HS256), ENCORE_JWS_OK);
    assert_int_equal(rfc_vector("jose/rfc7520_4.2.jwk",
                                "jose/rfc7520_4.2.jwsc",
                                ENCORE_JWS_ALL), ENCORE_JWS_EALG);
    assert_int_not_equal(rfc_vector("jose/rfc7520_4.3.jwk",
                                    "jose/rfc7520_4.3.jwsc",
                                    ENCORE_JWS_ALL), ENCORE_JWS_OK);
    /* the right key, but the location allows only ES256 (the default) */
    assert_int_equal(rfc_vector("jose/rfc7515_A.1.jwk",
                                "jose/rfc7515_A.1.jwsc",
                                ENCORE_JWS_ES256), ENCORE_JWS_EALG);

    /* RFC 7517 key sets: A.1 public EC + RSA, A.2 private (public used) */
    key = read_text("jose/rfc7517_A.1.jwkset", &klen);
    jwks = jwks_from_string(key);
    assert_non_null(jwks);
    /* its EC key is "use":"enc": skipped; the RSA key is for "sig" */
    assert_int_equal(jwks->nkeys, 1);
    encore_jwks_free(jwks);
    free(key);

    /* claims of A.1 and A.3 with a fixed clock: exp is 1300819380 */
    memset(&policy, 0, sizeof(policy));
    policy.clock = fixed_clock;
    policy.clock_data = &now;
    policy.require_exp = 1;
    policy.issuer = "joe";

    key = read_text("jose/rfc7515_A.3.jwk", &klen);
    high = read_text("jose/rfc7515_A.3.jwsc", &tlen);
    jwks = jwks_from_string(key);
    assert_non_null(jwks);

    assert_int_equal(encore_jws_parse(&jws, high, tlen, 8192,
                                      ENCORE_JWS_ES256), ENCORE_JWS_OK);
    assert_int_equal(encore_jws_verify(&jws, jwks), ENCORE_JWS_ESIG);
    assert_string_equal(jws.error, "ES256 signature not in low-S form");
    encore_jws_free(&jws);

    token = es256_flipped(high);
    tlen = strlen(token);
    free(high);

    assert_int_equal(encore_jws_parse(&jws, token, tlen, 8192,
                                      ENCORE_JWS_ES256), ENCORE_JWS_OK);
    assert_int_equal(encore_jws_verify(&jws, jwks), ENCORE_JWS_OK);
    claims = encore_json_object_parse(jws.payload, jws.payload_len);
    assert_non_null(claims);

    now = 1300819379;
    assert_int_equal(encore_claims_check(claims, &policy, &exp, &err),
                     ENCORE_CLAIMS_OK);
    assert_int_equal(exp, 1300819380);
    now = 1300819380;
    assert_int_equal(encore_claims_check(claims, &policy, &exp, &err),
                     ENCORE_CLAIMS_EEXPIRED);
    policy.leeway = 60;
    now = 1300819439;
    assert_int_equal(encore_claims_check(claims, &policy, &exp, &err),
                     ENCORE_CLAIMS_OK);
    now = 1300819440;
    assert_int_equal(encore_claims_check(claims, &policy, &exp, &err),
                     ENCORE_CLAIMS_EEXPIRED);
    now = 1700000000;
    assert_int_equal(encore_claims_check(claims, &policy, &exp, &err),
                     ENCORE_CLAIMS_EEXPIRED);

    json_decref(claims);
    encore_jws_free(&jws);
    encore_jwks_free(jwks);
    free(key);
    free(token);
    (void) rc;
}


/* ---- our own tokens for the RFC 8725 attacks ---------------------------- */

typedef struct {
    EVP_PKEY       *ec;
    EVP_PKEY       *ec2;
    EVP_PKEY       *ed;
    unsigned char   secret[32];
    char           *jwks_text;
    encore_jwks_t  *jwks;
} keys_t;


static char *
ec_jwk(EVP_PKEY *pkey, const char *kid)
{
    char           *x, *y, *out;
    size_t          len;
    unsigned char   pub[65];

    assert_int_equal(EVP_PKEY_get_octet_string_param(pkey,
                         OSSL_PKEY_PARAM_PUB_KEY, pub, sizeof(pub), &len), 1);
    assert_int_equal(len, 65);
    x = b64url(pub + 1, 32);
    y = b64url(pub + 33, 32);
    assert_true(asprintf(&out, "{\"kty\":\"EC\",\"crv\":\"P-256\",\"kid\":"
                         "\"%s\",\"x\":\"%s\",\"y\":\"%s\"}", kid, x, y) > 0);
    free(x);
    free(y);

    return out;
}


static int
keys_setup(void **state)
{
    char           *e1, *e2, *ed, *k;
    size_t          len;
    keys_t         *keys;
    unsigned char   pub[32];

    keys = calloc(1, sizeof(keys_t));
    assert_non_null(keys);

    keys->ec = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
    keys->ec2 = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
    keys->ed = EVP_PKEY_Q_keygen(NULL, NULL, "ED25519");
    assert_true(keys->ec && keys->ec2 && keys->ed);
    memset(keys->secret, 0x5a, sizeof(keys->secret));

    len = sizeof(pub);
    assert_int_equal(EVP_PKEY_get_raw_public_key(keys->ed, pub, &len), 1);

    e1 = ec_jwk(keys->ec, "ec-1");
    e2 = ec_jwk(keys->ec2, "ec-2");
    ed = b64url(pub, 32);
    k = b64url(keys->secret, 32);

    assert_true(asprintf(&keys->jwks_text, "{\"keys\":[%s,%s,"
                         "{\"kty\":\"OKP\",\"crv\":\"Ed25519\",\"kid\":\"ed-1\","
                         "\"x\":\"%s\"},"
                         "{\"kty\":\"oct\",\"kid\":\"hs-1\",\"k\":\"%s\"}]}",
                         e1, e2, ed, k) > 0);
    keys->jwks = jwks_from_string(keys->jwks_text);
    assert_non_null(keys->jwks);
    assert_int_equal(keys->jwks->nkeys, 4);

    free(e1);
    free(e2);
    free(ed);
    free(k);
    *state = keys;

    return 0;
}


static int
keys_teardown(void **state)
{
    keys_t  *keys = *state;

    encore_jwks_free(keys->jwks);
    EVP_PKEY_free(keys->ec);
    EVP_PKEY_free(keys->ec2);
    EVP_PKEY_free(keys->ed);
    free(keys->jwks_text);
    free(keys);

    return 0;
}


/* raw signature as a JWS carries it */
static size_t
sign_raw(EVP_PKEY *pkey, const unsigned char *secret, unsigned alg,
    const char *in, unsigned char *sig)
{
    size_t               len;
    unsigned int         hlen;
    EVP_MD_CTX          *ctx;
    ECDSA_SIG           *es;
    const BIGNUM        *r, *s;
    unsigned char        der[80];
    const unsigned char *p;

    if (alg == ENCORE_JWS_HS256) {
        assert_non_null(HMAC(EVP_sha256(), secret, 32,
                             (const unsigned char *) in, strlen(in), sig,
                             &hlen));
        return hlen;
    }

    ctx = EVP_MD_CTX_new();
    assert_non_null(ctx);
    assert_int_equal(EVP_DigestSignInit(ctx, NULL,
                         alg == ENCORE_JWS_EDDSA ? NULL : EVP_sha256(), NULL,
                         pkey), 1);

    if (alg == ENCORE_JWS_EDDSA) {
        len = 64;
        assert_int_equal(EVP_DigestSign(ctx, sig, &len,
                         (const unsigned char *) in, strlen(in)), 1);
        EVP_MD_CTX_free(ctx);
        return len;
    }

    len = sizeof(der);
    assert_int_equal(EVP_DigestSign(ctx, der, &len,
                     (const unsigned char *) in, strlen(in)), 1);
    EVP_MD_CTX_free(ctx);

    p = der;
    es = d2i_ECDSA_SIG(NULL, &p, (long) len);
    assert_non_null(es);
    ECDSA_SIG_get0(es, &r, &s);
    BN_bn2binpad(r, sig, 32);
    BN_bn2binpad(s, sig + 32, 32);
    ECDSA_SIG_free(es);

    /* the canonical form, as every signer must now produce it */
    if (es256_s_is_high(sig)) {
        es256_flip(sig);
    }

    return 64;
}


/* a compact JWS of header and payload JSON texts; the caller frees it */
static char *
mint(const keys_t *keys, EVP_PKEY *pkey, unsigned alg, const char *header,
    const char *payload)
{
    char           *h, *p, *in, *s, *out;
    size_t          len;
    unsigned char   sig[512];

    h = b64url((const unsigned char *) header, strlen(header));
    p = b64url((const unsigned char *) payload, strlen(payload));
    assert_true(asprintf(&in, "%s.%s", h, p) > 0);

    len = sign_raw(pkey, keys->secret, alg, in, sig);
    s = b64url(sig, len);
    assert_true(asprintf(&out, "%s.%s", in, s) > 0);

    free(h);
    free(p);
    free(in);
    free(s);

    return out;
}


static char *
with_sig(const char *token, const unsigned char *sig, size_t len)
{
    char        *s, *out;
    const char  *dot;

    dot = strrchr(token, '.');
    s = b64url(sig, len);
    assert_true(asprintf(&out, "%.*s.%s", (int) (dot - token), token, s) > 0);
    free(s);

    return out;
}


static const char  *claims_ok = "{\"sub\":\"u-1\",\"exp\":4102444800}";


static void
test_valid_tokens(void **state)
{
    char    *t;
    keys_t  *k = *state;

    t = mint(k, k->ec, ENCORE_JWS_ES256,
             "{\"alg\":\"ES256\",\"kid\":\"ec-1\"}", claims_ok);
    assert_true(jws_ok(k->jwks, t, ENCORE_JWS_ES256));
    free(t);

    t = mint(k, k->ed, ENCORE_JWS_EDDSA,
             "{\"alg\":\"EdDSA\",\"kid\":\"ed-1\"}", claims_ok);
    assert_true(jws_ok(k->jwks, t, ENCORE_JWS_EDDSA));
    free(t);

    t = mint(k, NULL, ENCORE_JWS_HS256,
             "{\"alg\":\"HS256\",\"kid\":\"hs-1\"}", claims_ok);
    assert_true(jws_ok(k->jwks, t, ENCORE_JWS_HS256));
    free(t);

    /* no kid: only one HS256 key exists, so it is the one */
    t = mint(k, NULL, ENCORE_JWS_HS256, "{\"alg\":\"HS256\"}", claims_ok);
    assert_true(jws_ok(k->jwks, t, ENCORE_JWS_HS256));
    free(t);

    /* no kid and two ES256 keys: ambiguous, refused rather than tried */
    t = mint(k, k->ec, ENCORE_JWS_ES256, "{\"alg\":\"ES256\"}", claims_ok);
    assert_int_equal(jws_check(k->jwks, t, strlen(t), ENCORE_JWS_ES256),
                     ENCORE_JWS_EKID);
    free(t);
}


/* RFC 8725 3.1: alg none in any case, missing or non-string alg */
static void
test_attack_alg(void **state)
{
    size_t       i;
    char        *t;
    keys_t      *k = *state;
    const char  *headers[] = {
        "{\"alg\":\"none\"}", "{\"alg\":\"None\"}", "{\"alg\":\"NONE\"}",
        "{\"alg\":\"nOnE\"}", "{\"alg\":\"none\",\"kid\":\"hs-1\"}",
        "{\"kid\":\"ec-1\"}", "{\"alg\":null,\"kid\":\"ec-1\"}",
        "{\"alg\":256,\"kid\":\"ec-1\"}", "{\"alg\":[\"ES256\"]}",
        "{\"alg\":\"es256\",\"kid\":\"ec-1\"}", "{\"alg\":\"ES256 \"}",
        "{\"alg\":\"ES384\",\"kid\":\"ec-1\"}", "{\"alg\":\"\"}"
    };

    for (i = 0; i < sizeof(headers) / sizeof(headers[0]); i++) {
        /* signed with a real key: the header alone must condemn it */
        t = mint(k, NULL, ENCORE_JWS_HS256, headers[i], claims_ok);
        assert_int_equal(jws_check(k->jwks, t, strlen(t), ENCORE_JWS_ALL),
                         ENCORE_JWS_EALG);
        free(t);
    }

    /* unsecured form: empty signature */
    assert_int_not_equal(jws_check(k->jwks,
        "eyJhbGciOiJub25lIn0.eyJzdWIiOiJ4In0.", 36, ENCORE_JWS_ALL),
        ENCORE_JWS_OK);

    /* outside the location's allow-list, with the right key */
    t = mint(k, k->ed, ENCORE_JWS_EDDSA,
             "{\"alg\":\"EdDSA\",\"kid\":\"ed-1\"}", claims_ok);
    assert_int_equal(jws_check(k->jwks, t, strlen(t), ENCORE_JWS_ES256),
                     ENCORE_JWS_EALG);
    free(t);
}


/* RFC 8725 2.1: HS256 keyed with the public key of an asymmetric key */
static void
test_attack_key_confusion(void **state)
{
    char           *t, *hdr;
    keys_t         *k = *state;
    size_t          len;
    unsigned char   pub[65], secret[32];

    len = sizeof(pub);
    assert_int_equal(EVP_PKEY_get_octet_string_param(k->ec,
                         OSSL_PKEY_PARAM_PUB_KEY, pub, sizeof(pub), &len), 1);

    hdr = "{\"alg\":\"HS256\",\"kid\":\"ec-1\"}";

    /* the attacker's MAC key: the verification key's bytes */
    memcpy(secret, pub + 1, 32);
    {
        keys_t  fake = *k;

        memcpy(fake.secret, secret, 32);
        t = mint(&fake, NULL, ENCORE_JWS_HS256, hdr, claims_ok);
    }

    assert_int_equal(jws_check(k->jwks, t, strlen(t), ENCORE_JWS_ALL),
                     ENCORE_JWS_EKID);
    free(t);

    /* an ES256 token presented under the HS256 key's kid */
    t = mint(k, k->ec, ENCORE_JWS_ES256,
             "{\"alg\":\"ES256\",\"kid\":\"hs-1\"}", claims_ok);
    assert_int_equal(jws_check(k->jwks, t, strlen(t), ENCORE_JWS_ALL),
                     ENCORE_JWS_EKID);
    free(t);
}


/* stripped, truncated, DER, wrong-length signatures; r, s = 0 or >= n */
static void
test_attack_signature_form(void **state)
{
    char           *t, *bad;
    keys_t         *k = *state;
    size_t          len, i;
    unsigned char   sig[80], der[80], *p;
    ECDSA_SIG      *es;
    BIGNUM         *r, *s;
    const char     *dot;

    static const unsigned char  n[32] = {
        0xff, 0xff, 0xff, 0xff, 0x00, 0x00, 0x00, 0x00,
        0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
        0xbc, 0xe6, 0xfa, 0xad, 0xa7, 0x17, 0x9e, 0x84,
        0xf3, 0xb9, 0xca, 0xc2, 0xfc, 0x63, 0x25, 0x51
    };

    t = mint(k, k->ec, ENCORE_JWS_ES256,
             "{\"alg\":\"ES256\",\"kid\":\"ec-1\"}", claims_ok);
    assert_true(jws_ok(k->jwks, t, ENCORE_JWS_ES256));

    dot = strrchr(t, '.');
    assert_int_equal(encore_base64url_decode(sig, &len, dot + 1,
                                             strlen(dot + 1)), 0);
    assert_int_equal(len, 64);

    /* stripped: "h.p." and "h.p" */
    bad = strndup(t, dot - t + 1);
    assert_int_equal(jws_check(k->jwks, bad, strlen(bad), ENCORE_JWS_ES256),
                     ENCORE_JWS_EMALFORMED);
    bad[dot - t] = '\0';
    assert_int_equal(jws_check(k->jwks, bad, strlen(bad), ENCORE_JWS_ES256),
                     ENCORE_JWS_EMALFORMED);
    free(bad);

    /* truncated, extended, wrong length */
    for (i = 0; i < 4; i++) {
        static const size_t  lens[] = { 63, 32, 65, 1 };

        sig[64] = 0;
        bad = with_sig(t, sig, lens[i]);
        assert_int_equal(jws_check(k->jwks, bad, strlen(bad),
                                   ENCORE_JWS_ES256), ENCORE_JWS_ESIG);
        free(bad);
    }

    /* the same signature DER-encoded, as OpenSSL would emit it */
    es = ECDSA_SIG_new();
    r = BN_bin2bn(sig, 32, NULL);
    s = BN_bin2bn(sig + 32, 32, NULL);
    assert_int_equal(ECDSA_SIG_set0(es, r, s), 1);
    p = der;
    len = i2d_ECDSA_SIG(es, &p);
    ECDSA_SIG_free(es);
    bad = with_sig(t, der, len);
    assert_int_equal(jws_check(k->jwks, bad, strlen(bad), ENCORE_JWS_ES256),
                     ENCORE_JWS_ESIG);
    free(bad);

    /* r or s zero, equal to n, above n: refused before OpenSSL sees them */
    for (i = 0; i < 6; i++) {
        unsigned char  v[64];

        memcpy(v, sig, 64);

        switch (i) {
        case 0: memset(v, 0, 32); break;
        case 1: memset(v + 32, 0, 32); break;
        case 2: memcpy(v, n, 32); break;
        case 3: memcpy(v + 32, n, 32); break;
        case 4: memset(v, 0xff, 32); break;
        case 5: memset(v, 0, 64); break;
        }

        bad = with_sig(t, v, 64);
        assert_int_equal(jws_check(k->jwks, bad, strlen(bad),
                                   ENCORE_JWS_ES256), ENCORE_JWS_ESIG);
        free(bad);
    }

    /* r + n, s + n (overflowing 32 bytes) cannot even be expressed */

    /*
     * high S: (r, n - s) verifies as (r, s) does, so a second valid
     * string of the same token; refused with its own reason
     */
    bad = es256_flipped(t);
    assert_int_equal(jws_check(k->jwks, bad, strlen(bad), ENCORE_JWS_ES256),
                     ENCORE_JWS_ESIG);
    assert_true(jws_error_is(k->jwks, bad, "ES256 signature not in low-S form"));
    free(bad);

    /* the bound is floor(n / 2) exactly: at it the form passes (and the
       forged signature fails as any), one above it is high */
    for (i = 0; i < 2; i++) {
        unsigned char  v[64];
        BIGNUM        *half;

        memcpy(v, sig, 32);
        half = p256_order(1);
        if (i == 1) {
            assert_int_equal(BN_add_word(half, 1), 1);
        }
        assert_int_equal(BN_bn2binpad(half, v + 32, 32), 32);
        BN_free(half);

        bad = with_sig(t, v, 64);
        assert_true(jws_error_is(k->jwks, bad,
                                 i ? "ES256 signature not in low-S form"
                                   : "invalid signature"));
        free(bad);
    }

    /* every token minted here is low: the flip of a low one is high */
    for (i = 0; i < 64; i++) {
        char  *u, *f;

        u = mint(k, k->ec, ENCORE_JWS_ES256,
                 "{\"alg\":\"ES256\",\"kid\":\"ec-1\"}", claims_ok);
        f = es256_flipped(u);
        assert_true(jws_ok(k->jwks, u, ENCORE_JWS_ES256));
        assert_false(jws_ok(k->jwks, f, ENCORE_JWS_ES256));
        free(u);
        free(f);
    }

    free(t);
}


/* RFC 8725 3.10 / 7515 4.1.2-4.1.6: embedded key material never trusted */
static void
test_attack_embedded_keys(void **state)
{
    size_t       i;
    char        *t, *attacker, *hdr;
    keys_t      *k = *state;
    EVP_PKEY    *evil;
    const char  *forms[] = {
        "{\"alg\":\"ES256\",\"jwk\":%s}",
        "{\"alg\":\"ES256\",\"kid\":\"evil\",\"jwk\":%s}",
        "{\"alg\":\"ES256\",\"kid\":\"ec-1\",\"jwk\":%s}",
        "{\"alg\":\"ES256\",\"kid\":\"ec-1\",\"jku\":\"https://evil/\","
        "\"x\":%s}",
        "{\"alg\":\"ES256\",\"kid\":\"ec-1\",\"x5u\":\"https://evil/\","
        "\"x\":%s}",
        "{\"alg\":\"ES256\",\"kid\":\"ec-1\",\"x5c\":[\"MIIB\"],\"x\":%s}"
    };

    evil = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
    attacker = ec_jwk(evil, "evil");

    for (i = 0; i < sizeof(forms) / sizeof(forms[0]); i++) {
        assert_true(asprintf(&hdr, forms[i], attacker) > 0);
        t = mint(k, evil, ENCORE_JWS_ES256, hdr, claims_ok);
        assert_int_not_equal(jws_check(k->jwks, t, strlen(t),
                                       ENCORE_JWS_ES256), ENCORE_JWS_OK);
        free(t);
        free(hdr);
    }

    /* the real key with a jku header: jku is ignored, not fetched */
    t = mint(k, k->ec, ENCORE_JWS_ES256, "{\"alg\":\"ES256\",\"kid\":\"ec-1\","
             "\"jku\":\"https://evil/\"}", claims_ok);
    assert_true(jws_ok(k->jwks, t, ENCORE_JWS_ES256));
    free(t);

    free(attacker);
    EVP_PKEY_free(evil);
}


static void
test_attack_kid(void **state)
{
    char    *t, *hdr, *big;
    keys_t  *k = *state;

    /* path characters: only ever a table lookup, so just unknown */
    t = mint(k, k->ec, ENCORE_JWS_ES256,
             "{\"alg\":\"ES256\",\"kid\":\"../../../dev/null\"}", claims_ok);
    assert_int_equal(jws_check(k->jwks, t, strlen(t), ENCORE_JWS_ES256),
                     ENCORE_JWS_EKID);
    free(t);

    /* NUL: jansson refuses \u0000, so the header is malformed */
    t = mint(k, k->ec, ENCORE_JWS_ES256,
             "{\"alg\":\"ES256\",\"kid\":\"ec-1\\u0000x\"}", claims_ok);
    assert_int_equal(jws_check(k->jwks, t, strlen(t), ENCORE_JWS_ES256),
                     ENCORE_JWS_EMALFORMED);
    free(t);

    t = mint(k, k->ec, ENCORE_JWS_ES256,
             "{\"alg\":\"ES256\",\"kid\":\"ec-1\\n\"}", claims_ok);
    assert_int_equal(jws_check(k->jwks, t, strlen(t), ENCORE_JWS_ES256),
                     ENCORE_JWS_EMALFORMED);
    free(t);

    /* 10 KB kid */
    big = malloc(10241);
    assert_non_null(big);
    memset(big, 'a', 10240);
    big[10240] = '\0';
    assert_true(asprintf(&hdr, "{\"alg\":\"ES256\",\"kid\":\"%s\"}", big) > 0);
    t = mint(k, k->ec, ENCORE_JWS_ES256, hdr, claims_ok);
    assert_int_equal(jws_check(k->jwks, t, strlen(t), ENCORE_JWS_ES256),
                     ENCORE_JWS_EMALFORMED);
    /* and over the default size limit anyway */
    {
        encore_jws_t  jws;

        assert_int_equal(encore_jws_parse(&jws, t, strlen(t),
                                          ENCORE_JWS_DEFAULT_MAX_SIZE,
                                          ENCORE_JWS_ES256),
                         ENCORE_JWS_ETOOLARGE);
        encore_jws_free(&jws);
    }
    free(t);
    free(hdr);
    free(big);

    /* kid of a non-string type */
    t = mint(k, k->ec, ENCORE_JWS_ES256,
             "{\"alg\":\"ES256\",\"kid\":1}", claims_ok);
    assert_int_equal(jws_check(k->jwks, t, strlen(t), ENCORE_JWS_ES256),
                     ENCORE_JWS_EMALFORMED);
    free(t);

    /* unknown kid */
    t = mint(k, k->ec, ENCORE_JWS_ES256,
             "{\"alg\":\"ES256\",\"kid\":\"ec-9\"}", claims_ok);
    assert_int_equal(jws_check(k->jwks, t, strlen(t), ENCORE_JWS_ES256),
                     ENCORE_JWS_EKID);
    free(t);

    /* no fallback: signed by ec-2, announced as ec-1 */
    t = mint(k, k->ec2, ENCORE_JWS_ES256,
             "{\"alg\":\"ES256\",\"kid\":\"ec-1\"}", claims_ok);
    assert_int_equal(jws_check(k->jwks, t, strlen(t), ENCORE_JWS_ES256),
                     ENCORE_JWS_ESIG);
    free(t);
}


static void
test_attack_crit(void **state)
{
    size_t       i;
    char        *t;
    keys_t      *k = *state;
    const char  *headers[] = {
        "{\"alg\":\"ES256\",\"kid\":\"ec-1\",\"crit\":[\"exp\"],\"exp\":1}",
        "{\"alg\":\"ES256\",\"kid\":\"ec-1\",\"crit\":[\"b64\"],\"b64\":true}",
        "{\"alg\":\"ES256\",\"kid\":\"ec-1\",\"crit\":[]}",
        "{\"alg\":\"ES256\",\"kid\":\"ec-1\",\"crit\":\"exp\"}",
        "{\"alg\":\"ES256\",\"kid\":\"ec-1\",\"crit\":[1]}",
        "{\"alg\":\"ES256\",\"kid\":\"ec-1\",\"crit\":null}"
    };

    for (i = 0; i < sizeof(headers) / sizeof(headers[0]); i++) {
        t = mint(k, k->ec, ENCORE_JWS_ES256, headers[i], claims_ok);
        assert_int_equal(jws_check(k->jwks, t, strlen(t), ENCORE_JWS_ES256),
                         ENCORE_JWS_ECRIT);
        free(t);
    }
}


static void
test_attack_encoding(void **state)
{
    char        *t, *bad;
    keys_t      *k = *state;
    size_t       i, len;

    t = mint(k, k->ec, ENCORE_JWS_ES256,
             "{\"alg\":\"ES256\",\"kid\":\"ec-1\"}", claims_ok);
    len = strlen(t);

    /* standard alphabet: '-' and '_' as '+' and '/' */
    bad = strdup(t);
    for (i = 0; i < len; i++) {
        if (bad[i] == '-') { bad[i] = '+'; }
        if (bad[i] == '_') { bad[i] = '/'; }
    }
    if (strcmp(bad, t) != 0) {
        assert_int_equal(jws_check(k->jwks, bad, len, ENCORE_JWS_ES256),
                         ENCORE_JWS_EMALFORMED);
    }
    free(bad);

    assert_int_equal(jws_check(k->jwks, "eyJhbGciOiJFUzI1NiJ9+.e30.AAAA",
                               29, ENCORE_JWS_ES256), ENCORE_JWS_EMALFORMED);

    /* padding on the signature (and on the header) */
    assert_true(asprintf(&bad, "%s==", t) > 0);
    assert_int_equal(jws_check(k->jwks, bad, strlen(bad), ENCORE_JWS_ES256),
                     ENCORE_JWS_EMALFORMED);
    free(bad);

    /* 2 and 4 segments, and the 5 of a JWE */
    assert_int_equal(jws_check(k->jwks, t, strrchr(t, '.') - t,
                               ENCORE_JWS_ES256), ENCORE_JWS_EMALFORMED);
    assert_true(asprintf(&bad, "%s.AAAA", t) > 0);
    assert_int_equal(jws_check(k->jwks, bad, strlen(bad), ENCORE_JWS_ES256),
                     ENCORE_JWS_EMALFORMED);
    free(bad);
    assert_true(asprintf(&bad, "%s.AAAA.AAAA", t) > 0);
    assert_int_equal(jws_check(k->jwks, bad, strlen(bad), ENCORE_JWS_ES256),
                     ENCORE_JWS_EMALFORMED);
    free(bad);
    assert_int_equal(jws_check(k->jwks, "", 0, ENCORE_JWS_ES256),
                     ENCORE_JWS_EMALFORMED);
    assert_int_equal(jws_check(k->jwks, "..", 2, ENCORE_JWS_ES256),
                     ENCORE_JWS_EMALFORMED);

    /* whitespace inside the token */
    assert_true(asprintf(&bad, " %s", t) > 0);
    assert_int_equal(jws_check(k->jwks, bad, strlen(bad), ENCORE_JWS_ES256),
                     ENCORE_JWS_EMALFORMED);
    free(bad);

    free(t);
}


static void
test_attack_json(void **state)
{
    size_t       i;
    char        *t, *deep;
    keys_t      *k = *state;
    const char  *headers[] = {
        "{\"alg\":\"ES256\",\"kid\":\"ec-1\",\"alg\":\"none\"}",
        "{\"alg\":\"ES256\",\"kid\":\"ec-1\",\"kid\":\"ec-2\"}",
        "[\"ES256\"]", "\"ES256\"", "1", "null", "",
        "{\"alg\":\"ES256\",\"kid\":\"ec-1\"",
        "{\"alg\":\"ES256\",\"kid\":\"ec-1\"} {}",
        "{\"alg\":\"ES256\",\"kid\":\"\xff\xfe\"}",
        "{\"alg\":\"ES256\",\"kid\":\"ec-1\",\"x\":\"\xc0\xaf\"}",
        "{\"alg\":\"ES256\",\"kid\":\"ec-1\",\"x\":\"\xed\xa0\x80\"}"
    };

    for (i = 0; i < sizeof(headers) / sizeof(headers[0]); i++) {
        if (headers[i][0] == '\0') {
            continue;
        }

        t = mint(k, k->ec, ENCORE_JWS_ES256, headers[i], claims_ok);
        assert_int_equal(jws_check(k->jwks, t, strlen(t), ENCORE_JWS_ES256),
                         ENCORE_JWS_EMALFORMED);
        free(t);
    }

    /* deeply nested header member */
    deep = malloc(4096);
    assert_non_null(deep);
    strcpy(deep, "{\"alg\":\"ES256\",\"kid\":\"ec-1\",\"x\":");
    for (i = 0; i < 1000; i++) { strcat(deep, "["); }
    for (i = 0; i < 1000; i++) { strcat(deep, "]"); }
    strcat(deep, "}");
    t = mint(k, k->ec, ENCORE_JWS_ES256, deep, claims_ok);
    assert_int_equal(jws_check(k->jwks, t, strlen(t), ENCORE_JWS_ES256),
                     ENCORE_JWS_EMALFORMED);
    free(t);
    free(deep);

    /* the claims set gets the same parser */
    assert_null(encore_json_object_parse("{\"sub\":\"a\",\"sub\":\"b\"}", 21));
    assert_null(encore_json_object_parse("[]", 2));
    assert_null(encore_json_object_parse("{\"a\":\"\xff\"}", 9));
    assert_null(encore_json_object_parse("{\"a\":[[[[[[[[[[[[[[[[[[[]]]]]]]"
                                         "]]]]]]]]]]]]}", 46));
    {
        json_t  *j = encore_json_object_parse("{\"a\":\"[[[[[[[[[[[[[[[[[[[[\"}",
                                             28);
        assert_non_null(j);  /* brackets inside strings are not nesting */
        json_decref(j);
    }
}


static void
test_attack_size(void **state)
{
    char          *t;
    keys_t        *k = *state;
    encore_jws_t   jws;

    /* a 1 MB token is refused before any decoding */
    t = malloc(1024 * 1024 + 1);
    assert_non_null(t);
    memset(t, 'A', 1024 * 1024);
    t[100] = '.';
    t[200] = '.';
    t[1024 * 1024] = '\0';

    assert_int_equal(encore_jws_parse(&jws, t, 1024 * 1024,
                                      ENCORE_JWS_DEFAULT_MAX_SIZE,
                                      ENCORE_JWS_ALL), ENCORE_JWS_ETOOLARGE);
    assert_null(jws.buf);
    encore_jws_free(&jws);
    free(t);

    t = mint(k, k->ec, ENCORE_JWS_ES256,
             "{\"alg\":\"ES256\",\"kid\":\"ec-1\"}", claims_ok);
    assert_int_equal(encore_jws_parse(&jws, t, strlen(t), strlen(t) - 1,
                                      ENCORE_JWS_ES256), ENCORE_JWS_ETOOLARGE);
    encore_jws_free(&jws);
    assert_int_equal(encore_jws_parse(&jws, t, strlen(t), strlen(t),
                                      ENCORE_JWS_ES256), ENCORE_JWS_OK);
    encore_jws_free(&jws);
    free(t);
}


/* ---- key loading ------------------------------------------------------- */

/* The small-order Ed25519 encodings (libsodium's list), each also with the
   sign bit set. */
static const char  *small_order[] = {
    "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
    "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAIA",
    "AQAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
    "AQAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAIA",
    "JuiVj8KyJ7BFw_SJ8u-Y8NXfrAXTxjM5sTgCiG1T_AU",
    "JuiVj8KyJ7BFw_SJ8u-Y8NXfrAXTxjM5sTgCiG1T_IU",
    "xxdqcD1N2E-6PAt2DRBnDyogU_osOczGTsf9d5KsA3o",
    "xxdqcD1N2E-6PAt2DRBnDyogU_osOczGTsf9d5KsA_o",
    "7P_______________________________________38",
    "7P________________________________________8",
    "7f_______________________________________38",
    "7f________________________________________8",
    "7v_______________________________________38",
    "7v________________________________________8"
};

static void
test_weak_keys(void **state)
{
    size_t          i;
    char           err[256], *text;
    EVP_PKEY       *rsa;
    BIGNUM         *n;
    unsigned char   nb[256];
    char           *ns;
    encore_jwks_t  *jwks;

    /* HS256 secret of 16 bytes */
    jwks = encore_jwks_parse("{\"kty\":\"oct\",\"k\":\"AAAAAAAAAAAAAAAAAAAAAA\"}",
                             42, err, sizeof(err));
    assert_null(jwks);
    assert_non_null(strstr(err, "weak"));

    /* RSA 1024 */
    rsa = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t) 1024);
    assert_non_null(rsa);
    n = NULL;
    assert_int_equal(EVP_PKEY_get_bn_param(rsa, OSSL_PKEY_PARAM_RSA_N, &n), 1);
    BN_bn2bin(n, nb);
    ns = b64url(nb, 128);
    assert_true(asprintf(&text, "{\"keys\":[{\"kty\":\"RSA\",\"n\":\"%s\","
                         "\"e\":\"AQAB\"}]}", ns) > 0);
    jwks = encore_jwks_parse(text, strlen(text), err, sizeof(err));
    assert_null(jwks);
    assert_non_null(strstr(err, "weak RSA key: 1024 bits"));
    free(text);
    free(ns);
    BN_free(n);
    EVP_PKEY_free(rsa);

    /* RSA exponent 1 and an even exponent, on a 2048-bit modulus */
    memset(nb, 0xc3, sizeof(nb));
    ns = b64url(nb, 256);
    assert_true(asprintf(&text, "{\"kty\":\"RSA\",\"n\":\"%s\",\"e\":\"AQ\"}",
                         ns) > 0);
    assert_null(encore_jwks_parse(text, strlen(text), err, sizeof(err)));
    free(text);
    assert_true(asprintf(&text, "{\"kty\":\"RSA\",\"n\":\"%s\",\"e\":\"AQAA\"}",
                         ns) > 0);
    assert_null(encore_jwks_parse(text, strlen(text), err, sizeof(err)));
    free(text);
    free(ns);

    /* EC point off the curve; short coordinates */
    assert_null(jwks_from_string("{\"kty\":\"EC\",\"crv\":\"P-256\","
        "\"x\":\"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAE\","
        "\"y\":\"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAE\"}"));
    assert_null(jwks_from_string("{\"kty\":\"EC\",\"crv\":\"P-256\","
        "\"x\":\"AAAA\",\"y\":\"AAAA\"}"));

    /* Ed25519 points of small order, canonical or not, either sign: with
       one of these any token "verifies" (R = identity, S = 0) */
    for (i = 0; i < sizeof(small_order) / sizeof(small_order[0]); i++) {
        assert_true(asprintf(&text, "{\"kty\":\"OKP\",\"crv\":\"Ed25519\","
                             "\"x\":\"%s\"}", small_order[i]) > 0);
        assert_null(encore_jwks_parse(text, strlen(text), err, sizeof(err)));
        assert_non_null(strstr(err, "small order"));
        free(text);
    }

    /* ...while a real key (RFC 8037, A.2) loads */
    jwks = jwks_from_string("{\"kty\":\"OKP\",\"crv\":\"Ed25519\","
        "\"x\":\"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo\"}");
    assert_non_null(jwks);
    encore_jwks_free(jwks);

    /* duplicate kid */
    assert_null(jwks_from_string("{\"keys\":["
        "{\"kty\":\"oct\",\"kid\":\"a\",\"k\":\"" "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA" "\"},"
        "{\"kty\":\"oct\",\"kid\":\"a\",\"k\":\"" "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA" "\"}]}"));

    /* skipped, not refused: encryption keys, other curves */
    jwks = jwks_from_string("{\"keys\":["
        "{\"kty\":\"oct\",\"use\":\"enc\",\"k\":\"AAAA\"},"
        "{\"kty\":\"EC\",\"crv\":\"P-384\",\"x\":\"AA\",\"y\":\"AA\"},"
        "{\"kty\":\"oct\",\"kid\":\"h\",\"k\":\""
        "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA\"}]}");
    assert_non_null(jwks);
    assert_int_equal(jwks->nkeys, 1);
    encore_jwks_free(jwks);

    /* nothing usable at all */
    assert_null(jwks_from_string("{\"keys\":[]}"));
    assert_null(jwks_from_string("[]"));
    assert_null(jwks_from_string("{\"keys\":[1]}"));
}


/* ---- claims ------------------------------------------------------------- */

/*
 * What the flat scanner accepts, jansson accepts with the same members and
 * values.  Returns whether the scanner accepted json.
 */
static int
flat_agrees(const char *json, size_t len)
{
    size_t                       i, k;
    json_t                      *root, *v;
    encore_flat_t                flat;
    const encore_flat_member_t  *m;
    char                         name[300];

    if (encore_flat_parse(&flat, json, len) != 0) {
        return 0;
    }

    root = encore_json_object_parse(json, len);
    assert_non_null(root);
    assert_int_equal(json_object_size(root), flat.nmembers);

    for (i = 0; i < flat.nmembers; i++) {
        m = &flat.members[i];
        assert_true(m->name.len < sizeof(name));
        memcpy(name, m->name.data, m->name.len);
        name[m->name.len] = '\0';

        v = json_object_get(root, name);
        assert_non_null(v);
        assert_ptr_equal(encore_flat_get(&flat, name), m);

        switch (m->type) {
        case ENCORE_FLAT_STRING:
            assert_true(json_is_string(v));
            assert_int_equal(json_string_length(v), m->value.len);
            assert_memory_equal(json_string_value(v), m->value.data,
                                m->value.len);
            break;
        case ENCORE_FLAT_INTEGER:
            assert_true(json_is_integer(v));
            assert_true(json_integer_value(v) == (json_int_t) m->integer);
            break;
        case ENCORE_FLAT_TRUE:
            assert_true(json_is_true(v));
            break;
        case ENCORE_FLAT_FALSE:
            assert_true(json_is_false(v));
            break;
        default:
            assert_int_equal(m->type, ENCORE_FLAT_ARRAY);
            assert_true(json_is_array(v));
            assert_int_equal(json_array_size(v), m->nitems);

            for (k = 0; k < m->nitems; k++) {
                assert_true(json_is_string(json_array_get(v, k)));
                assert_int_equal(json_string_length(json_array_get(v, k)),
                                 flat.items[m->first + k].len);
                assert_memory_equal(json_string_value(json_array_get(v, k)),
                                    flat.items[m->first + k].data,
                                    flat.items[m->first + k].len);
            }
        }
    }

    json_decref(root);

    return 1;
}


/* facts from a flat scan equal those from jansson, byte for byte */
static void
flat_facts_agree(const char *json, const encore_claims_facts_t *facts)
{
    encore_flat_t          flat;
    encore_claims_facts_t  ff;

    if (!flat_agrees(json, strlen(json))) {
        return;
    }

    assert_int_equal(encore_flat_parse(&flat, json, strlen(json)), 0);

    if (encore_claims_facts_flat(&ff, &flat) != 0) {
        return;
    }

    assert_int_equal(encore_claims_facts_size(&ff),
                     encore_claims_facts_size(facts));
    assert_memory_equal(&ff, facts, encore_claims_facts_size(facts));
}


/* claims decided by the cached facts as well as by the claims themselves */
static unsigned  claims_by_facts;


/*
 * The checks on the claims, and the same checks on the facts a cache entry
 * keeps (encore_claims_facts_init()): whenever the facts decide, they must
 * give the same verdict and the same error text.
 */
static int
claims_rc(const char *json, encore_claims_policy_t *policy)
{
    int                     rc, frc;
    json_t                 *claims;
    long long               exp;
    const char             *err, *ferr;
    encore_claims_facts_t   facts;

    claims = encore_json_object_parse(json, strlen(json));
    assert_non_null(claims);
    err = NULL;
    rc = encore_claims_check(claims, policy, &exp, &err);

    if (encore_claims_facts_init(&facts, claims) != 0) {
        /* only a token whose exp or nbf is malformed has no facts */
        assert_int_equal(rc, ENCORE_CLAIMS_EINVALID);
        json_decref(claims);
        return rc;
    }

    assert_true(encore_claims_facts_size(&facts) <= sizeof(facts));
    flat_facts_agree(json, &facts);

    ferr = NULL;
    frc = encore_claims_check_time_facts(&facts, policy, &ferr);

    if (frc == ENCORE_CLAIMS_OK) {
        frc = encore_claims_check_identity_facts(&facts, policy, &ferr);
    }

    if (frc != ENCORE_CLAIMS_EUNKNOWN) {
        claims_by_facts++;
        assert_int_equal(frc, rc);

        if (rc != ENCORE_CLAIMS_OK) {
            assert_string_equal(ferr, err);
        }
    }

    json_decref(claims);

    return rc;
}


/* the verdict of the claims, with its error text */
static int
claims_error(const char *json, encore_claims_policy_t *policy,
    const char **err)
{
    int         rc;
    json_t     *claims;
    long long   exp;

    claims = encore_json_object_parse(json, strlen(json));
    assert_non_null(claims);
    *err = NULL;
    rc = encore_claims_check(claims, policy, &exp, err);
    json_decref(claims);

    /* the facts agree, text included, wherever they decide */
    assert_int_equal(claims_rc(json, policy), rc);

    return rc;
}


/* whether the facts of json decide policy (else the claims are parsed) */
static int
claims_facts_decide(const char *json, encore_claims_policy_t *policy)
{
    int                     rc;
    json_t                 *claims;
    const char             *err;
    encore_claims_facts_t   facts;

    claims = encore_json_object_parse(json, strlen(json));
    assert_non_null(claims);
    assert_int_equal(encore_claims_facts_init(&facts, claims), 0);
    json_decref(claims);

    rc = encore_claims_check_identity_facts(&facts, policy, &err);

    return rc != ENCORE_CLAIMS_EUNKNOWN;
}


/* the text of a claim variable, from the facts of json */
static int
claims_fact_text(const char *json, const char *name, char *out)
{
    int                     kind;
    size_t                  len;
    json_t                 *claims;
    const char             *text;
    encore_claims_facts_t   facts;

    claims = encore_json_object_parse(json, strlen(json));
    assert_non_null(claims);
    assert_int_equal(encore_claims_facts_init(&facts, claims), 0);
    json_decref(claims);
    flat_facts_agree(json, &facts);

    out[0] = '\0';
    kind = encore_claims_facts_text(&facts, name, &text, &len);

    if (kind == ENCORE_CLAIM_TEXT) {
        memcpy(out, text, len);
        out[len] = '\0';
    }

    return kind;
}


static void
test_claims(void **state)
{
    time_t                  now;
    encore_claim_req_t      req;
    encore_claims_policy_t  p;
    const char             *roles[] = { "admin", "editor" };

    memset(&p, 0, sizeof(p));
    now = 1000000;
    p.clock = fixed_clock;
    p.clock_data = &now;
    p.require_exp = 1;

    assert_int_equal(claims_rc("{\"exp\":1000001}", &p), ENCORE_CLAIMS_OK);
    assert_int_equal(claims_rc("{\"exp\":1000000}", &p),
                     ENCORE_CLAIMS_EEXPIRED);
    assert_int_equal(claims_rc("{\"exp\":999999}", &p),
                     ENCORE_CLAIMS_EEXPIRED);
    assert_int_equal(claims_rc("{\"exp\":1000000.5}", &p),
                     ENCORE_CLAIMS_EEXPIRED);
    assert_int_equal(claims_rc("{\"sub\":\"x\"}", &p), ENCORE_CLAIMS_EINVALID);

    /* leeway edges */
    p.leeway = 30;
    assert_int_equal(claims_rc("{\"exp\":999971}", &p), ENCORE_CLAIMS_OK);
    assert_int_equal(claims_rc("{\"exp\":999970}", &p),
                     ENCORE_CLAIMS_EEXPIRED);
    assert_int_equal(claims_rc("{\"exp\":2000000,\"nbf\":1000030}", &p),
                     ENCORE_CLAIMS_OK);
    assert_int_equal(claims_rc("{\"exp\":2000000,\"nbf\":1000031}", &p),
                     ENCORE_CLAIMS_ENOTYET);
    p.leeway = 0;
    assert_int_equal(claims_rc("{\"exp\":2000000,\"nbf\":1000001}", &p),
                     ENCORE_CLAIMS_ENOTYET);
    assert_int_equal(claims_rc("{\"exp\":2000000,\"nbf\":1000000}", &p),
                     ENCORE_CLAIMS_OK);

    /* wrong types and ranges */
    assert_int_equal(claims_rc("{\"exp\":\"2000000\"}", &p),
                     ENCORE_CLAIMS_EINVALID);
    assert_int_equal(claims_rc("{\"exp\":true}", &p), ENCORE_CLAIMS_EINVALID);
    assert_int_equal(claims_rc("{\"exp\":null}", &p), ENCORE_CLAIMS_EINVALID);
    assert_int_equal(claims_rc("{\"exp\":[2000000]}", &p),
                     ENCORE_CLAIMS_EINVALID);
    assert_int_equal(claims_rc("{\"exp\":-1}", &p), ENCORE_CLAIMS_EINVALID);
    assert_int_equal(claims_rc("{\"exp\":1e300}", &p), ENCORE_CLAIMS_EINVALID);
    assert_int_equal(claims_rc("{\"exp\":9223372036854775807}", &p),
                     ENCORE_CLAIMS_EINVALID);
    assert_int_equal(claims_rc("{\"exp\":253402300800}", &p),
                     ENCORE_CLAIMS_EINVALID);
    assert_int_equal(claims_rc("{\"exp\":2000000,\"nbf\":\"0\"}", &p),
                     ENCORE_CLAIMS_EINVALID);

    /* iss */
    p.issuer = "https://encore.example";
    assert_int_equal(claims_rc("{\"exp\":2000000,"
                               "\"iss\":\"https://encore.example\"}", &p),
                     ENCORE_CLAIMS_OK);
    assert_int_equal(claims_rc("{\"exp\":2000000,"
                               "\"iss\":\"https://encore.example/\"}", &p),
                     ENCORE_CLAIMS_EISSUER);
    assert_int_equal(claims_rc("{\"exp\":2000000}", &p),
                     ENCORE_CLAIMS_EISSUER);
    p.issuer = NULL;

    /* aud as a string and as an array */
    p.audience = "encore";
    assert_int_equal(claims_rc("{\"exp\":2000000,\"aud\":\"encore\"}", &p),
                     ENCORE_CLAIMS_OK);
    assert_int_equal(claims_rc("{\"exp\":2000000,\"aud\":[\"x\",\"encore\"]}",
                               &p), ENCORE_CLAIMS_OK);
    assert_int_equal(claims_rc("{\"exp\":2000000,\"aud\":\"other\"}", &p),
                     ENCORE_CLAIMS_EAUDIENCE);
    assert_int_equal(claims_rc("{\"exp\":2000000,\"aud\":[\"other\"]}", &p),
                     ENCORE_CLAIMS_EAUDIENCE);
    assert_int_equal(claims_rc("{\"exp\":2000000,\"aud\":[]}", &p),
                     ENCORE_CLAIMS_EAUDIENCE);
    assert_int_equal(claims_rc("{\"exp\":2000000,\"aud\":[\"encore\",1]}",
                               &p), ENCORE_CLAIMS_EINVALID);
    assert_int_equal(claims_rc("{\"exp\":2000000,\"aud\":1}", &p),
                     ENCORE_CLAIMS_EINVALID);
    assert_int_equal(claims_rc("{\"exp\":2000000}", &p),
                     ENCORE_CLAIMS_EAUDIENCE);
    p.audience = NULL;

    /* role in a set: 403, not 401 */
    req.name = "role";
    req.values = roles;
    req.nvalues = 2;
    p.reqs = &req;
    p.nreqs = 1;
    assert_int_equal(claims_rc("{\"exp\":2000000,\"role\":\"editor\"}", &p),
                     ENCORE_CLAIMS_OK);
    assert_int_equal(claims_rc("{\"exp\":2000000,\"role\":[\"x\",\"admin\"]}",
                               &p), ENCORE_CLAIMS_OK);
    assert_int_equal(claims_rc("{\"exp\":2000000,\"role\":\"user\"}", &p),
                     ENCORE_CLAIMS_EFORBIDDEN);
    assert_int_equal(claims_rc("{\"exp\":2000000,\"role\":\"Admin\"}", &p),
                     ENCORE_CLAIMS_EFORBIDDEN);
    assert_int_equal(claims_rc("{\"exp\":2000000}", &p),
                     ENCORE_CLAIMS_EFORBIDDEN);
    assert_int_equal(claims_rc("{\"exp\":2000000,\"role\":null}", &p),
                     ENCORE_CLAIMS_EFORBIDDEN);
    /* time is checked first: an expired admin is 401 */
    assert_int_equal(claims_rc("{\"exp\":1,\"role\":\"admin\"}", &p),
                     ENCORE_CLAIMS_EEXPIRED);

    req.values = NULL;
    assert_int_equal(claims_rc("{\"exp\":2000000,\"role\":\"user\"}", &p),
                     ENCORE_CLAIMS_OK);
}


/*
 * iat: what a revocation compares against, so required, a number and not
 * in the future beyond the leeway; fractions are truncated like exp's
 * (exact against the integer not_before of a revocation: iat < nb holds
 * exactly when trunc(iat) < nb).
 */
static void
test_claims_iat(void **state)
{
    time_t                  now;
    const char             *err;
    encore_claims_policy_t  p;

    memset(&p, 0, sizeof(p));
    now = 1000000;
    p.clock = fixed_clock;
    p.clock_data = &now;
    p.require_exp = 1;

    /* not required: absent is fine, present is still checked */
    claims_by_facts = 0;
    assert_int_equal(claims_rc("{\"exp\":2000000}", &p), ENCORE_CLAIMS_OK);
    assert_int_equal(claims_rc("{\"exp\":2000000,\"iat\":\"1\"}", &p),
                     ENCORE_CLAIMS_EINVALID);

    p.require_iat = 1;
    assert_int_equal(claims_rc("{\"exp\":2000000}", &p),
                     ENCORE_CLAIMS_EINVALID);
    assert_int_equal(claims_rc("{\"exp\":2000000,\"iat\":1000000}", &p),
                     ENCORE_CLAIMS_OK);
    assert_int_equal(claims_rc("{\"exp\":2000000,\"iat\":0}", &p),
                     ENCORE_CLAIMS_OK);
    assert_int_equal(claims_rc("{\"exp\":2000000,\"iat\":1000001}", &p),
                     ENCORE_CLAIMS_ENOTYET);
    assert_int_equal(claims_rc("{\"exp\":2000000,\"iat\":1000000.9}", &p),
                     ENCORE_CLAIMS_OK);
    assert_int_equal(claims_rc("{\"exp\":2000000,\"iat\":1000001.0}", &p),
                     ENCORE_CLAIMS_ENOTYET);

    /* an hour and ten years ahead */
    assert_int_equal(claims_rc("{\"exp\":2000000,\"iat\":1003600}", &p),
                     ENCORE_CLAIMS_ENOTYET);
    assert_int_equal(claims_rc("{\"exp\":400000000,\"iat\":316360000}",
                               &p), ENCORE_CLAIMS_ENOTYET);

    /* the leeway, to the second */
    p.leeway = 30;
    assert_int_equal(claims_rc("{\"exp\":2000000,\"iat\":1000030}", &p),
                     ENCORE_CLAIMS_OK);
    assert_int_equal(claims_rc("{\"exp\":2000000,\"iat\":1000031}", &p),
                     ENCORE_CLAIMS_ENOTYET);
    p.leeway = 0;

    /* types and ranges, as exp and nbf */
    assert_int_equal(claims_rc("{\"exp\":2000000,\"iat\":\"1000000\"}",
                               &p), ENCORE_CLAIMS_EINVALID);
    assert_int_equal(claims_rc("{\"exp\":2000000,\"iat\":null}", &p),
                     ENCORE_CLAIMS_EINVALID);
    assert_int_equal(claims_rc("{\"exp\":2000000,\"iat\":true}", &p),
                     ENCORE_CLAIMS_EINVALID);
    assert_int_equal(claims_rc("{\"exp\":2000000,\"iat\":[1]}", &p),
                     ENCORE_CLAIMS_EINVALID);
    assert_int_equal(claims_rc("{\"exp\":2000000,\"iat\":-1}", &p),
                     ENCORE_CLAIMS_EINVALID);
    assert_int_equal(claims_rc("{\"exp\":2000000,\"iat\":1e300}", &p),
                     ENCORE_CLAIMS_EINVALID);
    assert_int_equal(claims_rc("{\"exp\":2000000,"
                               "\"iat\":253402300800}", &p),
                     ENCORE_CLAIMS_EINVALID);

    /* the reasons a client sees */
    assert_int_equal(claims_error("{\"exp\":2000000}", &p, &err),
                     ENCORE_CLAIMS_EINVALID);
    assert_string_equal(err, "iat missing");
    assert_int_equal(claims_error("{\"exp\":2000000,\"iat\":\"1\"}", &p,
                                  &err), ENCORE_CLAIMS_EINVALID);
    assert_string_equal(err, "iat is not a valid NumericDate");
    assert_int_equal(claims_error("{\"exp\":2000000,\"iat\":1003600}", &p,
                                  &err), ENCORE_CLAIMS_ENOTYET);
    assert_string_equal(err, "token issued in the future");

    /* exp is judged first: an expired token says so */
    assert_int_equal(claims_error("{\"exp\":1,\"iat\":1003600}", &p, &err),
                     ENCORE_CLAIMS_EEXPIRED);

    assert_true(claims_by_facts > 10);
}


/* sub and sid as revocations key them: UUID strings, parsed once */
static void
test_claims_ids(void **state)
{
    json_t                 *claims;
    const char             *json;
    encore_claims_facts_t   f;

    static const unsigned char  sub[16] = {
        0x01, 0x23, 0x45, 0x67, 0x89, 0xab, 0xcd, 0xef,
        0xfe, 0xdc, 0xba, 0x98, 0x76, 0x54, 0x32, 0x10
    };

    json = "{\"exp\":2000000,\"iat\":1000000,"
           "\"sub\":\"01234567-89ab-cdef-fedc-ba9876543210\","
           "\"sid\":\"01234567-89AB-CDEF-FEDC-BA9876543210\"}";
    claims = encore_json_object_parse(json, strlen(json));
    assert_int_equal(encore_claims_facts_init(&f, claims), 0);
    json_decref(claims);
    flat_facts_agree(json, &f);
    assert_true(f.has_iat);
    assert_int_equal(f.iat, 1000000);
    assert_true(f.has_sub_id);
    assert_true(f.has_sid_id);
    assert_true(f.has_sid);
    assert_memory_equal(f.sub_id, sub, 16);
    assert_memory_equal(f.sid_id, sub, 16);

    /* not UUID strings: no keys (such a token is never revoked) */
    json = "{\"exp\":2000000,\"sub\":\"alice\",\"sid\":42}";
    claims = encore_json_object_parse(json, strlen(json));
    assert_int_equal(encore_claims_facts_init(&f, claims), 0);
    json_decref(claims);
    flat_facts_agree(json, &f);
    assert_false(f.has_sub_id);
    assert_false(f.has_sid_id);
    /* a sid there but not a UUID: the edge refuses such a token */
    assert_true(f.has_sid);

    json = "{\"exp\":2000000,"
           "\"sub\":\"01234567-89ab-cdef-fedc-ba9876543210\","
           "\"sid\":[\"01234567-89ab-cdef-fedc-ba9876543210\"]}";
    claims = encore_json_object_parse(json, strlen(json));
    assert_int_equal(encore_claims_facts_init(&f, claims), 0);
    json_decref(claims);
    flat_facts_agree(json, &f);
    assert_true(f.has_sub_id);
    assert_true(f.has_sid);
    assert_false(f.has_sid_id);

    /* an escaped UUID: jansson's facts only, the same bytes */
    json = "{\"exp\":2000000,"
           "\"sub\":\"\\u00301234567-89ab-cdef-fedc-ba9876543210\"}";
    claims = encore_json_object_parse(json, strlen(json));
    assert_non_null(claims);
    assert_int_equal(encore_claims_facts_init(&f, claims), 0);
    json_decref(claims);
    assert_true(f.has_sub_id);
    assert_false(f.has_sid);
    assert_int_equal(f.sub_id[0], 0x01);
}


/* role: one of the configured set, else 401 (not a 403: not a user) */
static void
test_claims_roles(void **state)
{
    time_t                  now;
    const char             *err;
    encore_claims_policy_t  p;
    const char             *roles[] = { "user", "moderator", "admin" };
    const char             *big;

    memset(&p, 0, sizeof(p));
    now = 1000000;
    p.clock = fixed_clock;
    p.clock_data = &now;
    p.require_exp = 1;

    /* no set: any role, or none */
    assert_int_equal(claims_rc("{\"exp\":2000000,\"role\":\"root\"}", &p),
                     ENCORE_CLAIMS_OK);
    assert_int_equal(claims_rc("{\"exp\":2000000}", &p), ENCORE_CLAIMS_OK);

    p.roles = roles;
    p.nroles = 3;

    assert_int_equal(claims_rc("{\"exp\":2000000,\"role\":\"user\"}", &p),
                     ENCORE_CLAIMS_OK);
    assert_int_equal(claims_rc("{\"exp\":2000000,\"role\":\"moderator\"}",
                               &p), ENCORE_CLAIMS_OK);
    assert_int_equal(claims_rc("{\"exp\":2000000,\"role\":\"admin\"}", &p),
                     ENCORE_CLAIMS_OK);

    assert_int_equal(claims_rc("{\"exp\":2000000,\"role\":\"root\"}", &p),
                     ENCORE_CLAIMS_EINVALID);
    assert_int_equal(claims_rc("{\"exp\":2000000,\"role\":\"Admin\"}", &p),
                     ENCORE_CLAIMS_EINVALID);
    assert_int_equal(claims_rc("{\"exp\":2000000,\"role\":\"admin \"}",
                               &p), ENCORE_CLAIMS_EINVALID);
    assert_int_equal(claims_rc("{\"exp\":2000000,\"role\":\"\"}", &p),
                     ENCORE_CLAIMS_EINVALID);
    assert_int_equal(claims_rc("{\"exp\":2000000}", &p),
                     ENCORE_CLAIMS_EINVALID);
    assert_int_equal(claims_rc("{\"exp\":2000000,\"role\":null}", &p),
                     ENCORE_CLAIMS_EINVALID);
    assert_int_equal(claims_rc("{\"exp\":2000000,\"role\":1}", &p),
                     ENCORE_CLAIMS_EINVALID);
    assert_int_equal(claims_rc("{\"exp\":2000000,\"role\":[\"admin\"]}",
                               &p), ENCORE_CLAIMS_EINVALID);
    assert_int_equal(claims_rc("{\"exp\":2000000,\"role\":{}}", &p),
                     ENCORE_CLAIMS_EINVALID);
    big = "{\"exp\":2000000,\"role\":\"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
          "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
          "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
          "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
          "aaaaaaaaaaaaaaaaaaaaaa\"}";
    assert_int_equal(claims_rc(big, &p), ENCORE_CLAIMS_EINVALID);

    assert_int_equal(claims_error("{\"exp\":2000000,\"role\":\"root\"}", &p,
                                  &err), ENCORE_CLAIMS_EINVALID);
    assert_string_equal(err, "role not accepted");

    /* the facts decide a string role, and send an array to the claims */
    assert_true(claims_facts_decide("{\"exp\":2000000,\"role\":\"root\"}",
                                    &p));
    assert_true(claims_facts_decide("{\"exp\":2000000}", &p));
    assert_false(claims_facts_decide("{\"exp\":2000000,"
                                     "\"role\":[\"admin\"]}", &p));
}



/*
 * The facts a cache entry keeps: wherever they decide they agree with the
 * claims (claims_rc() checks every case above that way too), and whatever
 * they do not hold sends the check back to the claims.
 */
static void
test_claims_facts(void **state)
{
    char                    big[320], json[1200], text[300];
    time_t                  now;
    encore_claim_req_t      req[2];
    encore_claims_policy_t  p;
    const char             *roles[] = { "admin", "42", "true" };

    memset(&p, 0, sizeof(p));
    now = 1000000;
    p.clock = fixed_clock;
    p.clock_data = &now;
    p.require_exp = 1;
    p.leeway = 30;

    claims_by_facts = 0;

    /* time: exactly as the claims, leeway and fractions included */
    assert_int_equal(claims_rc("{\"exp\":999971}", &p), ENCORE_CLAIMS_OK);
    assert_int_equal(claims_rc("{\"exp\":999970.9}", &p),
                     ENCORE_CLAIMS_EEXPIRED);
    assert_int_equal(claims_rc("{\"exp\":2000000,\"nbf\":1000031}", &p),
                     ENCORE_CLAIMS_ENOTYET);
    assert_int_equal(claims_rc("{\"nbf\":1}", &p), ENCORE_CLAIMS_EINVALID);
    assert_int_equal(claims_rc("{\"exp\":2000000,\"nbf\":-1}", &p),
                     ENCORE_CLAIMS_EINVALID);

    /* iss of every type, and too long to keep */
    p.issuer = "encore";
    assert_int_equal(claims_rc("{\"exp\":2000000,\"iss\":\"encore\"}", &p),
                     ENCORE_CLAIMS_OK);
    assert_int_equal(claims_rc("{\"exp\":2000000,\"iss\":\"encor\"}", &p),
                     ENCORE_CLAIMS_EISSUER);
    assert_int_equal(claims_rc("{\"exp\":2000000,\"iss\":1}", &p),
                     ENCORE_CLAIMS_EISSUER);
    assert_int_equal(claims_rc("{\"exp\":2000000,\"iss\":null}", &p),
                     ENCORE_CLAIMS_EISSUER);
    assert_int_equal(claims_rc("{\"exp\":2000000,\"iss\":[\"encore\"]}", &p),
                     ENCORE_CLAIMS_EISSUER);
    memset(big, 'e', 300);
    big[300] = '\0';
    snprintf(json, sizeof(json), "{\"exp\":2000000,\"iss\":\"%s\"}", big);
    assert_int_equal(claims_rc(json, &p), ENCORE_CLAIMS_EISSUER);
    assert_false(claims_facts_decide(json, &p));
    p.issuer = NULL;
    assert_true(claims_facts_decide(json, &p));

    /* aud: strings, arrays, wrong types, more values than kept */
    p.audience = "api";
    assert_int_equal(claims_rc("{\"exp\":2000000,\"aud\":\"api\"}", &p),
                     ENCORE_CLAIMS_OK);
    assert_int_equal(claims_rc("{\"exp\":2000000,\"aud\":[\"a\",\"api\"]}",
                               &p), ENCORE_CLAIMS_OK);
    assert_int_equal(claims_rc("{\"exp\":2000000,\"aud\":[\"api\",null]}",
                               &p), ENCORE_CLAIMS_EINVALID);
    assert_int_equal(claims_rc("{\"exp\":2000000,\"aud\":[1,\"api\"]}", &p),
                     ENCORE_CLAIMS_EINVALID);
    assert_int_equal(claims_rc("{\"exp\":2000000,\"aud\":null}", &p),
                     ENCORE_CLAIMS_EINVALID);
    assert_int_equal(claims_rc("{\"exp\":2000000,\"aud\":{}}", &p),
                     ENCORE_CLAIMS_EINVALID);
    assert_int_equal(claims_rc("{\"exp\":2000000,\"aud\":[]}", &p),
                     ENCORE_CLAIMS_EAUDIENCE);
    assert_int_equal(claims_rc("{\"exp\":2000000,\"aud\":\"API\"}", &p),
                     ENCORE_CLAIMS_EAUDIENCE);
    assert_int_equal(claims_rc("{\"exp\":2000000,\"aud\":"
                               "[\"1\",\"2\",\"3\",\"4\",\"5\",\"6\",\"7\","
                               "\"api\"]}", &p), ENCORE_CLAIMS_OK);
    assert_true(claims_facts_decide("{\"exp\":2000000,\"aud\":"
                                    "[\"1\",\"2\",\"3\",\"4\",\"5\",\"6\","
                                    "\"7\",\"api\"]}", &p));
    assert_int_equal(claims_rc("{\"exp\":2000000,\"aud\":"
                               "[\"1\",\"2\",\"3\",\"4\",\"5\",\"6\",\"7\","
                               "\"8\",\"api\"]}", &p), ENCORE_CLAIMS_OK);
    assert_false(claims_facts_decide("{\"exp\":2000000,\"aud\":"
                                     "[\"1\",\"2\",\"3\",\"4\",\"5\",\"6\","
                                     "\"7\",\"8\",\"api\"]}", &p));
    /* a bad element after the match is still invalid, as in the claims */
    assert_int_equal(claims_rc("{\"exp\":2000000,\"aud\":"
                               "[\"1\",\"2\",\"3\",\"4\",\"5\",\"6\",\"7\","
                               "\"8\",\"api\",false]}", &p),
                     ENCORE_CLAIMS_EINVALID);
    /* iss is checked before aud, whatever the facts hold */
    p.issuer = "encore";
    assert_int_equal(claims_rc("{\"exp\":2000000,\"aud\":1}", &p),
                     ENCORE_CLAIMS_EISSUER);
    p.issuer = NULL;
    p.audience = NULL;

    /* required sub, role, name: strings, integers and booleans as text */
    req[0].name = "role";
    req[0].values = roles;
    req[0].nvalues = 3;
    p.reqs = req;
    p.nreqs = 1;
    assert_int_equal(claims_rc("{\"exp\":2000000,\"role\":\"admin\"}", &p),
                     ENCORE_CLAIMS_OK);
    assert_int_equal(claims_rc("{\"exp\":2000000,\"role\":42}", &p),
                     ENCORE_CLAIMS_OK);
    assert_int_equal(claims_rc("{\"exp\":2000000,\"role\":\"42\"}", &p),
                     ENCORE_CLAIMS_OK);
    assert_int_equal(claims_rc("{\"exp\":2000000,\"role\":true}", &p),
                     ENCORE_CLAIMS_OK);
    assert_int_equal(claims_rc("{\"exp\":2000000,\"role\":false}", &p),
                     ENCORE_CLAIMS_EFORBIDDEN);
    assert_int_equal(claims_rc("{\"exp\":2000000,\"role\":-42}", &p),
                     ENCORE_CLAIMS_EFORBIDDEN);
    assert_int_equal(claims_rc("{\"exp\":2000000,\"role\":\"admin \"}", &p),
                     ENCORE_CLAIMS_EFORBIDDEN);
    assert_int_equal(claims_rc("{\"exp\":2000000}", &p),
                     ENCORE_CLAIMS_EFORBIDDEN);
    /* null, arrays, reals: the claims decide */
    assert_int_equal(claims_rc("{\"exp\":2000000,\"role\":[\"admin\"]}", &p),
                     ENCORE_CLAIMS_OK);
    assert_false(claims_facts_decide("{\"exp\":2000000,\"role\":[\"admin\"]}",
                                     &p));
    assert_false(claims_facts_decide("{\"exp\":2000000,\"role\":null}", &p));
    assert_false(claims_facts_decide("{\"exp\":2000000,\"role\":42.0}", &p));

    /* a claim the facts do not keep: the claims decide */
    req[1].name = "scope";
    req[1].values = NULL;
    req[1].nvalues = 0;
    p.nreqs = 2;
    assert_int_equal(claims_rc("{\"exp\":2000000,\"role\":\"admin\","
                               "\"scope\":\"x\"}", &p), ENCORE_CLAIMS_OK);
    assert_false(claims_facts_decide("{\"exp\":2000000,\"role\":\"admin\"}",
                                     &p));
    /* but a requirement that fails first is decided */
    assert_int_equal(claims_rc("{\"exp\":2000000,\"role\":\"user\"}", &p),
                     ENCORE_CLAIMS_EFORBIDDEN);
    assert_true(claims_facts_decide("{\"exp\":2000000,\"role\":\"user\"}",
                                    &p));
    p.nreqs = 0;

    printf("claims facts decided %u cases like the claims\n", claims_by_facts);
    assert_true(claims_by_facts >= 25);

    /* the identity outputs */
    assert_int_equal(claims_fact_text("{\"sub\":\"u-1\",\"role\":7,"
                                      "\"name\":false}", "sub", text),
                     ENCORE_CLAIM_TEXT);
    assert_string_equal(text, "u-1");
    assert_int_equal(claims_fact_text("{\"sub\":\"u-1\",\"role\":7,"
                                      "\"name\":false}", "role", text),
                     ENCORE_CLAIM_TEXT);
    assert_string_equal(text, "7");
    assert_int_equal(claims_fact_text("{\"sub\":\"u-1\",\"role\":7,"
                                      "\"name\":false}", "name", text),
                     ENCORE_CLAIM_TEXT);
    assert_string_equal(text, "false");
    assert_int_equal(claims_fact_text("{\"sub\":\"a\\r\\nb\"}", "sub", text),
                     ENCORE_CLAIM_TEXT);
    assert_string_equal(text, "a\r\nb");
    assert_int_equal(claims_fact_text("{\"sub\":\"u-1\"}", "name", text),
                     ENCORE_CLAIM_ABSENT);
    assert_int_equal(claims_fact_text("{\"sub\":\"u-1\"}", "email", text),
                     ENCORE_CLAIM_UNKNOWN);
    assert_int_equal(claims_fact_text("{\"name\":{\"a\":1}}", "name", text),
                     ENCORE_CLAIM_UNKNOWN);
    snprintf(json, sizeof(json), "{\"name\":\"%s\"}", big);
    assert_int_equal(claims_fact_text(json, "name", text),
                     ENCORE_CLAIM_UNKNOWN);

    /* the values share one buffer: what does not fit is not kept */
    memset(big, 'x', 250);
    big[250] = '\0';
    snprintf(json, sizeof(json), "{\"iss\":\"%s\",\"sub\":\"%s\","
             "\"role\":\"%s\"}", big, big, big);
    assert_int_equal(claims_fact_text(json, "sub", text), ENCORE_CLAIM_TEXT);
    assert_int_equal(claims_fact_text(json, "role", text),
                     ENCORE_CLAIM_UNKNOWN);
}

/* the flat scanner: the subset it takes, and what it leaves to jansson */
static void
test_flat(void **state)
{
    size_t  i;

    static const char  *taken[] = {
        "{}",
        " \t\r\n{ } \n",
        "{\"alg\":\"ES256\",\"typ\":\"JWT\",\"kid\":\"k-1\"}",
        "{\"a\":0,\"b\":123456789012345678,\"c\":true,\"d\":false}",
        "{\"aud\":[],\"x\":[ \"a\" , \"b\" ]}",
        "{\"\":\"\"}",
        "{ \"a\" : \"~ !#$%&'()*+,-./:;<=>?@[]^_`{|}\" }",
        NULL
    };

    static const char  *refused[] = {
        "", " ", "[]", "\"a\"", "1", "{", "}", "{,}", "{\"a\"}",
        "{\"a\":}", "{\"a\":1,}", "{\"a\":1 \"b\":2}", "{} x", "{}{}",
        /* duplicates, escapes, non-ASCII, control characters */
        "{\"a\":1,\"a\":2}", "{\"a\":\"\\u0041\"}", "{\"a\\u0062\":1}",
        "{\"a\":\"\\\"\"}", "{\"a\":\"\xc3\xa9\"}", "{\"a\":\"\x7f\"}",
        "{\"a\":\"\t\"}", "{\"a\":\"\x80\"}",
        /* numbers jansson reads otherwise, or not at all */
        "{\"a\":-1}", "{\"a\":01}", "{\"a\":00}", "{\"a\":1.0}",
        "{\"a\":1e3}", "{\"a\":1E3}", "{\"a\":0.5}",
        "{\"a\":1234567890123456789}", "{\"a\":+1}",
        /* literals and types left to jansson */
        "{\"a\":null}", "{\"a\":tru}", "{\"a\":truee}", "{\"a\":True}",
        "{\"a\":{}}", "{\"a\":[1]}", "{\"a\":[\"x\",]}", "{\"a\":[[]]}",
        "{\"a\":[\"x\" \"y\"]}", "{\"a\":\"x}", "{'a':1}",
        NULL
    };

    for (i = 0; taken[i]; i++) {
        assert_true(flat_agrees(taken[i], strlen(taken[i])));
    }

    for (i = 0; refused[i]; i++) {
        assert_false(flat_agrees(refused[i], strlen(refused[i])));
    }

    /* an embedded NUL is never taken */
    assert_false(flat_agrees("{\"a\":\"x\0y\"}", 10));
    assert_false(flat_agrees("{\"a\":1}\0", 8));

    /* members and items over the limits are left to jansson */
    {
        char    buf[1024];
        size_t  n;

        n = (size_t) sprintf(buf, "{");
        for (i = 0; i < ENCORE_FLAT_MAX_MEMBERS; i++) {
            n += (size_t) sprintf(buf + n, "%s\"m%zu\":%zu", i ? "," : "",
                                  i, i);
        }
        sprintf(buf + n, "}");
        assert_true(flat_agrees(buf, strlen(buf)));

        n = (size_t) sprintf(buf, "{");
        for (i = 0; i <= ENCORE_FLAT_MAX_MEMBERS; i++) {
            n += (size_t) sprintf(buf + n, "%s\"m%zu\":%zu", i ? "," : "",
                                  i, i);
        }
        sprintf(buf + n, "}");
        assert_false(flat_agrees(buf, strlen(buf)));

        n = (size_t) sprintf(buf, "{\"aud\":[");
        for (i = 0; i <= ENCORE_FLAT_MAX_ITEMS; i++) {
            n += (size_t) sprintf(buf + n, "%s\"a%zu\"", i ? "," : "",
                                  i);
        }
        sprintf(buf + n, "]}");
        assert_false(flat_agrees(buf, strlen(buf)));
    }

    /* and claims read flat give the facts jansson's reading gives */
    assert_int_equal(claims_fact_text("{\"exp\":2000000,\"sub\":\"u\","
                                      "\"role\":0,\"name\":true,"
                                      "\"aud\":[\"a\",\"b\"],\"iss\":7}",
                                      "role", (char [8]) { 0 }),
                     ENCORE_CLAIM_TEXT);
}

int
main(void)
{
    const struct CMUnitTest  tests[] = {
        cmocka_unit_test(test_base64url),
        cmocka_unit_test(test_wycheproof_jws),
        cmocka_unit_test(test_wycheproof_primitives),
        cmocka_unit_test(test_rfc_vectors),
        cmocka_unit_test(test_valid_tokens),
        cmocka_unit_test(test_attack_alg),
        cmocka_unit_test(test_attack_key_confusion),
        cmocka_unit_test(test_attack_signature_form),
        cmocka_unit_test(test_attack_embedded_keys),
        cmocka_unit_test(test_attack_kid),
        cmocka_unit_test(test_attack_crit),
        cmocka_unit_test(test_attack_encoding),
        cmocka_unit_test(test_attack_json),
        cmocka_unit_test(test_attack_size),
        cmocka_unit_test(test_weak_keys),
        cmocka_unit_test(test_claims),
        cmocka_unit_test(test_claims_iat),
        cmocka_unit_test(test_claims_roles),
        cmocka_unit_test(test_claims_ids),
        cmocka_unit_test(test_claims_facts),
        cmocka_unit_test(test_flat),
    };

    return cmocka_run_group_tests_name("jwt", tests, keys_setup,
                                       keys_teardown);
}
