/*
 * Unit tests: workers/auth/tokens.c — refresh token shape and hashing.
 */

#include "auth_test.h"


static void
test_new_token_shape(void **state)
{
    int            i;
    char           a[AUTH_REFRESH_TOKEN_LEN + 1], b[AUTH_REFRESH_TOKEN_LEN + 1];
    size_t         n;
    unsigned char  raw[64];

    (void) state;

    assert_int_equal(auth_refresh_token_new(a, sizeof(a)), 0);
    assert_int_equal(strlen(a), AUTH_REFRESH_TOKEN_LEN);
    assert_true(auth_refresh_token_wellformed(a));

    /* 256 bits */
    assert_int_equal(enc_b64url_decode(a, strlen(a), raw, sizeof(raw), &n),
                     0);
    assert_int_equal(n, 32);

    for (i = 0; i < 100; i++) {
        assert_int_equal(auth_refresh_token_new(b, sizeof(b)), 0);
        assert_string_not_equal(a, b);
    }

    assert_int_equal(auth_refresh_token_new(a, AUTH_REFRESH_TOKEN_LEN), -1);
}


static void
test_wellformed(void **state)
{
    (void) state;

    assert_false(auth_refresh_token_wellformed(NULL));
    assert_false(auth_refresh_token_wellformed(""));
    assert_false(auth_refresh_token_wellformed("short"));
    /* 43 chars but '+' is not base64url */
    assert_false(auth_refresh_token_wellformed(
        "+AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"));
    /* 43 chars with non-zero unused trailing bits */
    assert_false(auth_refresh_token_wellformed(
        "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAB"));
    assert_true(auth_refresh_token_wellformed(
        "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"));
    /* a JWT is not a refresh token */
    assert_false(auth_refresh_token_wellformed("eyJhbGciOiJFUzI1NiJ9.e30.sig"));
}


static void
test_hash(void **state)
{
    char  h[AUTH_SHA256_HEX_LEN + 1];

    (void) state;

    /* FIPS 180-2 example: SHA-256("abc") */
    assert_int_equal(auth_refresh_token_hash("abc", h, sizeof(h)), 0);
    assert_string_equal(h, "ba7816bf8f01cfea414140de5dae2223"
                           "b00361a396177a9cb410ff61f20015ad");

    assert_int_equal(auth_refresh_token_hash("", h, sizeof(h)), 0);
    assert_string_equal(h, "e3b0c44298fc1c149afbf4c8996fb924"
                           "27ae41e4649b934ca495991b7852b855");

    assert_int_equal(auth_refresh_token_hash("abc", h, AUTH_SHA256_HEX_LEN),
                     -1);
}


static void
test_hash_is_not_the_token(void **state)
{
    char  t[AUTH_REFRESH_TOKEN_LEN + 1], h1[AUTH_SHA256_HEX_LEN + 1];
    char  h2[AUTH_SHA256_HEX_LEN + 1];

    (void) state;

    assert_int_equal(auth_refresh_token_new(t, sizeof(t)), 0);
    assert_int_equal(auth_refresh_token_hash(t, h1, sizeof(h1)), 0);
    assert_int_equal(auth_refresh_token_hash(t, h2, sizeof(h2)), 0);
    assert_string_equal(h1, h2);                 /* deterministic lookup key */
    assert_null(strstr(h1, t));
    assert_int_equal(strspn(h1, "0123456789abcdef"), AUTH_SHA256_HEX_LEN);
}


int
main(void)
{
    const struct CMUnitTest  tests[] = {
        cmocka_unit_test(test_new_token_shape),
        cmocka_unit_test(test_wellformed),
        cmocka_unit_test(test_hash),
        cmocka_unit_test(test_hash_is_not_the_token),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
