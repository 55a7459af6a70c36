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
 *
 * Every statement has a deadline, db.statement_timeout_ms by default (see
 * enc_pg_set_timeout): the server gets it as statement_timeout, and the
 * client waits (poll() on the socket) that long plus 200 ms, then cancels
 * the statement and waits one more second.  A statement ended either way
 * is a statement-level error (SQLSTATE 57014) on a healthy connection; a
 * server that does not answer even the cancel costs the connection (NULL,
 * reconnect on next use).  Connections enable TCP keepalives and
 * tcp_user_timeout, so a vanished host is noticed while idle too.
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
   connection stays owned by pg and is in non-blocking mode; PQexec() on it
   still works (it blocks regardless) but has only the server-side
   statement_timeout, no client deadline */
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
/* prepares every configured statement on pg and checks that each
   declares exactly the parameters its SQL uses; 0, or -1 after logging
   each one that fails (workers refuse to start: a wrong count would
   otherwise be a 500 at the first request that runs it) */
int       enc_pg_check_statements(enc_pg_t *pg);
/* the parameter count a configured statement declares, -1 for none */
int       enc_pg_stmt_nparams(const char *stmt);
/* unprepared, parameterised; same contract */
PGresult *enc_pg_exec_sql(enc_pg_t *pg, const char *sql, int n,
                          const char *const *params);
/* sets pg's statement deadline to ms (0 = none), on the server at once
   (SET statement_timeout) and at every reconnect; outside a transaction
   only.  For owners whose statements may legitimately run long
   (migrations); thread connections keep db.statement_timeout_ms */
int  enc_pg_set_timeout(enc_pg_t *pg, long ms);
/* 0 if "SELECT 1" answered within timeout_ms (a client-side deadline
   only, with the cancel and grace above); -1 if not or pg is NULL */
int  enc_pg_ping(enc_pg_t *pg, long timeout_ms);
/* "23505" ...; "" when the result carries none */
const char *enc_pg_sqlstate(const PGresult *res);
int  enc_pg_begin(enc_pg_t *pg);
/* -1 also when the transaction had failed and COMMIT rolled it back.  Like
   any client-side deadline: a COMMIT given up at the deadline (-1) may
   still have committed on the server; idempotent retries (the outbox's
   event ids, the inbox) are what make that safe. */
int  enc_pg_commit(enc_pg_t *pg);
void enc_pg_rollback(enc_pg_t *pg);
/* 1 if s is a plain lower-case identifier, [a-z_][a-z0-9_]{0,62}: safe to
   interpolate into SQL unquoted (schema names) */
int  enc_ident_valid(const char *s);
/* the configured schema, NULL before enc_pg_configure */
const char *enc_pg_schema(void);

#endif /* ENC_PG_H */
