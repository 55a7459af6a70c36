/*
 * worker: enc_worker_main.  See worker.h.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "cursor.h"
#include "notify.h"
#include "worker.h"


#define DB_WAIT_MS_MAX  30000    /* how long start-up waits for PostgreSQL */
/* the descriptors a successor gets: the listening socket (sd_listen_fds'
   first) and the pipe it says "ready" on */
#define HANDOVER_LISTEN_FD  3
#define HANDOVER_READY_FD   4

extern char **environ;

/* set from ENCORE_HANDOVER_FD at start: the predecessor's pipe */
static int  handover_fd = -1;


int
enc_worker_parse_args(int argc, char **argv, enc_worker_args_t *a,
                      char *err, size_t errlen)
{
    int  i;

    memset(a, 0, sizeof(*a));
    for (i = 1; i < argc; i++) {
        if (strcmp(argv[i], "-c") == 0 || strcmp(argv[i], "--config") == 0) {
            if (i + 1 >= argc) {
                snprintf(err, errlen, "%s needs a file name", argv[i]);
                return -1;
            }
            a->config = argv[++i];
        } else if (strncmp(argv[i], "--config=", 9) == 0) {
            a->config = argv[i] + 9;
        } else if (strcmp(argv[i], "-h") == 0
                   || strcmp(argv[i], "--help") == 0)
        {
            a->help = 1;
        } else if (strcmp(argv[i], "--dump-config") == 0) {
            a->dump = 1;
        } else if (strcmp(argv[i], "--") == 0) {
            i++;
            break;
        } else if (argv[i][0] == '-') {
            snprintf(err, errlen, "unknown option \"%s\"", argv[i]);
            return -1;
        } else {
            break;                 /* the command: the rest is its own */
        }
    }
    a->argc = argc - i;
    a->argv = argv + i;
    return 0;
}


static void
usage(const enc_worker_def_t *def, const enc_config_t *c, FILE *out)
{
    const enc_worker_cmd_t  *cmd;

    fprintf(out,
            "usage: encore-%s [-c FILE] [--help] [--dump-config]"
            " [command args...]\n\n"
            "  -c, --config FILE  read \"key = value\" settings from FILE\n"
            "  --dump-config      print the effective configuration, exit\n"
            "  -h, --help         this text\n\n",
            def->name);

    fprintf(out, "commands (run instead of the server, after the"
            " migrations):\n"
            "  migrate\n"
            "      the migrations only (a deployment's job before a"
            " rollout), then exit\n");
    if (def->commands != NULL) {
        for (cmd = def->commands; cmd->name != NULL; cmd++) {
            fprintf(out, "  %s %s\n      %s\n", cmd->name, cmd->args,
                    cmd->help);
        }
    }
    fprintf(out, "\n");

    fprintf(out, "settings (every key a.b is also read from ENCORE_A_B):\n");
    if (c != NULL) {
        enc_config_help(c, out);
    }
}


/* whether argv[0] names one of def's commands (their arguments are the
   command's own business) */
static int
command_known(const enc_worker_def_t *def, const char *name)
{
    const enc_worker_cmd_t  *cmd;

    if (strcmp(name, "migrate") == 0) {
        return 1;                  /* every worker's: the runtime's own */
    }
    if (def->command == NULL || def->commands == NULL) {
        return def->command != NULL;
    }
    for (cmd = def->commands; cmd->name != NULL; cmd++) {
        if (strcmp(cmd->name, name) == 0) {
            return 1;
        }
    }
    return 0;
}


/* fills the defaults that depend on the worker's name */
static int
name_defaults(enc_config_t *c, const char *name)
{
    char         buf[256], err[256];
    const char  *v;

    v = enc_config_str(c, "db.schema");
    if ((v == NULL || v[0] == '\0')
        && enc_config_set(c, "db.schema", name, err, sizeof(err)) != 0)
    {
        fprintf(stderr, "encore-%s: %s\n", name, err);
        return -1;
    }
    v = enc_config_str(c, "http.listen");
    if (v == NULL || v[0] == '\0') {
        snprintf(buf, sizeof(buf), "unix:/tmp/encore-%s.sock", name);
        if (enc_config_set(c, "http.listen", buf, err, sizeof(err)) != 0) {
            fprintf(stderr, "encore-%s: %s\n", name, err);
            return -1;
        }
    }
    return 0;
}


