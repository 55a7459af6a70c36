/*
 * verify.c — GET /internal/verify, the access-token check nginx's stock
 * auth_request module can call (tests/bench/jwt compares it with the jwt
 * module at the edge).  It is internal: the edge never routes a public path
 * to it; a deployment that wants it reaches it through an nginx location
 * marked `internal`.
 *
 * The verdict is the edge's, in a smaller form: a compact JWS of exactly
 * three strict base64url segments; a header that is a JSON object without
 * duplicate members, "alg" ES256 or HS256 (HS256 only when a secret is
 * configured), no "crit", a "kid" that names exactly one key (without a kid
 * only the single key of that algorithm); ES256 a 64-byte r || s; HS256 a
 * full 32-byte tag compared in constant time; then the claims: "exp"
 * required, "nbf" when present, both with AUTH_VERIFY_LEEWAY, "iss" and
 * "aud" equal to what this worker issues.
 *
 * OpenSSL 3.0 pays a provider look-up on every fetch, so every key's
 * context is prepared once in auth_verify_init (main thread, before HTTP
 * starts) and only copied per request.  That state is file-static, written
 * once there and read-only afterwards, like auth_app_t.
 */

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/ecdsa.h>

#include "log.h"
#include "verify.h"


#define VERIFY_KEYS_MAX    64
#define VERIFY_HDR_MAX     1024        /* decoded protected header */
#define VERIFY_HS_MAX      512         /* HS256 secret file */

#define ALG_ES256          1
#define ALG_HS256          2


typedef struct {
    const char   *kid;                 /* borrowed from the keyring */
    EVP_MD_CTX   *tmpl;                /* DigestVerifyInit done; copied */
} verify_es_key_t;

typedef struct {
    verify_es_key_t   es[VERIFY_KEYS_MAX];
    size_t            nes;
    EVP_MD           *sha256;
    EVP_MAC          *hmac;
    EVP_MAC_CTX      *hs_tmpl;         /* key and digest set; dup'd; or NULL */
    char              hs_kid[AUTH_KID_LEN + 1];
    const char       *issuer;          /* borrowed from the config */
    const char       *audience;
} verify_state_t;


static verify_state_t  vs;


/* ---- start-up ------------------------------------------------------------ */

/* Reads the whole secret file into buf; returns its length or -1. */
static ssize_t
read_secret(const char *path, unsigned char *buf, size_t cap)
{
    int          fd;
    ssize_t      n, total;
    struct stat  st;

    fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        enc_log_error("verify: open \"%s\": %s", path, strerror(errno));
        return -1;
    }

    if (fstat(fd, &st) == 0 && (st.st_mode & 0077) != 0) {
        enc_log_warn("verify: HS256 secret \"%s\" is readable by others "
                     "(mode %03o)", path, (unsigned) (st.st_mode & 0777));
    }

    total = 0;
    for ( ;; ) {
        n = read(fd, buf + total, cap - (size_t) total);
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n <= 0) {
            break;
        }
        total += n;
        if ((size_t) total == cap) {
            break;
        }
    }
    close(fd);

    if (n < 0) {
        enc_log_error("verify: read \"%s\": %s", path, strerror(errno));
        return -1;
    }

    if ((size_t) total == cap) {
        enc_log_error("verify: HS256 secret \"%s\" longer than %d bytes",
                      path, VERIFY_HS_MAX - 1);
        return -1;
    }

    return total;
}


static int
verify_hs256_init(const char *path)
{
    char           k64[2 * VERIFY_HS_MAX];
    json_t        *jwk;
    ssize_t        n;
    OSSL_PARAM     params[2];
    unsigned char  secret[VERIFY_HS_MAX];
    int            rc;

    rc = -1;
    jwk = NULL;

    n = read_secret(path, secret, sizeof(secret));
    if (n < 0) {
        return -1;
    }

    /* RFC 7518 3.2: at least the hash output */
    if (n < 32) {
        enc_log_error("verify: HS256 secret \"%s\" is %zd bytes, below 32",
                      path, n);
        goto failed;
    }

    if (enc_b64url_encode(secret, (size_t) n, k64, sizeof(k64)) != 0) {
        goto failed;
    }

    jwk = json_pack("{s:s, s:s}", "kty", "oct", "k", k64);
    if (jwk == NULL
        || auth_jwk_thumbprint(jwk, vs.hs_kid, sizeof(vs.hs_kid)) != 0)
    {
        enc_log_error("verify: cannot compute the HS256 key's kid");
        goto failed;
    }

    vs.hmac = EVP_MAC_fetch(NULL, "HMAC", NULL);
    if (vs.hmac == NULL) {
        goto failed;
    }

    vs.hs_tmpl = EVP_MAC_CTX_new(vs.hmac);
    if (vs.hs_tmpl == NULL) {
        goto failed;
    }

    params[0] = OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST,
                                                 (char *) "SHA256", 0);
    params[1] = OSSL_PARAM_construct_end();

    if (EVP_MAC_init(vs.hs_tmpl, secret, (size_t) n, params) != 1) {
        enc_log_error("verify: HMAC-SHA256 init failed");
        goto failed;
    }

    rc = 0;

