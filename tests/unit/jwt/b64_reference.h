/*
 * base64url_reference(): the base64url decoder as RFC 4648 reads, six bits
 * at a time — slow and obviously right, the yardstick the jwt module's
 * table-driven decoder is compared with by the unit tests and the fuzz
 * harness. Header-only (a static function) for those two.
 */
#ifndef ENCORE_TEST_B64_REFERENCE_H
#define ENCORE_TEST_B64_REFERENCE_H

#include <stddef.h>
#include <string.h>


static int
base64url_reference(unsigned char *dst, size_t *dst_len, const char *src,
    size_t len)
{
    int            v;
    size_t         i, n;
    unsigned       bits;
    const char    *p;
    unsigned long  acc;

    static const char  alphabet[] =
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

    if (len % 4 == 1) {
        return -1;
    }

    acc = 0;
    bits = 0;
    n = 0;

    for (i = 0; i < len; i++) {
        p = src[i] ? strchr(alphabet, src[i]) : NULL;
        if (p == NULL) {
            return -1;
        }

        v = (int) (p - alphabet);
        acc = (acc << 6) | (unsigned long) v;
        bits += 6;

        if (bits >= 8) {
            bits -= 8;
            dst[n++] = (unsigned char) (acc >> bits);
            acc &= (1UL << bits) - 1;
        }
    }

    if (acc != 0) {
        return -1;
    }

    *dst_len = n;

    return 0;
}


#endif /* ENCORE_TEST_B64_REFERENCE_H */
