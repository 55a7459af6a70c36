/*
 * Unit tests: workers/auth/verify.c — claims checks of auth_verify_token.
 *
 * Review finding: exp + leeway overflowed for exp near LLONG_MAX —
 * undefined behaviour (UBSan aborts the sanitizer build), and in practice
 * a wrap to "expired".  nbf - leeway had the mirror problem.
 */

#include <limits.h>

#include "auth_test.h"
#include "../../../workers/auth/verify.h"
#include "log.h"


#define NOW  1700000000LL


static auth_key_t      key;
static auth_keyring_t  ring;
static auth_app_t      app;
static enc_config_t   *conf;


static int
setup(void **state)
{
    char                         err[128];
    static const enc_conf_key_t *tables[] = { enc_runtime_conf_keys,
                                              auth_conf_keys, NULL };

    (void) state;

    enc_log_init("test", ENC_LOG_ERROR + 1);
    key.pkey = auth_key_generate();
    if (key.pkey == NULL) {
        return -1;
    }
    strcpy(key.kid, "test-kid");
    ring.keys = &key;
    ring.n = 1;

    conf = enc_config_new(tables);
    if (conf == NULL || enc_config_load(conf, NULL, err, sizeof(err)) != 0) {
        return -1;
    }
    app.conf = conf;
    app.keys = &ring;
    app.issuer = "encore";
    app.audience = "encore-api";
    return auth_verify_init(conf, &app);
}


static int
teardown(void **state)
{
    (void) state;
    auth_verify_fini();
    enc_config_free(conf);
    EVP_PKEY_free(key.pkey);
    return 0;
}


/* auth_verify_token's verdict at NOW on a fresh token expiring at exp */
static int
verdict(long long exp, const char **why)
{
    int            rc;
    char          *jws;
    json_t        *claims = NULL;
    auth_claims_t  c;

    c.iss = "encore";
    c.aud = "encore-api";
    c.sub = "0b5f6b6e-8f0b-4d2c-9a3e-3c5e0f9d1a22";
    c.role = "user";
    c.name = "alice";
    c.jti = "d4c9f0e1-2a3b-4c5d-8e6f-7a8b9c0d1e2f";
    c.sid = NULL;
    c.iat = NOW;
    c.exp = exp;

    jws = auth_jwt_sign(&key, &c);
    assert_non_null(jws);
    *why = NULL;
    rc = auth_verify_token(jws, strlen(jws), NOW, &claims, why);
    json_decref(claims);
    free(jws);
    return rc;
}


static void
test_exp(void **state)
{
    const char  *why;

    (void) state;

    assert_int_equal(verdict(NOW + 60, &why), 0);
    assert_int_equal(verdict(NOW - AUTH_VERIFY_LEEWAY + 1, &why), 0);
    assert_int_equal(verdict(NOW - AUTH_VERIFY_LEEWAY, &why), -1);
    assert_string_equal(why, "token expired");
    assert_int_equal(verdict(NOW - 3600, &why), -1);

    /* no overflow at the extremes: far future is valid, far past not */
    assert_int_equal(verdict(LLONG_MAX, &why), 0);
    assert_int_equal(verdict(LLONG_MAX - 1, &why), 0);
    assert_int_equal(verdict(LLONG_MIN, &why), -1);
    assert_string_equal(why, "token expired");
}


int
main(void)
{
    const struct CMUnitTest  tests[] = {
        cmocka_unit_test(test_exp),
    };

    return cmocka_run_group_tests(tests, setup, teardown);
}