failed:

    OPENSSL_cleanse(secret, sizeof(secret));
    OPENSSL_cleanse(k64, sizeof(k64));
    json_decref(jwk);
    return rc;
}


int
auth_verify_init(const enc_config_t *c, const auth_app_t *app)
{
    size_t       i;
    EVP_MD_CTX  *md;
    const char  *hs;

    memset(&vs, 0, sizeof(vs));
    vs.issuer = app->issuer;
    vs.audience = app->audience;

    vs.sha256 = EVP_MD_fetch(NULL, "SHA256", NULL);
    if (vs.sha256 == NULL) {
        enc_log_error("verify: cannot fetch SHA256");
        goto failed;
    }

    for (i = 0; i < app->keys->n && i < VERIFY_KEYS_MAX; i++) {
        md = EVP_MD_CTX_new();
        if (md == NULL
            || EVP_DigestVerifyInit_ex(md, NULL, "SHA256", NULL, NULL,
                                       app->keys->keys[i].pkey, NULL) != 1)
        {
            EVP_MD_CTX_free(md);
            enc_log_error("verify: cannot prepare key %s",
                          app->keys->keys[i].kid);
            goto failed;
        }

        vs.es[i].kid = app->keys->keys[i].kid;
        vs.es[i].tmpl = md;
        vs.nes++;
    }

    hs = enc_config_str(c, "auth.verify_hs256_key_file");
    if (hs != NULL && hs[0] != '\0') {
        if (verify_hs256_init(hs) != 0) {
            goto failed;
        }
        enc_log_info("verify: HS256 accepted with kid %s", vs.hs_kid);
    }

    return 0;

failed:

    auth_verify_fini();
    return -1;
}


void
auth_verify_fini(void)
{
    size_t  i;

    for (i = 0; i < vs.nes; i++) {
        EVP_MD_CTX_free(vs.es[i].tmpl);
    }

    EVP_MAC_CTX_free(vs.hs_tmpl);
    EVP_MAC_free(vs.hmac);
    EVP_MD_free(vs.sha256);
    memset(&vs, 0, sizeof(vs));
}


/* ---- the check ------------------------------------------------------------ */

static int
verify_es256(const verify_es_key_t *k, const char *in, size_t inlen,
    const unsigned char *sig, size_t siglen)
{
    int            ok, derlen;
    BIGNUM        *r, *s;
    ECDSA_SIG     *es;
    EVP_MD_CTX    *md;
    unsigned char  der[80], *p;

    if (siglen != 64) {
        return -1;
    }

    ok = 0;
    md = NULL;

    es = ECDSA_SIG_new();
    r = BN_bin2bn(sig, 32, NULL);
    s = BN_bin2bn(sig + 32, 32, NULL);
    if (es == NULL || r == NULL || s == NULL) {
        BN_free(r);
        BN_free(s);
        goto done;
    }

    /* ECDSA_SIG_set0 takes r and s */
    if (ECDSA_SIG_set0(es, r, s) != 1) {
        BN_free(r);
        BN_free(s);
        goto done;
    }

    /* r, s = 0 or >= n are refused by OpenSSL's verify itself */
    p = der;
    derlen = i2d_ECDSA_SIG(es, &p);
    if (derlen <= 0 || (size_t) derlen > sizeof(der)) {
        goto done;
    }

    md = EVP_MD_CTX_new();
    if (md == NULL || EVP_MD_CTX_copy_ex(md, k->tmpl) != 1) {
        goto done;
    }

    ok = EVP_DigestVerify(md, der, (size_t) derlen,
                          (const unsigned char *) in, inlen) == 1;

done:

    EVP_MD_CTX_free(md);
    ECDSA_SIG_free(es);
    return ok ? 0 : -1;
}


