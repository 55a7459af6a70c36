
/*
 * Copyright (C) Encore
 *
 * The problem+json writer of the edge (ngx_http_encore_problem.h).  Every
 * title and default detail is in the table below: the error pages
 * (encore_problem), the jwt, ops and aggregate modules and the safety-net
 * filter all take theirs from it.
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_http_encore_problem.h"


typedef struct {
    ngx_uint_t                  status;
    ngx_str_t                   title;
    ngx_str_t                   detail;
} ngx_http_encore_problem_status_t;


static u_char *ngx_http_encore_problem_escape_text(u_char *dst, u_char *src,
    size_t len, size_t *size);
static size_t ngx_http_encore_problem_utf8(u_char *p, u_char *last);


/*
 * Titles are RFC 9110's reason phrases (RFC 9457 4.2: with "about:blank"
 * the title is the status's phrase); details say what the edge means by
 * the status, for whoever answered it without one of its own.
 */
static ngx_http_encore_problem_status_t  ngx_http_encore_problem_statuses[] = {

    { 400, ngx_string("Bad Request"),
      ngx_string("the request could not be parsed") },

    { 401, ngx_string("Unauthorized"),
      ngx_string("this route needs an access token") },

    /* also `deny` (ops-access.conf): the detail names no role */
    { 403, ngx_string("Forbidden"),
      ngx_string("the caller is not allowed to access this resource") },

    { 404, ngx_string("Not Found"),
      ngx_string("no such resource") },

    { 405, ngx_string("Method Not Allowed"),
      ngx_string("the method is not allowed on this resource") },

    { 406, ngx_string("Not Acceptable"),
      ngx_string("the resource has no representation the request accepts") },

    { 408, ngx_string("Request Timeout"),
      ngx_string("the request was not received in time") },

    { 409, ngx_string("Conflict"),
      ngx_string("the request conflicts with the state of the resource") },

    { 410, ngx_string("Gone"),
      ngx_string("the resource is gone") },

    { 411, ngx_string("Length Required"),
      ngx_string("the request needs a Content-Length") },

    { 412, ngx_string("Precondition Failed"),
      ngx_string("a precondition of the request does not hold") },

    { 413, ngx_string("Payload Too Large"),
      ngx_string("the request body is larger than this route accepts") },

    { 414, ngx_string("URI Too Long"),
      ngx_string("the request URI is too long") },

    { 415, ngx_string("Unsupported Media Type"),
      ngx_string("the request body must be JSON, sent without a "
                 "Content-Encoding") },

    { 416, ngx_string("Range Not Satisfiable"),
      ngx_string("the requested range is outside the resource") },

    { 422, ngx_string("Unprocessable Content"),
      ngx_string("the request body has invalid values") },

    { 424, ngx_string("Failed Dependency"),
      ngx_string("a part this answer depends on failed") },

    { 428, ngx_string("Precondition Required"),
      ngx_string("the request must be conditional") },

    { 429, ngx_string("Too Many Requests"),
      ngx_string("rate limit exceeded; retry after the time in "
                 "Retry-After") },

    { 431, ngx_string("Request Header Fields Too Large"),
      ngx_string("a request header or the cookies are too large") },

    { 500, ngx_string("Internal Server Error"),
      ngx_string("the edge failed; see the nginx error log") },

    { 501, ngx_string("Not Implemented"),
      ngx_string("the request uses a feature the edge does not implement "
                 "(a Transfer-Encoding other than chunked)") },

    { 502, ngx_string("Bad Gateway"),
      ngx_string("the worker for this route is not answering") },

    { 503, ngx_string("Service Unavailable"),
      ngx_string("the service is temporarily unavailable") },

    { 504, ngx_string("Gateway Timeout"),
      ngx_string("the worker for this route did not answer in time") },

    { 505, ngx_string("HTTP Version Not Supported"),
      ngx_string("use HTTP/1.0 or HTTP/1.1") },

    { 0, ngx_null_string, ngx_null_string }
};


