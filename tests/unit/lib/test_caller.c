/*
 * caller: the identity headers the edge forwards, parsed once per request
 * (table-driven), and the role and ownership checks handlers use.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include "caller.h"


#define UUID_L  "0b5e7c3a-1f2d-4e5b-8a9c-0d1e2f3a4b5c"
#define UUID_U  "0B5E7C3A-1F2D-4E5B-8A9C-0D1E2F3A4B5C"


static const struct {
    const char  *id;
    const char  *role;
    const char  *name;
    int          rc;
    enc_role_t   want_role;     /* when rc == 0 */
    int          anonymous;     /* when rc == 0 */
} parse_cases[] = {
    /* anonymous: nothing, or only empty values, or only a name */
    { NULL, NULL, NULL, 0, ENC_ROLE_ANONYMOUS, 1 },
    { "", "", "", 0, ENC_ROLE_ANONYMOUS, 1 },
    { "", NULL, NULL, 0, ENC_ROLE_ANONYMOUS, 1 },
    { NULL, "", NULL, 0, ENC_ROLE_ANONYMOUS, 1 },
    { NULL, NULL, "alice", 0, ENC_ROLE_ANONYMOUS, 1 },

    /* signed in */
    { UUID_L, "user", "alice", 0, ENC_ROLE_USER, 0 },
    { UUID_L, "moderator", "mod", 0, ENC_ROLE_MODERATOR, 0 },
    { UUID_L, "admin", "root", 0, ENC_ROLE_ADMIN, 0 },
    { UUID_U, "user", NULL, 0, ENC_ROLE_USER, 0 },
    { UUID_L, "user", "", 0, ENC_ROLE_USER, 0 },

    /* malformed: a role without an id, an id without a role */
    { NULL, "user", NULL, -1, 0, 0 },
    { "", "admin", "x", -1, 0, 0 },
    { UUID_L, NULL, "alice", -1, 0, 0 },
    { UUID_L, "", "alice", -1, 0, 0 },

    /* malformed: an id that is not a UUID */
    { "42", "user", NULL, -1, 0, 0 },
    { UUID_L "0", "user", NULL, -1, 0, 0 },
    { "0b5e7c3a1f2d4e5b8a9c0d1e2f3a4b5c", "user", NULL, -1, 0, 0 },
    { "0b5e7c3a-1f2d-4e5b-8a9c-0d1e2f3a4b5g", "user", NULL, -1, 0, 0 },
    { " 0b5e7c3a-1f2d-4e5b-8a9c-0d1e2f3a4b5", "user", NULL, -1, 0, 0 },
    { "{0b5e7c3a-1f2d-4e5b-8a9c-0d1e2f3a4b}", "user", NULL, -1, 0, 0 },

    /* malformed: a role no token of ours carries */
    { UUID_L, "root", NULL, -1, 0, 0 },
    { UUID_L, "anonymous", NULL, -1, 0, 0 },
    { UUID_L, "Admin", NULL, -1, 0, 0 },
    { UUID_L, "admin ", NULL, -1, 0, 0 },
    { UUID_L, "users", NULL, -1, 0, 0 },
};


static void
test_parse_cases(void **state)
{
    int            rc;
    size_t         i;
    enc_caller_t   c;

    for (i = 0; i < sizeof(parse_cases) / sizeof(parse_cases[0]); i++) {
        memset(&c, 0x5a, sizeof(c));
        rc = enc_caller_parse(parse_cases[i].id, parse_cases[i].role,
                              parse_cases[i].name, &c);
        if (rc != parse_cases[i].rc) {
            fail_msg("case %zu (%s, %s): rc %d, want %d", i,
                     parse_cases[i].id ? parse_cases[i].id : "NULL",
                     parse_cases[i].role ? parse_cases[i].role : "NULL", rc,
                     parse_cases[i].rc);
        }

        /* whatever the outcome, c is never left half-filled */
        assert_non_null(c.name);
        if (rc != 0 || parse_cases[i].anonymous) {
            assert_null(c.id);
            assert_string_equal(c.name, "");
            assert_int_equal(c.role, ENC_ROLE_ANONYMOUS);
            continue;
        }

        assert_non_null(c.id);
        assert_string_equal(c.id, parse_cases[i].id);
        assert_int_equal(c.role, parse_cases[i].want_role);
        assert_string_equal(c.name, parse_cases[i].name != NULL
                                    ? parse_cases[i].name : "");
    }
}


