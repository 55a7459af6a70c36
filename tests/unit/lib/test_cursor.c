/*
 * cursor: signed keyset cursors — the round trip, every kind of tampering
 * and of scope change refused, the size bound, and the key's loading from
 * cursor.secret_file (or its random stand-in).
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "b64url.h"
#include "config.h"
#include "cursor.h"
#include "log.h"


static const unsigned char  key1[32] = "0123456789abcdef0123456789abcdef";
static const unsigned char  key2[32] = "fedcba9876543210fedcba9876543210";


static json_t *
keys_of(const char *text)
{
    json_t  *j = json_loads(text, 0, NULL);

    assert_non_null(j);
    return j;
}


/* 1 if cursor, decoded under scope, gives back exactly want */
static int
decodes_to(const char *cursor, const char *scope, json_t *want)
{
    int      eq;
    json_t  *got;

    got = enc_cursor_decode(cursor, scope);
    eq = got != NULL && json_equal(got, want);
    json_decref(got);
    return eq;
}


/* a cursor made by hand in the documented format, signed with key1:
   payload is plen bytes, each key followed by a NUL */
static char *
forge(const char *scope, const char *payload, size_t plen,
    unsigned char version)
{
    char           *out;
    size_t          slen = strlen(scope);
    unsigned int    n;
    unsigned char   buf[1024], mac[EVP_MAX_MD_SIZE], raw[1024];

    memcpy(buf, scope, slen + 1);
    memcpy(buf + slen + 1, payload, plen);
    assert_non_null(HMAC(EVP_sha256(), key1, sizeof(key1), buf,
                         slen + 1 + plen, mac, &n));
    raw[0] = version;
    memcpy(raw + 1, mac, ENC_CURSOR_TAG_LEN);
    memcpy(raw + 1 + ENC_CURSOR_TAG_LEN, payload, plen);
    out = enc_b64url_encode_alloc(raw, 1 + ENC_CURSOR_TAG_LEN + plen);
    assert_non_null(out);
    return out;
}


static void
test_set_key_bounds(void **state)
{
    unsigned char  big[257];

    memset(big, 'k', sizeof(big));
    assert_int_equal(enc_cursor_set_key(key1, 31), -1);
    assert_int_equal(enc_cursor_set_key(key1, 0), -1);
    assert_int_equal(enc_cursor_set_key(big, 257), -1);
    assert_int_equal(enc_cursor_set_key(big, 256), 0);
    assert_int_equal(enc_cursor_set_key(key1, 32), 0);
}


static void
test_round_trip(void **state)
{
    char        *c;
    size_t       i;
    json_t      *keys;
    static const char *const  cases[] = {
        "[\"a\"]",
        "[\"2024-01-31\", \"0b5e7c3a-1f2d-4e5b-8a9c-0d1e2f3a4b5c\"]",
        "[\"\", \"with space\", \"quote\\\" and \\\\ and /\"]",
        "[\"\\u00e9t\\u00e9\", \"\\ud83c\\udfb8\", \"\\u266b\"]",
        "[\"a\\nb\", \"tab\\there\", \"\\u0001\"]",
    };

    assert_int_equal(enc_cursor_set_key(key1, sizeof(key1)), 0);

    for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        keys = keys_of(cases[i]);
        c = enc_cursor_encode("artists_list\n{}", keys);
        assert_non_null(c);
        /* URL-safe as it is: no escaping needed in a query string */
        assert_int_equal(strspn(c, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklm"
                                   "nopqrstuvwxyz0123456789-_"), strlen(c));
        assert_true(strlen(c) <= ENC_CURSOR_MAX);
        if (!decodes_to(c, "artists_list\n{}", keys)) {
            fail_msg("case %zu %s does not survive the round trip", i,
                     cases[i]);
        }
        free(c);
        json_decref(keys);
    }
}


/* the documented format: a hand-made cursor is accepted, so the format
   the header describes is the one implemented */
static void
test_format(void **state)
{
    char    *c, *made;
    json_t  *keys;

    assert_int_equal(enc_cursor_set_key(key1, sizeof(key1)), 0);
    keys = keys_of("[\"x\",\"y\"]");
    c = forge("scope", "x\0y", 4, 0x02);
    assert_true(decodes_to(c, "scope", keys));
    made = enc_cursor_encode("scope", keys);
    assert_string_equal(made, c);
    free(made);
    free(c);
    json_decref(keys);
}


