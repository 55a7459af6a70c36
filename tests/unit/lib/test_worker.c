/*
 * worker: command-line parsing, and SIGTERM's drain on a real
 * enc_worker_main() in a child process (outbox off, no consumer), which
 * needs PostgreSQL for the migrations: skipped unless ENCORE_TEST_PGHOST
 * is set (the variables of pg_env.h).  The rest of the start sequence
 * (Kafka) is covered by the integration suite.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "dgram.h"
#include "pg_env.h"
#include "raw_http.h"
#include "worker.h"


static void
test_args(void **state)
{
    char               err[128];
    enc_worker_args_t  a;
    char              *v1[] = { "w", "-c", "f.conf", "--dump-config", NULL };
    char              *v2[] = { "w", "--config=g.conf", "create-admin",
                                "--force", "x", NULL };
    char              *v3[] = { "w", "-c", NULL };
    char              *v4[] = { "w", "--bogus", NULL };
    char              *v5[] = { "w", "--help", "--", "-cmd", NULL };

    assert_int_equal(enc_worker_parse_args(4, v1, &a, err, sizeof(err)), 0);
    assert_string_equal(a.config, "f.conf");
    assert_true(a.dump);
    assert_false(a.help);
    assert_int_equal(a.argc, 0);

    /* options after the command belong to the command */
    assert_int_equal(enc_worker_parse_args(5, v2, &a, err, sizeof(err)), 0);
    assert_string_equal(a.config, "g.conf");
    assert_int_equal(a.argc, 3);
    assert_string_equal(a.argv[0], "create-admin");
    assert_string_equal(a.argv[1], "--force");

    assert_int_equal(enc_worker_parse_args(2, v3, &a, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "-c"));
    assert_int_equal(enc_worker_parse_args(2, v4, &a, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "--bogus"));

    assert_int_equal(enc_worker_parse_args(4, v5, &a, err, sizeof(err)), 0);
    assert_true(a.help);
    assert_int_equal(a.argc, 1);
    assert_string_equal(a.argv[0], "-cmd");
}


/* ---- SIGTERM ------------------------------------------------------------- */

static char  w_sock[108], w_log[64], w_dir[64], w_rt[80], w_schema[64];
/* when set: log.file (and log.requests = true) for the next worker */
static char  w_file[64];
/* when set: NOTIFY_SOCKET for the next worker */
static char  w_notify[108];
/* when set: pid.file for the next worker */
static char  w_pidfile[80];
/* when set: a successor (this binary, exec'd by a hand-over) fails to
   start while this file exists */
static char  w_failfile[80];


static void
h_slow(enc_req_t *r, enc_resp_t *w, void *app)
{
    usleep(500 * 1000);
    enc_resp_empty(w, 204);
}


/* a handler stuck far beyond any drain timeout (in libpq, say) */
static void
h_stuck(enc_req_t *r, enc_resp_t *w, void *app)
{
    sleep(60);
    enc_resp_empty(w, 204);
}


static void
h_fast(enc_req_t *r, enc_resp_t *w, void *app)
{
    enc_resp_empty(w, 204);
}


static void
h_fail(enc_req_t *r, enc_resp_t *w, void *app)
{
    enc_resp_problem(w, 500, NULL, "failed on purpose");
}


/* answers once the file ENC_TEST_RELEASE names exists (10 s at most) */
static void
h_wait(enc_req_t *r, enc_resp_t *w, void *app)
{
    int          i;
    const char  *f = getenv("ENC_TEST_RELEASE");

    for (i = 0; f != NULL && i < 1000 && access(f, F_OK) != 0; i++) {
        usleep(10 * 1000);
    }
    enc_resp_empty(w, 204);
}


static const enc_route_t    w_routes[] = {
    { "GET", "/slow", h_slow, 0, "slow" },
    { "GET", "/stuck", h_stuck, 0, "stuck" },
    { "GET", "/fast", h_fast, 0, "fast" },
    { "GET", "/fail", h_fail, 0, "fail" },
    { "GET", "/wait", h_wait, 0, "wait" },
    { NULL, NULL, NULL, 0, NULL }
};
static const enc_pg_stmt_t  w_stmts[] = { { NULL, NULL, 0 } };
static const enc_worker_def_t  w_def = {
    .name = "wtest", .routes = w_routes, .statements = w_stmts
};


