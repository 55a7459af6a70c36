/*
 * json: problem+json, validation, getters, the response serialiser.  See
 * json.h.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "json.h"


typedef struct {
    int          status;
    const char  *reason;
} reason_t;

static const reason_t  reasons[] = {
    { 200, "OK" }, { 201, "Created" }, { 202, "Accepted" },
    { 204, "No Content" }, { 304, "Not Modified" },
    { 400, "Bad Request" }, { 401, "Unauthorized" }, { 403, "Forbidden" },
    { 404, "Not Found" }, { 405, "Method Not Allowed" },
    { 406, "Not Acceptable" }, { 408, "Request Timeout" },
    { 409, "Conflict" }, { 410, "Gone" }, { 411, "Length Required" },
    { 412, "Precondition Failed" }, { 413, "Content Too Large" },
    { 415, "Unsupported Media Type" }, { 422, "Unprocessable Content" },
    { 429, "Too Many Requests" }, { 431, "Request Header Fields Too Large" },
    { 500, "Internal Server Error" }, { 501, "Not Implemented" },
    { 502, "Bad Gateway" }, { 503, "Service Unavailable" },
    { 504, "Gateway Timeout" },
    { 0, NULL }
};


const char *
enc_http_reason(int status)
{
    const reason_t  *r;

    for (r = reasons; r->reason != NULL; r++) {
        if (r->status == status) {
            return r->reason;
        }
    }
    return "Unknown";
}


json_t *
enc_problem_new(int status, const char *title, const char *detail)
{
    if (title == NULL) {
        title = enc_http_reason(status);
    }
    if (detail == NULL) {
        detail = title;
    }
    /* "s?" would turn invalid UTF-8 into a NULL member; json_pack fails
       instead, so a detail built from hostile input cannot slip through */
    return json_pack("{s:s, s:s, s:i, s:s}",
                     "type", "about:blank",
                     "title", title,
                     "status", status,
                     "detail", detail);
}


void
enc_validation_init(enc_validation_t *v)
{
    v->errors = NULL;
}


void
enc_validation_free(enc_validation_t *v)
{
    json_decref(v->errors);
    v->errors = NULL;
}


int
enc_validation_failed(const enc_validation_t *v)
{
    return v->errors != NULL && json_array_size(v->errors) > 0;
}


void
enc_validation_add(enc_validation_t *v, const char *field,
                   const char *fmt, ...)
{
    char     msg[512];
    json_t  *e;
    va_list  ap;

    if (v == NULL) {
        return;
    }
    va_start(ap, fmt);
    (void) vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);

    if (v->errors == NULL) {
        v->errors = json_array();
        if (v->errors == NULL) {
            return;
        }
    }
    /* field names come from code, messages may quote nothing hostile;
       json_pack rejects invalid UTF-8 should a caller slip some in */
    e = json_pack("{s:s, s:s}", "field", field ? field : "", "message", msg);
    if (e == NULL) {
        e = json_pack("{s:s, s:s}", "field", "", "message", "invalid");
        if (e == NULL) {
            return;
        }
    }
    (void) json_array_append_new(v->errors, e);
}


size_t
enc_utf8_chars(const char *s, size_t len)
{
    size_t                i = 0, n = 0, need, k;
    unsigned char         c;
    const unsigned char  *p = (const unsigned char *) s;
    unsigned long         cp;

    while (i < len) {
        c = p[i];
        if (c == 0) {
            return (size_t) -1;
        }
        if (c < 0x80) {
            i++;
            n++;
            continue;
        }
        if (c >= 0xc2 && c <= 0xdf) {
            need = 1;
            cp = c & 0x1f;
        } else if (c >= 0xe0 && c <= 0xef) {
            need = 2;
            cp = c & 0x0f;
        } else if (c >= 0xf0 && c <= 0xf4) {
            need = 3;
            cp = c & 0x07;
        } else {
            return (size_t) -1;
        }
        if (len - i <= need) {
            return (size_t) -1;         /* truncated sequence */
        }
        for (k = 1; k <= need; k++) {
            if ((p[i + k] & 0xc0) != 0x80) {
                return (size_t) -1;
            }
            cp = (cp << 6) | (p[i + k] & 0x3f);
        }
        if ((need == 2 && (cp < 0x800 || (cp >= 0xd800 && cp <= 0xdfff)))
            || (need == 3 && (cp < 0x10000 || cp > 0x10ffff)))
        {
            return (size_t) -1;
        }
        i += need + 1;
        n++;
    }
    return n;
}


