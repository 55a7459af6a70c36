/*
 * libFuzzer harness for the aggregate module's field references
 * (ngx_modules/aggregate/encore_agg.c): the input's first line is a part's
 * URI template, the rest a JSON object of first-stage answers by part name
 * ({"post": {...}}); rest that is not JSON becomes answers built from its
 * bytes (a string, an array of its ','-separated pieces, of numbers and of
 * mixed items), so every template meets strings and arrays.  max_items is
 * the input's last byte modulo 32.
 *
 * Invariants: the template's pieces cover it exactly, references are
 * "{" name ("." member)+ "}" with at most ENCORE_AGG_MAX_DEPTH members and
 * literals hold only nginx's "${...}" braces; a failed split names its
 * problem; every reference's value reads back (percent-decoded, split at
 * ",") as the referenced string, number or boolean, at most max_items of
 * them; MISSING exactly for absent, null, object values and arrays holding
 * anything else; one byte less than the value needs is NO_ROOM with out
 * and *len unchanged; {part.path} in the answers is path in the part.
 *
 * auto/fuzz (make fuzz) builds it from this line:
 */
/* fuzz-sources: ngx_modules/aggregate/encore_agg.c */

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "encore_agg.h"


#define OUT_CAP  65536


static int
is_name(int c, int first)
{
    return (c >= 'a' && c <= 'z') || c == '_' || (!first && c >= '0'
                                                   && c <= '9');
}


static int
is_member(int c)
{
    return is_name(c, 0) || (c >= 'A' && c <= 'Z');
}


static void
check_ref_piece(const encore_agg_piece_t *p)
{
    size_t  i, members;

    if (p->text.len != p->part.len + p->path.len + 3
        || p->text.data[0] != '{' || p->text.data[p->text.len - 1] != '}'
        || p->part.data != p->text.data + 1
        || p->path.data != p->part.data + p->part.len + 1
        || p->part.data[p->part.len] != '.' || p->part.len == 0)
    {
        abort();
    }

    for (i = 0; i < p->part.len; i++) {
        if (!is_name((unsigned char) p->part.data[i], i == 0)) {
            abort();
        }
    }

    members = 1;

    for (i = 0; i < p->path.len; i++) {
        if (p->path.data[i] == '.') {
            /* no empty member */
            if (i == 0 || i + 1 == p->path.len || p->path.data[i - 1] == '.')
            {
                abort();
            }

            members++;

        } else if (!is_member((unsigned char) p->path.data[i])) {
            abort();
        }
    }

    if (p->path.len == 0 || members > ENCORE_AGG_MAX_DEPTH) {
        abort();
    }
}


/* a literal's braces are nginx's "${...}" only */
static void
check_literal(const encore_agg_str_t *t)
{
    size_t  i;
    int     in;

    in = 0;

    for (i = 0; i < t->len; i++) {
        if (t->data[i] == '{') {
            if (in || i == 0 || t->data[i - 1] != '$') {
                abort();
            }

            in = 1;

        } else if (t->data[i] == '}') {
            if (!in) {
                abort();
            }

            in = 0;
        }
    }

    if (in) {
        abort();
    }
}


static int
hexval(int c)
{
    if (c >= '0' && c <= '9') {
        return c - '0';
    }

    if (c >= 'A' && c <= 'F') {
        return c - 'A' + 10;
    }

    return -1;
}


static int
unreserved(int c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')
           || (c >= '0' && c <= '9') || c == '-' || c == '.' || c == '_'
           || c == '~';
}


/* out[0..len) percent-decoded, as one item; NUL-terminated */
static size_t
decode(const char *s, size_t len, char *dec)
{
    int     hi, lo;
    size_t  i, o;

    o = 0;

    for (i = 0; i < len; i++) {
        if (s[i] != '%') {
            if (!unreserved((unsigned char) s[i])) {
                abort();
            }

            dec[o++] = s[i];
            continue;
        }

        if (i + 2 >= len) {
            abort();
        }

        hi = hexval((unsigned char) s[i + 1]);
        lo = hexval((unsigned char) s[i + 2]);

        if (hi < 0 || lo < 0) {
            abort();
        }

        /* an unreserved byte is never escaped */
        if (unreserved(hi * 16 + lo)) {
            abort();
        }

        dec[o++] = (char) (hi * 16 + lo);
        i += 2;
    }

    dec[o] = '\0';

    return o;
}


