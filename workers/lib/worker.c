/*
 * worker: enc_worker_main.  See worker.h.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cursor.h"
#include "notify.h"
#include "worker.h"


#define DB_WAIT_MS_MAX  30000    /* how long start-up waits for PostgreSQL */


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


/* blocks until SIGTERM or SIGINT; SIGHUP is logged and ignored, SIGUSR1
   reopens log.file */
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
        return sig;
    }
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
    char                   err[512];
    void                  *app = NULL;
    sigset_t               set;
    enc_http_t            *h = NULL;
    enc_config_t          *c = NULL;
    enc_pg_stmt_t         *stmts = NULL;
    enc_log_level_t        lvl;
    enc_worker_args_t      a;
    const enc_conf_key_t  *tables[3];

    enc_log_init(def->name, ENC_LOG_INFO);

    if (enc_worker_parse_args(argc, argv, &a, err, sizeof(err)) != 0) {
        fprintf(stderr, "encore-%s: %s\n", def->name, err);
        usage(def, NULL, stderr);
        return 2;
    }

    tables[0] = enc_runtime_conf_keys;
    tables[1] = def->conf_keys;
    tables[2] = NULL;
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
            consuming = enc_consumer_start(c, def->consumes,
                                           enc_event_table_apply,
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

    sig = wait_for_signal(&set);
    (void) enc_notify("STOPPING=1\nSTATUS=draining");
    /* strsignal is not thread-safe; sigabbrev_np is (glibc 2.32) */
    enc_log_info("worker: SIG%s received, draining",
                 sigabbrev_np(sig) != NULL ? sigabbrev_np(sig) : "?");
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
    enc_config_free(c);
    /* prepared statements are re-made on reconnect from these, so they
       live until the last connection is gone; threads may still hold
       connections after a drain timeout, when the process _exits above */
    enc_entity_expand_free(stmts);
    return rc;
}
