/*
 * kafka: librdkafka's errors and logs as log lines, and the connection's
 * security settings.  See kafka.h.
 *
 * Lines name the side ("kafka: ..." for the relay's producer, "kafka
 * consumer: ..." for the consumer) so the two handles of one worker can be
 * told apart.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

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


int
enc_kafka_security(const enc_config_t *c, const char **out, int n, int cap,
    char *pw, size_t pwlen, char *err, size_t errlen)
{
    int          sasl, ssl;
    size_t       len;
    FILE        *f;
    const char  *proto, *user, *file, *ca;

    proto = enc_config_str(c, "kafka.security_protocol");
    if (strcmp(proto, "plaintext") == 0) {
        sasl = 0; ssl = 0;
    } else if (strcmp(proto, "ssl") == 0) {
        sasl = 0; ssl = 1;
    } else if (strcmp(proto, "sasl_plaintext") == 0) {
        sasl = 1; ssl = 0;
    } else if (strcmp(proto, "sasl_ssl") == 0) {
        sasl = 1; ssl = 1;
    } else {
        (void) snprintf(err, errlen, "kafka.security_protocol \"%s\" is"
                        " none of plaintext, ssl, sasl_plaintext, sasl_ssl",
                        proto);
        return -1;
    }
    /* at most four pairs and the NULL */
    if (n + 9 > cap) {
        (void) snprintf(err, errlen, "kafka settings: no room");
        return -1;
    }
    out[n++] = "security.protocol";
    out[n++] = proto;

    if (sasl) {
        user = enc_config_str(c, "kafka.sasl_username");
        file = enc_config_str(c, "kafka.sasl_password_file");
        if (user[0] == '\0' || file[0] == '\0') {
            (void) snprintf(err, errlen, "kafka.security_protocol %s needs"
                            " kafka.sasl_username and"
                            " kafka.sasl_password_file", proto);
            return -1;
        }
        f = fopen(file, "r");
        if (f == NULL) {
            (void) snprintf(err, errlen, "kafka.sasl_password_file \"%s\":"
                            " %s", file, strerror(errno));
            return -1;
        }
        len = fread(pw, 1, pwlen - 1, f);
        (void) fclose(f);
        while (len > 0 && (pw[len - 1] == '\n' || pw[len - 1] == '\r')) {
            len--;
        }
        pw[len] = '\0';
        if (len == 0) {
            (void) snprintf(err, errlen, "kafka.sasl_password_file \"%s\" is"
                            " empty", file);
            return -1;
        }
        out[n++] = "sasl.mechanisms";
        out[n++] = enc_config_str(c, "kafka.sasl_mechanism");
        out[n++] = "sasl.username";
        out[n++] = user;
        out[n++] = "sasl.password";
        out[n++] = pw;
    }

    ca = enc_config_str(c, "kafka.ssl_ca_file");
    if (ssl && ca[0] != '\0') {
        out[n++] = "ssl.ca.location";
        out[n++] = ca;
    }
    out[n] = NULL;
    return n;
}
