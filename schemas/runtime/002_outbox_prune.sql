-- The relay deletes published rows after outbox.retain_hours
-- (workers/lib/outbox.c, relay_prune): this index finds the oldest
-- published ones without scanning the table, and stays out of the way of
-- the backlog (published_at IS NULL), which has its own index.
CREATE INDEX outbox_published_idx ON outbox (published_at)
    WHERE published_at IS NOT NULL;
