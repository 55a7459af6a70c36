/*
 * uuid: the canonical text form of UUIDs (RFC 9562), checked and made.
 */

#ifndef ENC_UUID_H
#define ENC_UUID_H

#include <stddef.h>

#define ENC_UUID_LEN  36

/* 1 if s is 8-4-4-4-12 hex digits (either case), else 0; NULL is 0 */
int enc_uuid_valid(const char *s);
/* a random (version 4) UUID, lower-case, into out[ENC_UUID_LEN + 1];
   -1 if cap is too small or the RNG failed */
int enc_uuid_v4(char *out, size_t cap);

#endif /* ENC_UUID_H */
