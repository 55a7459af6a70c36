/*
 * session.c — register, login, refresh, logout, me, and the JWKS.
 *
 * Handlers run on libmicrohttpd's pool threads (see main.c); they share
 * only the read-only auth_app_t.  Passwords and tokens are never logged,
 * and buffers that held them are cleansed before they are released.
 *
 * Argon2 runs outside any transaction: a hash costs tens of milliseconds
 * and must not hold row locks or a connection in a transaction meanwhile.
 */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/crypto.h>

#include "auth.h"
#include "log.h"
#include "sql.h"


#define LOGIN_FAILED  "invalid login or password"
#define COOKIE_MAX    1024


static void
session_cookies(auth_app_t *app, enc_req_t *r, enc_resp_t *w,
    const char *access, const char *refresh)
{
    int   secure;
    char  buf[COOKIE_MAX];

    secure = auth_cookies_secure(app, r);

    if (auth_cookie_build(buf, sizeof(buf), AUTH_COOKIE_ACCESS, access,
                          AUTH_COOKIE_ACCESS_PATH, app->access_ttl, secure)
        == 0)
    {
        enc_resp_header(w, "Set-Cookie", buf);
    }

    if (auth_cookie_build(buf, sizeof(buf), AUTH_COOKIE_REFRESH, refresh,
                          AUTH_COOKIE_REFRESH_PATH, app->refresh_ttl, secure)
        == 0)
    {
        enc_resp_header(w, "Set-Cookie", buf);
    }

    OPENSSL_cleanse(buf, sizeof(buf));
}


/* clears both session cookies (logout, and refusals that end a session) */
static void
session_clear_cookies(auth_app_t *app, enc_req_t *r, enc_resp_t *w)
{
    auth_cookies_clear_session(w, auth_cookies_secure(app, r));
}


/*
 * Answers 200 with a fresh access token of session sid (the refresh
 * family), the given refresh token and the user, and sets both cookies.
 * refresh is borrowed.  iat is never before the user's tokens_not_before,
 * so a token issued right after a revocation is not refused by it.
 */
static void
session_answer(auth_app_t *app, enc_req_t *r, enc_resp_t *w,
    const auth_user_t *u, const char *refresh, const char *sid)
{
    char           *jwt;
    char            jti[AUTH_UUID_LEN + 1];
    time_t          now;
    json_t         *body, *user;
    auth_claims_t   c;

    if (enc_uuid_v4(jti, sizeof(jti)) != 0) {
        enc_kit_internal(w);
        return;
    }

    now = time(NULL);

    c.iss = app->issuer;
    c.aud = app->audience;
    c.sub = u->id;
    c.role = u->role;
    c.name = u->username;
    c.jti = jti;
    c.sid = sid;
    c.iat = auth_token_iat((long long) now, u->not_before);
    c.exp = (long long) now + app->access_ttl;

    jwt = auth_jwt_sign(&app->keys->keys[0], &c);
    if (jwt == NULL) {
        enc_log_error("signing an access token failed");
        enc_kit_internal(w);
        return;
    }

    body = NULL;
    user = auth_user_json(u, AUTH_USER_OWNER);
    if (user != NULL) {
        body = json_pack("{s:s, s:s, s:I, s:s, s:O}",
                         "access_token", jwt, "token_type", "Bearer",
                         "expires_in", (json_int_t) app->access_ttl,
                         "refresh_token", refresh, "user", user);
        json_decref(user);
    }

    if (body == NULL) {
        OPENSSL_cleanse(jwt, strlen(jwt));
        free(jwt);
        enc_kit_internal(w);
        return;
    }

    session_cookies(app, r, w, jwt, refresh);

    /* RFC 6749 §5.1: responses carrying tokens must not be cached */
    enc_resp_header(w, "Cache-Control", "no-store");
    enc_resp_header(w, "Pragma", "no-cache");
    enc_resp_json(w, 200, body);

    OPENSSL_cleanse(jwt, strlen(jwt));
    free(jwt);
}


