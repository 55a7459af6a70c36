/*
 * pg: connections, prepared statements, transactions.  See pg.h.
 *
 * The per-thread connection hangs off a pthread key whose destructor closes
 * it, so libmicrohttpd pool threads release their sessions when the pool
 * stops.  Prepared statements are prepared on first use per connection
 * (a flag per statement, reset on reconnect): a worker that never runs a
 * statement never parses it, and a reconnect needs no replay.
 */
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "log.h"
#include "pg.h"


#define BACKOFF_MIN_MS   100
#define BACKOFF_MAX_MS   5000
#define PASSWORD_MAX     1024

struct enc_pg_s {
    PGconn         *conn;
    unsigned char  *prepared;       /* one flag per statement */
    int             broken;         /* reconnect before next use */
    int             in_tx;
    int             tx_lost;        /* the session died inside a tx */
    int             thread_conn;    /* from enc_pg_thread(): may reconnect
                                       silently when found dead while idle */
    long            backoff_ms;
    struct timespec next_try;
};

/* set once by enc_pg_configure before threads start, read-only after */
static struct {
    int                   configured;
    char                  host[512];
    char                  port[16];
    char                  dbname[128];
    char                  user[128];
    char                  password_file[1024];
    char                  schema[64];
    char                  options[128];
    char                  connect_timeout[16];
    const enc_pg_stmt_t  *stmts;
    size_t                nstmts;
} cf;

static pthread_key_t   thread_key;
static pthread_once_t  thread_key_once = PTHREAD_ONCE_INIT;


static void
thread_conn_free(void *p)
{
    enc_pg_close(p);
}


static void
thread_key_make(void)
{
    if (pthread_key_create(&thread_key, thread_conn_free) != 0) {
        enc_log_error("pg: pthread_key_create failed");
    }
}


int
enc_ident_valid(const char *s)
{
    size_t  i;

    if (s[0] == '\0' || strlen(s) > 63 || (s[0] >= '0' && s[0] <= '9')) {
        return 0;
    }
    for (i = 0; s[i] != '\0'; i++) {
        if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= '0' && s[i] <= '9')
              || s[i] == '_'))
        {
            return 0;
        }
    }
    return 1;
}


static int
copy_key(char *dst, size_t len, const enc_config_t *c, const char *key)
{
    const char  *v = enc_config_str(c, key);

    if (v == NULL || strlen(v) >= len) {
        enc_log_error("pg: \"%s\" missing or too long", key);
        return -1;
    }
    strcpy(dst, v);
    return 0;
}


int
enc_pg_configure(const enc_config_t *c, const enc_pg_stmt_t *stmts)
{
    if (copy_key(cf.host, sizeof(cf.host), c, "db.host") != 0
        || copy_key(cf.dbname, sizeof(cf.dbname), c, "db.name") != 0
        || copy_key(cf.user, sizeof(cf.user), c, "db.user") != 0
        || copy_key(cf.password_file, sizeof(cf.password_file), c,
                    "db.password_file") != 0
        || copy_key(cf.schema, sizeof(cf.schema), c, "db.schema") != 0)
    {
        return -1;
    }
    if (!enc_ident_valid(cf.schema)) {
        enc_log_error("pg: db.schema \"%s\" must match [a-z_][a-z0-9_]*",
                      cf.schema);
        return -1;
    }
    if (cf.user[0] == '\0') {
        strcpy(cf.user, cf.schema);
    }
    snprintf(cf.port, sizeof(cf.port), "%ld", enc_config_int(c, "db.port"));
    snprintf(cf.connect_timeout, sizeof(cf.connect_timeout), "%ld",
             enc_config_int(c, "db.connect_timeout_s"));
    /* the schema is a validated identifier: nothing to escape */
    snprintf(cf.options, sizeof(cf.options), "-c search_path=%s", cf.schema);

    cf.stmts = stmts;
    cf.nstmts = 0;
    while (stmts != NULL && stmts[cf.nstmts].name != NULL) {
        cf.nstmts++;
    }
    cf.configured = 1;
    return pthread_once(&thread_key_once, thread_key_make) == 0 ? 0 : -1;
}


int
enc_pg_configured(void)
{
    return cf.configured;
}


const char *
enc_pg_schema(void)
{
    return cf.configured ? cf.schema : NULL;
}


/* server NOTICEs would otherwise go to stderr as bare text, breaking the
   JSON log lines */
