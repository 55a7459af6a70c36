/*
 * pg_env.h — configuration for the pg and migrate unit tests, which run
 * only when ENCORE_TEST_PGHOST names a PostgreSQL (host or socket dir);
 * ENCORE_TEST_PGPORT (5432), ENCORE_TEST_PGUSER (postgres) and
 * ENCORE_TEST_PGDATABASE (postgres) complete it.  The user must be able to
 * create schemas and terminate backends (a superuser, in a throwaway
 * cluster).  Same variables as db_fixture.h.
 */
#ifndef ENC_TEST_PG_ENV_H
#define ENC_TEST_PG_ENV_H

#include <stdio.h>
#include <stdlib.h>

#include <libpq-fe.h>

#include "config.h"


static inline const char *
pg_env(const char *name, const char *def)
{
    const char  *v = getenv(name);

    return v != NULL && v[0] != '\0' ? v : def;
}


static inline int
pg_env_missing(void)
{
    return getenv("ENCORE_TEST_PGHOST") == NULL;
}


/* a loaded config pointing at the test database and schema */
static inline enc_config_t *
pg_env_config(const char *schema)
{
    char                         err[256];
    enc_config_t                *c;
    static const enc_conf_key_t *tables[] = { enc_runtime_conf_keys, NULL };

    c = enc_config_new(tables);
    if (c == NULL
        || enc_config_load(c, NULL, err, sizeof(err)) != 0
        || enc_config_set(c, "db.host", pg_env("ENCORE_TEST_PGHOST", ""),
                          err, sizeof(err)) != 0
        || enc_config_set(c, "db.port", pg_env("ENCORE_TEST_PGPORT", "5432"),
                          err, sizeof(err)) != 0
        || enc_config_set(c, "db.user", pg_env("ENCORE_TEST_PGUSER",
                                               "postgres"),
                          err, sizeof(err)) != 0
        || enc_config_set(c, "db.name", pg_env("ENCORE_TEST_PGDATABASE",
                                               "postgres"),
                          err, sizeof(err)) != 0
        || enc_config_set(c, "db.schema", schema, err, sizeof(err)) != 0)
    {
        fprintf(stderr, "pg_env: %s\n", err);
        enc_config_free(c);
        return NULL;
    }
    return c;
}


/* a plain libpq connection for setup and inspection */
static inline PGconn *
pg_env_admin(void)
{
    const char  *kw[] = { "host", "port", "user", "dbname", NULL };
    const char  *val[5];

    val[0] = pg_env("ENCORE_TEST_PGHOST", "");
    val[1] = pg_env("ENCORE_TEST_PGPORT", "5432");
    val[2] = pg_env("ENCORE_TEST_PGUSER", "postgres");
    val[3] = pg_env("ENCORE_TEST_PGDATABASE", "postgres");
    val[4] = NULL;
    return PQconnectdbParams(kw, val, 0);
}


static inline int
pg_env_exec(PGconn *conn, const char *sql)
{
    int        ok;
    PGresult  *res = PQexec(conn, sql);

    ok = PQresultStatus(res) == PGRES_COMMAND_OK
         || PQresultStatus(res) == PGRES_TUPLES_OK;
    if (!ok) {
        fprintf(stderr, "pg_env: %s: %s", sql, PQresultErrorMessage(res));
    }
    PQclear(res);
    return ok ? 0 : -1;
}

#endif /* ENC_TEST_PG_ENV_H */
