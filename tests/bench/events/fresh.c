/*
 * fresh.c — the clock side of tests/bench/events/run (built by it with cc,
 * libpq and librdkafka; not part of the product).
 *
 *   fresh poll CONNINFO SQL...
 *       Reads "K KEY" lines on stdin; polls SQL number K (0-based, $1 =
 *       KEY, a prepared statement on one connection) until it returns a
 *       row, a poll every POLL_US (1 ms) on an absolute schedule, no
 *       LISTEN; answers "T_FIRST T_SEEN T_PREV POLLS" (CLOCK_REALTIME ns):
 *       when the first poll was sent, when the poll that saw the row was
 *       sent, when the one before it was sent (the row became visible
 *       between T_PREV and the snapshot of T_SEEN's poll; 0 when the first
 *       poll saw it), and how many polls it took.  "0 0 0 0" after
 *       POLL_GIVE_UP_S.
 *
 *   fresh floor CONNINFO BROKERS TOPIC LINGER_MS
 *       The peer: the same path with nothing but the two systems.  A
 *       consumer thread (librdkafka, its own group, from the end of the
 *       topic) INSERTs each message's key into bench.fresh and commits
 *       (one autocommitted statement); the main thread reads a count N on
 *       stdin, then N times: produces a key (idempotent producer, acks=all,
 *       linger.ms=LINGER_MS, as the relay's), and polls bench.fresh for it
 *       exactly as "poll" does.  Answers one line per message:
 *       "T_PRODUCE T_RECEIVED T_COMMITTED T_SEEN T_PREV POLLS".
 *
 * Everything runs on the same machine, so the timestamps of this program,
 * of the Python driver (time.time_ns) and of PostgreSQL (now()) are on one
 * clock.
 */

#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <libpq-fe.h>
#include <librdkafka/rdkafka.h>


#define POLL_US         1000
#define POLL_GIVE_UP_S  30
#define MAX_SQL         8
#define MAX_INFLIGHT    65536


static int64_t
now_ns(void)
{
    struct timespec  ts;

    (void) clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t) ts.tv_sec * 1000000000 + ts.tv_nsec;
}


static void
die(const char *what, const char *why)
{
    fprintf(stderr, "fresh: %s: %s\n", what, why);
    exit(1);
}


static PGconn *
connect_db(const char *conninfo)
{
    PGconn  *c = PQconnectdb(conninfo);

    if (PQstatus(c) != CONNECTION_OK) {
        die("connect", PQerrorMessage(c));
    }
    return c;
}


static void
prepare(PGconn *c, const char *name, const char *sql)
{
    PGresult  *r = PQprepare(c, name, sql, 1, NULL);

    if (PQresultStatus(r) != PGRES_COMMAND_OK) {
        die(sql, PQerrorMessage(c));
    }
    PQclear(r);
}


static void
exec_ok(PGconn *c, const char *sql)
{
    PGresult  *r = PQexec(c, sql);

    if (PQresultStatus(r) != PGRES_COMMAND_OK) {
        die(sql, PQerrorMessage(c));
    }
    PQclear(r);
}


/*
 * Polls the prepared statement "name" with key until it returns a row:
 * the first poll at once, then one every POLL_US on an absolute schedule
 * (a slow poll is not followed by a full period of sleep).
 */
static void
poll_row(PGconn *c, const char *name, const char *key, int64_t *first,
    int64_t *seen, int64_t *prev, long *polls)
{
    int64_t          t, last = 0, give_up;
    PGresult        *r;
    struct timespec  next;
    int              rows;

    *polls = 0;
    *first = now_ns();
    give_up = *first + (int64_t) POLL_GIVE_UP_S * 1000000000;
    (void) clock_gettime(CLOCK_MONOTONIC, &next);

    for ( ;; ) {
        t = now_ns();
        r = PQexecPrepared(c, name, 1, &key, NULL, NULL, 0);
        if (PQresultStatus(r) != PGRES_TUPLES_OK) {
            die(name, PQerrorMessage(c));
        }
        rows = PQntuples(r);
        PQclear(r);
        (*polls)++;
        if (rows > 0) {
            *seen = t;
            *prev = last;
            return;
        }
        if (t > give_up) {
            *first = *seen = *prev = 0;
            *polls = 0;
            return;
        }
        last = t;
        next.tv_nsec += POLL_US * 1000;
        if (next.tv_nsec >= 1000000000) {
            next.tv_nsec -= 1000000000;
            next.tv_sec++;
        }
        while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &next, NULL)
               == EINTR)
        {
            /* again */
        }
    }
}


