/*
 * tokens.c — refresh tokens: 256 random bits, handed out base64url,
 * stored as SHA-256, rotated on every use.
 *
 * Rotation with reuse detection (OAuth 2.0 Security BCP §4.14.2): tokens
 * descending from one login share a family id.  Presenting a token marks
 * it used and yields its child; presenting an already used token means two
 * parties hold it, and since we cannot tell the thief from the owner the
 * whole family is revoked — both must log in again.
 *
 * The token row is locked (SELECT ... FOR UPDATE) for the rotation, so two
 * concurrent refreshes with the same token serialise and the second one is
 * seen as reuse, which is exactly what it is.  Before it, the user's row is
 * locked, as by every transaction that creates or revokes tokens (login,
 * logout, password change, disabling, deletion): a revocation then waits
 * for a rotation in progress and sees the token it minted.
 */

#include <stdio.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>

#include "auth.h"
#include "log.h"
#include "sql.h"


int
auth_refresh_token_new(char *out, size_t cap)
{
    int            rc;
    unsigned char  raw[AUTH_REFRESH_BYTES];

    if (RAND_bytes(raw, sizeof(raw)) != 1) {
        return -1;
    }

    rc = enc_b64url_encode(raw, sizeof(raw), out, cap);
    OPENSSL_cleanse(raw, sizeof(raw));
    return rc;
}


int
auth_refresh_token_wellformed(const char *s)
{
    size_t         n;
    unsigned char  raw[AUTH_REFRESH_BYTES];

    if (s == NULL || strlen(s) != AUTH_REFRESH_TOKEN_LEN) {
        return 0;
    }

    return enc_b64url_decode(s, AUTH_REFRESH_TOKEN_LEN, raw, sizeof(raw), &n)
           == 0 && n == AUTH_REFRESH_BYTES;
}


int
auth_refresh_token_hash(const char *token, char *out, size_t cap)
{
    static const char  hex[] = "0123456789abcdef";

    size_t             i;
    unsigned int       len;
    unsigned char      md[EVP_MAX_MD_SIZE];

    if (cap < AUTH_SHA256_HEX_LEN + 1
        || EVP_Digest(token, strlen(token), md, &len, EVP_sha256(), NULL)
           != 1
        || len != 32)
    {
        return -1;
    }

    for (i = 0; i < len; i++) {
        out[2 * i] = hex[md[i] >> 4];
        out[2 * i + 1] = hex[md[i] & 0xf];
    }
    out[2 * len] = '\0';

    return 0;
}


static int
res_ok(PGresult *res, ExecStatusType want)
{
    return res != NULL && PQresultStatus(res) == want;
}


/* Locks, in the caller's transaction, the row of the user whose token has
   this hash (none if no token has it), as every token-changing transaction
   does first (sql.c).  -1 on a database error. */
static int
lock_token_user(enc_pg_t *pg, const char *hash)
{
    int          ok;
    PGresult    *res;
    const char  *params[1];

    params[0] = hash;
    res = enc_pg_exec(pg, AUTH_SQL_USER_LOCK_BY_TOKEN, 1, params);
    ok = res_ok(res, PGRES_TUPLES_OK);
    PQclear(res);
    return ok ? 0 : -1;
}


int
auth_tokens_issue(enc_pg_t *pg, const char *user_id, const char *family,
    const char *parent, long ttl, char *token, size_t cap, char *family_out)
{
    int          ok;
    char         hash[AUTH_SHA256_HEX_LEN + 1], ttl_s[24];
    PGresult    *res;
    const char  *params[5];

    if (auth_refresh_token_new(token, cap) != 0
        || auth_refresh_token_hash(token, hash, sizeof(hash)) != 0)
    {
        return -1;
    }

    snprintf(ttl_s, sizeof(ttl_s), "%ld", ttl);

    params[0] = user_id;
    params[1] = family;
    params[2] = parent;
    params[3] = hash;
    params[4] = ttl_s;

    res = enc_pg_exec(pg, AUTH_SQL_TOKEN_INSERT, 5, params);
    ok = res_ok(res, PGRES_TUPLES_OK) && PQntuples(res) == 1
         && strlen(PQgetvalue(res, 0, 0)) == AUTH_UUID_LEN;
    if (!ok && res != NULL) {
        enc_log_error("refresh token insert failed: %s",
                      enc_pg_sqlstate(res));
    }
    if (ok && family_out != NULL) {
        memcpy(family_out, PQgetvalue(res, 0, 0), AUTH_UUID_LEN + 1);
    }
    PQclear(res);

    if (!ok) {
        OPENSSL_cleanse(token, cap);
        return -1;
    }

    return 0;
}


