/*
 * b64url.c — base64url without padding (RFC 4648 §5, as JOSE uses it).
 *
 * Written here rather than through OpenSSL's EVP_EncodeBlock because that
 * one speaks the standard alphabet with padding and newlines; converting
 * after the fact costs as much code as encoding directly.
 */

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "b64url.h"


static const char  b64url_alphabet[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";


size_t
enc_b64url_len(size_t n)
{
    return n / 3 * 4 + (n % 3 == 0 ? 0 : n % 3 + 1);
}


int
enc_b64url_encode(const unsigned char *in, size_t n, char *out, size_t cap)
{
    size_t    i, o;
    uint32_t  v;

    if (cap < enc_b64url_len(n) + 1) {
        return -1;
    }

    for (i = 0, o = 0; i + 3 <= n; i += 3) {
        v = (uint32_t) in[i] << 16 | (uint32_t) in[i + 1] << 8 | in[i + 2];
        out[o++] = b64url_alphabet[v >> 18 & 63];
        out[o++] = b64url_alphabet[v >> 12 & 63];
        out[o++] = b64url_alphabet[v >> 6 & 63];
        out[o++] = b64url_alphabet[v & 63];
    }

    if (n - i == 1) {
        v = (uint32_t) in[i] << 16;
        out[o++] = b64url_alphabet[v >> 18 & 63];
        out[o++] = b64url_alphabet[v >> 12 & 63];

    } else if (n - i == 2) {
        v = (uint32_t) in[i] << 16 | (uint32_t) in[i + 1] << 8;
        out[o++] = b64url_alphabet[v >> 18 & 63];
        out[o++] = b64url_alphabet[v >> 12 & 63];
        out[o++] = b64url_alphabet[v >> 6 & 63];
    }

    out[o] = '\0';
    return 0;
}


char *
enc_b64url_encode_alloc(const unsigned char *in, size_t n)
{
    char    *out;
    size_t   cap;

    cap = enc_b64url_len(n) + 1;
    out = malloc(cap);
    if (out == NULL) {
        return NULL;
    }

    if (enc_b64url_encode(in, n, out, cap) != 0) {
        free(out);
        return NULL;
    }

    return out;
}


static int
b64url_value(char c)
{
    if (c >= 'A' && c <= 'Z') {
        return c - 'A';
    }
    if (c >= 'a' && c <= 'z') {
        return c - 'a' + 26;
    }
    if (c >= '0' && c <= '9') {
        return c - '0' + 52;
    }
    if (c == '-') {
        return 62;
    }
    if (c == '_') {
        return 63;
    }
    return -1;
}


int
enc_b64url_decode(const char *in, size_t n, unsigned char *out, size_t cap,
    size_t *outlen)
{
    int       d;
    size_t    i, o, need;
    uint32_t  v;
    unsigned  bits;

    /* a single leftover character carries only 6 bits: never valid */
    if (n % 4 == 1) {
        return -1;
    }

    need = n / 4 * 3 + (n % 4 == 0 ? 0 : n % 4 - 1);
    if (need > cap) {
        return -1;
    }

    v = 0;
    bits = 0;
    o = 0;

    for (i = 0; i < n; i++) {
        d = b64url_value(in[i]);
        if (d < 0) {
            return -1;
        }

        v = v << 6 | (uint32_t) d;
        bits += 6;

        if (bits >= 8) {
            bits -= 8;
            out[o++] = (unsigned char) (v >> bits & 0xff);
        }
    }

    /* the unused low bits of the last character must be zero, otherwise
       several encodings would decode to the same bytes */
    if (bits > 0 && (v & ((1u << bits) - 1)) != 0) {
        return -1;
    }

    *outlen = o;
    return 0;
}
