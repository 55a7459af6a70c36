/*
 * Unit tests: workers/auth/jwt_sign.c — ES256 access tokens.
 *
 * Tokens are verified independently of the signer: the public JWK goes
 * through OpenSSL's EVP_PKEY_fromdata and EVP_DigestVerify, as a verifier
 * holding only the JWKS would do it.
 */

#include <ctype.h>
#include <openssl/ec.h>
#include <openssl/obj_mac.h>

#include "auth_test.h"


static auth_key_t  key;


/* whether the token's s is above floor(n / 2) of P-256 */
static int
es256_s_is_high(const char *jws)
{
    int             high;
    size_t          len;
    BIGNUM         *s, *half;
    EC_GROUP       *g;
    const char     *dot;
    unsigned char   raw[64];

    dot = strrchr(jws, '.');
    assert_non_null(dot);
    assert_int_equal(enc_b64url_decode(dot + 1, strlen(dot + 1), raw,
                                       sizeof(raw), &len), 0);
    assert_int_equal(len, 64);

    g = EC_GROUP_new_by_curve_name(NID_X9_62_prime256v1);
    half = BN_dup(EC_GROUP_get0_order(g));
    assert_int_equal(BN_rshift1(half, half), 1);
    s = BN_bin2bn(raw + 32, 32, NULL);
    high = BN_cmp(s, half) > 0;

    BN_free(s);
    BN_free(half);
    EC_GROUP_free(g);

    return high;
}


static int
setup(void **state)
{
    (void) state;

    key.pkey = auth_key_generate();
    if (key.pkey == NULL) {
        return -1;
    }
    strcpy(key.kid, "test-kid");
    return 0;
}


static int
teardown(void **state)
{
    (void) state;
    EVP_PKEY_free(key.pkey);
    return 0;
}


static auth_claims_t
claims(void)
{
    auth_claims_t  c;

    c.iss = "encore";
    c.aud = "encore-api";
    c.sub = "0b5f6b6e-8f0b-4d2c-9a3e-3c5e0f9d1a22";
    c.role = "user";
    c.name = "alice";
    c.jti = "d4c9f0e1-2a3b-4c5d-8e6f-7a8b9c0d1e2f";
    c.sid = NULL;
    c.iat = 1700000000;
    c.exp = 1700000900;
    return c;
}


static void
test_sign_then_verify(void **state)
{
    char           *jws;
    json_t         *jwk;
    EVP_PKEY       *pub;
    auth_claims_t   c;

    (void) state;

    c = claims();
    jws = auth_jwt_sign(&key, &c);
    assert_non_null(jws);

    jwk = auth_key_public_jwk(key.pkey);
    assert_non_null(jwk);
    pub = test_pkey_from_jwk(jwk);
    assert_non_null(pub);

    assert_int_equal(test_es256_verify(jws, pub), 1);

    /* a flipped payload character must break the signature */
    jws[strchr(jws, '.') - jws + 5] ^= 1;
    assert_int_equal(test_es256_verify(jws, pub), 0);

    EVP_PKEY_free(pub);
    json_decref(jwk);
    free(jws);
}


static void
test_header_and_claims(void **state)
{
    char           *jws;
    json_t         *h, *p;
    const char     *d1, *d2, *s;
    auth_claims_t   c;

    (void) state;

    c = claims();
    jws = auth_jwt_sign(&key, &c);
    assert_non_null(jws);

    /* base64url, no padding, three segments */
    for (s = jws; *s != '\0'; s++) {
        assert_true(isalnum((unsigned char) *s) || *s == '-' || *s == '_'
                    || *s == '.');
    }

    d1 = strchr(jws, '.');
    assert_non_null(d1);
    d2 = strchr(d1 + 1, '.');
    assert_non_null(d2);
    assert_null(strchr(d2 + 1, '.'));
    assert_int_equal(strlen(d2 + 1), 86);   /* 64 bytes */

    h = test_segment_json(jws, d1);
    assert_non_null(h);
    assert_int_equal(json_object_size(h), 3);
    assert_string_equal(json_string_value(json_object_get(h, "alg")), "ES256");
    assert_string_equal(json_string_value(json_object_get(h, "typ")), "JWT");
    assert_string_equal(json_string_value(json_object_get(h, "kid")),
                        "test-kid");

    p = test_segment_json(d1 + 1, d2);
    assert_non_null(p);
    assert_int_equal(json_object_size(p), 8);
    assert_string_equal(json_string_value(json_object_get(p, "iss")),
                        "encore");
    assert_string_equal(json_string_value(json_object_get(p, "aud")),
                        "encore-api");
    assert_string_equal(json_string_value(json_object_get(p, "sub")), c.sub);
    assert_string_equal(json_string_value(json_object_get(p, "role")),
                        "user");
    assert_string_equal(json_string_value(json_object_get(p, "name")),
                        "alice");
    assert_string_equal(json_string_value(json_object_get(p, "jti")), c.jti);
    assert_true(json_is_integer(json_object_get(p, "iat")));
    assert_int_equal(json_integer_value(json_object_get(p, "iat")),
                     1700000000);
    assert_int_equal(json_integer_value(json_object_get(p, "exp")),
                     1700000900);

    json_decref(h);
    json_decref(p);
    free(jws);
}


