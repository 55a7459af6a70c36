/*
 * Encore: JSON Web Key Sets for the jwt module.
 *
 * A key set is loaded once, at configuration time: every key is turned into
 * an OpenSSL object (EVP_PKEY, EVP_MAC_CTX) and a ready verification context
 * (the "template") that the hot path only duplicates.  Nothing here blocks
 * per request; nothing here knows about nginx.
 */

#ifndef ENCORE_JWKS_H
#define ENCORE_JWKS_H


#include <stddef.h>
#include <stdint.h>
#include <openssl/evp.h>


/* algorithms, as bits of an allow-list */
#define ENCORE_JWS_HS256          0x01
#define ENCORE_JWS_RS256          0x02
#define ENCORE_JWS_ES256          0x04
#define ENCORE_JWS_EDDSA          0x08
#define ENCORE_JWS_ALL            0x0f

#define ENCORE_JWK_KID_MAX        256
#define ENCORE_JWK_RSA_MIN_BITS   2048
/* RFC 7518 3.2: an HS256 key is at least as long as the hash output */
#define ENCORE_JWK_HMAC_MIN_LEN   32
#define ENCORE_JWKS_MAX_KEYS      64


typedef struct {
    char          *kid;         /* NUL-terminated, NULL when absent */
    size_t         kid_len;
    unsigned       alg;         /* the single ENCORE_JWS_* it verifies */
    EVP_PKEY      *pkey;        /* RSA, EC P-256, Ed25519 */
    EVP_MD_CTX    *verify;      /* DigestVerifyInit done; copy per use */
    EVP_MAC_CTX   *mac;         /* HS256: key and digest set; dup per use */
} encore_jwk_t;


typedef struct {
    encore_jwk_t  *keys;
    size_t         nkeys;
    /* first 8 bytes of SHA-256 of the JWKS text: changes on rotation */
    uint64_t       generation;
    EVP_MD        *sha256;      /* fetched once, used for every key */
} encore_jwks_t;


/*
 * Parse a JWKS ({"keys": [...]}) or a single JWK object.  Keys that are not
 * for signature verification (use other than "sig", key_ops without
 * "verify", an algorithm or curve Encore does not verify) are skipped; a
 * weak key (RSA below 2048 bits, even or tiny exponent, HS256 secret below
 * 32 bytes, EC point off the curve), a malformed key or a duplicate kid
 * fails the whole load.  On failure returns NULL and writes a reason into
 * err.  The caller owns the result and frees it with encore_jwks_free().
 */
encore_jwks_t *encore_jwks_parse(const char *text, size_t len, char *err,
    size_t errlen);

/* Read a file (configuration time only) and parse it as above. */
encore_jwks_t *encore_jwks_load_file(const char *path, char *err,
    size_t errlen);

void encore_jwks_free(encore_jwks_t *jwks);

/*
 * The key a token must be verified with: with a kid, only the key of that
 * kid (no fallback to others); without a kid, the only key for alg, if
 * there is exactly one.  NULL when there is none or its algorithm differs.
 */
const encore_jwk_t *encore_jwks_find(const encore_jwks_t *jwks,
    const char *kid, size_t kid_len, unsigned alg);


#endif /* ENCORE_JWKS_H */