static void
on_notice(void *arg, const char *msg)
{
    char    buf[1024];
    size_t  n;

    snprintf(buf, sizeof(buf), "%s", msg);
    n = strlen(buf);
    while (n > 0 && buf[n - 1] == '\n') {
        buf[--n] = '\0';
    }
    enc_log_debug("pg: %s", buf);
}


/* the password file's first line; 0 with out="" when no file is set */
static int
read_password(char *out, size_t len)
{
    FILE    *f;
    size_t   n;

    out[0] = '\0';
    if (cf.password_file[0] == '\0') {
        return 0;
    }
    f = fopen(cf.password_file, "r");
    if (f == NULL) {
        enc_log_error("pg: cannot open db.password_file \"%s\": %s",
                      cf.password_file, strerror(errno));
        return -1;
    }
    if (fgets(out, (int) len, f) == NULL) {
        out[0] = '\0';
    }
    fclose(f);
    n = strlen(out);
    while (n > 0 && (out[n - 1] == '\n' || out[n - 1] == '\r')) {
        out[--n] = '\0';
    }
    return 0;
}


static long
ms_until(const struct timespec *t)
{
    struct timespec  now;

    (void) clock_gettime(CLOCK_MONOTONIC, &now);
    return (t->tv_sec - now.tv_sec) * 1000
           + (t->tv_nsec - now.tv_nsec) / 1000000;
}


static void
backoff(enc_pg_t *pg)
{
    pg->backoff_ms = pg->backoff_ms == 0
                     ? BACKOFF_MIN_MS
                     : (pg->backoff_ms * 2 > BACKOFF_MAX_MS
                        ? BACKOFF_MAX_MS : pg->backoff_ms * 2);
    (void) clock_gettime(CLOCK_MONOTONIC, &pg->next_try);
    pg->next_try.tv_sec += pg->backoff_ms / 1000;
    pg->next_try.tv_nsec += (pg->backoff_ms % 1000) * 1000000;
    if (pg->next_try.tv_nsec >= 1000000000) {
        pg->next_try.tv_sec++;
        pg->next_try.tv_nsec -= 1000000000;
    }
}


/* (re)connects pg; -1 while unreachable or inside the backoff window */
static int
connect_pg(enc_pg_t *pg)
{
    char          password[PASSWORD_MAX];
    const char   *keys[] = {
        "host", "port", "dbname", "user", "password", "options",
        "connect_timeout", "application_name", NULL
    };
    const char   *vals[9];
    char          appname[80];

    if (pg->backoff_ms != 0 && ms_until(&pg->next_try) > 0) {
        return -1;
    }
    if (pg->conn != NULL) {
        PQfinish(pg->conn);
        pg->conn = NULL;
    }
    memset(pg->prepared, 0, cf.nstmts ? cf.nstmts : 1);

    if (read_password(password, sizeof(password)) != 0) {
        backoff(pg);
        return -1;
    }
    snprintf(appname, sizeof(appname), "encore-%s", cf.schema);
    vals[0] = cf.host;
    vals[1] = cf.port;
    vals[2] = cf.dbname;
    vals[3] = cf.user;
    vals[4] = password[0] != '\0' ? password : NULL;
    vals[5] = cf.options;
    vals[6] = cf.connect_timeout;
    vals[7] = appname;
    vals[8] = NULL;

    pg->conn = PQconnectdbParams(keys, vals, 0);
    explicit_bzero(password, sizeof(password));
    if (pg->conn == NULL || PQstatus(pg->conn) != CONNECTION_OK) {
        enc_log_warn("pg: cannot connect to %s:%s/%s as %s: %s", cf.host,
                     cf.port, cf.dbname, cf.user,
                     pg->conn ? PQerrorMessage(pg->conn) : "out of memory");
        if (pg->conn != NULL) {
            PQfinish(pg->conn);
            pg->conn = NULL;
        }
        backoff(pg);
        return -1;
    }
    (void) PQsetNoticeProcessor(pg->conn, on_notice, NULL);
    if (pg->backoff_ms != 0) {
        enc_log_info("pg: reconnected to %s:%s/%s", cf.host, cf.port,
                     cf.dbname);
    }
    pg->backoff_ms = 0;
    pg->broken = 0;
    return 0;
}


