/*
 * libFuzzer harness for the kit's binder (workers/lib/bind.c).  The input
 * is parsed as JSON and bound against a table exercising every type and
 * flag, in every mode (create, patch, all, each strict or not); the same
 * bytes, split at '&' and '=', are bound as query parameters.
 * Invariants: success and failure are exclusive and complete (an object
 * and no error, or at least one error naming a field, with a message);
 * the object (also the fields that passed on failure) holds only the
 * table's input fields; and
 * a patch's normalised object binds again to itself (normalising twice
 * changes nothing).
 *
 * auto/fuzz (make fuzz) builds it from this line:
 */
/* fuzz-sources: workers/lib/bind.c workers/lib/json.c workers/lib/uuid.c */

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "bind.h"


typedef struct {
    enc_value_t  name;
    enc_value_t  count;
    enc_value_t  live;
    enc_value_t  ref;
    enc_value_t  tags;
} slots_t;

static const char *const  kinds[] = { "album", "single", "ep", NULL };

static const enc_field_t  genre = {
    .name = "genre", .type = ENC_STRING, .min = 1, .max = 5
};
static const enc_field_t  tag = {
    .name = "tag", .type = ENC_STRING, .flags = ENC_LOWER, .max = 10
};
static const enc_field_t  slug_item = {
    .name = "slug", .type = ENC_SLUG, .min = 1, .max = 8
};
static const enc_field_t  int_item = {
    .name = "n", .type = ENC_INT, .min = -3, .max = 3
};
static const enc_field_t  kind_item = {
    .name = "kind", .type = ENC_ENUM, .values = kinds
};
static const enc_field_t  uuid_item = { .name = "id", .type = ENC_UUID };
static const enc_field_t  bool_item = { .name = "b", .type = ENC_BOOL };
static const enc_field_t  date_item = { .name = "d", .type = ENC_DATE };
static const enc_field_t  nested = {
    .name = "inner", .type = ENC_ARRAY, .max = 2, .item = &int_item
};

static const enc_field_t  fields[] = {
    { .name = "id", .type = ENC_UUID, .flags = ENC_OUT | ENC_KEY },
    { .name = "name", .type = ENC_STRING,
      .flags = ENC_OUT | ENC_IN | ENC_REQUIRED, .min = 1, .max = 5,
      .slot = ENC_SLOT(slots_t, name) },
    { .name = "slug", .type = ENC_SLUG, .flags = ENC_IN | ENC_REQUIRED,
      .min = 2, .max = 10 },
    { .name = "bio", .type = ENC_STRING, .flags = ENC_IN, .def = "\"\"" },
    { .name = "country", .type = ENC_COUNTRY,
      .flags = ENC_IN | ENC_NULLABLE },
    { .name = "year", .type = ENC_INT,
      .flags = ENC_IN | ENC_NULLABLE | ENC_NOT_FUTURE, .min = 1000 },
    { .name = "count", .type = ENC_INT, .flags = ENC_IN, .min = -5,
      .max = 5, .def = "0", .slot = ENC_SLOT(slots_t, count) },
    { .name = "live", .type = ENC_BOOL, .flags = ENC_IN, .def = "false",
      .slot = ENC_SLOT(slots_t, live) },
    { .name = "ref", .type = ENC_UUID, .flags = ENC_IN | ENC_NULLABLE,
      .slot = ENC_SLOT(slots_t, ref) },
    { .name = "released", .type = ENC_DATE,
      .flags = ENC_IN | ENC_NULLABLE | ENC_NOT_FUTURE },
    { .name = "kind", .type = ENC_ENUM, .flags = ENC_IN, .values = kinds,
      .def = "\"album\"" },
    { .name = "genres", .type = ENC_ARRAY, .flags = ENC_IN | ENC_UNIQUE,
      .max = 3, .item = &genre, .def = "[]" },
    { .name = "tags", .type = ENC_ARRAY,
      .flags = ENC_IN | ENC_UNIQUE | ENC_NULLABLE, .min = 1, .item = &tag,
      .slot = ENC_SLOT(slots_t, tags) },
    { .name = "slugs", .type = ENC_ARRAY, .flags = ENC_IN, .item = &slug_item },
    { .name = "ns", .type = ENC_ARRAY, .flags = ENC_IN | ENC_UNIQUE,
      .item = &int_item },
    { .name = "kinds", .type = ENC_ARRAY, .flags = ENC_IN, .item = &kind_item },
    { .name = "ids", .type = ENC_ARRAY, .flags = ENC_IN | ENC_UNIQUE,
      .item = &uuid_item },
    { .name = "bs", .type = ENC_ARRAY, .flags = ENC_IN, .item = &bool_item },
    { .name = "ds", .type = ENC_ARRAY, .flags = ENC_IN, .item = &date_item },
    { .name = "grid", .type = ENC_ARRAY, .flags = ENC_IN, .max = 2,
      .item = &nested },
    { .name = "owner", .type = ENC_UUID, .flags = ENC_IN_CREATE },
    { .name = "created_at", .type = ENC_TIME, .flags = ENC_OUT },
    ENC_FIELD_END
};

