-- Retention: the relay deletes published outbox rows after
-- outbox.retain_hours (workers/lib/outbox.c, relay_prune) and the consumer
-- deletes inbox rows after consumer.inbox_retain_hours (consumer.c,
-- consumer_prune).  These indexes find the oldest rows without scanning the
-- tables; the outbox one stays out of the way of the backlog
-- (published_at IS NULL), which has its own index.
CREATE INDEX outbox_published_idx ON outbox (published_at)
    WHERE published_at IS NOT NULL;

CREATE INDEX inbox_received_idx ON inbox (received_at);