/* the child's settings: the test database, no outbox, the socket */
static void
worker_env(const char *listen, const char *drain_ms)
{
    setenv("ENCORE_DB_HOST", pg_env("ENCORE_TEST_PGHOST", ""), 1);
    setenv("ENCORE_DB_PORT", pg_env("ENCORE_TEST_PGPORT", "5432"), 1);
    setenv("ENCORE_DB_USER", pg_env("ENCORE_TEST_PGUSER", "postgres"), 1);
    setenv("ENCORE_DB_NAME", pg_env("ENCORE_TEST_PGDATABASE",
                                    "postgres"), 1);
    setenv("ENCORE_DB_PASSWORD_FILE", "", 1);
    setenv("ENCORE_DB_SCHEMA", w_schema, 1);
    setenv("ENCORE_HTTP_LISTEN", listen, 1);
    setenv("ENCORE_HTTP_THREADS", "2", 1);
    setenv("ENCORE_HTTP_SOCKET_GROUP", "", 1);
    setenv("ENCORE_OUTBOX_ENABLED", "false", 1);
    setenv("ENCORE_MIGRATIONS_DIR", w_dir, 1);
    setenv("ENCORE_DRAIN_TIMEOUT_MS", drain_ms, 1);
    setenv("ENCORE_DRAIN_IDLE_CLOSE_MS", "100", 1);
    setenv("ENCORE_LOG_LEVEL", "info", 1);
    if (w_file[0] != '\0') {
        setenv("ENCORE_LOG_FILE", w_file, 1);
        setenv("ENCORE_LOG_REQUESTS", "true", 1);
    }
    if (w_notify[0] != '\0') {
        setenv("NOTIFY_SOCKET", w_notify, 1);
    }
    if (w_pidfile[0] != '\0') {
        setenv("ENCORE_PID_FILE", w_pidfile, 1);
    }
    if (w_failfile[0] != '\0') {
        setenv("ENC_TEST_FAIL_IF", w_failfile, 1);
    }
    /* a successor exec'd from this binary runs the worker (main) */
    setenv("ENC_TEST_WORKER", "1", 1);
}


/* this process's socket, schema, log and migrations directory (no
   migrations, its own or the runtime's, but the layout enc_migrate
   insists on); listen gets the socket's http.listen */
static void
worker_paths(char *listen, size_t len)
{
    snprintf(w_sock, sizeof(w_sock), "/tmp/enc-test-wtest-%d.sock",
             (int) getpid());
    snprintf(w_schema, sizeof(w_schema), "enc_wtest_%d", (int) getpid());
    snprintf(w_log, sizeof(w_log), "/tmp/enc-test-wtest-%d.log",
             (int) getpid());
    snprintf(w_dir, sizeof(w_dir), "/tmp/enc-test-wtest-%d.d",
             (int) getpid());
    (void) mkdir(w_dir, 0700);
    snprintf(w_rt, sizeof(w_rt), "%s/runtime", w_dir);
    (void) mkdir(w_rt, 0700);
    snprintf(listen, len, "unix:%s", w_sock);
}


/* the worker in a child process, its log in w_log; waits for its socket */
static pid_t
worker_spawn(const char *drain_ms)
{
    int     i, fd, st;
    char    listen[160];
    pid_t   pid;
    char   *argv[] = { "encore-wtest", NULL };

    worker_paths(listen, sizeof(listen));

    pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        fd = open(w_log, O_WRONLY | O_CREAT | O_TRUNC, 0600);
        if (fd < 0 || dup2(fd, 2) < 0) {
            _exit(99);
        }
        worker_env(listen, drain_ms);
        /* exit, not _exit: the sanitizers' leak check runs at exit */
        exit(enc_worker_main(1, argv, &w_def));
    }

    for (i = 0; i < 1500; i++) {
        if (access(w_sock, F_OK) == 0) {
            return pid;
        }
        if (waitpid(pid, &st, WNOHANG) == pid) {
            fail_msg("the worker exited at start-up; see %s", w_log);
        }
        usleep(10 * 1000);
    }
    (void) kill(pid, SIGKILL);
    (void) waitpid(pid, &st, 0);
    fail_msg("the worker did not start; see %s", w_log);
    return -1;
}


/* the child's exit status, or -1 if it had not exited within ms (then
   it is killed) */
static int
worker_wait(pid_t pid, long ms, long *took)
{
    int              st;
    struct timespec  t0;

    (void) clock_gettime(CLOCK_MONOTONIC, &t0);
    while (raw_ms_since(&t0) < ms) {
        if (waitpid(pid, &st, WNOHANG) == pid) {
            *took = raw_ms_since(&t0);
            return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
        }
        usleep(10 * 1000);
    }
    (void) kill(pid, SIGKILL);
    (void) waitpid(pid, &st, 0);
    return -1;
}


