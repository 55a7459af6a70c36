/*
 * sql.h — names of the prepared statements in sql.c.
 */

#ifndef ENCORE_AUTH_SQL_H
#define ENCORE_AUTH_SQL_H

#define AUTH_SQL_USER_BY_ID            "auth_user_by_id"
#define AUTH_SQL_USER_BY_USERNAME      "auth_user_by_username"
#define AUTH_SQL_USER_BY_EMAIL         "auth_user_by_email"
#define AUTH_SQL_USER_INSERT           "auth_user_insert"
#define AUTH_SQL_USER_UPDATE_ME        "auth_user_update_me"
#define AUTH_SQL_USER_UPDATE_ADMIN     "auth_user_update_admin"
#define AUTH_SQL_USER_REHASH           "auth_user_rehash"
#define AUTH_SQL_USER_DELETE           "auth_user_delete"
#define AUTH_SQL_USERS_LIST            "auth_users_list"
#define AUTH_SQL_ADMIN_CREATE          "auth_admin_create"
#define AUTH_SQL_TOKEN_INSERT          "auth_token_insert"
#define AUTH_SQL_TOKEN_LOCK            "auth_token_lock"
#define AUTH_SQL_TOKEN_MARK_USED       "auth_token_mark_used"
#define AUTH_SQL_TOKEN_REVOKE_FAMILY   "auth_token_revoke_family"
#define AUTH_SQL_TOKEN_REVOKE_BY_HASH  "auth_token_revoke_by_hash"
#define AUTH_SQL_TOKEN_REVOKE_USER     "auth_token_revoke_user"
#define AUTH_SQL_TOKEN_PURGE_USER      "auth_token_purge_user"
#define AUTH_SQL_USER_LOCK_SESSION     "auth_user_lock_session"
#define AUTH_SQL_USER_LOCK_BY_TOKEN    "auth_user_lock_by_token"
#define AUTH_SQL_ADMIN_LOCK            "auth_admin_lock"
#define AUTH_SQL_ADMIN_CALLER          "auth_admin_caller"
#define AUTH_SQL_ADMIN_RESET           "auth_admin_reset"
#define AUTH_SQL_USER_NOT_BEFORE_BUMP  "auth_user_not_before_bump"
#define AUTH_SQL_USER_NOT_BEFORE_SESSION "auth_user_not_before_session"
#define AUTH_SQL_USER_LOCK_RIGHTS      "auth_user_lock_rights"

/* column positions of a user row (USER_COLS in sql.c) */
#define AUTH_COL_ID             0
#define AUTH_COL_USERNAME       1
#define AUTH_COL_EMAIL          2
#define AUTH_COL_ROLE           3
#define AUTH_COL_BIO            4
#define AUTH_COL_PASSWORD_HASH  5
#define AUTH_COL_CREATED_AT     6
#define AUTH_COL_DISABLED       7
#define AUTH_COL_NOT_BEFORE     8
#define AUTH_USER_NCOLS         9

#endif /* ENCORE_AUTH_SQL_H */
