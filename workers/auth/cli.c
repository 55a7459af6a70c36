/*
 * cli.c — `encore-auth <command>`: operator commands that run instead of
 * the server, after configuration and migrations (enc_worker_main).
 *
 *   rotate-key            add a signing key and republish the JWKS
 *   remove-key KID        drop an old key (never the newest) and republish
 *   bootstrap-admin       create the "admin" account when it is missing
 *   bootstrap-admin --reset   reset its password, role and enabled flag
 *
 * Exit status: 0 done, 1 failed, 2 usage error.
 */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/crypto.h>

#include "auth.h"
#include "log.h"
#include "sql.h"


#define ADMIN_USERNAME          "admin"
#define ADMIN_DEFAULT_PASSWORD  "encore-admin"


/* what --help lists (enc_worker_main refuses other names before the
   database is touched) */
const enc_worker_cmd_t  auth_commands[] = {
    { "rotate-key", "", "add a signing key and rewrite the JWKS" },
    { "remove-key", "KID", "remove an older signing key, rewrite the JWKS" },
    { "bootstrap-admin", "[--reset]",
      "create the \"" ADMIN_USERNAME "\" account if missing (password from"
      " ENCORE_ADMIN_PASSWORD, default \"" ADMIN_DEFAULT_PASSWORD "\"); an"
      " existing one is left alone unless --reset is given" },
    { NULL, NULL, NULL }
};


/* a known command with the wrong arguments */
static int
usage(const char *cmd)
{
    const enc_worker_cmd_t  *c;

    for (c = auth_commands; c->name != NULL; c++) {
        if (strcmp(c->name, cmd) == 0) {
            fprintf(stderr, "usage: encore-auth [-c FILE] %s %s\n", c->name,
                    c->args);
        }
    }
    return 2;
}


/* Loads the keyring as it is on disk and rewrites the JWKS from it. */
static int
republish(const enc_config_t *c, size_t *nkeys, char *err, size_t errlen)
{
    int              rc;
    auth_keyring_t  *kr;

    if (auth_keys_load(enc_config_str(c, "auth.keys_dir"), 0, &kr, err,
                       errlen) != 0)
    {
        return -1;
    }

    rc = auth_jwks_write(enc_config_str(c, "auth.jwks_path"), kr, err,
                         errlen);
    *nkeys = kr->n;
    auth_keyring_free(kr);
    return rc;
}


static int
cmd_rotate_key(const enc_config_t *c)
{
    char    kid[AUTH_KID_LEN + 1], err[512];
    size_t  n;

    if (auth_keys_add(enc_config_str(c, "auth.keys_dir"), kid, sizeof(kid),
                      err, sizeof(err)) != 0
        || republish(c, &n, err, sizeof(err)) != 0)
    {
        fprintf(stderr, "encore-auth: rotate-key: %s\n", err);
        return 1;
    }

    printf("added signing key %s; %zu key(s) published in %s\n"
           "reload the edge (nginx -s reload) first, then restart "
           "encore-auth to sign with it\n",
           kid, n, enc_config_str(c, "auth.jwks_path"));
    return 0;
}


static int
cmd_remove_key(const enc_config_t *c, const char *kid)
{
    char             path[4096], err[512];
    size_t           i, n;
    const char      *dir;
    auth_keyring_t  *kr;

    dir = enc_config_str(c, "auth.keys_dir");

    if (auth_keys_load(dir, 0, &kr, err, sizeof(err)) != 0) {
        fprintf(stderr, "encore-auth: remove-key: %s\n", err);
        return 1;
    }

    for (i = 0; i < kr->n; i++) {
        if (strcmp(kr->keys[i].kid, kid) == 0) {
            break;
        }
    }

    if (i == kr->n) {
        fprintf(stderr, "encore-auth: remove-key: no key \"%s\"\n", kid);
        auth_keyring_free(kr);
        return 1;
    }

    /* the newest key is the one the running workers sign with */
    if (i == 0) {
        fprintf(stderr, "encore-auth: remove-key: \"%s\" is the signing "
                "key; rotate first\n", kid);
        auth_keyring_free(kr);
        return 1;
    }

    snprintf(path, sizeof(path), "%s/%s-%s.pem", dir, kr->keys[i].created,
             kid);
    auth_keyring_free(kr);

    if (unlink(path) != 0) {
        perror(path);
        return 1;
    }

    if (republish(c, &n, err, sizeof(err)) != 0) {
        fprintf(stderr, "encore-auth: remove-key: %s\n", err);
        return 1;
    }

    printf("removed key %s; %zu key(s) published\n", kid, n);
    return 0;
}


/*
 * Creates the "admin" account with ENCORE_ADMIN_PASSWORD when no account
 * has that name.  An existing account is left alone, whatever its password
 * or role: `make start` runs this on every start, and must neither undo an
 * admin's password change nor promote someone who registered the name
 * after the admin deleted it.  With reset, the account named admin gets
 * the password and the admin role and is enabled (its sessions end).
 */
