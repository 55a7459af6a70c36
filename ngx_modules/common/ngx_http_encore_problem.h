
/*
 * Copyright (C) Encore
 *
 * problem+json (RFC 9457) answers of the edge: the one writer that the jwt,
 * ops and aggregate modules and the error pages (encore_problem) share, so
 * that every error a client sees has the same shape, and one table holds
 * every title and default detail.
 */


#ifndef _NGX_HTTP_ENCORE_PROBLEM_H_INCLUDED_
#define _NGX_HTTP_ENCORE_PROBLEM_H_INCLUDED_


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>


#define NGX_HTTP_ENCORE_PROBLEM_TYPE  "application/problem+json"


/*
 * Sends status with the body
 *
 *     {"type":"about:blank","title":<reason phrase>,"status":N,
 *      "detail":<detail>}\n
 *
 * as Content-Type application/problem+json (the header only for HEAD),
 * after discarding the request body.  detail is JSON-escaped (invalid
 * UTF-8 becomes U+FFFD); NULL gives the status's default detail.  Headers
 * already in r->headers_out.headers (Allow, WWW-Authenticate, Retry-After)
 * are kept.  Returns what a content handler returns: the rc of
 * ngx_http_output_filter(), of ngx_http_send_header() for a header-only
 * answer, or an error status when nothing was sent.
 */
ngx_int_t ngx_http_encore_problem_send(ngx_http_request_t *r,
    ngx_uint_t status, const char *detail);

/*
 * The same with a counted detail (NULL: the default) and extra members:
 * members, when not NULL and not empty, is JSON object members written
 * after "detail" as they are, e.g. "errors":[{"part":"post","status":504}]
 * (the caller makes them valid JSON).
 */
ngx_int_t ngx_http_encore_problem_send_members(ngx_http_request_t *r,
    ngx_uint_t status, ngx_str_t *detail, ngx_str_t *members);

/*
 * The body alone, in a temporary buffer from pool (last_buf and
 * last_in_chain unset), for callers that send it themselves; NULL when
 * out of memory.
 */
ngx_buf_t *ngx_http_encore_problem_create_buf(ngx_pool_t *pool,
    ngx_uint_t status, ngx_str_t *detail, ngx_str_t *members);

/* the reason phrase and the default detail of a status; never NULL */
ngx_str_t *ngx_http_encore_problem_title(ngx_uint_t status);
ngx_str_t *ngx_http_encore_problem_detail(ngx_uint_t status);

/*
 * JSON string contents for len bytes of src: '"', '\\' and controls
 * escaped, each byte of invalid UTF-8 as \ufffd.  With dst NULL returns
 * the length the text needs, else writes it and returns the end.
 */
size_t ngx_http_encore_problem_escape_len(u_char *src, size_t len);
u_char *ngx_http_encore_problem_escape(u_char *dst, u_char *src, size_t len);


#endif /* _NGX_HTTP_ENCORE_PROBLEM_H_INCLUDED_ */