/* how many lines of the file path contain needle */
static int
file_count(const char *path, const char *needle)
{
    int    found = 0;
    char   line[8192];
    FILE  *f = fopen(path, "r");

    if (f == NULL) {
        return 0;
    }
    while (fgets(line, sizeof(line), f) != NULL) {
        found += strstr(line, needle) != NULL;
    }
    fclose(f);
    return found;
}


/* waits up to ms for a line with needle in path */
static int
file_wait(const char *path, const char *needle, long ms)
{
    struct timespec  t0;

    (void) clock_gettime(CLOCK_MONOTONIC, &t0);
    while (file_count(path, needle) == 0) {
        if (raw_ms_since(&t0) >= ms) {
            return 0;
        }
        usleep(10 * 1000);
    }
    return 1;
}


static int
log_has(const char *needle)
{
    int    found = 0;
    char   line[8192];
    FILE  *f = fopen(w_log, "r");

    if (f == NULL) {
        return 0;
    }
    while (!found && fgets(line, sizeof(line), f) != NULL) {
        found = strstr(line, needle) != NULL;
    }
    fclose(f);
    return found;
}


static void
worker_cleanup(void)
{
    char     sql[160];
    PGconn  *admin;

    admin = pg_env_admin();
    snprintf(sql, sizeof(sql), "SET client_min_messages = warning;"
             " DROP SCHEMA IF EXISTS %s CASCADE", w_schema);
    if (PQstatus(admin) == CONNECTION_OK) {
        PQclear(PQexec(admin, sql));
    }
    PQfinish(admin);
    (void) unlink(w_log);
    (void) rmdir(w_rt);
    (void) rmdir(w_dir);
}


/*
 * Review finding: the drain ended at the first moment no request was in
 * flight and closed nginx's keepalive connections under it; an answer
 * given while draining did not say "Connection: close".  A request in
 * flight at SIGTERM is answered with the close, an idle keepalive
 * connection is closed, and the process exits cleanly (0, no leaks) well
 * before drain.timeout_ms.
 */
static void
test_sigterm_drains_connections(void **state)
{
    int    busy, idle, rc;
    char   buf[4096];
    long   took = 0;
    pid_t  pid;

    if (pg_env_missing()) {
        skip();
    }
    pid = worker_spawn("8000");
    idle = raw_connect(w_sock);
    busy = raw_connect(w_sock);
    assert_true(idle >= 0 && busy >= 0);
    assert_int_equal(raw_send_get(idle, "/healthz"), 0);
    assert_int_equal(raw_response(idle, buf, sizeof(buf), 5000), 200);
    assert_int_equal(raw_send_get(busy, "/slow"), 0);
    usleep(100 * 1000);

    assert_int_equal(kill(pid, SIGTERM), 0);
    assert_int_equal(raw_response(busy, buf, sizeof(buf), 5000), 204);
    assert_non_null(strcasestr(buf, "\r\nConnection: close\r\n"));
    assert_true(raw_closed_within(busy, 2000));
    assert_true(raw_closed_within(idle, 2000));
    rc = worker_wait(pid, 6000, &took);
    close(idle);
    close(busy);
    assert_int_equal(rc, 0);
    assert_true(took < 4000);
    assert_true(log_has("wtest stopped"));
    worker_cleanup();
}


/*
 * Review finding: after the drain timed out, enc_http_stop joined pool
 * threads stuck in libpq and SIGTERM never ended the process.  It must
 * say how many requests it abandons and exit (1) at once.
 */
static void
test_sigterm_abandons_stuck_requests(void **state)
{
    int    fd, rc;
    long   took = 0;
    pid_t  pid;

    if (pg_env_missing()) {
        skip();
    }
    pid = worker_spawn("300");
    fd = raw_connect(w_sock);
    assert_true(fd >= 0);
    assert_int_equal(raw_send_get(fd, "/stuck"), 0);
    usleep(200 * 1000);

    assert_int_equal(kill(pid, SIGTERM), 0);
    rc = worker_wait(pid, 10000, &took);
    close(fd);
    assert_int_equal(rc, 1);
    assert_true(took < 5000);
    assert_true(log_has("exiting with 1 requests abandoned"));
    worker_cleanup();
}