static int
poll_main(int argc, char **argv)
{
    int      i, n, k;
    long     polls;
    char     name[16], line[512], *key, *end;
    PGconn  *c;
    int64_t  first, seen, prev;

    if (argc < 4) {
        die("usage", "fresh poll CONNINFO SQL...");
    }
    c = connect_db(argv[2]);
    n = argc - 3;
    if (n > MAX_SQL) {
        die("usage", "too many statements");
    }
    for (i = 0; i < n; i++) {
        (void) snprintf(name, sizeof(name), "q%d", i);
        prepare(c, name, argv[3 + i]);
    }

    while (fgets(line, sizeof(line), stdin) != NULL) {
        line[strcspn(line, "\r\n")] = '\0';
        k = (int) strtol(line, &end, 10);
        if (end == line || *end != ' ' || k < 0 || k >= n) {
            die("bad line", line);
        }
        key = end + 1;
        (void) snprintf(name, sizeof(name), "q%d", k);
        poll_row(c, name, key, &first, &seen, &prev, &polls);
        printf("%" PRId64 " %" PRId64 " %" PRId64 " %ld\n",
               first, seen, prev, polls);
        fflush(stdout);
    }
    PQfinish(c);
    return 0;
}


/* ---- the peer ------------------------------------------------------------ */

typedef struct {
    char              prefix[64];   /* "fresh-<pid>-": this run's keys */
    size_t            prefix_len;
    rd_kafka_t       *rk;
    PGconn           *db;
    atomic_int        stop;
    atomic_int        assigned;
    /* by message number (the key's suffix) */
    int64_t          *received;
    int64_t          *committed;
} floor_t;


static void
rebalance(rd_kafka_t *rk, rd_kafka_resp_err_t err,
    rd_kafka_topic_partition_list_t *parts, void *opaque)
{
    floor_t  *f = opaque;
    int       i;

    if (err == RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS) {
        /* from the end as it is now, so that every message produced
           after this returns is consumed */
        for (i = 0; i < parts->cnt; i++) {
            int64_t  lo, hi;

            if (rd_kafka_query_watermark_offsets(rk, parts->elems[i].topic,
                    parts->elems[i].partition, &lo, &hi, 10000)
                != RD_KAFKA_RESP_ERR_NO_ERROR)
            {
                die("watermarks", parts->elems[i].topic);
            }
            parts->elems[i].offset = hi;
        }
        (void) rd_kafka_assign(rk, parts);
        atomic_store(&f->assigned, 1);
    } else {
        (void) rd_kafka_assign(rk, NULL);
        atomic_store(&f->assigned, 0);
    }
}


