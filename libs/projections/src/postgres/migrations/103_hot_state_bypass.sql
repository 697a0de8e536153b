-- While the hot store (Redis) cannot take writes, the live projector goes on
-- committing the PostgreSQL read models without it, and says so here: readers
-- then answer from PostgreSQL only. `from_*` is the checkpoint at which it
-- stopped writing the hot store; when the hot store is back, the projector
-- writes the documents of every stream with events after it again, then
-- deletes the row. At most one row.
CREATE TABLE hot_state_bypass (
  singleton     boolean PRIMARY KEY DEFAULT true CHECK (singleton),
  since         timestamptz NOT NULL DEFAULT now(),
  from_commit   xid8,
  from_position bigint,
  reason        text NOT NULL
);
