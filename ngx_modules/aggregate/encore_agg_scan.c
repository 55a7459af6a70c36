/*
 * Encore aggregate: a validating JSON scanner that finds a member's bytes
 * without building a tree (encore_agg.h, encore_agg_scan()).
 *
 * A view made of parts that need no filtering is the parts' own bytes
 * spliced together: each part must be checked as JSON and its pick found,
 * but decoding it into jansson values and encoding them again was most of
 * a view's CPU at the edge (tests/bench/views/RESULTS.md).  It accepts
 * exactly what json_loadb(buf, len, 0, ...) accepts (tests/fuzz/
 * fuzz_agg_scan.c compares the two): RFC 8259 with an object or array at
 * the top, strings of valid UTF-8 without NUL, integers within 64 bits,
 * reals that do not overflow, and at most 2048 levels of nesting.
 */

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "encore_agg.h"


#define ENCORE_AGG_SCAN_MAX_DEPTH  2048     /* jansson's parser's limit */


typedef struct {
    const unsigned char  *base;
    const unsigned char  *p;
    const unsigned char  *end;

    /* the pick's members */
    encore_agg_str_t      segs[ENCORE_AGG_MAX_DEPTH];
    int                   nsegs;

    int                   escaped;     /* a name to compare had escapes */
    int                   found;
    size_t                found_start;
    size_t                found_end;
} encore_agg_scanner_t;


static void
encore_agg_scan_ws(encore_agg_scanner_t *s)
{
    while (s->p < s->end
           && (*s->p == ' ' || *s->p == '\t' || *s->p == '\n'
               || *s->p == '\r'))
    {
        s->p++;
    }
}


static int
encore_agg_hex4(const unsigned char *p, unsigned *v)
{
    unsigned  i, c, d;

    d = 0;

    for (i = 0; i < 4; i++) {
        c = p[i];

        if (c >= '0' && c <= '9') {
            c -= '0';

        } else if ((c | 0x20) >= 'a' && (c | 0x20) <= 'f') {
            c = (c | 0x20) - 'a' + 10;

        } else {
            return -1;
        }

        d = (d << 4) | c;
    }

    *v = d;

    return 0;
}


/* one UTF-8 sequence at s->p (its first byte is 0x80 or above) */
static int
encore_agg_scan_utf8(encore_agg_scanner_t *s)
{
    unsigned  c, n, i, cp, min;

    c = *s->p;

    if (c >= 0xc2 && c <= 0xdf) {
        n = 1; cp = c & 0x1f; min = 0x80;

    } else if (c >= 0xe0 && c <= 0xef) {
        n = 2; cp = c & 0x0f; min = 0x800;

    } else if (c >= 0xf0 && c <= 0xf4) {
        n = 3; cp = c & 0x07; min = 0x10000;

    } else {
        return -1;
    }

    if ((size_t) (s->end - s->p) <= n) {
        return -1;
    }

    for (i = 1; i <= n; i++) {
        if ((s->p[i] & 0xc0) != 0x80) {
            return -1;
        }

        cp = (cp << 6) | (s->p[i] & 0x3f);
    }

    if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) {
        return -1;
    }

    s->p += n + 1;

    return 0;
}


/*
 * A string at s->p (the opening quote).  *plain tells whether its bytes
 * are its text (no escape), so that a member name can be compared as is.
 */
static int
encore_agg_scan_string(encore_agg_scanner_t *s, int *plain)
{
    unsigned  c, u, lo;

    s->p++;
    *plain = 1;

    for ( ;; ) {
        if (s->p == s->end) {
            return -1;
        }

        c = *s->p;

        if (c == '"') {
            s->p++;
            return 0;
        }

        if (c < 0x20) {
            return -1;
        }

        if (c >= 0x80) {
            if (encore_agg_scan_utf8(s) != 0) {
                return -1;
            }

            continue;
        }

        if (c != '\\') {
            s->p++;
            continue;
        }

        *plain = 0;

        if (s->end - s->p < 2) {
            return -1;
        }

        c = s->p[1];

        if (c == '"' || c == '\\' || c == '/' || c == 'b' || c == 'f'
            || c == 'n' || c == 'r' || c == 't')
        {
            s->p += 2;
            continue;
        }

        if (c != 'u' || s->end - s->p < 6 || encore_agg_hex4(s->p + 2, &u))
        {
            return -1;
        }

        s->p += 6;

        if (u == 0) {
            /* jansson refuses NUL in strings unless JSON_ALLOW_NUL */
            return -1;
        }

        if (u >= 0xdc00 && u <= 0xdfff) {
            return -1;
        }

        if (u >= 0xd800 && u <= 0xdbff) {
            if (s->end - s->p < 6 || s->p[0] != '\\' || s->p[1] != 'u'
                || encore_agg_hex4(s->p + 2, &lo)
                || lo < 0xdc00 || lo > 0xdfff)
            {
                return -1;
            }

            s->p += 6;
        }
    }
}


