/*
 * agent.c — the feed thread: Kafka in, the edge's zone out (agent.h).
 */

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <curl/curl.h>
#include <librdkafka/rdkafka.h>

#include "agent.h"
#include "kafka.h"
#include "log.h"
#include "metrics.h"


#define META_TIMEOUT_MS   5000
#define POLL_MAX_MS       100
#define END_TIMEOUT_MS    500
#define PARTITIONS_MAX    1024


const enc_conf_key_t  agent_conf_keys[] = {
    { "agent.edge_url", ENC_CONF_STR,
      "http://127.0.0.1:8080/internal/revocations", 0, 0, 0,
      "the edge's revocation endpoint (loopback only)" },
    { "agent.edge_socket", ENC_CONF_STR, "", 0, 0, 0,
      "a unix socket nginx listens on for it instead of TCP (empty: TCP)" },
    { "agent.topic", ENC_CONF_STR, "encore.auth.revocations", 0, 0, 0,
      "the revocation events" },
    { "agent.window_s", ENC_CONF_INT, "960", 1, 604800, 0,
      "replayed at start and after an edge restart: the longest access"
      " token lifetime plus the edge's leeway (seconds)" },
    { "agent.heartbeat_ms", ENC_CONF_INT, "1000", 100, 60000, 0,
      "an empty post at least this often: the edge counts itself behind"
      " when posts stop" },
    { "agent.stale_ms", ENC_CONF_INT, "5000", 500, 600000, 0,
      "/readyz fails when no post succeeded for this long" },
    { "agent.post_timeout_ms", ENC_CONF_INT, "2000", 100, 60000, 0,
      "deadline of one post, connection included" },
    { NULL, 0, NULL, 0, 0, 0, NULL }
};


/* what agent.topic names by default (infrastructure/k8s/render grants
   the agent's KafkaUser these) */
const char *const  agent_topics[] = { "encore.auth.revocations", NULL };


typedef struct {
    int32_t    id;
    int64_t    end;              /* the high watermark the replay reads to */
    int64_t    next;             /* next offset to read */
} part_t;


static struct {
    const enc_config_t  *conf;
    pthread_t            thread;
    int                  running;
    atomic_int           stop;

    /* read by /readyz and /metrics */
    atomic_int           replayed;
    atomic_llong         last_ok_ms;
    atomic_llong         caught_up_ms;   /* last seen at every end */

    rd_kafka_t          *rk;
    rd_kafka_topic_t    *rkt;
    rd_kafka_queue_t    *queue;      /* every partition's messages */
    agent_edge_t        *edge;
    const char          *topic;
    long                 window_s, heartbeat_ms, stale_ms;

    part_t              *parts;
    int                  nparts;
    int                  assigned;   /* the replay's offsets are assigned */

    json_t              *pending;    /* entries not yet posted */
    long long            pending_at; /* the newest event's time in it */
    long long            applied_at; /* the newest event's time posted */
    long long            last_post_ms;
    int                  zone_known; /* an answer told the zone (or none) */
    int                  failing;    /* posts failed since the last success */
    long                 backoff_ms;
    char                 zone[AGENT_ZONE_ID_MAX + 1];
} agent;


static long long
now_ms(void)
{
    struct timespec  ts;

    clock_gettime(CLOCK_REALTIME, &ts);
    return (long long) ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}


/* sleeps ms, waking early when asked to stop */
static void
nap(long ms)
{
    struct timespec  ts;

    while (ms > 0 && !atomic_load(&agent.stop)) {
        ts.tv_sec = 0;
        ts.tv_nsec = (ms > 50 ? 50 : ms) * 1000000L;
        (void) nanosleep(&ts, NULL);
        ms -= 50;
    }
}


int
agent_ready(void *arg)
{
    (void) arg;

    if (!atomic_load(&agent.replayed)
        || now_ms() - atomic_load(&agent.last_ok_ms) > agent.stale_ms
        || now_ms() - atomic_load(&agent.caught_up_ms) > agent.stale_ms)
    {
        return -1;
    }
    return 0;
}