/* a status the table does not name: by its class */
static ngx_http_encore_problem_status_t  ngx_http_encore_problem_client = {
    0, ngx_string("Client Error"), ngx_string("the request failed")
};

static ngx_http_encore_problem_status_t  ngx_http_encore_problem_server = {
    0, ngx_string("Server Error"), ngx_string("the server failed")
};


static ngx_http_encore_problem_status_t *
ngx_http_encore_problem_lookup(ngx_uint_t status)
{
    ngx_http_encore_problem_status_t  *s;

    for (s = ngx_http_encore_problem_statuses; s->status; s++) {
        if (s->status == status) {
            return s;
        }
    }

    return (status >= 500) ? &ngx_http_encore_problem_server
                           : &ngx_http_encore_problem_client;
}


ngx_str_t *
ngx_http_encore_problem_title(ngx_uint_t status)
{
    return &ngx_http_encore_problem_lookup(status)->title;
}


ngx_str_t *
ngx_http_encore_problem_detail(ngx_uint_t status)
{
    return &ngx_http_encore_problem_lookup(status)->detail;
}


ngx_int_t
ngx_http_encore_problem_send(ngx_http_request_t *r, ngx_uint_t status,
    const char *detail)
{
    ngx_str_t  text;

    if (detail == NULL) {
        return ngx_http_encore_problem_send_members(r, status, NULL, NULL);
    }

    text.data = (u_char *) detail;
    text.len = ngx_strlen(detail);

    return ngx_http_encore_problem_send_members(r, status, &text, NULL);
}