/* a number, and whether jansson can hold it (int64, a finite double) */
static int
encore_agg_scan_number(encore_agg_scanner_t *s)
{
    char                  buf[64], *copy, *end;
    size_t                len;
    int                   real, rc;
    double                d;
    const unsigned char  *start;

    start = s->p;
    real = 0;

    if (s->p < s->end && *s->p == '-') {
        s->p++;
    }

    if (s->p == s->end) {
        return -1;
    }

    if (*s->p == '0') {
        s->p++;

    } else if (*s->p >= '1' && *s->p <= '9') {
        while (s->p < s->end && *s->p >= '0' && *s->p <= '9') {
            s->p++;
        }

    } else {
        return -1;
    }

    if (s->p < s->end && *s->p == '.') {
        real = 1;
        s->p++;

        if (s->p == s->end || *s->p < '0' || *s->p > '9') {
            return -1;
        }

        while (s->p < s->end && *s->p >= '0' && *s->p <= '9') {
            s->p++;
        }
    }

    if (s->p < s->end && (*s->p == 'e' || *s->p == 'E')) {
        real = 1;
        s->p++;

        if (s->p < s->end && (*s->p == '+' || *s->p == '-')) {
            s->p++;
        }

        if (s->p == s->end || *s->p < '0' || *s->p > '9') {
            return -1;
        }

        while (s->p < s->end && *s->p >= '0' && *s->p <= '9') {
            s->p++;
        }
    }

    len = s->p - start;

    /* short integers always fit: the common case costs no conversion */
    if (!real && len < 19) {
        return 0;
    }

    copy = buf;

    if (len >= sizeof(buf)) {
        copy = malloc(len + 1);
        if (copy == NULL) {
            return -1;
        }
    }

    memcpy(copy, start, len);
    copy[len] = '\0';

    rc = 0;
    errno = 0;

    if (!real) {
        (void) strtoll(copy, &end, 10);

        if (errno == ERANGE) {
            rc = -1;
        }

    } else {
        d = strtod(copy, &end);

        if (errno == ERANGE && (d > 1.0 || d < -1.0)) {
            /* overflow; an underflow to 0 is accepted, as by jansson */
            rc = -1;
        }
    }

    if (copy != buf) {
        free(copy);
    }

    return rc;
}


static int
encore_agg_scan_literal(encore_agg_scanner_t *s, const char *word, size_t n)
{
    if ((size_t) (s->end - s->p) < n || memcmp(s->p, word, n) != 0) {
        return -1;
    }

    s->p += n;

    return 0;
}


/*
 * The value at s->p, depth containers deep.  match is the number of the
 * pick's members matched by the members this value is in (-1: it is not
 * on the pick's way); a value that matches them all is the pick.  A later
 * duplicate member replaces an earlier one, as in jansson's objects.
 */
