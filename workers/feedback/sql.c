/*
 * sql.c — every statement the feedback worker prepares, all
 * parameterised.  {ticket} expands to the ticket's column list
 * (entity.h); writes take the bound body as one jsonb parameter.
 * Statements that declare two parameters more than their operation
 * passes get the caller's id and rank after them (kit.h).
 *
 * The lists order by the table's columns (t.created_at), not by the
 * select list's created_at text of the same name, so that the indexes
 * serve them; the cursor keeps the text, microseconds included, which
 * reads back as the same timestamptz.
 */

#include "feedback.h"


/* the cursor's (created_at, id), or past every row on the first page */
#define AFTER(at, id)                                                         \
    "(coalesce(" at "::timestamptz, 'infinity'), "                            \
    "coalesce(" id "::uuid, 'ffffffff-ffff-ffff-ffff-ffffffffffff'))"

/* the deleted user of an encore.user.deleted event ($1 its key, else $2
   its data's "id"), as a one-row relation: NULL when it is no UUID */
#define GONE_USER                                                             \
    "(SELECT (CASE WHEN k.id ~ "                                              \
    "'^[0-9a-fA-F]{8}-([0-9a-fA-F]{4}-){3}[0-9a-fA-F]{12}$' "                 \
    "THEN k.id END)::uuid AS id "                                             \
    "FROM (SELECT coalesce($1::text, $2::jsonb ->> 'id') AS id) k)"

const enc_pg_stmt_t  feedback_statements[] = {

    /* $1 id, $2 caller id, $3 caller rank: the owner or moderator+ */
    { "ticket_get",
      "SELECT {ticket} FROM tickets "
      "WHERE id = $1::uuid AND (user_id = $2::uuid OR $3::int >= 2)", 3 },

    /* user_id is the caller's (ENC_CALLER_ID, filled by the kit) */
    { "ticket_insert",
      "INSERT INTO tickets ({ticket:create}) "
      "SELECT {p.ticket:create} "
      "FROM jsonb_populate_record(NULL::tickets, $1::jsonb) p "
      "RETURNING {ticket}", 1 },

    /* moderator+ (the route); the status trigger refuses what the
       machine does not allow, and any write to a closed ticket
       (003_closed_is_final.sql).  A patch that changes nothing keeps
       updated_at; it still answers 200 and publishes encore.ticket.updated
       (the kit publishes for every row a patch returns, and one that
       returns none is 404) */
    { "ticket_update",
      "UPDATE tickets t SET ({ticket:patch}, updated_at) = "
      "(SELECT {p.ticket:patch}, "
      "   CASE WHEN ({p.ticket:patch}) IS NOT DISTINCT FROM "
      "             ({t.ticket:patch}) "
      "   THEN t.updated_at ELSE " ENC_TOUCHED("t") " END "
      " FROM jsonb_populate_record(t, $2::jsonb) p) "
      "WHERE t.id = $1::uuid RETURNING {t.ticket}", 2 },

    /* The lists: newest first, keyset on (created_at, id).  On the first
       page the key is NULL and stands for the end of time, so the row
       comparison is always there and is the index scan's condition, in a
       generic plan too, rather than a filter over every row before the
       page ("$2 IS NULL OR (...) < (...)" cannot be an index condition). */

    /* $1 status, $2/$3 the last (created_at, id) seen, $4 page size + 1,
       $5 caller id, $6 rank (signed in: the route's flag says so too, and
       a declared parameter must be used, or the statement is prepared
       with one fewer): tickets_by_user backwards */
    { "tickets_own",
      "SELECT {t.ticket} FROM tickets t "
      "WHERE t.user_id = $5::uuid AND $6::int >= 1 "
      "AND ($1::text IS NULL OR t.status = $1::text) "
      "AND (t.created_at, t.id) < " AFTER("$2", "$3") " "
      "ORDER BY t.created_at DESC, t.id DESC LIMIT $4::int", 6 },

    /* staff, no ?status= ($1/$2 the key, $3 page size + 1):
       tickets_by_time backwards */
    { "tickets_all",
      "SELECT {t.ticket} FROM tickets t "
      "WHERE (t.created_at, t.id) < " AFTER("$1", "$2") " "
      "ORDER BY t.created_at DESC, t.id DESC LIMIT $3::int", 3 },

    /* staff, ?status= ($1; then as tickets_own): tickets_by_status
       backwards */
    { "tickets_in_status",
      "SELECT {t.ticket} FROM tickets t WHERE t.status = $1::text "
      "AND (t.created_at, t.id) < " AFTER("$2", "$3") " "
      "ORDER BY t.created_at DESC, t.id DESC LIMIT $4::int", 4 },

    /* ---- consumed events (feedback_events) ---- */

    /* encore.user.deleted, $1 the key (the user's id), $2 the data
       ({"id"}, the same id: the key's stand-in, and a declared parameter
       must be used), in three statements (feedback_events).  An id that
       is no UUID is NULL (GONE_USER): it locks nothing (the lock
       functions are strict) and names no ticket's user, rather than a
       cast error the consumer would retry for ever.

       First, the user's lock, exclusively; every insert for that user
       takes it shared (the trigger, 002_gone_users.sql): an insert that
       got it first has committed when this returns, so the third
       statement's snapshot, taken after, has its ticket; one that comes
       later waits for this transaction and then finds the user in
       gone_users, and is stored without its user_id. */
    { "user_lock",
      "SELECT pg_advisory_xact_lock(feedback_user_lock(u.id)) "
      "FROM " GONE_USER " u", 2 },

    /* second: remembered, for the inserts that wait or come later */
    { "user_gone",
      "INSERT INTO gone_users (id) SELECT u.id FROM " GONE_USER " u "
      "WHERE u.id IS NOT NULL ON CONFLICT DO NOTHING", 2 },

    /* third: their tickets stay, without their id (tickets_by_user) */
    { "tickets_forget_user",
      "UPDATE tickets t SET user_id = NULL, "
      "updated_at = " ENC_TOUCHED("t") " "
      "FROM " GONE_USER " u "
      "WHERE t.user_id = u.id RETURNING {t.ticket}", 2 },

    { NULL, NULL, 0 }
};


const enc_event_route_t  feedback_events[] = {
    { "encore.user.deleted", "user_lock", NULL },
    { "encore.user.deleted", "user_gone", NULL },
    { "encore.user.deleted", "tickets_forget_user", &feedback_ticket },
    { NULL, NULL, NULL }
};
