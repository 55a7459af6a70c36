/*
 * pg: connections, prepared statements, transactions.  See pg.h.
 *
 * The per-thread connection hangs off a pthread key whose destructor closes
 * it, so libmicrohttpd pool threads release their sessions when the pool
 * stops.  Prepared statements are prepared on first use per connection
 * (a flag per statement, reset on reconnect): a worker that never runs a
 * statement never parses it, and a reconnect needs no replay.
 *
 * Statements go out with the asynchronous API on a non-blocking connection
 * and are waited for with poll() against a deadline (await below), because
 * a blocking PQexec against a stalled server or a partitioned network
 * never returns: the pool thread, /readyz and the drain on SIGTERM would
 * all hang with it.
 */
#include <errno.h>
#include <limits.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#include "log.h"
#include "metrics.h"
#include "pg.h"


#define BACKOFF_MIN_MS   100
#define BACKOFF_MAX_MS   5000
#define PASSWORD_MAX     1024

/* the client deadline trails the server's statement_timeout by this much,
   so a server that is alive ends a slow statement itself (57014) and the
   cancel below is only needed when it cannot answer */
#define SERVER_FIRST_MS  200
/* how long a cancelled statement may take to report back before its
   connection is given up */
#define CANCEL_GRACE_MS  1000
/* cancel requests still waiting for a stalled server; past this many no
   more are sent (the connection is dropped after the grace anyway) */
#define CANCELS_MAX      16

/* TCP only (libpq ignores them on unix sockets): an idle connection to a
   vanished host is found dead after about 30 + 3 * 10 s instead of the
   kernel's two hours, and data unacknowledged for 30 s ends the
   connection */
#define KEEPALIVES_IDLE      "30"
#define KEEPALIVES_INTERVAL  "10"
#define KEEPALIVES_COUNT     "3"
#define TCP_USER_TIMEOUT_MS  "30000"

struct enc_pg_s {
    PGconn         *conn;
    unsigned char  *prepared;       /* one flag per statement */
    int             broken;         /* reconnect before next use */
    int             in_tx;
    int             tx_lost;        /* the session died inside a tx */
    int             thread_conn;    /* from enc_pg_thread(): may reconnect
                                       silently when found dead while idle */
    long            timeout_ms;     /* statement deadline, 0 = none; sent
                                       as statement_timeout at connect */
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
    char                  connect_timeout[16];
    long                  statement_timeout_ms;
    const enc_pg_stmt_t  *stmts;
    size_t                nstmts;
} cf;

static pthread_key_t   thread_key;
static pthread_once_t  thread_key_once = PTHREAD_ONCE_INIT;
static atomic_int      cancels;          /* cancel threads still running */


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
    cf.statement_timeout_ms = enc_config_int(c, "db.statement_timeout_ms");

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


/* t = now + ms on the monotonic clock */
static void
deadline_in(struct timespec *t, long ms)
{
    (void) clock_gettime(CLOCK_MONOTONIC, t);
    t->tv_sec += ms / 1000;
    t->tv_nsec += (ms % 1000) * 1000000;
    if (t->tv_nsec >= 1000000000) {
        t->tv_sec++;
        t->tv_nsec -= 1000000000;
    }
}


static void
backoff(enc_pg_t *pg)
{
    pg->backoff_ms = pg->backoff_ms == 0
                     ? BACKOFF_MIN_MS
                     : (pg->backoff_ms * 2 > BACKOFF_MAX_MS
                        ? BACKOFF_MAX_MS : pg->backoff_ms * 2);
    deadline_in(&pg->next_try, pg->backoff_ms);
}


