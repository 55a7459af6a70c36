/*
 * kafka: librdkafka's errors and logs as log lines.  See kafka.h.
 *
 * Lines name the side ("kafka: ..." for the relay's producer, "kafka
 * consumer: ..." for the consumer) so the two handles of one worker can be
 * told apart.
 */
#include "kafka.h"
#include "log.h"


static const char *
side(const rd_kafka_t *rk)
{
    return rk != NULL && rd_kafka_type(rk) == RD_KAFKA_CONSUMER
           ? "kafka consumer" : "kafka";
}


void
enc_kafka_error_cb(rd_kafka_t *rk, int err, const char *reason, void *opaque)
{
    enc_log(err == RD_KAFKA_RESP_ERR__FATAL ? ENC_LOG_ERROR : ENC_LOG_WARN,
            "%s: %s: %s", side(rk), rd_kafka_err2name(err), reason);
}


void
enc_kafka_log_cb(const rd_kafka_t *rk, int level, const char *fac,
    const char *buf)
{
    enc_log(level <= 3 ? ENC_LOG_ERROR : level == 4 ? ENC_LOG_WARN
            : level <= 6 ? ENC_LOG_INFO : ENC_LOG_DEBUG,
            "%s: %s: %s", side(rk), fac, buf);
}


void
enc_kafka_conf_set_logging(rd_kafka_conf_t *conf)
{
    rd_kafka_conf_set_error_cb(conf, enc_kafka_error_cb);
    rd_kafka_conf_set_log_cb(conf, enc_kafka_log_cb);
}
