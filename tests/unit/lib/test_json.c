/*
 * json: problem bodies, the validation collector, typed getters (UTF-8
 * code points, bounds, wrong types, absent fields).
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include "json.h"


static void
test_problem(void **state)
{
    json_t  *p = enc_problem_new(404, NULL, "no user");

    assert_string_equal(json_string_value(json_object_get(p, "type")),
                        "about:blank");
    assert_string_equal(json_string_value(json_object_get(p, "title")),
                        "Not Found");
    assert_int_equal(json_integer_value(json_object_get(p, "status")), 404);
    assert_string_equal(json_string_value(json_object_get(p, "detail")),
                        "no user");
    json_decref(p);

    p = enc_problem_new(409, "Conflict", NULL);
    assert_string_equal(json_string_value(json_object_get(p, "detail")),
                        "Conflict");
    json_decref(p);

    /* invalid UTF-8 in a detail: refused, not emitted */
    assert_null(enc_problem_new(400, NULL, "bad \xff"));
    assert_string_equal(enc_http_reason(413), "Content Too Large");
    assert_string_equal(enc_http_reason(299), "Unknown");
}


static void
test_utf8_chars(void **state)
{
    static const struct {
        const char  *s;
        size_t       len;
        size_t       want;
    } cases[] = {
        { "", 0, 0 },
        { "abc", 3, 3 },
        { "h\xc3\xa9llo", 6, 5 },
        { "\xe2\x82\xac", 3, 1 },                 /* € */
        { "\xf0\x9f\x8e\xb5!", 5, 2 },            /* 🎵! */
        { "a\0b", 3, (size_t) -1 },               /* NUL */
        { "\xc3", 1, (size_t) -1 },               /* truncated */
        { "\xe2\x82", 2, (size_t) -1 },
        { "\xc0\xaf", 2, (size_t) -1 },           /* overlong */
        { "\xe0\x80\xaf", 3, (size_t) -1 },       /* overlong */
        { "\xed\xa0\x80", 3, (size_t) -1 },       /* surrogate */
        { "\xf4\x90\x80\x80", 4, (size_t) -1 },   /* > U+10FFFF */
        { "\xff", 1, (size_t) -1 },
        { "\x80", 1, (size_t) -1 },               /* lone continuation */
    };
    size_t  i;

    for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        if (enc_utf8_chars(cases[i].s, cases[i].len) != cases[i].want) {
            fail_msg("case %zu", i);
        }
    }
}


static json_t *
body(const char *text)
{
    json_t  *j = json_loads(text, JSON_REJECT_DUPLICATES, NULL);

    assert_non_null(j);
    return j;
}


static const char *
first_field(enc_validation_t *v)
{
    return json_string_value(json_object_get(json_array_get(v->errors, 0),
                                             "field"));
}


static void
test_get_str(void **state)
{
    json_t            *b = body("{\"u\":\"h\\u00e9llo\",\"n\":5,\"e\":\"\","
                                "\"z\":null,\"emoji\":\"\\ud83c\\udfb5\"}");
    const char        *s = NULL;
    enc_validation_t   v;

    enc_validation_init(&v);
    assert_false(enc_validation_failed(&v));

    /* 5 code points, 6 bytes: fits 3..5 */
    assert_int_equal(enc_json_get_str(b, "u", 1, 3, 5, &s, &v), 0);
    assert_string_equal(s, "h\xc3\xa9llo");
    assert_int_equal(enc_json_get_str(b, "emoji", 1, 1, 1, &s, &v), 0);
    assert_false(enc_validation_failed(&v));

    /* too long by one code point */
    assert_int_equal(enc_json_get_str(b, "u", 1, 3, 4, &s, &v), -1);
    assert_string_equal(first_field(&v), "u");
    enc_validation_free(&v);

    /* too short, wrong type, missing, absent optional, null optional */
    assert_int_equal(enc_json_get_str(b, "e", 1, 1, 10, &s, &v), -1);
    assert_int_equal(enc_json_get_str(b, "n", 1, 0, 10, &s, &v), -1);
    assert_int_equal(enc_json_get_str(b, "missing", 1, 0, 10, &s, &v), -1);
    assert_int_equal(json_array_size(v.errors), 3);
    s = "preset";
    assert_int_equal(enc_json_get_str(b, "missing", 0, 0, 10, &s, &v), 0);
    assert_int_equal(enc_json_get_str(b, "z", 0, 0, 10, &s, &v), 0);
    assert_string_equal(s, "preset");
    assert_int_equal(enc_json_get_str(b, "z", 1, 0, 10, &s, &v), -1);
    assert_int_equal(json_array_size(v.errors), 4);
    enc_validation_free(&v);

    /* no body at all */
    assert_int_equal(enc_json_get_str(NULL, "u", 1, 0, 10, &s, &v), -1);
    assert_int_equal(enc_json_get_str(NULL, "u", 0, 0, 10, &s, &v), 0);
    enc_validation_free(&v);
    json_decref(b);
}


