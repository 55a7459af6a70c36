/*
 * worker: the whole wiring of a worker daemon.
 *
 * Threading: enc_worker_main() blocks the termination signals before any
 * thread starts (so every thread inherits the mask) and then only waits for
 * them with sigwait(); HTTP handlers run on libmicrohttpd's pool, the relay
 * and the consumer on their own threads.
 */
#ifndef ENC_WORKER_H
#define ENC_WORKER_H

#include "config.h"
#include "consumer.h"
#include "entity.h"
#include "event_table.h"
#include "http.h"
#include "json.h"
#include "log.h"
#include "metrics.h"
#include "migrate.h"
#include "outbox.h"
#include "pg.h"

/* One CLI subcommand, for --help and to refuse unknown ones before the
   database is touched. */
typedef struct {
    const char  *name;          /* "rotate-key"; NULL ends the list */
    const char  *args;          /* "KID", "[--reset]" or "" */
    const char  *help;          /* one line */
} enc_worker_cmd_t;

typedef struct {
    const char                  *name;        /* "auth" -> schema, log, metrics */
    const enc_route_t           *routes;      /* ends with {NULL} */
    const enc_pg_stmt_t         *statements;  /* ends with {NULL}; {entity}
                                                 references expanded
                                                 (entity.h) */
    const enc_entity_t *const   *entities;    /* NULL-terminated; may be NULL */
    const enc_conf_key_t        *conf_keys;   /* worker's own keys, ends with {NULL}; may be NULL */
    const enc_conf_key_t        *more_conf_keys; /* a second table, a part's own
                                                   (chat's engine); may be NULL */
    const char *const           *consumes;    /* topics, NULL-terminated; NULL = no consumer */
    enc_event_handler_pt         on_event;
    const enc_event_route_t     *events;      /* or, instead of on_event, the
                                                 events as a table
                                                 (event_table.h) */
    int  (*init)(const enc_config_t *c, void **app);   /* after migrations, before HTTP */
    /* CLI subcommands, optional: runs after migrations instead of serving;
       argv[0] is the command name; the return value is the exit status */
    int  (*command)(const enc_config_t *c, int argc, char **argv);
    const enc_worker_cmd_t      *commands;    /* what command accepts */
    void (*fini)(void *app);
    /* a daemon that owns no schema (the edge agent): no PostgreSQL at
       all — no migrations, statements, cursors, relay or consumer;
       /readyz asks only the ready check the worker sets in init through
       enc_worker_set_ready_check */
    int                          no_database;
} enc_worker_def_t;

/*
 * encore-<name> [-c conf/workers/<name>.conf] [--help] [--dump-config]
 *               [command args...]
 * Order: config, log, pg, migrations, init, consumer, relay, HTTP; then
 * waits for SIGTERM/SIGINT: drain HTTP (enc_http_drain: quiesce, then wait
 * up to drain.timeout_ms until every connection is closed), stop consumer
 * and relay (flushing), fini, return 0.
 * Returns the process exit status: 0, 1 on a start-up failure, 2 on a
 * usage error.  If handlers are still running when the drain times out
 * (stuck in the database, say), the process logs how many requests it
 * abandons and ends at once with _exit(1), without joining any thread.
 *
 * Under a service manager (NOTIFY_SOCKET set: systemd's Type=notify) it
 * says READY=1 once HTTP serves and STOPPING=1 when the drain begins
 * (notify.h).  The command "migrate", every worker's, runs the migrations
 * and exits 0 (a deployment's migration job before a rollout).
 *
 * SIGUSR2 hands over to the binary on disk on the same listening socket
 * (sd_listen_fds' protocol) and, once that serves, drains and returns 0;
 * a successor that fails leaves this one serving (README.md).
 *
 * Defaults filled from def->name when left empty: db.schema = name,
 * http.listen = unix:/tmp/encore-<name>.sock.
 */
int enc_worker_main(int argc, char **argv, const enc_worker_def_t *def);

/* An extra /readyz condition (0 ready, -1 not), for a worker's init to
   set before HTTP starts (enc_http_set_ready_check on the server
   enc_worker_main makes). */
void enc_worker_set_ready_check(int (*check)(void *), void *arg);

/* parsed command line, exposed for tests */
typedef struct {
    const char   *config;      /* -c FILE, NULL if absent */
    int           help;
    int           dump;
    int           argc;        /* command and its args */
    char        **argv;
} enc_worker_args_t;

/* 0, or -1 with a message in err */
int enc_worker_parse_args(int argc, char **argv, enc_worker_args_t *a,
                          char *err, size_t errlen);

#endif /* ENC_WORKER_H */
