/*
 * cli.c — `encore-auth <command>`: operator commands that run instead of
 * the server, after configuration and migrations (enc_worker_main).
 *
 *   rotate-key            add a signing key and republish the JWKS
 *   remove-key KID        drop an old key (never the newest) and republish
 *   bootstrap-admin       create or update the "admin" account
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


static int
usage(FILE *out)
{
    fprintf(out,
            "usage: encore-auth [-c FILE] <command>\n"
            "  rotate-key        add a signing key and rewrite the JWKS\n"
            "  remove-key KID    remove an older signing key, rewrite the "
            "JWKS\n"
            "  bootstrap-admin   create or update the admin account (password "
            "from\n"
            "                    ENCORE_ADMIN_PASSWORD, default \"%s\")\n",
            ADMIN_DEFAULT_PASSWORD);
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
 * Idempotent: an admin account that already has this password, the admin
 * role and is enabled is left alone (no write, no event); otherwise it is
 * created or reset in one upsert together with its event.
 */
static int
cmd_bootstrap_admin(const enc_config_t *c)
{
    int                    rc, found, inserted;
    char                   hash[AUTH_ARGON2_ENCODED_MAX];
    size_t                 chars;
    PGresult              *res;
    enc_pg_t              *pg;
    const char            *password, *params[3];
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

    auth_argon2_from_config(c, &argon2);

    found = auth_user_by_login(pg, ADMIN_USERNAME, &u);
    if (found < 0) {
        fprintf(stderr, "encore-auth: reading the admin account failed\n");
        goto failed;
    }

    if (found == 1) {
        if (strcmp(u.role, "admin") == 0 && !u.disabled
            && auth_password_verify(u.password_hash, password,
                                    strlen(password)) == 1
            && !auth_password_needs_rehash(&argon2, u.password_hash))
        {
            printf("admin account %s is up to date\n", u.id);
            auth_user_clear(&u);
            rc = 0;
            goto failed;
        }
        auth_user_clear(&u);
    }

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
    params[1] = enc_config_str(c, "auth.admin_email");
    params[2] = hash;

    res = enc_pg_exec(pg, AUTH_SQL_ADMIN_UPSERT, 3, params);
    if (res == NULL || PQresultStatus(res) != PGRES_TUPLES_OK
        || PQntuples(res) != 1)
    {
        fprintf(stderr, "encore-auth: admin upsert failed (%s)%s\n",
                res != NULL ? enc_pg_sqlstate(res) : "connection lost",
                res != NULL && strcmp(enc_pg_sqlstate(res), "23505") == 0
                ? ": auth.admin_email belongs to another account" : "");
        PQclear(res);
        enc_pg_rollback(pg);
        goto failed;
    }

    inserted = PQgetvalue(res, 0, AUTH_USER_NCOLS)[0] == 't';
    auth_user_from_result(res, 0, &u);

    if (inserted) {
        /* the upsert matched nothing, so no session exists to revoke */
        rc = auth_user_event(pg, "encore.user.registered", &u);
    } else {
        rc = auth_tokens_revoke_user(pg, u.id) != 0
             || auth_user_event(pg, "encore.user.updated", &u) != 0 ? -1 : 0;
    }

    if (rc != 0 || enc_pg_commit(pg) != 0) {
        fprintf(stderr, "encore-auth: storing the admin account failed\n");
        enc_pg_rollback(pg);
        auth_user_clear(&u);
        rc = 1;
        goto failed;
    }

    printf("admin account %s %s\n", u.id, inserted ? "created" : "updated");
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
    if (argc < 1) {
        return usage(stderr);
    }

    if (strcmp(argv[0], "rotate-key") == 0 && argc == 1) {
        return cmd_rotate_key(c);
    }

    if (strcmp(argv[0], "remove-key") == 0 && argc == 2) {
        return cmd_remove_key(c, argv[1]);
    }

    if (strcmp(argv[0], "bootstrap-admin") == 0 && argc == 1) {
        return cmd_bootstrap_admin(c);
    }

    if (strcmp(argv[0], "help") == 0) {
        usage(stdout);
        return 0;
    }

    fprintf(stderr, "encore-auth: unknown command \"%s\"\n", argv[0]);
    return usage(stderr);
}
