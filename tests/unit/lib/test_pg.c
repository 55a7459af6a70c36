/*
 * pg: prepared statements, sqlstate, transactions, reconnect after the
 * backend is killed, no silent reconnect inside a transaction, statement
 * deadlines against a slow and a stalled server, /readyz with a stalled
 * database.  Skipped unless ENCORE_TEST_PGHOST is set (see pg_env.h); the
 * stalled-server tests also need to signal the server's processes (a
 * local cluster, run as root or as its owner) and are skipped otherwise.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "http.h"
#include "log.h"
#include "metrics.h"
#include "pg.h"
#include "pg_env.h"
#include "raw_http.h"


static const enc_pg_stmt_t  stmts[] = {
    { "ins", "INSERT INTO items (id, name) VALUES ($1::int, $2)", 2 },
    { "get", "SELECT name FROM items WHERE id = $1::int", 1 },
    { "bad", "SELEC nonsense", 0 },
    { "pid", "SELECT pg_backend_pid()", 0 },
    { "sleep", "SELECT pg_sleep($1::float8)", 1 },
    /* never run: what enc_pg_check_statements refuses besides "bad" */
    { "too_many", "SELECT $1::int", 2 },
    { "too_few", "SELECT $1::int + $2::int", 1 },
    { NULL, NULL, 0 }
};

static char           schema[64];
static PGconn        *admin;
static enc_config_t  *cfg;


static int
setup(void **state)
{
    char  sql[512];

    if (pg_env_missing()) {
        return 0;
    }
    enc_log_init("test", ENC_LOG_ERROR + 1);
    snprintf(schema, sizeof(schema), "enc_pgtest_%d", (int) getpid());
    admin = pg_env_admin();
    assert_int_equal(PQstatus(admin), CONNECTION_OK);
    snprintf(sql, sizeof(sql), "DROP SCHEMA IF EXISTS %s CASCADE;"
             " CREATE SCHEMA %s; CREATE TABLE %s.items"
             " (id int PRIMARY KEY, name text)", schema, schema, schema);
    assert_int_equal(pg_env_exec(admin, sql), 0);
    cfg = pg_env_config(schema);
    assert_non_null(cfg);
    /* short, so that the deadline tests are quick */
    assert_int_equal(enc_config_set(cfg, "db.statement_timeout_ms", "500",
                                    sql, sizeof(sql)), 0);
    assert_int_equal(enc_pg_configure(cfg, stmts), 0);
    return 0;
}


/* server processes a test stopped, resumed by resume_all() whatever
   happens: a failing assertion, or the watchdog */
static pid_t                  stopped[64];
static volatile sig_atomic_t  nstopped;


static void
resume_all(void)
{
    while (nstopped > 0) {
        (void) kill(stopped[--nstopped], SIGCONT);
    }
}


static void
watchdog(int sig)
{
    static const char  msg[] = "test_pg: watchdog: a statement hung\n";

    resume_all();
    (void) !write(2, msg, sizeof(msg) - 1);
    _exit(1);
}


static void
stop_pid(pid_t pid)
{
    assert_true((size_t) nstopped < sizeof(stopped) / sizeof(stopped[0]));
    stopped[nstopped++] = pid;
    assert_int_equal(kill(pid, SIGSTOP), 0);
}


/* the postmaster: the backend's parent, from /proc/<pid>/stat */
static pid_t
parent_of(pid_t pid)
{
    int    ppid = -1;
    char   path[64], buf[512], *p;
    FILE  *f;

    snprintf(path, sizeof(path), "/proc/%d/stat", (int) pid);
    f = fopen(path, "r");
    if (f == NULL) {
        return -1;
    }
    if (fgets(buf, sizeof(buf), f) != NULL
        && (p = strrchr(buf, ')')) != NULL)
    {
        (void) sscanf(p + 1, " %*c %d", &ppid);
    }
    fclose(f);
    return (pid_t) ppid;
}


