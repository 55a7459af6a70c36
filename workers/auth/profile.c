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
        enc_kit_internal(w);
        return;
    }

    enc_resp_json(w, 200, body);
}


void
auth_h_user_get(enc_req_t *r, enc_resp_t *w, void *data)
{
    int                  found;
    enc_pg_t            *pg;
    const char          *id;
    auth_user_t          u;
    auth_user_view_t     view;
    const enc_caller_t  *caller;

    (void) data;

    id = enc_req_param(r, "id");
    if (id == NULL || !enc_uuid_valid(id)) {
        resp_not_found(w);
        return;
    }

    pg = enc_kit_db(w);
    if (pg == NULL) {
        return;
    }

    found = auth_user_by_id(pg, id, &u);
    if (found < 0) {
        enc_kit_db_error(w, pg);
        return;
    }

    if (found == 0) {
        resp_not_found(w);
        return;
    }

    /* identity is optional here; it only widens the view */
    caller = enc_req_caller(r);
    view = enc_caller_is(caller, ENC_ROLE_ADMIN) ? AUTH_USER_ADMIN
           : enc_caller_owns_or_is(caller, u.id, ENC_ROLE_ADMIN)
           ? AUTH_USER_OWNER : AUTH_USER_PUBLIC;

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

    pg = enc_kit_db(w);
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
            enc_kit_internal(w);
            return;
        }

        strcpy(old_hash, u.password_hash);
    }

    auth_user_clear(&u);

    if (enc_pg_begin(pg) != 0) {
        enc_kit_db_error(w, pg);
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
        enc_kit_fail(w, pg, &auth_user, res, AUTH_SQL_USER_UPDATE_ME);
        PQclear(res);
        goto done;
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
    if ((in.password != NULL
         && (auth_tokens_revoke_user(pg, id) != 0
             || auth_revoke_user(pg, id, AUTH_REVOKE_PASSWORD_CHANGED) != 0))
        || auth_user_event(pg, "encore.user.updated", &u) != 0)
    {
        auth_user_clear(&u);
        goto failed;
    }

    if (enc_pg_commit(pg) != 0) {
        auth_user_clear(&u);
        enc_kit_db_error(w, pg);
        goto done;
    }

    if (in.password != NULL) {
        enc_log_info("user %s changed the password; sessions revoked", id);
    }

    resp_user(w, &u, AUTH_USER_OWNER);
    goto done;

failed:

    enc_pg_rollback(pg);
    enc_kit_db_error(w, pg);

done:

    OPENSSL_cleanse(hash, sizeof(hash));
    OPENSSL_cleanse(old_hash, sizeof(old_hash));
}


void
auth_h_me_delete(enc_req_t *r, enc_resp_t *w, void *data)
{
    int               ok;
    long long         nb;
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

    pg = enc_kit_db(w);
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
        enc_kit_db_error(w, pg);
        return;
    }

    /* refresh_tokens go with the row (ON DELETE CASCADE) */
    params[0] = id;
    res = enc_pg_exec(pg, AUTH_SQL_USER_DELETE, 1, params);
    if (res == NULL || PQresultStatus(res) != PGRES_TUPLES_OK) {
        PQclear(res);
        goto failed;
    }

    if (PQntuples(res) != 1) {
        PQclear(res);
        enc_pg_rollback(pg);
        auth_user_clear(&u);
        auth_resp_unauthorized(w, "the account no longer exists");
        return;
    }
    nb = strtoll(PQgetvalue(res, 0, 0), NULL, 10);
    PQclear(res);

    /* no row is left to remember tokens_not_before: the event says it */
    if (auth_user_event(pg, "encore.user.deleted", &u) != 0
        || auth_revoke_event(pg, id, NULL,
                             auth_token_iat(auth_now_s(), nb) + 1,
                             AUTH_REVOKE_DELETED) != 0)
    {
        goto failed;
    }

    if (enc_pg_commit(pg) != 0) {
        auth_user_clear(&u);
        enc_kit_db_error(w, pg);
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
    enc_kit_db_error(w, pg);
}


