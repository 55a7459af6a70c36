/*
 * pg: PostgreSQL connections (one per thread, or private), lazily prepared
 * statements, transactions.
 *
 * Connections are built from the db.* keys with PQconnectdbParams; the
 * password is read from db.password_file at every connect (so a rotated
 * file is picked up) and never logged; "options=-c search_path=<schema>"
 * makes the statements' unqualified names resolve in the worker's schema.
 *
 * A connection that fails is marked broken; the next use reconnects, but
 * no more often than an exponential backoff allows (100 ms doubling to
 * 5 s), so a request thread fails fast (NULL → 503) while the database is
 * down instead of stalling on connect timeouts.  A connection lost inside
 * a transaction stays failed (every exec returns NULL) until
 * enc_pg_rollback(), so a half-done transaction never silently continues
 * on a fresh session.
 */
#ifndef ENC_PG_H
#define ENC_PG_H

#include <libpq-fe.h>

#include "config.h"

typedef struct {
    const char  *name;
    const char  *sql;
    int          nparams;
} enc_pg_stmt_t;

typedef struct enc_pg_s  enc_pg_t;

/* once at start, before any thread uses pg; stmts end with {NULL} and must
   outlive the process; the config is copied.  db.schema must be a plain
   identifier ([a-z_][a-z0-9_]*); an empty db.user means the schema name */
int  enc_pg_configure(const enc_config_t *c, const enc_pg_stmt_t *stmts);
int  enc_pg_configured(void);
/* this thread's connection (owned by the thread, closed when it exits),
   connecting if needed; NULL if the DB is unreachable (or in backoff) */
enc_pg_t *enc_pg_thread(void);
/* a private connection; NULL if unreachable; free with enc_pg_close.
   Unlike a thread connection (found dead while idle → replaced silently),
   a private one whose session died fails its next statement (NULL), so an
   owner holding session state (advisory lock, LISTEN) notices and
   restarts; the use after that reconnects */
enc_pg_t *enc_pg_connect_new(void);
void      enc_pg_close(enc_pg_t *pg);
/* the live PGconn, reconnecting if needed; NULL while unreachable.  The
   connection stays owned by pg */
PGconn   *enc_pg_conn(enc_pg_t *pg);
/* 1 if the last use found the connection healthy */
int       enc_pg_ok(enc_pg_t *pg);

/* run a prepared statement by name; text params (NULL = SQL NULL).
   Caller PQclear()s the result.  Returns NULL on a connection-level
   failure, after marking the connection for reconnect, or for an unknown
   statement / wrong parameter count (logged).  A statement-level error
   returns the result (check PQresultStatus / enc_pg_sqlstate). */
PGresult *enc_pg_exec(enc_pg_t *pg, const char *stmt, int n,
                      const char *const *params);
/* unprepared, parameterised; same contract */
PGresult *enc_pg_exec_sql(enc_pg_t *pg, const char *sql, int n,
                          const char *const *params);
/* "23505" ...; "" when the result carries none */
const char *enc_pg_sqlstate(const PGresult *res);
int  enc_pg_begin(enc_pg_t *pg);
/* -1 also when the transaction had failed and COMMIT rolled it back */
int  enc_pg_commit(enc_pg_t *pg);
void enc_pg_rollback(enc_pg_t *pg);
/* 1 if s is a plain lower-case identifier, [a-z_][a-z0-9_]{0,62}: safe to
   interpolate into SQL unquoted (schema names) */
int  enc_ident_valid(const char *s);
/* the configured schema, NULL before enc_pg_configure */
const char *enc_pg_schema(void);

#endif /* ENC_PG_H */
