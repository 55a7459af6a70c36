/*
 * Encore: JWKS loading.  Configuration time only: may read files, allocate
 * and fetch algorithms freely; the hot path uses what is prepared here.
 */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <stdarg.h>
#include <openssl/core_names.h>
#include <openssl/err.h>
#include <openssl/param_build.h>

#include "encore_jws.h"


#define ENCORE_JWKS_MAX_FILE  (1024 * 1024)


static void
encore_jwks_err(char *err, size_t errlen, const char *fmt, ...)
{
    va_list  args;

    if (err == NULL || errlen == 0) {
        return;
    }

    va_start(args, fmt);
    vsnprintf(err, errlen, fmt, args);
    va_end(args);
}


/* decode a base64url member; *out is malloc()ed, the caller frees it */
static int
encore_jwk_member(json_t *jwk, const char *name, unsigned char **out,
    size_t *out_len)
{
    json_t      *v;
    const char  *s;
    size_t       len;

    v = json_object_get(jwk, name);
    if (!json_is_string(v)) {
        return -1;
    }

    s = json_string_value(v);
    len = json_string_length(v);

    *out = malloc(len * 3 / 4 + 1);
    if (*out == NULL) {
        return -1;
    }

    if (len == 0 || encore_base64url_decode(*out, out_len, s, len) != 0) {
        free(*out);
        *out = NULL;
        return -1;
    }

    return 0;
}


static const char *
encore_jwk_str(json_t *jwk, const char *name)
{
    json_t  *v;

    v = json_object_get(jwk, name);

    return json_is_string(v) ? json_string_value(v) : NULL;
}


/* 1: usable for verification, 0: skip it, -1: malformed */
static int
encore_jwk_for_verify(json_t *jwk)
{
    size_t       i;
    json_t      *ops, *op, *use;

    use = json_object_get(jwk, "use");
    if (use != NULL) {
        if (!json_is_string(use)) {
            return -1;
        }

        if (strcmp(json_string_value(use), "sig") != 0) {
            return 0;
        }
    }

    ops = json_object_get(jwk, "key_ops");
    if (ops != NULL) {
        if (!json_is_array(ops)) {
            return -1;
        }

        json_array_foreach(ops, i, op) {
            if (json_is_string(op)
                && strcmp(json_string_value(op), "verify") == 0)
            {
                return 1;
            }
        }

        return 0;
    }

    return 1;
}


static EVP_PKEY *
encore_jwk_rsa(json_t *jwk, char *err, size_t errlen)
{
    BIGNUM          *n, *e;
    EVP_PKEY        *pkey;
    OSSL_PARAM      *params;
    EVP_PKEY_CTX    *ctx;
    unsigned char   *nb, *eb;
    size_t           nlen, elen;
    OSSL_PARAM_BLD  *bld;

    pkey = NULL;
    params = NULL;
    ctx = NULL;
    bld = NULL;
    n = NULL;
    e = NULL;
    nb = NULL;
    eb = NULL;

    if (encore_jwk_member(jwk, "n", &nb, &nlen) != 0
        || encore_jwk_member(jwk, "e", &eb, &elen) != 0)
    {
        encore_jwks_err(err, errlen, "RSA key without valid \"n\" and \"e\"");
        goto failed;
    }

    n = BN_bin2bn(nb, (int) nlen, NULL);
    e = BN_bin2bn(eb, (int) elen, NULL);
    if (n == NULL || e == NULL) {
        encore_jwks_err(err, errlen, "out of memory");
        goto failed;
    }

    if (BN_num_bits(n) < ENCORE_JWK_RSA_MIN_BITS) {
        encore_jwks_err(err, errlen, "weak RSA key: %d bits, minimum is %d",
                        BN_num_bits(n), ENCORE_JWK_RSA_MIN_BITS);
        goto failed;
    }

    if (!BN_is_odd(e) || BN_num_bits(e) < 2 || BN_num_bits(e) > 32) {
        encore_jwks_err(err, errlen, "weak RSA key: bad public exponent");
        goto failed;
    }

    bld = OSSL_PARAM_BLD_new();
    if (bld == NULL
        || !OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_N, n)
        || !OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_E, e))
    {
        encore_jwks_err(err, errlen, "out of memory");
        goto failed;
    }

    params = OSSL_PARAM_BLD_to_param(bld);
    ctx = EVP_PKEY_CTX_new_from_name(NULL, "RSA", NULL);

    if (params == NULL || ctx == NULL
        || EVP_PKEY_fromdata_init(ctx) != 1
        || EVP_PKEY_fromdata(ctx, &pkey, EVP_PKEY_PUBLIC_KEY, params) != 1)
    {
        encore_jwks_err(err, errlen, "invalid RSA key");
        pkey = NULL;
    }