void
auth_h_register(enc_req_t *r, enc_resp_t *w, void *data)
{
    char                 hash[AUTH_ARGON2_ENCODED_MAX];
    char                 location[64];
    json_t              *body;
    PGresult            *res;
    enc_pg_t            *pg;
    auth_app_t          *app;
    auth_user_t          u;
    const char          *params[3];
    enc_validation_t     v;
    auth_register_in_t   in;

    app = data;
    enc_validation_init(&v);

    if (auth_validate_register(enc_req_json(r), &in, &v) != 0) {
        enc_resp_validation(w, &v);
        return;
    }

    pg = enc_kit_db(w);
    if (pg == NULL) {
        return;
    }

    if (auth_password_hash(&app->argon2, in.password, in.password_len, hash,
                           sizeof(hash)) != 0)
    {
        enc_log_error("password hashing failed");
        enc_kit_internal(w);
        return;
    }

    if (enc_pg_begin(pg) != 0) {
        enc_kit_db_error(w, pg);
        return;
    }

    params[0] = in.username;
    params[1] = in.email;
    params[2] = hash;

    res = enc_pg_exec(pg, AUTH_SQL_USER_INSERT, 3, params);
    OPENSSL_cleanse(hash, sizeof(hash));

    if (res == NULL) {
        goto failed;
    }

    /* a taken username or email is 409 naming the field, by the unique
       index's name (auth_user's constraints) */
    if (PQresultStatus(res) != PGRES_TUPLES_OK || PQntuples(res) != 1) {
        enc_kit_fail(w, pg, &auth_user, res, AUTH_SQL_USER_INSERT);
        PQclear(res);
        return;
    }

    auth_user_from_result(res, 0, &u);

    if (auth_user_event(pg, "encore.user.registered", &u) != 0) {
        auth_user_clear(&u);
        goto failed;
    }

    if (enc_pg_commit(pg) != 0) {
        auth_user_clear(&u);
        enc_kit_db_error(w, pg);
        return;
    }

    enc_log_info("user %s registered", u.id);

    body = auth_user_json(&u, AUTH_USER_OWNER);
    snprintf(location, sizeof(location), "/api/v1/users/%s", u.id);
    auth_user_clear(&u);

    if (body == NULL) {
        enc_kit_internal(w);
        return;
    }

    enc_resp_header(w, "Location", location);
    enc_resp_json(w, 201, body);
    return;

failed:

    enc_pg_rollback(pg);
    enc_kit_db_error(w, pg);
}


/* Replaces a hash made with weaker parameters, leaving the stored hash in
   stored (the new one, or still the old one: failure only costs another try
   at the next login). */
static void
login_rehash(auth_app_t *app, enc_pg_t *pg, const auth_user_t *u,
    const auth_login_in_t *in, char *stored, size_t cap)
{
    char         hash[AUTH_ARGON2_ENCODED_MAX];
    PGresult    *res;
    const char  *params[3];

    if (auth_password_hash(&app->argon2, in->password, in->password_len,
                           hash, sizeof(hash)) != 0)
    {
        return;
    }

    params[0] = u->id;
    params[1] = hash;
    params[2] = u->password_hash;

    res = enc_pg_exec(pg, AUTH_SQL_USER_REHASH, 3, params);
    if (res == NULL || PQresultStatus(res) != PGRES_COMMAND_OK) {
        enc_log_warn("password rehash for user %s failed", u->id);

    } else if (strcmp(PQcmdTuples(res), "1") == 0 && strlen(hash) < cap) {
        strcpy(stored, hash);
    }
    PQclear(res);
    OPENSSL_cleanse(hash, sizeof(hash));
}


/*
 * Stores the refresh token of a new login, in a transaction holding the
 * user's row (sql.c): 0 done; 1 the password changed, or the account was
 * disabled, since it was verified against hash — the login must fail as
 * it would have a moment later; -1 a database error.
 */
static int
login_issue(auth_app_t *app, enc_pg_t *pg, auth_user_t *u,
    const char *hash, char *refresh, size_t cap, char *sid)
{
    int          current;
    PGresult    *res;
    const char  *params[2];

    if (enc_pg_begin(pg) != 0) {
        return -1;
    }

    params[0] = u->id;
    params[1] = hash;
    res = enc_pg_exec(pg, AUTH_SQL_USER_LOCK_SESSION, 2, params);
    if (res == NULL || PQresultStatus(res) != PGRES_TUPLES_OK) {
        PQclear(res);
        enc_pg_rollback(pg);
        return -1;
    }
    current = PQntuples(res) == 1 && PQgetvalue(res, 0, 0)[0] == 'f';
    if (current) {
        /* as it is now, the row locked: a revocation committed since the
           user was read must not refuse the token issued next */
        u->not_before = strtoll(PQgetvalue(res, 0, 1), NULL, 10);
    }
    PQclear(res);

    if (!current) {
        enc_pg_rollback(pg);
        return 1;
    }

    auth_tokens_purge_user(pg, u->id);

    if (auth_tokens_issue(pg, u->id, NULL, NULL, app->refresh_ttl, refresh,
                          cap, sid) != 0)
    {
        enc_pg_rollback(pg);
        return -1;
    }

    if (enc_pg_commit(pg) != 0) {
        OPENSSL_cleanse(refresh, cap);
        return -1;
    }

    return 0;
}