static void
test_role_parse(void **state)
{
    assert_int_equal(enc_role_parse("user"), ENC_ROLE_USER);
    assert_int_equal(enc_role_parse("moderator"), ENC_ROLE_MODERATOR);
    assert_int_equal(enc_role_parse("admin"), ENC_ROLE_ADMIN);
    assert_int_equal(enc_role_parse(NULL), ENC_ROLE_ANONYMOUS);
    assert_int_equal(enc_role_parse(""), ENC_ROLE_ANONYMOUS);
    assert_int_equal(enc_role_parse("ADMIN"), ENC_ROLE_ANONYMOUS);
    assert_int_equal(enc_role_parse("superuser"), ENC_ROLE_ANONYMOUS);
}


static void
test_caller_is(void **state)
{
    enc_caller_t  anon, user, mod, admin;

    assert_int_equal(enc_caller_parse(NULL, NULL, NULL, &anon), 0);
    assert_int_equal(enc_caller_parse(UUID_L, "user", "u", &user), 0);
    assert_int_equal(enc_caller_parse(UUID_L, "moderator", "m", &mod), 0);
    assert_int_equal(enc_caller_parse(UUID_L, "admin", "a", &admin), 0);

    assert_false(enc_caller_is(&anon, ENC_ROLE_USER));
    assert_false(enc_caller_is(&anon, ENC_ROLE_ADMIN));
    /* "at least anonymous" is no check anyone may pass by accident */
    assert_false(enc_caller_is(&anon, ENC_ROLE_ANONYMOUS));

    assert_true(enc_caller_is(&user, ENC_ROLE_USER));
    assert_false(enc_caller_is(&user, ENC_ROLE_MODERATOR));
    assert_false(enc_caller_is(&user, ENC_ROLE_ADMIN));

    assert_true(enc_caller_is(&mod, ENC_ROLE_USER));
    assert_true(enc_caller_is(&mod, ENC_ROLE_MODERATOR));
    assert_false(enc_caller_is(&mod, ENC_ROLE_ADMIN));

    assert_true(enc_caller_is(&admin, ENC_ROLE_USER));
    assert_true(enc_caller_is(&admin, ENC_ROLE_MODERATOR));
    assert_true(enc_caller_is(&admin, ENC_ROLE_ADMIN));
}


static void
test_owns_or_is(void **state)
{
    enc_caller_t  anon, user, upper, mod;
    const char   *other = "11111111-2222-4333-8444-555555555555";

    assert_int_equal(enc_caller_parse(NULL, NULL, NULL, &anon), 0);
    assert_int_equal(enc_caller_parse(UUID_L, "user", "u", &user), 0);
    assert_int_equal(enc_caller_parse(UUID_U, "user", "u", &upper), 0);
    assert_int_equal(enc_caller_parse(other, "moderator", "m", &mod), 0);

    /* the owner, whatever the case of either spelling */
    assert_true(enc_caller_owns_or_is(&user, UUID_L, ENC_ROLE_MODERATOR));
    assert_true(enc_caller_owns_or_is(&user, UUID_U, ENC_ROLE_MODERATOR));
    assert_true(enc_caller_owns_or_is(&upper, UUID_L, ENC_ROLE_MODERATOR));
    assert_true(enc_caller_owns_or_is(&user, UUID_L, ENC_ROLE_ADMIN));

    /* someone else's, or nobody's */
    assert_false(enc_caller_owns_or_is(&user, other, ENC_ROLE_MODERATOR));
    assert_false(enc_caller_owns_or_is(&user, NULL, ENC_ROLE_MODERATOR));
    assert_false(enc_caller_owns_or_is(&user, "", ENC_ROLE_MODERATOR));
    assert_false(enc_caller_owns_or_is(&user, UUID_L "x",
                                       ENC_ROLE_MODERATOR));

    /* a moderator edits what others wrote, not what an admin may only */
    assert_true(enc_caller_owns_or_is(&mod, UUID_L, ENC_ROLE_MODERATOR));
    assert_false(enc_caller_owns_or_is(&mod, UUID_L, ENC_ROLE_ADMIN));
    assert_true(enc_caller_owns_or_is(&mod, NULL, ENC_ROLE_MODERATOR));

    /* anonymous callers own nothing, even an absent owner */
    assert_false(enc_caller_owns_or_is(&anon, NULL, ENC_ROLE_USER));
    assert_false(enc_caller_owns_or_is(&anon, UUID_L, ENC_ROLE_USER));
    assert_false(enc_caller_owns_or_is(&anon, NULL, ENC_ROLE_ANONYMOUS));
}


int
main(void)
{
    const struct CMUnitTest  tests[] = {
        cmocka_unit_test(test_parse_cases),
        cmocka_unit_test(test_role_parse),
        cmocka_unit_test(test_caller_is),
        cmocka_unit_test(test_owns_or_is),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
