/*
 * Unit tests: workers/auth/validate.c — request bodies, ids, list
 * parameters and cursors.  Body cases are data: validate_cases.json beside
 * this file lists {fn, body, errors[]} with the fields expected to fail.
 */

#include <libgen.h>

#include "auth_test.h"


static json_t *
load_cases(void)
{
    char     dir[512], path[600];
    json_t  *cases;

    /* __FILE__ is relative to where make runs (the project root) */
    snprintf(dir, sizeof(dir), "%s", __FILE__);
    snprintf(path, sizeof(path), "%s/validate_cases.json", dirname(dir));

    cases = json_load_file(path, JSON_REJECT_DUPLICATES, NULL);
    assert_non_null(cases);
    return cases;
}


static int
run_fn(const char *fn, json_t *body, enc_validation_t *v)
{
    auth_login_in_t        login;
    auth_register_in_t     reg;
    auth_patch_me_in_t     me;
    auth_patch_admin_in_t  admin;

    if (strcmp(fn, "register") == 0) {
        return auth_validate_register(body, &reg, v);
    }
    if (strcmp(fn, "login") == 0) {
        return auth_validate_login(body, &login, v);
    }
    if (strcmp(fn, "patch_me") == 0) {
        return auth_validate_patch_me(body, &me, v);
    }
    if (strcmp(fn, "patch_admin") == 0) {
        return auth_validate_patch_admin(body, &admin, v);
    }

    fail_msg("unknown fn \"%s\"", fn);
    return -1;
}


static void
test_body_cases(void **state)
{
    int                rc, found;
    char              *text;
    size_t             i, j, k;
    json_t            *cases, *c, *want, *got, *e;
    const char        *fn, *field;
    enc_validation_t   v;

    (void) state;

    cases = load_cases();
    assert_true(json_array_size(cases) > 50);

    json_array_foreach(cases, i, c) {
        fn = json_string_value(json_object_get(c, "fn"));
        want = json_object_get(c, "errors");
        text = json_dumps(json_object_get(c, "body"), JSON_COMPACT);

        enc_validation_init(&v);
        rc = run_fn(fn, json_object_get(c, "body"), &v);
        got = v.errors;

        if ((rc == 0) != (json_array_size(want) == 0)) {
            fail_msg("case %zu %s %s: rc %d", i, fn, text, rc);
        }

        /* every expected field is reported, and nothing else */
        json_array_foreach(want, j, e) {
            found = 0;
            for (k = 0; k < json_array_size(got); k++) {
                field = json_string_value(
                    json_object_get(json_array_get(got, k), "field"));
                if (field != NULL && strcmp(field, json_string_value(e)) == 0)
                {
                    found = 1;
                }
            }
            if (!found) {
                fail_msg("case %zu %s %s: no error for \"%s\"", i, fn, text,
                         json_string_value(e));
            }
        }

        json_array_foreach(got, j, e) {
            field = json_string_value(json_object_get(e, "field"));
            found = 0;
            for (k = 0; k < json_array_size(want); k++) {
                if (strcmp(field, json_string_value(json_array_get(want, k)))
                    == 0)
                {
                    found = 1;
                }
            }
            if (!found) {
                fail_msg("case %zu %s %s: unexpected error for \"%s\"", i,
                         fn, text, field);
            }
        }

        free(text);
        enc_validation_free(&v);
    }

    json_decref(cases);
}


/* A string of n copies of the UTF-8 sequence u. */
static char *
repeat(const char *u, size_t n)
{
    char    *s;
    size_t   i, l;

    l = strlen(u);
    s = malloc(l * n + 1);
    assert_non_null(s);
    for (i = 0; i < n; i++) {
        memcpy(s + i * l, u, l);
    }
    s[l * n] = '\0';
    return s;
}


static int
register_password(const char *pw, auth_register_in_t *in)
{
    int               rc;
    json_t           *body;
    enc_validation_t  v;

    body = json_pack("{s:s, s:s, s:s}", "username", "alice",
                     "email", "alice@example.com", "password", pw);
    assert_non_null(body);
    enc_validation_init(&v);
    rc = auth_validate_register(body, in, &v);
    enc_validation_free(&v);
    /* the outputs borrow from body; keep only the length */
    in->username = in->email = in->password = NULL;
    json_decref(body);
    return rc;
}