static enc_pg_t *
pg_alloc(void)
{
    enc_pg_t  *pg;

    pg = calloc(1, sizeof(*pg));
    if (pg == NULL) {
        return NULL;
    }
    pg->prepared = calloc(cf.nstmts ? cf.nstmts : 1, 1);
    if (pg->prepared == NULL) {
        free(pg);
        return NULL;
    }
    return pg;
}


void
enc_pg_close(enc_pg_t *pg)
{
    if (pg == NULL) {
        return;
    }
    if (pg->conn != NULL) {
        PQfinish(pg->conn);
    }
    free(pg->prepared);
    free(pg);
}


/*
 * 0 if an idle session turned out dead.  A terminated backend sends an
 * ErrorResponse and then closes; libpq reads one of them per
 * PQconsumeInput, so read while the socket has something (poll with a zero
 * timeout never waits; a healthy idle connection costs one poll).
 */
static int
idle_alive(PGconn *conn)
{
    int            i;
    struct pollfd  pfd;

    for (i = 0; i < 4; i++) {
        pfd.fd = PQsocket(conn);
        pfd.events = POLLIN;
        pfd.revents = 0;
        if (pfd.fd < 0) {
            return 0;
        }
        if (poll(&pfd, 1, 0) <= 0) {
            break;
        }
        if (!PQconsumeInput(conn) || PQstatus(conn) != CONNECTION_OK) {
            return 0;
        }
    }
    return PQstatus(conn) == CONNECTION_OK;
}


/* a usable connection, reconnecting when needed; -1 if not */
static int
ensure(enc_pg_t *pg)
{
    if (pg->tx_lost) {
        return -1;
    }
    /*
     * A server restart closes the socket, but libpq notices only when it
     * next reads.  Between transactions, read what is pending first (the
     * socket is polled without waiting, see idle_alive): a closed
     * socket turns the status bad and the statement goes to a fresh
     * connection instead of failing once per idle thread.  Inside a
     * transaction a lost connection must stay an error (tx_lost below).
     *
     * Only thread connections do this: a private connection carries
     * session state its owner relies on (the relay's advisory lock and
     * LISTEN), so its owner must see the failure and restart its session
     * rather than continue on a fresh one without that state.
     */
    if (pg->thread_conn && pg->conn != NULL && !pg->broken && !pg->in_tx
        && !idle_alive(pg->conn))
    {
        enc_log_info("pg: connection lost while idle; reconnecting");
        pg->broken = 1;
    }
    if (pg->conn != NULL && !pg->broken && PQstatus(pg->conn) == CONNECTION_OK) {
        return 0;
    }
    if (pg->in_tx) {
        pg->tx_lost = 1;
        return -1;
    }
    return connect_pg(pg);
}


enc_pg_t *
enc_pg_connect_new(void)
{
    enc_pg_t  *pg;

    if (!cf.configured) {
        enc_log_error("pg: not configured");
        return NULL;
    }
    pg = pg_alloc();
    if (pg == NULL) {
        return NULL;
    }
    if (connect_pg(pg) != 0) {
        enc_pg_close(pg);
        return NULL;
    }
    return pg;
}


enc_pg_t *
enc_pg_thread(void)
{
    enc_pg_t  *pg;

    if (!cf.configured) {
        return NULL;
    }
    pg = pthread_getspecific(thread_key);
    if (pg == NULL) {
        pg = pg_alloc();
        if (pg == NULL) {
            return NULL;
        }
        pg->thread_conn = 1;
        if (pthread_setspecific(thread_key, pg) != 0) {
            enc_pg_close(pg);
            return NULL;
        }
    }
    /* a request must not inherit a transaction a previous one left open */
    if (pg->in_tx) {
        enc_log_warn("pg: a transaction was left open; rolling back");
        enc_pg_rollback(pg);
    }
    return ensure(pg) == 0 ? pg : NULL;
}


PGconn *
enc_pg_conn(enc_pg_t *pg)
{
    return ensure(pg) == 0 ? pg->conn : NULL;
}


int
enc_pg_ok(enc_pg_t *pg)
{
    return pg != NULL && pg->conn != NULL && !pg->broken && !pg->tx_lost
           && PQstatus(pg->conn) == CONNECTION_OK;
}