/* one GET on a fresh connection; its status */
static long
get_once(const char *path)
{
    int   fd;
    long  st;
    char  buf[4096];

    fd = raw_connect(w_sock);
    assert_true(fd >= 0);
    assert_int_equal(raw_send_get(fd, path), 0);
    st = raw_response(fd, buf, sizeof(buf), 5000);
    close(fd);
    return st;
}


/*
 * log.requests (issue 7): nginx's access log has every request with its
 * request id, so by default the worker does not write a line per request
 * too; a server error (5xx) is logged whatever the setting.
 */
static void
test_log_requests_default(void **state)
{
    long   took = 0;
    pid_t  pid;

    if (pg_env_missing()) {
        skip();
    }
    w_file[0] = '\0';
    pid = worker_spawn("2000");
    assert_int_equal(get_once("/fast"), 204);
    assert_int_equal(get_once("/fail"), 500);
    assert_int_equal(kill(pid, SIGTERM), 0);
    assert_int_equal(worker_wait(pid, 6000, &took), 0);
    assert_true(log_has("wtest stopped"));
    assert_false(log_has("GET /fast 204"));
    assert_true(log_has("GET /fail 500"));
    worker_cleanup();
}


/*
 * log.file and SIGUSR1 (issue 7): the log file renamed by log rotation,
 * SIGUSR1 makes the worker open a new one under the name; the next lines
 * (a request's, with log.requests on, and the stop's) land there and the
 * renamed file keeps the earlier ones.
 */
static void
test_sigusr1_reopens_log_file(void **state)
{
    char   rotated[80];
    long   took = 0;
    pid_t  pid;

    if (pg_env_missing()) {
        skip();
    }
    snprintf(w_file, sizeof(w_file), "/tmp/enc-test-wtest-%d.file.log",
             (int) getpid());
    snprintf(rotated, sizeof(rotated), "%s.1", w_file);
    (void) unlink(w_file);
    (void) unlink(rotated);

    pid = worker_spawn("2000");
    assert_int_equal(get_once("/fast"), 204);
    assert_true(file_wait(w_file, "GET /fast 204", 5000));

    assert_int_equal(rename(w_file, rotated), 0);
    assert_int_equal(kill(pid, SIGUSR1), 0);
    assert_true(file_wait(w_file, "log: reopened", 5000));
    assert_int_equal(get_once("/fast"), 204);
    assert_true(file_wait(w_file, "GET /fast 204", 5000));

    assert_int_equal(kill(pid, SIGTERM), 0);
    assert_int_equal(worker_wait(pid, 6000, &took), 0);
    assert_int_equal(file_count(rotated, "GET /fast 204"), 1);
    assert_int_equal(file_count(rotated, "log: reopening"), 1);
    assert_int_equal(file_count(w_file, "GET /fast 204"), 1);
    assert_int_equal(file_count(w_file, "wtest stopped"), 1);
    assert_int_equal(file_count(rotated, "wtest stopped"), 0);

    (void) unlink(w_file);
    (void) unlink(rotated);
    w_file[0] = '\0';
    worker_cleanup();
}


/*
 * Type=notify (issue 13): under systemd the worker says READY=1 once it
 * answers, not when the process exists, and STOPPING=1 when SIGTERM's
 * drain begins.
 */
static void
test_notify_ready_and_stopping(void **state)
{
    int    fd;
    char   buf[256];
    long   took = 0;
    pid_t  pid;

    if (pg_env_missing()) {
        skip();
    }
    snprintf(w_notify, sizeof(w_notify), "/tmp/enc-test-wtest-%d.notify",
             (int) getpid());
    fd = dgram_listen(w_notify);
    assert_true(fd >= 0);
    pid = worker_spawn("2000");

    dgram_receive(fd, buf, sizeof(buf), 10000);
    assert_non_null(strstr(buf, "READY=1"));
    /* ready means serving */
    assert_int_equal(get_once("/fast"), 204);

    assert_int_equal(kill(pid, SIGTERM), 0);
    dgram_receive(fd, buf, sizeof(buf), 10000);
    assert_non_null(strstr(buf, "STOPPING=1"));
    assert_int_equal(worker_wait(pid, 6000, &took), 0);

    close(fd);
    (void) unlink(w_notify);
    w_notify[0] = '\0';
    worker_cleanup();
}


/* a successor the hand-over tests started, stopped by their teardown if
   a failed assertion left it running */
static long  w_successor;


static int
successor_teardown(void **state)
{
    int  st;

    if (w_successor > 0 && kill((pid_t) w_successor, SIGKILL) == 0) {
        (void) waitpid((pid_t) w_successor, &st, 0);
    }
    w_successor = 0;
    return 0;
}