failed:

    EVP_PKEY_CTX_free(ctx);
    OSSL_PARAM_free(params);
    OSSL_PARAM_BLD_free(bld);
    BN_free(n);
    BN_free(e);
    free(nb);
    free(eb);

    return pkey;
}


static EVP_PKEY *
encore_jwk_ec(json_t *jwk, char *err, size_t errlen)
{
    char             group[] = "prime256v1";
    size_t           xlen, ylen;
    EVP_PKEY        *pkey;
    OSSL_PARAM       params[3];
    EVP_PKEY_CTX    *ctx, *check;
    unsigned char   *x, *y, point[65];

    pkey = NULL;
    ctx = NULL;
    check = NULL;
    x = NULL;
    y = NULL;

    if (encore_jwk_member(jwk, "x", &x, &xlen) != 0
        || encore_jwk_member(jwk, "y", &y, &ylen) != 0
        || xlen != 32 || ylen != 32)
    {
        encore_jwks_err(err, errlen, "P-256 key needs 32-byte \"x\" and \"y\"");
        goto failed;
    }

    point[0] = 0x04;
    memcpy(point + 1, x, 32);
    memcpy(point + 33, y, 32);

    params[0] = OSSL_PARAM_construct_utf8_string(OSSL_PKEY_PARAM_GROUP_NAME,
                                                 group, 0);
    params[1] = OSSL_PARAM_construct_octet_string(OSSL_PKEY_PARAM_PUB_KEY,
                                                  point, sizeof(point));
    params[2] = OSSL_PARAM_construct_end();

    ctx = EVP_PKEY_CTX_new_from_name(NULL, "EC", NULL);

    if (ctx == NULL
        || EVP_PKEY_fromdata_init(ctx) != 1
        || EVP_PKEY_fromdata(ctx, &pkey, EVP_PKEY_PUBLIC_KEY, params) != 1)
    {
        encore_jwks_err(err, errlen, "invalid P-256 key (point not on curve)");
        pkey = NULL;
        goto failed;
    }

    check = EVP_PKEY_CTX_new_from_pkey(NULL, pkey, NULL);

    if (check == NULL || EVP_PKEY_public_check(check) != 1) {
        encore_jwks_err(err, errlen, "invalid P-256 key (point not on curve)");
        EVP_PKEY_free(pkey);
        pkey = NULL;
    }

failed:

    EVP_PKEY_CTX_free(check);
    EVP_PKEY_CTX_free(ctx);
    free(x);
    free(y);

    return pkey;
}


/*
 * An Ed25519 public key of small order (the identity, points of order 2,
 * 4 or 8, and their non-canonical encodings) verifies forged signatures
 * such as R = identity, S = 0 for any message, and OpenSSL accepts it.
 * The encodings are libsodium's list (ed25519_ref10.c, has_small_order);
 * the sign bit is ignored, as the decoder does.
 */
