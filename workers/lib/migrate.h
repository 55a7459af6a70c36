/*
 * migrate: schema migrations applied at start.
 *
 * Applies <dir>/runtime/\*.sql, then <dir>/<schema>/\*.sql, each set in
 * byte order of file names (NNN_name.sql), each file in its own
 * transaction, under pg_advisory_lock(hashtext('encore.migrate.<schema>'))
 * so that several processes of a worker starting together apply each file
 * once.  Applied files are recorded in <schema>.schema_migrations(version
 * text primary key, applied_at): runtime files as "runtime/<file>", the
 * schema's own as "<file>".  The schema is created if missing (when the
 * role may).  A file that fails stops the run: nothing after it is
 * applied, and the error is logged with the file name.
 */
#ifndef ENC_MIGRATE_H
#define ENC_MIGRATE_H

#include "pg.h"

#define ENC_MIGRATE_FILE_MAX  (16 * 1024 * 1024)

/* pg: a private connection (enc_pg_connect_new), not in a transaction */
int enc_migrate(enc_pg_t *pg, const char *dir, const char *schema);

#endif /* ENC_MIGRATE_H */