static void
check_item(json_t *v, const char *s, size_t len)
{
    char    *dec, *end;
    size_t   n;

    dec = malloc(len + 1);
    if (dec == NULL) {
        abort();
    }

    n = decode(s, len, dec);

    switch (json_typeof(v)) {

    case JSON_STRING:
        if (n != json_string_length(v)
            || memcmp(dec, json_string_value(v), n) != 0)
        {
            abort();
        }

        break;

    case JSON_INTEGER:
        if (strtoll(dec, &end, 10) != json_integer_value(v) || *end != '\0') {
            abort();
        }

        break;

    case JSON_REAL:
        if (strtod(dec, &end) != json_real_value(v) || *end != '\0') {
            abort();
        }

        break;

    case JSON_TRUE:
        if (strcmp(dec, "true") != 0) {
            abort();
        }

        break;

    case JSON_FALSE:
        if (strcmp(dec, "false") != 0) {
            abort();
        }

        break;

    default:
        abort();
    }

    free(dec);
}


static int
scalar(json_t *v)
{
    return json_is_string(v) || json_is_number(v) || json_is_boolean(v);
}


/* what encore_agg_ref_append() must answer, from the header's words */
static int
expected_rc(json_t *v, size_t max_items)
{
    size_t  i, n;

    if (v == NULL || json_is_null(v) || json_is_object(v)) {
        return ENCORE_AGG_MISSING;
    }

    if (!json_is_array(v)) {
        return 1;
    }

    n = json_array_size(v);

    for (i = 0; i < n; i++) {
        if (!scalar(json_array_get(v, i))) {
            return ENCORE_AGG_MISSING;
        }
    }

    return (int) (n < max_items ? n : max_items);
}


static void
check_ref(json_t *doc, const char *path, size_t path_len, size_t max_items,
    char *out)
{
    int      rc, rc2;
    char    *copy;
    size_t   len, len2, start, i, k;
    json_t  *v;

    v = encore_agg_lookup(doc, path, path_len);

    /* a prefix, as a template's literal text before the reference */
    memcpy(out, "ids=", 4);
    len = 4;

    rc = encore_agg_ref_append(doc, path, path_len, max_items, out, OUT_CAP,
                               &len);

    if (rc == ENCORE_AGG_NO_ROOM) {
        /* only a huge value: then it needs more than OUT_CAP */
        return;
    }

    if (rc != expected_rc(v, max_items)) {
        abort();
    }

    if (rc <= 0) {
        if (len != 4) {
            abort();
        }

        return;
    }

    /* the items, split at the only unescaped "," */
    start = 4;
    k = 0;

    for (i = 4; i <= len; i++) {
        if (i < len && out[i] != ',') {
            continue;
        }

        check_item(json_is_array(v) ? json_array_get(v, k) : v, out + start,
                   i - start);
        k++;
        start = i + 1;
    }

    if (k != (size_t) rc) {
        abort();
    }

    /* one byte short: NO_ROOM, out and *len as they were */
    copy = malloc(len);
    if (copy == NULL) {
        abort();
    }

    memcpy(copy, out, len);

    len2 = 4;
    rc2 = encore_agg_ref_append(doc, path, path_len, max_items, out, len - 1,
                                &len2);

    if (rc2 != ENCORE_AGG_NO_ROOM || len2 != 4
        || memcmp(copy, out, len - 1) != 0)
    {
        abort();
    }

    free(copy);
}


/* answers built from bytes that are not JSON */
static json_t *
build_answers(const char *s, size_t len)
{
    size_t   i, start;
    json_t  *doc, *strs, *nums, *mixed, *p;

    p = json_object();
    strs = json_array();
    nums = json_array();
    mixed = json_array();
    doc = json_object();

    if (p == NULL || strs == NULL || nums == NULL || mixed == NULL
        || doc == NULL)
    {
        abort();
    }

    start = 0;

    for (i = 0; i <= len; i++) {
        if (i < len && s[i] != ',') {
            continue;
        }

        /* the bytes as they are, invalid UTF-8 too: all are encoded */
        json_array_append_new(strs, json_stringn_nocheck(s + start,
                                                         i - start));
        json_array_append_new(nums, json_integer((json_int_t) (i - start)
                                                 * (start % 2 ? -1 : 1)));
        json_array_append_new(mixed, (start % 3 == 0) ? json_real(i / 7.0)
                                     : (start % 3 == 1) ? json_true()
                                     : json_stringn_nocheck(s + start,
                                                            i - start));
        start = i + 1;
    }

    json_object_set_new(p, "s", json_stringn_nocheck(s, len));
    json_object_set_new(p, "ids", strs);
    json_object_set_new(p, "ns", nums);
    json_object_set_new(p, "mixed", mixed);
    json_object_set_new(p, "n", json_integer((json_int_t) len));
    json_object_set_new(p, "nul", json_null());
    json_object_set_new(p, "o", json_pack("{s:b}", "a", 1));

    json_object_set(doc, "post", p);
    json_object_set_new(doc, "p", p);

    return doc;
}


