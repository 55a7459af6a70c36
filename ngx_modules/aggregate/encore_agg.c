/*
 * Encore aggregate: templates, field references, selection, placement and
 * entity tags of views (encore_agg.h).  No nginx dependency.
 */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <openssl/sha.h>

#include "encore_agg.h"


static int
encore_agg_is_name_start(int c)
{
    return (c >= 'a' && c <= 'z') || c == '_';
}


static int
encore_agg_is_name(int c)
{
    return encore_agg_is_name_start(c) || (c >= '0' && c <= '9');
}


static int
encore_agg_is_member(int c)
{
    return encore_agg_is_name(c) || (c >= 'A' && c <= 'Z');
}


int
encore_agg_template_split(const char *tmpl, size_t len,
    encore_agg_piece_t *pieces, size_t max, size_t *npieces,
    const char **err)
{
    size_t               i, start, j, dot, members;
    encore_agg_piece_t  *p;

    *npieces = 0;
    start = 0;
    i = 0;

    while (i <= len) {

        if (i < len && tmpl[i] == '}') {
            *err = "a \"}\" without its \"{\"";
            return -1;
        }

        if (i < len && (tmpl[i] != '{' || (i > 0 && tmpl[i - 1] == '$'))) {

            if (tmpl[i] == '{') {
                /* nginx's "${name}": skip to its "}" (a "{" inside is not
                 * nginx's, nor a reference: "${a{post.id}" is an error) */
                do {
                    i++;
                } while (i < len && tmpl[i] != '}' && tmpl[i] != '{');

                if (i == len || tmpl[i] == '{') {
                    *err = "a \"${\" without its \"}\"";
                    return -1;
                }
            }

            i++;
            continue;
        }

        /* the end, or a reference at i: the literal before it */

        if (i > start) {
            if (*npieces == max) {
                *err = "too many pieces";
                return -1;
            }

            p = &pieces[(*npieces)++];
            memset(p, 0, sizeof(*p));
            p->text.data = tmpl + start;
            p->text.len = i - start;
        }

        if (i == len) {
            break;
        }

        /* "{" name ("." member)+ "}" */

        j = i + 1;

        if (j == len || !encore_agg_is_name_start((unsigned char) tmpl[j])) {
            *err = "a \"{\" must start a reference {part.field}";
            return -1;
        }

        while (j < len && encore_agg_is_name((unsigned char) tmpl[j])) {
            j++;
        }

        dot = j;
        members = 0;

        while (j < len && tmpl[j] == '.') {
            j++;

            if (j == len || !encore_agg_is_member((unsigned char) tmpl[j])) {
                *err = "a reference's field names are [A-Za-z0-9_]";
                return -1;
            }

            while (j < len && encore_agg_is_member((unsigned char) tmpl[j])) {
                j++;
            }

            members++;
        }

        if (members == 0) {
            *err = "a reference names a part and a field: {part.field}";
            return -1;
        }

        if (members > ENCORE_AGG_MAX_DEPTH) {
            *err = "a reference's path is too deep";
            return -1;
        }

        if (j == len || tmpl[j] != '}') {
            *err = "a reference must end with \"}\"";
            return -1;
        }

        if (*npieces == max) {
            *err = "too many pieces";
            return -1;
        }

        p = &pieces[(*npieces)++];
        memset(p, 0, sizeof(*p));
        p->ref = 1;
        p->text.data = tmpl + i;
        p->text.len = j + 1 - i;
        p->part.data = tmpl + i + 1;
        p->part.len = dot - (i + 1);
        p->path.data = tmpl + dot + 1;
        p->path.len = j - (dot + 1);

        i = j + 1;
        start = i;
    }

    return 0;
}


json_t *
encore_agg_lookup(json_t *doc, const char *path, size_t len)
{
    size_t   i, start;
    json_t  *v;

    v = doc;
    start = 0;

    for (i = 0; i <= len; i++) {

        if (i < len && path[i] != '.') {
            continue;
        }

        if (v == NULL || !json_is_object(v)) {
            return NULL;
        }

        v = json_object_getn(v, path + start, i - start);
        start = i + 1;
    }

    return v;
}


/* RFC 3986 unreserved: everything else is percent-encoded */
static int
encore_agg_unreserved(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')
           || (c >= '0' && c <= '9')
           || c == '-' || c == '.' || c == '_' || c == '~';
}


/* with out NULL, only counts: *len grows by the encoded length */
static void
encore_agg_put_encoded(const char *s, size_t n, char *out, size_t *len)
{
    static const char  hex[] = "0123456789ABCDEF";
    size_t             i;
    unsigned char      c;

    for (i = 0; i < n; i++) {
        c = (unsigned char) s[i];

        if (encore_agg_unreserved(c)) {
            if (out) {
                out[*len] = (char) c;
            }

            *len += 1;
            continue;
        }

        if (out) {
            out[*len] = '%';
            out[*len + 1] = hex[c >> 4];
            out[*len + 2] = hex[c & 0xf];
        }

        *len += 3;
    }
}