/* the session id, when given, is one more claim: the refresh family */
static void
test_sid_claim(void **state)
{
    char           *jws;
    json_t         *p;
    const char     *d1, *d2;
    auth_claims_t   c;

    (void) state;

    c = claims();
    c.sid = "5f0c3a1e-6b2d-4e8f-9a7c-1d2e3f4a5b6c";
    jws = auth_jwt_sign(&key, &c);
    assert_non_null(jws);

    d1 = strchr(jws, '.');
    d2 = strchr(d1 + 1, '.');
    p = test_segment_json(d1 + 1, d2);
    assert_non_null(p);
    assert_int_equal(json_object_size(p), 9);
    assert_string_equal(json_string_value(json_object_get(p, "sid")), c.sid);
    assert_int_equal(json_integer_value(json_object_get(p, "iat")),
                     1700000000);

    json_decref(p);
    free(jws);
}


static void
test_signature_is_randomised(void **state)
{
    char           *a, *b;
    auth_claims_t   c;

    (void) state;

    /* ECDSA with a fresh nonce: same input, different signatures (a repeat
       would mean a nonce reuse, which leaks the private key) */
    c = claims();
    a = auth_jwt_sign(&key, &c);
    b = auth_jwt_sign(&key, &c);
    assert_non_null(a);
    assert_non_null(b);
    assert_string_not_equal(a, b);
    free(a);
    free(b);
}


static void
test_many_signatures_verify(void **state)
{
    int             i;
    char           *jws;
    json_t         *jwk;
    EVP_PKEY       *pub;
    auth_claims_t   c;

    (void) state;

    /* about one signature in 128 has an r or s shorter than 32 bytes;
       300 rounds exercise the left-padding of der_to_jose */
    jwk = auth_key_public_jwk(key.pkey);
    pub = test_pkey_from_jwk(jwk);
    assert_non_null(pub);

    c = claims();
    for (i = 0; i < 300; i++) {
        c.iat = 1700000000 + i;
        jws = auth_jwt_sign(&key, &c);
        assert_non_null(jws);
        assert_int_equal(test_es256_verify(jws, pub), 1);
        /* half of the raw signatures are high: none may leave high */
        assert_false(es256_s_is_high(jws));
        free(jws);
    }

    EVP_PKEY_free(pub);
    json_decref(jwk);
}


static void
test_der_to_jose_low_s(void **state)
{
    int             len;
    BIGNUM         *n, *s, *want_s;
    EC_GROUP       *g;
    ECDSA_SIG      *sig;
    unsigned char  *der, out[64], want[32];

    (void) state;

    g = EC_GROUP_new_by_curve_name(NID_X9_62_prime256v1);
    n = BN_dup(EC_GROUP_get0_order(g));

    /* s = n - 5 is high: it comes out as 5 */
    s = BN_dup(n);
    assert_int_equal(BN_sub_word(s, 5), 1);
    sig = ECDSA_SIG_new();
    assert_int_equal(ECDSA_SIG_set0(sig, BN_bin2bn((unsigned char *) "\x07",
                                                   1, NULL), s), 1);
    der = NULL;
    len = i2d_ECDSA_SIG(sig, &der);
    assert_true(len > 0);
    assert_int_equal(auth_es256_der_to_jose(der, (size_t) len, out), 0);
    memset(want, 0, sizeof(want));
    want[31] = 5;
    assert_memory_equal(out + 32, want, 32);
    assert_int_equal(out[31], 7);
    OPENSSL_free(der);
    ECDSA_SIG_free(sig);

    /* s = floor(n / 2) is low already: unchanged */
    want_s = BN_dup(n);
    assert_int_equal(BN_rshift1(want_s, want_s), 1);
    sig = ECDSA_SIG_new();
    assert_int_equal(ECDSA_SIG_set0(sig, BN_bin2bn((unsigned char *) "\x07",
                                                   1, NULL),
                                    BN_dup(want_s)), 1);
    der = NULL;
    len = i2d_ECDSA_SIG(sig, &der);
    assert_int_equal(auth_es256_der_to_jose(der, (size_t) len, out), 0);
    assert_int_equal(BN_bn2binpad(want_s, want, 32), 32);
    assert_memory_equal(out + 32, want, 32);
    OPENSSL_free(der);
    ECDSA_SIG_free(sig);

    BN_free(want_s);
    BN_free(n);
    EC_GROUP_free(g);
}