static const unsigned  modes[] = {
    ENC_BIND_CREATE, ENC_BIND_CREATE | ENC_BIND_STRICT,
    ENC_BIND_PATCH, ENC_BIND_PATCH | ENC_BIND_STRICT,
    ENC_BIND_ALL, ENC_BIND_ALL | ENC_BIND_STRICT,
    0, ENC_BIND_STRICT
};


static const enc_field_t *
field_named(const char *name)
{
    const enc_field_t  *f;

    for (f = fields; f->name != NULL; f++) {
        if (strcmp(f->name, name) == 0) {
            return f;
        }
    }
    return NULL;
}


static void
check_outcome(int rc, json_t *out, enc_validation_t *v, unsigned mode,
    int query)
{
    size_t              i;
    json_t             *e, *j;
    const char         *key;
    const enc_field_t  *f;

    /* valid: an object and no error; invalid: errors naming fields, and
       the fields that passed (or NULL for a body that is no object) */
    if (rc == 0 ? out == NULL || enc_validation_failed(v)
                : rc != -1 || !enc_validation_failed(v))
    {
        abort();
    }
    if (out != NULL && !json_is_object(out)) {
        abort();
    }

    json_object_foreach(out, key, j) {
        f = field_named(key);
        if (f == NULL || f->type == ENC_TIME) {
            abort();
        }
        if (!query && !(mode & ENC_BIND_ALL) && !(f->flags & ENC_IN)
            && !((mode & ENC_BIND_CREATE) && (f->flags & ENC_IN_CREATE)))
        {
            abort();
        }
    }

    json_array_foreach(v->errors, i, e) {
        if (!json_is_string(json_object_get(e, "field"))
            || !json_is_string(json_object_get(e, "message")))
        {
            abort();
        }
    }
}


static void
bind_body(json_t *body)
{
    int                rc;
    size_t             i;
    json_t            *out, *again;
    slots_t            s;
    enc_validation_t   v;

    for (i = 0; i < sizeof(modes) / sizeof(modes[0]); i++) {
        enc_validation_init(&v);
        rc = enc_bind_json(body, fields, modes[i], &out, &s, &v);
        check_outcome(rc, out, &v, modes[i], 0);
        enc_validation_free(&v);

        /* normalising a patch twice changes nothing */
        if (rc == 0 && (modes[i] & ENC_BIND_PATCH)) {
            enc_validation_init(&v);
            if (enc_bind_json(out, fields, modes[i], &again, NULL, &v) != 0
                || !json_equal(out, again))
            {
                abort();
            }
            json_decref(again);
            enc_validation_free(&v);
        }
        json_decref(out);
    }
}


/* ---- query strings ----------------------------------------------------------- */

typedef struct {
    char   *names[32];
    char   *values[32];
    size_t  n;
} query_t;


static const char *
query_get(void *arg, const char *name)
{
    size_t    i;
    query_t  *q = arg;

    for (i = 0; i < q->n; i++) {
        if (strcmp(q->names[i], name) == 0) {
            return q->values[i];
        }
    }
    return NULL;
}


static void
bind_query(const uint8_t *data, size_t size)
{
    int                rc;
    char              *copy, *p, *amp, *eq;
    json_t            *out;
    query_t            q;
    slots_t            s;
    enc_validation_t   v;

    /* C strings, as the HTTP layer hands them: up to the first NUL */
    copy = malloc(size + 1);
    if (copy == NULL) {
        return;
    }
    memcpy(copy, data, size);
    copy[size] = '\0';

    q.n = 0;
    for (p = copy; p != NULL && q.n < 32; p = amp) {
        amp = strchr(p, '&');
        if (amp != NULL) {
            *amp++ = '\0';
        }
        eq = strchr(p, '=');
        if (eq == NULL) {
            continue;
        }
        *eq = '\0';
        q.names[q.n] = p;
        q.values[q.n] = eq + 1;
        q.n++;
    }

    enc_validation_init(&v);
    rc = enc_bind_query(query_get, &q, fields, &out, &s, &v);
    check_outcome(rc, out, &v, ENC_BIND_ALL, 1);
    enc_validation_free(&v);
    json_decref(out);

    free(copy);
}


int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    json_t  *body;

    /* as the HTTP layer parses bodies, then more leniently (NUL allowed,
       any value at the top: enc_bind_json takes any json_t) */
    body = json_loadb((const char *) data, size, JSON_REJECT_DUPLICATES,
                      NULL);
    if (body != NULL) {
        bind_body(body);
        json_decref(body);
    }
    body = json_loadb((const char *) data, size,
                      JSON_ALLOW_NUL | JSON_DECODE_ANY, NULL);
    if (body != NULL) {
        bind_body(body);
        json_decref(body);
    }

    bind_query(data, size);
    return 0;
}
