/*
 * bind: declarative validation of request bodies and query parameters.
 *
 * A worker describes the fields of a body (or of a query string) once, in a
 * table of enc_field_t; enc_bind_json / enc_bind_query check a request
 * against it, collect every field error into one 422 (enc_validation_t) and
 * produce
 *   - a normalised JSON object holding only the table's fields (strings
 *     trimmed of nothing, tags lower-cased, UUIDs lower-cased, duplicates of
 *     unique arrays refused), which a statement can take whole as one jsonb
 *     parameter (see entity.h: jsonb_populate_record), and
 *   - optionally, one enc_value_t per field in a struct of the caller's
 *     (ENC_SLOT), for handlers that want the values in C.
 *
 * The same table also describes an entity's columns (entity.h): the
 * ENC_OUT flag marks what is selected and answered, ENC_IN what a client
 * may write.  Lengths are counted in characters (code points), not bytes.
 *
 * Errors about the body as a whole name the field "" (the JSON Pointer of
 * the whole document, RFC 6901).
 *
 * PATCH semantics: a field is absent (unchanged), null (cleared; only for
 * ENC_NULLABLE fields) or set.  enc_value_t carries the three states; in the
 * normalised object they are: no member, JSON null, the value.
 *
 * Unknown fields: ENC_BIND_STRICT refuses them (422 naming each one), the
 * default ignores them (they never reach the normalised object).  Catalog
 * writes are strict, since a misspelt optional field silently ignored is a
 * change the client believes it made; query strings are never strict
 * (caches and trackers add parameters).
 */

#ifndef ENC_BIND_H
#define ENC_BIND_H

#include <stddef.h>
#include <jansson.h>

#include "json.h"
#include "uuid.h"


typedef enum {
    ENC_STRING = 1,     /* min..max characters */
    ENC_INT,            /* min..max value (a JSON integer, or decimal text
                           in a query string) */
    ENC_BOOL,
    ENC_UUID,           /* canonical 8-4-4-4-12 hex, answered lower-case */
    ENC_DATE,           /* YYYY-MM-DD, a real calendar date */
    ENC_TIME,           /* output only: RFC 3339 UTC with microseconds */
    ENC_COUNTRY,        /* ISO 3166-1 alpha-2, an assigned code, upper-case */
    ENC_ENUM,           /* one of values[] */
    ENC_SLUG,           /* [a-z0-9]+(-[a-z0-9]+)*, min..max characters */
    ENC_ARRAY           /* min..max items, each checked against item */
} enc_type_t;

/* flags */
#define ENC_OUT         0x0001  /* a column: selected, answered, in events */
#define ENC_IN          0x0002  /* writable on create and on patch */
#define ENC_IN_CREATE   0x0004  /* writable on create only (album.artist_id) */
#define ENC_REQUIRED    0x0008  /* must be present, not null, on create */
#define ENC_NULLABLE    0x0010  /* JSON null accepted: stored as NULL */
#define ENC_PRIVATE     0x0020  /* answered in the owner's and admin's views */
#define ENC_LOWER       0x0040  /* strings: ASCII letters lower-cased */
#define ENC_UNIQUE      0x0080  /* arrays: duplicate items are a 422 */
#define ENC_NOT_FUTURE  0x0100  /* INT: not after this year (UTC);
                                   DATE: not after today (UTC) */
#define ENC_KEY         0x0200  /* the entity's id column */
#define ENC_ADMIN_ONLY  0x0400  /* answered in the admin's view only */
#define ENC_NOT_BLANK   0x0800  /* strings: something besides white space
                                   (names, titles; not passwords) */
/* filled in by the kit on create, never read from a body (kit.h); part of
   {entity:create} */
#define ENC_CALLER_ID   0x1000  /* the caller's id (posts.author_id) */
#define ENC_CALLER_NAME 0x2000  /* the caller's name (posts.author) */
#define ENC_PATH_ID     0x4000  /* the path's {id} (comments.post_id under
                                   /posts/{id}/comments) */
#define ENC_FILLED      (ENC_CALLER_ID | ENC_CALLER_NAME | ENC_PATH_ID)

/* ENC_SLOT(s, m): where to store a field's enc_value_t in struct s */
#define ENC_SLOT(s, m)  (offsetof(s, m) + 1)

typedef struct enc_field_s  enc_field_t;

struct enc_field_s {
    const char         *name;      /* JSON member, column, query parameter */
    enc_type_t          type;
    unsigned            flags;
    long long           min;       /* characters, value or items */
    long long           max;       /* 0 for STRING/SLUG/ARRAY: no maximum */
    const char *const  *values;    /* ENC_ENUM: NULL-terminated */
    const enc_field_t  *item;      /* ENC_ARRAY: the rule of each item */
    const char         *def;       /* JSON text stored when absent on create
                                      ("[]", "\"\"", "\"album\""); NULL:
                                      absent optional fields are null */
    size_t              slot;      /* ENC_SLOT(...) or 0 */
    const char         *sql;       /* select expression when not the column
                                      itself (entity.h); NULL otherwise */
};

#define ENC_FIELD_END  { NULL, 0, 0, 0, 0, NULL, NULL, NULL, 0, NULL }

typedef enum {
    ENC_ABSENT = 0,
    ENC_NULL,
    ENC_SET
} enc_presence_t;

/* One bound value.  str and json are borrowed from the normalised object
   the bind produced (valid while it lives). */
typedef struct {
    enc_presence_t   state;
    const char      *str;      /* text types: the normalised text */
    size_t           len;      /* its length in bytes */
    long long        num;      /* ENC_INT; ENC_BOOL as 0/1 */
    json_t          *json;     /* the value as it is in the object */
} enc_value_t;

/* modes */
#define ENC_BIND_CREATE  0x01  /* required fields enforced, defaults filled */
#define ENC_BIND_PATCH   0x02  /* only ENC_IN fields, at least one needed */
#define ENC_BIND_STRICT  0x04  /* unknown members are a 422 */
#define ENC_BIND_ALL     0x08  /* every field of the table is an input
                                  (bodies that are not entities: login) */

/*
 * Checks body (an object, or NULL for an empty body) against fields.
 * Returns 0 when it is valid, else -1 after adding every problem to v.
 * Either way *out is a new object of the fields that passed (the caller
 * json_decrefs it; NULL only when the body is no object or memory ran
 * out) and, when dst is not NULL, each field with a slot gets its
 * enc_value_t, so cross-field rules can still run and add to the same
 * 422.
 * Which fields are inputs: ENC_IN always, ENC_IN_CREATE with
 * ENC_BIND_CREATE, every field with ENC_BIND_ALL.
 */
int enc_bind_json(json_t *body, const enc_field_t *fields, unsigned mode,
                  json_t **out, void *dst, enc_validation_t *v);

/*
 * The same rules over query parameters: get(name, arg) returns a
 * parameter's value or NULL (enc_req_query fits).  Every field of the table
 * is an input; none is required unless flagged; arrays are comma-separated
 * ("type=artist,album").  *out as for enc_bind_json.
 */
int enc_bind_query(const char *(*get)(void *arg, const char *name),
                   void *arg, const enc_field_t *fields, json_t **out,
                   void *dst, enc_validation_t *v);

/* single-value checks the binder uses, for handlers with odd inputs */
int enc_date_valid(const char *s);           /* 1/0: YYYY-MM-DD, real */
int enc_country_valid(const char *s);        /* 1/0: assigned alpha-2 */
int enc_slug_valid(const char *s);           /* 1/0 */

#endif /* ENC_BIND_H */