static int
encore_ed25519_small_order(const unsigned char *x)
{
    size_t                      i, j;
    unsigned char               c;
    static const unsigned char  small[][32] = {
        /* 0 (order 4) */
        { 0 },
        /* 1 (order 1) */
        { 0x01 },
        /* order 8 */
        { 0x26, 0xe8, 0x95, 0x8f, 0xc2, 0xb2, 0x27, 0xb0, 0x45, 0xc3, 0xf4,
          0x89, 0xf2, 0xef, 0x98, 0xf0, 0xd5, 0xdf, 0xac, 0x05, 0xd3, 0xc6,
          0x33, 0x39, 0xb1, 0x38, 0x02, 0x88, 0x6d, 0x53, 0xfc, 0x05 },
        /* order 8 */
        { 0xc7, 0x17, 0x6a, 0x70, 0x3d, 0x4d, 0xd8, 0x4f, 0xba, 0x3c, 0x0b,
          0x76, 0x0d, 0x10, 0x67, 0x0f, 0x2a, 0x20, 0x53, 0xfa, 0x2c, 0x39,
          0xcc, 0xc6, 0x4e, 0xc7, 0xfd, 0x77, 0x92, 0xac, 0x03, 0x7a },
        /* p - 1 (order 2) */
        { 0xec, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
          0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
          0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f },
        /* p, non-canonical 0 (order 4) */
        { 0xed, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
          0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
          0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f },
        /* p + 1, non-canonical 1 (order 1) */
        { 0xee, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
          0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
          0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f }
    };

    for (j = 0; j < sizeof(small) / sizeof(small[0]); j++) {
        c = (x[31] & 0x7f) ^ small[j][31];
        for (i = 0; i < 31; i++) {
            c |= x[i] ^ small[j][i];
        }
        if (c == 0) {
            return 1;
        }
    }

    return 0;
}


static EVP_PKEY *
encore_jwk_ed25519(json_t *jwk, char *err, size_t errlen)
{
    size_t          xlen;
    EVP_PKEY       *pkey;
    unsigned char  *x;

    pkey = NULL;

    if (encore_jwk_member(jwk, "x", &x, &xlen) != 0) {
        encore_jwks_err(err, errlen, "Ed25519 key without valid \"x\"");
        return NULL;
    }

    if (xlen != 32) {
        encore_jwks_err(err, errlen, "Ed25519 key: \"x\" is not 32 bytes");

    } else if (encore_ed25519_small_order(x)) {
        encore_jwks_err(err, errlen,
                        "Ed25519 key: \"x\" is a point of small order");

    } else {
        pkey = EVP_PKEY_new_raw_public_key_ex(NULL, "ED25519", NULL, x, 32);
        if (pkey == NULL) {
            encore_jwks_err(err, errlen, "invalid Ed25519 key");
        }
    }

    free(x);

    return pkey;
}


static EVP_MAC_CTX *
encore_jwk_hmac(json_t *jwk, char *err, size_t errlen)
{
    char            digest[] = "SHA256";
    size_t          klen;
    EVP_MAC        *mac;
    OSSL_PARAM      params[2];
    EVP_MAC_CTX    *ctx;
    unsigned char  *k;

    ctx = NULL;

    if (encore_jwk_member(jwk, "k", &k, &klen) != 0) {
        encore_jwks_err(err, errlen, "oct key without valid \"k\"");
        return NULL;
    }

    if (klen < ENCORE_JWK_HMAC_MIN_LEN) {
        encore_jwks_err(err, errlen, "weak HS256 key: %zu bytes, minimum is %d",
                        klen, ENCORE_JWK_HMAC_MIN_LEN);
        goto failed;
    }

    mac = EVP_MAC_fetch(NULL, "HMAC", NULL);
    if (mac == NULL) {
        encore_jwks_err(err, errlen, "HMAC unavailable");
        goto failed;
    }

    ctx = EVP_MAC_CTX_new(mac);
    EVP_MAC_free(mac);

    params[0] = OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST,
                                                 digest, 0);
    params[1] = OSSL_PARAM_construct_end();

    if (ctx == NULL || EVP_MAC_init(ctx, k, klen, params) != 1) {
        encore_jwks_err(err, errlen, "cannot initialise HMAC");
        EVP_MAC_CTX_free(ctx);
        ctx = NULL;
    }

failed:

    OPENSSL_cleanse(k, klen);
    free(k);

    return ctx;
}