void
auth_h_login(enc_req_t *r, enc_resp_t *w, void *data)
{
    int               found, ok, rc;
    char              refresh[AUTH_REFRESH_TOKEN_LEN + 1];
    char              sid[AUTH_UUID_LEN + 1];
    char              stored[AUTH_ARGON2_ENCODED_MAX];
    enc_pg_t         *pg;
    auth_app_t       *app;
    auth_user_t       u;
    auth_login_in_t   in;
    enc_validation_t  v;

    app = data;
    enc_validation_init(&v);

    if (auth_validate_login(enc_req_json(r), &in, &v) != 0) {
        enc_resp_validation(w, &v);
        return;
    }

    pg = enc_kit_db(w);
    if (pg == NULL) {
        return;
    }

    found = auth_user_by_login(pg, in.login, &u);
    if (found < 0) {
        enc_kit_db_error(w, pg);
        return;
    }

    if (found == 0) {
        /* same work, same answer as a wrong password */
        (void) auth_password_verify(app->dummy_hash, in.password,
                                    in.password_len);
        auth_resp_unauthorized(w, LOGIN_FAILED);
        return;
    }

    ok = auth_password_verify(u.password_hash, in.password, in.password_len);
    if (ok != 1) {
        if (ok < 0) {
            enc_log_error("stored password hash of user %s is unusable",
                          u.id);
        }
        auth_user_clear(&u);
        auth_resp_unauthorized(w, LOGIN_FAILED);
        return;
    }

    /* checked after the password, so 403 tells nothing to someone who
       does not know it */
    if (u.disabled) {
        auth_user_clear(&u);
        enc_resp_problem(w, 403, "Forbidden", "this account is disabled");
        return;
    }

    /* the hash the password was verified against, as stored now */
    if (strlen(u.password_hash) >= sizeof(stored)) {
        auth_user_clear(&u);
        enc_kit_internal(w);
        return;
    }
    strcpy(stored, u.password_hash);

    if (auth_password_needs_rehash(&app->argon2, u.password_hash)) {
        login_rehash(app, pg, &u, &in, stored, sizeof(stored));
    }

    rc = login_issue(app, pg, &u, stored, refresh, sizeof(refresh), sid);
    OPENSSL_cleanse(stored, sizeof(stored));

    if (rc != 0) {
        auth_user_clear(&u);
        if (rc > 0) {
            /* changed or disabled a moment ago: as if it had been before */
            auth_resp_unauthorized(w, LOGIN_FAILED);
        } else {
            enc_kit_db_error(w, pg);
        }
        return;
    }

    enc_log_info("user %s logged in", u.id);

    session_answer(app, r, w, &u, refresh, sid);

    OPENSSL_cleanse(refresh, sizeof(refresh));
    auth_user_clear(&u);
}


/*
 * Whether the request's Origin is one of the edge's origins: the jwt
 * module decides with its configured list (encore_jwt_origins, by default
 * the server's own addresses), the one it checks its own cookie against,
 * and proxy.conf passes the verdict as X-Encore-Origin-Allowed: "1".  The
 * edge drops every X-Encore-* header a client sends, and the client's
 * Host is never compared with: Host: evil.example with Origin:
 * http://evil.example must not pass.  Without the header (a request that
 * did not come through the edge) nothing matches.
 */
static int
session_same_origin(enc_req_t *r)
{
    const char  *allowed;

    allowed = enc_req_header(r, AUTH_ORIGIN_ALLOWED_HEADER);

    return allowed != NULL && strcmp(allowed, "1") == 0;
}


/*
 * The refresh token of a request: the body's refresh_token, else the
 * cookie.  Returns 0 with *out set (possibly NULL: none given), or -1 after
 * answering 422 for a malformed body member, or 403 for a cookie sent
 * without the edge's own Origin: the cookie rides along with cross-site
 * requests, so an unsafe method it authenticates needs a same-origin
 * Origin (a token in the body needs none: another site cannot read it).
 */
