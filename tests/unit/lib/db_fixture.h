/*
 * db_fixture.h — an optional PostgreSQL for the outbox and consumer unit
 * tests.  Header-only (static functions), included by the test files that
 * need it.
 *
 * Tests using it are skipped unless ENCORE_TEST_PGHOST is set (a host or a
 * socket directory); ENCORE_TEST_PGPORT (5432), ENCORE_TEST_PGUSER
 * (postgres) and ENCORE_TEST_PGDATABASE (postgres) complete it.  The user
 * must be allowed to create schemas; trust or a ~/.pgpass is assumed.
 *
 * Each test process gets a fresh schema "<prefix>_<pid>" holding the
 * runtime tables (schemas/runtime/001_outbox_inbox.sql, found relative to
 * ENCORE_TEST_SRCDIR or the current directory), dropped at the end.
 */
#ifndef ENC_TEST_DB_FIXTURE_H
#define ENC_TEST_DB_FIXTURE_H

#include <glob.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <libpq-fe.h>

#include "config.h"
#include "pg.h"


typedef struct {
    enc_config_t  *conf;
    PGconn        *admin;
    char           schema[64];
} db_fixture_t;


static int
db_fixture_skip(void)
{
    return getenv("ENCORE_TEST_PGHOST") == NULL;
}


static const char *
db_env(const char *name, const char *def)
{
    const char  *v = getenv(name);

    return v != NULL && v[0] != '\0' ? v : def;
}


static char *
db_read_file(const char *path)
{
    long   n;
    char  *buf;
    FILE  *f;

    f = fopen(path, "r");
    if (f == NULL) {
        return NULL;
    }
    if (fseek(f, 0, SEEK_END) != 0 || (n = ftell(f)) < 0
        || fseek(f, 0, SEEK_SET) != 0)
    {
        fclose(f);
        return NULL;
    }
    buf = malloc((size_t) n + 1);
    if (buf != NULL && fread(buf, 1, (size_t) n, f) != (size_t) n) {
        free(buf);
        buf = NULL;
    }
    if (buf != NULL) {
        buf[n] = '\0';
    }
    fclose(f);
    return buf;
}


static void
db_admin_exec(PGconn *conn, const char *sql)
{
    PGresult  *res;

    res = PQexec(conn, sql);
    if (PQresultStatus(res) != PGRES_COMMAND_OK
        && PQresultStatus(res) != PGRES_TUPLES_OK)
    {
        fail_msg("fixture sql failed: %s", PQresultErrorMessage(res));
    }
    PQclear(res);
}


/* Creates the schema, applies the runtime migration, configures pg.c and
   returns a config pointing at it and at `brokers`.  enc_pg_configure runs
   once per process, so call this once per test binary. */
static void
db_fixture_init(db_fixture_t *fx, const char *prefix, const char *brokers)
{
    char                  path[1024], sql[320], err[256];
    char                 *ddl;
    size_t                i;
    glob_t                migrations;
    const char           *kw[5], *val[5];
    static const enc_pg_stmt_t   no_stmts[] = { { NULL, NULL, 0 } };
    static const enc_conf_key_t *tables[] = { enc_runtime_conf_keys, NULL };

    (void) snprintf(fx->schema, sizeof(fx->schema), "%s_%d", prefix,
                    (int) getpid());

    kw[0] = "host";     val[0] = db_env("ENCORE_TEST_PGHOST", NULL);
    kw[1] = "port";     val[1] = db_env("ENCORE_TEST_PGPORT", "5432");
    kw[2] = "user";     val[2] = db_env("ENCORE_TEST_PGUSER", "postgres");
    kw[3] = "dbname";   val[3] = db_env("ENCORE_TEST_PGDATABASE", "postgres");
    kw[4] = NULL;       val[4] = NULL;

    fx->admin = PQconnectdbParams(kw, val, 0);
    if (PQstatus(fx->admin) != CONNECTION_OK) {
        fail_msg("fixture: %s", PQerrorMessage(fx->admin));
    }

    (void) snprintf(sql, sizeof(sql), "SET client_min_messages = warning;"
                    " DROP SCHEMA IF EXISTS %s CASCADE;"
                    " CREATE SCHEMA %s; SET search_path = %s",
                    fx->schema, fx->schema, fx->schema);
    db_admin_exec(fx->admin, sql);

    /* every runtime migration, in order, as enc_migrate applies them */
    (void) snprintf(path, sizeof(path), "%s/schemas/runtime/*.sql",
                    db_env("ENCORE_TEST_SRCDIR", "."));
    if (glob(path, 0, NULL, &migrations) != 0) {
        fail_msg("fixture: no migrations match %s", path);
    }
    for (i = 0; i < migrations.gl_pathc; i++) {
        ddl = db_read_file(migrations.gl_pathv[i]);
        if (ddl == NULL) {
            fail_msg("fixture: cannot read %s", migrations.gl_pathv[i]);
        }
        db_admin_exec(fx->admin, ddl);
        free(ddl);
    }
    globfree(&migrations);

    fx->conf = enc_config_new(tables);
    assert_non_null(fx->conf);
    if (enc_config_load(fx->conf, NULL, err, sizeof(err)) != 0
        || enc_config_set(fx->conf, "db.host", val[0], err, sizeof(err))
        || enc_config_set(fx->conf, "db.port", val[1], err, sizeof(err))
        || enc_config_set(fx->conf, "db.user", val[2], err, sizeof(err))
        || enc_config_set(fx->conf, "db.name", val[3], err, sizeof(err))
        || enc_config_set(fx->conf, "db.password_file", "", err,
                          sizeof(err))
        || enc_config_set(fx->conf, "db.schema", fx->schema, err,
                          sizeof(err))
        || enc_config_set(fx->conf, "kafka.brokers", brokers, err,
                          sizeof(err))
        || enc_config_set(fx->conf, "outbox.poll_ms", "100", err,
                          sizeof(err))
        || enc_config_set(fx->conf, "consumer.group", fx->schema, err,
                          sizeof(err)))
    {
        fail_msg("fixture config: %s", err);
    }

    if (enc_pg_configure(fx->conf, no_stmts) != 0) {
        fail_msg("fixture: enc_pg_configure failed");
    }
}


static void
db_fixture_fini(db_fixture_t *fx)
{
    char  sql[128];

    (void) snprintf(sql, sizeof(sql), "DROP SCHEMA IF EXISTS %s CASCADE",
                    fx->schema);
    db_admin_exec(fx->admin, sql);
    PQfinish(fx->admin);
    enc_config_free(fx->conf);
}

#endif /* ENC_TEST_DB_FIXTURE_H */