static void
test_tampering(void **state)
{
    char           *c, *bad;
    size_t          i, n, len;
    json_t          *keys, *got;
    unsigned char   raw[512], mod[512];

    assert_int_equal(enc_cursor_set_key(key1, sizeof(key1)), 0);
    keys = keys_of("[\"2024-01-31\", \"abc\"]");
    c = enc_cursor_encode("list", keys);
    assert_non_null(c);
    assert_true(decodes_to(c, "list", keys));
    len = strlen(c);
    assert_int_equal(enc_b64url_decode(c, len, raw, sizeof(raw), &n), 0);
    assert_int_equal(raw[0], 0x02);

    /* every byte of version, tag and payload, each bit flipped */
    for (i = 0; i < n; i++) {
        for (int bit = 0; bit < 8; bit++) {
            memcpy(mod, raw, n);
            mod[i] ^= (unsigned char) (1u << bit);
            bad = enc_b64url_encode_alloc(mod, n);
            got = enc_cursor_decode(bad, "list");
            if (got != NULL) {
                fail_msg("byte %zu bit %d flipped: accepted", i, bit);
            }
            free(bad);
        }
    }

    /* shortened and lengthened */
    for (i = 0; i < n; i++) {
        bad = enc_b64url_encode_alloc(raw, i);
        assert_null(enc_cursor_decode(bad, "list"));
        free(bad);
    }
    memcpy(mod, raw, n);
    mod[n] = ' ';
    bad = enc_b64url_encode_alloc(mod, n + 1);
    assert_null(enc_cursor_decode(bad, "list"));
    free(bad);

    /* the text itself: a character dropped, added or not base64url */
    bad = strdup(c);
    bad[len - 1] = '\0';
    assert_null(enc_cursor_decode(bad, "list"));
    free(bad);
    assert_int_equal(asprintf(&bad, "%sA", c), (int) len + 1);
    assert_null(enc_cursor_decode(bad, "list"));
    free(bad);
    assert_int_equal(asprintf(&bad, "%s=", c), (int) len + 1);
    assert_null(enc_cursor_decode(bad, "list"));
    free(bad);
    bad = strdup(c);
    bad[3] = '+';
    assert_null(enc_cursor_decode(bad, "list"));
    bad[3] = '.';
    assert_null(enc_cursor_decode(bad, "list"));
    free(bad);

    /* other versions, signed correctly otherwise */
    bad = forge("list", "2024-01-31\0abc", 15, 0x01);
    assert_null(enc_cursor_decode(bad, "list"));
    free(bad);
    bad = forge("list", "2024-01-31\0abc", 15, 0x00);
    assert_null(enc_cursor_decode(bad, "list"));
    free(bad);

    /* another key */
    assert_int_equal(enc_cursor_set_key(key2, sizeof(key2)), 0);
    assert_null(enc_cursor_decode(c, "list"));
    assert_int_equal(enc_cursor_set_key(key1, sizeof(key1)), 0);
    assert_true(decodes_to(c, "list", keys));

    /* nothing, garbage */
    assert_null(enc_cursor_decode("", "list"));
    assert_null(enc_cursor_decode("A", "list"));
    assert_null(enc_cursor_decode("AQ", "list"));
    assert_null(enc_cursor_decode("%00", "list"));
    assert_null(enc_cursor_decode("not a cursor at all", "list"));

    free(c);
    json_decref(keys);
}


/* a cursor of one list, path argument or filter set is no cursor of
   another */
static void
test_scope(void **state)
{
    char        *c;
    size_t       i;
    json_t      *keys, *got;
    static const char *const  others[] = {
        "albums_list\na1\n{}",
        "tracks_list\na1\n{}",
        "albums_list\na2\n{}",
        "albums_list\n{}",
        "albums_list\na1\n{\"kind\":\"ep\"}",
        "albums_list\na1\n{\"kind\":\"album\"}",
        "albums_list\na1\n{} ",
        "albums_list\na1\n",
        "albums_list",
        "",
    };

    assert_int_equal(enc_cursor_set_key(key1, sizeof(key1)), 0);
    keys = keys_of("[\"1\", \"0b5e7c3a-1f2d-4e5b-8a9c-0d1e2f3a4b5c\"]");
    c = enc_cursor_encode("albums_list\na1\n{\"kind\":\"album\",\"q\":\"x\"}",
                          keys);
    assert_non_null(c);
    assert_true(decodes_to(c, "albums_list\na1\n{\"kind\":\"album\","
                              "\"q\":\"x\"}", keys));
    for (i = 0; i < sizeof(others) / sizeof(others[0]); i++) {
        if (enc_cursor_decode(c, others[i]) != NULL) {
            fail_msg("accepted under scope %zu", i);
        }
    }
    free(c);

    /* the scope and payload are kept apart: scope "a" + payload "bx"
       is not scope "ab" + the rest */
    c = forge("a", "bx", 3, 0x02);
    assert_non_null(c);
    got = enc_cursor_decode(c, "a");
    assert_non_null(got);
    json_decref(got);
    assert_null(enc_cursor_decode(c, "ab"));
    assert_null(enc_cursor_decode(c, ""));
    free(c);

    json_decref(keys);
}


