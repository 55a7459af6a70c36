/*
 * users.c — the user row: lookups, its JSON views, its events.
 *
 * A user read from PostgreSQL stays inside its PGresult: auth_user_t only
 * points into it, so reading a user costs one allocation (libpq's) and
 * auth_user_clear releases everything.
 */

#include <stdlib.h>
#include <string.h>

#include "auth.h"
#include "log.h"
#include "outbox.h"
#include "sql.h"


/* The user as the kit sees it (entity.h): the list's select list and
   JSON.  Email is the owner's and admins', disabled the admins' only; the
   password hash is no column of it. */
static const enc_field_t  user_fields[] = {
    { .name = "id", .type = ENC_UUID, .flags = ENC_OUT | ENC_KEY },
    { .name = "username", .type = ENC_STRING, .flags = ENC_OUT },
    { .name = "email", .type = ENC_STRING, .flags = ENC_OUT | ENC_PRIVATE },
    { .name = "role", .type = ENC_STRING, .flags = ENC_OUT },
    { .name = "bio", .type = ENC_STRING, .flags = ENC_OUT },
    { .name = "created_at", .type = ENC_TIME, .flags = ENC_OUT },
    { .name = "disabled", .type = ENC_BOOL,
      .flags = ENC_OUT | ENC_ADMIN_ONLY },
    ENC_FIELD_END
};

/* uniqueness is case-insensitive: unique indexes on lower() */
static const enc_constraint_t  user_constraints[] = {
    { "users_username_lower_key", 409, "username", "is already taken" },
    { "users_email_lower_key", 409, "email", "is already registered" },
    { NULL, 0, NULL, NULL }
};

const enc_entity_t  auth_user = {
    .name = "user", .plural = "users", .path = "/api/v1/users/",
    .topic = AUTH_TOPIC_USERS, .fields = user_fields,
    .constraints = user_constraints
};


void
auth_user_from_result(PGresult *res, int row, auth_user_t *u)
{
    u->res = res;
    u->id = PQgetvalue(res, row, AUTH_COL_ID);
    u->username = PQgetvalue(res, row, AUTH_COL_USERNAME);
    u->email = PQgetvalue(res, row, AUTH_COL_EMAIL);
    u->role = PQgetvalue(res, row, AUTH_COL_ROLE);
    u->bio = PQgetvalue(res, row, AUTH_COL_BIO);
    u->password_hash = PQgetvalue(res, row, AUTH_COL_PASSWORD_HASH);
    u->created_at = PQgetvalue(res, row, AUTH_COL_CREATED_AT);
    u->disabled = PQgetvalue(res, row, AUTH_COL_DISABLED)[0] == 't';
    u->not_before = PQnfields(res) > AUTH_COL_NOT_BEFORE
                    ? strtoll(PQgetvalue(res, row, AUTH_COL_NOT_BEFORE),
                              NULL, 10)
                    : 0;
}


void
auth_user_clear(auth_user_t *u)
{
    PQclear(u->res);
    memset(u, 0, sizeof(*u));
}


/* Runs a one-parameter lookup; see auth_user_by_id for the contract. */
static int
user_lookup(enc_pg_t *pg, const char *stmt, const char *arg, auth_user_t *u)
{
    PGresult    *res;
    const char  *params[1];

    memset(u, 0, sizeof(*u));
    params[0] = arg;

    res = enc_pg_exec(pg, stmt, 1, params);
    if (res == NULL) {
        return -1;
    }

    if (PQresultStatus(res) != PGRES_TUPLES_OK
        || PQnfields(res) < AUTH_USER_NCOLS)
    {
        enc_log_error("%s failed: %s", stmt, enc_pg_sqlstate(res));
        PQclear(res);
        return -1;
    }

    if (PQntuples(res) == 0) {
        PQclear(res);
        return 0;
    }

    auth_user_from_result(res, 0, u);
    return 1;
}


int
auth_user_by_id(enc_pg_t *pg, const char *id, auth_user_t *u)
{
    /* not a uuid: cannot exist, and the cast would fail the transaction */
    if (!enc_uuid_valid(id)) {
        memset(u, 0, sizeof(*u));
        return 0;
    }

    return user_lookup(pg, AUTH_SQL_USER_BY_ID, id, u);
}


int
auth_user_by_login(enc_pg_t *pg, const char *login, auth_user_t *u)
{
    /* usernames never contain '@' and emails always do, so the login says
       which unique index to use */
    return user_lookup(pg, strchr(login, '@') != NULL
                           ? AUTH_SQL_USER_BY_EMAIL
                           : AUTH_SQL_USER_BY_USERNAME,
                       login, u);
}


json_t *
auth_user_json(const auth_user_t *u, auth_user_view_t view)
{
    json_t  *j;

    j = json_pack("{s:s, s:s, s:s, s:s, s:s}",
                  "id", u->id, "username", u->username, "role", u->role,
                  "bio", u->bio, "created_at", u->created_at);
    if (j == NULL) {
        return NULL;
    }

    if (view != AUTH_USER_PUBLIC
        && json_object_set_new(j, "email", json_string(u->email)) != 0)
    {
        json_decref(j);
        return NULL;
    }

    if (view == AUTH_USER_ADMIN
        && json_object_set_new(j, "disabled", json_boolean(u->disabled)) != 0)
    {
        json_decref(j);
        return NULL;
    }

    return j;
}


int
auth_user_event(enc_pg_t *pg, const char *type, const auth_user_t *u)
{
    int      rc;
    char     subject[16 + AUTH_UUID_LEN];
    json_t  *data;

    /* deletes carry only the id; everything else the public view, which
       holds neither the email nor any secret */
    if (strcmp(type, "encore.user.deleted") == 0) {
        data = json_pack("{s:s}", "id", u->id);
    } else {
        data = auth_user_json(u, AUTH_USER_PUBLIC);
    }

    if (data == NULL) {
        return -1;
    }

    snprintf(subject, sizeof(subject), "users/%s", u->id);

    rc = enc_outbox_add(pg, AUTH_TOPIC_USERS, type, u->id, subject, data);
    json_decref(data);

    if (rc != 0) {
        enc_log_error("outbox insert for %s failed", type);
    }

    return rc;
}