static void *
floor_consumer(void *arg)
{
    floor_t             *f = arg;
    rd_kafka_message_t  *m;
    PGresult            *r;
    char                 key[128];
    const char          *p;
    long                 i;
    int64_t              t;

    while (!atomic_load(&f->stop)) {
        m = rd_kafka_consumer_poll(f->rk, 100);
        if (m == NULL) {
            continue;
        }
        if (m->err != RD_KAFKA_RESP_ERR_NO_ERROR || m->key == NULL
            || m->key_len >= sizeof(key) || m->key_len <= f->prefix_len
            || memcmp(m->key, f->prefix, f->prefix_len) != 0)
        {
            rd_kafka_message_destroy(m);
            continue;
        }
        t = now_ns();
        memcpy(key, m->key, m->key_len);
        key[m->key_len] = '\0';
        p = key;
        r = PQexecPrepared(f->db, "ins", 1, &p, NULL, NULL, 0);
        if (PQresultStatus(r) != PGRES_COMMAND_OK) {
            die("insert", PQerrorMessage(f->db));
        }
        PQclear(r);
        p = strrchr(key, '-');
        i = p != NULL ? strtol(p + 1, NULL, 10) : -1;
        if (i >= 0 && i < MAX_INFLIGHT) {
            f->received[i] = t;
            f->committed[i] = now_ns();
        }
        rd_kafka_message_destroy(m);
    }
    return NULL;
}