static void
test_get_int_bool_array(void **state)
{
    json_t            *b = body("{\"i\":42,\"neg\":-1,\"r\":1.5,\"s\":\"7\","
                                "\"t\":true,\"f\":false,\"big\":"
                                "9223372036854775807,\"a\":[1,2,3]}");
    long long          n = 0;
    int                flag = -1;
    json_t            *arr = NULL;
    enc_validation_t   v;

    enc_validation_init(&v);
    assert_int_equal(enc_json_get_int(b, "i", 1, 0, 100, &n, &v), 0);
    assert_int_equal(n, 42);
    assert_int_equal(enc_json_get_int(b, "big", 1, 0, 1000, &n, &v), -1);
    assert_int_equal(enc_json_get_int(b, "neg", 1, 0, 10, &n, &v), -1);
    assert_int_equal(enc_json_get_int(b, "r", 1, 0, 10, &n, &v), -1);
    assert_int_equal(enc_json_get_int(b, "s", 1, 0, 10, &n, &v), -1);
    assert_int_equal(enc_json_get_int(b, "t", 1, 0, 10, &n, &v), -1);
    assert_int_equal(json_array_size(v.errors), 5);
    enc_validation_free(&v);

    assert_int_equal(enc_json_get_bool(b, "t", 1, &flag, &v), 0);
    assert_int_equal(flag, 1);
    assert_int_equal(enc_json_get_bool(b, "f", 1, &flag, &v), 0);
    assert_int_equal(flag, 0);
    assert_int_equal(enc_json_get_bool(b, "i", 1, &flag, &v), -1);
    flag = 7;
    assert_int_equal(enc_json_get_bool(b, "none", 0, &flag, &v), 0);
    assert_int_equal(flag, 7);

    assert_int_equal(enc_json_get_array(b, "a", 1, 1, 3, &arr, &v), 0);
    assert_int_equal(json_array_size(arr), 3);
    assert_int_equal(enc_json_get_array(b, "a", 1, 0, 2, &arr, &v), -1);
    assert_int_equal(enc_json_get_array(b, "i", 1, 0, 2, &arr, &v), -1);
    assert_true(enc_validation_failed(&v));
    enc_validation_free(&v);
    assert_false(enc_validation_failed(&v));
    json_decref(b);
}


static void
test_validation_messages(void **state)
{
    enc_validation_t  v;
    json_t           *e;

    enc_validation_init(&v);
    enc_validation_add(&v, "username", "must match %s", "[a-z0-9_]");
    e = json_array_get(v.errors, 0);
    assert_string_equal(json_string_value(json_object_get(e, "message")),
                        "must match [a-z0-9_]");
    /* a message with invalid UTF-8 still yields a valid entry */
    enc_validation_add(&v, "x", "bad %s", "\xff");
    assert_int_equal(json_array_size(v.errors), 2);
    enc_validation_free(&v);
}


/* enc_json_dumps(v) is json_dumps(v, JSON_COMPACT), byte for byte */
static void
assert_dumps_same(const json_t *v)
{
    char    *ours, *theirs;
    size_t   len = 0;

    ours = enc_json_dumps(v, &len);
    theirs = json_dumps(v, JSON_COMPACT);
    if (theirs == NULL) {
        assert_null(ours);
        return;
    }
    assert_non_null(ours);
    assert_int_equal(len, strlen(theirs));
    assert_memory_equal(ours, theirs, len + 1);
    free(ours);
    free(theirs);
}


/* a random string of code points, every escape and UTF-8 length in it */
static json_t *
random_string(unsigned *seed)
{
    char           buf[256];
    size_t         n = 0, k, len = (size_t) (rand_r(seed) % 24);
    unsigned long  cp;

    for (k = 0; k < len; k++) {
        switch (rand_r(seed) % 6) {
        case 0:  cp = (unsigned long) (rand_r(seed) % 0x20); break;
        case 1:  cp = "\"\\/ az\x7f"[rand_r(seed) % 7]; break;
        case 2:  cp = 0x80 + (unsigned long) (rand_r(seed) % 0x780); break;
        case 3:  cp = 0x800 + (unsigned long) (rand_r(seed) % 0xd000); break;
        case 4:  cp = 0x10000 + (unsigned long) (rand_r(seed) % 0x100000);
                 break;
        default: cp = 0x20 + (unsigned long) (rand_r(seed) % 0x5f); break;
        }
        if (cp < 0x80) {
            buf[n++] = (char) cp;
        } else if (cp < 0x800) {
            buf[n++] = (char) (0xc0 | (cp >> 6));
            buf[n++] = (char) (0x80 | (cp & 0x3f));
        } else if (cp < 0x10000) {
            buf[n++] = (char) (0xe0 | (cp >> 12));
            buf[n++] = (char) (0x80 | ((cp >> 6) & 0x3f));
            buf[n++] = (char) (0x80 | (cp & 0x3f));
        } else {
            buf[n++] = (char) (0xf0 | (cp >> 18));
            buf[n++] = (char) (0x80 | ((cp >> 12) & 0x3f));
            buf[n++] = (char) (0x80 | ((cp >> 6) & 0x3f));
            buf[n++] = (char) (0x80 | (cp & 0x3f));
        }
    }
    /* json_stringn: NUL inside is allowed and written as \u0000 */
    return json_stringn(buf, n);
}