ngx_int_t
ngx_http_encore_problem_send_members(ngx_http_request_t *r,
    ngx_uint_t status, ngx_str_t *detail, ngx_str_t *members)
{
    ngx_int_t     rc;
    ngx_buf_t    *b;
    ngx_chain_t   out;

    rc = ngx_http_discard_request_body(r);

    if (rc != NGX_OK) {
        return rc;
    }

    b = ngx_http_encore_problem_create_buf(r->pool, status, detail, members);
    if (b == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    ngx_http_clear_content_length(r);

    r->headers_out.status = status;
    r->headers_out.content_length_n = b->last - b->pos;

    ngx_str_set(&r->headers_out.content_type, NGX_HTTP_ENCORE_PROBLEM_TYPE);
    r->headers_out.content_type_len = r->headers_out.content_type.len;
    r->headers_out.content_type_lowcase = NULL;
    r->headers_out.charset.len = 0;

    ngx_http_clear_last_modified(r);
    ngx_http_clear_etag(r);

    rc = ngx_http_send_header(r);

    if (rc == NGX_ERROR || rc > NGX_OK || r->header_only) {
        return rc;
    }

    b->last_buf = (r == r->main) ? 1 : 0;
    b->last_in_chain = 1;

    out.buf = b;
    out.next = NULL;

    return ngx_http_output_filter(r, &out);
}


ngx_buf_t *
ngx_http_encore_problem_create_buf(ngx_pool_t *pool, ngx_uint_t status,
    ngx_str_t *detail, ngx_str_t *members)
{
    size_t                             len;
    u_char                            *p;
    ngx_buf_t                         *b;
    ngx_http_encore_problem_status_t  *s;

    s = ngx_http_encore_problem_lookup(status);

    if (detail == NULL) {
        detail = &s->detail;
    }

    len = sizeof("{\"type\":\"about:blank\",\"title\":\"\",\"status\":,"
                 "\"detail\":\"\"}\n") - 1
          + ngx_http_encore_problem_escape_len(s->title.data, s->title.len)
          + NGX_INT_T_LEN
          + ngx_http_encore_problem_escape_len(detail->data, detail->len);

    if (members && members->len) {
        len += sizeof(",") - 1 + members->len;
    }

    b = ngx_create_temp_buf(pool, len);
    if (b == NULL) {
        return NULL;
    }

    p = ngx_cpymem(b->last, "{\"type\":\"about:blank\",\"title\":\"",
                   sizeof("{\"type\":\"about:blank\",\"title\":\"") - 1);
    p = ngx_http_encore_problem_escape(p, s->title.data, s->title.len);
    p = ngx_sprintf(p, "\",\"status\":%ui,\"detail\":\"", status);
    p = ngx_http_encore_problem_escape(p, detail->data, detail->len);
    *p++ = '"';

    if (members && members->len) {
        *p++ = ',';
        p = ngx_cpymem(p, members->data, members->len);
    }

    *p++ = '}';
    *p++ = LF;

    b->last = p;

    return b;
}


size_t
ngx_http_encore_problem_escape_len(u_char *src, size_t len)
{
    size_t  size;

    (void) ngx_http_encore_problem_escape_text(NULL, src, len, &size);

    return size;
}


u_char *
ngx_http_encore_problem_escape(u_char *dst, u_char *src, size_t len)
{
    size_t  size;

    return ngx_http_encore_problem_escape_text(dst, src, len, &size);
}


/*
 * One pass that either counts (dst NULL) or writes, so that the length
 * computed and the bytes written never disagree.  ngx_escape_json() passes
 * bytes >= 0x80 through: a detail with invalid UTF-8 (a worker's or a
 * client's text) would make the document invalid JSON.
 */
static u_char *
ngx_http_encore_problem_escape_text(u_char *dst, u_char *src, size_t len,
    size_t *size)
{
    u_char   c, *last;
    size_t   n, out;

    static u_char  hex[] = "0123456789abcdef";

    last = src + len;
    out = 0;

    while (src < last) {
        c = *src;

        if (c >= 0x80) {
            n = ngx_http_encore_problem_utf8(src, last);

            if (n == 0) {
                /* U+FFFD REPLACEMENT CHARACTER for the invalid byte */
                if (dst) {
                    dst = ngx_cpymem(dst, "\\ufffd", 6);
                }

                out += 6;
                src++;
                continue;
            }

            if (dst) {
                dst = ngx_cpymem(dst, src, n);
            }

            out += n;
            src += n;
            continue;
        }

        if (c == '"' || c == '\\') {
            if (dst) {
                *dst++ = '\\';
                *dst++ = c;
            }

            out += 2;

        } else if (c < 0x20 || c == 0x7f) {
            if (dst) {
                dst = ngx_cpymem(dst, "\\u00", 4);
                *dst++ = hex[c >> 4];
                *dst++ = hex[c & 0xf];
            }

            out += 6;

        } else {
            if (dst) {
                *dst++ = c;
            }

            out++;
        }

        src++;
    }

    *size = out;

    return dst;
}


/*
 * The length of the well-formed UTF-8 sequence at p (RFC 3629: no
 * overlong forms, no surrogates, nothing above U+10FFFF), 0 if there is
 * none.
 */
static size_t
ngx_http_encore_problem_utf8(u_char *p, u_char *last)
{
    u_char  c, lo, hi;
    size_t  n, i;

    c = p[0];
    lo = 0x80;
    hi = 0xbf;

    if (c >= 0xc2 && c <= 0xdf) {
        n = 2;

    } else if (c >= 0xe0 && c <= 0xef) {
        n = 3;

        if (c == 0xe0) {
            lo = 0xa0;

        } else if (c == 0xed) {
            hi = 0x9f;
        }

    } else if (c >= 0xf0 && c <= 0xf4) {
        n = 4;

        if (c == 0xf0) {
            lo = 0x90;

        } else if (c == 0xf4) {
            hi = 0x8f;
        }

    } else {
        return 0;
    }

    if ((size_t) (last - p) < n) {
        return 0;
    }

    if (p[1] < lo || p[1] > hi) {
        return 0;
    }

    for (i = 2; i < n; i++) {
        if (p[i] < 0x80 || p[i] > 0xbf) {
            return 0;
        }
    }

    return n;
}