/* a string, number or boolean (the caller checked) */
static void
encore_agg_put_scalar(json_t *v, char *out, size_t *len)
{
    int     n, prec;
    char    num[40];
    double  d;

    switch (json_typeof(v)) {

    case JSON_STRING:
        encore_agg_put_encoded(json_string_value(v), json_string_length(v),
                               out, len);
        return;

    case JSON_INTEGER:
        n = snprintf(num, sizeof(num), "%" JSON_INTEGER_FORMAT,
                     json_integer_value(v));
        encore_agg_put_encoded(num, (size_t) n, out, len);
        return;

    case JSON_REAL:
        /*
         * the fewest digits (15 to 17) that read back as the same double:
         * 0.1 gives "0.1", not "0.10000000000000001"
         */
        d = json_real_value(v);
        prec = 15;

        do {
            n = snprintf(num, sizeof(num), "%.*g", prec++, d);
        } while (prec <= 17 && strtod(num, NULL) != d);

        encore_agg_put_encoded(num, (size_t) n, out, len);
        return;

    case JSON_TRUE:
        encore_agg_put_encoded("true", 4, out, len);
        return;

    default: /* JSON_FALSE */
        encore_agg_put_encoded("false", 5, out, len);
        return;
    }
}


/* a scalar, or an array's first n items joined with "," */
static void
encore_agg_put_value(json_t *v, size_t n, char *out, size_t *len)
{
    size_t  i;

    if (!json_is_array(v)) {
        encore_agg_put_scalar(v, out, len);
        return;
    }

    for (i = 0; i < n; i++) {

        if (i > 0) {
            if (out) {
                out[*len] = ',';
            }

            *len += 1;
        }

        encore_agg_put_scalar(json_array_get(v, i), out, len);
    }
}


int
encore_agg_ref_append(json_t *doc, const char *path, size_t path_len,
    size_t max_items, char *out, size_t cap, size_t *len)
{
    size_t   i, n, need;
    json_t  *v, *item;

    v = encore_agg_lookup(doc, path, path_len);

    if (v == NULL || json_is_null(v) || json_is_object(v)) {
        return ENCORE_AGG_MISSING;
    }

    n = 1;

    if (json_is_array(v)) {
        n = json_array_size(v);

        for (i = 0; i < n; i++) {
            item = json_array_get(v, i);

            if (json_is_array(item) || json_is_object(item)
                || json_is_null(item))
            {
                return ENCORE_AGG_MISSING;
            }
        }

        if (n > max_items) {
            n = max_items;
        }
    }

    /* measured first: out is left as it was when the value does not fit */

    need = 0;
    encore_agg_put_value(v, n, NULL, &need);

    if (*len > cap || need > cap - *len) {
        return ENCORE_AGG_NO_ROOM;
    }

    encore_agg_put_value(v, n, out, len);

    return (int) n;
}


static int
encore_agg_listed(const char *name, size_t len, const encore_agg_str_t *list,
    size_t n)
{
    size_t  i;

    for (i = 0; i < n; i++) {
        if (list[i].len == len && memcmp(list[i].data, name, len) == 0) {
            return 1;
        }
    }

    return 0;
}


static json_t *
encore_agg_filter_object(json_t *obj, const encore_agg_str_t *allow,
    size_t nallow, const encore_agg_str_t *deny, size_t ndeny)
{
    size_t       len;
    json_t      *copy, *v;
    const char  *name;

    copy = json_object();
    if (copy == NULL) {
        return NULL;
    }

    json_object_keylen_foreach(obj, name, len, v) {

        if (nallow && !encore_agg_listed(name, len, allow, nallow)) {
            continue;
        }

        if (encore_agg_listed(name, len, deny, ndeny)) {
            continue;
        }

        if (json_object_setn(copy, name, len, v) != 0) {
            json_decref(copy);
            return NULL;
        }
    }

    return copy;
}


