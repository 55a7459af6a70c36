/*
 * migrate: see migrate.h.
 */
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/stat.h>

#include "log.h"
#include "migrate.h"


typedef struct {
    char   **names;
    size_t   n;
} file_list_t;


static int
cmp_names(const void *a, const void *b)
{
    return strcmp(*(char *const *) a, *(char *const *) b);
}


static void
list_free(file_list_t *l)
{
    size_t  i;

    for (i = 0; i < l->n; i++) {
        free(l->names[i]);
    }
    free(l->names);
    l->names = NULL;
    l->n = 0;
}


/* the *.sql files of dir, sorted; a missing dir is an empty list */
static int
list_sql(const char *dir, file_list_t *l)
{
    DIR            *d;
    char          **nn;
    size_t          len, cap = 0;
    struct dirent  *e;

    l->names = NULL;
    l->n = 0;
    d = opendir(dir);
    if (d == NULL) {
        if (errno == ENOENT) {
            return 0;
        }
        enc_log_error("migrate: cannot open \"%s\": %s", dir, strerror(errno));
        return -1;
    }
    while ((e = readdir(d)) != NULL) {
        len = strlen(e->d_name);
        if (e->d_name[0] == '.' || len < 5
            || strcmp(e->d_name + len - 4, ".sql") != 0)
        {
            continue;
        }
        if (l->n == cap) {
            cap = cap ? cap * 2 : 16;
            nn = realloc(l->names, cap * sizeof(char *));
            if (nn == NULL) {
                goto failed;
            }
            l->names = nn;
        }
        l->names[l->n] = strdup(e->d_name);
        if (l->names[l->n] == NULL) {
            goto failed;
        }
        l->n++;
    }
    closedir(d);
    if (l->n > 0) {
        qsort(l->names, l->n, sizeof(char *), cmp_names);
    }
    return 0;

failed:
    closedir(d);
    list_free(l);
    return -1;
}


/* whole file, NUL-terminated; caller frees */
static char *
read_file(const char *path)
{
    char        *buf = NULL;
    FILE        *f;
    struct stat  st;

    f = fopen(path, "r");
    if (f == NULL) {
        enc_log_error("migrate: cannot open \"%s\": %s", path, strerror(errno));
        return NULL;
    }
    if (fstat(fileno(f), &st) != 0 || st.st_size > ENC_MIGRATE_FILE_MAX) {
        enc_log_error("migrate: \"%s\" unreadable or too large", path);
        goto failed;
    }
    buf = malloc((size_t) st.st_size + 1);
    if (buf == NULL
        || fread(buf, 1, (size_t) st.st_size, f) != (size_t) st.st_size)
    {
        enc_log_error("migrate: cannot read \"%s\"", path);
        free(buf);
        buf = NULL;
        goto failed;
    }
    buf[st.st_size] = '\0';
    /* PQexec stops at a NUL: a file with one would apply only its head */
    if (strlen(buf) != (size_t) st.st_size) {
        enc_log_error("migrate: \"%s\" contains a NUL byte", path);
        free(buf);
        buf = NULL;
    }

failed:
    fclose(f);
    return buf;
}


/* runs sql; 0 if it succeeded */
static int
run(enc_pg_t *pg, const char *what, const char *sql, int n,
    const char *const *params)
{
    int             rc;
    PGresult       *res;
    ExecStatusType  st;

    res = enc_pg_exec_sql(pg, sql, n, params);
    if (res == NULL) {
        enc_log_error("migrate: %s: connection lost", what);
        return -1;
    }
    st = PQresultStatus(res);
    rc = (st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK) ? 0 : -1;
    if (rc != 0) {
        enc_log_error("migrate: %s: %s", what, PQresultErrorMessage(res));
    }
    PQclear(res);
    return rc;
}


/* 1 applied, 0 not, -1 error */
static int
applied(enc_pg_t *pg, const char *version)
{
    int          rc;
    PGresult    *res;
    const char  *params[1] = { version };

    res = enc_pg_exec_sql(pg, "SELECT 1 FROM schema_migrations"
                              " WHERE version = $1", 1, params);
    if (res == NULL) {
        return -1;
    }
    rc = PQresultStatus(res) != PGRES_TUPLES_OK ? -1 : PQntuples(res) > 0;
    if (rc < 0) {
        enc_log_error("migrate: %s", PQresultErrorMessage(res));
    }
    PQclear(res);
    return rc;
}


