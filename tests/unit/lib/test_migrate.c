/*
 * migrate: order (runtime first, then the schema's files by name), one
 * transaction per file, recording, idempotence, a failing file stops the
 * run and leaves nothing half-applied.  Skipped unless ENCORE_TEST_PGHOST
 * is set (see pg_env.h).
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "log.h"
#include "migrate.h"
#include "pg_env.h"


static char           schema[64];
static char           dir[128];
static PGconn        *admin;
static enc_config_t  *cfg;


static void
put(const char *sub, const char *name, const char *sql, size_t len)
{
    char   path[512];
    FILE  *f;

    snprintf(path, sizeof(path), "%s/%s", dir, sub);
    (void) mkdir(path, 0700);
    snprintf(path, sizeof(path), "%s/%s/%s", dir, sub, name);
    f = fopen(path, "w");
    assert_non_null(f);
    assert_int_equal(fwrite(sql, 1, len, f), len);
    fclose(f);
}


static void
put_s(const char *sub, const char *name, const char *sql)
{
    put(sub, name, sql, strlen(sql));
}


static int
setup(void **state)
{
    const enc_pg_stmt_t  none[] = { { NULL, NULL, 0 } };

    if (pg_env_missing()) {
        return 0;
    }
    enc_log_init("test", ENC_LOG_ERROR + 1);
    snprintf(schema, sizeof(schema), "enc_migtest_%d", (int) getpid());
    snprintf(dir, sizeof(dir), "/tmp/enc-migtest-%d", (int) getpid());
    assert_int_equal(mkdir(dir, 0700), 0);
    admin = pg_env_admin();
    assert_int_equal(PQstatus(admin), CONNECTION_OK);
    (void) pg_env_exec(admin, "SET client_min_messages = warning");
    cfg = pg_env_config(schema);
    assert_non_null(cfg);
    assert_int_equal(enc_pg_configure(cfg, none), 0);
    return 0;
}


static int
teardown(void **state)
{
    char  cmd[256];

    if (admin != NULL) {
        snprintf(cmd, sizeof(cmd), "DROP SCHEMA IF EXISTS %s CASCADE", schema);
        (void) pg_env_exec(admin, cmd);
        PQfinish(admin);
        snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
        if (system(cmd) != 0) {
            return -1;
        }
    }
    enc_config_free(cfg);
    return 0;
}


static char *
versions(void)
{
    static char  buf[1024];
    char         sql[256];
    PGresult    *res;

    snprintf(sql, sizeof(sql), "SELECT string_agg(version, ',' ORDER BY"
             " applied_at, version) FROM %s.schema_migrations", schema);
    res = PQexec(admin, sql);
    assert_int_equal(PQresultStatus(res), PGRES_TUPLES_OK);
    snprintf(buf, sizeof(buf), "%s", PQgetvalue(res, 0, 0));
    PQclear(res);
    return buf;
}


static void
test_migrate(void **state)
{
    enc_pg_t  *pg;
    PGresult  *res;
    char       sql[256];

    if (pg_env_missing()) {
        skip();
    }
    /* runtime first; the schema's files in name order, whatever the
       directory order; non-.sql files ignored */
    put_s("runtime", "001_rt.sql", "CREATE TABLE rt (x int);");
    put_s(schema, "002_second.sql",
          "INSERT INTO t VALUES (2); INSERT INTO rt VALUES (2);");
    put_s(schema, "001_first.sql", "CREATE TABLE t (x int);"
                                   " INSERT INTO t VALUES (1);");
    put_s(schema, "README.md", "not sql");
    put_s(schema, "010_select.sql", "SELECT 1;");

    pg = enc_pg_connect_new();
    assert_non_null(pg);
    assert_int_equal(enc_migrate(pg, dir, schema), 0);
    /* recorded in order; a file ending in a SELECT still counts */
    assert_string_equal(versions(),
                        "runtime/001_rt.sql,001_first.sql,002_second.sql,"
                        "010_select.sql");

    /* a second run applies nothing again */
    assert_int_equal(enc_migrate(pg, dir, schema), 0);
    snprintf(sql, sizeof(sql), "SELECT count(*) FROM %s.t", schema);
    res = PQexec(admin, sql);
    assert_string_equal(PQgetvalue(res, 0, 0), "2");
    PQclear(res);

    /* a failing file: rolled back whole, not recorded, later ones not run */
    put_s(schema, "020_bad.sql", "INSERT INTO t VALUES (20); SELEC oops;");
    put_s(schema, "030_after.sql", "INSERT INTO t VALUES (30);");
    assert_int_equal(enc_migrate(pg, dir, schema), -1);
    res = PQexec(admin, sql);
    assert_string_equal(PQgetvalue(res, 0, 0), "2");
    PQclear(res);
    assert_null(strstr(versions(), "020"));
    assert_null(strstr(versions(), "030"));

    /* a NUL byte would truncate what PQexec sees: refused */
    put(schema, "020_bad.sql", "INSERT INTO t VALUES (20);\0DROP TABLE t;",
        39);
    assert_int_equal(enc_migrate(pg, dir, schema), -1);

    /* fixed: the rest applies */
    put_s(schema, "020_bad.sql", "INSERT INTO t VALUES (20);");
    assert_int_equal(enc_migrate(pg, dir, schema), 0);
    res = PQexec(admin, sql);
    assert_string_equal(PQgetvalue(res, 0, 0), "4");
    PQclear(res);

    /* the lock was released: another session can take it */
    snprintf(sql, sizeof(sql), "SELECT pg_try_advisory_lock(hashtext("
             "'encore.migrate.%s'))", schema);
    res = PQexec(admin, sql);
    assert_string_equal(PQgetvalue(res, 0, 0), "t");
    PQclear(res);
    (void) pg_env_exec(admin, "SELECT pg_advisory_unlock_all()");

    assert_int_equal(enc_migrate(pg, dir, "Bad-Name"), -1);

    /* a migrations.dir without runtime/ (the worker started elsewhere)
       stops the start instead of leaving the tables missing */
    assert_int_equal(enc_migrate(pg, "/nonexistent/schemas", schema), -1);
    enc_pg_close(pg);
}


int
main(void)
{
    const struct CMUnitTest  tests[] = {
        cmocka_unit_test(test_migrate),
    };

    return cmocka_run_group_tests(tests, setup, teardown);
}