static int
floor_main(int argc, char **argv)
{
    char                      errstr[512], group[64], key[128], line[64];
    long                      n, i, next = 0, polls;
    int64_t                   t0, first, seen, prev;
    floor_t                   f;
    PGconn                   *poller;
    pthread_t                 th;
    rd_kafka_t               *producer;
    rd_kafka_conf_t          *pc, *cc;
    rd_kafka_resp_err_t       err;
    rd_kafka_topic_partition_list_t  *topics;

    if (argc != 6) {
        die("usage", "fresh floor CONNINFO BROKERS TOPIC LINGER_MS");
    }
    memset(&f, 0, sizeof(f));
    (void) snprintf(f.prefix, sizeof(f.prefix), "fresh-%ld-", (long) getpid());
    f.prefix_len = strlen(f.prefix);
    f.received = calloc(MAX_INFLIGHT, sizeof(int64_t));
    f.committed = calloc(MAX_INFLIGHT, sizeof(int64_t));
    if (f.received == NULL || f.committed == NULL) {
        die("calloc", "out of memory");
    }

    f.db = connect_db(argv[2]);
    exec_ok(f.db, "CREATE SCHEMA IF NOT EXISTS bench");
    exec_ok(f.db, "CREATE TABLE IF NOT EXISTS bench.fresh "
                  "(id text PRIMARY KEY, "
                  "at timestamptz NOT NULL DEFAULT now())");
    prepare(f.db, "ins", "INSERT INTO bench.fresh (id) VALUES ($1)");
    poller = connect_db(argv[2]);
    prepare(poller, "seen", "SELECT 1 FROM bench.fresh WHERE id = $1");

    pc = rd_kafka_conf_new();
    if (rd_kafka_conf_set(pc, "bootstrap.servers", argv[3], errstr,
                          sizeof(errstr)) != RD_KAFKA_CONF_OK
        || rd_kafka_conf_set(pc, "enable.idempotence", "true", errstr,
                             sizeof(errstr)) != RD_KAFKA_CONF_OK
        || rd_kafka_conf_set(pc, "acks", "all", errstr, sizeof(errstr))
           != RD_KAFKA_CONF_OK
        || rd_kafka_conf_set(pc, "linger.ms", argv[5], errstr,
                             sizeof(errstr)) != RD_KAFKA_CONF_OK
        || rd_kafka_conf_set(pc, "compression.type", "lz4", errstr,
                             sizeof(errstr)) != RD_KAFKA_CONF_OK)
    {
        die("producer conf", errstr);
    }
    producer = rd_kafka_new(RD_KAFKA_PRODUCER, pc, errstr, sizeof(errstr));
    if (producer == NULL) {
        die("producer", errstr);
    }

    /* the topic exists (auto-created) before the consumer subscribes */
    err = rd_kafka_producev(producer, RD_KAFKA_V_TOPIC(argv[4]),
              RD_KAFKA_V_KEY("create", 6), RD_KAFKA_V_VALUE("{}", 2),
              RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_END);
    if (err != RD_KAFKA_RESP_ERR_NO_ERROR
        || rd_kafka_flush(producer, 30000) != RD_KAFKA_RESP_ERR_NO_ERROR)
    {
        die("create topic", argv[4]);
    }

    cc = rd_kafka_conf_new();
    (void) snprintf(group, sizeof(group), "encore-bench-fresh-%ld",
                    (long) getpid());
    if (rd_kafka_conf_set(cc, "bootstrap.servers", argv[3], errstr,
                          sizeof(errstr)) != RD_KAFKA_CONF_OK
        || rd_kafka_conf_set(cc, "group.id", group, errstr, sizeof(errstr))
           != RD_KAFKA_CONF_OK
        || rd_kafka_conf_set(cc, "enable.auto.commit", "false", errstr,
                             sizeof(errstr)) != RD_KAFKA_CONF_OK)
    {
        die("consumer conf", errstr);
    }
    rd_kafka_conf_set_opaque(cc, &f);
    rd_kafka_conf_set_rebalance_cb(cc, rebalance);
    f.rk = rd_kafka_new(RD_KAFKA_CONSUMER, cc, errstr, sizeof(errstr));
    if (f.rk == NULL) {
        die("consumer", errstr);
    }
    (void) rd_kafka_poll_set_consumer(f.rk);
    topics = rd_kafka_topic_partition_list_new(1);
    rd_kafka_topic_partition_list_add(topics, argv[4], RD_KAFKA_PARTITION_UA);
    if ((err = rd_kafka_subscribe(f.rk, topics)) != RD_KAFKA_RESP_ERR_NO_ERROR) {
        die("subscribe", rd_kafka_err2str(err));
    }
    rd_kafka_topic_partition_list_destroy(topics);
    if (pthread_create(&th, NULL, floor_consumer, &f) != 0) {
        die("pthread_create", strerror(errno));
    }
    for (i = 0; i < 600 && !atomic_load(&f.assigned); i++) {
        (void) usleep(50000);
    }
    if (!atomic_load(&f.assigned)) {
        die("consumer", "no partitions assigned within 30 s");
    }
    printf("ready\n");
    fflush(stdout);

    while (fgets(line, sizeof(line), stdin) != NULL) {
        n = strtol(line, NULL, 10);
        for (i = 0; i < n; i++, next++) {
            if (next >= MAX_INFLIGHT) {
                die("floor", "too many messages");
            }
            (void) snprintf(key, sizeof(key), "%s%ld", f.prefix, next);
            f.received[next] = f.committed[next] = 0;
            t0 = now_ns();
            err = rd_kafka_producev(producer,
                      RD_KAFKA_V_TOPIC(argv[4]),
                      RD_KAFKA_V_KEY(key, strlen(key)),
                      RD_KAFKA_V_VALUE("{}", 2),
                      RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
                      RD_KAFKA_V_END);
            if (err != RD_KAFKA_RESP_ERR_NO_ERROR) {
                die("produce", rd_kafka_err2str(err));
            }
            poll_row(poller, "seen", key, &first, &seen, &prev, &polls);
            (void) rd_kafka_poll(producer, 0);   /* delivery reports */
            printf("%" PRId64 " %" PRId64 " %" PRId64 " %" PRId64 " %"
                   PRId64 " %ld\n", t0, f.received[next], f.committed[next],
                   seen, prev, polls);
            fflush(stdout);
        }
    }

    atomic_store(&f.stop, 1);
    (void) pthread_join(th, NULL);
    (void) rd_kafka_flush(producer, 5000);
    rd_kafka_destroy(producer);
    (void) rd_kafka_consumer_close(f.rk);
    rd_kafka_destroy(f.rk);
    PQfinish(poller);
    PQfinish(f.db);
    return 0;
}


int
main(int argc, char **argv)
{
    if (argc >= 2 && strcmp(argv[1], "poll") == 0) {
        return poll_main(argc, argv);
    }
    if (argc >= 2 && strcmp(argv[1], "floor") == 0) {
        return floor_main(argc, argv);
    }
    die("usage", "fresh poll|floor ...");
    return 2;
}