static void
sleep_ms(long ms)
{
    struct timespec  ts = { ms / 1000, (ms % 1000) * 1000000 };

    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
        /* resume */
    }
}


/* migrations on a private connection, waiting for a database that is
   still starting.  A migration may rightly run longer than a request's
   statement (an index build, the advisory lock held by another process
   migrating), so the connection gets db.migrate_timeout_ms instead */
static int
migrate(const enc_config_t *c)
{
    int        rc, waited = 0;
    long       delay = 100;
    enc_pg_t  *pg;

    for (;;) {
        pg = enc_pg_connect_new();
        if (pg != NULL) {
            break;
        }
        if (waited >= DB_WAIT_MS_MAX) {
            enc_log_error("worker: database unreachable for %d ms",
                          DB_WAIT_MS_MAX);
            return -1;
        }
        sleep_ms(delay);
        waited += (int) delay;
        delay = delay * 2 > 2000 ? 2000 : delay * 2;
    }
    rc = enc_pg_set_timeout(pg, enc_config_int(c, "db.migrate_timeout_ms"));
    if (rc == 0) {
        rc = enc_migrate(pg, enc_config_str(c, "migrations.dir"),
                         enc_pg_schema());
    }
    enc_pg_close(pg);
    return rc;
}


/* every statement prepared once at start, on a connection of its own:
   SQL that no longer matches the schema, or a parameter count that does
   not match its SQL, stops the worker here rather than at the first
   request that runs it */
static int
check_statements(void)
{
    int        rc;
    enc_pg_t  *pg;

    pg = enc_pg_connect_new();
    if (pg == NULL) {
        enc_log_error("worker: database unreachable to check statements");
        return -1;
    }
    rc = enc_pg_check_statements(pg);
    enc_pg_close(pg);
    return rc;
}


/* log.file, with stdout sent to the same file: a server prints nothing
   there, and a stdout left on a rotated file would keep it on disk */
static int
log_file_open(const enc_config_t *c)
{
    const char  *path = enc_config_str(c, "log.file");

    if (path == NULL || path[0] == '\0') {
        return 0;
    }
    if (enc_log_open(path) != 0) {
        return -1;
    }
    (void) fflush(stdout);
    (void) dup2(STDERR_FILENO, STDOUT_FILENO);
    return 0;
}


/* reaps exited children: a successor that failed, or one given up on */
static void
reap_children(void)
{
    int    st;
    pid_t  pid;

    while ((pid = waitpid(-1, &st, WNOHANG)) > 0) {
        if (WIFEXITED(st)) {
            enc_log_info("worker: child %d exited with %d", (int) pid,
                         WEXITSTATUS(st));
        } else if (WIFSIGNALED(st)) {
            enc_log_info("worker: child %d ended by signal %d", (int) pid,
                         WTERMSIG(st));
        }
    }
}


/* blocks until SIGTERM, SIGINT or SIGUSR2; SIGHUP is logged and ignored,
   SIGUSR1 reopens log.file, SIGCHLD reaps */
static int
wait_for_signal(const sigset_t *set)
{
    int  sig;

    for (;;) {
        if (sigwait(set, &sig) != 0) {
            continue;
        }
        if (sig == SIGHUP) {
            enc_log_info("worker: SIGHUP ignored (restart to reload)");
            continue;
        }
        if (sig == SIGUSR1) {
            if (enc_log_reopen() == 0) {
                (void) dup2(STDERR_FILENO, STDOUT_FILENO);
            }
            continue;
        }
        if (sig == SIGCHLD) {
            reap_children();
            continue;
        }
        return sig;
    }
}


