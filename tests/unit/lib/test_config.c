/*
 * config: defaults, file parsing, ${VAR} expansion, environment overrides,
 * bounds, required keys, dump hiding secrets.
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
#include "log.h"


static const enc_conf_key_t  test_keys[] = {
    { "t.name", ENC_CONF_STR, "dflt", 0, 0, 0, "a string" },
    { "t.count", ENC_CONF_INT, "5", 1, 10, 0, "an int 1..10" },
    { "t.flag", ENC_CONF_BOOL, "false", 0, 0, 0, "a bool" },
    { "t.secret", ENC_CONF_STR, "", 0, 0, 1, "a secret" },
    { "t.required", ENC_CONF_STR, NULL, 0, 0, 0, "required" },
    { NULL, 0, NULL, 0, 0, 0, NULL }
};

static char  path[64];


static enc_config_t *
mk(void)
{
    const enc_conf_key_t  *tables[] = { enc_runtime_conf_keys, test_keys,
                                        NULL };
    enc_config_t          *c = enc_config_new(tables);

    assert_non_null(c);
    return c;
}


static void
write_file(const char *text)
{
    FILE  *f;

    snprintf(path, sizeof(path), "/tmp/enc-test-config-%d.conf",
             (int) getpid());
    f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
}


static int
teardown(void **state)
{
    unsetenv("ENCORE_T_COUNT");
    unsetenv("ENCORE_T_REQUIRED");
    unsetenv("ENCORE_HTTP_MAX_BODY");
    unsetenv("ENC_TEST_VAR");
    if (path[0] != '\0') {
        unlink(path);
    }
    return 0;
}


static void
test_defaults_and_required(void **state)
{
    char           err[256];
    enc_config_t  *c = mk();

    assert_int_equal(enc_config_load(c, NULL, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "t.required"));
    assert_non_null(strstr(err, "ENCORE_T_REQUIRED"));

    setenv("ENCORE_T_REQUIRED", "yes", 1);
    assert_int_equal(enc_config_load(c, NULL, err, sizeof(err)), 0);
    assert_string_equal(enc_config_str(c, "t.name"), "dflt");
    assert_int_equal(enc_config_int(c, "t.count"), 5);
    assert_int_equal(enc_config_bool(c, "t.flag"), 0);
    assert_int_equal(enc_config_int(c, "http.max_body"), 65536);
    assert_string_equal(enc_config_str(c, "http.socket_mode"), "0660");
    assert_string_equal(enc_config_str(c, "migrations.dir"), "schemas");
    enc_config_free(c);
}


static void
test_file_env_precedence(void **state)
{
    char           err[256];
    enc_config_t  *c = mk();

    setenv("ENC_TEST_VAR", "expanded", 1);
    write_file("# comment\n"
               "\n"
               "  t.name = \"quoted value\"  \n"
               "t.count=7\n"
               "t.flag = yes\n"
               "t.required = ${ENC_TEST_VAR}/x${ENC_UNSET_VAR_XYZ:-y}"
               "${ENC_TEST_VAR:-unused}\n"
               "http.max_body = 100\n");
    setenv("ENCORE_T_COUNT", "9", 1);
    assert_int_equal(enc_config_load(c, path, err, sizeof(err)), 0);
    assert_string_equal(enc_config_str(c, "t.name"), "quoted value");
    assert_int_equal(enc_config_int(c, "t.count"), 9);     /* env wins */
    assert_int_equal(enc_config_bool(c, "t.flag"), 1);
    assert_string_equal(enc_config_str(c, "t.required"),
                        "expanded/xyexpanded");
    assert_int_equal(enc_config_int(c, "http.max_body"), 100);
    enc_config_free(c);
}