/* 1 = present, 0 = absent or null; adds "is required" when needed */
static int
member(json_t *obj, const char *field, int required, json_t **val,
       enc_validation_t *v, int *rc)
{
    json_t  *m = NULL;

    *rc = 0;
    if (obj != NULL && json_is_object(obj)) {
        m = json_object_get(obj, field);
    }
    if (m == NULL || json_is_null(m)) {
        if (required) {
            enc_validation_add(v, field, "is required");
            *rc = -1;
        }
        return 0;
    }
    *val = m;
    return 1;
}


int
enc_json_get_str(json_t *obj, const char *field, int required,
                 size_t min_chars, size_t max_chars,
                 const char **out, enc_validation_t *v)
{
    int      rc;
    size_t   n;
    json_t  *m;

    if (!member(obj, field, required, &m, v, &rc)) {
        return rc;
    }
    if (!json_is_string(m)) {
        enc_validation_add(v, field, "must be a string");
        return -1;
    }
    n = enc_utf8_chars(json_string_value(m), json_string_length(m));
    if (n == (size_t) -1) {
        enc_validation_add(v, field, "must be valid UTF-8 without NUL");
        return -1;
    }
    if (n < min_chars || n > max_chars) {
        if (min_chars == max_chars) {
            enc_validation_add(v, field, "must be %zu characters", min_chars);
        } else if (min_chars == 0) {
            enc_validation_add(v, field, "must be at most %zu characters",
                               max_chars);
        } else {
            enc_validation_add(v, field, "must be %zu to %zu characters",
                               min_chars, max_chars);
        }
        return -1;
    }
    *out = json_string_value(m);
    return 0;
}


int
enc_json_get_int(json_t *obj, const char *field, int required,
                 long long min, long long max, long long *out,
                 enc_validation_t *v)
{
    int          rc;
    json_t      *m;
    json_int_t   n;

    if (!member(obj, field, required, &m, v, &rc)) {
        return rc;
    }
    if (!json_is_integer(m)) {
        enc_validation_add(v, field, "must be an integer");
        return -1;
    }
    n = json_integer_value(m);
    if (n < min || n > max) {
        enc_validation_add(v, field, "must be between %lld and %lld",
                           min, max);
        return -1;
    }
    *out = n;
    return 0;
}


int
enc_json_get_bool(json_t *obj, const char *field, int required,
                  int *out, enc_validation_t *v)
{
    int      rc;
    json_t  *m;

    if (!member(obj, field, required, &m, v, &rc)) {
        return rc;
    }
    if (!json_is_boolean(m)) {
        enc_validation_add(v, field, "must be a boolean");
        return -1;
    }
    *out = json_is_true(m);
    return 0;
}


int
enc_json_get_array(json_t *obj, const char *field, int required,
                   size_t min_items, size_t max_items, json_t **out,
                   enc_validation_t *v)
{
    int      rc;
    size_t   n;
    json_t  *m;

    if (!member(obj, field, required, &m, v, &rc)) {
        return rc;
    }
    if (!json_is_array(m)) {
        enc_validation_add(v, field, "must be an array");
        return -1;
    }
    n = json_array_size(m);
    if (n < min_items || n > max_items) {
        enc_validation_add(v, field, "must have %zu to %zu items",
                           min_items, max_items);
        return -1;
    }
    *out = m;
    return 0;
}


/* ---- serialiser ----------------------------------------------------------
 *
 * json_dumps() costs about 85 instructions per byte of output in jansson
 * 2.14: a callback per run of characters, a UTF-8 decode per character, and
 * per object or array a "%p" key formatted, inserted into and removed from
 * a hashtable (its loop check).  A page of 20 users spent more in it than
 * in everything else the worker does.  This writes the same bytes into one
 * growing buffer; nesting deeper than ENC_JSON_DUMP_DEPTH (which a cycle
 * reaches) fails instead of the loop check.
 */

typedef struct {
    char    *p;
    size_t   len;
    size_t   cap;
} jbuf_t;