static pid_t
backend_pid(enc_pg_t *pg)
{
    pid_t      pid;
    PGresult  *res = enc_pg_exec(pg, "pid", 0, NULL);

    assert_non_null(res);
    pid = (pid_t) atoi(PQgetvalue(res, 0, 0));
    PQclear(res);
    return pid;
}


static long
elapsed_ms(const struct timespec *t0)
{
    return raw_ms_since(t0);
}


static int
teardown(void **state)
{
    char  sql[128];

    resume_all();
    if (admin != NULL) {
        snprintf(sql, sizeof(sql), "DROP SCHEMA IF EXISTS %s CASCADE", schema);
        (void) pg_env_exec(admin, sql);
        PQfinish(admin);
    }
    enc_config_free(cfg);
    return 0;
}


static void
kill_backend(enc_pg_t *pg)
{
    char       sql[128];
    PGresult  *res = enc_pg_exec(pg, "pid", 0, NULL);

    assert_non_null(res);
    snprintf(sql, sizeof(sql), "SELECT pg_terminate_backend(%s)",
             PQgetvalue(res, 0, 0));
    PQclear(res);
    assert_int_equal(pg_env_exec(admin, sql), 0);
    usleep(50 * 1000);
}


static void
test_statements(void **state)
{
    enc_pg_t    *pg;
    PGresult    *res;
    const char  *p[2];

    if (pg_env_missing()) {
        skip();
    }
    assert_string_equal(enc_pg_schema(), schema);
    pg = enc_pg_thread();
    assert_non_null(pg);
    assert_ptr_equal(enc_pg_thread(), pg);       /* one per thread */

    p[0] = "1";
    p[1] = "one";
    res = enc_pg_exec(pg, "ins", 2, p);
    assert_int_equal(PQresultStatus(res), PGRES_COMMAND_OK);
    assert_string_equal(enc_pg_sqlstate(res), "");
    PQclear(res);

    res = enc_pg_exec(pg, "ins", 2, p);          /* duplicate */
    assert_int_equal(PQresultStatus(res), PGRES_FATAL_ERROR);
    assert_string_equal(enc_pg_sqlstate(res), "23505");
    PQclear(res);

    res = enc_pg_exec(pg, "get", 1, p);
    assert_int_equal(PQntuples(res), 1);
    assert_string_equal(PQgetvalue(res, 0, 0), "one");
    PQclear(res);

    assert_null(enc_pg_exec(pg, "nope", 0, NULL));
    assert_null(enc_pg_exec(pg, "get", 2, p));
    res = enc_pg_exec(pg, "bad", 0, NULL);        /* statement-level */
    assert_non_null(res);
    assert_string_equal(enc_pg_sqlstate(res), "42601");
    PQclear(res);
    assert_true(enc_pg_ok(pg));

    /* NULL parameter = SQL NULL */
    p[0] = "2";
    p[1] = NULL;
    res = enc_pg_exec(pg, "ins", 2, p);
    assert_int_equal(PQresultStatus(res), PGRES_COMMAND_OK);
    PQclear(res);
}


/* encore_pg_statement_duration_seconds_count as rendered, -1 if absent */
static long
statements_timed(void)
{
    long     v = -1;
    char    *buf = NULL, *at;
    size_t   len = 0;
    FILE    *f;

    f = open_memstream(&buf, &len);
    assert_non_null(f);
    enc_metrics_render(f);
    assert_int_equal(fclose(f), 0);
    at = strstr(buf, "\nencore_pg_statement_duration_seconds_count ");
    if (at != NULL) {
        v = strtol(strchr(at + 1, ' ') + 1, NULL, 10);
    }
    free(buf);
    return v;
}


/* every statement sent is an observation of the statement time histogram,
   a failed one too; one refused before sending is not */