static void
test_errors(void **state)
{
    static const struct {
        const char  *file;
        const char  *env_count;
        const char  *needle;
    } cases[] = {
        { "t.required = x\nt.unknown = 1\n", NULL, "unknown key" },
        { "t.required = x\nt.count = 11\n", NULL, "out of range" },
        { "t.required = x\nt.count = 0\n", NULL, "out of range" },
        { "t.required = x\nt.count = 5x\n", NULL, "not an integer" },
        { "t.required = x\nt.count = 99999999999999999999999\n", NULL,
          "not an integer" },
        { "t.required = x\nt.flag = maybe\n", NULL, "not a boolean" },
        { "t.required = x\njust words\n", NULL, "key = value" },
        { "t.required = ${UNCLOSED\n", NULL, "expansion" },
        /* an unset variable is an error, not an empty string */
        { "t.required = ${ENC_UNSET_VAR_XYZ}/secrets\n", NULL,
          "ENC_UNSET_VAR_XYZ is not set" },
        { "t.required = x\n", "-1", "ENCORE_T_COUNT" },
        { "t.required = x\n", "", "not an integer" },
    };
    char           err[256];
    size_t         i;
    enc_config_t  *c;

    for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        c = mk();
        write_file(cases[i].file);
        if (cases[i].env_count != NULL) {
            setenv("ENCORE_T_COUNT", cases[i].env_count, 1);
        } else {
            unsetenv("ENCORE_T_COUNT");
        }
        err[0] = '\0';
        assert_int_equal(enc_config_load(c, path, err, sizeof(err)), -1);
        if (strstr(err, cases[i].needle) == NULL) {
            fail_msg("case %zu: \"%s\" lacks \"%s\"", i, err,
                     cases[i].needle);
        }
        enc_config_free(c);
    }
    c = mk();
    assert_int_equal(enc_config_load(c, "/nonexistent/enc.conf", err,
                                     sizeof(err)), -1);
    enc_config_free(c);
}


static void
test_long_line_rejected(void **state)
{
    char           err[256], *big;
    size_t         n = ENC_CONF_VALUE_MAX + 1024;
    enc_config_t  *c = mk();

    big = malloc(n + 32);
    assert_non_null(big);
    strcpy(big, "t.required = ");
    memset(big + 13, 'a', n);
    strcpy(big + 13 + n, "\n");
    write_file(big);
    free(big);
    assert_int_equal(enc_config_load(c, path, err, sizeof(err)), -1);
    enc_config_free(c);
}


static void
test_dump_hides_secrets_and_help(void **state)
{
    char           err[256], *buf = NULL;
    size_t         len = 0;
    FILE          *f;
    enc_config_t  *c = mk();

    write_file("t.required = r\nt.secret = hunter2\n");
    assert_int_equal(enc_config_load(c, path, err, sizeof(err)), 0);
    assert_string_equal(enc_config_str(c, "t.secret"), "hunter2");

    f = open_memstream(&buf, &len);
    enc_config_dump(c, f);
    fclose(f);
    assert_null(strstr(buf, "hunter2"));
    assert_non_null(strstr(buf, "t.secret = ***"));
    assert_non_null(strstr(buf, "t.count = 5"));
    free(buf);

    f = open_memstream(&buf, &len);
    enc_config_help(c, f);
    fclose(f);
    assert_non_null(strstr(buf, "ENCORE_HTTP_MAX_BODY"));
    assert_non_null(strstr(buf, "1..10"));
    assert_non_null(strstr(buf, "required"));
    free(buf);

    /* set validates like the file */
    assert_int_equal(enc_config_set(c, "t.count", "42", err, sizeof(err)), -1);
    assert_int_equal(enc_config_set(c, "t.count", "3", err, sizeof(err)), 0);
    assert_int_equal(enc_config_int(c, "t.count"), 3);
    assert_int_equal(enc_config_set(c, "nope", "3", err, sizeof(err)), -1);

    /* an undeclared key reads as NULL / 0, never crashes */
    enc_log_init("test", ENC_LOG_ERROR + 1);
    assert_null(enc_config_str(c, "undeclared"));
    assert_int_equal(enc_config_int(c, "undeclared"), 0);
    enc_log_init("test", ENC_LOG_INFO);
    enc_config_free(c);
}


int
main(void)
{
    const struct CMUnitTest  tests[] = {
        cmocka_unit_test_teardown(test_defaults_and_required, teardown),
        cmocka_unit_test_teardown(test_file_env_precedence, teardown),
        cmocka_unit_test_teardown(test_errors, teardown),
        cmocka_unit_test_teardown(test_long_line_rejected, teardown),
        cmocka_unit_test_teardown(test_dump_hides_secrets_and_help, teardown),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