/* ---- hand-over -------------------------------------------------------------

   SIGUSR2 (nginx's binary upgrade): the worker starts the binary on disk
   (a new build) with its own arguments, the listening socket as fd 3 and
   LISTEN_PID/LISTEN_FDS/LISTEN_FDNAMES=handover (sd_listen_fds), and a
   pipe as fd 4 (ENCORE_HANDOVER_FD) on which the successor says it serves.
   Both accept from the one socket meanwhile; then the predecessor stops
   accepting (the socket, its path and its queue stay) and drains as on
   SIGTERM.  A successor that exits or is not serving within
   drain.handover_timeout_ms is told to stop, and the predecessor serves
   on. */

/* the successor's ENCORE_HANDOVER_FD, read once before any thread */
static void
handover_fd_take(void)
{
    long         n;
    char        *end;
    const char  *v = getenv("ENCORE_HANDOVER_FD");

    if (v == NULL) {
        return;
    }
    errno = 0;
    n = strtol(v, &end, 10);
    if (errno == 0 && *end == '\0' && n > 2 && n < INT_MAX
        && fcntl((int) n, F_GETFD) >= 0)
    {
        handover_fd = (int) n;
        (void) fcntl(handover_fd, F_SETFD, FD_CLOEXEC);
    }
    (void) unsetenv("ENCORE_HANDOVER_FD");
}


/* the successor, serving: tells the predecessor */
static void
handover_ready(void)
{
    ssize_t  n;

    if (handover_fd < 0) {
        return;
    }
    do {
        n = write(handover_fd, "READY=1\n", 8);
    } while (n < 0 && errno == EINTR);
    close(handover_fd);
    handover_fd = -1;
}


/* pid.file, written whole under a temporary name and renamed */
static void
pid_file_write(const enc_config_t *c)
{
    char         tmp[PATH_MAX];
    FILE        *f;
    const char  *path = enc_config_str(c, "pid.file");

    if (path == NULL || path[0] == '\0') {
        return;
    }
    if ((size_t) snprintf(tmp, sizeof(tmp), "%s.%d", path, (int) getpid())
        >= sizeof(tmp))
    {
        enc_log_warn("worker: pid.file \"%s\" too long", path);
        return;
    }
    f = fopen(tmp, "we");
    if (f == NULL) {
        enc_log_warn("worker: cannot write %s: %s", tmp, strerror(errno));
        return;
    }
    fprintf(f, "%d\n", (int) getpid());
    if (fclose(f) != 0 || rename(tmp, path) != 0) {
        enc_log_warn("worker: cannot write pid.file \"%s\": %s", path,
                     strerror(errno));
        (void) unlink(tmp);
    }
}


/* at exit: pid.file is removed if it still names this process (after a
   hand-over it names the successor) */
static void
pid_file_remove(const enc_config_t *c)
{
    long         pid = 0;
    FILE        *f;
    const char  *path = enc_config_str(c, "pid.file");

    if (path == NULL || path[0] == '\0') {
        return;
    }
    f = fopen(path, "re");
    if (f == NULL) {
        return;
    }
    if (fscanf(f, "%ld", &pid) != 1) {
        pid = 0;
    }
    fclose(f);
    if (pid == (long) getpid()) {
        (void) unlink(path);
    }
}


/* writes n in decimal after prefix into buf (async-signal-safe: for the
   forked child) */
static void
fmt_env_int(char *buf, const char *prefix, long n)
{
    char    digits[24];
    size_t  i = 0, k;

    do {
        digits[i++] = (char) ('0' + n % 10);
        n /= 10;
    } while (n > 0 && i < sizeof(digits));
    for (k = 0; prefix[k] != '\0'; k++) {
        buf[k] = prefix[k];
    }
    while (i > 0) {
        buf[k++] = digits[--i];
    }
    buf[k] = '\0';
}


/* environ without the variables the successor is given anew; NULL when
   out of memory.  Frees nothing: the array points into environ */