static void
test_password_bounds_count_code_points(void **state)
{
    char                *s;
    auth_register_in_t   in;

    (void) state;

    /* 128 four-byte characters: 512 bytes, still 128 characters */
    s = repeat("\xf0\x9f\x8e\xb5", 128);
    assert_int_equal(register_password(s, &in), 0);
    assert_int_equal(in.password_len, 512);
    free(s);

    s = repeat("\xf0\x9f\x8e\xb5", 129);
    assert_int_equal(register_password(s, &in), -1);
    free(s);

    s = repeat("a", 128);
    assert_int_equal(register_password(s, &in), 0);
    free(s);

    s = repeat("a", 129);
    assert_int_equal(register_password(s, &in), -1);
    free(s);

    /* 8 two-byte characters are 8 characters, not 16 */
    s = repeat("\xc3\xa9", 8);
    assert_int_equal(register_password(s, &in), 0);
    assert_int_equal(in.password_len, 16);
    free(s);

    s = repeat("\xc3\xa9", 7);
    assert_int_equal(register_password(s, &in), -1);
    free(s);
}


static void
test_bio_bound(void **state)
{
    char                *s;
    json_t              *body;
    enc_validation_t     v;
    auth_patch_me_in_t   me;

    (void) state;

    s = repeat("\xe2\x99\xaa", AUTH_BIO_MAX);
    body = json_pack("{s:s}", "bio", s);
    enc_validation_init(&v);
    assert_int_equal(auth_validate_patch_me(body, &me, &v), 0);
    json_decref(body);
    free(s);

    s = repeat("x", AUTH_BIO_MAX + 1);
    body = json_pack("{s:s}", "bio", s);
    assert_int_equal(auth_validate_patch_me(body, &me, &v), -1);
    enc_validation_free(&v);
    json_decref(body);
    free(s);
}


static void
test_outputs(void **state)
{
    json_t                 *body;
    enc_validation_t        v;
    auth_patch_me_in_t      me;
    auth_patch_admin_in_t   admin;

    (void) state;

    enc_validation_init(&v);

    /* a PATCH without a body changes nothing: 422, not 200 (found by
       Schemathesis, issue 7) */
    assert_int_equal(auth_validate_patch_me(NULL, &me, &v), -1);
    assert_null(me.bio);
    assert_null(me.email);
    assert_null(me.password);
    assert_int_equal(json_array_size(v.errors), 1);
    assert_string_equal(json_string_value(json_object_get(
        json_array_get(v.errors, 0), "field")), "");
    enc_validation_free(&v);

    body = json_pack("{s:s, s:s, s:s}", "bio", "hi", "password", "new pass",
                     "current_password", "old");
    assert_int_equal(auth_validate_patch_me(body, &me, &v), 0);
    assert_string_equal(me.bio, "hi");
    assert_string_equal(me.password, "new pass");
    assert_int_equal(me.password_len, 8);
    assert_string_equal(me.current_password, "old");
    assert_int_equal(me.current_password_len, 3);
    json_decref(body);

    assert_int_equal(auth_validate_patch_admin(NULL, &admin, &v), -1);
    assert_null(admin.role);
    assert_int_equal(admin.disabled, -1);
    assert_int_equal(json_array_size(v.errors), 1);
    enc_validation_free(&v);

    body = json_pack("{s:b}", "disabled", 1);
    assert_int_equal(auth_validate_patch_admin(body, &admin, &v), 0);
    assert_int_equal(admin.disabled, 1);
    json_decref(body);
}


static void
test_uuid_and_role(void **state)
{
    (void) state;

    assert_true(enc_uuid_valid("0b5f6b6e-8f0b-4d2c-9a3e-3c5e0f9d1a22"));
    assert_true(enc_uuid_valid("0B5F6B6E-8F0B-4D2C-9A3E-3C5E0F9D1A22"));
    assert_false(enc_uuid_valid(NULL));
    assert_false(enc_uuid_valid("me"));
    assert_false(enc_uuid_valid("0b5f6b6e8f0b4d2c9a3e3c5e0f9d1a22"));
    assert_false(enc_uuid_valid("0b5f6b6e-8f0b-4d2c-9a3e-3c5e0f9d1a2g"));
    assert_false(enc_uuid_valid("0b5f6b6e-8f0b-4d2c-9a3e-3c5e0f9d1a22 "));

    assert_true(auth_role_valid("user"));
    assert_true(auth_role_valid("moderator"));
    assert_true(auth_role_valid("admin"));
    assert_false(auth_role_valid("root"));
    assert_false(auth_role_valid(NULL));
}


int
main(void)
{
    const struct CMUnitTest  tests[] = {
        cmocka_unit_test(test_body_cases),
        cmocka_unit_test(test_password_bounds_count_code_points),
        cmocka_unit_test(test_bio_bound),
        cmocka_unit_test(test_outputs),
        cmocka_unit_test(test_uuid_and_role),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
