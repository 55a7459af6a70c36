/*
 * libFuzzer harness for the kit's list cursors (workers/lib/cursor.c),
 * with a fixed key.  The input is used three ways:
 *   - as a cursor: decoding it must never crash, and whatever it accepts
 *     is an array of strings;
 *   - as a payload signed correctly (as if the key had leaked), so that
 *     the JSON checks behind the tag are reached: same invariant;
 *   - split at '\n' into a scope and sort keys (strings without NUL, valid
 *     UTF-8 only): a cursor encoded from them decodes to the same keys
 *     under the same scope and to nothing under another, or encoding
 *     refuses because the payload exceeds the bound.
 *
 * auto/fuzz (make fuzz) builds it from this line:
 */
/* fuzz-sources: workers/lib/cursor.c workers/lib/b64url.c workers/lib/log.c workers/lib/config.c */

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "b64url.h"
#include "cursor.h"
#include "log.h"


static const unsigned char  key[32] = "kkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkk";
static int                  ready;


static void
check_keys(json_t *keys)
{
    size_t  i;

    if (keys == NULL) {
        return;
    }
    if (!json_is_array(keys)) {
        abort();
    }
    for (i = 0; i < json_array_size(keys); i++) {
        if (!json_is_string(json_array_get(keys, i))) {
            abort();
        }
    }
    json_decref(keys);
}


static void
as_cursor(const uint8_t *data, size_t size)
{
    char  *s = malloc(size + 1);

    if (s == NULL) {
        return;
    }
    memcpy(s, data, size);
    s[size] = '\0';
    check_keys(enc_cursor_decode(s, "s"));
    free(s);
}


static void
as_signed_payload(const uint8_t *data, size_t size)
{
    char           *c;
    unsigned int    n;
    unsigned char  *buf, *raw, mac[EVP_MAX_MD_SIZE];

    if (size > 400) {
        return;
    }
    buf = malloc(2 + size);
    raw = malloc(1 + ENC_CURSOR_TAG_LEN + size);
    if (buf == NULL || raw == NULL) {
        abort();
    }
    memcpy(buf, "s", 2);
    memcpy(buf + 2, data, size);
    if (HMAC(EVP_sha256(), key, sizeof(key), buf, 2 + size, mac, &n)
        == NULL)
    {
        abort();
    }
    raw[0] = 0x02;   /* cursor.h's version */
    memcpy(raw + 1, mac, ENC_CURSOR_TAG_LEN);
    memcpy(raw + 1 + ENC_CURSOR_TAG_LEN, data, size);
    c = enc_b64url_encode_alloc(raw, 1 + ENC_CURSOR_TAG_LEN + size);
    if (c == NULL) {
        abort();
    }
    check_keys(enc_cursor_decode(c, "s"));
    free(c);
    free(raw);
    free(buf);
}


static void
round_trip(const uint8_t *data, size_t size)
{
    char        *s, *scope, *other, *line, *nl, *c;
    size_t       i, need;
    json_t      *keys, *one, *got;

    if (memchr(data, '\0', size) != NULL) {
        return;
    }
    s = malloc(size + 1);
    if (s == NULL) {
        return;
    }
    memcpy(s, data, size);
    s[size] = '\0';

    scope = s;
    nl = strchr(s, '\n');
    line = NULL;
    if (nl != NULL) {
        *nl = '\0';
        line = nl + 1;
    }

    keys = json_array();
    while (line != NULL) {
        nl = strchr(line, '\n');
        if (nl != NULL) {
            *nl = '\0';
        }
        one = json_string(line);
        if (one == NULL) {              /* not UTF-8: no sort key of ours */
            json_decref(keys);
            free(s);
            return;
        }
        json_array_append_new(keys, one);
        line = nl != NULL ? nl + 1 : NULL;
    }

    /* the payload cursor.h describes: each key's bytes and a NUL */
    need = 0;
    json_array_foreach(keys, i, one) {
        need += json_string_length(one) + 1;
    }

    c = enc_cursor_encode(scope, keys);
    if (c == NULL) {
        /* refused only when there is no key or it cannot fit */
        if (need != 0 && 1 + ENC_CURSOR_TAG_LEN + need
                         <= ENC_CURSOR_MAX / 4 * 3)
        {
            abort();
        }

    } else {
        if (strlen(c) > ENC_CURSOR_MAX) {
            abort();
        }
        got = enc_cursor_decode(c, scope);
        if (got == NULL || !json_equal(got, keys)) {
            abort();
        }
        json_decref(got);

        other = malloc(strlen(scope) + 2);
        if (other == NULL) {
            abort();
        }
        strcpy(other, scope);
        strcat(other, "x");
        if (enc_cursor_decode(c, other) != NULL) {
            abort();
        }
        free(other);
        free(c);
    }

    json_decref(keys);
    free(s);
}


int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!ready) {
        enc_log_init("fuzz", ENC_LOG_ERROR + 1);
        if (enc_cursor_set_key(key, sizeof(key)) != 0) {
            abort();
        }
        ready = 1;
    }

    as_cursor(data, size);
    as_signed_payload(data, size);
    round_trip(data, size);
    return 0;
}