static json_t *
random_value(unsigned *seed, int depth)
{
    int      i, n;
    json_t  *v, *m;
    char     key[16];

    switch (rand_r(seed) % (depth > 4 ? 6 : 8)) {
    case 0: return json_null();
    case 1: return json_boolean(rand_r(seed) % 2);
    case 2: return json_integer((json_int_t) rand_r(seed) - RAND_MAX / 2);
    case 3: return json_real((double) rand_r(seed) / 7.0);
    case 4:
    case 5: return random_string(seed);
    case 6:
        v = json_array();
        n = rand_r(seed) % 5;
        for (i = 0; i < n; i++) {
            (void) json_array_append_new(v, random_value(seed, depth + 1));
        }
        return v;
    default:
        v = json_object();
        n = rand_r(seed) % 5;
        for (i = 0; i < n; i++) {
            m = random_string(seed);
            if (strlen(json_string_value(m)) == json_string_length(m)) {
                (void) json_object_set_new(v, json_string_value(m),
                                           random_value(seed, depth + 1));
            }
            json_decref(m);
            snprintf(key, sizeof(key), "k%d", i);
            (void) json_object_set_new(v, key, json_integer(i));
        }
        return v;
    }
}


/*
 * Issue 7: responses are serialised by enc_json_dumps instead of
 * json_dumps (several times cheaper); the bytes must not change.
 */
static void
test_dumps_like_jansson(void **state)
{
    int        i;
    json_t    *v, *a, *b;
    unsigned   seed = 7;

    /* the shapes answers have */
    v = json_pack("{s:s, s:s, s:n, s:b, s:I, s:I, s:f, s:[], s:{}}",
                  "id", "81a65157-649e-4153-94e2-9f3c41576c11",
                  "bio", "line\nbreak \"quoted\" back\\slash / \x01\x1f\x7f"
                  " caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x8e\xb5",
                  "none", "yes", 1, "min", (json_int_t) LLONG_MIN,
                  "max", (json_int_t) LLONG_MAX, "real", 2.5,
                  "items", "obj");
    assert_non_null(v);
    assert_dumps_same(v);
    json_decref(v);
    v = json_array();
    assert_dumps_same(v);
    json_decref(v);

    for (i = 0; i < 2000; i++) {
        v = random_value(&seed, 0);
        a = json_array();
        (void) json_array_append_new(a, v);
        assert_dumps_same(a);
        json_decref(a);
    }

    /* not a container at the top, as json_dumps without JSON_ENCODE_ANY */
    v = json_string("x");
    assert_null(enc_json_dumps(v, NULL));
    json_decref(v);

    /* invalid UTF-8 (only _nocheck can make it): refused by both */
    v = json_pack("{s:o}", "s", json_string_nocheck("a\xc3("));
    assert_null(enc_json_dumps(v, NULL));
    assert_dumps_same(v);
    json_decref(v);
    v = json_pack("{s:o}", "s", json_string_nocheck("\xed\xa0\x80"));
    assert_null(enc_json_dumps(v, NULL));
    json_decref(v);

    /* a value containing itself: refused, no endless recursion */
    a = json_array();
    b = json_array();
    (void) json_array_append(b, a);
    (void) json_array_append(a, b);
    assert_null(enc_json_dumps(a, NULL));
    assert_null(json_dumps(a, JSON_COMPACT));
    json_array_clear(a);
    json_decref(a);
    json_decref(b);

    /* nesting within ENC_JSON_DUMP_DEPTH is fine */
    v = json_array();
    a = v;
    for (i = 0; i < ENC_JSON_DUMP_DEPTH - 1; i++) {
        b = json_array();
        (void) json_array_append_new(a, b);
        a = b;
    }
    assert_dumps_same(v);
    (void) json_array_append_new(a, json_array());
    (void) json_array_append_new(json_array_get(a, 0), json_array());
    assert_null(enc_json_dumps(v, NULL));
    json_decref(v);
}


int
main(void)
{
    const struct CMUnitTest  tests[] = {
        cmocka_unit_test(test_problem),
        cmocka_unit_test(test_utf8_chars),
        cmocka_unit_test(test_get_str),
        cmocka_unit_test(test_get_int_bool_array),
        cmocka_unit_test(test_validation_messages),
        cmocka_unit_test(test_dumps_like_jansson),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