/* NULL result or a dead session: the connection is gone */
static PGresult *
check_result(enc_pg_t *pg, PGresult *res)
{
    if (res != NULL && PQstatus(pg->conn) == CONNECTION_OK) {
        return res;
    }
    enc_log_warn("pg: connection lost: %s", PQerrorMessage(pg->conn));
    PQclear(res);
    pg->broken = 1;
    if (pg->in_tx) {
        pg->tx_lost = 1;
    }
    return NULL;
}


PGresult *
enc_pg_exec(enc_pg_t *pg, const char *stmt, int n, const char *const *params)
{
    size_t     i;
    PGresult  *res;

    for (i = 0; i < cf.nstmts; i++) {
        if (strcmp(cf.stmts[i].name, stmt) == 0) {
            break;
        }
    }
    if (i == cf.nstmts) {
        enc_log_error("pg: unknown statement \"%s\"", stmt);
        return NULL;
    }
    if (n != cf.stmts[i].nparams) {
        enc_log_error("pg: statement \"%s\" takes %d parameters, got %d",
                      stmt, cf.stmts[i].nparams, n);
        return NULL;
    }
    if (ensure(pg) != 0) {
        return NULL;
    }

    if (!pg->prepared[i]) {
        res = check_result(pg, PQprepare(pg->conn, stmt, cf.stmts[i].sql,
                                         n, NULL));
        if (res == NULL) {
            return NULL;
        }
        if (PQresultStatus(res) != PGRES_COMMAND_OK) {
            enc_log_error("pg: cannot prepare \"%s\": %s", stmt,
                          PQresultErrorMessage(res));
            return res;               /* statement-level: caller sees it */
        }
        PQclear(res);
        pg->prepared[i] = 1;
    }

    return check_result(pg, PQexecPrepared(pg->conn, stmt, n, params,
                                           NULL, NULL, 0));
}


PGresult *
enc_pg_exec_sql(enc_pg_t *pg, const char *sql, int n,
                const char *const *params)
{
    if (ensure(pg) != 0) {
        return NULL;
    }
    return check_result(pg, PQexecParams(pg->conn, sql, n, NULL, params,
                                         NULL, NULL, 0));
}


const char *
enc_pg_sqlstate(const PGresult *res)
{
    const char  *s;

    if (res == NULL) {
        return "";
    }
    s = PQresultErrorField(res, PG_DIAG_SQLSTATE);
    return s != NULL ? s : "";
}


static int
command(enc_pg_t *pg, const char *sql, const char *want_tag)
{
    int        rc;
    PGresult  *res;

    res = enc_pg_exec_sql(pg, sql, 0, NULL);
    if (res == NULL) {
        return -1;
    }
    rc = PQresultStatus(res) == PGRES_COMMAND_OK
         && strcmp(PQcmdStatus(res), want_tag) == 0 ? 0 : -1;
    if (rc != 0) {
        enc_log_error("pg: %s: %s", sql, PQresultErrorMessage(res));
    }
    PQclear(res);
    return rc;
}


int
enc_pg_begin(enc_pg_t *pg)
{
    if (pg->in_tx) {
        enc_log_error("pg: BEGIN inside a transaction");
        return -1;
    }
    if (command(pg, "BEGIN", "BEGIN") != 0) {
        return -1;
    }
    pg->in_tx = 1;
    pg->tx_lost = 0;
    return 0;
}


int
enc_pg_commit(enc_pg_t *pg)
{
    int  rc;

    if (!pg->in_tx) {
        enc_log_error("pg: COMMIT outside a transaction");
        return -1;
    }
    /* COMMIT of a failed transaction "succeeds" with the tag ROLLBACK */
    rc = command(pg, "COMMIT", "COMMIT");
    if (rc != 0 && !pg->broken && !pg->tx_lost
        && PQtransactionStatus(pg->conn) != PQTRANS_IDLE)
    {
        PQclear(PQexec(pg->conn, "ROLLBACK"));
    }
    pg->in_tx = 0;
    pg->tx_lost = 0;
    return rc;
}


void
enc_pg_rollback(enc_pg_t *pg)
{
    PGresult  *res;

    if (pg->conn != NULL && !pg->broken && !pg->tx_lost
        && PQstatus(pg->conn) == CONNECTION_OK
        && PQtransactionStatus(pg->conn) != PQTRANS_IDLE)
    {
        res = check_result(pg, PQexec(pg->conn, "ROLLBACK"));
        PQclear(res);
    }
    pg->in_tx = 0;
    pg->tx_lost = 0;
}