/* the sort key must fit ENC_CURSOR_MAX characters */
static void
test_too_long(void **state)
{
    char    *c, big[1024];
    size_t   n;
    json_t  *keys;

    assert_int_equal(enc_cursor_set_key(key1, sizeof(key1)), 0);
    enc_log_init("test", ENC_LOG_ERROR + 1);

    /* "x...\0": n + 1 bytes after 1 + 16; 384 raw bytes make 512 chars */
    for (n = 363; n <= 369; n++) {
        memset(big, 'x', n);
        big[n] = '\0';
        keys = json_pack("[s]", big);
        c = enc_cursor_encode("s", keys);
        if (n <= 366) {
            assert_non_null(c);
            assert_true(strlen(c) <= ENC_CURSOR_MAX);
            assert_true(decodes_to(c, "s", keys));
        } else {
            assert_null(c);
        }
        free(c);
        json_decref(keys);
    }

    /* counted in UTF-8 bytes, never escaped: 64 characters of 4 bytes and
       a UUID fit (catalog-tests found 60 Cyrillic letters did not when
       the payload was JSON with \u escapes) */
    memset(big, 0, sizeof(big));
    for (n = 0; n < 64; n++) {
        memcpy(big + 4 * n, "\xf0\x9f\x8e\xb5", 4);
    }
    keys = json_pack("[s, s]", big, "0b5e7c3a-1f2d-4e5b-8a9c-0d1e2f3a4b5c");
    c = enc_cursor_encode("s", keys);
    assert_non_null(c);
    assert_true(decodes_to(c, "s", keys));
    free(c);
    json_decref(keys);

    /* a cursor longer than the maximum is not even decoded */
    memset(big, 'A', ENC_CURSOR_MAX + 1);
    big[ENC_CURSOR_MAX + 1] = '\0';
    assert_null(enc_cursor_decode(big, "s"));
    memset(big, 'A', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    assert_null(enc_cursor_decode(big, "s"));

    enc_log_init("test", ENC_LOG_INFO);
}


/* signed, but not keys: refused all the same */
static void
test_keys_must_be_strings(void **state)
{
    char        *c;
    size_t       i;
    static const struct { const char *p; size_t n; } payloads[] = {
        { "abc", 3 },               /* no NUL after the last key */
        { "\xff\xfe", 3 },          /* not UTF-8 */
        { "a\0\xc3", 4 },           /* a truncated character */
        { "", 0 },                  /* no key at all */
    };

    assert_int_equal(enc_cursor_set_key(key1, sizeof(key1)), 0);
    for (i = 0; i < sizeof(payloads) / sizeof(payloads[0]); i++) {
        c = forge("s", payloads[i].p, payloads[i].n, 0x02);
        if (enc_cursor_decode(c, "s") != NULL) {
            fail_msg("payload %zu accepted", i);
        }
        free(c);
    }

    /* and keys that are not strings are not encoded */
    {
        json_t  *k = keys_of("[1, \"a\"]");

        assert_null(enc_cursor_encode("s", k));
        json_decref(k);
        k = keys_of("[]");
        assert_null(enc_cursor_encode("s", k));
        json_decref(k);
    }
}


/* ---- the key file -------------------------------------------------------- */

static char  key_path[64];


static enc_config_t *
config_with(const char *secret_file)
{
    char                   err[256];
    enc_config_t          *c;
    const enc_conf_key_t  *tables[] = { enc_runtime_conf_keys, NULL };

    c = enc_config_new(tables);
    assert_non_null(c);
    assert_int_equal(enc_config_load(c, NULL, err, sizeof(err)), 0);
    assert_int_equal(enc_config_set(c, "cursor.secret_file", secret_file,
                                    err, sizeof(err)), 0);
    return c;
}


static void
write_key_file(const void *data, size_t len)
{
    int  fd;

    snprintf(key_path, sizeof(key_path), "/tmp/enc-test-cursor-%d.key",
             (int) getpid());
    fd = open(key_path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, data, len), (ssize_t) len);
    close(fd);
}


