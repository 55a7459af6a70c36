/*
 * Encore: JWS compact serialisation parsing and verification.
 */

#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/err.h>

#include "encore_jws.h"
#include "encore_flat.h"


#define ENCORE_ES256_SIG_LEN    64
#define ENCORE_HS256_TAG_LEN    32
#define ENCORE_ED25519_SIG_LEN  64


/* the order n of the P-256 group, big-endian */
static const unsigned char  encore_p256_order[32] = {
    0xff, 0xff, 0xff, 0xff, 0x00, 0x00, 0x00, 0x00,
    0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
    0xbc, 0xe6, 0xfa, 0xad, 0xa7, 0x17, 0x9e, 0x84,
    0xf3, 0xb9, 0xca, 0xc2, 0xfc, 0x63, 0x25, 0x51
};

/*
 * floor(n / 2): an s above it is "high".  (r, s) and (r, n - s) verify
 * alike, so a verifier that takes both lets anyone turn one observed token
 * into a second valid string of the same claims (another cache key,
 * another jti-less replay); only the low form is accepted, as Bitcoin's
 * BIP 62 and libsecp256k1 do.  A constant compare, as for n itself: the
 * unit tests check it against OpenSSL's order shifted right by one bit.
 */
static const unsigned char  encore_p256_half_order[32] = {
    0x7f, 0xff, 0xff, 0xff, 0x80, 0x00, 0x00, 0x00,
    0x7f, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
    0xde, 0x73, 0x7d, 0x56, 0xd3, 0x8b, 0xcf, 0x42,
    0x79, 0xdc, 0xe5, 0x61, 0x7e, 0x31, 0x92, 0xa8
};

