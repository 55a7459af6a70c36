/*
 * app.c — the auth worker's configuration keys, its shared state and the
 * response helpers its handlers have in common.
 *
 * The app is built once in init (main thread) and then only read by the
 * HTTP threads, so it needs no locking: the keyring in particular is never
 * swapped at run time (rotation takes effect at restart, see keys.c).
 */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/rand.h>

#include "auth.h"
#include "sql.h"
#include "log.h"


const enc_conf_key_t  auth_conf_keys[] = {
    { "auth.keys_dir", ENC_CONF_STR, "var/auth/keys", 0, 0, 0,
      "directory of the private signing keys (created 0700, files 0600)" },
    { "auth.jwks_path", ENC_CONF_STR, "var/auth/jwks.json", 0, 0, 0,
      "public JWKS written at start and on rotation, read by the edge" },
    { "auth.issuer", ENC_CONF_STR, "encore", 0, 0, 0,
      "iss claim of access tokens" },
    { "auth.audience", ENC_CONF_STR, "encore-api", 0, 0, 0,
      "aud claim of access tokens" },
    { "auth.access_ttl", ENC_CONF_INT, "900", 60, 86400, 0,
      "access token lifetime in seconds (also the access cookie's Max-Age)" },
    { "auth.refresh_ttl", ENC_CONF_INT, "2592000", 300, 31536000, 0,
      "refresh token lifetime in seconds (30 days)" },
    { "auth.argon2_memory_kib", ENC_CONF_INT, "19456", 19456, 4194304, 0,
      "Argon2id memory cost in KiB (OWASP minimum 19456)" },
    { "auth.argon2_iterations", ENC_CONF_INT, "2", 2, 64, 0,
      "Argon2id time cost (OWASP minimum 2)" },
    { "auth.argon2_parallelism", ENC_CONF_INT, "1", 1, 16, 0,
      "Argon2id lanes (OWASP minimum 1)" },
    { "auth.cookie_secure", ENC_CONF_BOOL, "false", 0, 0, 0,
      "always mark cookies Secure (otherwise only when "
      "X-Forwarded-Proto is https)" },
    { "auth.verify_hs256_key_file", ENC_CONF_STR, "", 0, 0, 0,
      "optional HS256 secret (raw bytes, at least 32) that GET "
      "/internal/verify also accepts; empty: ES256 only" },
    { "auth.admin_email", ENC_CONF_STR, "admin@encore.local", 0, 0, 0,
      "email of the account bootstrap-admin creates" },
    { NULL, 0, NULL, 0, 0, 0, NULL }
};


void
auth_argon2_from_config(const enc_config_t *c, auth_argon2_params_t *p)
{
    p->m_kib = (uint32_t) enc_config_int(c, "auth.argon2_memory_kib");
    p->t_cost = (uint32_t) enc_config_int(c, "auth.argon2_iterations");
    p->parallelism = (uint32_t) enc_config_int(c, "auth.argon2_parallelism");
}


