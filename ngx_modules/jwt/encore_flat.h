/*
 * Encore: a strict scanner for the flat JSON objects that JWS headers and
 * JWT claims nearly always are, in place and without allocating.
 *
 * It accepts only a subset of JSON whose meaning is unambiguous without
 * decoding: an object whose member names and string values are printable
 * ASCII without escapes (so the bytes are the decoded text), whose other
 * values are canonical non-negative integers of at most 18 digits, true,
 * false, or arrays of such strings, with no duplicate member.  Everything
 * it accepts, jansson accepts with the same members and values
 * (tests/fuzz/fuzz_jws.c checks this); everything else, valid JSON or not,
 * it refuses, and the caller parses with jansson as before.  No nginx
 * dependency.
 */

#ifndef ENCORE_FLAT_H
#define ENCORE_FLAT_H


#include <stddef.h>


#define ENCORE_FLAT_MAX_MEMBERS  32
#define ENCORE_FLAT_MAX_ITEMS    16   /* strings of all arrays together */

#define ENCORE_FLAT_STRING       1
#define ENCORE_FLAT_INTEGER      2
#define ENCORE_FLAT_TRUE         3
#define ENCORE_FLAT_FALSE        4
#define ENCORE_FLAT_ARRAY        5


typedef struct {
    const char  *data;
    size_t       len;
} encore_flat_str_t;


typedef struct {
    encore_flat_str_t   name;
    unsigned            type;        /* ENCORE_FLAT_* */
    encore_flat_str_t   value;       /* string contents, integer digits */
    unsigned long long  integer;     /* ENCORE_FLAT_INTEGER */
    size_t              first;       /* ENCORE_FLAT_ARRAY: items[first..] */
    size_t              nitems;
} encore_flat_member_t;


typedef struct {
    size_t                nmembers;
    size_t                nitems;
    encore_flat_member_t  members[ENCORE_FLAT_MAX_MEMBERS];
    encore_flat_str_t     items[ENCORE_FLAT_MAX_ITEMS];
} encore_flat_t;


/*
 * Scan len bytes at p.  Returns 0 when they are a flat object as above
 * (the members point into p), -1 otherwise.
 */
int encore_flat_parse(encore_flat_t *flat, const void *p, size_t len);

/* the member called name (NUL-terminated), or NULL */
const encore_flat_member_t *encore_flat_get(const encore_flat_t *flat,
    const char *name);


#endif /* ENCORE_FLAT_H */