static void
test_statements_are_timed(void **state)
{
    enc_pg_t    *pg;
    PGresult    *res;
    const char  *p[1] = { "1" };

    if (pg_env_missing()) {
        skip();
    }
    pg = enc_pg_thread();
    assert_non_null(pg);
    PQclear(enc_pg_exec(pg, "get", 1, p));      /* prepared, connected */

    enc_metrics_reset();
    assert_int_equal(statements_timed(), -1);
    res = enc_pg_exec(pg, "get", 1, p);
    assert_int_equal(PQresultStatus(res), PGRES_TUPLES_OK);
    PQclear(res);
    assert_int_equal(statements_timed(), 1);
    res = enc_pg_exec_sql(pg, "SELECT pg_sleep(0.03)", 0, NULL);
    assert_int_equal(PQresultStatus(res), PGRES_TUPLES_OK);
    PQclear(res);
    assert_int_equal(statements_timed(), 2);
    res = enc_pg_exec(pg, "bad", 0, NULL);      /* fails to prepare */
    assert_non_null(res);
    PQclear(res);
    assert_int_equal(statements_timed(), 3);
    assert_null(enc_pg_exec(pg, "nope", 0, NULL));
    assert_int_equal(statements_timed(), 3);
    assert_int_equal(enc_pg_begin(pg), 0);
    assert_int_equal(enc_pg_commit(pg), 0);
    assert_int_equal(statements_timed(), 5);
}


/* the start-up check names each statement whose SQL does not prepare or
   uses another number of parameters than it declares, and only those */
static void
test_check_statements(void **state)
{
    int        fd;
    char       log[4096];
    ssize_t    n;
    enc_pg_t  *pg;
    char       path[] = "/tmp/enc-test-pg-log-XXXXXX";

    if (pg_env_missing()) {
        skip();
    }
    fd = mkstemp(path);
    assert_true(fd >= 0);
    unlink(path);
    enc_log_init("test", ENC_LOG_ERROR);
    enc_log_set_fd(fd);

    pg = enc_pg_connect_new();
    assert_non_null(pg);
    assert_int_equal(enc_pg_check_statements(pg), -1);
    enc_pg_close(pg);

    enc_log_init("test", ENC_LOG_ERROR + 1);
    enc_log_set_fd(2);
    n = pread(fd, log, sizeof(log) - 1, 0);
    close(fd);
    assert_true(n > 0);
    log[n] = '\0';
    assert_non_null(strstr(log, "\\\"bad\\\" does not prepare"));
    assert_non_null(strstr(log, "\\\"too_many\\\" declares 2 parameters but "
                              "its SQL uses 1"));
    assert_non_null(strstr(log, "\\\"too_few\\\" declares 1 parameters but "
                              "its SQL uses 2"));
    assert_null(strstr(log, "\\\"ins\\\""));
    assert_null(strstr(log, "\\\"sleep\\\""));
}


static void
test_transactions(void **state)
{
    enc_pg_t    *pg;
    PGresult    *res;
    const char  *p[2] = { "10", "ten" };

    if (pg_env_missing()) {
        skip();
    }
    pg = enc_pg_thread();
    assert_non_null(pg);

    assert_int_equal(enc_pg_begin(pg), 0);
    assert_int_equal(enc_pg_begin(pg), -1);       /* nested */
    PQclear(enc_pg_exec(pg, "ins", 2, p));
    enc_pg_rollback(pg);
    res = enc_pg_exec(pg, "get", 1, p);
    assert_int_equal(PQntuples(res), 0);
    PQclear(res);

    /* a failed statement makes COMMIT fail (and roll back) */
    assert_int_equal(enc_pg_begin(pg), 0);
    PQclear(enc_pg_exec(pg, "ins", 2, p));
    PQclear(enc_pg_exec(pg, "bad", 0, NULL));
    assert_int_equal(enc_pg_commit(pg), -1);
    res = enc_pg_exec(pg, "get", 1, p);
    assert_int_equal(PQntuples(res), 0);
    PQclear(res);

    assert_int_equal(enc_pg_begin(pg), 0);
    PQclear(enc_pg_exec(pg, "ins", 2, p));
    assert_int_equal(enc_pg_commit(pg), 0);
    res = enc_pg_exec(pg, "get", 1, p);
    assert_int_equal(PQntuples(res), 1);
    PQclear(res);
    assert_int_equal(enc_pg_commit(pg), -1);      /* none open */

    /* a transaction left open is rolled back by the next enc_pg_thread */
    p[0] = "11";
    assert_int_equal(enc_pg_begin(pg), 0);
    PQclear(enc_pg_exec(pg, "ins", 2, p));
    pg = enc_pg_thread();
    res = enc_pg_exec(pg, "get", 1, p);
    assert_int_equal(PQntuples(res), 0);
    PQclear(res);
}


