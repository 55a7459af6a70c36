/*
 * cursor: opaque, signed keyset cursors for lists.
 *
 * A cursor carries the sort key of the last row of a page, so the next page
 * starts strictly after it ("keyset pagination": no OFFSET, no duplicates
 * or gaps while rows are inserted).  Clients must not forge one: a cursor
 * made up by hand could reach rows a filter hides, and one from another
 * list would be read with the wrong meaning.  So each cursor is
 *
 *     base64url( 0x02 | HMAC-SHA256(key, scope "\0" payload)[0..16) | payload )
 *
 * where payload is the key values' UTF-8 text, each followed by a NUL (no
 * escapes: a 64-character key is at most 256 bytes) and scope names the
 * list and its filters (the caller builds it: list name, path arguments,
 * the bound filter object).  A cursor decoded under another scope, with a
 * bad tag, or malformed is refused the same way (NULL) and answered 400.
 *
 * The key is read from cursor.secret_file (the stack generates one per
 * worker, 0600, like the database passwords); without one the worker makes
 * a random key at start, and cursors then stop working across restarts and
 * between processes (logged as a warning).
 */

#ifndef ENC_CURSOR_H
#define ENC_CURSOR_H

#include <stddef.h>
#include <jansson.h>

#include "config.h"

#define ENC_CURSOR_MAX      512     /* characters of a cursor we accept */
#define ENC_CURSOR_TAG_LEN  16      /* bytes of the HMAC we keep */

/* loads (or makes) the key; once at start, before HTTP */
int     enc_cursor_init(const enc_config_t *c);
/* tests: use this key (at least 32 bytes) */
int     enc_cursor_set_key(const unsigned char *key, size_t len);

/* keys: a JSON array of strings (borrowed).  Returns a malloc'd cursor,
   NULL when it would exceed ENC_CURSOR_MAX or on allocation failure */
char   *enc_cursor_encode(const char *scope, json_t *keys);
/* the key array (new reference) of a valid cursor of this scope, NULL
   for anything else */
json_t *enc_cursor_decode(const char *cursor, const char *scope);

#endif /* ENC_CURSOR_H */