/* room for n more bytes and a NUL */
static inline int
jb_reserve(jbuf_t *b, size_t n)
{
    size_t   cap;
    char    *np;

    if (b->cap - b->len > n) {
        return 0;                      /* room for n and the NUL */
    }
    cap = b->cap;
    while (cap - b->len <= n) {
        if (cap > ((size_t) -1) / 2) {
            return -1;
        }
        cap *= 2;
    }
    np = realloc(b->p, cap);
    if (np == NULL) {
        return -1;
    }
    b->p = np;
    b->cap = cap;
    return 0;
}


static inline int
jb_put(jbuf_t *b, const void *s, size_t n)
{
    if (jb_reserve(b, n) != 0) {
        return -1;
    }
    memcpy(b->p + b->len, s, n);
    b->len += n;
    return 0;
}


/* length of the valid UTF-8 sequence (2 to 4 bytes) at s, 0 if invalid:
   what jansson's dump refuses (overlong, surrogates, past U+10FFFF) */
static size_t
utf8_seq(const unsigned char *s, size_t avail)
{
    size_t         need, k;
    unsigned long  cp;

    if (s[0] >= 0xc2 && s[0] <= 0xdf) {
        need = 1;
        cp = s[0] & 0x1f;
    } else if (s[0] >= 0xe0 && s[0] <= 0xef) {
        need = 2;
        cp = s[0] & 0x0f;
    } else if (s[0] >= 0xf0 && s[0] <= 0xf4) {
        need = 3;
        cp = s[0] & 0x07;
    } else {
        return 0;
    }
    if (avail <= need) {
        return 0;
    }
    for (k = 1; k <= need; k++) {
        if ((s[k] & 0xc0) != 0x80) {
            return 0;
        }
        cp = (cp << 6) | (s[k] & 0x3f);
    }
    if ((need == 2 && (cp < 0x800 || (cp >= 0xd800 && cp <= 0xdfff)))
        || (need == 3 && (cp < 0x10000 || cp > 0x10ffff)))
    {
        return 0;
    }
    return need + 1;
}


/* bytes a string cannot copy as they are: 1 = escaped, 2 = the start of
   a UTF-8 sequence to validate */
static const unsigned char  special[256] = {
    [0x00 ... 0x1f] = 1, ['"'] = 1, ['\\'] = 1, [0x80 ... 0xff] = 2
};


/* a JSON string: the escapes jansson writes (\uXXXX in upper case for the
   other control characters), UTF-8 as is */
static int
dump_string(jbuf_t *b, const char *str, size_t n)
{
    size_t                i = 0, run, k;
    unsigned char         c;
    char                 *e;
    const unsigned char  *s = (const unsigned char *) str;
    static const char     hex[] = "0123456789ABCDEF";

    /* room for the string without escapes and its quotes */
    if (jb_reserve(b, n + 2) != 0) {
        return -1;
    }
    b->p[b->len++] = '"';
    while (i < n) {
        run = i;
        while (i < n) {
            c = s[i];
            if (special[c] == 0) {
                i++;
            } else if (special[c] == 2) {
                k = utf8_seq(s + i, n - i);
                if (k == 0) {
                    return -1;
                }
                i += k;
            } else {
                break;
            }
        }
        if (i > run) {
            memcpy(b->p + b->len, s + run, i - run);
            b->len += i - run;
        }
        if (i == n) {
            break;
        }
        /* an escape: up to 6 bytes, and still room for the rest */
        if (jb_reserve(b, 6 + (n - i) + 1) != 0) {
            return -1;
        }
        c = s[i++];
        e = b->p + b->len;
        e[0] = '\\';
        switch (c) {
        case '"':  e[1] = '"';  k = 2; break;
        case '\\': e[1] = '\\'; k = 2; break;
        case '\b': e[1] = 'b';  k = 2; break;
        case '\f': e[1] = 'f';  k = 2; break;
        case '\n': e[1] = 'n';  k = 2; break;
        case '\r': e[1] = 'r';  k = 2; break;
        case '\t': e[1] = 't';  k = 2; break;
        default:
            e[1] = 'u';
            e[2] = '0';
            e[3] = '0';
            e[4] = hex[c >> 4];
            e[5] = hex[c & 0xf];
            k = 6;
            break;
        }
        b->len += k;
    }
    b->p[b->len++] = '"';
    return 0;
}