static void
test_reconnect(void **state)
{
    enc_pg_t    *pg;
    PGresult    *res;
    const char  *p[2] = { "1", NULL };
    int          i;

    if (pg_env_missing()) {
        skip();
    }
    pg = enc_pg_thread();
    assert_non_null(pg);

    /* idle thread connection: found dead before use, replaced silently */
    kill_backend(pg);
    res = enc_pg_exec(pg, "get", 1, p);
    assert_non_null(res);
    assert_int_equal(PQntuples(res), 1);
    PQclear(res);
    assert_true(enc_pg_ok(pg));

    /* lost under a statement: connection-level failure */
    assert_int_equal(enc_pg_begin(pg), 0);
    kill_backend(pg);
    assert_null(enc_pg_exec(pg, "get", 1, p));
    assert_false(enc_pg_ok(pg));
    enc_pg_rollback(pg);

    /* the next uses reconnect (after a short backoff) and re-prepare */
    res = NULL;
    for (i = 0; i < 50 && res == NULL; i++) {
        res = enc_pg_exec(pg, "get", 1, p);
        if (res == NULL) {
            usleep(20 * 1000);
        }
    }
    assert_non_null(res);
    assert_int_equal(PQntuples(res), 1);
    PQclear(res);

    /* inside a transaction: no silent reconnect until rollback */
    assert_int_equal(enc_pg_begin(pg), 0);
    kill_backend(pg);
    assert_null(enc_pg_exec(pg, "get", 1, p));
    usleep(300 * 1000);
    assert_null(enc_pg_exec(pg, "get", 1, p));
    assert_null(enc_pg_exec_sql(pg, "SELECT 1", 0, NULL));
    assert_int_equal(enc_pg_commit(pg), -1);
    res = NULL;
    for (i = 0; i < 50 && res == NULL; i++) {
        res = enc_pg_exec(pg, "get", 1, p);
        if (res == NULL) {
            usleep(20 * 1000);
        }
    }
    assert_non_null(res);
    PQclear(res);
}


static void
test_private_connection(void **state)
{
    enc_pg_t  *pg;
    PGresult  *res;

    if (pg_env_missing()) {
        skip();
    }
    pg = enc_pg_connect_new();
    assert_non_null(pg);
    assert_ptr_not_equal(pg, enc_pg_thread());
    assert_non_null(enc_pg_conn(pg));
    res = enc_pg_exec_sql(pg, "SELECT current_schema()", 0, NULL);
    assert_string_equal(PQgetvalue(res, 0, 0), schema);
    PQclear(res);
    enc_pg_close(pg);
}


/*
 * Review finding: the idle check silently reconnected private connections
 * too, so the outbox relay would have carried on without its advisory lock
 * and LISTEN (two relays publishing).  A private connection whose backend
 * died must fail its next statement; the owner restarts its session.
 */
static void
test_private_no_silent_reconnect(void **state)
{
    enc_pg_t  *pg;
    PGresult  *res;

    if (pg_env_missing()) {
        skip();
    }
    pg = enc_pg_connect_new();
    assert_non_null(pg);
    kill_backend(pg);
    assert_null(enc_pg_exec_sql(pg, "SELECT 1", 0, NULL));
    assert_false(enc_pg_ok(pg));

    /* the thread connection, idle meanwhile, still recovers by itself */
    kill_backend(enc_pg_thread());
    res = enc_pg_exec_sql(enc_pg_thread(), "SELECT 1", 0, NULL);
    assert_non_null(res);
    PQclear(res);
    enc_pg_close(pg);
}