static int
verify_hs256(const char *in, size_t inlen, const unsigned char *sig,
    size_t siglen)
{
    int            ok;
    size_t         n;
    EVP_MAC_CTX   *mac;
    unsigned char  tag[EVP_MAX_MD_SIZE];

    if (siglen != 32) {
        return -1;
    }

    mac = EVP_MAC_CTX_dup(vs.hs_tmpl);
    if (mac == NULL) {
        return -1;
    }

    ok = EVP_MAC_update(mac, (const unsigned char *) in, inlen) == 1
         && EVP_MAC_final(mac, tag, &n, sizeof(tag)) == 1
         && n == 32
         && CRYPTO_memcmp(tag, sig, 32) == 0;

    EVP_MAC_CTX_free(mac);
    return ok ? 0 : -1;
}


/* Decodes the b64url segment s[0..n) into a malloc'd, NUL-terminated
   buffer (the caller frees it); NULL if it is not strict base64url. */
static unsigned char *
segment_decode(const char *s, size_t n, size_t *outlen)
{
    unsigned char  *buf;

    buf = malloc(n * 3 / 4 + 2);
    if (buf == NULL) {
        return NULL;
    }

    if (enc_b64url_decode(s, n, buf, n * 3 / 4 + 1, outlen) != 0) {
        free(buf);
        return NULL;
    }

    buf[*outlen] = '\0';
    return buf;
}


static json_t *
object_parse(const unsigned char *text, size_t len)
{
    json_t        *o;
    json_error_t   err;

    o = json_loadb((const char *) text, len, JSON_REJECT_DUPLICATES, &err);
    if (o != NULL && !json_is_object(o)) {
        json_decref(o);
        return NULL;
    }

    return o;
}


static int
claims_check(json_t *claims, long long now, const char **why)
{
    size_t   i;
    json_t  *v, *a;

    v = json_object_get(claims, "exp");
    if (!json_is_integer(v)) {
        *why = "exp missing or not an integer";
        return -1;
    }
    /* the leeway goes on now's side: exp near LLONG_MAX must not overflow */
    if (now - AUTH_VERIFY_LEEWAY >= (long long) json_integer_value(v)) {
        *why = "token expired";
        return -1;
    }

    v = json_object_get(claims, "nbf");
    if (v != NULL) {
        if (!json_is_integer(v)) {
            *why = "nbf not an integer";
            return -1;
        }
        if (now + AUTH_VERIFY_LEEWAY < (long long) json_integer_value(v)) {
            *why = "token not yet valid";
            return -1;
        }
    }

    v = json_object_get(claims, "iss");
    if (!json_is_string(v) || strcmp(json_string_value(v), vs.issuer) != 0) {
        *why = "wrong issuer";
        return -1;
    }

    v = json_object_get(claims, "aud");
    if (json_is_string(v)) {
        if (strcmp(json_string_value(v), vs.audience) == 0) {
            return 0;
        }

    } else if (json_is_array(v)) {
        json_array_foreach(v, i, a) {
            if (json_is_string(a)
                && strcmp(json_string_value(a), vs.audience) == 0)
            {
                return 0;
            }
        }
    }

    *why = "wrong audience";
    return -1;
}


