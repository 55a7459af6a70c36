/*
 * Encore: JWS compact serialisation (RFC 7515) parsing and verification,
 * hardened along RFC 8725.  No nginx dependency: the module, the unit tests
 * and the fuzz harness all link this file.
 */

#ifndef ENCORE_JWS_H
#define ENCORE_JWS_H


#include <stddef.h>
#include <jansson.h>

#include "encore_jwks.h"


#define ENCORE_JWS_DEFAULT_MAX_SIZE  8192
/* header and claims nesting deeper than this is refused */
#define ENCORE_JWS_MAX_DEPTH         16


typedef enum {
    ENCORE_JWS_OK = 0,
    ENCORE_JWS_EMALFORMED,     /* segments, base64url, JSON, header types */
    ENCORE_JWS_ETOOLARGE,      /* over the configured size */
    ENCORE_JWS_EALG,           /* none, unknown, or outside the allow-list */
    ENCORE_JWS_ECRIT,          /* crit present: no extension is understood */
    ENCORE_JWS_EKID,           /* no key for this kid and algorithm */
    ENCORE_JWS_ESIG,           /* signature does not verify */
    ENCORE_JWS_ENOMEM
} encore_jws_rc_t;


typedef struct {
    const char     *input;       /* "header.payload", points into the token */
    size_t          input_len;
    json_t         *header;      /* owned; NULL when read flat */
    unsigned char  *payload;     /* decoded and NUL-terminated, in buf */
    size_t          payload_len;
    unsigned char  *sig;         /* decoded, in buf */
    size_t          sig_len;
    unsigned        alg;         /* one ENCORE_JWS_* bit */
    const char     *kid;         /* from header (NUL-terminated) or NULL */
    size_t          kid_len;
    unsigned char  *buf;         /* owned */
    const char     *error;       /* static text describing the failure */
} encore_jws_t;


/*
 * Split and decode a compact JWS and check its protected header: exactly
 * three segments of strict base64url (no padding, no standard alphabet,
 * zero unused bits), a header that is a JSON object without duplicate
 * members, a string "alg" in allowed_algs ("none" never is), no "crit", a
 * string "kid" of at most ENCORE_JWK_KID_MAX bytes without control
 * characters.  "jwk", "jku", "x5u", "x5c" are ignored: keys come only from
 * the configured key set.  A flat header (encore_flat.h) is read in place,
 * any other with jansson; the verdicts are the same.  The signature is
 * not checked here.  jws must be released with encore_jws_free() whatever
 * the result.
 */
int encore_jws_parse(encore_jws_t *jws, const char *token, size_t len,
    size_t max_len, unsigned allowed_algs);

/* Select the key (see encore_jwks_find()) and verify the signature. */
int encore_jws_verify(encore_jws_t *jws, const encore_jwks_t *jwks);

/*
 * Verify sig over in with key for alg, as a JWS does: ES256 in IEEE P1363
 * form (64 bytes, 0 < r, s < n), HS256 a full 32-byte tag compared in
 * constant time, RS256 PKCS#1 v1.5, EdDSA Ed25519.  Returns ENCORE_JWS_OK,
 * ENCORE_JWS_ESIG, ENCORE_JWS_EALG (key is not for alg) or ENCORE_JWS_ENOMEM.
 */
int encore_jws_verify_signature(const encore_jwk_t *key, unsigned alg,
    const void *in, size_t in_len, const unsigned char *sig, size_t sig_len);

void encore_jws_free(encore_jws_t *jws);

/* returns an ENCORE_JWS_* bit, or 0 for anything else, "none" included */
unsigned encore_jws_alg_from_name(const char *name, size_t len);
const char *encore_jws_alg_name(unsigned alg);

/*
 * Strict base64url without padding; dst must hold len * 3 / 4 bytes.
 * Returns 0, or -1 on any character outside the alphabet, a length of
 * 1 mod 4 or non-zero unused bits.
 */
int encore_base64url_decode(unsigned char *dst, size_t *dst_len,
    const char *src, size_t len);
/* dst must hold (len + 2) / 3 * 4 + 1 bytes; returns the length written */
size_t encore_base64url_encode(char *dst, const unsigned char *src,
    size_t len);

/* JSON parse: an object, no duplicate members, depth-limited, no NUL */
json_t *encore_json_object_parse(const void *data, size_t len);

/* SHA-256 of data, with the md fetched once by the caller */
int encore_sha256(const EVP_MD *md, const void *data, size_t len,
    unsigned char out[32]);


#endif /* ENCORE_JWS_H */