static char **
handover_env(char *listen_pid, char *listen_fds, char *names, char *ready)
{
    size_t   n, i, k = 0;
    char   **env;

    for (n = 0; environ[n] != NULL; n++) {
        /* count */
    }
    env = calloc(n + 5, sizeof(char *));
    if (env == NULL) {
        return NULL;
    }
    for (i = 0; i < n; i++) {
        if (strncmp(environ[i], "LISTEN_", 7) == 0
            || strncmp(environ[i], "ENCORE_HANDOVER_FD=", 19) == 0)
        {
            continue;
        }
        env[k++] = environ[i];
    }
    env[k++] = listen_pid;
    env[k++] = listen_fds;
    env[k++] = names;
    env[k++] = ready;
    env[k] = NULL;
    return env;
}


/* the binary on disk: /proc/self/exe's target, which names the file this
   process was started from even once a new build replaced it ("...
   (deleted)"), and then the new build */
static int
exe_path(char *buf, size_t len)
{
    ssize_t      n;
    size_t       sl;
    const char  *deleted = " (deleted)";

    n = readlink("/proc/self/exe", buf, len - 1);
    if (n <= 0) {
        return -1;
    }
    buf[n] = '\0';
    sl = strlen(deleted);
    if ((size_t) n > sl && strcmp(buf + n - sl, deleted) == 0) {
        buf[n - sl] = '\0';
    }
    return 0;
}


/*
 * Starts the successor and waits until it serves.  Returns its pid; 0
 * when the hand-over failed and this process serves on (logged); or, when
 * SIGTERM/SIGINT arrived meanwhile, -sig (the successor is told to stop).
 */
