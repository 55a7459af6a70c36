-- probe: the integration tests' witness for the outbox and the consumer.
--
-- writes: what POST /writes committed (each with one outbox event).
-- seen:   what the consumer applied from encore.probe.writes.  The inbox
--         makes every event apply once, so applications must stay 1: a 2
--         would mean a redelivered event was applied again.

CREATE TABLE writes (
    id          bigserial   PRIMARY KEY,
    value       text        NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE seen (
    event_id       text        PRIMARY KEY,
    write_id       bigint      NOT NULL,
    value          text,
    type           text        NOT NULL,
    applications   integer     NOT NULL DEFAULT 1,
    first_seen_at  timestamptz NOT NULL DEFAULT now()
);
