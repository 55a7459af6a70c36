/*
 * Encore: the route table of the route module, nginx-independent.
 *
 * Routes (METHOD + path template with {param} segments) are added at
 * configuration time into a segment trie; encore_route_compile() then gives
 * every node with more than four literal children a hash of them (fewer are
 * compared in turn, length first), so matching costs one hash probe or at
 * most four comparisons per path segment whatever the number of routes.  A
 * literal segment beats a {param} segment; when the literal branch leads to
 * no route the matcher backtracks to the parameter, so each trie node is
 * visited at most once per match.  Nothing here allocates per match or
 * knows about nginx.
 */

#ifndef ENCORE_ROUTE_H
#define ENCORE_ROUTE_H


#include <stddef.h>


/* methods, as bits of a set */
#define ENCORE_ROUTE_GET           0x01
#define ENCORE_ROUTE_HEAD          0x02
#define ENCORE_ROUTE_POST          0x04
#define ENCORE_ROUTE_PUT           0x08
#define ENCORE_ROUTE_PATCH         0x10
#define ENCORE_ROUTE_DELETE        0x20
#define ENCORE_ROUTE_OPTIONS       0x40
#define ENCORE_ROUTE_NMETHODS      7

#define ENCORE_ROUTE_MAX_PARAMS    16
#define ENCORE_ROUTE_MAX_DEPTH     32
#define ENCORE_ROUTE_MAX_NAME      64

/* "GET, HEAD, POST, PUT, PATCH, DELETE, OPTIONS" */
#define ENCORE_ROUTE_ALLOW_LEN     44

/* encore_route_add() */
#define ENCORE_ROUTE_OK            0
#define ENCORE_ROUTE_EINVAL        1    /* bad method or template */
#define ENCORE_ROUTE_EDUP          2    /* same method and path */
#define ENCORE_ROUTE_ECONFLICT     3    /* same path, other param names */
#define ENCORE_ROUTE_ENOMEM        4

/* encore_route_match() */
#define ENCORE_ROUTE_FOUND         0
#define ENCORE_ROUTE_NOT_FOUND     1    /* no route has this path */
#define ENCORE_ROUTE_NOT_ALLOWED   2    /* the path exists, not the method */
#define ENCORE_ROUTE_BAD_PATH      3    /* invalid percent-encoding, NUL */
#define ENCORE_ROUTE_NOT_CANONICAL 4    /* . .. // or too deep (raw) */


typedef struct encore_route_table_s  encore_route_table_t;


typedef struct {
    void                *data;       /* the route's data (FOUND) */
    unsigned             allowed;    /* the path's methods (FOUND, NOT_ALLOWED) */
    const char          *allow;      /* the same as an Allow header value */
    size_t               allow_len;
    size_t               nparams;
    const char *const   *names;      /* parameter names, NUL-terminated */
    const char          *values[ENCORE_ROUTE_MAX_PARAMS];
    size_t               value_lens[ENCORE_ROUTE_MAX_PARAMS];
} encore_route_match_t;


/* The caller owns the table and frees it with encore_route_table_free(). */
encore_route_table_t *encore_route_table_create(void);
void encore_route_table_free(encore_route_table_t *t);

/* ENCORE_ROUTE_GET ... for a method name (case-sensitive), 0 if unknown. */
unsigned encore_route_method(const char *name, size_t len);

/*
 * Add a route: method is one of GET, POST, PUT, PATCH, DELETE (HEAD is
 * implied by GET, OPTIONS is answered by the table).  A template starts
 * with "/", its segments are literals (RFC 3986 pchar without "%", not
 * "." or "..") or "{name}" with name [a-z_][a-z0-9_]*; an empty segment
 * only at the end (a trailing slash is a different path).  data is not
 * copied.  On failure *err is a static message and, for EDUP and
 * ECONFLICT, *other the data of the route in the way.  Not after compile.
 */
int encore_route_add(encore_route_table_t *t, unsigned method,
    const char *tpl, size_t len, void *data, void **other, const char **err);

/* Build the lookup hashes and Allow values: ENCORE_ROUTE_OK or ENOMEM. */
int encore_route_compile(encore_route_table_t *t);

size_t encore_route_count(const encore_route_table_t *t);

/*
 * Match a path (no query string).  decode = 0: path is already decoded and
 * normalised (nginx's $uri); segments are split at "/".  decode = 1: path is
 * raw; it is split at "/" first and each segment is percent-decoded, so an
 * encoded "/" stays inside its segment; a segment that decodes to "." or
 * "..", an empty segment before the last, or more segments than any route
 * has (dot segments further on may shorten it) give NOT_CANONICAL (match
 * the normalised path instead).  scratch holds decoded segments and must have
 * len bytes; parameter values point into path or scratch.  HEAD matches
 * GET routes.  Returns ENCORE_ROUTE_FOUND ... ENCORE_ROUTE_NOT_CANONICAL.
 */
int encore_route_match(const encore_route_table_t *t, unsigned method,
    const char *path, size_t len, int decode, char *scratch,
    encore_route_match_t *m);


#endif /* ENCORE_ROUTE_H */