static rd_kafka_t *
kafka_new(const enc_config_t *c)
{
    int                 i, n;
    char                err[512], pw[256];
    rd_kafka_t         *rk;
    const char         *extra[17], *v;
    rd_kafka_conf_t    *conf;
    static const char  *base[] = {
        /* no group (the simple consumer): every edge host reads every
           event, and where it starts is decided by time, not by
           committed offsets */
        "enable.auto.commit", "false",
        "enable.auto.offset.store", "false",
        /* the end of a partition says the replay reached it, also when
           its last offsets are transaction markers never delivered */
        "enable.partition.eof", "true",
        /* an event is posted as soon as it is there */
        "fetch.wait.max.ms", "50",
        "fetch.error.backoff.ms", "100",
        "topic.metadata.refresh.interval.ms", "10000",
        NULL
    };

    n = enc_kafka_security(c, extra, 0, 16, pw, sizeof(pw), err,
                           sizeof(err));
    if (n < 0) {
        enc_log_error("agent: %s", err);
        return NULL;
    }

    conf = rd_kafka_conf_new();
    if (conf == NULL) {
        explicit_bzero(pw, sizeof(pw));
        return NULL;
    }
    for (i = 0; base[i] != NULL; i += 2) {
        if (rd_kafka_conf_set(conf, base[i], base[i + 1], err, sizeof(err))
            != RD_KAFKA_CONF_OK)
        {
            goto failed;
        }
    }
    for (i = 0; i < n; i += 2) {
        if (rd_kafka_conf_set(conf, extra[i], extra[i + 1], err, sizeof(err))
            != RD_KAFKA_CONF_OK)
        {
            goto failed;
        }
    }
    if (rd_kafka_conf_set(conf, "bootstrap.servers",
                          enc_config_str(c, "kafka.brokers"), err,
                          sizeof(err)) != RD_KAFKA_CONF_OK)
    {
        goto failed;
    }
    v = enc_config_str(c, "kafka.client_id");
    if (rd_kafka_conf_set(conf, "client.id",
                          v != NULL && v[0] != '\0' ? v : "encore-edge-agent",
                          err, sizeof(err)) != RD_KAFKA_CONF_OK)
    {
        goto failed;
    }
    enc_kafka_conf_set_logging(conf);
    explicit_bzero(pw, sizeof(pw));

    /* on success rd_kafka_new owns conf */
    rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, err, sizeof(err));
    if (rk == NULL) {
        enc_log_error("agent: cannot create the consumer: %s", err);
        rd_kafka_conf_destroy(conf);
        return NULL;
    }
    return rk;

failed:

    explicit_bzero(pw, sizeof(pw));
    enc_log_error("agent: kafka setting: %s", err);
    rd_kafka_conf_destroy(conf);
    return NULL;
}


/*
 * The replay: every partition of the topic from the first event of the
 * last window (offsets_for_times) up to its high watermark now.  0 when
 * assigned, -1 to retry later (Kafka unreachable, no such topic yet).
 */
/* stops reading every partition started (a new replay restarts them) */
static void
replay_unassign(void)
{
    int  i;

    if (agent.assigned) {
        for (i = 0; i < agent.nparts; i++) {
            (void) rd_kafka_consume_stop(agent.rkt, agent.parts[i].id);
        }
    }
    agent.assigned = 0;
}


/*
 * The replay: every partition of the topic from the first event of the
 * last window (offsets_for_times) up to its high watermark now.  0 when
 * started, -1 to retry later (Kafka unreachable, no such topic yet).
 * The simple consumer reads them into one queue: librdkafka's assign()
 * wants a consumer group, which an edge host must not share.
 */
