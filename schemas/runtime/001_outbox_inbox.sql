-- Transactional outbox and idempotent inbox, created in every worker's schema.
--
-- Applied by enc_migrate() with search_path set to the worker's schema, so
-- every name here is unqualified.  schema_migrations is created by migrate.c.

-- One row per event, written in the same transaction as the domain change.
-- The relay (workers/lib/outbox.c) publishes rows with published_at IS NULL
-- in id order and stamps published_at only after Kafka acknowledged them.
-- ids are assigned at INSERT but transactions commit in any order, so the
-- relay never keeps a high-water mark: the backlog is "published_at IS NULL".
CREATE TABLE outbox (
    id            bigserial   PRIMARY KEY,
    event_id      uuid        NOT NULL DEFAULT gen_random_uuid() UNIQUE, -- ce_id
    topic         text        NOT NULL,
    key           text,                           -- Kafka key: the aggregate id
    type          text        NOT NULL,           -- ce_type
    source        text        NOT NULL,           -- ce_source, "/encore/<worker>"
    subject       text,                           -- ce_subject, "users/<id>"
    time          timestamptz NOT NULL DEFAULT now(), -- ce_time
    data          text        NOT NULL,           -- the exact JSON bytes sent
    request_id    text,                           -- ce_encorerequestid
    created_at    timestamptz NOT NULL DEFAULT now(),
    published_at  timestamptz,
    attempts      integer     NOT NULL DEFAULT 0  -- failed delivery attempts
);

-- The relay's only query shape; stays tiny because published rows leave it.
CREATE INDEX outbox_backlog_idx ON outbox (id) WHERE published_at IS NULL;

-- Wake the relay on commit.  Statement-level so a multi-row INSERT sends one
-- notification, and NOTIFY folds duplicates within a transaction anyway.
-- The channel is named after the table's schema (TG_TABLE_SCHEMA is the
-- schema the row went to, which is current_schema() for a worker whose
-- search_path is its own schema, and stays right even if it is not).
CREATE FUNCTION outbox_notify() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('encore_outbox_' || TG_TABLE_SCHEMA, '');
    RETURN NULL;
END
$$;

CREATE TRIGGER outbox_notify
    AFTER INSERT ON outbox
    FOR EACH STATEMENT EXECUTE FUNCTION outbox_notify();

-- Event ids already applied by this worker's consumer; inserted in the same
-- transaction as the handler's effects, so a replayed event changes nothing.
CREATE TABLE inbox (
    event_id     text        PRIMARY KEY,
    topic        text        NOT NULL,
    received_at  timestamptz NOT NULL DEFAULT now()
);