static pid_t
handover(enc_http_t *h, const enc_config_t *c, char **argv,
         const sigset_t *set)
{
    int              p[2] = { -1, -1 }, lfd, rfd = -1, sig, rc, fd, maxfd;
    char             path[PATH_MAX], ev_pid[40], ev_ready[40], buf[16];
    char             ev_fds[] = "LISTEN_FDS=1";
    char             ev_names[] = "LISTEN_FDNAMES=handover";
    char           **env = NULL;
    long             waited = 0, limit;
    pid_t            pid = 0;
    ssize_t          n;
    sigset_t         none;
    struct pollfd    pfd;
    struct timespec  zero = { 0, 0 };

    limit = enc_config_int(c, "drain.handover_timeout_ms");
    lfd = enc_http_listen_fd(h);
    if (lfd < 0) {
        enc_log_error("worker: hand-over failed: no listening socket");
        return 0;
    }
    if (exe_path(path, sizeof(path)) != 0) {
        enc_log_error("worker: hand-over failed: /proc/self/exe: %s",
                      strerror(errno));
        return 0;
    }
    /* above the descriptors the child moves them to */
    if (pipe2(p, O_CLOEXEC) != 0
        || (rfd = fcntl(p[1], F_DUPFD_CLOEXEC, HANDOVER_READY_FD + 1)) < 0)
    {
        enc_log_error("worker: hand-over failed: pipe: %s", strerror(errno));
        goto failed;
    }
    close(p[1]);
    p[1] = -1;
    fmt_env_int(ev_ready, "ENCORE_HANDOVER_FD=", HANDOVER_READY_FD);
    memcpy(ev_pid, "LISTEN_PID=", 12);
    env = handover_env(ev_pid, ev_fds, ev_names, ev_ready);
    if (env == NULL) {
        enc_log_error("worker: hand-over failed: out of memory");
        goto failed;
    }
    sigemptyset(&none);
    maxfd = (int) sysconf(_SC_OPEN_MAX);
    if (maxfd < 0 || maxfd > 65536) {
        maxfd = 65536;
    }

    (void) fflush(NULL);
    pid = fork();
    if (pid < 0) {
        enc_log_error("worker: hand-over failed: fork: %s", strerror(errno));
        pid = 0;
        goto failed;
    }
    if (pid == 0) {
        /* async-signal-safe calls only from here to execve */
        fmt_env_int(ev_pid, "LISTEN_PID=", (long) getpid());
        if (lfd == HANDOVER_LISTEN_FD) {
            rc = fcntl(lfd, F_SETFD, 0);
        } else {
            rc = dup2(lfd, HANDOVER_LISTEN_FD);
        }
        if (rc < 0 || dup2(rfd, HANDOVER_READY_FD) < 0) {
            _exit(126);
        }
        /* nothing else of this process's: its database and Kafka
           connections stay its own (one by one where a seccomp filter
           refuses close_range) */
        if (close_range(HANDOVER_READY_FD + 1, ~0U, 0) != 0) {
            for (fd = HANDOVER_READY_FD + 1; fd < maxfd; fd++) {
                (void) close(fd);
            }
        }
        (void) sigprocmask(SIG_SETMASK, &none, NULL);
        execve(path, argv, env);
        _exit(127);
    }
    close(rfd);
    rfd = -1;
    free(env);
    env = NULL;
    enc_log_info("worker: SIGUSR2: handing over to %s, pid %d", path,
                 (int) pid);

    pfd.fd = p[0];
    pfd.events = POLLIN;
    for ( ;; ) {
        rc = poll(&pfd, 1, 50);
        if (rc > 0) {
            do {
                n = read(p[0], buf, sizeof(buf));
            } while (n < 0 && errno == EINTR);
            if (n > 0) {
                break;                             /* serving */
            }
            enc_log_error("worker: hand-over failed: pid %d exited before"
                          " serving; serving on", (int) pid);
            reap_children();
            pid = 0;
            goto failed;
        }
        sig = sigtimedwait(set, NULL, &zero);
        if (sig == SIGTERM || sig == SIGINT) {
            enc_log_info("worker: SIG%s while handing over; stopping pid %d",
                         sigabbrev_np(sig), (int) pid);
            (void) kill(pid, SIGTERM);
            close(p[0]);
            return -sig;
        }
        if (sig == SIGUSR1 && enc_log_reopen() == 0) {
            (void) dup2(STDERR_FILENO, STDOUT_FILENO);
        }
        if (sig == SIGHUP || sig == SIGUSR2) {
            enc_log_info("worker: SIG%s ignored while handing over",
                         sigabbrev_np(sig));
        }
        waited += 50;
        if (waited >= limit) {
            enc_log_error("worker: hand-over failed: pid %d not serving"
                          " after %ld ms; stopping it, serving on",
                          (int) pid, limit);
            (void) kill(pid, SIGTERM);
            pid = 0;
            goto failed;
        }
    }
    close(p[0]);
    return pid;

failed:
    if (p[0] >= 0) {
        close(p[0]);
    }
    if (p[1] >= 0) {
        close(p[1]);
    }
    if (rfd >= 0) {
        close(rfd);
    }
    free(env);
    return 0;
}


/*
 * Ends the process while n handlers are still running.  enc_http_stop would
 * join the pool threads running them — stuck in libpq against a stalled
 * database, or in a slow handler — for as long as they take, and SIGTERM
 * must end the process.  What is lost is safe to lose: their transactions
 * roll back when the sessions drop, and outbox rows not yet marked sent
 * are relayed again by the next process (consumers dedupe through the
 * inbox).  _exit, not exit: atexit handlers and the sanitizers' leak check
 * would run under the threads still using that memory.  Log lines are
 * written with one write(2) each; stdio is flushed for the rest.
 */
static void
abandon(int n)
{
    enc_log_error("worker: drain timed out; exiting with %d requests"
                  " abandoned", n);
    (void) fflush(NULL);
    _exit(1);
}


static int   (*worker_ready_check)(void *);
static void   *worker_ready_arg;


void
enc_worker_set_ready_check(int (*check)(void *), void *arg)
{
    worker_ready_check = check;
    worker_ready_arg = arg;
}


static int  relay_checked;


static int
ready(void *arg)
{
    /* the outbox keeps writes safe while Kafka is away: only a relay that
       cannot reach the database makes the worker unready */
    if (relay_checked && !enc_relay_ready()) {
        return -1;
    }
    return worker_ready_check != NULL ? worker_ready_check(worker_ready_arg)
                                      : 0;
}