/* usernames are lower-case, so the prefix is folded too; one longer than
   any username matches nothing */
static const enc_field_t  users_filters[] = {
    { .name = "q", .type = ENC_STRING, .flags = ENC_LOWER,
      .max = AUTH_USERNAME_MAX },
    ENC_FIELD_END
};

static const char *const  by_username[] = { "username", NULL };

static const enc_list_t  users_list = {
    .name = "users_list", .stmt = AUTH_SQL_USERS_LIST,
    .filters = users_filters, .keys = by_username, .view = ENC_VIEW_ADMIN
};


void
auth_h_users_list(enc_req_t *r, enc_resp_t *w, void *data)
{
    enc_pg_t  *pg;

    (void) data;

    if (auth_require_role(r, w, ENC_ROLE_ADMIN) == NULL
        || (pg = enc_kit_db(w)) == NULL
        || !auth_caller_is_admin(pg, w, enc_req_caller(r)->id))
    {
        return;
    }

    enc_kit_list(r, w, &auth_user, &users_list, 0, NULL);
}


void
auth_h_user_admin_patch(enc_req_t *r, enc_resp_t *w, void *data)
{
    int                    was_disabled, role_changed;
    PGresult              *res;
    enc_pg_t              *pg;
    const char            *id, *caller, *cause, *params[3];
    auth_user_t            u;
    enc_validation_t       v;
    auth_patch_admin_in_t  in;

    (void) data;

    caller = auth_require_role(r, w, ENC_ROLE_ADMIN);
    if (caller == NULL) {
        return;
    }

    id = enc_req_param(r, "id");
    if (id == NULL || !enc_uuid_valid(id)) {
        resp_not_found(w);
        return;
    }

    enc_validation_init(&v);
    if (auth_validate_patch_admin(enc_req_json(r), &in, &v) != 0) {
        enc_resp_validation(w, &v);
        return;
    }

    pg = enc_kit_db(w);
    if (pg == NULL) {
        return;
    }

    if (enc_pg_begin(pg) != 0) {
        enc_kit_db_error(w, pg);
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

    /* the rights before the change: only a change revokes tokens */
    params[0] = id;
    res = enc_pg_exec(pg, AUTH_SQL_USER_LOCK_RIGHTS, 1, params);
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

    was_disabled = PQgetvalue(res, 0, 1)[0] == 't';
    role_changed = in.role != NULL
                   && strcmp(in.role, PQgetvalue(res, 0, 0)) != 0;
    PQclear(res);

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

    /* disabling ends the user's sessions now, refresh tokens and access
       tokens alike (the edge refuses them once the event reached it); a
       role change ends the access tokens, which carry the old role: the
       next refresh gives one with the new role.  One event for the
       request: disabling covers a role change made with it */
    if (in.disabled == 1 && !was_disabled) {
        cause = AUTH_REVOKE_DISABLED;
    } else if (role_changed) {
        cause = AUTH_REVOKE_ROLE_CHANGED;
    } else {
        cause = NULL;
    }

    if ((in.disabled == 1 && auth_tokens_revoke_user(pg, id) != 0)
        || (cause != NULL && auth_revoke_user(pg, id, cause) != 0)
        || auth_user_event(pg, "encore.user.updated", &u) != 0)
    {
        auth_user_clear(&u);
        goto failed;
    }

    if (enc_pg_commit(pg) != 0) {
        auth_user_clear(&u);
        enc_kit_db_error(w, pg);
        return;
    }

    enc_log_info("admin %s updated user %s", caller, id);
    resp_user(w, &u, AUTH_USER_ADMIN);
    return;

failed:

    enc_pg_rollback(pg);
    enc_kit_db_error(w, pg);
}