int
auth_verify_token(const char *token, size_t len, long long now,
    json_t **claims, const char **why)
{
    int             alg, rc;
    size_t          i, hlen, plen, slen, n;
    json_t         *header, *v, *c;
    const char     *d1, *d2, *kid, *name;
    unsigned char  *h, *payload, sig[128];
    const verify_es_key_t  *key;

    header = NULL;
    c = NULL;
    h = NULL;
    payload = NULL;
    rc = -1;
    *why = "malformed token";

    if (len == 0 || len > AUTH_VERIFY_MAX_TOKEN) {
        *why = len ? "token too large" : "token missing";
        return -1;
    }

    d1 = memchr(token, '.', len);
    if (d1 == NULL) {
        return -1;
    }
    d2 = memchr(d1 + 1, '.', len - (size_t) (d1 + 1 - token));
    if (d2 == NULL
        || memchr(d2 + 1, '.', len - (size_t) (d2 + 1 - token)) != NULL)
    {
        return -1;
    }

    hlen = (size_t) (d1 - token);
    slen = len - (size_t) (d2 + 1 - token);

    if (hlen > VERIFY_HDR_MAX * 4 / 3 + 4 || slen > sizeof(sig) * 4 / 3) {
        return -1;
    }

    h = segment_decode(token, hlen, &n);
    if (h == NULL || (header = object_parse(h, n)) == NULL) {
        goto done;
    }

    v = json_object_get(header, "alg");
    name = json_string_value(v);
    if (name == NULL) {
        *why = "alg missing";
        goto done;
    }

    if (strcmp(name, "ES256") == 0) {
        alg = ALG_ES256;
    } else if (strcmp(name, "HS256") == 0 && vs.hs_tmpl != NULL) {
        alg = ALG_HS256;
    } else {
        *why = "alg not allowed";
        goto done;
    }

    if (json_object_get(header, "crit") != NULL) {
        *why = "crit not understood";
        goto done;
    }

    v = json_object_get(header, "kid");
    if (v != NULL && !json_is_string(v)) {
        goto done;
    }
    kid = json_string_value(v);

    if (enc_b64url_decode(d2 + 1, slen, sig, sizeof(sig), &n) != 0) {
        goto done;
    }

    *why = "invalid signature";

    if (alg == ALG_HS256) {
        if (kid != NULL && strcmp(kid, vs.hs_kid) != 0) {
            *why = "unknown kid";
            goto done;
        }
        if (verify_hs256(token, (size_t) (d2 - token), sig, n) != 0) {
            goto done;
        }

    } else {
        key = NULL;
        if (kid == NULL) {
            if (vs.nes == 1) {
                key = &vs.es[0];
            }
        } else {
            for (i = 0; i < vs.nes; i++) {
                if (strcmp(kid, vs.es[i].kid) == 0) {
                    key = &vs.es[i];
                    break;
                }
            }
        }
        if (key == NULL) {
            *why = "unknown kid";
            goto done;
        }
        if (verify_es256(key, token, (size_t) (d2 - token), sig, n) != 0) {
            goto done;
        }
    }

    /* only a signed payload is worth parsing */
    *why = "malformed claims";
    plen = (size_t) (d2 - d1 - 1);
    payload = segment_decode(d1 + 1, plen, &n);
    if (payload == NULL || (c = object_parse(payload, n)) == NULL) {
        goto done;
    }

    if (claims_check(c, now, why) != 0) {
        goto done;
    }

    *claims = c;
    c = NULL;
    rc = 0;

done:

    json_decref(c);
    json_decref(header);
    free(payload);
    free(h);
    return rc;
}


/* ---- the handler ---------------------------------------------------------- */

static void
verify_reject(enc_resp_t *w, const char *why)
{
    char  v[128];

    snprintf(v, sizeof(v), "Bearer error=\"invalid_token\", "
             "error_description=\"%s\"", why);
    enc_resp_header(w, "WWW-Authenticate", v);
    enc_resp_empty(w, 401);
}


static void
identity_header(enc_resp_t *w, json_t *claims, const char *claim,
    const char *header)
{
    const char  *s;

    /* enc_resp_header drops values with CR/LF */
    s = json_string_value(json_object_get(claims, claim));
    if (s != NULL) {
        enc_resp_header(w, header, s);
    }
}


void
auth_h_verify(enc_req_t *r, enc_resp_t *w, void *app)
{
    json_t      *claims;
    const char  *a, *why;

    a = enc_req_header(r, "Authorization");
    if (a == NULL || strncasecmp(a, "Bearer ", 7) != 0) {
        enc_resp_header(w, "WWW-Authenticate", "Bearer");
        enc_resp_empty(w, 401);
        return;
    }

    a += 7;
    while (*a == ' ') {
        a++;
    }

    if (auth_verify_token(a, strlen(a), (long long) time(NULL), &claims,
                          &why) != 0)
    {
        verify_reject(w, why);
        return;
    }

    identity_header(w, claims, "sub", "X-Encore-User-Id");
    identity_header(w, claims, "role", "X-Encore-User-Role");
    identity_header(w, claims, "name", "X-Encore-User-Name");
    json_decref(claims);

    enc_resp_empty(w, 204);
}