static int
cmd_bootstrap_admin(const enc_config_t *c, int reset)
{
    int                    rc, found;
    char                   hash[AUTH_ARGON2_ENCODED_MAX];
    size_t                 chars;
    PGresult              *res;
    enc_pg_t              *pg;
    const char            *password, *params[3], *done;
    auth_user_t            u;
    auth_argon2_params_t   argon2;

    rc = 1;
    hash[0] = '\0';

    password = getenv("ENCORE_ADMIN_PASSWORD");
    if (password == NULL || password[0] == '\0') {
        password = ADMIN_DEFAULT_PASSWORD;
    }

    chars = enc_utf8_chars(password, strlen(password));
    if (chars == (size_t) -1 || chars < AUTH_PASSWORD_MIN
        || chars > AUTH_PASSWORD_MAX)
    {
        fprintf(stderr, "encore-auth: ENCORE_ADMIN_PASSWORD must be %d to %d "
                "characters of UTF-8\n", AUTH_PASSWORD_MIN,
                AUTH_PASSWORD_MAX);
        return 1;
    }

    pg = enc_pg_connect_new();
    if (pg == NULL) {
        fprintf(stderr, "encore-auth: the database is unreachable\n");
        return 1;
    }

    found = auth_user_by_login(pg, ADMIN_USERNAME, &u);
    if (found < 0) {
        fprintf(stderr, "encore-auth: reading the admin account failed\n");
        goto failed;
    }

    if (found == 1 && !reset) {
        if (strcmp(u.role, "admin") != 0 || u.disabled) {
            fprintf(stderr, "encore-auth: the account \"%s\" (%s) is %s;"
                    " left unchanged (bootstrap-admin --reset makes it the"
                    " admin again)\n", ADMIN_USERNAME, u.id,
                    u.disabled ? "disabled" : "not an admin");
        } else {
            printf("admin account %s exists; left unchanged\n", u.id);
        }
        auth_user_clear(&u);
        rc = 0;
        goto failed;
    }

    if (found == 1) {
        auth_user_clear(&u);
    }

    auth_argon2_from_config(c, &argon2);

    if (auth_password_hash(&argon2, password, strlen(password), hash,
                           sizeof(hash)) != 0)
    {
        fprintf(stderr, "encore-auth: password hashing failed\n");
        goto failed;
    }

    if (enc_pg_begin(pg) != 0) {
        fprintf(stderr, "encore-auth: BEGIN failed\n");
        goto failed;
    }

    params[0] = ADMIN_USERNAME;
    if (found == 1) {
        params[1] = hash;
        res = enc_pg_exec(pg, AUTH_SQL_ADMIN_RESET, 2, params);
        done = "reset";
    } else {
        params[1] = enc_config_str(c, "auth.admin_email");
        params[2] = hash;
        res = enc_pg_exec(pg, AUTH_SQL_ADMIN_CREATE, 3, params);
        done = "created";
    }

    if (res == NULL || PQresultStatus(res) != PGRES_TUPLES_OK
        || PQntuples(res) != 1)
    {
        /* no row from the insert: the name or the email was taken meanwhile
           or the email belongs to another account */
        fprintf(stderr, "encore-auth: storing the admin account failed (%s)"
                "\n", res == NULL ? "connection lost"
                : PQresultStatus(res) != PGRES_TUPLES_OK
                  ? enc_pg_sqlstate(res)
                  : "auth.admin_email or the name belongs to another"
                    " account");
        PQclear(res);
        enc_pg_rollback(pg);
        goto failed;
    }

    auth_user_from_result(res, 0, &u);

    /* a reset password ends the account's sessions, access tokens too */
    if (found == 1) {
        rc = auth_tokens_revoke_user(pg, u.id) != 0
             || auth_revoke_user(pg, u.id, AUTH_REVOKE_PASSWORD_CHANGED) != 0
             || auth_user_event(pg, "encore.user.updated", &u) != 0 ? -1 : 0;
    } else {
        rc = auth_user_event(pg, "encore.user.registered", &u);
    }

    if (rc != 0 || enc_pg_commit(pg) != 0) {
        fprintf(stderr, "encore-auth: storing the admin account failed\n");
        enc_pg_rollback(pg);
        auth_user_clear(&u);
        rc = 1;
        goto failed;
    }

    printf("admin account %s %s\n", u.id, done);
    auth_user_clear(&u);
    rc = 0;

failed:

    OPENSSL_cleanse(hash, sizeof(hash));
    enc_pg_close(pg);
    return rc;
}


int
auth_command(const enc_config_t *c, int argc, char **argv)
{
    if (strcmp(argv[0], "rotate-key") == 0 && argc == 1) {
        return cmd_rotate_key(c);
    }

    if (strcmp(argv[0], "remove-key") == 0 && argc == 2) {
        return cmd_remove_key(c, argv[1]);
    }

    if (strcmp(argv[0], "bootstrap-admin") == 0 && argc == 1) {
        return cmd_bootstrap_admin(c, 0);
    }

    if (strcmp(argv[0], "bootstrap-admin") == 0 && argc == 2
        && strcmp(argv[1], "--reset") == 0)
    {
        return cmd_bootstrap_admin(c, 1);
    }

    return usage(argv[0]);
}