json_t *
encore_agg_select(json_t *answer, const char *pick, size_t pick_len,
    const encore_agg_str_t *allow, size_t nallow,
    const encore_agg_str_t *deny, size_t ndeny)
{
    size_t   i, n;
    json_t  *v, *out, *item, *f;

    v = pick ? encore_agg_lookup(answer, pick, pick_len) : answer;

    if (v == NULL) {
        return NULL;
    }

    if (nallow == 0 && ndeny == 0) {
        return json_incref(v);
    }

    if (json_is_object(v)) {
        return encore_agg_filter_object(v, allow, nallow, deny, ndeny);
    }

    if (!json_is_array(v)) {
        return json_incref(v);
    }

    n = json_array_size(v);

    out = json_array();
    if (out == NULL) {
        return NULL;
    }

    for (i = 0; i < n; i++) {
        item = json_array_get(v, i);

        if (json_is_object(item)) {
            f = encore_agg_filter_object(item, allow, nallow, deny, ndeny);

        } else {
            f = json_incref(item);
        }

        if (f == NULL || json_array_append_new(out, f) != 0) {
            json_decref(out);
            return NULL;
        }
    }

    return out;
}


int
encore_agg_place(json_t *view, const char *key, size_t key_len, int merge,
    json_t *value)
{
    size_t   i, start;
    json_t  *at, *next;

    if (value == NULL) {
        return -1;
    }

    if (merge) {
        if (!json_is_object(value) || json_object_update(view, value) != 0) {
            json_decref(value);
            return -1;
        }

        json_decref(value);
        return 0;
    }

    at = view;
    start = 0;

    for (i = 0; i < key_len; i++) {

        if (key[i] != '.') {
            continue;
        }

        next = json_object_getn(at, key + start, i - start);

        if (next == NULL) {
            next = json_object();

            if (next == NULL
                || json_object_setn_new(at, key + start, i - start, next)
                   != 0)
            {
                json_decref(value);
                return -1;
            }

        } else if (!json_is_object(next)) {
            json_decref(value);
            return -1;

        } else if (next->refcount > 1) {
            /*
             * also a part's answer (placed or merged earlier): setting a
             * member in it would change that answer too, or make a loop
             * when value holds it; a shallow copy takes its place
             */
            next = json_copy(next);

            if (next == NULL
                || json_object_setn_new(at, key + start, i - start, next)
                   != 0)
            {
                json_decref(value);
                return -1;
            }
        }

        at = next;
        start = i + 1;
    }

    if (json_object_setn_new(at, key + start, key_len - start, value) != 0) {
        return -1;
    }

    return 0;
}


void
encore_agg_etag(const void *body, size_t len,
    char out[ENCORE_AGG_ETAG_LEN + 1])
{
    static const char  b64[] =
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    unsigned char      md[SHA256_DIGEST_LENGTH];
    unsigned int       bits;
    size_t             i, o;

    SHA256(body, len, md);

    /* 16 bytes: five groups of three, then one byte (22 characters) */
    o = 0;
    out[o++] = '"';

    for (i = 0; i + 3 <= 15; i += 3) {
        bits = (md[i] << 16) | (md[i + 1] << 8) | md[i + 2];
        out[o++] = b64[(bits >> 18) & 63];
        out[o++] = b64[(bits >> 12) & 63];
        out[o++] = b64[(bits >> 6) & 63];
        out[o++] = b64[bits & 63];
    }

    out[o++] = b64[md[15] >> 2];
    out[o++] = b64[(md[15] & 3) << 4];
    out[o++] = '"';
    out[o] = '\0';
}


static int
encore_agg_ows(int c)
{
    return c == ' ' || c == '\t';
}


int
encore_agg_etag_match(const char *header, size_t len, const char *etag,
    size_t etag_len)
{
    int            match;
    size_t         i, start;
    unsigned char  c;

    /* "*" is the whole value, never a list's member */

    for (i = 0; i < len && encore_agg_ows(header[i]); i++) { /* void */ }

    if (i < len && header[i] == '*') {
        for (i++; i < len && encore_agg_ows(header[i]); i++) { /* void */ }

        return i == len;
    }

    /*
     * 1#entity-tag, empty elements allowed (RFC 9110 5.6.1); the whole
     * list is read before a match counts: a malformed one matches nothing
     */

    match = 0;
    i = 0;

    for ( ;; ) {

        while (i < len && (encore_agg_ows(header[i]) || header[i] == ',')) {
            i++;
        }

        if (i == len) {
            return match;
        }

        if (len - i >= 2 && header[i] == 'W' && header[i + 1] == '/') {
            i += 2;
        }

        if (i == len || header[i] != '"') {
            return 0;
        }

        start = i++;

        for ( ;; ) {
            if (i == len) {
                return 0;
            }

            c = (unsigned char) header[i];

            if (c == '"') {
                break;
            }

            /* etagc: %x21 / %x23-7E / obs-text */
            if (c <= 0x20 || c == 0x7f) {
                return 0;
            }

            i++;
        }

        i++;

        if (i - start == etag_len
            && memcmp(header + start, etag, etag_len) == 0)
        {
            match = 1;
        }

        while (i < len && encore_agg_ows(header[i])) {
            i++;
        }

        if (i < len && header[i] != ',') {
            return 0;
        }
    }
}
