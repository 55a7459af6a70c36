/*
 * kafka: what the outbox relay's producer and the consumer share about
 * librdkafka — its errors and logs turned into our JSON log lines, and
 * how they connect (TLS, SASL).
 */
#ifndef ENC_KAFKA_H
#define ENC_KAFKA_H

#include <librdkafka/rdkafka.h>

#include "config.h"

/* error_cb: ERR__FATAL logged as an error (the owner acts on it through
   rd_kafka_fatal_error), anything else as a warning (librdkafka retries
   transient failures itself).  Runs on the thread polling the handle. */
void enc_kafka_error_cb(rd_kafka_t *rk, int err, const char *reason,
    void *opaque);

/* log_cb: syslog levels 0..3 → error, 4 → warn, 5..6 → info, 7 → debug.
   May run on librdkafka's internal threads (enc_log is thread-safe). */
void enc_kafka_log_cb(const rd_kafka_t *rk, int level, const char *fac,
    const char *buf);

/* Installs both on conf (before rd_kafka_new). */
void enc_kafka_conf_set_logging(rd_kafka_conf_t *conf);

/* The librdkafka settings of the connection's security (kafka.*: the
   protocol, SASL user and password, CA file), appended as name, value
   pairs to out from index n, NULL-terminated; out has room for cap
   entries.  The password is read from kafka.sasl_password_file into pw
   (trailing newline dropped).  Returns the new n, or -1 with err (an
   unknown protocol, SASL without a user or password, an unreadable
   file). */
int enc_kafka_security(const enc_config_t *c, const char **out, int n,
    int cap, char *pw, size_t pwlen, char *err, size_t errlen);

#endif /* ENC_KAFKA_H */