static int
apply_file(enc_pg_t *pg, const char *path, const char *version)
{
    int          rc = -1;
    char        *sql;
    PGresult    *res;
    PGconn      *conn;
    const char  *params[1] = { version };

    sql = read_file(path);
    if (sql == NULL) {
        return -1;
    }
    if (enc_pg_begin(pg) != 0) {
        goto failed;
    }
    /* simple query protocol: a migration is many statements */
    conn = enc_pg_conn(pg);
    res = conn != NULL ? PQexec(conn, sql) : NULL;
    if (res == NULL || (PQresultStatus(res) != PGRES_COMMAND_OK
                        && PQresultStatus(res) != PGRES_TUPLES_OK))
    {
        enc_log_error("migrate: %s failed: %s", path,
                      res ? PQresultErrorMessage(res) : "connection lost");
        PQclear(res);
        enc_pg_rollback(pg);
        goto failed;
    }
    PQclear(res);
    if (run(pg, version, "INSERT INTO schema_migrations (version)"
                         " VALUES ($1)", 1, params) != 0)
    {
        enc_pg_rollback(pg);
        goto failed;
    }
    if (enc_pg_commit(pg) != 0) {
        goto failed;
    }
    enc_log_info("migrate: applied %s", version);
    rc = 0;

failed:
    free(sql);
    return rc;
}


static int
apply_dir(enc_pg_t *pg, const char *dir, const char *sub, const char *prefix)
{
    int          rc = -1, a;
    char         path[4096], version[512];
    size_t       i;
    file_list_t  l;

    snprintf(path, sizeof(path), "%s/%s", dir, sub);
    if (list_sql(path, &l) != 0) {
        return -1;
    }
    for (i = 0; i < l.n; i++) {
        snprintf(version, sizeof(version), "%s%s", prefix, l.names[i]);
        a = applied(pg, version);
        if (a < 0) {
            goto failed;
        }
        if (a == 1) {
            continue;
        }
        snprintf(path, sizeof(path), "%s/%s/%s", dir, sub, l.names[i]);
        if (apply_file(pg, path, version) != 0) {
            goto failed;
        }
    }
    rc = 0;

failed:
    list_free(&l);
    return rc;
}


int
enc_migrate(enc_pg_t *pg, const char *dir, const char *schema)
{
    int          rc = -1;
    char         lock_key[128], sql[256];
    const char  *params[1];

    /* the schema is interpolated into DDL below: identifiers only */
    if (!enc_ident_valid(schema)) {
        enc_log_error("migrate: invalid schema name \"%s\"", schema);
        return -1;
    }

    /* without runtime/ there is no outbox or inbox: a wrong migrations.dir
       (a worker started from another directory) must stop the start, not
       leave every statement failing later with "relation does not exist" */
    snprintf(sql, sizeof(sql), "%s/runtime", dir);
    if (access(sql, R_OK | X_OK) != 0) {
        enc_log_error("migrate: no migrations in \"%s\" (%s); set"
                      " migrations.dir to the checkout's schemas/ directory"
                      " or run the worker from the checkout", sql,
                      strerror(errno));
        return -1;
    }

    snprintf(lock_key, sizeof(lock_key), "encore.migrate.%s", schema);
    params[0] = lock_key;
    if (run(pg, "lock", "SELECT pg_advisory_lock(hashtext($1))", 1, params)
        != 0)
    {
        return -1;
    }

    /* CREATE SCHEMA needs CREATE on the database even with IF NOT EXISTS,
       so ask first: the bootstrap usually created it for the role */
    snprintf(sql, sizeof(sql), "DO $$BEGIN IF to_regnamespace('%s') IS NULL"
             " THEN CREATE SCHEMA %s; END IF; END$$", schema, schema);
    if (run(pg, "create schema", sql, 0, NULL) != 0) {
        goto failed;
    }
    snprintf(sql, sizeof(sql), "CREATE TABLE IF NOT EXISTS %s.schema_migrations"
             " (version text PRIMARY KEY,"
             " applied_at timestamptz NOT NULL DEFAULT now())", schema);
    if (run(pg, "schema_migrations", sql, 0, NULL) != 0) {
        goto failed;
    }
    /* the connection's search_path already names the schema; set it again
       in case the caller's connection was made for another one */
    snprintf(sql, sizeof(sql), "SET search_path = %s", schema);
    if (run(pg, "search_path", sql, 0, NULL) != 0) {
        goto failed;
    }

    if (apply_dir(pg, dir, "runtime", "runtime/") != 0
        || apply_dir(pg, dir, schema, "") != 0)
    {
        goto failed;
    }
    rc = 0;

failed:
    params[0] = lock_key;
    (void) run(pg, "unlock", "SELECT pg_advisory_unlock(hashtext($1))", 1,
               params);
    return rc;
}
