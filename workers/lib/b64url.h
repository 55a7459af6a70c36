/*
 * b64url: base64url without padding (RFC 4648 §5, RFC 7515 §2), for JOSE
 * objects, refresh tokens and the kit's cursors.
 */

#ifndef ENC_B64URL_H
#define ENC_B64URL_H

#include <stddef.h>

/* Length of the encoding of n bytes, without the terminating NUL. */
size_t enc_b64url_len(size_t n);
/* Encodes in[0..n) into out (NUL-terminated).  -1 if cap is too small. */
int    enc_b64url_encode(const unsigned char *in, size_t n, char *out,
                         size_t cap);
/* Same, into a malloc'd string the caller frees; NULL on allocation failure. */
char  *enc_b64url_encode_alloc(const unsigned char *in, size_t n);
/* Decodes in[0..n) into out; rejects padding, '+', '/', whitespace and
   non-canonical trailing bits.  *outlen receives the byte count. */
int    enc_b64url_decode(const char *in, size_t n, unsigned char *out,
                         size_t cap, size_t *outlen);

#endif /* ENC_B64URL_H */