/* the pid in w_pidfile, 0 if none */
static long
pid_file_read(void)
{
    long   pid = 0;
    FILE  *f = fopen(w_pidfile, "r");

    if (f == NULL) {
        return 0;
    }
    if (fscanf(f, "%ld", &pid) != 1) {
        pid = 0;
    }
    fclose(f);
    return pid;
}


/* waits up to ms for w_pidfile to hold a pid other than not; returns it */
static long
pid_file_wait_other(long not, long ms)
{
    long             pid;
    struct timespec  t0;

    (void) clock_gettime(CLOCK_MONOTONIC, &t0);
    while (raw_ms_since(&t0) < ms) {
        pid = pid_file_read();
        if (pid > 0 && pid != not) {
            return pid;
        }
        usleep(10 * 1000);
    }
    return 0;
}


/*
 * Issue 14, restarts that drop nothing: SIGUSR2 starts the binary on disk
 * on the same listening socket; once it serves, the old process stops
 * accepting, finishes the request in flight, closes its idle keepalive
 * connection and exits 0 (no leak); the successor has written pid.file,
 * serves the socket's path, and on SIGTERM removes both.
 */
static void
test_sigusr2_hands_over(void **state)
{
    int    busy, idle, fd;
    char   buf[4096], release[80], line[64];
    long   took = 0, next;
    pid_t  pid;

    if (pg_env_missing()) {
        skip();
    }
    snprintf(w_pidfile, sizeof(w_pidfile), "/tmp/enc-test-wtest-%d.pid",
             (int) getpid());
    snprintf(release, sizeof(release), "/tmp/enc-test-wtest-%d.release",
             (int) getpid());
    (void) unlink(release);
    setenv("ENC_TEST_RELEASE", release, 1);
    pid = worker_spawn("8000");
    assert_int_equal(pid_file_wait_other(0, 5000), (long) pid);

    idle = raw_connect(w_sock);
    busy = raw_connect(w_sock);
    assert_true(idle >= 0 && busy >= 0);
    assert_int_equal(raw_send_get(idle, "/healthz"), 0);
    assert_int_equal(raw_response(idle, buf, sizeof(buf), 5000), 200);
    assert_int_equal(raw_send_get(busy, "/wait"), 0);
    usleep(100 * 1000);

    assert_int_equal(kill(pid, SIGUSR2), 0);
    next = pid_file_wait_other(pid, 30000);
    assert_true(next > 0);
    w_successor = next;
    snprintf(line, sizeof(line), "pid %ld serves; draining", next);
    assert_true(file_wait(w_log, line, 5000));
    /* the request in flight is answered, then its connection closed;
       the idle one is closed */
    fd = open(release, O_WRONLY | O_CREAT, 0600);
    assert_true(fd >= 0);
    close(fd);
    assert_int_equal(raw_response(busy, buf, sizeof(buf), 5000), 204);
    assert_non_null(strcasestr(buf, "\r\nConnection: close\r\n"));
    assert_true(raw_closed_within(busy, 2000));
    assert_true(raw_closed_within(idle, 2000));
    assert_int_equal(worker_wait(pid, 10000, &took), 0);

    /* the successor serves the same path, and owns it now */
    assert_int_equal(access(w_sock, F_OK), 0);
    assert_int_equal(get_once("/fast"), 204);
    assert_int_equal(pid_file_read(), next);
    assert_true(log_has("handing over to"));
    assert_true(log_has("(handed over)"));
    assert_int_equal(kill((pid_t) next, SIGTERM), 0);
    /* reparented to this process (a subreaper, main) */
    assert_int_equal(worker_wait((pid_t) next, 10000, &took), 0);
    w_successor = 0;
    assert_int_not_equal(access(w_sock, F_OK), 0);
    assert_int_equal(pid_file_read(), 0);

    close(idle);
    close(busy);
    (void) unlink(release);
    unsetenv("ENC_TEST_RELEASE");
    w_pidfile[0] = '\0';
    worker_cleanup();
}


/*
 * A successor that fails to start (a broken build, a bad configuration)
 * costs nothing: the old process says why and serves on, pid.file and
 * socket unchanged.
 */
