/*
 * json: problem+json, validation, getters.  See json.h.
 */
#include <stdarg.h>
#include <stdio.h>
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
