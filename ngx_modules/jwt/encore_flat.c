/*
 * Encore: strict scanner for flat JSON objects.
 */

#include <string.h>

#include "encore_flat.h"


/* digits of the largest integer kept: 10^18 - 1 fits a long long */
#define ENCORE_FLAT_MAX_DIGITS  18


static const unsigned char *
encore_flat_ws(const unsigned char *p, const unsigned char *end)
{
    while (p < end && (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r')) {
        p++;
    }

    return p;
}


/* a string of printable ASCII without escapes; p at the opening quote */
static const unsigned char *
encore_flat_string(const unsigned char *p, const unsigned char *end,
    encore_flat_str_t *s)
{
    const unsigned char  *start;

    if (p == end || *p != '"') {
        return NULL;
    }

    start = ++p;

    while (p < end && *p != '"') {
        if (*p < 0x20 || *p > 0x7e || *p == '\\') {
            return NULL;
        }

        p++;
    }

    if (p == end) {
        return NULL;
    }

    s->data = (const char *) start;
    s->len = p - start;

    return p + 1;
}


static const unsigned char *
encore_flat_value(encore_flat_t *flat, encore_flat_member_t *m,
    const unsigned char *p, const unsigned char *end)
{
    size_t  n;

    if (p == end) {
        return NULL;
    }

    switch (*p) {

    case '"':
        m->type = ENCORE_FLAT_STRING;
        return encore_flat_string(p, end, &m->value);

    case 't':
        if (end - p < 4 || memcmp(p, "true", 4) != 0) {
            return NULL;
        }

        m->type = ENCORE_FLAT_TRUE;
        return p + 4;

    case 'f':
        if (end - p < 5 || memcmp(p, "false", 5) != 0) {
            return NULL;
        }

        m->type = ENCORE_FLAT_FALSE;
        return p + 5;

    case '[':
        m->type = ENCORE_FLAT_ARRAY;
        m->first = flat->nitems;
        m->nitems = 0;

        p = encore_flat_ws(p + 1, end);

        if (p < end && *p == ']') {
            return p + 1;
        }

        for ( ;; ) {
            if (flat->nitems == ENCORE_FLAT_MAX_ITEMS) {
                return NULL;
            }

            p = encore_flat_string(p, end, &flat->items[flat->nitems]);
            if (p == NULL) {
                return NULL;
            }

            flat->nitems++;
            m->nitems++;

            p = encore_flat_ws(p, end);

            if (p == end) {
                return NULL;
            }

            if (*p == ']') {
                return p + 1;
            }

            if (*p != ',') {
                return NULL;
            }

            p = encore_flat_ws(p + 1, end);
        }

    default:
        if (*p < '0' || *p > '9') {
            return NULL;
        }

        m->type = ENCORE_FLAT_INTEGER;
        m->value.data = (const char *) p;
        m->integer = 0;

        /* canonical: no leading zero, no sign, fraction or exponent */
        if (*p == '0') {
            p++;

        } else {
            for (n = 0; p < end && *p >= '0' && *p <= '9'; n++, p++) {
                if (n == ENCORE_FLAT_MAX_DIGITS) {
                    return NULL;
                }

                m->integer = m->integer * 10 + (*p - '0');
            }
        }

        m->value.len = (const char *) p - m->value.data;

        /* "1.5", "1e3", "01": what follows must end the value */
        if (p < end && ((*p >= '0' && *p <= '9') || *p == '.' || *p == 'e'
                        || *p == 'E'))
        {
            return NULL;
        }

        return p;
    }
}


int
encore_flat_parse(encore_flat_t *flat, const void *data, size_t len)
{
    size_t                 i;
    const unsigned char   *p, *end;
    encore_flat_member_t  *m;

    p = data;
    end = p + len;

    flat->nmembers = 0;
    flat->nitems = 0;

    p = encore_flat_ws(p, end);

    if (p == end || *p != '{') {
        return -1;
    }

    p = encore_flat_ws(p + 1, end);

    if (p < end && *p == '}') {
        p++;
        goto done;
    }

    for ( ;; ) {
        if (flat->nmembers == ENCORE_FLAT_MAX_MEMBERS) {
            return -1;
        }

        m = &flat->members[flat->nmembers];

        p = encore_flat_string(p, end, &m->name);
        if (p == NULL) {
            return -1;
        }

        /* names have no escapes: equal bytes are equal names */
        for (i = 0; i < flat->nmembers; i++) {
            if (flat->members[i].name.len == m->name.len
                && memcmp(flat->members[i].name.data, m->name.data,
                          m->name.len) == 0)
            {
                return -1;
            }
        }

        p = encore_flat_ws(p, end);

        if (p == end || *p != ':') {
            return -1;
        }

        p = encore_flat_value(flat, m, encore_flat_ws(p + 1, end), end);
        if (p == NULL) {
            return -1;
        }

        flat->nmembers++;

        p = encore_flat_ws(p, end);

        if (p == end) {
            return -1;
        }

        if (*p == '}') {
            p++;
            break;
        }

        if (*p != ',') {
            return -1;
        }

        p = encore_flat_ws(p + 1, end);
    }

done:

    /* nothing but white space after the object */
    return encore_flat_ws(p, end) == end ? 0 : -1;
}


const encore_flat_member_t *
encore_flat_get(const encore_flat_t *flat, const char *name)
{
    size_t  i, len;

    len = strlen(name);

    for (i = 0; i < flat->nmembers; i++) {
        if (flat->members[i].name.len == len
            && memcmp(flat->members[i].name.data, name, len) == 0)
        {
            return &flat->members[i];
        }
    }

    return NULL;
}
