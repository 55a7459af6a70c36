/*
 * Unit tests: workers/lib/b64url.c (RFC 4648 §10 vectors in the url-safe
 * alphabet, no padding, strict decoding).
 */

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "b64url.h"


static void
test_rfc4648_vectors(void **state)
{
    static const struct { const char *in, *out; } v[] = {
        { "", "" }, { "f", "Zg" }, { "fo", "Zm8" }, { "foo", "Zm9v" },
        { "foob", "Zm9vYg" }, { "fooba", "Zm9vYmE" },
        { "foobar", "Zm9vYmFy" },
    };

    char           out[32];
    size_t         i, n;
    unsigned char  back[32];

    (void) state;

    for (i = 0; i < sizeof(v) / sizeof(v[0]); i++) {
        assert_int_equal(enc_b64url_encode((const unsigned char *) v[i].in,
                                            strlen(v[i].in), out,
                                            sizeof(out)), 0);
        assert_string_equal(out, v[i].out);
        assert_int_equal(enc_b64url_len(strlen(v[i].in)), strlen(v[i].out));

        assert_int_equal(enc_b64url_decode(out, strlen(out), back,
                                            sizeof(back), &n), 0);
        assert_int_equal(n, strlen(v[i].in));
        assert_memory_equal(back, v[i].in, n);
    }
}


static void
test_url_alphabet(void **state)
{
    char                  out[8];
    static unsigned char  in[] = { 0xfb, 0xff, 0xbf };

    (void) state;

    /* standard base64 would say "+/+/" */
    assert_int_equal(enc_b64url_encode(in, sizeof(in), out, sizeof(out)), 0);
    assert_string_equal(out, "-_-_");
}


static void
test_decode_rejects(void **state)
{
    size_t         n;
    unsigned char  buf[16];

    (void) state;

    assert_int_equal(enc_b64url_decode("Zg==", 4, buf, sizeof(buf), &n), -1);
    assert_int_equal(enc_b64url_decode("+/8", 3, buf, sizeof(buf), &n), -1);
    assert_int_equal(enc_b64url_decode("Zm 9", 4, buf, sizeof(buf), &n), -1);
    assert_int_equal(enc_b64url_decode("Z", 1, buf, sizeof(buf), &n), -1);
    /* "Zh" has non-zero unused bits: a second spelling of "f" */
    assert_int_equal(enc_b64url_decode("Zh", 2, buf, sizeof(buf), &n), -1);
    /* output buffer too small */
    assert_int_equal(enc_b64url_decode("Zm9vYmFy", 8, buf, 5, &n), -1);
}


static void
test_encode_small_buffer(void **state)
{
    char  out[4];

    (void) state;

    assert_int_equal(enc_b64url_encode((const unsigned char *) "foo", 3,
                                        out, sizeof(out)), -1);
}


int
main(void)
{
    const struct CMUnitTest  tests[] = {
        cmocka_unit_test(test_rfc4648_vectors),
        cmocka_unit_test(test_url_alphabet),
        cmocka_unit_test(test_decode_rejects),
        cmocka_unit_test(test_encode_small_buffer),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
