/*
 * topics: Kafka topics made to measure with librdkafka's admin API
 * (CreateTopics, AlterConfigs), for auto/stack's encore-topics: the
 * broker's auto-creation gives a topic the default policy (delete after
 * the retention), and the entity topics must keep the latest record of
 * every key (cleanup.policy=compact).
 */

#ifndef ENC_TOPICS_H
#define ENC_TOPICS_H

#include <stddef.h>

/*
 * Every topic of topics (NULL-terminated) that does not exist is created
 * with `partitions` partitions (replication: the broker's default) and
 * the configs (name, value pairs, NULL-terminated); each that exists gets
 * the configs set (AlterConfigs: configs set before and not named here
 * return to the broker's defaults).  Lines on stdout say what was done.
 * 0, or -1 with the first failure in err; timeout_ms bounds each step.
 */
int enc_topics_ensure(const char *brokers, const char *const *topics,
    int partitions, const char *const *configs, int timeout_ms,
    char *err, size_t errlen);

#endif /* ENC_TOPICS_H */
