/*
 * profile.c — /api/v1/users: public profiles, the caller's own account
 * (PATCH/DELETE /users/me) and the admin's list and edit.
 *
 * Order of checks (CONTRACT.md): the route was matched by the library,
 * then identity (401/403), then the body (422), then the database.
 */

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <openssl/crypto.h>

#include "auth.h"
#include "log.h"
#include "sql.h"


static void
resp_not_found(enc_resp_t *w)
{
    enc_resp_problem(w, 404, "Not Found", "no such user");
}


/* 422 naming the one field whose password did not verify. */
static void
resp_wrong_password(enc_resp_t *w, const char *field)
{
    enc_validation_t  v;

    enc_validation_init(&v);
    enc_validation_add(&v, field, "is incorrect");
    enc_resp_validation(w, &v);
}


/* Answers 200 with u in the given view and releases u. */
static void
resp_user(enc_resp_t *w, auth_user_t *u, auth_user_view_t view)
{
    json_t  *body;

    body = auth_user_json(u, view);
    auth_user_clear(u);

    if (body == NULL) {
        auth_resp_internal(w);
        return;
    }

    enc_resp_json(w, 200, body);
}


void
auth_h_user_get(enc_req_t *r, enc_resp_t *w, void *data)
{
    int               found;
    enc_pg_t         *pg;
    const char       *id, *caller;
    auth_user_t       u;
    auth_user_view_t  view;

    (void) data;

    id = enc_req_param(r, "id");
    if (id == NULL || !auth_uuid_valid(id)) {
        resp_not_found(w);
        return;
    }

    pg = auth_pg(w);
    if (pg == NULL) {
        return;
    }

    found = auth_user_by_id(pg, id, &u);
    if (found < 0) {
        auth_resp_db_error(w, pg);
        return;
    }

    if (found == 0) {
        resp_not_found(w);
        return;
    }

    /* identity is optional here; it only widens the view */
    caller = enc_req_user_id(r);
    view = AUTH_USER_PUBLIC;

    if (enc_role_at_least(enc_req_user_role(r), "admin") && caller != NULL) {
        view = AUTH_USER_ADMIN;
    } else if (caller != NULL && strcasecmp(caller, u.id) == 0) {
        view = AUTH_USER_OWNER;
    }

    resp_user(w, &u, view);
}


void
auth_h_me_patch(enc_req_t *r, enc_resp_t *w, void *data)
{
    int                  ok;
    char                 hash[AUTH_ARGON2_ENCODED_MAX];
    char                 old_hash[AUTH_ARGON2_ENCODED_MAX];
    PGresult            *res;
    enc_pg_t            *pg;
    auth_app_t          *app;
    const char          *id, *params[5];
    auth_user_t          u;
    enc_validation_t     v;
    auth_patch_me_in_t   in;

    app = data;

    id = auth_require_user(r, w);
    if (id == NULL) {
        return;
    }

    enc_validation_init(&v);
    if (auth_validate_patch_me(enc_req_json(r), &in, &v) != 0) {
        enc_resp_validation(w, &v);
        return;
    }

    pg = auth_pg(w);
    if (pg == NULL) {
        return;
    }

    if (!auth_load_caller(pg, w, id, &u)) {
        return;
    }

    if (in.bio == NULL && in.email == NULL && in.password == NULL) {
        resp_user(w, &u, AUTH_USER_OWNER);
        return;
    }

    hash[0] = '\0';
    old_hash[0] = '\0';

    if (in.password != NULL) {
        ok = auth_password_verify(u.password_hash, in.current_password,
                                  in.current_password_len);
        if (ok != 1) {
            auth_user_clear(&u);
            resp_wrong_password(w, "current_password");
            return;
        }

        if (strlen(u.password_hash) >= sizeof(old_hash)
            || auth_password_hash(&app->argon2, in.password, in.password_len,
                                  hash, sizeof(hash)) != 0)
        {
            auth_user_clear(&u);
            auth_resp_internal(w);
            return;
        }

        strcpy(old_hash, u.password_hash);
    }

    auth_user_clear(&u);

    if (enc_pg_begin(pg) != 0) {
        auth_resp_db_error(w, pg);
        goto done;
    }

    params[0] = id;
    params[1] = in.bio;
    params[2] = in.email;
    params[3] = hash[0] != '\0' ? hash : NULL;
    params[4] = old_hash[0] != '\0' ? old_hash : NULL;

    res = enc_pg_exec(pg, AUTH_SQL_USER_UPDATE_ME, 5, params);
    if (res == NULL) {
        goto failed;
    }

    if (PQresultStatus(res) != PGRES_TUPLES_OK) {
        if (strcmp(enc_pg_sqlstate(res), "23505") == 0) {
            PQclear(res);
            enc_pg_rollback(pg);
            enc_resp_problem(w, 409, "Conflict",
                             "email is already registered");
            goto done;
        }

        enc_log_error("user update failed: %s", enc_pg_sqlstate(res));
        PQclear(res);
        goto failed;
    }

    if (PQntuples(res) == 0) {
        /* deleted meanwhile, or the password changed since we verified
           the current one: either way this request's view is stale */
        PQclear(res);
        enc_pg_rollback(pg);
        enc_resp_problem(w, 409, "Conflict",
                         "the account changed during the update; retry");
        goto done;
    }

    auth_user_from_result(res, 0, &u);

    /* a new password ends every session: whoever knew the old one may
       hold a refresh token */
    if ((in.password != NULL && auth_tokens_revoke_user(pg, id) != 0)
        || auth_user_event(pg, "encore.user.updated", &u) != 0)
    {
        auth_user_clear(&u);
        goto failed;
    }

    if (enc_pg_commit(pg) != 0) {
        auth_user_clear(&u);
        auth_resp_db_error(w, pg);
        goto done;
    }

    if (in.password != NULL) {
        enc_log_info("user %s changed the password; sessions revoked", id);
    }

    resp_user(w, &u, AUTH_USER_OWNER);
    goto done;

failed:

    enc_pg_rollback(pg);
    auth_resp_db_error(w, pg);

done:

    OPENSSL_cleanse(hash, sizeof(hash));
    OPENSSL_cleanse(old_hash, sizeof(old_hash));
}