/* (re)connects pg; -1 while unreachable or inside the backoff window */
static int
connect_pg(enc_pg_t *pg)
{
    char          password[PASSWORD_MAX], options[160], appname[80];
    const char   *keys[] = {
        "host", "port", "dbname", "user", "password", "options",
        "connect_timeout", "application_name", "keepalives",
        "keepalives_idle", "keepalives_interval", "keepalives_count",
        "tcp_user_timeout", NULL
    };
    const char   *vals[14];

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
    /* the schema is a validated identifier: nothing to escape.  The
       server's own statement_timeout ends a slow statement cleanly (57014)
       before the client deadline has to (await) */
    snprintf(options, sizeof(options),
             "-c search_path=%s -c statement_timeout=%ld", cf.schema,
             pg->timeout_ms);
    vals[0] = cf.host;
    vals[1] = cf.port;
    vals[2] = cf.dbname;
    vals[3] = cf.user;
    vals[4] = password[0] != '\0' ? password : NULL;
    vals[5] = options;
    vals[6] = cf.connect_timeout;
    vals[7] = appname;
    vals[8] = "1";
    vals[9] = KEEPALIVES_IDLE;
    vals[10] = KEEPALIVES_INTERVAL;
    vals[11] = KEEPALIVES_COUNT;
    vals[12] = TCP_USER_TIMEOUT_MS;
    vals[13] = NULL;

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
    /* PQsend*() must not block on a full socket buffer either (a large
       body towards a stalled server); await() flushes under the deadline */
    if (PQsetnonblocking(pg->conn, 1) != 0) {
        enc_log_warn("pg: cannot make the connection non-blocking: %s",
                     PQerrorMessage(pg->conn));
        PQfinish(pg->conn);
        pg->conn = NULL;
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
    pg->timeout_ms = cf.statement_timeout_ms;
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


/* a usable connection, reconnecting when needed; -1 if not.  check: look
   for a session that died while idle (before a statement) */
static int
ensure(enc_pg_t *pg, int check)
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
     * It is done right before each statement, where it matters, and not
     * when enc_pg_thread() hands the connection out: one poll() per
     * statement, not two.
     *
     * Only thread connections do this: a private connection carries
     * session state its owner relies on (the relay's advisory lock and
     * LISTEN), so its owner must see the failure and restart its session
     * rather than continue on a fresh one without that state.
     */
    if (check && pg->thread_conn && pg->conn != NULL && !pg->broken
        && !pg->in_tx && !idle_alive(pg->conn))
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
    return ensure(pg, 0) == 0 ? pg : NULL;
}


PGconn *
enc_pg_conn(enc_pg_t *pg)
{
    return ensure(pg, 1) == 0 ? pg->conn : NULL;
}


int
enc_pg_ok(enc_pg_t *pg)
{
    return pg != NULL && pg->conn != NULL && !pg->broken && !pg->tx_lost
           && PQstatus(pg->conn) == CONNECTION_OK;
}


/*
 * The connection is gone, or given up: it is closed now, so that the
 * server rolls back what it held (a session left "idle in transaction"
 * would keep its locks until this thread's next statement), and the next
 * use reconnects, except inside a transaction (tx_lost).  why may point
 * into the connection's error buffer: it is logged first.  Always NULL.
 */
static PGresult *
conn_lost(enc_pg_t *pg, const char *why)
{
    enc_log_warn("pg: connection lost: %s", why);
    if (pg->conn != NULL) {
        PQfinish(pg->conn);
        pg->conn = NULL;
    }
    pg->broken = 1;
    if (pg->in_tx) {
        pg->tx_lost = 1;
    }
    return NULL;
}


/* NULL result or a dead session: the connection is gone */
static PGresult *
check_result(enc_pg_t *pg, PGresult *res)
{
    if (res != NULL && PQstatus(pg->conn) == CONNECTION_OK) {
        return res;
    }
    PQclear(res);
    return conn_lost(pg, PQerrorMessage(pg->conn));
}


/* 1 when the socket is ready for events, 0 once the deadline (NULL: none)
   has passed, -1 on error */
static int
wait_socket(PGconn *conn, short events, const struct timespec *deadline)
{
    int            rc;
    long           ms;
    struct pollfd  pfd;

    for ( ;; ) {
        pfd.fd = PQsocket(conn);
        pfd.events = events;
        pfd.revents = 0;
        if (pfd.fd < 0) {
            return -1;
        }
        ms = -1;
        if (deadline != NULL) {
            ms = ms_until(deadline);
            ms = ms < 0 ? 0 : (ms > INT_MAX ? INT_MAX : ms);
        }
        rc = poll(&pfd, 1, (int) ms);
        if (rc > 0) {
            return (pfd.revents & POLLNVAL) ? -1 : 1;
        }
        if (rc == 0) {
            return 0;
        }
        if (errno != EINTR) {
            return -1;
        }
    }
}


/* a cancel request on its way, shared by the thread sending it and the
   statement waiting for it; freed by whichever lets go last */
typedef struct {
    PGcancel    *cn;
    int          fd;            /* eventfd, readable once it was sent */
    atomic_int   refs;
} cancel_t;


static void
cancel_release(cancel_t *c)
{
    if (atomic_fetch_sub(&c->refs, 1) == 1) {
        PQfreeCancel(c->cn);
        close(c->fd);
        free(c);
    }
}


static void *
cancel_main(void *arg)
{
    char       err[256];
    uint64_t   one = 1;
    cancel_t  *c = arg;

    if (!PQcancel(c->cn, err, sizeof(err))) {
        enc_log_warn("pg: cancel request failed: %s", err);
    }
    (void) !write(c->fd, &one, sizeof(one));
    atomic_fetch_sub(&cancels, 1);
    cancel_release(c);
    return NULL;
}


/*
 * Asks the server to cancel the statement running on conn; NULL if the
 * request could not be started (logged).  PQcancel blocks until the
 * postmaster has read the request, with no timeout of its own: against a
 * stopped server or an unreachable host it would hang the very thread the
 * deadline is meant to free.  So it runs on a detached thread, with a
 * PGcancel that does not depend on conn (which may be closed meanwhile);
 * the caller waits for the statement's result and then, up to
 * CANCEL_GRACE_MS more, for cancel_finish.
 */
static cancel_t *
cancel_start(PGconn *conn)
{
    int              ok = 0;
    cancel_t        *c;
    pthread_t        t;
    pthread_attr_t   attr;

    if (atomic_fetch_add(&cancels, 1) >= CANCELS_MAX) {
        atomic_fetch_sub(&cancels, 1);
        enc_log_warn("pg: %d cancel requests unanswered; not sending another",
                     CANCELS_MAX);
        return NULL;
    }
    c = calloc(1, sizeof(*c));
    if (c == NULL) {
        goto failed;
    }
    atomic_init(&c->refs, 2);
    c->fd = eventfd(0, EFD_CLOEXEC);
    c->cn = PQgetCancel(conn);
    if (c->fd >= 0 && c->cn != NULL && pthread_attr_init(&attr) == 0) {
        ok = pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED) == 0
             && pthread_create(&t, &attr, cancel_main, c) == 0;
        (void) pthread_attr_destroy(&attr);
    }
    if (ok) {
        return c;
    }
    if (c->fd >= 0) {
        close(c->fd);
    }
    PQfreeCancel(c->cn);
    free(c);

failed:
    enc_log_warn("pg: cannot send a cancel request");
    atomic_fetch_sub(&cancels, 1);
    return NULL;
}