static const char  encore_b64url_alphabet[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";


/* base64url digit values; 0xff: not in the alphabet */
static const unsigned char  encore_b64url_values[256] = {
    0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
    0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
    0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
    0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
    0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
    0xff, 0xff, 0xff, 0xff, 0xff, 0x3e, 0xff, 0xff,
    0x34, 0x35, 0x36, 0x37, 0x38, 0x39, 0x3a, 0x3b,
    0x3c, 0x3d, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
    0xff, 0x00, 0x01, 0x02, 0x03, 0x04, 0x05, 0x06,
    0x07, 0x08, 0x09, 0x0a, 0x0b, 0x0c, 0x0d, 0x0e,
    0x0f, 0x10, 0x11, 0x12, 0x13, 0x14, 0x15, 0x16,
    0x17, 0x18, 0x19, 0xff, 0xff, 0xff, 0xff, 0x3f,
    0xff, 0x1a, 0x1b, 0x1c, 0x1d, 0x1e, 0x1f, 0x20,
    0x21, 0x22, 0x23, 0x24, 0x25, 0x26, 0x27, 0x28,
    0x29, 0x2a, 0x2b, 0x2c, 0x2d, 0x2e, 0x2f, 0x30,
    0x31, 0x32, 0x33, 0xff, 0xff, 0xff, 0xff, 0xff,
    0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
    0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
    0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
    0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
    0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
    0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
    0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
    0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
    0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
    0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
    0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
    0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
    0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
    0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
    0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
    0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff
};


/*
 * Four digits to three bytes per step; 0xff has its top bit set and no
 * digit has, so one test per quantum finds any character outside the
 * alphabet.
 */
int
encore_base64url_decode(unsigned char *dst, size_t *dst_len, const char *src,
    size_t len)
{
    size_t                i, n, full;
    uint32_t              a, b, c, d, v;
    const unsigned char  *s;

    if (len % 4 == 1) {
        return -1;
    }

    s = (const unsigned char *) src;
    full = len & ~(size_t) 3;
    n = 0;

    for (i = 0; i < full; i += 4) {
        a = encore_b64url_values[s[i]];
        b = encore_b64url_values[s[i + 1]];
        c = encore_b64url_values[s[i + 2]];
        d = encore_b64url_values[s[i + 3]];

        if ((a | b | c | d) & 0x80) {
            return -1;
        }

        v = (a << 18) | (b << 12) | (c << 6) | d;

        dst[n] = (unsigned char) (v >> 16);
        dst[n + 1] = (unsigned char) (v >> 8);
        dst[n + 2] = (unsigned char) v;
        n += 3;
    }

    /* canonical form only: the unused low bits of the last digit are zero */

    switch (len - full) {

    case 2:
        a = encore_b64url_values[s[i]];
        b = encore_b64url_values[s[i + 1]];

        if (((a | b) & 0x80) || (b & 0x0f)) {
            return -1;
        }

        dst[n++] = (unsigned char) ((a << 2) | (b >> 4));
        break;

    case 3:
        a = encore_b64url_values[s[i]];
        b = encore_b64url_values[s[i + 1]];
        c = encore_b64url_values[s[i + 2]];

        if (((a | b | c) & 0x80) || (c & 0x03)) {
            return -1;
        }

        dst[n++] = (unsigned char) ((a << 2) | (b >> 4));
        dst[n++] = (unsigned char) ((b << 4) | (c >> 2));
        break;
    }

    *dst_len = n;

    return 0;
}


size_t
encore_base64url_encode(char *dst, const unsigned char *src, size_t len)
{
    size_t         i, n;
    unsigned long  acc;
    unsigned       bits;

    acc = 0;
    bits = 0;
    n = 0;

    for (i = 0; i < len; i++) {
        acc = (acc << 8) | src[i];
        bits += 8;

        while (bits >= 6) {
            bits -= 6;
            dst[n++] = encore_b64url_alphabet[(acc >> bits) & 0x3f];
        }

        acc &= (1UL << bits) - 1;
    }

    if (bits) {
        dst[n++] = encore_b64url_alphabet[(acc << (6 - bits)) & 0x3f];
    }

    dst[n] = '\0';

    return n;
}


/*
 * jansson recurses per nesting level (up to 2048); refuse deep documents
 * before handing them to it.
 */
static int
encore_json_depth_ok(const unsigned char *p, size_t len)
{
    size_t    i;
    unsigned  depth, in_string;

    depth = 0;
    in_string = 0;

    for (i = 0; i < len; i++) {
        if (in_string) {
            if (p[i] == '\\') {
                i++;

            } else if (p[i] == '"') {
                in_string = 0;
            }

            continue;
        }

        switch (p[i]) {
        case '"':
            in_string = 1;
            break;

        case '{':
        case '[':
            if (++depth > ENCORE_JWS_MAX_DEPTH) {
                return 0;
            }
            break;

        case '}':
        case ']':
            if (depth) {
                depth--;
            }
            break;
        }
    }

    return 1;
}


json_t *
encore_json_object_parse(const void *data, size_t len)
{
    json_t        *json;
    json_error_t   error;

    if (!encore_json_depth_ok(data, len)) {
        return NULL;
    }

    /* jansson also refuses invalid UTF-8 and, without JSON_ALLOW_NUL, \u0000 */
    json = json_loadb(data, len, JSON_REJECT_DUPLICATES, &error);
    if (json == NULL) {
        return NULL;
    }

    if (!json_is_object(json)) {
        json_decref(json);
        return NULL;
    }

    return json;
}


unsigned
encore_jws_alg_from_name(const char *name, size_t len)
{
    /* exact, case-sensitive names (RFC 7518); "none" is never an algorithm */
    if (len == 5 && memcmp(name, "ES256", 5) == 0) {
        return ENCORE_JWS_ES256;
    }

    if (len == 5 && memcmp(name, "RS256", 5) == 0) {
        return ENCORE_JWS_RS256;
    }

    if (len == 5 && memcmp(name, "HS256", 5) == 0) {
        return ENCORE_JWS_HS256;
    }

    if (len == 5 && memcmp(name, "EdDSA", 5) == 0) {
        return ENCORE_JWS_EDDSA;
    }

    return 0;
}


const char *
encore_jws_alg_name(unsigned alg)
{
    switch (alg) {
    case ENCORE_JWS_ES256:
        return "ES256";
    case ENCORE_JWS_RS256:
        return "RS256";
    case ENCORE_JWS_HS256:
        return "HS256";
    case ENCORE_JWS_EDDSA:
        return "EdDSA";
    }

    return "unknown";
}


static int
encore_jws_fail(encore_jws_t *jws, int rc, const char *error)
{
    jws->error = error;
    return rc;
}


/*
 * The header's checks, on its members however they were read: alg a string
 * naming an allowed algorithm, no crit, kid (when present) a string of
 * 1..ENCORE_JWK_KID_MAX bytes without control characters.  has_kid with a
 * NULL kid means kid is not a string.  kid must stay valid, NUL-terminated,
 * as long as jws.
 */
static int
encore_jws_header_check(encore_jws_t *jws, int alg_is_string,
    const char *alg, size_t alg_len, int has_crit, int has_kid,
    const char *kid, size_t kid_len, unsigned allowed_algs)
{
    size_t  i;

    if (!alg_is_string) {
        return encore_jws_fail(jws, ENCORE_JWS_EALG, "alg missing");
    }

    jws->alg = encore_jws_alg_from_name(alg, alg_len);

    if ((jws->alg & allowed_algs) == 0) {
        jws->alg = 0;
        return encore_jws_fail(jws, ENCORE_JWS_EALG, "alg not allowed");
    }

    /*
     * RFC 7515 4.1.11: a recipient must reject a JWS whose crit lists an
     * extension it does not understand; Encore understands none, and a
     * malformed crit is no better.
     */
    if (has_crit) {
        return encore_jws_fail(jws, ENCORE_JWS_ECRIT,
                               "crit extension not understood");
    }

    if (has_kid) {
        if (kid == NULL) {
            return encore_jws_fail(jws, ENCORE_JWS_EMALFORMED,
                                   "kid is not a string");
        }

        if (kid_len == 0 || kid_len > ENCORE_JWK_KID_MAX) {
            return encore_jws_fail(jws, ENCORE_JWS_EMALFORMED,
                                   "kid length out of range");
        }

        for (i = 0; i < kid_len; i++) {
            if ((unsigned char) kid[i] < 0x20 || kid[i] == 0x7f) {
                return encore_jws_fail(jws, ENCORE_JWS_EMALFORMED,
                                       "kid has control characters");
            }
        }

        jws->kid = kid;
        jws->kid_len = kid_len;
    }

    return ENCORE_JWS_OK;
}


/* a flat header: its strings are the bytes of the decoded header in buf */
static int
encore_jws_header_flat(encore_jws_t *jws, const encore_flat_t *flat,
    unsigned allowed_algs)
{
    const encore_flat_member_t  *alg, *kid;

    alg = encore_flat_get(flat, "alg");
    kid = encore_flat_get(flat, "kid");

    if (kid && kid->type == ENCORE_FLAT_STRING) {
        /* the closing quote, in our buffer, becomes the kid's NUL */
        ((char *) kid->value.data)[kid->value.len] = '\0';
    }

    return encore_jws_header_check(jws,
                                   alg && alg->type == ENCORE_FLAT_STRING,
                                   alg ? alg->value.data : NULL,
                                   alg ? alg->value.len : 0,
                                   encore_flat_get(flat, "crit") != NULL,
                                   kid != NULL,
                                   kid && kid->type == ENCORE_FLAT_STRING
                                   ? kid->value.data : NULL,
                                   kid ? kid->value.len : 0,
                                   allowed_algs);
}


int
encore_jws_parse(encore_jws_t *jws, const char *token, size_t len,
    size_t max_len, unsigned allowed_algs)
{
    size_t          i, dots[2], nd, hlen, plen, slen, hdec;
    json_t         *alg, *kid;
    unsigned char  *p;
    encore_flat_t   flat;

    memset(jws, 0, sizeof(encore_jws_t));

    if (len > max_len) {
        return encore_jws_fail(jws, ENCORE_JWS_ETOOLARGE, "token too large");
    }

    nd = 0;

    for (i = 0; i < len; i++) {
        if (token[i] == '.') {
            if (nd == 2) {
                return encore_jws_fail(jws, ENCORE_JWS_EMALFORMED,
                                       "token must have three segments");
            }

            dots[nd++] = i;
        }
    }

    if (nd != 2) {
        return encore_jws_fail(jws, ENCORE_JWS_EMALFORMED,
                               "token must have three segments");
    }

    hlen = dots[0];
    plen = dots[1] - dots[0] - 1;
    slen = len - dots[1] - 1;

    if (hlen == 0 || slen == 0) {
        return encore_jws_fail(jws, ENCORE_JWS_EMALFORMED,
                               "empty header or signature");
    }

    /* header, NUL, payload, NUL, signature */
    jws->buf = malloc(len + 2);
    if (jws->buf == NULL) {
        return encore_jws_fail(jws, ENCORE_JWS_ENOMEM, "out of memory");
    }

    p = jws->buf;

    if (encore_base64url_decode(p, &hdec, token, hlen) != 0) {
        return encore_jws_fail(jws, ENCORE_JWS_EMALFORMED,
                               "header is not base64url");
    }

    p[hdec] = '\0';
    jws->payload = p + hdec + 1;

    if (encore_base64url_decode(jws->payload, &jws->payload_len,
                                token + dots[0] + 1, plen)
        != 0)
    {
        return encore_jws_fail(jws, ENCORE_JWS_EMALFORMED,
                               "payload is not base64url");
    }

    jws->payload[jws->payload_len] = '\0';
    jws->sig = jws->payload + jws->payload_len + 1;

    if (encore_base64url_decode(jws->sig, &jws->sig_len,
                                token + dots[1] + 1, slen)
        != 0)
    {
        return encore_jws_fail(jws, ENCORE_JWS_EMALFORMED,
                               "signature is not base64url");
    }

    jws->input = token;
    jws->input_len = dots[1];

    /* the usual header is flat: read in place, jansson for anything else */
    if (encore_flat_parse(&flat, p, hdec) == 0) {
        return encore_jws_header_flat(jws, &flat, allowed_algs);
    }

    jws->header = encore_json_object_parse(p, hdec);
    if (jws->header == NULL) {
        return encore_jws_fail(jws, ENCORE_JWS_EMALFORMED,
                               "header is not a JSON object");
    }

    alg = json_object_get(jws->header, "alg");
    kid = json_object_get(jws->header, "kid");

    return encore_jws_header_check(jws, json_is_string(alg),
                                   json_string_value(alg),
                                   json_string_length(alg),
                                   json_object_get(jws->header, "crit")
                                   != NULL,
                                   kid != NULL, json_string_value(kid),
                                   json_string_length(kid), allowed_algs);
    return ENCORE_JWS_OK;
}


/*
 * IEEE P1363 r || s to DER, refusing r or s outside [1, n - 1] rather than
 * leaving that to the library, and a high s (above n / 2): the signature
 * must be in its one canonical form.  der holds at least 72 bytes.
 */
static int
encore_es256_to_der(const unsigned char *sig, unsigned char *der,
    size_t *der_len)
{
    size_t               i, k, n, len[2], off[2];
    const unsigned char *v;

    for (k = 0; k < 2; k++) {
        v = sig + 32 * k;

        for (i = 0; i < 32 && v[i] == 0; i++) { /* void */ }

        if (i == 32) {
            return -1;
        }

        if (memcmp(v, encore_p256_order, 32) >= 0) {
            return -1;
        }

        if (k == 1 && memcmp(v, encore_p256_half_order, 32) > 0) {
            return -1;
        }

        off[k] = i;
        len[k] = 32 - i + (v[i] & 0x80 ? 1 : 0);
    }

    n = 0;
    der[n++] = 0x30;
    der[n++] = (unsigned char) (len[0] + len[1] + 4);

    for (k = 0; k < 2; k++) {
        v = sig + 32 * k;

        der[n++] = 0x02;
        der[n++] = (unsigned char) len[k];

        if (v[off[k]] & 0x80) {
            der[n++] = 0x00;
        }

        memcpy(der + n, v + off[k], 32 - off[k]);
        n += 32 - off[k];
    }

    *der_len = n;

    return 0;
}


static int
encore_jws_verify_hmac(const encore_jwk_t *key, const void *in,
    size_t in_len, const unsigned char *sig, size_t sig_len)
{
    int             rc;
    size_t          out_len;
    EVP_MAC_CTX    *ctx;
    unsigned char   tag[EVP_MAX_MD_SIZE];

    /* a truncated tag is a forgery with fewer bits to guess */
    if (sig_len != ENCORE_HS256_TAG_LEN) {
        return ENCORE_JWS_ESIG;
    }

    ctx = EVP_MAC_CTX_dup(key->mac);
    if (ctx == NULL) {
        return ENCORE_JWS_ENOMEM;
    }

    rc = ENCORE_JWS_ESIG;

    if (EVP_MAC_update(ctx, in, in_len) == 1
        && EVP_MAC_final(ctx, tag, &out_len, sizeof(tag)) == 1
        && out_len == ENCORE_HS256_TAG_LEN
        && CRYPTO_memcmp(tag, sig, ENCORE_HS256_TAG_LEN) == 0)
    {
        rc = ENCORE_JWS_OK;
    }

    OPENSSL_cleanse(tag, sizeof(tag));
    EVP_MAC_CTX_free(ctx);

    return rc;
}


int
encore_jws_verify_signature(const encore_jwk_t *key, unsigned alg,
    const void *in, size_t in_len, const unsigned char *sig, size_t sig_len)
{
    int             rc;
    size_t          der_len;
    EVP_MD_CTX     *ctx;
    unsigned char   der[80];

    if (key == NULL || key->alg != alg) {
        return ENCORE_JWS_EALG;
    }

    switch (alg) {

    case ENCORE_JWS_HS256:
        return encore_jws_verify_hmac(key, in, in_len, sig, sig_len);

    case ENCORE_JWS_ES256:
        if (sig_len != ENCORE_ES256_SIG_LEN
            || encore_es256_to_der(sig, der, &der_len) != 0)
        {
            return ENCORE_JWS_ESIG;
        }

        sig = der;
        sig_len = der_len;
        break;

    case ENCORE_JWS_EDDSA:
        if (sig_len != ENCORE_ED25519_SIG_LEN) {
            return ENCORE_JWS_ESIG;
        }
        break;

    case ENCORE_JWS_RS256:
        if ((int) sig_len != EVP_PKEY_get_size(key->pkey)) {
            return ENCORE_JWS_ESIG;
        }
        break;

    default:
        return ENCORE_JWS_EALG;
    }

    ctx = EVP_MD_CTX_new();
    if (ctx == NULL) {
        return ENCORE_JWS_ENOMEM;
    }

    rc = ENCORE_JWS_ESIG;

    if (EVP_MD_CTX_copy_ex(ctx, key->verify) == 1
        && EVP_DigestVerify(ctx, sig, sig_len, in, in_len) == 1)
    {
        rc = ENCORE_JWS_OK;
    }

    EVP_MD_CTX_free(ctx);

    /* a failed verification leaves errors queued; they are not ours */
    ERR_clear_error();

    return rc;
}


int
encore_jws_verify(encore_jws_t *jws, const encore_jwks_t *jwks)
{
    int                  rc;
    const encore_jwk_t  *key;

    key = encore_jwks_find(jwks, jws->kid, jws->kid_len, jws->alg);
    if (key == NULL) {
        return encore_jws_fail(jws, ENCORE_JWS_EKID,
                               jws->kid ? "unknown kid" : "no key for alg");
    }

    /* refused below too; said here so that the 401 tells why */
    if (jws->alg == ENCORE_JWS_ES256 && jws->sig_len == ENCORE_ES256_SIG_LEN
        && memcmp(jws->sig + 32, encore_p256_half_order, 32) > 0)
    {
        return encore_jws_fail(jws, ENCORE_JWS_ESIG,
                               "ES256 signature not in low-S form");
    }

    rc = encore_jws_verify_signature(key, jws->alg, jws->input,
                                     jws->input_len, jws->sig, jws->sig_len);

    switch (rc) {
    case ENCORE_JWS_OK:
        return rc;
    case ENCORE_JWS_ENOMEM:
        return encore_jws_fail(jws, rc, "out of memory");
    default:
        return encore_jws_fail(jws, ENCORE_JWS_ESIG, "invalid signature");
    }
}


void
encore_jws_free(encore_jws_t *jws)
{
    if (jws->header) {
        json_decref(jws->header);
        jws->header = NULL;
    }

    free(jws->buf);
    jws->buf = NULL;
    jws->kid = NULL;
}


int
encore_sha256(const EVP_MD *md, const void *data, size_t len,
    unsigned char out[32])
{
    unsigned int  n;

    if (EVP_Digest(data, len, out, &n, md, NULL) != 1 || n != 32) {
        return -1;
    }

    return 0;
}
