/*
 * Encore aggregate: the nginx-independent half of the view module.
 *
 * A view's parts are configured with URI templates that may refer to a
 * field of an earlier part's answer ({post.artist_ids}); their answers are
 * JSON documents that are picked into, filtered and placed into one view
 * object; the view answers with an ETag over its body.  Everything here is
 * plain C on jansson and OpenSSL so that it can be unit-tested and fuzzed
 * without nginx (tests/unit/aggregate, tests/fuzz/fuzz_agg_*.c).
 */

#ifndef ENCORE_AGG_H
#define ENCORE_AGG_H


#include <stddef.h>
#include <jansson.h>


#define ENCORE_AGG_MAX_PIECES   16     /* literal and reference pieces */
#define ENCORE_AGG_MAX_DEPTH    8      /* members in a dotted path */
#define ENCORE_AGG_ETAG_LEN     24     /* '"' + 22 base64url + '"' */

#define ENCORE_AGG_SCAN_OK        0    /* encore_agg_scan() */
#define ENCORE_AGG_SCAN_INVALID  -1
#define ENCORE_AGG_SCAN_NO_PICK  -2
#define ENCORE_AGG_SCAN_ESCAPED  -3

#define ENCORE_AGG_MISSING      -1     /* encore_agg_ref_append() */
#define ENCORE_AGG_NO_ROOM      -2


typedef struct {
    const char  *data;
    size_t       len;
} encore_agg_str_t;


/*
 * One piece of a part's URI template: literal text (which may hold nginx
 * variables; the caller compiles it) or a reference "{part.field.path}",
 * whose part name and path (after the first dot) are given separately.
 */
typedef struct {
    unsigned          ref;
    encore_agg_str_t  text;      /* literal: the text */
    encore_agg_str_t  part;      /* ref: "post" */
    encore_agg_str_t  path;      /* ref: "artist_ids" or "a.b" */
} encore_agg_piece_t;


/*
 * Splits a template at its references.  A reference is "{" name ("."
 * member)+ "}", name of [a-z_][a-z0-9_]*, members of [A-Za-z0-9_]+; a "{"
 * right after "$" is nginx's own "${variable}" and stays literal; any
 * other "{" or "}" is an error.  Returns 0, or -1 with *err naming the
 * problem (a static string).
 */
int encore_agg_template_split(const char *tmpl, size_t len,
    encore_agg_piece_t *pieces, size_t max, size_t *npieces,
    const char **err);


/*
 * Checks len bytes at json as one JSON text exactly as jansson's
 * json_loadb(json, len, 0, &error) would (an object or array at the top,
 * valid UTF-8, no \u0000, integers within 64 bits, reals that do not
 * overflow, at most 2048 levels), without building it, and finds the
 * bytes of the value at the dotted path pick (NULL or empty: the whole
 * text): *start and *end, the last of duplicate members as jansson keeps.
 * Returns ENCORE_AGG_SCAN_OK; _INVALID when jansson would refuse the
 * text; _NO_PICK when it is valid without the pick; _ESCAPED when a
 * member name on the pick's way is written with escapes, which only
 * decoding can compare (parse it with jansson instead).
 */
int encore_agg_scan(const char *json, size_t len, const char *pick,
    size_t pick_len, size_t *start, size_t *end);


/*
 * The value at a dotted path of doc ("a.b": doc["a"]["b"]), or NULL.
 * Borrowed reference.
 */
json_t *encore_agg_lookup(json_t *doc, const char *path, size_t len);


/*
 * Appends the URL-encoded value at path in doc to out (cap bytes, *len
 * used so far; never NUL-terminated).  A string or number gives itself,
 * true/false their names; an array gives its items (strings, numbers,
 * booleans) joined with ",", at most max_items of them.  Every byte other
 * than RFC 3986's unreserved characters is percent-encoded, so a "," or
 * "&" inside a value cannot split it.  Returns the number of values
 * appended (0 for an empty array); ENCORE_AGG_MISSING when the path is
 * absent, null, an object or an array holding anything else;
 * ENCORE_AGG_NO_ROOM when out is too small (out is then unchanged).
 */
int encore_agg_ref_append(json_t *doc, const char *path, size_t path_len,
    size_t max_items, char *out, size_t cap, size_t *len);


/*
 * A part's answer as it goes into the view: the member at pick (NULL: the
 * whole answer), then only the allowed members (nallow 0: all) minus the
 * denied ones, of an object or of each object of an array.  Returns a new
 * reference, or NULL when pick is absent.
 */
json_t *encore_agg_select(json_t *answer, const char *pick, size_t pick_len,
    const encore_agg_str_t *allow, size_t nallow,
    const encore_agg_str_t *deny, size_t ndeny);


/*
 * Places value (stolen, also on failure) into view at the dotted key,
 * creating the objects on the way ("group.name" groups parts under
 * "group"); with merge, value's members are set into view itself (a
 * non-object value is then an error).  Only view changes: an object on
 * the key's way that is shared (an earlier part's answer) is copied
 * before a member is set in it.  Returns 0, -1 on a clash with a member
 * that is not an object or on allocation failure.
 */
int encore_agg_place(json_t *view, const char *key, size_t key_len,
    int merge, json_t *value);


/*
 * A strong entity tag over body: '"' + the first 16 bytes of its SHA-256
 * in base64url (22 characters) + '"', NUL-terminated.
 */
void encore_agg_etag(const void *body, size_t len,
    char out[ENCORE_AGG_ETAG_LEN + 1]);


/*
 * Whether an If-None-Match value matches etag: "*", or a comma-separated
 * list of entity tags compared weakly (RFC 9110 13.1.2: W/ is ignored).
 * A malformed list matches nothing.
 */
int encore_agg_etag_match(const char *header, size_t len,
    const char *etag, size_t etag_len);


#endif /* ENCORE_AGG_H */