int
enc_worker_main(int argc, char **argv, const enc_worker_def_t *def)
{
    int                    rc = 1, sig, n, consumer = 0, relay = 0;
    int                    inited = 0, consuming;
    pid_t                  next = 0;
    char                   err[512];
    void                  *app = NULL;
    sigset_t               set;
    enc_http_t            *h = NULL;
    enc_config_t          *c = NULL;
    enc_pg_stmt_t         *stmts = NULL;
    enc_log_level_t        lvl;
    enc_worker_args_t      a;
    const enc_conf_key_t  *tables[4];

    enc_log_init(def->name, ENC_LOG_INFO);
    handover_fd_take();

    if (enc_worker_parse_args(argc, argv, &a, err, sizeof(err)) != 0) {
        fprintf(stderr, "encore-%s: %s\n", def->name, err);
        usage(def, NULL, stderr);
        return 2;
    }

    n = 0;
    tables[n++] = enc_runtime_conf_keys;
    if (def->conf_keys != NULL) {
        tables[n++] = def->conf_keys;
    }
    if (def->more_conf_keys != NULL) {
        tables[n++] = def->more_conf_keys;
    }
    tables[n] = NULL;
    c = enc_config_new(tables);
    if (c == NULL) {
        fprintf(stderr, "encore-%s: out of memory\n", def->name);
        return 1;
    }
    if (a.help || (a.argc > 0 && strcmp(a.argv[0], "help") == 0)) {
        usage(def, c, stdout);
        rc = 0;
        goto failed;
    }
    /* before the configuration and the database: a typo answers now */
    if (a.argc > 0 && !command_known(def, a.argv[0])) {
        fprintf(stderr, "encore-%s: unknown command \"%s\"\n", def->name,
                a.argv[0]);
        usage(def, NULL, stderr);
        rc = 2;
        goto failed;
    }
    if (enc_config_load(c, a.config, err, sizeof(err)) != 0) {
        fprintf(stderr, "encore-%s: %s\n", def->name, err);
        goto failed;
    }
    if (name_defaults(c, def->name) != 0) {
        goto failed;
    }
    if (a.dump) {
        enc_config_dump(c, stdout);
        rc = 0;
        goto failed;
    }

    if (enc_log_level_parse(enc_config_str(c, "log.level"), &lvl) != 0) {
        fprintf(stderr, "encore-%s: bad log.level \"%s\"\n", def->name,
                enc_config_str(c, "log.level"));
        goto failed;
    }
    enc_log_init(def->name, lvl);
    enc_metrics_init(def->name);

    /* before any thread exists, so that all of them inherit the mask and
       only sigwait() below ever sees these signals */
    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGHUP);
    sigaddset(&set, SIGUSR1);
    sigaddset(&set, SIGUSR2);
    sigaddset(&set, SIGCHLD);
    if (pthread_sigmask(SIG_BLOCK, &set, NULL) != 0
        || signal(SIGPIPE, SIG_IGN) == SIG_ERR)
    {
        enc_log_error("worker: cannot set up signals");
        goto failed;
    }

    if (def->no_database) {
        goto no_database;
    }

    if (def->entities != NULL) {
        stmts = enc_entity_expand(def->statements, def->entities);
        if (stmts == NULL) {
            goto failed;
        }
    }
    if (enc_pg_configure(c, stmts != NULL ? stmts : def->statements) != 0) {
        goto failed;
    }
    if (migrate(c) != 0) {
        enc_log_error("worker: migrations failed");
        goto failed;
    }
    if (check_statements() != 0) {
        enc_log_error("worker: its SQL statements do not match the schema "
                      "or their declared parameters (above); not starting");
        goto failed;
    }

