/*
 * kafka: the connection's security settings (issue 13: Strimzi's SCRAM
 * listener): what kafka.* turns into for librdkafka, that librdkafka
 * accepts it, and the refusals (unknown protocol, SASL without a user or
 * a readable, non-empty password file), the relay's at start included.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config.h"
#include "kafka.h"
#include "log.h"
#include "outbox.h"


static enc_config_t *
conf(const char *proto, const char *user, const char *pwfile,
    const char *ca)
{
    char                   err[256];
    enc_config_t          *c;
    const enc_conf_key_t  *tables[] = { enc_runtime_conf_keys, NULL };

    c = enc_config_new(tables);
    assert_non_null(c);
    assert_int_equal(enc_config_load(c, NULL, err, sizeof(err)), 0);
    assert_int_equal(enc_config_set(c, "kafka.security_protocol", proto,
                                    err, sizeof(err)), 0);
    assert_int_equal(enc_config_set(c, "kafka.sasl_username", user, err,
                                    sizeof(err)), 0);
    assert_int_equal(enc_config_set(c, "kafka.sasl_password_file", pwfile,
                                    err, sizeof(err)), 0);
    assert_int_equal(enc_config_set(c, "kafka.ssl_ca_file", ca, err,
                                    sizeof(err)), 0);
    return c;
}


static const char *
value(const char **kv, const char *name)
{
    int  i;

    for (i = 0; kv[i] != NULL; i += 2) {
        if (strcmp(kv[i], name) == 0) {
            return kv[i + 1];
        }
    }
    return NULL;
}


/* librdkafka takes every pair */
static void
accepted(const char **kv)
{
    int               i;
    char              err[256];
    rd_kafka_conf_t  *rc = rd_kafka_conf_new();

    for (i = 0; kv[i] != NULL; i += 2) {
        assert_int_equal(rd_kafka_conf_set(rc, kv[i], kv[i + 1], err,
                                           sizeof(err)), RD_KAFKA_CONF_OK);
    }
    rd_kafka_conf_destroy(rc);
}


static void
test_plaintext_by_default(void **state)
{
    char           pw[64], err[256];
    const char    *kv[16] = { "linger.ms", "0" };
    enc_config_t  *c = conf("plaintext", "", "", "/ca.pem");

    assert_int_equal(enc_kafka_security(c, kv, 2, 16, pw, sizeof(pw), err,
                                        sizeof(err)), 4);
    assert_string_equal(value(kv, "linger.ms"), "0");
    assert_string_equal(value(kv, "security.protocol"), "plaintext");
    assert_null(value(kv, "sasl.username"));
    assert_null(value(kv, "ssl.ca.location"));   /* no TLS, no CA */
    accepted(kv);
    enc_config_free(c);
}


static void
test_sasl_ssl(void **state)
{
    int            n;
    char           path[64], pw[64], err[256];
    FILE          *f;
    const char    *kv[16];
    enc_config_t  *c;

    snprintf(path, sizeof(path), "/tmp/enc-test-kafka-%d.pw", (int) getpid());
    f = fopen(path, "w");
    assert_non_null(f);
    fputs("s3cret\n", f);
    fclose(f);

    c = conf("sasl_ssl", "encore-auth", path, "/etc/ssl/certs/ca-certificates.crt");
    n = enc_kafka_security(c, kv, 0, 16, pw, sizeof(pw), err, sizeof(err));
    assert_int_equal(n, 10);
    assert_null(kv[n]);
    assert_string_equal(value(kv, "security.protocol"), "sasl_ssl");
    assert_string_equal(value(kv, "sasl.mechanisms"), "SCRAM-SHA-512");
    assert_string_equal(value(kv, "sasl.username"), "encore-auth");
    assert_string_equal(value(kv, "sasl.password"), "s3cret");
    assert_string_equal(value(kv, "ssl.ca.location"),
                        "/etc/ssl/certs/ca-certificates.crt");
    accepted(kv);
    enc_config_free(c);

    /* an empty password file is refused */
    f = fopen(path, "w");
    assert_non_null(f);
    fclose(f);
    c = conf("sasl_plaintext", "encore-auth", path, "");
    assert_int_equal(enc_kafka_security(c, kv, 0, 16, pw, sizeof(pw), err,
                                        sizeof(err)), -1);
    assert_non_null(strstr(err, "empty"));
    enc_config_free(c);
    unlink(path);

    /* so is a missing one, and a missing user */
    c = conf("sasl_ssl", "encore-auth", path, "");
    assert_int_equal(enc_kafka_security(c, kv, 0, 16, pw, sizeof(pw), err,
                                        sizeof(err)), -1);
    assert_non_null(strstr(err, path));
    enc_config_free(c);
    c = conf("sasl_ssl", "", path, "");
    assert_int_equal(enc_kafka_security(c, kv, 0, 16, pw, sizeof(pw), err,
                                        sizeof(err)), -1);
    assert_non_null(strstr(err, "kafka.sasl_username"));
    enc_config_free(c);
}


static void
test_refusals(void **state)
{
    char           pw[64], err[256];
    const char    *kv[16];
    enc_config_t  *c;

    c = conf("SASL_SSL", "", "", "");
    assert_int_equal(enc_kafka_security(c, kv, 0, 16, pw, sizeof(pw), err,
                                        sizeof(err)), -1);
    assert_non_null(strstr(err, "SASL_SSL"));
    enc_config_free(c);

    /* no room for the pairs */
    c = conf("ssl", "", "", "/ca.pem");
    assert_int_equal(enc_kafka_security(c, kv, 10, 16, pw, sizeof(pw), err,
                                        sizeof(err)), -1);
    assert_int_equal(enc_kafka_security(c, kv, 0, 16, pw, sizeof(pw), err,
                                        sizeof(err)), 4);
    assert_string_equal(value(kv, "ssl.ca.location"), "/ca.pem");
    enc_config_free(c);
}


/* the relay refuses to start on settings it could never connect with,
   before any thread or connection */
static void
test_relay_refuses_at_start(void **state)
{
    enc_config_t  *c = conf("sasl_ssl", "encore-auth", "", "");

    assert_int_equal(enc_relay_start(c), -1);
    enc_config_free(c);
}


int
main(void)
{
    const struct CMUnitTest  tests[] = {
        cmocka_unit_test(test_plaintext_by_default),
        cmocka_unit_test(test_sasl_ssl),
        cmocka_unit_test(test_refusals),
        cmocka_unit_test(test_relay_refuses_at_start),
    };

    enc_log_init("test", ENC_LOG_ERROR);
    return cmocka_run_group_tests(tests, NULL, NULL);
}
