/*
 * route: the route table compiled into segment arrays, and the matcher.
 * See enc_router_* in http.h.
 *
 * Tables are small (tens of routes), so matching is a linear scan that
 * compares segments; no allocation per request.
 */
#include <stdlib.h>
#include <string.h>

#include "http.h"
#include "log.h"


typedef struct {
    char  *text;           /* literal, or the param name (owned) */
    int    is_param;
} seg_t;

typedef struct {
    const enc_route_t  *route;
    seg_t               segs[ENC_HTTP_SEGMENTS_MAX];
    size_t              nsegs;
} croute_t;

struct enc_router_s {
    croute_t  *routes;
    size_t     n;
};


void
enc_router_free(enc_router_t *rt)
{
    size_t  i, s;

    if (rt == NULL) {
        return;
    }
    for (i = 0; i < rt->n; i++) {
        for (s = 0; s < rt->routes[i].nsegs; s++) {
            free(rt->routes[i].segs[s].text);
        }
    }
    free(rt->routes);
    free(rt);
}


/* splits "/a/b" in place into segments; "/" has none.  -1 if the path
   does not start with '/' or has too many segments */
static int
split(char *p, char **segs, size_t *n)
{
    *n = 0;
    if (p[0] != '/') {
        return -1;
    }
    if (p[1] == '\0') {
        return 0;
    }
    p++;
    for (;;) {
        if (*n == ENC_HTTP_SEGMENTS_MAX) {
            return -1;
        }
        segs[(*n)++] = p;
        p = strchr(p, '/');
        if (p == NULL) {
            return 0;
        }
        *p++ = '\0';
    }
}


static int
compile(croute_t *cr, const enc_route_t *r)
{
    int      rc = -1;
    char    *copy, *segs[ENC_HTTP_SEGMENTS_MAX];
    size_t   i, n, len, nparams = 0;

    cr->route = r;
    copy = strdup(r->path);
    if (copy == NULL) {
        return -1;
    }
    if (split(copy, segs, &n) != 0) {
        enc_log_error("http: invalid route template \"%s\"", r->path);
        goto failed;
    }
    for (i = 0; i < n; i++) {
        len = strlen(segs[i]);
        if (len >= 2 && segs[i][0] == '{' && segs[i][len - 1] == '}') {
            if (len == 2 || ++nparams > ENC_HTTP_PARAMS_MAX) {
                enc_log_error("http: bad parameter in route \"%s\"", r->path);
                goto failed;
            }
            segs[i][len - 1] = '\0';
            cr->segs[i].is_param = 1;
            cr->segs[i].text = strdup(segs[i] + 1);
        } else {
            if (strchr(segs[i], '{') != NULL || strchr(segs[i], '}') != NULL) {
                enc_log_error("http: a {param} must be a whole segment in"
                              " route \"%s\"", r->path);
                goto failed;
            }
            cr->segs[i].text = strdup(segs[i]);
        }
        if (cr->segs[i].text == NULL) {
            goto failed;
        }
        cr->nsegs = i + 1;
    }
    rc = 0;

failed:
    free(copy);
    return rc;
}


enc_router_t *
enc_router_new(const enc_route_t *routes)
{
    size_t         n = 0, i;
    enc_router_t  *rt;

    while (routes != NULL && routes[n].method != NULL) {
        if (routes[n].path == NULL || routes[n].handler == NULL) {
            enc_log_error("http: route %zu lacks a path or handler", n);
            return NULL;
        }
        n++;
    }
    rt = calloc(1, sizeof(*rt));
    if (rt == NULL) {
        return NULL;
    }
    rt->routes = calloc(n ? n : 1, sizeof(croute_t));
    if (rt->routes == NULL) {
        free(rt);
        return NULL;
    }
    for (i = 0; i < n; i++) {
        rt->n = i + 1;     /* so that free releases what compile made */
        if (compile(&rt->routes[i], &routes[i]) != 0) {
            enc_router_free(rt);
            return NULL;
        }
    }
    return rt;
}


static int
matches(const croute_t *cr, char **segs, size_t n)
{
    size_t  i;

    if (cr->nsegs != n) {
        return 0;
    }
    for (i = 0; i < n; i++) {
        if (cr->segs[i].is_param) {
            if (segs[i][0] == '\0') {
                return 0;            /* "{id}" never matches an empty segment */
            }
        } else if (strcmp(cr->segs[i].text, segs[i]) != 0) {
            return 0;
        }
    }
    return 1;
}


/* > 0 when a is more specific than b */
static int
specificity(const croute_t *a, const croute_t *b)
{
    size_t  i;

    for (i = 0; i < a->nsegs && i < b->nsegs; i++) {
        if (a->segs[i].is_param != b->segs[i].is_param) {
            return a->segs[i].is_param ? -1 : 1;
        }
    }
    return 0;
}


static int
method_ok(const char *route_method, const char *method)
{
    return strcmp(route_method, method) == 0
           || (strcmp(method, "HEAD") == 0
               && strcmp(route_method, "GET") == 0);
}


static void
allow_add(char *allow, size_t allowlen, const char *m)
{
    size_t       len, mlen;
    const char  *p;

    mlen = strlen(m);
    for (p = allow; (p = strstr(p, m)) != NULL; p += mlen) {
        if ((p == allow || p[-1] == ' ')
            && (p[mlen] == ',' || p[mlen] == '\0'))
        {
            return;                              /* already listed */
        }
    }
    len = strlen(allow);
    if (len + mlen + 3 > allowlen) {
        return;
    }
    if (len > 0) {
        memcpy(allow + len, ", ", 2);
        len += 2;
    }
    memcpy(allow + len, m, mlen + 1);
}


int
enc_router_match(const enc_router_t *rt, const char *method,
                 const char *path, char *buf, size_t buflen,
                 enc_param_t *params, size_t *nparams,
                 char *allow, size_t allowlen)
{
    char            *segs[ENC_HTTP_SEGMENTS_MAX];
    size_t           n, i, s;
    int              any = 0;
    const croute_t  *best = NULL, *cr;

    *nparams = 0;
    if (allowlen > 0) {
        allow[0] = '\0';
    }
    if (strlen(path) >= buflen) {
        return -1;
    }
    strcpy(buf, path);
    if (split(buf, segs, &n) != 0) {
        return -1;
    }

    for (i = 0; i < rt->n; i++) {
        cr = &rt->routes[i];
        if (!matches(cr, segs, n)) {
            continue;
        }
        any = 1;
        if (method_ok(cr->route->method, method)
            && (best == NULL || specificity(cr, best) > 0))
        {
            best = cr;
        }
    }

    if (best == NULL) {
        if (!any) {
            return -1;
        }
        if (allowlen > 0) {
            for (i = 0; i < rt->n; i++) {
                cr = &rt->routes[i];
                if (matches(cr, segs, n)) {
                    allow_add(allow, allowlen, cr->route->method);
                    if (strcmp(cr->route->method, "GET") == 0) {
                        allow_add(allow, allowlen, "HEAD");
                    }
                }
            }
            allow_add(allow, allowlen, "OPTIONS");
        }
        return -2;
    }

    for (s = 0; s < best->nsegs; s++) {
        if (best->segs[s].is_param) {
            params[*nparams].name = best->segs[s].text;
            params[*nparams].value = segs[s];
            (*nparams)++;
        }
    }
    return (int) (best - rt->routes);
}
