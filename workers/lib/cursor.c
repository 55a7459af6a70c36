/*
 * cursor.c — HMAC-signed keyset cursors (see cursor.h for the format).
 *
 * The key is written once in enc_cursor_init, before any HTTP thread
 * starts, and only read afterwards, so it needs no lock.
 */

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>

#include "b64url.h"
#include "cursor.h"
#include "log.h"

#define KEY_MAX      256
#define KEY_MIN      32
#define VERSION      0x02     /* 0x01: a JSON payload */
#define RAW_MAX      (ENC_CURSOR_MAX / 4 * 3)


static unsigned char  cursor_key[KEY_MAX];
static size_t         cursor_key_len;


int
enc_cursor_set_key(const unsigned char *key, size_t len)
{
    if (len < KEY_MIN || len > KEY_MAX) {
        return -1;
    }

    memcpy(cursor_key, key, len);
    cursor_key_len = len;
    return 0;
}


static int
read_key_file(const char *path)
{
    int            fd;
    ssize_t        n;
    unsigned char  buf[KEY_MAX + 1];

    fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        enc_log_error("cursor: cannot open cursor.secret_file \"%s\": %s",
                      path, strerror(errno));
        return -1;
    }
    n = read(fd, buf, sizeof(buf));
    close(fd);

    /* a trailing newline from an editor is not part of the key */
    while (n > 0 && (buf[n - 1] == '\n' || buf[n - 1] == '\r')) {
        n--;
    }

    if (n < KEY_MIN || n > KEY_MAX) {
        OPENSSL_cleanse(buf, sizeof(buf));
        enc_log_error("cursor: cursor.secret_file \"%s\" must hold %d to %d "
                      "bytes; generate one with `head -c 32 /dev/urandom | "
                      "base64 > FILE; chmod 600 FILE`", path, KEY_MIN,
                      KEY_MAX);
        return -1;
    }

    enc_cursor_set_key(buf, (size_t) n);
    OPENSSL_cleanse(buf, sizeof(buf));
    return 0;
}


int
enc_cursor_init(const enc_config_t *c)
{
    const char     *path;
    unsigned char   key[KEY_MIN];

    path = enc_config_str(c, "cursor.secret_file");
    if (path != NULL && path[0] != '\0') {
        return read_key_file(path);
    }

    if (RAND_bytes(key, sizeof(key)) != 1) {
        enc_log_error("cursor: no random key could be made");
        return -1;
    }
    enc_cursor_set_key(key, sizeof(key));
    OPENSSL_cleanse(key, sizeof(key));
    enc_log_warn("cursor: cursor.secret_file is not set; list cursors are "
                 "signed with a random key and stop working at restart and "
                 "between processes of this worker");
    return 0;
}


/* HMAC over scope, a NUL, then the payload: the NUL keeps scope "a" with
   payload "b..." apart from scope "ab" with payload "..." */
static int
tag(const char *scope, const unsigned char *payload, size_t len,
    unsigned char out[EVP_MAX_MD_SIZE])
{
    int             ok;
    size_t          slen;
    unsigned int    n = 0;
    unsigned char  *buf;

    if (cursor_key_len == 0) {
        return -1;
    }

    slen = strlen(scope);
    buf = malloc(slen + 1 + len);
    if (buf == NULL) {
        return -1;
    }
    memcpy(buf, scope, slen + 1);
    memcpy(buf + slen + 1, payload, len);

    ok = HMAC(EVP_sha256(), cursor_key, (int) cursor_key_len, buf,
              slen + 1 + len, out, &n) != NULL;
    free(buf);

    return ok && n >= ENC_CURSOR_TAG_LEN ? 0 : -1;
}


/* The payload: each key's UTF-8 text followed by a NUL.  Not JSON, whose
   escapes (\uXXXX for every non-ASCII or control character) made a page
   ending on a 60-letter Cyrillic name too long for a cursor; this way a
   key costs its bytes plus one, so a 64-character sort key (at most 256
   bytes) and a UUID always fit. */
char *
enc_cursor_encode(const char *scope, json_t *keys)
{
    char           *out;
    size_t          i, n, len = 0;
    json_t         *k;
    unsigned char   raw[RAW_MAX], mac[EVP_MAX_MD_SIZE], *payload;

    payload = raw + 1 + ENC_CURSOR_TAG_LEN;

    json_array_foreach(keys, i, k) {
        if (!json_is_string(k)) {
            return NULL;
        }
        n = json_string_length(k);
        if (memchr(json_string_value(k), '\0', n) != NULL) {
            return NULL;
        }
        if (1 + ENC_CURSOR_TAG_LEN + len + n + 1 > RAW_MAX) {
            enc_log_error("cursor: the sort key of a page is too long for a "
                          "cursor (more than %zu bytes)", len + n + 1);
            return NULL;
        }
        memcpy(payload + len, json_string_value(k), n);
        payload[len + n] = '\0';
        len += n + 1;
    }

    if (len == 0 || tag(scope, payload, len, mac) != 0) {
        return NULL;
    }

    raw[0] = VERSION;
    memcpy(raw + 1, mac, ENC_CURSOR_TAG_LEN);

    out = enc_b64url_encode_alloc(raw, 1 + ENC_CURSOR_TAG_LEN + len);
    return out;
}


json_t *
enc_cursor_decode(const char *cursor, const char *scope)
{
    size_t          i, n, len;
    json_t         *keys;
    unsigned char   raw[RAW_MAX + 4], mac[EVP_MAX_MD_SIZE], *payload;

    len = strlen(cursor);
    if (len == 0 || len > ENC_CURSOR_MAX
        || enc_b64url_decode(cursor, len, raw, sizeof(raw), &n) != 0
        || n <= 1 + ENC_CURSOR_TAG_LEN || raw[0] != VERSION)
    {
        return NULL;
    }

    if (tag(scope, raw + 1 + ENC_CURSOR_TAG_LEN, n - 1 - ENC_CURSOR_TAG_LEN,
            mac) != 0
        || CRYPTO_memcmp(mac, raw + 1, ENC_CURSOR_TAG_LEN) != 0)
    {
        return NULL;
    }

    /* signed by us, so well-formed; checked anyway: a key leak must not
       become a crash */
    payload = raw + 1 + ENC_CURSOR_TAG_LEN;
    len = n - 1 - ENC_CURSOR_TAG_LEN;
    if (payload[len - 1] != '\0') {
        return NULL;
    }

    keys = json_array();
    for (i = 0; keys != NULL && i < len; i += n + 1) {
        n = strlen((char *) payload + i);
        /* json_stringn refuses text that is not UTF-8 */
        if (json_array_append_new(keys, json_stringn((char *) payload + i, n))
            != 0)
        {
            json_decref(keys);
            return NULL;
        }
    }

    return keys;
}