static void
test_der_to_jose_padding(void **state)
{
    int             len;
    ECDSA_SIG      *sig;
    unsigned char  *der, out[64], want[64];

    (void) state;

    /* r = 1, s = 0x0100: both must come out left-padded to 32 bytes */
    sig = ECDSA_SIG_new();
    assert_non_null(sig);
    assert_int_equal(ECDSA_SIG_set0(sig, BN_bin2bn((unsigned char *) "\x01",
                                                   1, NULL),
                                    BN_bin2bn((unsigned char *) "\x01\x00",
                                              2, NULL)), 1);
    der = NULL;
    len = i2d_ECDSA_SIG(sig, &der);
    assert_true(len > 0);

    memset(want, 0, sizeof(want));
    want[31] = 0x01;
    want[62] = 0x01;

    assert_int_equal(auth_es256_der_to_jose(der, (size_t) len, out), 0);
    assert_memory_equal(out, want, 64);

    /* trailing bytes or truncation are refused */
    assert_int_equal(auth_es256_der_to_jose(der, (size_t) len - 1, out), -1);

    OPENSSL_free(der);
    ECDSA_SIG_free(sig);
}


static void
test_rfc7515_a3_verifier(void **state)
{
    FILE      *f;
    char       jws[1024];
    json_t    *jwk;
    EVP_PKEY  *pub;

    (void) state;

    /* checks the test's own verifier against the RFC's ES256 example, so
       a bug there cannot make the tests above pass vacuously */
    f = testdata_open("jose/rfc7515_A.3.jwsc");
    if (f == NULL) {
        fail_msg("cannot open tests/vectors/%s (run from the project root)",
                 "jose/rfc7515_A.3.jwsc");
    }
    assert_non_null(fgets(jws, sizeof(jws), f));
    fclose(f);
    jws[strcspn(jws, "\r\n")] = '\0';

    f = testdata_open("jose/rfc7515_A.3.jwk");
    assert_non_null(f);
    jwk = json_loadf(f, 0, NULL);
    fclose(f);
    assert_non_null(jwk);

    pub = test_pkey_from_jwk(jwk);
    assert_non_null(pub);
    assert_int_equal(test_es256_verify(jws, pub), 1);

    EVP_PKEY_free(pub);
    json_decref(jwk);
}


static void
test_uuid_v4(void **state)
{
    char  a[AUTH_UUID_LEN + 1], b[AUTH_UUID_LEN + 1];

    (void) state;

    assert_int_equal(enc_uuid_v4(a, sizeof(a)), 0);
    assert_int_equal(enc_uuid_v4(b, sizeof(b)), 0);
    assert_true(enc_uuid_valid(a));
    assert_int_equal(a[14], '4');
    assert_non_null(strchr("89ab", a[19]));
    assert_string_not_equal(a, b);
    assert_int_equal(enc_uuid_v4(a, AUTH_UUID_LEN), -1);
}


int
main(void)
{
    const struct CMUnitTest  tests[] = {
        cmocka_unit_test(test_sign_then_verify),
        cmocka_unit_test(test_header_and_claims),
        cmocka_unit_test(test_sid_claim),
        cmocka_unit_test(test_signature_is_randomised),
        cmocka_unit_test(test_many_signatures_verify),
        cmocka_unit_test(test_der_to_jose_padding),
        cmocka_unit_test(test_der_to_jose_low_s),
        cmocka_unit_test(test_rfc7515_a3_verifier),
        cmocka_unit_test(test_uuid_v4),
    };

    return cmocka_run_group_tests(tests, setup, teardown);
}