/* 1: key added, 0: skipped, -1: error (err set) */
static int
encore_jwk_load(encore_jwks_t *jwks, json_t *jwk, char *err, size_t errlen)
{
    int            rc;
    size_t         i;
    json_t        *kid;
    unsigned       alg, declared;
    const char    *kty, *s, *crv;
    encore_jwk_t  *key;

    if (!json_is_object(jwk)) {
        encore_jwks_err(err, errlen, "key is not an object");
        return -1;
    }

    rc = encore_jwk_for_verify(jwk);
    if (rc <= 0) {
        if (rc < 0) {
            encore_jwks_err(err, errlen, "malformed \"use\" or \"key_ops\"");
        }
        return rc;
    }

    kty = encore_jwk_str(jwk, "kty");
    if (kty == NULL) {
        encore_jwks_err(err, errlen, "key without \"kty\"");
        return -1;
    }

    crv = encore_jwk_str(jwk, "crv");

    if (strcmp(kty, "RSA") == 0) {
        alg = ENCORE_JWS_RS256;

    } else if (strcmp(kty, "EC") == 0 && crv && strcmp(crv, "P-256") == 0) {
        alg = ENCORE_JWS_ES256;

    } else if (strcmp(kty, "OKP") == 0 && crv && strcmp(crv, "Ed25519") == 0) {
        alg = ENCORE_JWS_EDDSA;

    } else if (strcmp(kty, "oct") == 0) {
        alg = ENCORE_JWS_HS256;

    } else {
        /* other curves and key types: not ours to verify */
        return 0;
    }

    s = encore_jwk_str(jwk, "alg");
    if (s != NULL) {
        declared = encore_jws_alg_from_name(s, strlen(s));
        if (declared != alg) {
            /* e.g. an RSA key for PS256 or RS384 */
            return 0;
        }

    } else if (json_object_get(jwk, "alg") != NULL) {
        encore_jwks_err(err, errlen, "key \"alg\" is not a string");
        return -1;
    }

    kid = json_object_get(jwk, "kid");
    if (kid != NULL) {
        if (!json_is_string(kid) || json_string_length(kid) == 0
            || json_string_length(kid) > ENCORE_JWK_KID_MAX)
        {
            encore_jwks_err(err, errlen, "invalid \"kid\"");
            return -1;
        }

        for (i = 0; i < jwks->nkeys; i++) {
            if (jwks->keys[i].kid
                && jwks->keys[i].kid_len == json_string_length(kid)
                && memcmp(jwks->keys[i].kid, json_string_value(kid),
                          jwks->keys[i].kid_len) == 0)
            {
                encore_jwks_err(err, errlen, "duplicate kid \"%s\"",
                                json_string_value(kid));
                return -1;
            }
        }
    }

    key = &jwks->keys[jwks->nkeys];
    memset(key, 0, sizeof(encore_jwk_t));
    key->alg = alg;

    switch (alg) {

    case ENCORE_JWS_HS256:
        key->mac = encore_jwk_hmac(jwk, err, errlen);
        if (key->mac == NULL) {
            return -1;
        }
        break;

    case ENCORE_JWS_RS256:
        key->pkey = encore_jwk_rsa(jwk, err, errlen);
        break;

    case ENCORE_JWS_ES256:
        key->pkey = encore_jwk_ec(jwk, err, errlen);
        break;

    default: /* ENCORE_JWS_EDDSA */
        key->pkey = encore_jwk_ed25519(jwk, err, errlen);
        break;
    }

    /* counted now so that encore_jwks_free() releases what follows */
    jwks->nkeys++;

    if (alg != ENCORE_JWS_HS256) {
        if (key->pkey == NULL) {
            return -1;
        }

        key->verify = EVP_MD_CTX_new();

        if (key->verify == NULL
            || EVP_DigestVerifyInit(key->verify, NULL,
                                    alg == ENCORE_JWS_EDDSA ? NULL
                                                            : jwks->sha256,
                                    NULL, key->pkey)
               != 1)
        {
            encore_jwks_err(err, errlen, "cannot prepare verification");
            return -1;
        }
    }

    if (kid != NULL) {
        key->kid_len = json_string_length(kid);
        key->kid = malloc(key->kid_len + 1);
        if (key->kid == NULL) {
            encore_jwks_err(err, errlen, "out of memory");
            return -1;
        }

        memcpy(key->kid, json_string_value(kid), key->kid_len + 1);
    }

    return 1;
}