void
auth_h_me_delete(enc_req_t *r, enc_resp_t *w, void *data)
{
    int               ok;
    PGresult         *res;
    enc_pg_t         *pg;
    auth_app_t       *app;
    const char       *id, *password, *params[1];
    auth_user_t       u;
    enc_validation_t  v;

    app = data;

    id = auth_require_user(r, w);
    if (id == NULL) {
        return;
    }

    enc_validation_init(&v);
    if (enc_json_get_str(enc_req_json(r), "password", 1, 1,
                         AUTH_PASSWORD_MAX, &password, &v) != 0)
    {
        enc_resp_validation(w, &v);
        return;
    }

    pg = auth_pg(w);
    if (pg == NULL) {
        return;
    }

    if (!auth_load_caller(pg, w, id, &u)) {
        return;
    }

    ok = auth_password_verify(u.password_hash, password, strlen(password));
    if (ok != 1) {
        auth_user_clear(&u);
        resp_wrong_password(w, "password");
        return;
    }

    if (enc_pg_begin(pg) != 0) {
        auth_user_clear(&u);
        auth_resp_db_error(w, pg);
        return;
    }

    /* refresh_tokens go with the row (ON DELETE CASCADE) */
    params[0] = id;
    res = enc_pg_exec(pg, AUTH_SQL_USER_DELETE, 1, params);
    if (res == NULL || PQresultStatus(res) != PGRES_COMMAND_OK) {
        PQclear(res);
        goto failed;
    }

    if (strcmp(PQcmdTuples(res), "1") != 0) {
        PQclear(res);
        enc_pg_rollback(pg);
        auth_user_clear(&u);
        auth_resp_unauthorized(w, "the account no longer exists");
        return;
    }
    PQclear(res);

    if (auth_user_event(pg, "encore.user.deleted", &u) != 0) {
        goto failed;
    }

    if (enc_pg_commit(pg) != 0) {
        auth_user_clear(&u);
        auth_resp_db_error(w, pg);
        return;
    }

    auth_user_clear(&u);
    enc_log_info("user %s deleted the account", id);

    auth_cookies_clear_session(w, auth_cookies_secure(app, r));

    enc_resp_empty(w, 204);
    return;

failed:

    enc_pg_rollback(pg);
    auth_user_clear(&u);
    auth_resp_db_error(w, pg);
}