/*
 * Waits up to wait_ms until the postmaster has taken c (it signals the
 * backend before it lets PQcancel return), then lets go of c.  1 when it
 * did (or there was no cancel), 0 when the request may still be on its
 * way: the statement ended anyway (the server's own timeout, or it
 * finished just then), and a cancel that lands later would cancel
 * whatever this backend runs next, so the caller must not reuse the
 * connection.
 */
static int
cancel_finish(cancel_t *c, long wait_ms)
{
    int            taken;
    struct pollfd  pfd;

    if (c == NULL) {
        return 1;
    }
    pfd.fd = c->fd;
    pfd.events = POLLIN;
    pfd.revents = 0;
    taken = poll(&pfd, 1, (int) wait_ms) == 1 && (pfd.revents & POLLIN);
    cancel_release(c);
    return taken;
}


/*
 * The result of the statement PQsend*() just sent (sent is its return
 * value), waiting at most ms (0 = no limit).  At the deadline the
 * statement is cancelled and gets CANCEL_GRACE_MS more: a server that
 * answers yields its result (an error, 57014 query_canceled, on a healthy
 * connection); one that does not costs the connection (NULL, marked
 * broken, so the next use reconnects).  Like PQexec: the first error
 * result, else the last one.  Caller PQclear()s it.
 */
