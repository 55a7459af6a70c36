/*
 * cascade.c — deleting an artist or an album with everything under it.
 *
 * The statement (sql.c: artist_delete, album_delete) deletes the whole
 * subtree at once and returns a (kind, id) row per deleted entity, tracks
 * first; each gets its own "deleted" event in the same transaction, so a
 * consumer (search, content's artist replica) hears of every row that
 * went, not only of the one the client named.
 *
 * A child created meanwhile must not slip past the statement's snapshot:
 * committed after it was taken, it is not deleted, and the foreign key
 * then refuses the parent's delete (a 500).  So the lock statements run
 * first, each in its own snapshot, locking the parent and then the
 * parents of grandchildren FOR UPDATE: an insert's foreign-key check
 * (FOR KEY SHARE) in flight is waited for, and a later one waits for us
 * and then finds no parent (422).
 */

#include <string.h>

#include "catalog.h"


static const enc_entity_t *
entity_of(const char *kind)
{
    if (strcmp(kind, "track") == 0) {
        return &catalog_track;
    }
    if (strcmp(kind, "album") == 0) {
        return &catalog_album;
    }
    return &catalog_artist;
}


void
catalog_delete_cascade(enc_req_t *r, enc_resp_t *w, const enc_entity_t *e,
    const char *const *locks, const char *stmt)
{
    int          i, n;
    enc_pg_t    *pg;
    PGresult    *res;
    const char  *id;

    if ((id = enc_kit_id(r, w, e)) == NULL || (pg = enc_kit_db(w)) == NULL
        || enc_kit_begin(w, pg) != 0)
    {
        return;
    }

    for (; *locks != NULL; locks++) {
        if ((res = enc_kit_run(w, pg, e, *locks, 1, &id)) == NULL) {
            return;
        }
        PQclear(res);
    }

    if ((res = enc_kit_run(w, pg, e, stmt, 1, &id)) == NULL) {
        return;
    }

    n = PQntuples(res);
    if (n == 0) {
        enc_pg_rollback(pg);
        enc_kit_not_found(w, e);
        PQclear(res);
        return;
    }

    for (i = 0; i < n; i++) {
        if (enc_kit_event(w, pg, entity_of(PQgetvalue(res, i, 0)), "deleted",
                          PQgetvalue(res, i, 1), NULL) != 0)
        {
            PQclear(res);
            return;
        }
    }
    PQclear(res);

    if (enc_kit_commit(w, pg) == 0) {
        enc_resp_empty(w, 204);
    }
}