encore_jwks_t *
encore_jwks_parse(const char *text, size_t len, char *err, size_t errlen)
{
    size_t          i, n;
    json_t         *json, *keys, *jwk;
    json_error_t    jerr;
    encore_jwks_t  *jwks;
    unsigned char   hash[32];

    json = json_loadb(text, len, JSON_REJECT_DUPLICATES, &jerr);
    if (json == NULL) {
        encore_jwks_err(err, errlen, "invalid JSON at line %d: %s",
                        jerr.line, jerr.text);
        return NULL;
    }

    jwks = calloc(1, sizeof(encore_jwks_t));
    if (jwks == NULL) {
        encore_jwks_err(err, errlen, "out of memory");
        json_decref(json);
        return NULL;
    }

    keys = json_object_get(json, "keys");
    n = keys ? json_array_size(keys) : 1;

    if (!json_is_object(json) || (keys && !json_is_array(keys))) {
        encore_jwks_err(err, errlen, "not a JWK or a JWK set");
        goto failed;
    }

    if (n > ENCORE_JWKS_MAX_KEYS) {
        encore_jwks_err(err, errlen, "more than %d keys",
                        ENCORE_JWKS_MAX_KEYS);
        goto failed;
    }

    jwks->sha256 = EVP_MD_fetch(NULL, "SHA256", NULL);
    jwks->keys = calloc(n ? n : 1, sizeof(encore_jwk_t));

    if (jwks->sha256 == NULL || jwks->keys == NULL) {
        encore_jwks_err(err, errlen, "out of memory");
        goto failed;
    }

    for (i = 0; i < n; i++) {
        jwk = keys ? json_array_get(keys, i) : json;

        if (encore_jwk_load(jwks, jwk, err, errlen) < 0) {
            goto failed;
        }
    }

    if (jwks->nkeys == 0) {
        encore_jwks_err(err, errlen, "no key usable for ES256, RS256, EdDSA "
                        "or HS256 signature verification");
        goto failed;
    }

    if (encore_sha256(jwks->sha256, text, len, hash) != 0) {
        encore_jwks_err(err, errlen, "cannot hash the key set");
        goto failed;
    }

    for (i = 0; i < 8; i++) {
        jwks->generation = (jwks->generation << 8) | hash[i];
    }

    json_decref(json);
    ERR_clear_error();

    return jwks;

failed:

    json_decref(json);
    encore_jwks_free(jwks);
    ERR_clear_error();

    return NULL;
}


encore_jwks_t *
encore_jwks_load_file(const char *path, char *err, size_t errlen)
{
    FILE           *f;
    char           *text;
    size_t          len;
    encore_jwks_t  *jwks;

    f = fopen(path, "rb");
    if (f == NULL) {
        encore_jwks_err(err, errlen, "cannot open \"%s\"", path);
        return NULL;
    }

    text = malloc(ENCORE_JWKS_MAX_FILE + 1);
    if (text == NULL) {
        encore_jwks_err(err, errlen, "out of memory");
        fclose(f);
        return NULL;
    }

    len = fread(text, 1, ENCORE_JWKS_MAX_FILE + 1, f);

    if (ferror(f) || len > ENCORE_JWKS_MAX_FILE) {
        encore_jwks_err(err, errlen, "cannot read \"%s\" (or over 1 MB)",
                        path);
        jwks = NULL;

    } else {
        jwks = encore_jwks_parse(text, len, err, errlen);
    }

    fclose(f);
    free(text);

    return jwks;
}


void
encore_jwks_free(encore_jwks_t *jwks)
{
    size_t         i;
    encore_jwk_t  *key;

    if (jwks == NULL) {
        return;
    }

    for (i = 0; i < jwks->nkeys; i++) {
        key = &jwks->keys[i];
        free(key->kid);
        EVP_MD_CTX_free(key->verify);
        EVP_MAC_CTX_free(key->mac);
        EVP_PKEY_free(key->pkey);
    }

    free(jwks->keys);
    EVP_MD_free(jwks->sha256);
    free(jwks);
}


const encore_jwk_t *
encore_jwks_find(const encore_jwks_t *jwks, const char *kid, size_t kid_len,
    unsigned alg)
{
    size_t               i;
    const encore_jwk_t  *key, *found;

    if (kid != NULL) {
        for (i = 0; i < jwks->nkeys; i++) {
            key = &jwks->keys[i];

            if (key->kid && key->kid_len == kid_len
                && memcmp(key->kid, kid, kid_len) == 0)
            {
                /* the kid'd key or nothing: never another key */
                return key->alg == alg ? key : NULL;
            }
        }

        return NULL;
    }

    found = NULL;

    for (i = 0; i < jwks->nkeys; i++) {
        if (jwks->keys[i].alg == alg) {
            if (found) {
                return NULL;
            }

            found = &jwks->keys[i];
        }
    }

    return found;
}
