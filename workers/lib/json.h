/*
 * json: problem+json bodies (RFC 9457), the 422 validation collector and
 * typed getters for request bodies.
 *
 * Bodies reaching handlers were parsed by the HTTP layer with
 * JSON_REJECT_DUPLICATES; jansson already rejects invalid UTF-8 and "\u0000"
 * there, so strings seen by the getters are valid UTF-8 without NUL.
 */
#ifndef ENC_JSON_H
#define ENC_JSON_H

#include <stddef.h>
#include <jansson.h>

/* problem+json body {type,title,status,detail}; title NULL = the status's
   reason phrase, detail NULL = title.  Returns a new reference, NULL on
   allocation failure. */
json_t *enc_problem_new(int status, const char *title, const char *detail);
/* standard reason phrase ("Not Found"), "Unknown" for others */
const char *enc_http_reason(int status);

/*
 * Validation collector for 422.  init needs no cleanup while nothing was
 * added; once enc_validation_add was called, the errors array is owned by
 * v until enc_resp_validation() takes it or enc_validation_free() drops it.
 */
typedef struct {
    json_t  *errors;      /* [{"field","message"}], NULL while empty */
} enc_validation_t;

void enc_validation_init(enc_validation_t *v);
void enc_validation_add(enc_validation_t *v, const char *field,
                        const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
int  enc_validation_failed(const enc_validation_t *v);
void enc_validation_free(enc_validation_t *v);

/*
 * Typed field getters.  Each returns 0 when the member is valid (*out set)
 * or when it is absent (or JSON null) and not required (*out untouched, so
 * callers preset defaults).  Otherwise it adds a validation error naming
 * the field and returns -1: missing but required, wrong type, out of
 * bounds.  obj may be NULL (no body): every field is then absent.
 * Strings are borrowed from obj; lengths count UTF-8 code points.
 */
int enc_json_get_str(json_t *obj, const char *field, int required,
                     size_t min_chars, size_t max_chars,
                     const char **out, enc_validation_t *v);
int enc_json_get_int(json_t *obj, const char *field, int required,
                     long long min, long long max, long long *out,
                     enc_validation_t *v);
int enc_json_get_bool(json_t *obj, const char *field, int required,
                      int *out, enc_validation_t *v);
/* an array of min_items..max_items elements (borrowed); element checks are
   the caller's */
int enc_json_get_array(json_t *obj, const char *field, int required,
                       size_t min_items, size_t max_items, json_t **out,
                       enc_validation_t *v);

/* number of code points of a valid UTF-8 string of len bytes, or
   (size_t) -1 if it is not valid UTF-8 or contains NUL */
size_t enc_utf8_chars(const char *s, size_t len);

/*
 * The compact text of an object or array, byte for byte what
 * json_dumps(v, JSON_COMPACT) writes (keys in insertion order), several
 * times faster: response bodies.  A malloc'ed NUL-terminated buffer (free()
 * it), its length in *len (may be NULL).  NULL for anything else, a string
 * that is not valid UTF-8, nesting deeper than ENC_JSON_DUMP_DEPTH (a
 * value containing itself) or no memory.
 */
#define ENC_JSON_DUMP_DEPTH  1024
char *enc_json_dumps(const json_t *v, size_t *len);

/*
 * A JSON text written piece by piece, for bodies made straight from
 * database rows (entity.h: enc_entity_write) without a jansson tree in
 * between.  A failure (no memory, a string that is not UTF-8) sticks:
 * every later call does nothing and enc_jw_finish returns NULL.
 */
typedef struct {
    char    *p;
    size_t   len;
    size_t   cap;
    int      failed;
} enc_jw_t;

void  enc_jw_init(enc_jw_t *w);
/* bytes as they are: punctuation, numbers, JSON text made elsewhere */
void  enc_jw_raw(enc_jw_t *w, const char *s, size_t n);
/* a string, quoted and escaped as enc_json_dumps escapes it */
void  enc_jw_string(enc_jw_t *w, const char *s, size_t n);
/* the malloc'ed NUL-terminated text (free() it) and its length; NULL after
   a failure, with the buffer released either way */
char *enc_jw_finish(enc_jw_t *w, size_t *len);

#endif /* ENC_JSON_H */