int
auth_app_new(const enc_config_t *c, auth_app_t **out)
{
    char           err[512];
    char           pw[AUTH_REFRESH_TOKEN_LEN + 1];
    auth_app_t    *app;
    const char    *jwks;

    app = calloc(1, sizeof(*app));
    if (app == NULL) {
        enc_log_error("out of memory");
        return -1;
    }

    app->conf = c;
    app->issuer = enc_config_str(c, "auth.issuer");
    app->audience = enc_config_str(c, "auth.audience");
    app->access_ttl = enc_config_int(c, "auth.access_ttl");
    app->refresh_ttl = enc_config_int(c, "auth.refresh_ttl");
    app->cookie_secure = enc_config_bool(c, "auth.cookie_secure");
    auth_argon2_from_config(c, &app->argon2);

    if (auth_keys_load(enc_config_str(c, "auth.keys_dir"), 1, &app->keys,
                       err, sizeof(err)) != 0)
    {
        enc_log_error("signing keys: %s", err);
        goto failed;
    }

    jwks = enc_config_str(c, "auth.jwks_path");
    if (auth_jwks_write(jwks, app->keys, err, sizeof(err)) != 0) {
        enc_log_error("jwks: %s", err);
        goto failed;
    }

    /* Unknown logins are verified against this hash of a random password,
       made with the live parameters, so they cost what a real verify
       costs and the answer time does not reveal whether the user exists. */
    if (auth_refresh_token_new(pw, sizeof(pw)) != 0
        || auth_password_hash(&app->argon2, pw, strlen(pw), app->dummy_hash,
                              sizeof(app->dummy_hash)) != 0)
    {
        OPENSSL_cleanse(pw, sizeof(pw));
        enc_log_error("cannot prepare the dummy password hash");
        goto failed;
    }
    OPENSSL_cleanse(pw, sizeof(pw));

    enc_log_info("signing with kid %s; %zu key(s) published in %s",
                 app->keys->keys[0].kid, app->keys->n, jwks);

    *out = app;
    return 0;

failed:

    auth_app_free(app);
    return -1;
}


void
auth_app_free(auth_app_t *app)
{
    if (app == NULL) {
        return;
    }

    auth_keyring_free(app->keys);
    free(app);
}


void
auth_resp_unauthorized(enc_resp_t *w, const char *detail)
{
    enc_resp_header(w, "WWW-Authenticate", "Bearer");
    enc_resp_problem(w, 401, "Unauthorized", detail);
}


const char *
auth_require_user(enc_req_t *r, enc_resp_t *w)
{
    const enc_caller_t  *c = enc_req_caller(r);

    /* the runtime validated the identity (a UUID, a known role) and the
       route's flags; this only answers for a route that forgot them */
    if (c->id == NULL) {
        auth_resp_unauthorized(w, "authentication required");
        return NULL;
    }

    return c->id;
}


int
auth_load_caller(enc_pg_t *pg, enc_resp_t *w, const char *id,
    auth_user_t *u)
{
    int  found;

    found = auth_user_by_id(pg, id, u);
    if (found < 0) {
        enc_kit_db_error(w, pg);
        return 0;
    }

    /* a valid token of a deleted account: the identity is gone */
    if (found == 0) {
        auth_resp_unauthorized(w, "the account no longer exists");
        return 0;
    }

    /* a token issued before the account was disabled: as for refresh */
    if (u->disabled) {
        auth_user_clear(u);
        auth_resp_unauthorized(w, "this account is disabled");
        return 0;
    }

    return 1;
}


int
auth_caller_is_admin(enc_pg_t *pg, enc_resp_t *w, const char *id)
{
    int          admin;
    PGresult    *res;
    const char  *params[1];

    params[0] = id;
    res = enc_pg_exec(pg, AUTH_SQL_ADMIN_CALLER, 1, params);
    if (res == NULL || PQresultStatus(res) != PGRES_TUPLES_OK) {
        PQclear(res);
        enc_kit_db_error(w, pg);
        return 0;
    }
    admin = PQntuples(res) == 1;
    PQclear(res);

    if (!admin) {
        enc_resp_problem(w, 403, "Forbidden",
                         "the caller is no longer an enabled admin");
    }

    return admin;
}


const char *
auth_require_role(enc_req_t *r, enc_resp_t *w, enc_role_t min)
{
    if (auth_require_user(r, w) == NULL) {
        return NULL;
    }

    if (!enc_caller_is(enc_req_caller(r), min)) {
        enc_resp_problem(w, 403, "Forbidden", "this needs a higher role");
        return NULL;
    }

    return enc_req_caller(r)->id;
}


int
auth_cookies_secure(const auth_app_t *app, enc_req_t *r)
{
    return app->cookie_secure
           || auth_forwarded_https(enc_req_header(r, "X-Forwarded-Proto"));
}