/* ms since t0, once res is checked to be a cancelled statement's error
   (57014 query_canceled); res is freed */
static long
expect_cancelled(PGresult *res, const struct timespec *t0)
{
    long  el = elapsed_ms(t0);

    assert_non_null(res);
    assert_string_equal(enc_pg_sqlstate(res), "57014");
    PQclear(res);
    return el;
}


static void
test_statement_timeout_server(void **state)
{
    long              el;
    pid_t             pid;
    enc_pg_t         *pg;
    PGresult         *res;
    const char       *p[1] = { "30" };
    PQconninfoOption *ci, *o;
    struct timespec   t0;
    int               seen = 0;

    if (pg_env_missing()) {
        skip();
    }
    pg = enc_pg_thread();
    assert_non_null(pg);
    res = enc_pg_exec_sql(pg, "SHOW statement_timeout", 0, NULL);
    assert_non_null(res);
    assert_string_equal(PQgetvalue(res, 0, 0), "500ms");
    PQclear(res);

    /* the server ends a slow statement itself; the session lives on */
    pid = backend_pid(pg);
    (void) clock_gettime(CLOCK_MONOTONIC, &t0);
    el = expect_cancelled(enc_pg_exec(pg, "sleep", 1, p), &t0);
    assert_true(el < 5000);
    assert_true(enc_pg_ok(pg));
    assert_int_equal(backend_pid(pg), pid);

    /* TCP keepalives and tcp_user_timeout are asked for (libpq applies
       them to TCP connections only) */
    ci = PQconninfo(enc_pg_conn(pg));
    assert_non_null(ci);
    for (o = ci; o->keyword != NULL; o++) {
        if (o->val == NULL) {
            continue;
        }
        if ((strcmp(o->keyword, "keepalives") == 0
             && strcmp(o->val, "1") == 0)
            || (strcmp(o->keyword, "tcp_user_timeout") == 0
                && atoi(o->val) > 0)
            || (strcmp(o->keyword, "keepalives_idle") == 0
                && atoi(o->val) > 0))
        {
            seen++;
        }
    }
    PQconninfoFree(ci);
    assert_int_equal(seen, 3);
}


/*
 * Review finding: statements ran with a blocking PQexecParams and no
 * deadline, so a server that did not answer held the pool thread (and the
 * drain) for ever.  With the server's own timeout switched off, the
 * client's deadline must cancel the statement and keep the session.
 */
static void
test_statement_deadline_client(void **state)
{
    long              el;
    pid_t             pid;
    enc_pg_t         *pg;
    PGresult         *res;
    const char       *p[1] = { "30" };
    struct timespec   t0;

    if (pg_env_missing()) {
        skip();
    }
    pg = enc_pg_connect_new();
    assert_non_null(pg);
    res = enc_pg_exec_sql(pg, "SET statement_timeout = 0", 0, NULL);
    assert_int_equal(PQresultStatus(res), PGRES_COMMAND_OK);
    PQclear(res);
    pid = backend_pid(pg);

    (void) clock_gettime(CLOCK_MONOTONIC, &t0);
    el = expect_cancelled(enc_pg_exec_sql(pg, "SELECT pg_sleep(30)", 0,
                                          NULL), &t0);
    assert_true(el >= 500 && el < 5000);

    /* prepared statements go the same way */
    (void) clock_gettime(CLOCK_MONOTONIC, &t0);
    el = expect_cancelled(enc_pg_exec(pg, "sleep", 1, p), &t0);
    assert_true(el < 5000);

    /* the same session, usable */
    assert_true(enc_pg_ok(pg));
    assert_int_equal(backend_pid(pg), pid);
    enc_pg_close(pg);
}


