/*
 * sql.c — every statement the chat worker prepares, all parameterised.
 * {session} and {message} expand to the entities' column lists
 * (entity.h).  Statements that declare two parameters more than their
 * operation passes get the caller's id and rank after them (kit.h):
 * everything here is the owner's alone, whatever the caller's role, so
 * another user's session is 404, as if it did not exist.
 *
 * The lists order by the tables' columns, not by the select list's text
 * of the same name, so that the indexes serve them; the cursor keeps the
 * text, microseconds included, which reads back as the same timestamptz.
 */

#include "chat.h"


/* the deleted user of an encore.user.deleted event ($1 its key, else $2
   its data's "id"), as a one-row relation: NULL when it is no UUID */
#define GONE_USER                                                             \
    "(SELECT (CASE WHEN k.id ~ "                                              \
    "'^[0-9a-fA-F]{8}-([0-9a-fA-F]{4}-){3}[0-9a-fA-F]{12}$' "                 \
    "THEN k.id END)::uuid AS id "                                             \
    "FROM (SELECT coalesce($1::text, $2::jsonb ->> 'id') AS id) k)"

const enc_pg_stmt_t  chat_statements[] = {

    /* ---- sessions ---- */

    /* user_id is the caller's (ENC_CALLER_ID, filled by the kit); without
       a title the session is "New chat" until its first question names
       it (auto_title, message_ask) */
    { "session_insert",
      "INSERT INTO sessions (user_id, title, auto_title) "
      "SELECT p.user_id, coalesce(p.title, 'New chat'), p.title IS NULL "
      "FROM jsonb_populate_record(NULL::sessions, $1::jsonb) p "
      "RETURNING {session}", 1 },

    /* $1 id, $2 caller id, $3 rank (signed in: the route says so too) */
    { "session_get",
      "SELECT {session} FROM sessions "
      "WHERE id = $1::uuid AND user_id = $2::uuid AND $3::int >= 1", 3 },

    /* the delete, in three statements (sessions.c): the session locked,
       so that no question lands in it meanwhile; its messages, each
       published deleted; then the session */
    { "session_lock",
      "SELECT id FROM sessions "
      "WHERE id = $1::uuid AND user_id = $2::uuid AND $3::int >= 1 "
      "FOR UPDATE", 3 },

    { "session_messages_delete",
      "DELETE FROM messages WHERE session_id = $1::uuid RETURNING id", 1 },

    { "session_delete",
      "DELETE FROM sessions WHERE id = $1::uuid RETURNING id", 1 },

    /* newest updated first, keyset on (updated_at, id); on the first page
       the key stands for the end of time, so the row comparison is always
       the index scan's condition.  $1/$2 the key, $3 page size + 1, $4
       caller id, $5 rank */
    { "sessions_own",
      "SELECT {s.session} FROM sessions s "
      "WHERE s.user_id = $4::uuid AND $5::int >= 1 "
      "AND (s.updated_at, s.id) < "
      "(coalesce($1::timestamptz, 'infinity'), "
      " coalesce($2::uuid, 'ffffffff-ffff-ffff-ffff-ffffffffffff')) "
      "ORDER BY s.updated_at DESC, s.id DESC LIMIT $3::int", 5 },

    /* ---- messages ---- */

    /* oldest first, keyset on (created_at, id).  $1 session, $2/$3 the
       key, $4 page size + 1, $5 caller id, $6 rank: the session's owner
       only (the handler has said 404 to anyone else already) */
    { "messages_of_session",
      "SELECT {m.message} FROM messages m "
      "WHERE m.session_id = $1::uuid "
      "AND EXISTS (SELECT 1 FROM sessions s WHERE s.id = $1::uuid "
      "            AND s.user_id = $5::uuid AND $6::int >= 1) "
      "AND (m.created_at, m.id) > "
      "(coalesce($2::timestamptz, '-infinity'), "
      " coalesce($3::uuid, '00000000-0000-0000-0000-000000000000')) "
      "ORDER BY m.created_at, m.id LIMIT $4::int", 6 },

    /* The question: stored only in the caller's session, which it touches
       (updated_at; the first one names an untitled session, white space
       folded) and locks, so that two questions in one session are
       stored one after the other.  $1 session, $2 content, $3 caller id,
       $4 rank.  No row: not the caller's session. */
    { "message_ask",
      "WITH s AS ("
      " UPDATE sessions t SET updated_at = " ENC_TOUCHED("t") ","
      "  title = CASE WHEN t.auto_title "
      "   THEN left(regexp_replace(btrim($2::text), '\\s+', ' ', 'g'), 60) "
      "   ELSE t.title END,"
      "  auto_title = false "
      " WHERE t.id = $1::uuid AND t.user_id = $3::uuid AND $4::int >= 1 "
      " RETURNING t.id) "
      "INSERT INTO messages (session_id, role, content) "
      "SELECT s.id, 'user', $2::text FROM s "
      "RETURNING {message}", 4 },

    /* A question taken back: no reply could be started for it (the
       engine full after all, the worker stopping), so it goes, as if
       never asked, and the answer says to ask again.  $1 the question,
       $2 its session. */
    { "message_unask",
      "DELETE FROM messages "
      "WHERE id = $1::uuid AND session_id = $2::uuid AND role = 'user' "
      "RETURNING id", 2 },

    /* the history given to the engine: the newest $3 messages before the
       question ($2) that say something, oldest first */
    { "message_history",
      "SELECT h.role, h.content FROM ("
      " SELECT m.role, m.content, m.created_at, m.id FROM messages m "
      " WHERE m.session_id = $1::uuid AND m.id <> $2::uuid "
      " AND m.content <> '' "
      " ORDER BY m.created_at DESC, m.id DESC LIMIT $3::int) h "
      "ORDER BY h.created_at, h.id", 3 },

    /* The reply, at the end of the engine's stream (the engine thread):
       $1 session, $2 content, $3 sources (a JSON array), $4 incomplete.
       No row: the session was deleted meanwhile. */
    { "message_reply",
      "WITH s AS ("
      " UPDATE sessions t SET updated_at = " ENC_TOUCHED("t") " "
      " WHERE t.id = $1::uuid RETURNING t.id) "
      "INSERT INTO messages (session_id, role, content, sources, incomplete) "
      "SELECT s.id, 'assistant', $2::text, $3::jsonb, $4::boolean FROM s "
      "RETURNING {message}", 4 },

    /* ---- consumed events (chat_on_event) ---- */

    /* encore.user.deleted, $1 the key (the user's id), $2 the data
       ({"id"}).  First the user's lock, exclusively (every session insert
       takes it shared: 001_chat.sql), then remembered, so that a session
       created later with a token issued before is refused; then their
       messages (each published deleted) and their sessions. */
    { "user_lock",
      "SELECT pg_advisory_xact_lock(chat_user_lock(u.id)) "
      "FROM " GONE_USER " u", 2 },

    { "user_gone",
      "INSERT INTO gone_users (id) SELECT u.id FROM " GONE_USER " u "
      "WHERE u.id IS NOT NULL ON CONFLICT DO NOTHING", 2 },

    { "user_messages_delete",
      "DELETE FROM messages m USING sessions s, " GONE_USER " u "
      "WHERE m.session_id = s.id AND s.user_id = u.id RETURNING m.id", 2 },

    { "user_sessions_delete",
      "DELETE FROM sessions s USING " GONE_USER " u "
      "WHERE s.user_id = u.id", 2 },

    { NULL, NULL, 0 }
};
