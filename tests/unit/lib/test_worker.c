/*
 * worker: command-line parsing.  The start/drain sequence needs
 * PostgreSQL and Kafka and is covered by the integration suite.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>

#include "worker.h"


static void
test_args(void **state)
{
    char               err[128];
    enc_worker_args_t  a;
    char              *v1[] = { "w", "-c", "f.conf", "--dump-config", NULL };
    char              *v2[] = { "w", "--config=g.conf", "create-admin",
                                "--force", "x", NULL };
    char              *v3[] = { "w", "-c", NULL };
    char              *v4[] = { "w", "--bogus", NULL };
    char              *v5[] = { "w", "--help", "--", "-cmd", NULL };

    assert_int_equal(enc_worker_parse_args(4, v1, &a, err, sizeof(err)), 0);
    assert_string_equal(a.config, "f.conf");
    assert_true(a.dump);
    assert_false(a.help);
    assert_int_equal(a.argc, 0);

    /* options after the command belong to the command */
    assert_int_equal(enc_worker_parse_args(5, v2, &a, err, sizeof(err)), 0);
    assert_string_equal(a.config, "g.conf");
    assert_int_equal(a.argc, 3);
    assert_string_equal(a.argv[0], "create-admin");
    assert_string_equal(a.argv[1], "--force");

    assert_int_equal(enc_worker_parse_args(2, v3, &a, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "-c"));
    assert_int_equal(enc_worker_parse_args(2, v4, &a, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "--bogus"));

    assert_int_equal(enc_worker_parse_args(4, v5, &a, err, sizeof(err)), 0);
    assert_true(a.help);
    assert_int_equal(a.argc, 1);
    assert_string_equal(a.argv[0], "-cmd");
}


int
main(void)
{
    const struct CMUnitTest  tests[] = {
        cmocka_unit_test(test_args),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