auth_rotate_rc_t
auth_tokens_rotate(enc_pg_t *pg, const char *token, long ttl, auth_user_t *u,
    char *new_token, size_t cap, char sid[AUTH_UUID_LEN + 1])
{
    int               found;
    char              hash[AUTH_SHA256_HEX_LEN + 1];
    char              id[AUTH_UUID_LEN + 1], family[AUTH_UUID_LEN + 1];
    char              user_id[AUTH_UUID_LEN + 1];
    PGresult         *res;
    const char       *params[1];
    auth_rotate_rc_t  rc;

    memset(u, 0, sizeof(*u));

    /* a string of the wrong shape cannot be one of ours: no query */
    if (!auth_refresh_token_wellformed(token)) {
        return AUTH_ROTATE_INVALID;
    }

    if (auth_refresh_token_hash(token, hash, sizeof(hash)) != 0) {
        return AUTH_ROTATE_ERROR;
    }

    if (enc_pg_begin(pg) != 0) {
        return AUTH_ROTATE_ERROR;
    }

    rc = AUTH_ROTATE_ERROR;
    params[0] = hash;

    if (lock_token_user(pg, hash) != 0) {
        goto failed;
    }

    res = enc_pg_exec(pg, AUTH_SQL_TOKEN_LOCK, 1, params);
    if (!res_ok(res, PGRES_TUPLES_OK)) {
        PQclear(res);
        goto failed;
    }

    if (PQntuples(res) == 0) {
        PQclear(res);
        rc = AUTH_ROTATE_INVALID;
        goto failed;
    }

    snprintf(id, sizeof(id), "%s", PQgetvalue(res, 0, 0));
    snprintf(family, sizeof(family), "%s", PQgetvalue(res, 0, 1));
    snprintf(user_id, sizeof(user_id), "%s", PQgetvalue(res, 0, 2));

    if (PQgetvalue(res, 0, 3)[0] == 't' && PQgetvalue(res, 0, 4)[0] == 'f') {
        PQclear(res);

        params[0] = family;
        res = enc_pg_exec(pg, AUTH_SQL_TOKEN_REVOKE_FAMILY, 1, params);
        if (!res_ok(res, PGRES_COMMAND_OK)) {
            PQclear(res);
            goto failed;
        }

        /* the family's access tokens go with it, once: a family already
           revoked (a second replay) revokes nothing more */
        if (strcmp(PQcmdTuples(res), "0") != 0
            && auth_revoke_session(pg, user_id, family,
                                   AUTH_REVOKE_REFRESH_REUSE) != 0)
        {
            PQclear(res);
            goto failed;
        }
        PQclear(res);

        if (enc_pg_commit(pg) != 0) {
            return AUTH_ROTATE_ERROR;
        }

        /* the family id is an internal handle, not a credential */
        enc_log_warn("refresh token reuse detected: family %s of user %s "
                     "revoked", family, user_id);
        return AUTH_ROTATE_REUSED;
    }

    if (PQgetvalue(res, 0, 3)[0] == 't' || PQgetvalue(res, 0, 4)[0] == 't'
        || PQgetvalue(res, 0, 5)[0] == 't')
    {
        PQclear(res);
        rc = AUTH_ROTATE_INVALID;
        goto failed;
    }
    PQclear(res);

    found = auth_user_by_id(pg, user_id, u);
    if (found != 1) {
        rc = found == 0 ? AUTH_ROTATE_INVALID : AUTH_ROTATE_ERROR;
        goto failed;
    }

    if (u->disabled) {
        rc = AUTH_ROTATE_DISABLED;
        goto failed;
    }

    params[0] = id;
    res = enc_pg_exec(pg, AUTH_SQL_TOKEN_MARK_USED, 1, params);
    if (!res_ok(res, PGRES_COMMAND_OK)) {
        PQclear(res);
        goto failed;
    }
    PQclear(res);

    if (auth_tokens_issue(pg, user_id, family, id, ttl, new_token, cap,
                          NULL) != 0)
    {
        goto failed;
    }
    memcpy(sid, family, AUTH_UUID_LEN + 1);

    if (enc_pg_commit(pg) != 0) {
        OPENSSL_cleanse(new_token, cap);
        auth_user_clear(u);
        return AUTH_ROTATE_ERROR;
    }

    return AUTH_ROTATE_OK;

failed:

    enc_pg_rollback(pg);
    auth_user_clear(u);
    return rc;
}


int
auth_tokens_revoke(enc_pg_t *pg, const char *token)
{
    int          ok;
    char         hash[AUTH_SHA256_HEX_LEN + 1];
    PGresult    *res;
    const char  *params[1];

    if (!auth_refresh_token_wellformed(token)) {
        return 0;
    }

    if (auth_refresh_token_hash(token, hash, sizeof(hash)) != 0) {
        return -1;
    }

    if (enc_pg_begin(pg) != 0) {
        return -1;
    }

    params[0] = hash;
    ok = lock_token_user(pg, hash) == 0;

    if (ok) {
        res = enc_pg_exec(pg, AUTH_SQL_TOKEN_REVOKE_BY_HASH, 1, params);
        ok = res_ok(res, PGRES_TUPLES_OK);

        /* a live family: its access tokens end with it (one row: a
           family has one owner) */
        if (ok && PQntuples(res) == 1) {
            ok = auth_revoke_session(pg, PQgetvalue(res, 0, 1),
                                     PQgetvalue(res, 0, 0),
                                     AUTH_REVOKE_LOGOUT) == 0;
        }
        PQclear(res);
    }

    if (!ok) {
        enc_pg_rollback(pg);
        return -1;
    }

    return enc_pg_commit(pg) == 0 ? 0 : -1;
}


int
auth_tokens_revoke_user(enc_pg_t *pg, const char *user_id)
{
    int          ok;
    PGresult    *res;
    const char  *params[1];

    params[0] = user_id;
    res = enc_pg_exec(pg, AUTH_SQL_TOKEN_REVOKE_USER, 1, params);
    ok = res_ok(res, PGRES_COMMAND_OK);
    PQclear(res);

    return ok ? 0 : -1;
}


void
auth_tokens_purge_user(enc_pg_t *pg, const char *user_id)
{
    PGresult    *res;
    const char  *params[1];

    params[0] = user_id;
    res = enc_pg_exec(pg, AUTH_SQL_TOKEN_PURGE_USER, 1, params);
    if (!res_ok(res, PGRES_COMMAND_OK)) {
        enc_log_warn("purging expired refresh tokens failed");
    }
    PQclear(res);
}
