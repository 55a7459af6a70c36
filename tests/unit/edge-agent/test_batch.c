/*
 * Unit tests: workers/edge-agent/batch.c — which events become entries
 * of a post, and the body the edge receives.
 */

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "../../../workers/edge-agent/agent.h"


#define SUB  "0b5f6b6e-8f0b-4d2c-9a3e-3c5e0f9d1a22"
#define SID  "5f0c3a1e-6b2d-4e8f-9a7c-1d2e3f4a5b6c"
#define NOW  1764640000LL


static json_t *
parse(const char *s, long long *at)
{
    return agent_entry_parse(s, strlen(s), NOW, at);
}


static void
test_session_entry(void **state)
{
    json_t     *e;
    long long   at;

    (void) state;

    e = parse("{\"sub\":\"" SUB "\",\"sid\":\"" SID "\",\"not_before\":"
              "1764640001,\"cause\":\"logout\",\"at\":"
              "\"2025-12-02T01:46:40.123Z\"}", &at);
    assert_non_null(e);
    /* what the edge takes: no "at" */
    assert_int_equal(json_object_size(e), 4);
    assert_string_equal(json_string_value(json_object_get(e, "sub")), SUB);
    assert_string_equal(json_string_value(json_object_get(e, "sid")), SID);
    assert_true(json_integer_value(json_object_get(e, "not_before"))
                == 1764640001);
    assert_string_equal(json_string_value(json_object_get(e, "cause")),
                        "logout");
    assert_true(at == 1764640000123LL);
    json_decref(e);
}


static void
test_subject_entry(void **state)
{
    json_t     *e;
    long long   at;

    (void) state;

    e = parse("{\"sub\":\"" SUB "\",\"not_before\":5,\"cause\":\"deleted\","
              "\"at\":\"bad\"}", &at);
    assert_non_null(e);
    assert_null(json_object_get(e, "sid"));
    assert_true(at == 0);
    json_decref(e);
}


static void
test_refused_events(void **state)
{
    json_t             *e;
    long long           at;
    const char *const  *s;
    static const char  *const bad[] = {
        "",
        "not json",
        "[]",
        "{\"sub\":\"" SUB "\",\"not_before\":5}",
        "{\"sub\":\"" SUB "\",\"not_before\":5,\"cause\":\"expired\"}",
        "{\"sub\":\"" SUB "\",\"not_before\":\"5\",\"cause\":\"logout\"}",
        "{\"sub\":\"" SUB "\",\"not_before\":5.5,\"cause\":\"logout\"}",
        "{\"sub\":\"" SUB "\",\"not_before\":-1,\"cause\":\"logout\"}",
        "{\"sub\":\"nope\",\"not_before\":5,\"cause\":\"logout\"}",
        "{\"sub\":\"" SUB "\",\"sid\":null,\"not_before\":5,"
        "\"cause\":\"logout\"}",
        "{\"sub\":\"" SUB "\",\"sid\":7,\"not_before\":5,\"cause\":\"logout\"}",
        "{\"sub\":\"" SUB "\",\"sub\":\"" SUB "\",\"not_before\":5,"
        "\"cause\":\"logout\"}",
        /* what the edge refuses: past year 9999, more than 60 s ahead */
        "{\"sub\":\"" SUB "\",\"not_before\":99999999999999,"
        "\"cause\":\"logout\"}",
        "{\"sub\":\"" SUB "\",\"not_before\":253402300800,"
        "\"cause\":\"logout\"}",
        "{\"sub\":\"" SUB "\",\"not_before\":1764640061,"
        "\"cause\":\"logout\"}",
        NULL
    };

    (void) state;

    for (s = bad; *s != NULL; s++) {
        assert_null(agent_entry_parse(*s, strlen(*s), NOW, &at));
    }
    assert_null(agent_entry_parse(NULL, 0, NOW, &at));

    /* an upper-case UUID, as the edge takes it */
    e = parse("{\"sub\":\"0B5F6B6E-8F0B-4D2C-9A3E-3C5E0F9D1A22\","
              "\"not_before\":5,\"cause\":\"logout\"}", &at);
    assert_non_null(e);
    json_decref(e);

    /* now + 60 is still taken, as the edge does */
    e = parse("{\"sub\":\"" SUB "\",\"not_before\":1764640060,"
              "\"cause\":\"logout\"}", &at);
    assert_non_null(e);
    json_decref(e);
}


static void
test_body(void **state)
{
    char        *s;
    size_t       len;
    json_t      *entries, *b;
    long long    at;

    (void) state;

    entries = json_array();
    json_array_append_new(entries,
        parse("{\"sub\":\"" SUB "\",\"not_before\":5,\"cause\":\"disabled\"}",
              &at));
    s = agent_body(entries, 1, 1764640000123LL, &len);
    assert_non_null(s);
    assert_int_equal(strlen(s), len);
    b = json_loads(s, 0, NULL);
    assert_non_null(b);
    assert_int_equal(json_object_size(b), 3);
    assert_int_equal(json_array_size(json_object_get(b, "revocations")), 1);
    assert_true(json_is_true(json_object_get(b, "replayed")));
    assert_true(json_integer_value(json_object_get(b, "through"))
                == 1764640000123LL);
    json_decref(b);
    free(s);

    /* a heartbeat */
    json_array_clear(entries);
    s = agent_body(entries, 0, 0, &len);
    assert_string_equal(s, "{\"revocations\":[],\"replayed\":false,"
                        "\"through\":0}");
    free(s);
    json_decref(entries);
}


static void
test_backoff_and_time(void **state)
{
    (void) state;

    assert_int_equal(agent_backoff_next(0), 100);
    assert_int_equal(agent_backoff_next(100), 200);
    assert_int_equal(agent_backoff_next(800), 1600);
    assert_int_equal(agent_backoff_next(1600), 2000);
    assert_int_equal(agent_backoff_next(2000), 2000);

    assert_true(agent_rfc3339_ms("1970-01-01T00:00:01Z") == 1000);
    assert_true(agent_rfc3339_ms("1970-01-01T00:00:01.5Z") == 1500);
    assert_true(agent_rfc3339_ms("1970-01-01T00:00:01.123456Z") == 1123);
    assert_true(agent_rfc3339_ms("1970-01-01T00:00:01+00:00") == -1);
    assert_true(agent_rfc3339_ms("1970-13-01T00:00:01Z") == -1);
    assert_true(agent_rfc3339_ms(NULL) == -1);
}


int
main(void)
{
    const struct CMUnitTest  tests[] = {
        cmocka_unit_test(test_session_entry),
        cmocka_unit_test(test_subject_entry),
        cmocka_unit_test(test_refused_events),
        cmocka_unit_test(test_body),
        cmocka_unit_test(test_backoff_and_time),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