static PGresult *
await_result(enc_pg_t *pg, int sent, long ms)
{
    int               rc, cancelled = 0;
    PGconn           *conn = pg->conn;
    PGresult         *res, *keep = NULL;
    cancel_t         *cancel = NULL;
    const char       *why;
    ExecStatusType    st;
    struct timespec   deadline, *dl = NULL;

    if (!sent) {
        return conn_lost(pg, PQerrorMessage(conn));
    }
    if (ms > 0) {
        deadline_in(&deadline, ms);
        dl = &deadline;
    }

    /* send what PQsend*() left buffered; read meanwhile, so that a server
       busy writing to us cannot deadlock the exchange */
    while ((rc = PQflush(conn)) == 1) {
        rc = wait_socket(conn, POLLIN | POLLOUT, dl);
        if (rc == 0) {
            why = "statement deadline passed while sending";
            goto failed;
        }
        if (rc < 0 || !PQconsumeInput(conn)) {
            why = PQerrorMessage(conn);
            goto failed;
        }
    }
    if (rc < 0) {
        why = PQerrorMessage(conn);
        goto failed;
    }

    for ( ;; ) {
        while (PQisBusy(conn)) {
            rc = wait_socket(conn, POLLIN, dl);
            if (rc == 0 && !cancelled) {
                enc_log_warn("pg: statement still running after %ld ms;"
                             " cancelling it", ms);
                cancel = cancel_start(conn);
                cancelled = 1;
                deadline_in(&deadline, CANCEL_GRACE_MS);
                continue;
            }
            if (rc == 0) {
                enc_log_error("pg: no answer %d ms after cancelling a"
                              " statement; dropping the connection",
                              CANCEL_GRACE_MS);
                why = "statement deadline passed";
                goto failed;
            }
            if (rc < 0 || !PQconsumeInput(conn)) {
                why = PQerrorMessage(conn);
                goto failed;
            }
        }
        res = PQgetResult(conn);
        if (res == NULL) {
            break;
        }
        st = PQresultStatus(res);
        if (keep != NULL && PQresultStatus(keep) == PGRES_FATAL_ERROR) {
            PQclear(res);
        } else {
            PQclear(keep);
            keep = res;
        }
        /* COPY hands the connection to the caller, as PQexec does */
        if (st == PGRES_COPY_IN || st == PGRES_COPY_OUT
            || st == PGRES_COPY_BOTH)
        {
            break;
        }
    }
    if (!cancel_finish(cancel, CANCEL_GRACE_MS)) {
        /* the answer came, the cancel's fate is unknown: keep the answer,
           give the connection up (inside a transaction that fails it) */
        res = check_result(pg, keep);
        if (res != NULL) {
            (void) conn_lost(pg, "a cancel request may still arrive");
        }
        return res;
    }
    return check_result(pg, keep);

failed:
    (void) cancel_finish(cancel, 0);
    PQclear(keep);
    return conn_lost(pg, why);
}


/*
 * await_result, timed: every statement sent (a worker's, a transaction's
 * BEGIN and COMMIT, a prepare) is an observation of
 * encore_pg_statement_duration_seconds, from the send to the result,
 * failures and cancels included (the workers dashboard's statement time)
 */
static PGresult *
await(enc_pg_t *pg, int sent, long ms)
{
    double            secs;
    PGresult         *res;
    struct timespec   t0, t1;

    (void) clock_gettime(CLOCK_MONOTONIC, &t0);
    res = await_result(pg, sent, ms);
    if (sent) {
        (void) clock_gettime(CLOCK_MONOTONIC, &t1);
        secs = (double) (t1.tv_sec - t0.tv_sec)
               + (double) (t1.tv_nsec - t0.tv_nsec) / 1e9;
        enc_metrics_observe("encore_pg_statement_duration_seconds",
                            "PostgreSQL statement time, from sending to"
                            " the result", secs);
    }
    return res;
}


/* the client deadline for pg's statements, see SERVER_FIRST_MS */
static long
client_ms(const enc_pg_t *pg)
{
    return pg->timeout_ms > 0 ? pg->timeout_ms + SERVER_FIRST_MS : 0;
}


static PGresult *
exec_params(enc_pg_t *pg, const char *sql, int n, const char *const *params,
            long ms)
{
    if (ensure(pg, 1) != 0) {
        return NULL;
    }
    return await(pg, PQsendQueryParams(pg->conn, sql, n, NULL, params, NULL,
                                       NULL, 0), ms);
}


/* the index of a configured statement, cf.nstmts when there is none */
static size_t
stmt_index(const char *stmt)
{
    size_t  i;

    for (i = 0; i < cf.nstmts; i++) {
        if (strcmp(cf.stmts[i].name, stmt) == 0) {
            break;
        }
    }
    return i;
}


int
enc_pg_stmt_nparams(const char *stmt)
{
    size_t  i;

    i = stmt_index(stmt);
    return i < cf.nstmts ? cf.stmts[i].nparams : -1;
}


