/*
 * uuid.c — UUIDs in their canonical text form.
 */

#include <ctype.h>
#include <stdio.h>
#include <string.h>

#include <openssl/rand.h>

#include "uuid.h"


int
enc_uuid_valid(const char *s)
{
    size_t  i;

    if (s == NULL || strlen(s) != ENC_UUID_LEN) {
        return 0;
    }

    for (i = 0; i < ENC_UUID_LEN; i++) {
        if (i == 8 || i == 13 || i == 18 || i == 23) {
            if (s[i] != '-') {
                return 0;
            }
        } else if (!isxdigit((unsigned char) s[i])) {
            return 0;
        }
    }

    return 1;
}


int
enc_uuid_v4(char *out, size_t cap)
{
    unsigned char  b[16];

    if (cap < ENC_UUID_LEN + 1 || RAND_bytes(b, sizeof(b)) != 1) {
        return -1;
    }

    b[6] = (unsigned char) ((b[6] & 0x0f) | 0x40);     /* version 4 */
    b[8] = (unsigned char) ((b[8] & 0x3f) | 0x80);     /* RFC 4122 variant */

    snprintf(out, cap,
             "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-"
             "%02x%02x%02x%02x%02x%02x",
             b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7],
             b[8], b[9], b[10], b[11], b[12], b[13], b[14], b[15]);
    return 0;
}