static int
replay_assign(void)
{
    int                                i, rc = -1;
    int64_t                            lo, hi;
    long long                          since;
    rd_kafka_resp_err_t                err;
    const rd_kafka_metadata_t         *md = NULL;
    const rd_kafka_metadata_topic_t   *t;
    rd_kafka_topic_partition_list_t   *list = NULL;

    replay_unassign();

    err = rd_kafka_metadata(agent.rk, 0, agent.rkt, &md, META_TIMEOUT_MS);
    if (err != RD_KAFKA_RESP_ERR_NO_ERROR || md->topic_cnt != 1) {
        enc_log_warn("agent: no metadata for %s: %s", agent.topic,
                     rd_kafka_err2str(err));
        goto done;
    }
    t = &md->topics[0];
    if (t->err != RD_KAFKA_RESP_ERR_NO_ERROR || t->partition_cnt == 0
        || t->partition_cnt > PARTITIONS_MAX)
    {
        enc_log_warn("agent: topic %s: %s", agent.topic,
                     t->err != RD_KAFKA_RESP_ERR_NO_ERROR
                     ? rd_kafka_err2str(t->err) : "no partitions");
        goto done;
    }

    free(agent.parts);
    agent.nparts = 0;
    agent.parts = calloc((size_t) t->partition_cnt, sizeof(part_t));
    list = rd_kafka_topic_partition_list_new(t->partition_cnt);
    if (agent.parts == NULL || list == NULL) {
        goto done;
    }

    since = now_ms() - agent.window_s * 1000;
    for (i = 0; i < t->partition_cnt; i++) {
        agent.parts[i].id = t->partitions[i].id;
        err = rd_kafka_query_watermark_offsets(agent.rk, agent.topic,
                                               agent.parts[i].id, &lo, &hi,
                                               META_TIMEOUT_MS);
        if (err != RD_KAFKA_RESP_ERR_NO_ERROR) {
            enc_log_warn("agent: watermarks of %s [%d]: %s", agent.topic,
                         (int) agent.parts[i].id, rd_kafka_err2str(err));
            goto done;
        }
        agent.parts[i].end = hi;
        rd_kafka_topic_partition_list_add(list, agent.topic,
                                          agent.parts[i].id)->offset = since;
    }

    err = rd_kafka_offsets_for_times(agent.rk, list, META_TIMEOUT_MS);
    if (err != RD_KAFKA_RESP_ERR_NO_ERROR) {
        enc_log_warn("agent: offsets_for_times: %s", rd_kafka_err2str(err));
        goto done;
    }
    for (i = 0; i < list->cnt; i++) {
        /* -1: no event since then, start at the end seen */
        if (list->elems[i].err != RD_KAFKA_RESP_ERR_NO_ERROR
            || list->elems[i].offset < 0)
        {
            list->elems[i].offset = agent.parts[i].end;
        }
        agent.parts[i].next = list->elems[i].offset;
    }

    for (i = 0; i < list->cnt; i++) {
        if (rd_kafka_consume_start_queue(agent.rkt, agent.parts[i].id,
                                         agent.parts[i].next, agent.queue)
            != 0)
        {
            enc_log_warn("agent: reading %s [%d]: %s", agent.topic,
                         (int) agent.parts[i].id,
                         rd_kafka_err2str(rd_kafka_last_error()));
            agent.nparts = i;
            agent.assigned = 1;
            replay_unassign();
            goto done;
        }
    }

    agent.nparts = list->cnt;
    agent.assigned = 1;
    rc = 0;
    enc_log_info("agent: replaying the last %lds of %s (%d partitions)",
                 agent.window_s, agent.topic, agent.nparts);

done:

    if (list != NULL) {
        rd_kafka_topic_partition_list_destroy(list);
    }
    if (md != NULL) {
        rd_kafka_metadata_destroy(md);
    }
    return rc;
}


static part_t *
part(int32_t id)
{
    int  i;

    for (i = 0; i < agent.nparts; i++) {
        if (agent.parts[i].id == id) {
            return &agent.parts[i];
        }
    }
    return NULL;
}


/* whether every partition was read to the end seen at the replay's start */
static int
replay_done(void)
{
    int  i;

    if (!agent.assigned) {
        return 0;
    }
    for (i = 0; i < agent.nparts; i++) {
        if (agent.parts[i].next < agent.parts[i].end) {
            return 0;
        }
    }
    return 1;
}