/* migrations get their own deadline, kept across a reconnect */
static void
test_set_timeout(void **state)
{
    int        i;
    enc_pg_t  *pg;
    PGresult  *res;

    if (pg_env_missing()) {
        skip();
    }
    pg = enc_pg_connect_new();
    assert_non_null(pg);
    assert_int_equal(enc_pg_set_timeout(pg, 2000), 0);
    res = enc_pg_exec_sql(pg, "SHOW statement_timeout", 0, NULL);
    assert_string_equal(PQgetvalue(res, 0, 0), "2s");
    PQclear(res);

    kill_backend(pg);
    assert_null(enc_pg_exec_sql(pg, "SELECT 1", 0, NULL));
    res = NULL;
    for (i = 0; i < 50 && res == NULL; i++) {
        res = enc_pg_exec_sql(pg, "SHOW statement_timeout", 0, NULL);
        if (res == NULL) {
            usleep(20 * 1000);
        }
    }
    assert_non_null(res);
    assert_string_equal(PQgetvalue(res, 0, 0), "2s");
    PQclear(res);

    assert_int_equal(enc_pg_set_timeout(pg, 0), 0);
    res = enc_pg_exec_sql(pg, "SHOW statement_timeout", 0, NULL);
    assert_string_equal(PQgetvalue(res, 0, 0), "0");
    PQclear(res);

    assert_int_equal(enc_pg_begin(pg), 0);
    assert_int_equal(enc_pg_set_timeout(pg, 1000), -1);
    enc_pg_rollback(pg);
    enc_pg_close(pg);
}


/* 1 if this process may stop the server's processes */
static int
can_stop(pid_t pid)
{
    return pid > 0 && kill(pid, 0) == 0 && parent_of(pid) > 1
           && kill(parent_of(pid), 0) == 0;
}


/*
 * A stalled server: the backend stopped (the cancel is delivered but not
 * acted on), then the postmaster too (the cancel request itself hangs).
 * Either way the statement returns NULL within the deadline and the
 * grace, and the connection works again once the server is back.
 */
static void
test_stalled_server(void **state)
{
    int               i;
    long              el1, el2;
    pid_t             b1, b2;
    enc_pg_t         *pg1, *pg2;
    PGresult         *res1, *res2;
    struct timespec   t0;

    if (pg_env_missing()) {
        skip();
    }
    pg1 = enc_pg_connect_new();
    pg2 = enc_pg_connect_new();
    assert_non_null(pg1);
    assert_non_null(pg2);
    b1 = backend_pid(pg1);
    b2 = backend_pid(pg2);
    if (!can_stop(b1)) {
        enc_pg_close(pg1);
        enc_pg_close(pg2);
        skip();
    }

    (void) signal(SIGALRM, watchdog);
    (void) alarm(30);
    stop_pid(b1);
    (void) clock_gettime(CLOCK_MONOTONIC, &t0);
    res1 = enc_pg_exec_sql(pg1, "SELECT 1", 0, NULL);
    el1 = elapsed_ms(&t0);

    stop_pid(parent_of(b2));
    stop_pid(b2);
    (void) clock_gettime(CLOCK_MONOTONIC, &t0);
    res2 = enc_pg_exec_sql(pg2, "SELECT 1", 0, NULL);
    el2 = elapsed_ms(&t0);
    resume_all();
    (void) alarm(0);

    assert_null(res1);
    assert_null(res2);
    assert_true(el1 < 5000);
    assert_true(el2 < 5000);
    assert_false(enc_pg_ok(pg1));
    assert_false(enc_pg_ok(pg2));

    /* back: the next uses reconnect (after a short backoff) */
    res1 = res2 = NULL;
    for (i = 0; i < 100 && (res1 == NULL || res2 == NULL); i++) {
        if (res1 == NULL) {
            res1 = enc_pg_exec_sql(pg1, "SELECT 1", 0, NULL);
        }
        if (res2 == NULL) {
            res2 = enc_pg_exec_sql(pg2, "SELECT 1", 0, NULL);
        }
        if (res1 == NULL || res2 == NULL) {
            usleep(50 * 1000);
        }
    }
    assert_non_null(res1);
    assert_non_null(res2);
    PQclear(res1);
    PQclear(res2);
    enc_pg_close(pg1);
    enc_pg_close(pg2);
}


