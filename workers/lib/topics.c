/*
 * topics.c — Kafka topics created and configured (topics.h).
 */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <librdkafka/rdkafka.h>

#include "topics.h"


#define TOPICS_MAX  64


/* the admin result of type `type` from q, or NULL (err filled) */
static rd_kafka_event_t *
await(rd_kafka_queue_t *q, rd_kafka_event_type_t type, int timeout_ms,
    char *err, size_t errlen)
{
    rd_kafka_event_t  *ev;

    ev = rd_kafka_queue_poll(q, timeout_ms + 1000);
    if (ev == NULL) {
        snprintf(err, errlen, "no answer from Kafka within %d ms", timeout_ms);
        return NULL;
    }
    if (rd_kafka_event_type(ev) != type) {
        snprintf(err, errlen, "unexpected admin result %s",
                 rd_kafka_event_name(ev));
        rd_kafka_event_destroy(ev);
        return NULL;
    }
    if (rd_kafka_event_error(ev) != RD_KAFKA_RESP_ERR_NO_ERROR) {
        snprintf(err, errlen, "%s", rd_kafka_event_error_string(ev));
        rd_kafka_event_destroy(ev);
        return NULL;
    }
    return ev;
}


/* 1 if the cluster has the topic, 0 if not, -1 on failure */
static int
exists(rd_kafka_t *rk, const char *topic, int timeout_ms, char *err,
    size_t errlen)
{
    int                            found = 0, i;
    rd_kafka_resp_err_t            rc;
    const struct rd_kafka_metadata *md;

    rc = rd_kafka_metadata(rk, 1, NULL, &md, timeout_ms);
    if (rc != RD_KAFKA_RESP_ERR_NO_ERROR) {
        snprintf(err, errlen, "metadata: %s", rd_kafka_err2str(rc));
        return -1;
    }
    for (i = 0; i < md->topic_cnt; i++) {
        if (strcmp(md->topics[i].topic, topic) == 0
            && md->topics[i].err == RD_KAFKA_RESP_ERR_NO_ERROR)
        {
            found = 1;
        }
    }
    rd_kafka_metadata_destroy(md);
    return found;
}


static int
create(rd_kafka_t *rk, rd_kafka_queue_t *q, rd_kafka_AdminOptions_t *opt,
    const char *topic, int partitions, const char *const *configs,
    int timeout_ms, char *err, size_t errlen)
{
    int                              rc = 0;
    size_t                           n;
    char                             why[256];
    rd_kafka_event_t                *ev;
    rd_kafka_NewTopic_t             *nt;
    rd_kafka_resp_err_t              e;
    const char *const               *c;
    const rd_kafka_topic_result_t  **res;

    nt = rd_kafka_NewTopic_new(topic, partitions, -1, why, sizeof(why));
    if (nt == NULL) {
        snprintf(err, errlen, "%s: %s", topic, why);
        return -1;
    }
    for (c = configs; c[0] != NULL && c[1] != NULL; c += 2) {
        if (rd_kafka_NewTopic_set_config(nt, c[0], c[1])
            != RD_KAFKA_RESP_ERR_NO_ERROR)
        {
            snprintf(err, errlen, "%s: config %s refused", topic, c[0]);
            rd_kafka_NewTopic_destroy(nt);
            return -1;
        }
    }

    rd_kafka_CreateTopics(rk, &nt, 1, opt, q);
    rd_kafka_NewTopic_destroy(nt);

    ev = await(q, RD_KAFKA_EVENT_CREATETOPICS_RESULT, timeout_ms, err, errlen);
    if (ev == NULL) {
        return -1;
    }
    res = rd_kafka_CreateTopics_result_topics(
              rd_kafka_event_CreateTopics_result(ev), &n);
    e = n == 1 ? rd_kafka_topic_result_error(res[0])
               : RD_KAFKA_RESP_ERR__FAIL;
    if (e == RD_KAFKA_RESP_ERR_NO_ERROR) {
        printf("topics: created %s (%d partitions)\n", topic, partitions);
    } else if (e == RD_KAFKA_RESP_ERR_TOPIC_ALREADY_EXISTS) {
        /* created meanwhile (a producer's auto-creation): configure it */
        rc = 1;
    } else {
        snprintf(err, errlen, "creating %s: %s", topic,
                 n == 1 && rd_kafka_topic_result_error_string(res[0])
                 ? rd_kafka_topic_result_error_string(res[0])
                 : rd_kafka_err2str(e));
        rc = -1;
    }
    rd_kafka_event_destroy(ev);
    return rc;
}