/* one message of the consumer: an event into pending, or an end */
static void
message(rd_kafka_message_t *m)
{
    long long   at;
    json_t     *e;
    part_t     *p;

    p = part(m->partition);

    if (m->err == RD_KAFKA_RESP_ERR__PARTITION_EOF) {
        if (p != NULL && m->offset > p->next) {
            p->next = m->offset;
        }
        return;
    }
    if (m->err != RD_KAFKA_RESP_ERR_NO_ERROR) {
        enc_log_warn("agent: consume: %s", rd_kafka_message_errstr(m));
        return;
    }
    if (p != NULL) {
        p->next = m->offset + 1;
    }

    e = agent_entry_parse(m->payload, m->len, now_ms() / 1000, &at);
    if (e == NULL) {
        enc_log_warn("agent: %s [%d] offset %lld is no revocation; skipped",
                     agent.topic, (int) m->partition, (long long) m->offset);
        enc_metrics_counter_add("encore_agent_events_skipped_total",
                                "events that were no revocation", 1);
        return;
    }
    if (at == 0) {
        at = rd_kafka_message_timestamp(m, NULL);
    }
    if (at > agent.pending_at) {
        agent.pending_at = at;
    }
    (void) json_array_append_new(agent.pending, e);
    enc_metrics_counter_add("encore_agent_events_total",
                            "revocation events read", 1);
}


/* starts the window's replay again: the edge lost its zone */
static void
replay_again(const char *why)
{
    enc_log_warn("agent: %s; replaying the window again", why);
    enc_metrics_counter_add("encore_agent_replays_total",
                            "window replays after the first", 1);
    atomic_store(&agent.replayed, 0);
    json_array_clear(agent.pending);
    agent.pending_at = 0;
    replay_unassign();
}


/*
 * Whether every partition was read to its end as the broker says it is
 * now: only then may a heartbeat say "through": now.  An idle consumer
 * and one that lost the brokers look alike otherwise.
 */
static int
at_end(void)
{
    int                  i;
    int64_t              lo, hi;
    rd_kafka_resp_err_t  err;

    if (!agent.assigned) {
        return 0;
    }
    for (i = 0; i < agent.nparts; i++) {
        err = rd_kafka_query_watermark_offsets(agent.rk, agent.topic,
                                               agent.parts[i].id, &lo, &hi,
                                               END_TIMEOUT_MS);
        if (err != RD_KAFKA_RESP_ERR_NO_ERROR || agent.parts[i].next < hi) {
            return 0;
        }
    }
    atomic_store(&agent.caught_up_ms, now_ms());
    return 1;
}


/*
 * After the edge refused a batch (400, 413): each pending entry on its own,
 * "through" the time before the batch (its events are not all applied
 * until the last one).  An entry the edge refuses again is dropped, logged
 * and counted; the rest are applied.  0 when every entry was posted or
 * dropped, -1 when a post failed (the entries not yet posted stay pending
 * and are retried as a batch; the zone's answer is checked there).
 */
static int
post_each(int replayed, long long through)
{
    long             status;
    char            *body, *e_text, zone[AGENT_ZONE_ID_MAX + 1];
    size_t           len, i, n;
    json_t          *one, *e;
    agent_post_rc_t  rc;

    n = json_array_size(agent.pending);
    for (i = 0; i < n; i++) {
        e = json_array_get(agent.pending, 0);
        one = json_pack("[O]", e);
        if (one == NULL) {
            return -1;
        }
        body = agent_body(one, replayed, through, &len);
        json_decref(one);
        if (body == NULL) {
            return -1;
        }
        rc = agent_edge_post(agent.edge, body, len, agent.zone, &status,
                             zone);
        free(body);

        if (rc == AGENT_POST_FAILED
            || (rc == AGENT_POST_REFUSED && status != 400 && status != 413)
            || (zone[0] != '\0' && agent.zone_known
                && strcmp(zone, agent.zone) != 0))
        {
            /* the edge went away or restarted: the batch path decides */
            agent.failing = 1;
            return -1;
        }

        if (rc == AGENT_POST_REFUSED) {
            e_text = json_dumps(e, JSON_COMPACT);
            enc_log_error("agent: the edge refused revocation %s with %ld;"
                          " dropped", e_text != NULL ? e_text : "?", status);
            free(e_text);
            enc_metrics_counter_add("encore_agent_revocations_dropped_total",
                                    "revocations the edge refused", 1);
        }
        (void) json_array_remove(agent.pending, 0);
    }
    return 0;
}