/* the server's own timeout off, so that the client's deadline (500 ms
   configured, + 200) is what ends a statement */
static enc_pg_t *
client_deadline_only(void)
{
    enc_pg_t  *pg;
    PGresult  *res;

    pg = enc_pg_connect_new();
    assert_non_null(pg);
    res = enc_pg_exec_sql(pg, "SET statement_timeout = 0", 0, NULL);
    assert_int_equal(PQresultStatus(res), PGRES_COMMAND_OK);
    PQclear(res);
    return pg;
}


/* client_deadline_only(), with its backend's pid in *backend and the
   watchdog armed, when this process may stop the server's processes;
   else NULL (the test skips) */
static enc_pg_t *
stoppable_session(pid_t *backend)
{
    enc_pg_t  *pg;

    pg = client_deadline_only();
    *backend = backend_pid(pg);
    if (!can_stop(*backend)) {
        enc_pg_close(pg);
        return NULL;
    }
    (void) signal(SIGALRM, watchdog);
    (void) alarm(30);
    return pg;
}


/*
 * Review finding: a statement that answered after its cancel was sent but
 * before the postmaster took it kept its connection, and the late cancel
 * then killed the next, unrelated statement (57014).  The connection is
 * given up instead: the next statement runs on a fresh session.
 */
static void
test_late_cancel_spares_the_next_statement(void **state)
{
    pid_t      b;
    enc_pg_t  *pg;
    PGresult  *res;

    if (pg_env_missing() || (pg = stoppable_session(&b)) == NULL) {
        skip();
    }
    /* the cancel cannot be taken: the postmaster is stopped; the backend
       answers 200 ms into the grace */
    stop_pid(parent_of(b));
    res = enc_pg_exec_sql(pg, "SELECT pg_sleep(0.9)", 0, NULL);
    assert_non_null(res);
    assert_int_equal(PQresultStatus(res), PGRES_TUPLES_OK);
    PQclear(res);
    resume_all();
    (void) alarm(0);

    /* the cancel is delivered now; it must not hit this (shorter than
       the reconnected session's own 500 ms statement_timeout) */
    res = enc_pg_exec_sql(pg, "SELECT pg_sleep(0.3)", 0, NULL);
    assert_non_null(res);
    assert_int_equal(PQresultStatus(res), PGRES_TUPLES_OK);
    PQclear(res);
    assert_int_not_equal(backend_pid(pg), b);
    enc_pg_close(pg);
}


/*
 * Review finding: a connection given up at the deadline stayed open until
 * its thread's next statement, so the server kept the session "idle in
 * transaction" with its locks.  It is closed at once: the server ends the
 * session and rolls back.
 */
static void
test_given_up_connection_is_closed(void **state)
{
    int        i, left = 1;
    char       sql[96];
    pid_t      b;
    PGconn    *admin;
    enc_pg_t  *pg;
    PGresult  *res;

    if (pg_env_missing() || (pg = stoppable_session(&b)) == NULL) {
        skip();
    }
    assert_int_equal(enc_pg_begin(pg), 0);
    stop_pid(parent_of(b));
    res = enc_pg_exec_sql(pg, "SELECT pg_sleep(2)", 0, NULL);
    assert_null(res);
    resume_all();
    (void) alarm(0);
    enc_pg_rollback(pg);

    /* the backend ends once pg_sleep returns and finds no client */
    admin = pg_env_admin();
    assert_int_equal(PQstatus(admin), CONNECTION_OK);
    snprintf(sql, sizeof(sql), "SELECT count(*) FROM pg_stat_activity"
             " WHERE pid = %d", (int) b);
    for (i = 0; i < 100 && left > 0; i++) {
        res = PQexec(admin, sql);
        left = atoi(PQgetvalue(res, 0, 0));
        PQclear(res);
        if (left > 0) {
            usleep(50 * 1000);
        }
    }
    PQfinish(admin);
    assert_int_equal(left, 0);
    enc_pg_close(pg);
}