static int
encore_agg_scan_value(encore_agg_scanner_t *s, int depth, int match)
{
    int                   plain, child;
    size_t                start, name_len;
    const unsigned char  *name;

    encore_agg_scan_ws(s);

    if (s->p == s->end) {
        return -1;
    }

    start = s->p - s->base;

    switch (*s->p) {

    case '{':
        if (depth == ENCORE_AGG_SCAN_MAX_DEPTH) {
            return -1;
        }

        s->p++;
        encore_agg_scan_ws(s);

        if (s->p < s->end && *s->p == '}') {
            s->p++;
            break;
        }

        for ( ;; ) {
            encore_agg_scan_ws(s);

            if (s->p == s->end || *s->p != '"') {
                return -1;
            }

            name = s->p + 1;

            if (encore_agg_scan_string(s, &plain) != 0) {
                return -1;
            }

            name_len = s->p - 1 - name;

            encore_agg_scan_ws(s);

            if (s->p == s->end || *s->p != ':') {
                return -1;
            }

            s->p++;

            child = -1;

            if (match >= 0 && match < s->nsegs) {
                if (!plain) {
                    s->escaped = 1;

                } else if (name_len == s->segs[match].len
                           && memcmp(name, s->segs[match].data, name_len)
                              == 0)
                {
                    /* this member replaces an earlier one of its name */
                    s->found = 0;
                    child = match + 1;
                }
            }

            if (encore_agg_scan_value(s, depth + 1, child) != 0) {
                return -1;
            }

            encore_agg_scan_ws(s);

            if (s->p < s->end && *s->p == ',') {
                s->p++;
                continue;
            }

            if (s->p < s->end && *s->p == '}') {
                s->p++;
                break;
            }

            return -1;
        }

        break;

    case '[':
        if (depth == ENCORE_AGG_SCAN_MAX_DEPTH) {
            return -1;
        }

        s->p++;
        encore_agg_scan_ws(s);

        if (s->p < s->end && *s->p == ']') {
            s->p++;
            break;
        }

        for ( ;; ) {
            /* an array's items are never on the pick's way */
            if (encore_agg_scan_value(s, depth + 1, -1) != 0) {
                return -1;
            }

            encore_agg_scan_ws(s);

            if (s->p < s->end && *s->p == ',') {
                s->p++;
                continue;
            }

            if (s->p < s->end && *s->p == ']') {
                s->p++;
                break;
            }

            return -1;
        }

        break;

    case '"':
        if (encore_agg_scan_string(s, &plain) != 0) {
            return -1;
        }

        break;

    case 't':
        if (encore_agg_scan_literal(s, "true", 4) != 0) {
            return -1;
        }

        break;

    case 'f':
        if (encore_agg_scan_literal(s, "false", 5) != 0) {
            return -1;
        }

        break;

    case 'n':
        if (encore_agg_scan_literal(s, "null", 4) != 0) {
            return -1;
        }

        break;

    default:
        if (encore_agg_scan_number(s) != 0) {
            return -1;
        }

        break;
    }

    if (match >= 0 && match == s->nsegs) {
        s->found = 1;
        s->found_start = start;
        s->found_end = s->p - s->base;
    }

    return 0;
}


int
encore_agg_scan(const char *json, size_t len, const char *pick,
    size_t pick_len, size_t *start, size_t *end)
{
    size_t                i, seg;
    encore_agg_scanner_t  s;

    s.base = (const unsigned char *) json;
    s.p = s.base;
    s.end = s.base + len;
    s.nsegs = 0;
    s.escaped = 0;
    s.found = 0;
    s.found_start = 0;
    s.found_end = 0;

    if (pick != NULL && pick_len > 0) {
        seg = 0;

        for (i = 0; i <= pick_len; i++) {
            if (i < pick_len && pick[i] != '.') {
                continue;
            }

            if (s.nsegs == ENCORE_AGG_MAX_DEPTH) {
                /* deeper than any pick: the text is checked, not matched */
                s.nsegs = -1;
                break;
            }

            s.segs[s.nsegs].data = pick + seg;
            s.segs[s.nsegs].len = i - seg;
            s.nsegs++;
            seg = i + 1;
        }
    }

    encore_agg_scan_ws(&s);

    /* jansson's json_loadb() takes an object or an array at the top */
    if (s.p == s.end || (*s.p != '{' && *s.p != '[')) {
        return ENCORE_AGG_SCAN_INVALID;
    }

    if (encore_agg_scan_value(&s, 0, s.nsegs < 0 ? -1 : 0) != 0) {
        return ENCORE_AGG_SCAN_INVALID;
    }

    encore_agg_scan_ws(&s);

    if (s.p != s.end) {
        return ENCORE_AGG_SCAN_INVALID;
    }

    if (s.escaped) {
        /* a name written with escapes may have been the pick (or a later
         * duplicate of it): only decoding tells */
        return ENCORE_AGG_SCAN_ESCAPED;
    }

    if (!s.found) {
        return ENCORE_AGG_SCAN_NO_PICK;
    }

    *start = s.found_start;
    *end = s.found_end;

    return ENCORE_AGG_SCAN_OK;
}