static int
dump_value(jbuf_t *b, const json_t *v, int depth)
{
    int          n;
    char         num[32], *real;
    size_t       i, size;
    void        *iter;
    const char  *key;

    if (v == NULL || depth > ENC_JSON_DUMP_DEPTH) {
        return -1;
    }
    switch (json_typeof(v)) {
    case JSON_OBJECT:
        if (jb_put(b, "{", 1) != 0) {
            return -1;
        }
        for (iter = json_object_iter((json_t *) v), i = 0; iter != NULL;
             iter = json_object_iter_next((json_t *) v, iter), i++)
        {
            key = json_object_iter_key(iter);
            if ((i > 0 && jb_put(b, ",", 1) != 0)
                || dump_string(b, key, json_object_iter_key_len(iter)) != 0
                || jb_put(b, ":", 1) != 0
                || dump_value(b, json_object_iter_value(iter), depth + 1)
                   != 0)
            {
                return -1;
            }
        }
        return jb_put(b, "}", 1);

    case JSON_ARRAY:
        if (jb_put(b, "[", 1) != 0) {
            return -1;
        }
        size = json_array_size(v);
        for (i = 0; i < size; i++) {
            if ((i > 0 && jb_put(b, ",", 1) != 0)
                || dump_value(b, json_array_get(v, i), depth + 1) != 0)
            {
                return -1;
            }
        }
        return jb_put(b, "]", 1);

    case JSON_STRING:
        return dump_string(b, json_string_value(v), json_string_length(v));

    case JSON_INTEGER:
        n = snprintf(num, sizeof(num), "%" JSON_INTEGER_FORMAT,
                     json_integer_value(v));
        return n > 0 && (size_t) n < sizeof(num) ? jb_put(b, num, (size_t) n)
                                                 : -1;

    case JSON_REAL:
        /* rare in answers: jansson's own formatting, whatever it is */
        real = json_dumps(v, JSON_ENCODE_ANY | JSON_COMPACT);
        if (real == NULL) {
            return -1;
        }
        n = jb_put(b, real, strlen(real));
        free(real);
        return n;

    case JSON_TRUE:
        return jb_put(b, "true", 4);
    case JSON_FALSE:
        return jb_put(b, "false", 5);
    case JSON_NULL:
        return jb_put(b, "null", 4);
    }
    return -1;
}


char *
enc_json_dumps(const json_t *v, size_t *len)
{
    jbuf_t  b;

    if (!json_is_object(v) && !json_is_array(v)) {
        return NULL;
    }
    b.len = 0;
    b.cap = 1024;
    b.p = malloc(b.cap);
    if (b.p == NULL) {
        return NULL;
    }
    if (dump_value(&b, v, 0) != 0) {
        free(b.p);
        return NULL;
    }
    b.p[b.len] = '\0';
    if (len != NULL) {
        *len = b.len;
    }
    return b.p;
}


/* ---- a JSON text written piece by piece ------------------------------------ */

void
enc_jw_init(enc_jw_t *w)
{
    w->len = 0;
    w->cap = 1024;
    w->p = malloc(w->cap);
    w->failed = w->p == NULL;
}


void
enc_jw_raw(enc_jw_t *w, const char *s, size_t n)
{
    jbuf_t  b = { w->p, w->len, w->cap };

    if (w->failed) {
        return;
    }
    w->failed = jb_put(&b, s, n) != 0;
    w->p = b.p;
    w->len = b.len;
    w->cap = b.cap;
}


void
enc_jw_string(enc_jw_t *w, const char *s, size_t n)
{
    jbuf_t  b = { w->p, w->len, w->cap };

    if (w->failed) {
        return;
    }
    w->failed = dump_string(&b, s, n) != 0;
    w->p = b.p;
    w->len = b.len;
    w->cap = b.cap;
}


char *
enc_jw_finish(enc_jw_t *w, size_t *len)
{
    if (w->failed) {
        free(w->p);
        w->p = NULL;
        return NULL;
    }
    w->p[w->len] = '\0';
    if (len != NULL) {
        *len = w->len;
    }
    return w->p;
}
