/*
 * entity: an entity described once drives its SQL select list, its JSON
 * answer, its events and the field rules of its writes.
 *
 * The description is a table of enc_field_t (bind.h): ENC_OUT fields are
 * the columns the API answers, ENC_IN / ENC_IN_CREATE the ones a client
 * writes, with their rules.  Statements name the entity in braces and the
 * runtime expands them once at start (enc_entity_expand), so no column list
 * is written twice:
 *
 *   {artist}            the select list: id, name, ..., created_at as
 *                       RFC 3339 text, arrays as JSON text
 *   {a.artist}          the same with every column qualified by alias a
 *   {artist:create}     the column names a create writes (ENC_IN and
 *                       ENC_IN_CREATE), for INSERT (...) and SELECT lists
 *   {p.artist:create}   the same, qualified
 *   {artist:patch}      the column names a patch may write (ENC_IN)
 *   {p.artist:patch}    the same, qualified
 *
 * Writes take the bound body whole, as one jsonb parameter, and let
 * PostgreSQL map it onto the row type:
 *
 *   INSERT INTO artists ({artist:create})
 *   SELECT {p.artist:create} FROM jsonb_populate_record(NULL::artists, $1) p
 *   RETURNING {artist}
 *
 *   UPDATE artists t SET ({artist:patch}) =
 *     (SELECT {p.artist:patch} FROM jsonb_populate_record(t, $2) p)
 *   WHERE t.id = $1 RETURNING {t.artist}
 *
 * jsonb_populate_record(t, patch) takes every member absent from the patch
 * from the row itself and stores JSON null as NULL: exactly PATCH's three
 * states, with no per-field SQL.
 *
 * Constraint violations are mapped by constraint name (never by message
 * text) through the entity's enc_constraint_t table: a unique violation is
 * typically 409 naming the field, a foreign-key violation 422.
 */

#ifndef ENC_ENTITY_H
#define ENC_ENTITY_H

#include <jansson.h>
#include <libpq-fe.h>

#include "bind.h"
#include "pg.h"

/*
 * A changed row's updated_at in an UPDATE whose table has alias t:
 * now(), but always after the value the row had.  now() is the
 * transaction's start, and writers of one row commit in the order of its
 * row lock, not of their starts: with plain now() a later commit could
 * carry an earlier time, clients would see updated_at go backwards, and a
 * replica keeping the newest updated_at it saw would keep the wrong
 * version (comments' post replica did: a post back to draft kept its
 * thread open).
 *
 *   UPDATE posts t SET ..., updated_at = " ENC_TOUCHED("t") " WHERE ...
 */
#define ENC_TOUCHED(t)                                                        \
    "greatest(now(), " t ".updated_at + interval '1 microsecond')"

typedef struct {
    const char  *name;      /* constraint name, e.g. "artists_slug_key" */
    int          status;    /* 409, 422 */
    const char  *field;     /* the field the client must change */
    const char  *message;   /* "is taken by another artist" */
} enc_constraint_t;

typedef struct {
    const char              *name;      /* "artist": events encore.artist.* */
    const char              *plural;    /* "artists": subject artists/<id> */
    const char              *path;      /* "/api/v1/artists/": Location */
    const char              *topic;     /* "encore.catalog.artists"; NULL:
                                           the kit publishes no events */
    const enc_field_t       *fields;    /* ENC_FIELD_END-terminated */
    const enc_constraint_t  *constraints;   /* {NULL}-terminated or NULL */

    /* optional, for entities not everyone may see or change (kit.h):
       a statement, $1 = id (and, when it declares three parameters, $2 =
       the caller's id, $3 = its rank), returning a row when the caller
       may see the entity.  A patch or delete that matched no row is then
       403 if it does, 404 if it does not. */
    const char              *visible;
    /* optional: the entity the path's {id} names on create ("post" for a
       comment): a create statement that returns no row answers
       404 "no such <parent>" */
    const char              *parent;
    /* optional: rules across rows the binder cannot see (ids that must
       exist in a replica), run by the kit's create and patch inside the
       write's transaction, before the statement, with the bound body.
       0: go on; -1: field errors added to v (422); -2: a statement
       failed (503/500).  Lock what it checked. */
    int                    (*check)(enc_pg_t *pg, json_t *body,
                                    unsigned mode, enc_validation_t *v);
} enc_entity_t;

typedef enum {
    ENC_VIEW_PUBLIC = 0,    /* without ENC_PRIVATE and ENC_ADMIN_ONLY fields */
    ENC_VIEW_OWNER,         /* with ENC_PRIVATE fields */
    ENC_VIEW_ADMIN          /* everything ENC_OUT */
} enc_view_t;

/*
 * Expands the {entity...} references of every statement (see above) into
 * a new statement array the caller keeps for the life of the process.
 * entities is NULL-terminated.  Braces that name no entity ('{}'::text[],
 * JSON literals, a lone '{') are kept as they are.  NULL (logged) when
 * out of memory.
 */
enc_pg_stmt_t *enc_entity_expand(const enc_pg_stmt_t *stmts,
                                 const enc_entity_t *const *entities);
void           enc_entity_expand_free(enc_pg_stmt_t *stmts);

/* The entity's JSON from row `row` of res, whose first columns are the
   select list.  NULL on allocation failure or a malformed array column. */
json_t *enc_entity_json(const enc_entity_t *e, const PGresult *res, int row,
                        enc_view_t view);

/* The same JSON written straight into w from the row, with no jansson
   tree in between: what reads answer (kit.c), the same members in the same
   order.  Strings are escaped; numbers, booleans and arrays (JSON text
   made by PostgreSQL, array_to_json) go in as the server wrote them. */
void    enc_entity_write(enc_jw_t *w, const enc_entity_t *e,
                         const PGresult *res, int row, enc_view_t view);

/*
 * Inside the caller's transaction: the event of one change, through the
 * outbox.  verb "created", "updated", "deleted" (ce_type
 * encore.<name>.<verb>); value is the entity's public JSON, or for
 * "deleted" NULL, which sends {"id": id}.  id is the key and the subject's
 * tail.
 */
int enc_entity_event(enc_pg_t *pg, const enc_entity_t *e, const char *verb,
                     const char *id, json_t *value);

/* The constraint row of e matching a failed statement's result, NULL when
   the failure is not a constraint violation of e's table. */
const enc_constraint_t *enc_entity_constraint(const enc_entity_t *e,
                                              const PGresult *res);

#endif /* ENC_ENTITY_H */
