/*
 * sql.c — every statement the auth worker prepares.  All SQL is here, all
 * of it parameterised; names resolve in the worker's schema through the
 * connection's search_path.  The column list of a user row is fixed (see
 * auth_user_from_result) so every statement returning users shares it.
 */

#include "auth.h"
#include "sql.h"


#define USER_COLS                                                            \
    "id, username, email, role, bio, password_hash, "                        \
    "to_char(created_at AT TIME ZONE 'UTC', "                                \
    "'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"'), disabled, "                   \
    "tokens_not_before"


const enc_pg_stmt_t  auth_statements[] = {

    { AUTH_SQL_USER_BY_ID,
      "SELECT " USER_COLS " FROM users WHERE id = $1::uuid", 1 },

    { AUTH_SQL_USER_BY_USERNAME,
      "SELECT " USER_COLS " FROM users WHERE lower(username) = lower($1)", 1 },

    { AUTH_SQL_USER_BY_EMAIL,
      "SELECT " USER_COLS " FROM users WHERE lower(email) = lower($1)", 1 },

    { AUTH_SQL_USER_INSERT,
      "INSERT INTO users (username, email, password_hash) "
      "VALUES ($1, $2, $3) RETURNING " USER_COLS, 3 },

    /* $5: the hash the current password was verified against; the update
       only applies if nobody changed the password in between */
    { AUTH_SQL_USER_UPDATE_ME,
      "UPDATE users SET bio = COALESCE($2, bio), "
      "email = COALESCE($3, email), "
      "password_hash = COALESCE($4, password_hash), updated_at = now() "
      "WHERE id = $1::uuid AND ($5::text IS NULL OR password_hash = $5) "
      "RETURNING " USER_COLS, 5 },

    { AUTH_SQL_USER_UPDATE_ADMIN,
      "UPDATE users SET role = COALESCE($2, role), "
      "disabled = COALESCE($3::boolean, disabled), updated_at = now() "
      "WHERE id = $1::uuid RETURNING " USER_COLS, 3 },

    { AUTH_SQL_USER_REHASH,
      "UPDATE users SET password_hash = $2 "
      "WHERE id = $1::uuid AND password_hash = $3", 3 },

    { AUTH_SQL_USER_DELETE,
      "DELETE FROM users WHERE id = $1::uuid RETURNING tokens_not_before",
      1 },

    /* keyset page (kit.h): $1 prefix or NULL, $2 last username seen or
       NULL, $3 page size + 1 (the extra row says whether a next page
       exists); {user} is the user entity's select list (users.c) */
    { AUTH_SQL_USERS_LIST,
      "SELECT {user} FROM users "
      "WHERE ($1::text IS NULL OR starts_with(username, $1)) "
      "AND ($2::text IS NULL OR username COLLATE \"C\" > $2) "
      "ORDER BY username COLLATE \"C\" LIMIT $3::int", 3 },

    /*
     * Every transaction that creates or revokes refresh tokens first locks
     * the user's row (updates of the row lock it too): without it a token
     * minted by a rotation that had not committed yet escaped a family
     * revocation, a logout or a password change running at the same time,
     * since their UPDATE did not see the new row.
     */

    /* a login's new family: the password verified ($2) is still the
       stored one (not changed meanwhile); the row says if disabled */
    { AUTH_SQL_USER_LOCK_SESSION,
      "SELECT disabled, tokens_not_before FROM users "
      "WHERE id = $1::uuid AND password_hash = $2 FOR NO KEY UPDATE", 2 },

    { AUTH_SQL_USER_LOCK_BY_TOKEN,
      "SELECT 1 FROM users WHERE id = (SELECT user_id FROM refresh_tokens "
      "WHERE token_hash = decode($1, 'hex')) FOR NO KEY UPDATE", 1 },

    /* role and disabled changes run one at a time, so two admins cannot
       remove each other's rights at once and leave none */
    { AUTH_SQL_ADMIN_LOCK,
      "SELECT pg_advisory_xact_lock(hashtext('encore.auth.admins'))", 0 },

    /* the caller's rights as they are now, not as the token says */
    { AUTH_SQL_ADMIN_CALLER,
      "SELECT 1 FROM users WHERE id = $1::uuid AND role = 'admin' "
      "AND NOT disabled", 1 },

    /* the bootstrap admin, created only when no account has its name or
       email; an existing one is never changed (see ADMIN_RESET) */
    { AUTH_SQL_ADMIN_CREATE,
      "INSERT INTO users (username, email, password_hash, role) "
      "VALUES ($1, $2, $3, 'admin') ON CONFLICT DO NOTHING "
      "RETURNING " USER_COLS, 3 },

    /* bootstrap-admin --reset: the named account gets the password and the
       admin role, and is enabled again */
    { AUTH_SQL_ADMIN_RESET,
      "UPDATE users SET password_hash = $2, role = 'admin', "
      "disabled = false, updated_at = now() "
      "WHERE lower(username) = lower($1) RETURNING " USER_COLS, 2 },

    { AUTH_SQL_TOKEN_INSERT,
      "INSERT INTO refresh_tokens "
      "(user_id, family_id, parent_id, token_hash, expires_at) "
      "VALUES ($1::uuid, COALESCE($2::uuid, gen_random_uuid()), $3::uuid, "
      "decode($4, 'hex'), now() + make_interval(secs => $5::int)) "
      "RETURNING family_id", 5 },

    { AUTH_SQL_TOKEN_LOCK,
      "SELECT id, family_id, user_id, used_at IS NOT NULL, "
      "revoked_at IS NOT NULL, expires_at <= now() "
      "FROM refresh_tokens WHERE token_hash = decode($1, 'hex') FOR UPDATE",
      1 },

    { AUTH_SQL_TOKEN_MARK_USED,
      "UPDATE refresh_tokens SET used_at = now() WHERE id = $1::uuid", 1 },

    { AUTH_SQL_TOKEN_REVOKE_FAMILY,
      "UPDATE refresh_tokens SET revoked_at = now() "
      "WHERE family_id = $1::uuid AND revoked_at IS NULL", 1 },

    /* the family and its owner when it was live (a logout's revocation
       event), no row when it was revoked already */
    { AUTH_SQL_TOKEN_REVOKE_BY_HASH,
      "WITH r AS (UPDATE refresh_tokens SET revoked_at = now() "
      "WHERE family_id = (SELECT family_id FROM refresh_tokens "
      "WHERE token_hash = decode($1, 'hex')) AND revoked_at IS NULL "
      "RETURNING family_id, user_id) "
      "SELECT DISTINCT family_id, user_id FROM r", 1 },

    { AUTH_SQL_TOKEN_REVOKE_USER,
      "UPDATE refresh_tokens SET revoked_at = now() "
      "WHERE user_id = $1::uuid AND revoked_at IS NULL", 1 },

    /* expired rows can never be presented successfully again, reuse
       detection included, so they are dead weight */
    { AUTH_SQL_TOKEN_PURGE_USER,
      "DELETE FROM refresh_tokens "
      "WHERE user_id = $1::uuid AND expires_at < now()", 1 },

    /*
     * Revocation at the edge (revoke.c).  $2 is the worker's clock in
     * seconds, the clock that signs iat: every token issued so far has
     * iat <= max($2, tokens_not_before), so one more than that refuses
     * them all, also after an earlier revocation in the same second.
     * Revocations in a burst would each add a second, and tokens issued
     * with an iat beyond the edge's leeway (30 s) are refused as issued
     * in the future: so tokens_not_before stays within 10 s of the
     * clock.  Past that bound (more than 10 subject-wide revocations of
     * one user within seconds) a token issued between two of them in the
     * same second outlives the later one.
     */
    { AUTH_SQL_USER_NOT_BEFORE_BUMP,
      "UPDATE users SET tokens_not_before = GREATEST(tokens_not_before, "
      "LEAST(GREATEST(tokens_not_before, $2::bigint) + 1, $2::bigint + 10)) "
      "WHERE id = $1::uuid RETURNING tokens_not_before", 2 },

    /* a session's: the family is dead, its tokens' iat is at most this */
    { AUTH_SQL_USER_NOT_BEFORE_SESSION,
      "SELECT GREATEST(tokens_not_before, $2::bigint) + 1 FROM users "
      "WHERE id = $1::uuid", 2 },

    /* an admin's change: the rights as they were, the row locked */
    { AUTH_SQL_USER_LOCK_RIGHTS,
      "SELECT role, disabled FROM users WHERE id = $1::uuid "
      "FOR NO KEY UPDATE", 1 },

    { NULL, NULL, 0 }
};