static int
configure(rd_kafka_t *rk, rd_kafka_queue_t *q, rd_kafka_AdminOptions_t *opt,
    const char *topic, const char *const *configs, int timeout_ms,
    char *err, size_t errlen)
{
    size_t                           n;
    rd_kafka_event_t                *ev;
    rd_kafka_resp_err_t              e;
    rd_kafka_ConfigResource_t       *cr;
    const char *const               *c;
    const rd_kafka_ConfigResource_t **res;

    cr = rd_kafka_ConfigResource_new(RD_KAFKA_RESOURCE_TOPIC, topic);
    for (c = configs; c[0] != NULL && c[1] != NULL; c += 2) {
        rd_kafka_ConfigResource_set_config(cr, c[0], c[1]);
    }
    rd_kafka_AlterConfigs(rk, &cr, 1, opt, q);
    rd_kafka_ConfigResource_destroy(cr);

    ev = await(q, RD_KAFKA_EVENT_ALTERCONFIGS_RESULT, timeout_ms, err, errlen);
    if (ev == NULL) {
        return -1;
    }
    res = rd_kafka_AlterConfigs_result_resources(
              rd_kafka_event_AlterConfigs_result(ev), &n);
    e = n == 1 ? rd_kafka_ConfigResource_error(res[0])
               : RD_KAFKA_RESP_ERR__FAIL;
    if (e != RD_KAFKA_RESP_ERR_NO_ERROR) {
        snprintf(err, errlen, "configuring %s: %s", topic,
                 n == 1 && rd_kafka_ConfigResource_error_string(res[0])
                 ? rd_kafka_ConfigResource_error_string(res[0])
                 : rd_kafka_err2str(e));
        rd_kafka_event_destroy(ev);
        return -1;
    }
    printf("topics: configured %s\n", topic);
    rd_kafka_event_destroy(ev);
    return 0;
}


int
enc_topics_ensure(const char *brokers, const char *const *topics,
    int partitions, const char *const *configs, int timeout_ms,
    char *err, size_t errlen)
{
    int                       rc = 0, have;
    char                      why[512];
    rd_kafka_t               *rk;
    rd_kafka_conf_t          *conf;
    rd_kafka_queue_t         *q;
    rd_kafka_AdminOptions_t  *opt;
    const char *const        *t;

    conf = rd_kafka_conf_new();
    if (rd_kafka_conf_set(conf, "bootstrap.servers", brokers, why,
                          sizeof(why)) != RD_KAFKA_CONF_OK
        || rd_kafka_conf_set(conf, "allow.auto.create.topics", "false", why,
                             sizeof(why)) != RD_KAFKA_CONF_OK)
    {
        snprintf(err, errlen, "%s", why);
        rd_kafka_conf_destroy(conf);
        return -1;
    }
    rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, why, sizeof(why));
    if (rk == NULL) {
        snprintf(err, errlen, "%s", why);
        rd_kafka_conf_destroy(conf);
        return -1;
    }
    q = rd_kafka_queue_new(rk);
    opt = rd_kafka_AdminOptions_new(rk, RD_KAFKA_ADMIN_OP_ANY);
    if (rd_kafka_AdminOptions_set_request_timeout(opt, timeout_ms, why,
                                                  sizeof(why))
        != RD_KAFKA_RESP_ERR_NO_ERROR)
    {
        snprintf(err, errlen, "%s", why);
        rc = -1;
    }

    for (t = topics; rc == 0 && *t != NULL; t++) {
        have = exists(rk, *t, timeout_ms, err, errlen);
        if (have == 0) {
            have = create(rk, q, opt, *t, partitions, configs, timeout_ms,
                          err, errlen);
        }
        if (have == 1) {
            have = configure(rk, q, opt, *t, configs, timeout_ms, err,
                             errlen);
        }
        rc = have < 0 ? -1 : 0;
    }

    rd_kafka_AdminOptions_destroy(opt);
    rd_kafka_queue_destroy(q);
    rd_kafka_destroy(rk);
    return rc;
}
