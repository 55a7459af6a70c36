/*
 * kit: the mechanical half of a domain endpoint, so a handler holds only
 * what is particular to it — who may call it (route flags, enc_caller_t),
 * which statement it runs, what a conflict means (entity.h) — and the kit
 * does the rest: the database connection and its 503, binding and 422s,
 * 404 for ids that cannot exist, constraint errors, the outbox event, the
 * JSON answer, Location, cursors.
 *
 * Whole operations (each answers the request, whatever happens):
 *
 *   enc_kit_get     GET    $1 = {id}                  200 | 404
 *   enc_kit_create  POST   $1 = the bound body, jsonb 201 + Location, event
 *                          "created"
 *   enc_kit_patch   PATCH  $1 = {id}, $2 = the bound  200 | 404, event
 *                          patch, jsonb               "updated"
 *   enc_kit_delete  DELETE $1 = {id}, RETURNING id    204 | 404, event
 *                          "deleted"
 *   enc_kit_list    GET    see enc_list_t             200 {items, next_cursor}
 *
 * The statements return the entity's select list ({name} in the SQL,
 * entity.h).  Writes run in one transaction with their event.  Bodies are
 * bound with ENC_BIND_STRICT when the route has ENC_ROUTE_STRICT.
 *
 * The caller.  A statement that declares two parameters more than its
 * operation passes (enc_pg_stmt_t.nparams) gets the caller after them:
 * the caller's id (NULL when anonymous) and rank (0 anonymous, 1 user,
 * 2 moderator, 3 admin; enc_role_t), so who may see or change a row is
 * one WHERE clause next to the rest of the statement:
 *
 *   SELECT {post} FROM posts WHERE id = $1::uuid
 *   AND (status = 'published' OR author_id = $2::uuid OR $3::int >= 2)
 *
 * A patch or delete that matches no row answers 404, or 403 when the
 * entity's `visible` statement says the caller sees it (entity.h).  A
 * list whose statement takes the caller scopes its cursors to the caller.
 *
 * Creates fill in the fields flagged ENC_CALLER_ID, ENC_CALLER_NAME and
 * ENC_PATH_ID (bind.h) before the statement; one that returns no row
 * (INSERT ... SELECT ... WHERE the parent is there) answers 404 naming
 * the entity's `parent`.  Creates and patches run the entity's `check`
 * first, in the transaction.
 *
 * A second event.  When a write statement's result has a text column
 * named "event", a non-NULL value is a verb published for the same row
 * after the operation's own ("published": encore.post.published).
 *
 * The pieces they are made of are public too, for handlers that do more
 * (a cascade delete emitting an event per row, say).
 */

#ifndef ENC_KIT_H
#define ENC_KIT_H

#include <jansson.h>
#include <libpq-fe.h>

#include "bind.h"
#include "entity.h"
#include "http.h"
#include "pg.h"

#define ENC_LIST_LIMIT_DEFAULT  20
#define ENC_LIST_LIMIT_MAX      100
#define ENC_LIST_ARGS_MAX       4
#define ENC_LIST_KEYS_MAX       4
#define ENC_LIST_FILTERS_MAX    8

/*
 * A keyset list.  The statement's parameters are, in this order: the
 * handler's args (path parameters), one per filter in table order (text,
 * NULL when absent; arrays as JSON text), one per sort key (NULL on the
 * first page), and the page size + 1 (the extra row says whether a next
 * page exists).  The statement must order by exactly the sort keys (all
 * ascending or all descending) and compare them as a row:
 *
 *   WHERE album_id = $1 AND ($2::int IS NULL OR (position, id) >
 *         ($2::int, $3::uuid)) ORDER BY position, id LIMIT $4
 *
 * The sort key's columns must be NOT NULL (a NULL would go into the
 * cursor as "" and compare wrongly) and end with a unique one (the id).
 */
typedef struct {
    const char          *name;      /* the route name: scopes its cursors */
    const char          *stmt;
    const enc_field_t   *filters;   /* query parameters, or NULL */
    const char *const   *keys;      /* result columns of the sort key,
                                       NULL-terminated */
    const char          *parent;    /* optional: statement run with $1 =
                                       args[0] when a page is empty,
                                       to answer 404 if it returns no row */
    const char          *parent_name;   /* "album": "no such album" */
    enc_view_t           view;      /* of the items; default public */
    int                  limit;     /* the page size without ?limit=
                                       (1..ENC_LIST_LIMIT_MAX); 0:
                                       ENC_LIST_LIMIT_DEFAULT */
} enc_list_t;

void enc_kit_get(enc_req_t *r, enc_resp_t *w, const enc_entity_t *e,
                 const char *stmt);
void enc_kit_create(enc_req_t *r, enc_resp_t *w, const enc_entity_t *e,
                    const char *stmt);
void enc_kit_patch(enc_req_t *r, enc_resp_t *w, const enc_entity_t *e,
                   const char *stmt);
void enc_kit_delete(enc_req_t *r, enc_resp_t *w, const enc_entity_t *e,
                    const char *stmt);
void enc_kit_list(enc_req_t *r, enc_resp_t *w, const enc_entity_t *e,
                  const enc_list_t *l, int nargs, const char *const *args);

/* ---- the pieces ------------------------------------------------------------ */

/* this thread's connection; NULL after answering 503 */
enc_pg_t   *enc_kit_db(enc_resp_t *w);
/* the {id} path parameter when it is a UUID; NULL after answering 404
   (an id that is not a UUID names nothing) */
const char *enc_kit_id(enc_req_t *r, enc_resp_t *w, const enc_entity_t *e);
/* the body bound against fields (mode ENC_BIND_*, plus ENC_BIND_STRICT on
   ENC_ROUTE_STRICT routes); NULL after answering 422.  The caller
   json_decrefs the result. */
json_t     *enc_kit_body(enc_req_t *r, enc_resp_t *w,
                         const enc_field_t *fields, unsigned mode, void *dst);
/* runs a prepared statement; the result when it succeeded, else NULL
   after answering (enc_kit_fail) */
PGresult   *enc_kit_run(enc_resp_t *w, enc_pg_t *pg, const enc_entity_t *e,
                        const char *stmt, int n, const char *const *params);
/* answers a failed statement: a constraint of e -> its status naming its
   field; a lost connection -> 503; anything else -> 500, logged with the
   statement's name and SQLSTATE.  Rolls back an open transaction. */
void        enc_kit_fail(enc_resp_t *w, enc_pg_t *pg, const enc_entity_t *e,
                         const PGresult *res, const char *stmt);
/* a failed statement that is no constraint violation: 503 with
   Retry-After when the connection is lost (worth a retry), else 500 */
void        enc_kit_db_error(enc_resp_t *w, enc_pg_t *pg);
/* 500 "the request could not be completed" (log the cause first) */
void        enc_kit_internal(enc_resp_t *w);
/* 404 "no such <entity>" */
void        enc_kit_not_found(enc_resp_t *w, const enc_entity_t *e);
/* BEGIN / COMMIT answering 503/500 on failure: 0 or -1 (answered) */
int         enc_kit_begin(enc_resp_t *w, enc_pg_t *pg);
int         enc_kit_commit(enc_resp_t *w, enc_pg_t *pg);
/* the event through the outbox; -1 after rolling back and answering 500 */
int         enc_kit_event(enc_resp_t *w, enc_pg_t *pg, const enc_entity_t *e,
                          const char *verb, const char *id, json_t *value);

#endif /* ENC_KIT_H */