/*
 * Splits tmpl with room for max pieces and checks the pieces; with doc,
 * also every reference's value.  Returns the number of pieces, or -1.
 */
static int
check_split(const char *tmpl, size_t tlen, size_t max, json_t *doc,
    size_t max_items, char *out)
{
    char                *full;
    size_t               i, n, flen;
    json_t              *part;
    const char          *err;
    encore_agg_piece_t  *pieces;

    /* exactly max pieces: ASan sees a write past them */
    pieces = malloc(max ? max * sizeof(encore_agg_piece_t) : 1);
    if (pieces == NULL) {
        abort();
    }

    err = NULL;

    if (encore_agg_template_split(tmpl, tlen, pieces, max, &n, &err) != 0) {
        if (err == NULL || err[0] == '\0') {
            abort();
        }

        free(pieces);
        return -1;
    }

    if (n > max) {
        abort();
    }

    flen = 0;

    for (i = 0; i < n; i++) {
        /* contiguous, in order, never two literals in a row */
        if (pieces[i].text.data != tmpl + flen || pieces[i].text.len == 0
            || (i > 0 && !pieces[i].ref && !pieces[i - 1].ref))
        {
            abort();
        }

        flen += pieces[i].text.len;

        if (!pieces[i].ref) {
            check_literal(&pieces[i].text);
            continue;
        }

        check_ref_piece(&pieces[i]);

        if (doc == NULL) {
            continue;
        }

        part = json_object_getn(doc, pieces[i].part.data, pieces[i].part.len);

        check_ref(part, pieces[i].path.data, pieces[i].path.len, max_items,
                  out);

        /* {part.path} in the answers is path in the part */
        full = malloc(pieces[i].text.len - 2);
        if (full == NULL) {
            abort();
        }

        memcpy(full, pieces[i].text.data + 1, pieces[i].text.len - 2);

        if (encore_agg_lookup(doc, full, pieces[i].text.len - 2)
            != encore_agg_lookup(part, pieces[i].path.data,
                                 pieces[i].path.len))
        {
            abort();
        }

        free(full);
    }

    if (flen != tlen) {
        abort();
    }

    free(pieces);

    return (int) n;
}


int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    int          n, n2;
    char        *tmpl, *rest, *out;
    size_t       tlen, rlen, max, max_items;
    json_t      *doc;
    const char  *nl;

    if (size == 0) {
        return 0;
    }

    max_items = data[size - 1] % 32;

    nl = memchr(data, '\n', size);
    tlen = nl ? (size_t) (nl - (const char *) data) : size;
    rlen = nl ? size - tlen - 1 : 0;

    /* exact-size copies: ASan sees any read past them */
    tmpl = malloc(tlen ? tlen : 1);
    rest = malloc(rlen ? rlen : 1);
    out = malloc(OUT_CAP);
    if (tmpl == NULL || rest == NULL || out == NULL) {
        abort();
    }

    memcpy(tmpl, data, tlen);
    if (rlen) {
        memcpy(rest, data + tlen + 1, rlen);
    }

    doc = json_loadb(rest, rlen, JSON_ALLOW_NUL, NULL);
    if (doc == NULL) {
        doc = build_answers(rest, rlen);
    }

    n = check_split(tmpl, tlen, ENCORE_AGG_MAX_PIECES, doc, max_items, out);

    /* fewer pieces allowed: the same split if it fits, else an error */
    max = tlen % ENCORE_AGG_MAX_PIECES;
    n2 = check_split(tmpl, tlen, max, NULL, 0, NULL);

    if ((n2 >= 0 && n2 != n) || (n >= 0 && (size_t) n <= max && n2 != n)) {
        abort();
    }

    /* any bytes as a path (empty members, dots at the ends): no crash */
    check_ref(doc, tmpl, tlen, max_items, out);

    json_decref(doc);
    free(tmpl);
    free(rest);
    free(out);

    return 0;
}