/* init from path; then whether a cursor signed with want (len) decodes */
static int
init_signs_like(const char *path, const unsigned char *want, size_t len)
{
    int            rc, ok;
    char          *c;
    json_t        *keys;
    enc_config_t  *conf;

    conf = config_with(path);
    rc = enc_cursor_init(conf);
    enc_config_free(conf);
    if (rc != 0) {
        return -1;
    }

    keys = keys_of("[\"k\"]");
    c = enc_cursor_encode("s", keys);
    assert_non_null(c);
    assert_int_equal(enc_cursor_set_key(want, len), 0);
    ok = decodes_to(c, "s", keys);
    free(c);
    json_decref(keys);
    return ok;
}


static void
test_key_file(void **state)
{
    unsigned char  buf[300];

    enc_log_init("test", ENC_LOG_ERROR + 1);

    /* the file's bytes are the key */
    write_key_file(key2, 32);
    assert_int_equal(init_signs_like(key_path, key2, 32), 1);

    /* a trailing newline (or CRLF) is not part of the key */
    memcpy(buf, key2, 32);
    memcpy(buf + 32, "\n", 1);
    write_key_file(buf, 33);
    assert_int_equal(init_signs_like(key_path, key2, 32), 1);
    memcpy(buf + 32, "\r\n\n", 3);
    write_key_file(buf, 35);
    assert_int_equal(init_signs_like(key_path, key2, 32), 1);

    /* too short, also once the newline is gone */
    write_key_file(key2, 31);
    assert_int_equal(init_signs_like(key_path, key2, 32), -1);
    memcpy(buf, key2, 31);
    buf[31] = '\n';
    write_key_file(buf, 32);
    assert_int_equal(init_signs_like(key_path, key2, 32), -1);
    write_key_file("", 0);
    assert_int_equal(init_signs_like(key_path, key2, 32), -1);

    /* the longest, and one byte more */
    memset(buf, 'k', sizeof(buf));
    buf[256] = '\n';
    write_key_file(buf, 257);
    assert_int_equal(init_signs_like(key_path, buf, 256), 1);
    buf[256] = 'k';
    write_key_file(buf, 257);
    assert_int_equal(init_signs_like(key_path, buf, 256), -1);
    write_key_file(buf, sizeof(buf));
    assert_int_equal(init_signs_like(key_path, buf, 256), -1);

    /* missing, or a directory */
    unlink(key_path);
    assert_int_equal(init_signs_like(key_path, key2, 32), -1);
    assert_int_equal(init_signs_like("/tmp", key2, 32), -1);

    enc_log_init("test", ENC_LOG_INFO);
}


/* no file: a random key, a new one at every start */
static void
test_random_key(void **state)
{
    char          *c;
    json_t        *keys;
    enc_config_t  *conf;

    enc_log_init("test", ENC_LOG_ERROR + 1);
    conf = config_with("");
    keys = keys_of("[\"k\"]");

    assert_int_equal(enc_cursor_set_key(key1, sizeof(key1)), 0);
    assert_int_equal(enc_cursor_init(conf), 0);
    c = enc_cursor_encode("s", keys);
    assert_non_null(c);
    assert_true(decodes_to(c, "s", keys));

    /* not a fixed key, and not the one before */
    assert_int_equal(enc_cursor_set_key(key1, sizeof(key1)), 0);
    assert_null(enc_cursor_decode(c, "s"));
    assert_int_equal(enc_cursor_init(conf), 0);
    assert_null(enc_cursor_decode(c, "s"));

    free(c);
    json_decref(keys);
    enc_config_free(conf);
    enc_log_init("test", ENC_LOG_INFO);
}


int
main(void)
{
    const struct CMUnitTest  tests[] = {
        cmocka_unit_test(test_set_key_bounds),
        cmocka_unit_test(test_round_trip),
        cmocka_unit_test(test_format),
        cmocka_unit_test(test_tampering),
        cmocka_unit_test(test_scope),
        cmocka_unit_test(test_too_long),
        cmocka_unit_test(test_keys_must_be_strings),
        cmocka_unit_test(test_key_file),
        cmocka_unit_test(test_random_key),
    };
    int  rc;

    rc = cmocka_run_group_tests(tests, NULL, NULL);
    if (key_path[0] != '\0') {
        unlink(key_path);
    }
    return rc;
}