/*
 * Posts pending (possibly nothing: a heartbeat).  0 posted (or refused
 * for good and dropped), -1 to retry after a backoff.
 */
static int
post(int caught_up)
{
    int              replayed, new_zone;
    long             status;
    char            *body, zone[AGENT_ZONE_ID_MAX + 1];
    size_t           len;
    long long        t, through, prev;
    agent_post_rc_t  rc;

    replayed = atomic_load(&agent.replayed);
    t = now_ms();
    prev = agent.applied_at;
    if (agent.pending_at > agent.applied_at) {
        agent.applied_at = agent.pending_at;
    }
    through = caught_up && replayed ? t : agent.applied_at;

    body = agent_body(agent.pending, replayed, through, &len);
    if (body == NULL) {
        return -1;
    }
    rc = agent_edge_post(agent.edge, body, len, agent.zone, &status, zone);
    free(body);
    agent.last_post_ms = t;

    if (rc == AGENT_POST_FAILED
        || (rc == AGENT_POST_REFUSED && status != 400 && status != 413))
    {
        if (!agent.failing) {
            enc_log_warn("agent: the edge did not take a post (status %ld);"
                         " retrying", status);
        }
        agent.failing = 1;
        enc_metrics_counter_add("encore_agent_posts_failed_total",
                                "posts the edge did not take", 1);
        return -1;
    }

    if (rc == AGENT_POST_REFUSED) {
        /*
         * never taken, however often sent: one entry the edge refuses
         * (its rules changed, its clock) makes it refuse the batch.  The
         * entries go again one by one, so that only those refused are
         * dropped; never the batch again, never a replay for it.
         */
        enc_log_warn("agent: the edge refused a batch of %zu revocations"
                     " with %ld; posting them one by one",
                     json_array_size(agent.pending), status);
        if (post_each(replayed, prev) != 0) {
            return -1;
        }
        if (zone[0] == '\0') {
            /* an edge that sends no id on a refusal: no news of its zone */
            memcpy(zone, agent.zone, sizeof(zone));
        }
    }

    atomic_store(&agent.last_ok_ms, now_ms());
    enc_metrics_counter_add("encore_agent_posts_total",
                            "posts the edge took", 1);
    json_array_clear(agent.pending);
    agent.pending_at = 0;
    agent.backoff_ms = 0;

    /* a restarted edge answers with another zone id, or (an edge that
       sends none) came back after posts failed to reach it */
    new_zone = agent.zone_known && strcmp(zone, agent.zone) != 0;
    memcpy(agent.zone, zone, sizeof(zone));
    agent.zone_known = 1;
    if (new_zone) {
        agent.failing = 0;
        replay_again("the edge answers with a new zone");
        return 0;
    }
    if (agent.failing) {
        agent.failing = 0;
        if (zone[0] == '\0' && atomic_load(&agent.replayed)) {
            replay_again("the edge is back after posts failed");
        } else {
            enc_log_info("agent: the edge takes posts again");
        }
    }
    return 0;
}


