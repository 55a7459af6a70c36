/*
 * Unit tests: workers/auth/cookies.c — Set-Cookie values of the session.
 */

#include "auth_test.h"


static void
test_access_cookie(void **state)
{
    char  buf[512];

    (void) state;

    assert_int_equal(auth_cookie_build(buf, sizeof(buf), AUTH_COOKIE_ACCESS,
                                       "eyJ.abc.d-_", AUTH_COOKIE_ACCESS_PATH,
                                       900, 0), 0);
    assert_string_equal(buf, "encore_access=eyJ.abc.d-_; Path=/; "
                             "Max-Age=900; HttpOnly; SameSite=Strict");

    assert_int_equal(auth_cookie_build(buf, sizeof(buf), AUTH_COOKIE_ACCESS,
                                       "t", AUTH_COOKIE_ACCESS_PATH, 900, 1),
                     0);
    assert_string_equal(buf, "encore_access=t; Path=/; Max-Age=900; "
                             "HttpOnly; SameSite=Strict; Secure");
}


static void
test_refresh_cookie(void **state)
{
    char  buf[512];

    (void) state;

    assert_int_equal(auth_cookie_build(buf, sizeof(buf), AUTH_COOKIE_REFRESH,
                                       "r3fr35h", AUTH_COOKIE_REFRESH_PATH,
                                       2592000, 1), 0);
    assert_string_equal(buf, "encore_refresh=r3fr35h; Path=/api/v1/auth; "
                             "Max-Age=2592000; HttpOnly; SameSite=Strict; "
                             "Secure");

    /* session cookie */
    assert_int_equal(auth_cookie_build(buf, sizeof(buf), "n", "v", "/", -1,
                                       0), 0);
    assert_string_equal(buf, "n=v; Path=/; HttpOnly; SameSite=Strict");
}


static void
test_clear_cookie(void **state)
{
    char  buf[512];

    (void) state;

    assert_int_equal(auth_cookie_clear(buf, sizeof(buf), AUTH_COOKIE_REFRESH,
                                       AUTH_COOKIE_REFRESH_PATH, 0), 0);
    assert_string_equal(buf, "encore_refresh=; Path=/api/v1/auth; Max-Age=0; "
                             "Expires=Thu, 01 Jan 1970 00:00:00 GMT; "
                             "HttpOnly; SameSite=Strict");
}


static void
test_unsafe_values_refused(void **state)
{
    char  buf[512];

    (void) state;

    /* header injection and attribute smuggling */
    assert_int_equal(auth_cookie_build(buf, sizeof(buf), "a", "x; Domain=evil",
                                       "/", 1, 0), -1);
    assert_int_equal(auth_cookie_build(buf, sizeof(buf), "a", "x\r\nSet-Cookie",
                                       "/", 1, 0), -1);
    assert_int_equal(auth_cookie_build(buf, sizeof(buf), "a", "\"q\"", "/", 1,
                                       0), -1);
    assert_int_equal(auth_cookie_build(buf, sizeof(buf), "a", "\xc3\xa4", "/",
                                       1, 0), -1);
    assert_int_equal(auth_cookie_build(buf, sizeof(buf), "", "v", "/", 1, 0),
                     -1);
    /* does not fit */
    assert_int_equal(auth_cookie_build(buf, 20, "encore_access", "v", "/",
                                       900, 0), -1);
}


static void
test_forwarded_https(void **state)
{
    (void) state;

    assert_int_equal(auth_forwarded_https(NULL), 0);
    assert_int_equal(auth_forwarded_https(""), 0);
    assert_int_equal(auth_forwarded_https("http"), 0);
    assert_int_equal(auth_forwarded_https("https"), 1);
    assert_int_equal(auth_forwarded_https("HTTPS"), 1);
    assert_int_equal(auth_forwarded_https(" https , http"), 1);
    assert_int_equal(auth_forwarded_https("http, https"), 0);
    assert_int_equal(auth_forwarded_https("httpsx"), 0);
}


int
main(void)
{
    const struct CMUnitTest  tests[] = {
        cmocka_unit_test(test_access_cookie),
        cmocka_unit_test(test_refresh_cookie),
        cmocka_unit_test(test_clear_cookie),
        cmocka_unit_test(test_unsafe_values_refused),
        cmocka_unit_test(test_forwarded_https),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