static void
test_sigusr2_failed_handover_serves_on(void **state)
{
    int    fd;
    long   took = 0;
    pid_t  pid;

    if (pg_env_missing()) {
        skip();
    }
    snprintf(w_pidfile, sizeof(w_pidfile), "/tmp/enc-test-wtest-%d.pid",
             (int) getpid());
    snprintf(w_failfile, sizeof(w_failfile), "/tmp/enc-test-wtest-%d.fail",
             (int) getpid());
    fd = open(w_failfile, O_WRONLY | O_CREAT, 0600);
    assert_true(fd >= 0);
    close(fd);
    pid = worker_spawn("2000");
    assert_int_equal(pid_file_wait_other(0, 5000), (long) pid);

    assert_int_equal(kill(pid, SIGUSR2), 0);
    assert_true(file_wait(w_log, "hand-over failed", 30000));
    assert_int_equal(get_once("/fast"), 204);
    assert_int_equal(pid_file_read(), (long) pid);
    assert_int_equal(access(w_sock, F_OK), 0);

    assert_int_equal(kill(pid, SIGTERM), 0);
    assert_int_equal(worker_wait(pid, 6000, &took), 0);
    assert_int_not_equal(access(w_sock, F_OK), 0);
    assert_int_equal(pid_file_read(), 0);

    (void) unlink(w_failfile);
    w_failfile[0] = '\0';
    w_pidfile[0] = '\0';
    worker_cleanup();
}


/*
 * `encore-<w> migrate` (issue 13: a migration Job per worker before a
 * rollout): the migrations are applied and the process exits 0 without
 * ever listening.
 */
static void
test_migrate_command(void **state)
{
    int      fd, st;
    char     sql[256], path[160], listen[160];
    FILE    *f;
    pid_t    pid;
    PGconn  *admin;
    PGresult *res;
    char    *argv[] = { "encore-wtest", "migrate", NULL };

    if (pg_env_missing()) {
        skip();
    }
    worker_paths(listen, sizeof(listen));
    snprintf(path, sizeof(path), "%s/%s", w_dir, w_schema);
    (void) mkdir(path, 0700);
    snprintf(path, sizeof(path), "%s/%s/001_things.sql", w_dir, w_schema);
    f = fopen(path, "w");
    assert_non_null(f);
    fprintf(f, "CREATE TABLE things (id int PRIMARY KEY);\n");
    fclose(f);

    pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        fd = open(w_log, O_WRONLY | O_CREAT | O_TRUNC, 0600);
        if (fd < 0 || dup2(fd, 2) < 0) {
            _exit(99);
        }
        worker_env(listen, "2000");
        exit(enc_worker_main(2, argv, &w_def));
    }
    assert_int_equal(waitpid(pid, &st, 0), pid);
    assert_true(WIFEXITED(st));
    assert_int_equal(WEXITSTATUS(st), 0);
    assert_int_not_equal(access(w_sock, F_OK), 0);      /* never listened */
    assert_true(log_has("wtest migrated"));
    assert_false(log_has("wtest started"));

    admin = pg_env_admin();
    snprintf(sql, sizeof(sql), "SELECT count(*) FROM %s.things", w_schema);
    res = PQexec(admin, sql);
    assert_int_equal(PQresultStatus(res), PGRES_TUPLES_OK);
    PQclear(res);
    PQfinish(admin);

    (void) unlink(path);
    snprintf(path, sizeof(path), "%s/%s", w_dir, w_schema);
    (void) rmdir(path);
    worker_cleanup();
}


int
main(int argc, char **argv)
{
    const struct CMUnitTest  tests[] = {
        cmocka_unit_test(test_args),
        cmocka_unit_test(test_sigterm_drains_connections),
        cmocka_unit_test(test_sigterm_abandons_stuck_requests),
        cmocka_unit_test(test_log_requests_default),
        cmocka_unit_test(test_sigusr1_reopens_log_file),
        cmocka_unit_test(test_notify_ready_and_stopping),
        cmocka_unit_test(test_migrate_command),
        cmocka_unit_test_teardown(test_sigusr2_hands_over,
                                  successor_teardown),
        cmocka_unit_test(test_sigusr2_failed_handover_serves_on),
    };
    const char  *fail = getenv("ENC_TEST_FAIL_IF");

    /* a successor a hand-over exec'd (this binary is /proc/self/exe) */
    if (getenv("ENC_TEST_WORKER") != NULL) {
        if (fail != NULL && access(fail, F_OK) == 0) {
            return 3;
        }
        return enc_worker_main(argc, argv, &w_def);
    }
    /* a successor outlives its parent, the test's child: it becomes
       this process's child, which can wait for it */
    (void) prctl(PR_SET_CHILD_SUBREAPER, 1);

    return cmocka_run_group_tests(tests, NULL, NULL);
}
