/*
 * jwt_sign.c — access tokens: compact JWS with ES256 (RFC 7515, 7518, 7519).
 *
 * OpenSSL produces ECDSA signatures as DER (SEQUENCE { r INTEGER, s INTEGER
 * }); JOSE wants the fixed 64-byte concatenation r || s with each half
 * left-padded to 32 bytes.  auth_es256_der_to_jose does that conversion and
 * is tested on its own, because getting the padding wrong only shows up on
 * the one signature in ~256 whose r or s has a leading zero byte.  It also
 * writes s in its low form (s <= n / 2; (r, n - s) is the same signature's
 * other form), the only one the edge accepts: half of OpenSSL's raw
 * signatures are high.
 */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/ec.h>
#include <openssl/ecdsa.h>
#include <openssl/obj_mac.h>
#include <openssl/rand.h>

#include "auth.h"


int
auth_es256_der_to_jose(const unsigned char *der, size_t len,
    unsigned char out[64])
{
    int                   rc;
    BIGNUM               *low;
    EC_GROUP             *group;
    ECDSA_SIG            *sig;
    const BIGNUM         *r, *s, *n;
    const unsigned char  *p;

    p = der;
    sig = d2i_ECDSA_SIG(NULL, &p, (long) len);
    if (sig == NULL) {
        return -1;
    }

    rc = -1;
    low = NULL;
    group = NULL;

    /* trailing garbage after the SEQUENCE means the input was not the
       signature we asked for */
    if (p != der + len) {
        goto failed;
    }

    ECDSA_SIG_get0(sig, &r, &s);

    group = EC_GROUP_new_by_curve_name(NID_X9_62_prime256v1);
    low = BN_new();
    if (group == NULL || low == NULL) {
        goto failed;
    }

    /* low = floor(n / 2); s above it becomes n - s */
    n = EC_GROUP_get0_order(group);

    if (BN_rshift1(low, n) != 1) {
        goto failed;
    }

    if (BN_cmp(s, low) > 0) {
        if (BN_sub(low, n, s) != 1) {
            goto failed;
        }

        s = low;
    }

    if (BN_num_bytes(r) > 32 || BN_num_bytes(s) > 32
        || BN_bn2binpad(r, out, 32) != 32
        || BN_bn2binpad(s, out + 32, 32) != 32)
    {
        goto failed;
    }

    rc = 0;

failed:

    BN_free(low);
    EC_GROUP_free(group);
    ECDSA_SIG_free(sig);
    return rc;
}




/* b64url(JSON) of obj, malloc'd; NULL on failure.  Does not steal obj. */
static char *
json_b64url(json_t *obj)
{
    char  *text, *enc;

    text = json_dumps(obj, JSON_COMPACT);
    if (text == NULL) {
        return NULL;
    }

    enc = enc_b64url_encode_alloc((const unsigned char *) text,
                                   strlen(text));
    free(text);
    return enc;
}


char *
auth_jwt_sign(const auth_key_t *key, const auth_claims_t *c)
{
    char           *h64, *c64, *input, *jws;
    size_t          hlen, clen, inlen, derlen, slen;
    json_t         *header, *claims;
    EVP_MD_CTX     *md;
    unsigned char   der[80], sig[64];

    h64 = NULL;
    c64 = NULL;
    input = NULL;
    jws = NULL;
    md = NULL;

    header = json_pack("{s:s, s:s, s:s}",
                       "alg", "ES256", "typ", "JWT", "kid", key->kid);
    claims = json_pack("{s:s, s:s, s:s, s:s, s:s, s:I, s:I, s:s}",
                       "iss", c->iss, "aud", c->aud, "sub", c->sub,
                       "role", c->role, "name", c->name,
                       "iat", (json_int_t) c->iat,
                       "exp", (json_int_t) c->exp, "jti", c->jti);
    if (header == NULL || claims == NULL) {
        goto failed;
    }

    /* the refresh family the token was issued under: the edge refuses
       the session's tokens when it is revoked (logout) */
    if (c->sid != NULL
        && json_object_set_new(claims, "sid", json_string(c->sid)) != 0)
    {
        goto failed;
    }

    h64 = json_b64url(header);
    c64 = json_b64url(claims);
    if (h64 == NULL || c64 == NULL) {
        goto failed;
    }

    hlen = strlen(h64);
    clen = strlen(c64);
    inlen = hlen + 1 + clen;

    /* the signing input grows into the whole token: '.' + 86 chars + NUL */
    input = malloc(inlen + 1 + enc_b64url_len(sizeof(sig)) + 1);
    if (input == NULL) {
        goto failed;
    }

    memcpy(input, h64, hlen);
    input[hlen] = '.';
    memcpy(input + hlen + 1, c64, clen);
    input[inlen] = '\0';

    md = EVP_MD_CTX_new();
    if (md == NULL) {
        goto failed;
    }

    derlen = sizeof(der);

    if (EVP_DigestSignInit(md, NULL, EVP_sha256(), NULL, key->pkey) != 1
        || EVP_DigestSign(md, der, &derlen, (const unsigned char *) input,
                          inlen) != 1)
    {
        goto failed;
    }

    if (auth_es256_der_to_jose(der, derlen, sig) != 0) {
        goto failed;
    }

    input[inlen] = '.';
    slen = enc_b64url_len(sizeof(sig)) + 1;
    if (enc_b64url_encode(sig, sizeof(sig), input + inlen + 1, slen) != 0) {
        goto failed;
    }

    jws = input;
    input = NULL;

failed:

    EVP_MD_CTX_free(md);
    free(input);
    free(h64);
    free(c64);
    json_decref(header);
    json_decref(claims);
    return jws;
}
