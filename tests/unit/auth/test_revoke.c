/*
 * Unit tests: workers/auth/revoke.c — the revocation event's value and
 * the iat rule.  The database half (one event per cause, in the cause's
 * transaction) is tested through the worker: tests/integration/
 * test_auth_revocations.py.
 */

#include "auth_test.h"


#define SUB  "0b5f6b6e-8f0b-4d2c-9a3e-3c5e0f9d1a22"
#define SID  "5f0c3a1e-6b2d-4e8f-9a7c-1d2e3f4a5b6c"


static void
test_iat_rule(void **state)
{
    (void) state;

    /* never before tokens_not_before, never before now */
    assert_true(auth_token_iat(1764640000, 0) == 1764640000);
    assert_true(auth_token_iat(1764640000, 1764640001) == 1764640001);
    assert_true(auth_token_iat(1764640002, 1764640001) == 1764640002);
}


static void
test_subject_event(void **state)
{
    json_t  *j;

    (void) state;

    /* 2025-12-02T01:46:40.123Z */
    j = auth_revocation_json(SUB, NULL, 1764640001, "password_changed",
                             1764640000123LL);
    assert_non_null(j);
    assert_int_equal(json_object_size(j), 4);
    assert_string_equal(json_string_value(json_object_get(j, "sub")), SUB);
    assert_null(json_object_get(j, "sid"));
    assert_true(json_is_integer(json_object_get(j, "not_before")));
    assert_true(json_integer_value(json_object_get(j, "not_before"))
                == 1764640001);
    assert_string_equal(json_string_value(json_object_get(j, "cause")),
                        "password_changed");
    assert_string_equal(json_string_value(json_object_get(j, "at")),
                        "2025-12-02T01:46:40.123Z");
    json_decref(j);
}


static void
test_session_event(void **state)
{
    json_t  *j;

    (void) state;

    j = auth_revocation_json(SUB, SID, 7, "logout", 5);
    assert_non_null(j);
    assert_int_equal(json_object_size(j), 5);
    assert_string_equal(json_string_value(json_object_get(j, "sid")), SID);
    assert_string_equal(json_string_value(json_object_get(j, "at")),
                        "1970-01-01T00:00:00.005Z");
    json_decref(j);
}


static void
test_every_cause(void **state)
{
    json_t             *j;
    const char *const  *c;
    static const char  *const causes[] = {
        "logout", "refresh_reuse", "password_changed", "disabled",
        "role_changed", "deleted", NULL
    };

    (void) state;

    for (c = causes; *c != NULL; c++) {
        j = auth_revocation_json(SUB, NULL, 1, *c, 0);
        assert_non_null(j);
        json_decref(j);
    }
}


static void
test_refused_arguments(void **state)
{
    (void) state;

    assert_null(auth_revocation_json(NULL, NULL, 1, "logout", 0));
    assert_null(auth_revocation_json("not-a-uuid", NULL, 1, "logout", 0));
    assert_null(auth_revocation_json(SUB, "nope", 1, "logout", 0));
    assert_null(auth_revocation_json(SUB, NULL, 1, "expired", 0));
    assert_null(auth_revocation_json(SUB, NULL, 1, NULL, 0));
    assert_null(auth_revocation_json(SUB, NULL, -1, "logout", 0));
}


int
main(void)
{
    const struct CMUnitTest  tests[] = {
        cmocka_unit_test(test_iat_rule),
        cmocka_unit_test(test_subject_event),
        cmocka_unit_test(test_session_event),
        cmocka_unit_test(test_every_cause),
        cmocka_unit_test(test_refused_arguments),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
