/*
 * Unit tests: workers/lib/cursor.c (signed keyset cursors), the keys
 * themselves (test_cursor.c has the format and the key file): round trips
 * of keys in any script within ENC_CURSOR_MAX, and refusal of anything
 * altered, foreign or malformed.
 */

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "cursor.h"

#define UUID  "0b7e5a52-3c1f-4f5e-9a57-1d2c3b4a5f60"


static int
setup(void **state)
{
    static const unsigned char  key[32] = "0123456789abcdef0123456789abcde";

    (void) state;
    return enc_cursor_set_key(key, sizeof(key));
}


/* a key of n copies of the UTF-8 character c */
static char *
repeat(const char *c, size_t n)
{
    size_t  i, len = strlen(c);
    char   *s = malloc(len * n + 1);

    assert_non_null(s);
    for (i = 0; i < n; i++) {
        memcpy(s + i * len, c, len);
    }
    s[len * n] = '\0';
    return s;
}


static void
round_trip(const char *first)
{
    char    *c;
    json_t  *keys, *back;

    keys = json_pack("[s, s]", first, UUID);
    assert_non_null(keys);
    c = enc_cursor_encode("list\nscope", keys);
    assert_non_null(c);
    assert_true(strlen(c) <= ENC_CURSOR_MAX);

    back = enc_cursor_decode(c, "list\nscope");
    assert_non_null(back);
    assert_true(json_equal(keys, back));

    json_decref(back);
    json_decref(keys);
    free(c);
}


static void
test_keys_of_any_script_fit(void **state)
{
    /* the catalog's sort key: 64 characters of anything, and an id;
       a JSON payload with \uXXXX escapes did not fit from ~55 Cyrillic
       letters on */
    static const char  *chars[] = {
        "a", "\xd0\xaf" /* Я */, "\xe6\x9d\xb1" /* 東 */,
        "\xf0\x9f\x98\x80" /* 😀 */, "\"", "\\", "\x01", "\x7f", "/"
    };
    size_t  i;
    char   *k;

    (void) state;

    for (i = 0; i < sizeof(chars) / sizeof(chars[0]); i++) {
        k = repeat(chars[i], 64);
        round_trip(k);
        free(k);
    }
    round_trip("");
    round_trip("infinity");
}


static void
test_refused(void **state)
{
    char         *c, *bad;
    size_t        i, len;
    json_t       *keys, *k;
    const char   *alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstu"
                             "vwxyz0123456789-_";

    (void) state;

    keys = json_pack("[s, s]", "sort key", UUID);
    c = enc_cursor_encode("scope", keys);
    assert_non_null(c);
    len = strlen(c);

    /* another scope */
    assert_null(enc_cursor_decode(c, "scope2"));
    assert_null(enc_cursor_decode(c, "scop"));
    assert_null(enc_cursor_decode(c, ""));

    /* any character changed (the last one may only change unused bits) */
    bad = strdup(c);
    for (i = 0; i + 1 < len; i++) {
        bad[i] = alphabet[(strchr(alphabet, c[i]) - alphabet + 1) % 64];
        assert_null(enc_cursor_decode(bad, "scope"));
        bad[i] = c[i];
    }

    /* cut or lengthened */
    for (i = 0; i < len; i++) {
        bad[i] = '\0';
        assert_null(enc_cursor_decode(bad, "scope"));
        bad[i] = c[i];
    }
    free(bad);

    bad = malloc(len + 6);
    memcpy(bad, c, len);
    memcpy(bad + len, "AAAA=", 6);
    assert_null(enc_cursor_decode(bad, "scope"));
    bad[len + 4] = '\0';
    assert_null(enc_cursor_decode(bad, "scope"));
    free(bad);

    assert_null(enc_cursor_decode("", "scope"));
    assert_null(enc_cursor_decode("!!!!", "scope"));
    assert_null(enc_cursor_decode("AgAAAAAAAAAAAAAAAAAAAAAA", "scope"));

    free(c);
    json_decref(keys);

    /* keys that cannot be carried: not strings, a NUL inside, too long */
    keys = json_pack("[i]", 1);
    assert_null(enc_cursor_encode("scope", keys));
    json_decref(keys);

    keys = json_array();
    json_array_append_new(keys, json_stringn("a\0b", 3));
    assert_null(enc_cursor_encode("scope", keys));
    json_decref(keys);

    k = json_string(UUID);
    keys = json_array();
    for (i = 0; i < 20; i++) {
        json_array_append(keys, k);
    }
    assert_null(enc_cursor_encode("scope", keys));
    json_decref(keys);
    json_decref(k);

    keys = json_array();
    assert_null(enc_cursor_encode("scope", keys));
    json_decref(keys);
}


int
main(void)
{
    const struct CMUnitTest  tests[] = {
        cmocka_unit_test(test_keys_of_any_script_fit),
        cmocka_unit_test(test_refused),
    };

    return cmocka_run_group_tests(tests, setup, NULL);
}