static void *
run(void *arg)
{
    int                  caught_up, was_replayed, due;
    long long            t;
    rd_kafka_message_t  *m;

    (void) arg;

    while (!atomic_load(&agent.stop)) {

        /* until it works, heartbeats still tell the edge it is behind */
        if (!agent.assigned) {
            (void) replay_assign();
        }
        rd_kafka_poll(agent.rk, 0);       /* error and log callbacks */

        /* a post the edge did not take: again after a backoff, reading
           nothing meanwhile (Kafka keeps it) */
        if (agent.failing) {
            agent.backoff_ms = agent_backoff_next(agent.backoff_ms);
            nap(agent.backoff_ms);
            if (!atomic_load(&agent.stop)) {
                (void) post(0);
            }
            continue;
        }

        caught_up = 0;
        if (agent.assigned) {
            t = agent.heartbeat_ms - (now_ms() - agent.last_post_ms);
            m = rd_kafka_consume_queue(agent.queue,
                                       json_array_size(agent.pending) > 0 ? 0
                                       : t < 0 ? 0
                                       : t > POLL_MAX_MS ? POLL_MAX_MS
                                       : (int) t);
            while (m != NULL) {
                message(m);
                rd_kafka_message_destroy(m);
                if (json_array_size(agent.pending) >= AGENT_BATCH_MAX) {
                    break;
                }
                m = rd_kafka_consume_queue(agent.queue, 0);
            }
        } else {
            nap(POLL_MAX_MS);
        }

        /* "replayed" is claimed for a zone the agent knows (agent.h) */
        was_replayed = atomic_load(&agent.replayed);
        if (!was_replayed && agent.zone_known && replay_done()) {
            atomic_store(&agent.replayed, 1);
            enc_log_info("agent: the window is replayed");
        }

        due = json_array_size(agent.pending) > 0
              || atomic_load(&agent.replayed) != was_replayed
              || now_ms() - agent.last_post_ms >= agent.heartbeat_ms;
        if (due) {
            /* events go at once; a heartbeat first asks the broker */
            if (json_array_size(agent.pending) == 0) {
                caught_up = at_end();
            }
            (void) post(caught_up);
        }

        enc_metrics_gauge_set("encore_agent_replayed",
                              "1 once the window was replayed to the edge",
                              atomic_load(&agent.replayed));
    }
    return NULL;
}


int
agent_start(const enc_config_t *c)
{
    agent.conf = c;
    agent.topic = enc_config_str(c, "agent.topic");
    agent.window_s = enc_config_int(c, "agent.window_s");
    agent.heartbeat_ms = enc_config_int(c, "agent.heartbeat_ms");
    agent.stale_ms = enc_config_int(c, "agent.stale_ms");
    atomic_store(&agent.stop, 0);
    atomic_store(&agent.replayed, 0);
    atomic_store(&agent.last_ok_ms, 0);
    atomic_store(&agent.caught_up_ms, 0);

    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
        return -1;
    }
    agent.pending = json_array();
    agent.edge = agent_edge_new(enc_config_str(c, "agent.edge_url"),
                                enc_config_str(c, "agent.edge_socket"),
                                enc_config_int(c, "agent.post_timeout_ms"));
    agent.rk = kafka_new(c);
    if (agent.rk != NULL) {
        agent.rkt = rd_kafka_topic_new(agent.rk, agent.topic, NULL);
        agent.queue = rd_kafka_queue_new(agent.rk);
    }
    if (agent.pending == NULL || agent.edge == NULL || agent.rk == NULL
        || agent.rkt == NULL || agent.queue == NULL)
    {
        agent_stop();
        return -1;
    }
    if (pthread_create(&agent.thread, NULL, run, NULL) != 0) {
        agent_stop();
        return -1;
    }
    agent.running = 1;
    enc_log_info("agent: posting %s to %s%s%s", agent.topic,
                 enc_config_str(c, "agent.edge_url"),
                 enc_config_str(c, "agent.edge_socket")[0] != '\0'
                 ? " over " : "", enc_config_str(c, "agent.edge_socket"));
    return 0;
}


void
agent_stop(void)
{
    atomic_store(&agent.stop, 1);
    if (agent.running) {
        (void) pthread_join(agent.thread, NULL);
        agent.running = 0;
    }
    if (agent.rkt != NULL) {
        replay_unassign();
        rd_kafka_topic_destroy(agent.rkt);
        agent.rkt = NULL;
    }
    if (agent.queue != NULL) {
        rd_kafka_queue_destroy(agent.queue);
        agent.queue = NULL;
    }
    if (agent.rk != NULL) {
        rd_kafka_destroy(agent.rk);
        agent.rk = NULL;
    }
    agent_edge_free(agent.edge);
    agent.edge = NULL;
    json_decref(agent.pending);
    agent.pending = NULL;
    free(agent.parts);
    agent.parts = NULL;
    agent.nparts = 0;
    curl_global_cleanup();
}