void
auth_h_users_list(enc_req_t *r, enc_resp_t *w, void *data)
{
    int               i, n, limit;
    char              prefix[AUTH_USERNAME_MAX + 1], limit_s[16];
    char              after[AUTH_USERNAME_MAX + 1];
    char              next[64];
    size_t            k, qlen;
    json_t           *items, *item, *body;
    PGresult         *res;
    enc_pg_t         *pg;
    const char       *q, *cursor, *params[3];
    auth_user_t       u;
    enc_validation_t  v;

    (void) data;

    if (auth_require_role(r, w, "admin") == NULL) {
        return;
    }

    enc_validation_init(&v);

    /* usernames are lower-case, so the prefix is too; one longer than any
       username simply matches nothing */
    q = enc_req_query(r, "q");
    prefix[0] = '\0';
    if (q != NULL) {
        qlen = strlen(q);
        if (qlen > AUTH_USERNAME_MAX) {
            enc_validation_add(&v, "q", "must be at most %d characters",
                               AUTH_USERNAME_MAX);
        } else {
            for (k = 0; k <= qlen; k++) {
                prefix[k] = (char) tolower((unsigned char) q[k]);
            }
        }
    }

    (void) auth_validate_limit(enc_req_query(r, "limit"), &limit, &v);

    cursor = enc_req_query(r, "cursor");
    if (cursor != NULL
        && auth_cursor_decode(cursor, after, sizeof(after)) != 0)
    {
        enc_validation_add(&v, "cursor", "is not a cursor of this list");
    }

    if (enc_validation_failed(&v)) {
        enc_resp_validation(w, &v);
        return;
    }

    pg = auth_pg(w);
    if (pg == NULL) {
        return;
    }

    if (!auth_caller_is_admin(pg, w, enc_req_user_id(r))) {
        return;
    }

    snprintf(limit_s, sizeof(limit_s), "%d", limit + 1);
    params[0] = prefix;
    params[1] = cursor != NULL ? after : NULL;
    params[2] = limit_s;

    res = enc_pg_exec(pg, AUTH_SQL_USERS_LIST, 3, params);
    if (res == NULL || PQresultStatus(res) != PGRES_TUPLES_OK) {
        PQclear(res);
        auth_resp_db_error(w, pg);
        return;
    }

    body = NULL;
    items = json_array();
    if (items == NULL) {
        goto failed;
    }

    n = PQntuples(res);

    for (i = 0; i < n && i < limit; i++) {
        /* u only borrows res here; res is released once below */
        auth_user_from_result(res, i, &u);
        item = auth_user_json(&u, AUTH_USER_ADMIN);
        if (item == NULL || json_array_append_new(items, item) != 0) {
            goto failed;
        }
    }

    if (n > limit) {
        if (auth_cursor_encode(PQgetvalue(res, limit - 1, 1), next,
                               sizeof(next)) != 0)
        {
            goto failed;
        }
        body = json_pack("{s:O, s:s}", "items", items, "next_cursor", next);
    } else {
        body = json_pack("{s:O, s:n}", "items", items, "next_cursor");
    }

    if (body == NULL) {
        goto failed;
    }

    json_decref(items);
    PQclear(res);
    enc_resp_json(w, 200, body);
    return;

failed:

    json_decref(items);
    PQclear(res);
    auth_resp_internal(w);
}


void
auth_h_user_admin_patch(enc_req_t *r, enc_resp_t *w, void *data)
{
    PGresult              *res;
    enc_pg_t              *pg;
    const char            *id, *caller, *params[3];
    auth_user_t            u;
    enc_validation_t       v;
    auth_patch_admin_in_t  in;

    (void) data;

    caller = auth_require_role(r, w, "admin");
    if (caller == NULL) {
        return;
    }

    id = enc_req_param(r, "id");
    if (id == NULL || !auth_uuid_valid(id)) {
        resp_not_found(w);
        return;
    }

    enc_validation_init(&v);
    if (auth_validate_patch_admin(enc_req_json(r), &in, &v) != 0) {
        enc_resp_validation(w, &v);
        return;
    }

    pg = auth_pg(w);
    if (pg == NULL) {
        return;
    }

    if (enc_pg_begin(pg) != 0) {
        auth_resp_db_error(w, pg);
        return;
    }

    /* one change of rights at a time, by an admin who still is one */
    res = enc_pg_exec(pg, AUTH_SQL_ADMIN_LOCK, 0, NULL);
    if (res == NULL || PQresultStatus(res) != PGRES_TUPLES_OK) {
        PQclear(res);
        goto failed;
    }
    PQclear(res);

    if (!auth_caller_is_admin(pg, w, caller)) {
        enc_pg_rollback(pg);
        return;
    }

    /* an admin's own rights are not theirs to change: demoting or
       disabling oneself could leave no admin at all */
    if (strcasecmp(id, caller) == 0) {
        enc_pg_rollback(pg);
        enc_resp_problem(w, 409, "Conflict", "an admin cannot change their"
                         " own role or disable their own account");
        return;
    }

    params[0] = id;
    params[1] = in.role;
    params[2] = in.disabled < 0 ? NULL : in.disabled ? "true" : "false";

    res = enc_pg_exec(pg, AUTH_SQL_USER_UPDATE_ADMIN, 3, params);
    if (res == NULL || PQresultStatus(res) != PGRES_TUPLES_OK) {
        PQclear(res);
        goto failed;
    }

    if (PQntuples(res) == 0) {
        PQclear(res);
        enc_pg_rollback(pg);
        resp_not_found(w);
        return;
    }

    auth_user_from_result(res, 0, &u);

    /* disabling ends the user's sessions now rather than at the next
       refresh; access tokens still run out within access_ttl */
    if ((in.disabled == 1 && auth_tokens_revoke_user(pg, id) != 0)
        || auth_user_event(pg, "encore.user.updated", &u) != 0)
    {
        auth_user_clear(&u);
        goto failed;
    }

    if (enc_pg_commit(pg) != 0) {
        auth_user_clear(&u);
        auth_resp_db_error(w, pg);
        return;
    }

    enc_log_info("admin %s updated user %s", caller, id);
    resp_user(w, &u, AUTH_USER_ADMIN);
    return;

failed:

    enc_pg_rollback(pg);
    auth_resp_db_error(w, pg);
}