no_database:

    if (a.argc > 0 && strcmp(a.argv[0], "migrate") == 0) {
        enc_log_info(def->no_database ? "worker: %s has no schema to migrate"
                                      : "worker: %s migrated", def->name);
        rc = 0;
        goto failed;
    }
    if (a.argc > 0) {
        if (def->command == NULL) {
            fprintf(stderr, "encore-%s: no commands; unexpected \"%s\"\n",
                    def->name, a.argv[0]);
            rc = 2;
            goto failed;
        }
        rc = def->command(c, a.argc, a.argv);
        goto failed;
    }

    /* serving from here on: commands above print to the caller's
       stdout and stderr */
    if (log_file_open(c) != 0) {
        goto failed;
    }

    if (!def->no_database && enc_cursor_init(c) != 0) {
        goto failed;
    }
    if (def->init != NULL && def->init(c, &app) != 0) {
        enc_log_error("worker: init failed");
        goto failed;
    }
    inited = 1;

    if (!def->no_database && def->consumes != NULL
        && def->consumes[0] != NULL)
    {
        if (def->on_event != NULL) {
            consuming = enc_consumer_start(c, def->consumes, def->on_event,
                                           app);
        } else if (def->events != NULL) {
            consuming = enc_consumer_start_ex(c, def->consumes,
                                              enc_event_table_apply,
                                              enc_event_table_alone,
                                              (void *) def->events);
        } else {
            consuming = -1;
        }
        if (consuming != 0) {
            enc_log_error("worker: cannot start the consumer");
            goto failed;
        }
        consumer = 1;
    }
    if (!def->no_database) {
        if (enc_relay_start(c) != 0) {
            enc_log_error("worker: cannot start the outbox relay");
            goto failed;
        }
        relay = 1;
    }

    h = enc_http_start(c, def->routes, app);
    if (h == NULL) {
        goto failed;
    }
    relay_checked = !def->no_database && enc_config_bool(c, "outbox.enabled");
    if (relay_checked || worker_ready_check != NULL) {
        enc_http_set_ready_check(h, ready, NULL);
    }
    enc_log_info("worker: %s started", def->name);
    /* Type=notify units: started means migrated, consuming and serving */
    (void) enc_notify("READY=1\nSTATUS=serving");
    pid_file_write(c);
    handover_ready();

    for ( ;; ) {
        sig = wait_for_signal(&set);
        if (sig != SIGUSR2) {
            break;
        }
        next = handover(h, c, argv, &set);
        if (next > 0) {
            break;
        }
        if (next < 0) {
            sig = (int) -next;
            next = 0;
            break;
        }
    }
    if (next > 0) {
        /* the successor is the service now (NotifyAccess=main accepts
           MAINPID from the main process), and has written pid.file */
        enc_http_share(h);
        snprintf(err, sizeof(err), "MAINPID=%d\nSTATUS=handed over to %d,"
                 " draining", (int) next, (int) next);
        (void) enc_notify(err);
        enc_log_info("worker: pid %d serves; draining", (int) next);
    } else {
        (void) enc_notify("STOPPING=1\nSTATUS=draining");
        /* strsignal is not thread-safe; sigabbrev_np is (glibc 2.32) */
        enc_log_info("worker: SIG%s received, draining",
                     sigabbrev_np(sig) != NULL ? sigabbrev_np(sig) : "?");
    }
    n = enc_http_drain(h, enc_config_int(c, "drain.timeout_ms"));
    if (n > 0) {
        abandon(n);
    }
    rc = 0;

failed:
    if (h != NULL) {
        enc_http_stop(h);
    }
    if (consumer) {
        enc_consumer_stop();
    }
    if (relay) {
        enc_relay_stop();
    }
    if (inited && def->fini != NULL) {
        def->fini(app);
    }
    if (rc == 0 && inited) {
        enc_log_info("worker: %s stopped", def->name);
    }
    if (h != NULL || inited) {
        pid_file_remove(c);
    }
    enc_config_free(c);
    /* prepared statements are re-made on reconnect from these, so they
       live until the last connection is gone; threads may still hold
       connections after a drain timeout, when the process _exits above */
    enc_entity_expand_free(stmts);
    return rc;
}
