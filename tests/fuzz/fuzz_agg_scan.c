/*
 * libFuzzer harness for the aggregate module's JSON scanner
 * (ngx_modules/aggregate/encore_agg_scan.c), differential against jansson.
 * The input is a pick on its first line (a dotted path, possibly empty)
 * and a JSON text after it; any bytes go in either.
 *
 * Invariants: encore_agg_scan() refuses exactly what json_loadb(, 0, )
 * refuses, but for one quirk of jansson's lexer, which skips a NUL byte
 * right after a number ({"a":3<NUL>} is accepted): the scanner refuses
 * every NUL outside a string, as RFC 8259 does, since the bytes it finds
 * are sent on as they are; on a valid text it finds the pick exactly when
 * encore_agg_lookup() finds it in jansson's tree (unless it says a name
 * with escapes was in the way), and the bytes it finds parse (as the
 * whole text's value does) to a value equal to jansson's; no leaks.
 *
 * auto/fuzz (make fuzz) builds it from this line:
 */
/* fuzz-sources: ngx_modules/aggregate/encore_agg_scan.c ngx_modules/aggregate/encore_agg.c */

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "encore_agg.h"


int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    int            rc;
    size_t         pick_len, start, end;
    json_t        *doc, *want, *got;
    const char    *text, *nl;
    json_error_t   err;

    nl = memchr(data, '\n', size);
    if (nl == NULL) {
        return 0;
    }

    pick_len = (size_t) (nl - (const char *) data);
    text = nl + 1;
    size -= pick_len + 1;

    rc = encore_agg_scan(text, size, (const char *) data, pick_len,
                         &start, &end);

    doc = json_loadb(text, size, 0, &err);

    if ((doc == NULL) != (rc == ENCORE_AGG_SCAN_INVALID)
        && !(doc != NULL && memchr(text, '\0', size) != NULL))
    {
        abort();
    }

    if (rc == ENCORE_AGG_SCAN_INVALID) {
        json_decref(doc);
        return 0;
    }

    if (doc == NULL) {
        return 0;
    }

    want = pick_len ? encore_agg_lookup(doc, (const char *) data, pick_len)
                    : doc;

    if (rc == ENCORE_AGG_SCAN_ESCAPED) {
        json_decref(doc);
        return 0;
    }

    if ((want == NULL) != (rc == ENCORE_AGG_SCAN_NO_PICK)) {
        abort();
    }

    if (rc == ENCORE_AGG_SCAN_OK) {
        if (start > end || end > size) {
            abort();
        }

        got = json_loadb(text + start, end - start, JSON_DECODE_ANY, &err);

        if (got == NULL || !json_equal(got, want)) {
            abort();
        }

        json_decref(got);
    }

    json_decref(doc);

    return 0;
}
