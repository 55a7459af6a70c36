/*
 * auth_test.h — helpers shared by the auth worker's unit tests (header
 * only: each test_*.c is its own program).
 */

#ifndef ENCORE_AUTH_TEST_H
#define ENCORE_AUTH_TEST_H

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include <openssl/core_names.h>
#include <openssl/ecdsa.h>
#include <openssl/param_build.h>

#include "../../../workers/auth/auth.h"


/* Third-party test vectors in the checkout (see tests/vectors/README.md),
   opened from the project root, where tests/unit/run runs the tests. */
static inline FILE *
testdata_open(const char *rel)
{
    char         path[1024];
    const char  *base;

    base = getenv("ENCORE_TESTDATA");
    if (base == NULL) {
        base = "tests/vectors";
    }

    snprintf(path, sizeof(path), "%s/%s", base, rel);
    return fopen(path, "r");
}


/* A P-256 public key from a JWK's x and y, built the way a verifier that
   only has the JWKS would build it. */
static inline EVP_PKEY *
test_pkey_from_jwk(json_t *jwk)
{
    size_t          xl, yl;
    EVP_PKEY       *pkey;
    OSSL_PARAM     *params;
    EVP_PKEY_CTX   *ctx;
    const char     *x, *y;
    unsigned char   pub[65];
    OSSL_PARAM_BLD *bld;

    x = json_string_value(json_object_get(jwk, "x"));
    y = json_string_value(json_object_get(jwk, "y"));
    if (x == NULL || y == NULL) {
        return NULL;
    }

    pub[0] = 0x04;  /* uncompressed point */
    if (enc_b64url_decode(x, strlen(x), pub + 1, 32, &xl) != 0 || xl != 32
        || enc_b64url_decode(y, strlen(y), pub + 33, 32, &yl) != 0
        || yl != 32)
    {
        return NULL;
    }

    pkey = NULL;
    bld = OSSL_PARAM_BLD_new();
    assert_non_null(bld);
    assert_int_equal(OSSL_PARAM_BLD_push_utf8_string(bld,
                         OSSL_PKEY_PARAM_GROUP_NAME, "prime256v1", 0), 1);
    assert_int_equal(OSSL_PARAM_BLD_push_octet_string(bld,
                         OSSL_PKEY_PARAM_PUB_KEY, pub, sizeof(pub)), 1);
    params = OSSL_PARAM_BLD_to_param(bld);
    assert_non_null(params);

    ctx = EVP_PKEY_CTX_new_from_name(NULL, "EC", NULL);
    assert_non_null(ctx);
    if (EVP_PKEY_fromdata_init(ctx) != 1
        || EVP_PKEY_fromdata(ctx, &pkey, EVP_PKEY_PUBLIC_KEY, params) != 1)
    {
        pkey = NULL;
    }

    EVP_PKEY_CTX_free(ctx);
    OSSL_PARAM_free(params);
    OSSL_PARAM_BLD_free(bld);
    return pkey;
}


/* Verifies an ES256 compact JWS against pkey independently of
   jwt_sign.c: JOSE r||s back to DER, then EVP_DigestVerify.  1 valid. */
static inline int
test_es256_verify(const char *jws, EVP_PKEY *pkey)
{
    int             ok;
    size_t          siglen, derlen_s;
    EVP_MD_CTX     *md;
    ECDSA_SIG      *sig;
    const char     *dot1, *dot2;
    unsigned char   raw[64], *der;
    int             derlen;

    dot1 = strchr(jws, '.');
    dot2 = dot1 != NULL ? strchr(dot1 + 1, '.') : NULL;
    if (dot2 == NULL
        || enc_b64url_decode(dot2 + 1, strlen(dot2 + 1), raw, sizeof(raw),
                              &siglen) != 0
        || siglen != 64)
    {
        return 0;
    }

    sig = ECDSA_SIG_new();
    assert_non_null(sig);
    assert_int_equal(ECDSA_SIG_set0(sig, BN_bin2bn(raw, 32, NULL),
                                    BN_bin2bn(raw + 32, 32, NULL)), 1);
    der = NULL;
    derlen = i2d_ECDSA_SIG(sig, &der);
    ECDSA_SIG_free(sig);
    assert_true(derlen > 0);
    derlen_s = (size_t) derlen;

    md = EVP_MD_CTX_new();
    assert_non_null(md);
    ok = EVP_DigestVerifyInit(md, NULL, EVP_sha256(), NULL, pkey) == 1
         && EVP_DigestVerify(md, der, derlen_s, (const unsigned char *) jws,
                             (size_t) (dot2 - jws)) == 1;

    EVP_MD_CTX_free(md);
    OPENSSL_free(der);
    return ok;
}


/* Decodes one b64url JWS segment [s, e) as JSON; caller decrefs. */
static inline json_t *
test_segment_json(const char *s, const char *e)
{
    size_t          n;
    json_t         *j;
    unsigned char   buf[2048];

    if (enc_b64url_decode(s, (size_t) (e - s), buf, sizeof(buf) - 1, &n)
        != 0)
    {
        return NULL;
    }

    buf[n] = '\0';
    j = json_loads((const char *) buf, JSON_REJECT_DUPLICATES, NULL);
    return j;
}

#endif /* ENCORE_AUTH_TEST_H */