PGresult *
enc_pg_exec(enc_pg_t *pg, const char *stmt, int n, const char *const *params)
{
    size_t     i;
    PGresult  *res;

    i = stmt_index(stmt);
    if (i == cf.nstmts) {
        enc_log_error("pg: unknown statement \"%s\"", stmt);
        return NULL;
    }
    if (n != cf.stmts[i].nparams) {
        enc_log_error("pg: statement \"%s\" takes %d parameters, got %d",
                      stmt, cf.stmts[i].nparams, n);
        return NULL;
    }
    if (ensure(pg, 1) != 0) {
        return NULL;
    }

    if (!pg->prepared[i]) {
        res = await(pg, PQsendPrepare(pg->conn, stmt, cf.stmts[i].sql, n,
                                      NULL), client_ms(pg));
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

    return await(pg, PQsendQueryPrepared(pg->conn, stmt, n, params, NULL,
                                         NULL, 0), client_ms(pg));
}


int
enc_pg_check_statements(enc_pg_t *pg)
{
    int        bad = 0, used;
    size_t     i;
    PGresult  *res;

    if (ensure(pg, 1) != 0) {
        enc_log_error("pg: cannot connect to check the statements");
        return -1;
    }

    for (i = 0; i < cf.nstmts; i++) {
        res = await(pg, PQsendPrepare(pg->conn, cf.stmts[i].name,
                                      cf.stmts[i].sql, cf.stmts[i].nparams,
                                      NULL), client_ms(pg));
        if (res == NULL) {
            return -1;
        }
        if (PQresultStatus(res) != PGRES_COMMAND_OK) {
            enc_log_error("pg: statement \"%s\" does not prepare: %s",
                          cf.stmts[i].name, PQresultErrorMessage(res));
            PQclear(res);
            bad++;
            continue;
        }
        PQclear(res);
        pg->prepared[i] = 1;

        /* without types, the server counts the parameters from the SQL:
           a count that differs from the declared one fails every bind
           (08P01) at run time */
        res = await(pg, PQsendDescribePrepared(pg->conn, cf.stmts[i].name),
                    client_ms(pg));
        if (res == NULL) {
            return -1;
        }
        used = PQresultStatus(res) == PGRES_COMMAND_OK ? PQnparams(res) : -1;
        PQclear(res);
        if (used != cf.stmts[i].nparams) {
            enc_log_error("pg: statement \"%s\" declares %d parameters but "
                          "its SQL uses %d", cf.stmts[i].name,
                          cf.stmts[i].nparams, used);
            bad++;
        }
    }

    return bad == 0 ? 0 : -1;
}


PGresult *
enc_pg_exec_sql(enc_pg_t *pg, const char *sql, int n,
                const char *const *params)
{
    return exec_params(pg, sql, n, params, client_ms(pg));
}


int
enc_pg_ping(enc_pg_t *pg, long timeout_ms)
{
    int        ok;
    PGresult  *res;

    if (pg == NULL) {
        return -1;
    }
    res = exec_params(pg, "SELECT 1", 0, NULL, timeout_ms);
    ok = res != NULL && PQresultStatus(res) == PGRES_TUPLES_OK;
    PQclear(res);
    return ok ? 0 : -1;
}


int
enc_pg_set_timeout(enc_pg_t *pg, long ms)
{
    int        rc;
    char       sql[64];
    PGresult  *res;

    if (ms < 0 || pg->in_tx) {
        enc_log_error("pg: cannot set a statement timeout of %ld ms%s", ms,
                      pg->in_tx ? " inside a transaction" : "");
        return -1;
    }
    pg->timeout_ms = ms;
    if (pg->conn == NULL || pg->broken) {
        return 0;                     /* the next connect sends it */
    }
    snprintf(sql, sizeof(sql), "SET statement_timeout = %ld", ms);
    res = enc_pg_exec_sql(pg, sql, 0, NULL);
    rc = res != NULL && PQresultStatus(res) == PGRES_COMMAND_OK ? 0 : -1;
    if (rc != 0) {
        enc_log_error("pg: %s: %s", sql,
                      res ? PQresultErrorMessage(res) : "connection lost");
    }
    PQclear(res);
    return rc;
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
        PQclear(await(pg, PQsendQuery(pg->conn, "ROLLBACK"), client_ms(pg)));
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
        res = await(pg, PQsendQuery(pg->conn, "ROLLBACK"), client_ms(pg));
        PQclear(res);
    }
    pg->in_tx = 0;
    pg->tx_lost = 0;
}