static int
request_refresh_token(enc_req_t *r, enc_resp_t *w, const char **out)
{
    enc_validation_t  v;

    *out = NULL;
    enc_validation_init(&v);

    /* "" is accepted here and then treated as no token: an empty token is
       a missing credential (401), not a malformed body; null is a wrong
       type (libencore's getter would take it for absent) */
    if (json_is_null(json_object_get(enc_req_json(r), "refresh_token"))) {
        enc_validation_add(&v, "refresh_token", "must be a string");
    }

    if (enc_validation_failed(&v)
        || enc_json_get_str(enc_req_json(r), "refresh_token", 0, 0, 4096, out,
                            &v) != 0)
    {
        enc_resp_validation(w, &v);
        return -1;
    }

    if (*out == NULL || (*out)[0] == '\0') {
        *out = enc_req_cookie(r, AUTH_COOKIE_REFRESH);

        if (*out != NULL && (*out)[0] != '\0' && !session_same_origin(r)) {
            *out = NULL;
            enc_resp_problem(w, 403, "Forbidden",
                             "cookie authentication needs a same-origin "
                             "Origin");
            return -1;
        }
    }

    return 0;
}


void
auth_h_refresh(enc_req_t *r, enc_resp_t *w, void *data)
{
    char              fresh[AUTH_REFRESH_TOKEN_LEN + 1];
    char              sid[AUTH_UUID_LEN + 1];
    enc_pg_t         *pg;
    auth_app_t       *app;
    const char       *token;
    auth_user_t       u;
    auth_rotate_rc_t  rc;

    app = data;

    if (request_refresh_token(r, w, &token) != 0) {
        return;
    }

    if (token == NULL || token[0] == '\0') {
        auth_resp_unauthorized(w, "refresh token required");
        return;
    }

    pg = enc_kit_db(w);
    if (pg == NULL) {
        return;
    }

    rc = auth_tokens_rotate(pg, token, app->refresh_ttl, &u, fresh,
                            sizeof(fresh), sid);

    switch (rc) {

    case AUTH_ROTATE_OK:
        session_answer(app, r, w, &u, fresh, sid);
        OPENSSL_cleanse(fresh, sizeof(fresh));
        auth_user_clear(&u);
        return;

    case AUTH_ROTATE_ERROR:
        enc_kit_db_error(w, pg);
        return;

    default:
        /* one answer for unknown, expired, revoked, reused and disabled:
           the browser's cookies are dead either way */
        session_clear_cookies(app, r, w);
        auth_resp_unauthorized(w, "invalid refresh token");
        return;
    }
}


void
auth_h_logout(enc_req_t *r, enc_resp_t *w, void *data)
{
    enc_pg_t    *pg;
    auth_app_t  *app;
    const char  *token;

    app = data;

    if (request_refresh_token(r, w, &token) != 0) {
        return;
    }

    /* logging out without a token still clears the cookies: the client
       asked to forget its session, whatever state it is in */
    if (token != NULL && token[0] != '\0') {
        pg = enc_kit_db(w);
        if (pg == NULL) {
            return;
        }

        if (auth_tokens_revoke(pg, token) != 0) {
            enc_kit_db_error(w, pg);
            return;
        }
    }

    session_clear_cookies(app, r, w);
    enc_resp_empty(w, 204);
}


void
auth_h_me(enc_req_t *r, enc_resp_t *w, void *data)
{
    json_t       *body;
    enc_pg_t     *pg;
    const char   *id;
    auth_user_t   u;

    (void) data;

    id = auth_require_user(r, w);
    if (id == NULL) {
        return;
    }

    pg = enc_kit_db(w);
    if (pg == NULL) {
        return;
    }

    if (!auth_load_caller(pg, w, id, &u)) {
        return;
    }

    body = auth_user_json(&u, AUTH_USER_OWNER);
    auth_user_clear(&u);

    if (body == NULL) {
        enc_kit_internal(w);
        return;
    }

    enc_resp_header(w, "Cache-Control", "no-store");
    enc_resp_json(w, 200, body);
}


/*
 * Serves the JWKS file the edge reads, not the keyring in memory: after
 * `encore-auth rotate-key` the file already lists the new key while this
 * process still signs with the old one, and clients should see what the
 * edge trusts.  Falls back to the in-memory keyring if the file is gone.
 */
void
auth_h_jwks(enc_req_t *r, enc_resp_t *w, void *data)
{
    json_t        *jwks;
    auth_app_t    *app;
    json_error_t   jerr;

    (void) r;
    app = data;

    jwks = json_load_file(enc_config_str(app->conf, "auth.jwks_path"), 0,
                          &jerr);
    if (jwks == NULL || !json_is_array(json_object_get(jwks, "keys"))) {
        json_decref(jwks);
        jwks = auth_keyring_jwks(app->keys);
    }

    if (jwks == NULL) {
        enc_kit_internal(w);
        return;
    }

    enc_resp_header(w, "Cache-Control", "public, max-age=300");
    enc_resp_json(w, 200, jwks);
}