static int
http_get(const char *sock, const char *path, long ms)
{
    int   fd, status;
    char  buf[4096];

    fd = raw_connect(sock);
    if (fd < 0) {
        return -1;
    }
    status = raw_send_get(fd, path) == 0
             ? raw_response(fd, buf, sizeof(buf), ms) : -1;
    close(fd);
    return status;
}


/*
 * Review finding: /readyz ran SELECT 1 with no deadline, so a stalled
 * database hung it (and the pool thread) instead of reporting not ready.
 * /healthz must not depend on the database at all.
 */
static void
test_readyz_stalled_db(void **state)
{
    int               i, status;
    char              sock[108], listen[160], err[256], sql[256];
    long              el;
    PGresult         *res;
    enc_http_t       *h;
    struct timespec   t0;
    static const enc_route_t  routes[] = { { NULL, NULL, NULL, 0, NULL } };

    if (pg_env_missing()) {
        skip();
    }
    snprintf(sock, sizeof(sock), "/tmp/enc-test-pg-%d.sock", (int) getpid());
    snprintf(listen, sizeof(listen), "unix:%s", sock);
    /* one pool thread: /readyz always uses the connection stopped below */
    assert_int_equal(enc_config_set(cfg, "http.listen", listen, err,
                                    sizeof(err)), 0);
    assert_int_equal(enc_config_set(cfg, "http.threads", "1", err,
                                    sizeof(err)), 0);
    assert_int_equal(enc_config_set(cfg, "http.socket_group", "", err,
                                    sizeof(err)), 0);
    h = enc_http_start(cfg, routes, NULL);
    assert_non_null(h);
    assert_int_equal(http_get(sock, "/readyz", 5000), 200);

    /* every session of this test process */
    snprintf(sql, sizeof(sql), "SELECT pid FROM pg_stat_activity"
             " WHERE application_name = 'encore-%s'", schema);
    res = PQexec(admin, sql);
    assert_int_equal(PQresultStatus(res), PGRES_TUPLES_OK);
    assert_true(PQntuples(res) >= 1);
    if (!can_stop((pid_t) atoi(PQgetvalue(res, 0, 0)))) {
        PQclear(res);
        enc_http_stop(h);
        skip();
    }
    (void) signal(SIGALRM, watchdog);
    (void) alarm(30);
    for (i = 0; i < PQntuples(res); i++) {
        stop_pid((pid_t) atoi(PQgetvalue(res, i, 0)));
    }
    PQclear(res);

    (void) clock_gettime(CLOCK_MONOTONIC, &t0);
    status = http_get(sock, "/readyz", 10000);
    el = elapsed_ms(&t0);
    i = http_get(sock, "/healthz", 1000);
    resume_all();
    (void) alarm(0);

    assert_int_equal(status, 503);
    assert_true(el < 6000);          /* 2 s deadline + 1 s grace */
    assert_int_equal(i, 200);

    /* ready again once the database is back */
    for (i = 0; i < 50 && (status = http_get(sock, "/readyz", 5000)) != 200;
         i++)
    {
        usleep(50 * 1000);
    }
    assert_int_equal(status, 200);
    enc_http_stop(h);
}


int
main(void)
{
    const struct CMUnitTest  tests[] = {
        cmocka_unit_test(test_statements),
        cmocka_unit_test(test_statements_are_timed),
        cmocka_unit_test(test_check_statements),
        cmocka_unit_test(test_transactions),
        cmocka_unit_test(test_reconnect),
        cmocka_unit_test(test_private_connection),
        cmocka_unit_test(test_private_no_silent_reconnect),
        cmocka_unit_test(test_statement_timeout_server),
        cmocka_unit_test(test_statement_deadline_client),
        cmocka_unit_test(test_set_timeout),
        cmocka_unit_test(test_stalled_server),
        cmocka_unit_test(test_late_cancel_spares_the_next_statement),
        cmocka_unit_test(test_given_up_connection_is_closed),
        cmocka_unit_test(test_readyz_stalled_db),
    };

    return cmocka_run_group_tests(tests, setup, teardown);
}
