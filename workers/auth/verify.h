/*
 * verify.h — GET /internal/verify: an access-token check for nginx's stock
 * auth_request, see verify.c.
 */

#ifndef ENCORE_AUTH_VERIFY_H
#define ENCORE_AUTH_VERIFY_H

#include "auth.h"


/* Clock skew allowed on exp and nbf, as the edge's encore_jwt_leeway. */
#define AUTH_VERIFY_LEEWAY     30
/* Longer Authorization values are refused before any decoding. */
#define AUTH_VERIFY_MAX_TOKEN  8192

/*
 * Prepares the verifiers once, in the main thread before HTTP starts: a
 * DigestVerify context per signing key of app's keyring (ES256, kid = the
 * key's thumbprint) and, when auth.verify_hs256_key_file names a file, an
 * HMAC-SHA256 context for the secret it holds (raw bytes, at least 32; kid
 * = the RFC 7638 thumbprint of that oct key).  Handlers then only copy
 * them.  app is borrowed and must outlive auth_verify_fini().
 */
int  auth_verify_init(const enc_config_t *c, const auth_app_t *app);
void auth_verify_fini(void);

/*
 * The verdict on a compact JWS: 0 if its signature verifies with one of
 * the prepared keys (alg ES256 or HS256, kid choosing the key) and its
 * claims hold (exp required, nbf, iss and aud as the worker issues them),
 * else -1 with *why set to a static reason.  On success *claims receives
 * the claims object (a new reference the caller json_decrefs).
 */
int  auth_verify_token(const char *token, size_t len, long long now,
                       json_t **claims, const char **why);

/*
 * GET /internal/verify: 204 with X-Encore-User-Id/-Role/-Name when the
 * request's "Authorization: Bearer" token verifies, else 401 with
 * WWW-Authenticate.  Internal: nginx reaches it through an `internal`
 * location only, never through a public route.
 */
void auth_h_verify(enc_req_t *r, enc_resp_t *w, void *app);

#endif /* ENCORE_AUTH_VERIFY_H */
