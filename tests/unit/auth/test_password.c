/*
 * Unit tests: workers/auth/password.c — Argon2id hashing and verification.
 */

#include "auth_test.h"


static const auth_argon2_params_t  owasp = {
    AUTH_ARGON2_M_MIN, AUTH_ARGON2_T_MIN, AUTH_ARGON2_P_MIN
};


static void
test_hash_and_verify(void **state)
{
    char  hash[AUTH_ARGON2_ENCODED_MAX];

    (void) state;

    assert_int_equal(auth_password_hash(&owasp, "correct horse", 13, hash,
                                        sizeof(hash)), 0);
    assert_true(strncmp(hash, "$argon2id$v=19$m=19456,t=2,p=1$", 31) == 0);

    assert_int_equal(auth_password_verify(hash, "correct horse", 13), 1);
    assert_int_equal(auth_password_verify(hash, "correct horsE", 13), 0);
    assert_int_equal(auth_password_verify(hash, "correct hors", 12), 0);
    assert_int_equal(auth_password_verify(hash, "", 0), 0);
}


static void
test_salt_is_random(void **state)
{
    char  a[AUTH_ARGON2_ENCODED_MAX], b[AUTH_ARGON2_ENCODED_MAX];

    (void) state;

    assert_int_equal(auth_password_hash(&owasp, "password1", 9, a,
                                        sizeof(a)), 0);
    assert_int_equal(auth_password_hash(&owasp, "password1", 9, b,
                                        sizeof(b)), 0);
    assert_string_not_equal(a, b);
    assert_int_equal(auth_password_verify(a, "password1", 9), 1);
    assert_int_equal(auth_password_verify(b, "password1", 9), 1);
}


static void
test_unicode_password(void **state)
{
    char         hash[AUTH_ARGON2_ENCODED_MAX];
    const char  *pw = "p\xc3\xa4ssw\xc3\xb6rd \xf0\x9f\x94\x91";   /* "pässwörd 🔑" */

    (void) state;

    /* hashed as the UTF-8 bytes the client sent, no normalisation */
    assert_int_equal(auth_password_hash(&owasp, pw, strlen(pw), hash,
                                        sizeof(hash)), 0);
    assert_int_equal(auth_password_verify(hash, pw, strlen(pw)), 1);
    assert_int_equal(auth_password_verify(hash, "passwORD", 8), 0);
}


static void
test_weak_parameters_refused(void **state)
{
    char                  hash[AUTH_ARGON2_ENCODED_MAX];
    auth_argon2_params_t  p;

    (void) state;

    p = owasp;
    p.m_kib = AUTH_ARGON2_M_MIN - 1;
    assert_int_equal(auth_password_hash(&p, "password1", 9, hash,
                                        sizeof(hash)), -1);
    p = owasp;
    p.t_cost = 1;
    assert_int_equal(auth_password_hash(&p, "password1", 9, hash,
                                        sizeof(hash)), -1);
    p = owasp;
    p.parallelism = 0;
    assert_int_equal(auth_password_hash(&p, "password1", 9, hash,
                                        sizeof(hash)), -1);

    /* output buffer too small */
    assert_int_equal(auth_password_hash(&owasp, "password1", 9, hash, 40),
                     -1);
}


static void
test_malformed_hashes(void **state)
{
    (void) state;

    assert_int_equal(auth_password_verify(NULL, "x", 1), -1);
    assert_int_equal(auth_password_verify("", "x", 1), -1);
    assert_int_equal(auth_password_verify("$2b$10$abcdefghijklmnopqrstuv",
                                          "x", 1), -1);
    /* argon2i, not argon2id */
    assert_int_equal(auth_password_verify(
        "$argon2i$v=19$m=19456,t=2,p=1$c29tZXNhbHQ$"
        "iWh06vD8Fy27wf9npn6FXWiCX4K6pW6Ue1Bnzz07Z8A", "x", 1), -1);
    assert_int_equal(auth_password_verify("$argon2id$v=19$garbage", "x", 1),
                     -1);
}


static void
test_needs_rehash(void **state)
{
    char                  hash[AUTH_ARGON2_ENCODED_MAX];
    auth_argon2_params_t  stronger;

    (void) state;

    assert_int_equal(auth_password_hash(&owasp, "password1", 9, hash,
                                        sizeof(hash)), 0);
    assert_int_equal(auth_password_needs_rehash(&owasp, hash), 0);

    stronger = owasp;
    stronger.t_cost = 3;
    assert_int_equal(auth_password_needs_rehash(&stronger, hash), 1);
    stronger = owasp;
    stronger.m_kib = 65536;
    assert_int_equal(auth_password_needs_rehash(&stronger, hash), 1);

    assert_int_equal(auth_password_needs_rehash(&owasp,
        "$argon2id$v=19$m=4096,t=3,p=1$c2FsdHNhbHQ$aGFzaA"), 1);
    assert_int_equal(auth_password_needs_rehash(&owasp, "$2b$10$x"), 1);
}


int
main(void)
{
    const struct CMUnitTest  tests[] = {
        cmocka_unit_test(test_hash_and_verify),
        cmocka_unit_test(test_salt_is_random),
        cmocka_unit_test(test_unicode_password),
        cmocka_unit_test(test_weak_parameters_refused),
        cmocka_unit_test(test_malformed_hashes),
        cmocka_unit_test(test_needs_rehash),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
