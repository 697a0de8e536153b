-- Replay and rollback. Versions 201+ (event store 001–099, read models 101–199).

-- Snapshots: an aggregate's state after revision `revision` of its stream, as
-- the reducer of version `reducer_version` folded it. State-at folds from the
-- nearest snapshot of the current version; others are never read (and can be
-- deleted at leisure). Derived data: losing them costs time, never truth.
CREATE TABLE snapshots (
  stream_id        text NOT NULL,
  revision         bigint NOT NULL,
  reducer_version  int NOT NULL,
  -- Global position and append time of the event at `revision`: the bounds for
  -- a state-at by position or by time.
  position         bigint NOT NULL,
  event_time       timestamptz NOT NULL,
  state            jsonb NOT NULL,
  created_at       timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (stream_id, reducer_version, revision)
);

-- The last rollback of a stream at or before a revision (what a history at a
-- point counts): rollbacks are rare, so this index is tiny and costs appends nothing.
CREATE INDEX events_rollbacks ON events (stream_id, revision) WHERE type = 'StreamRolledBack';
-- World and actor rollbacks by time: a block-range index, a few pages for
-- millions of rows, cheap to keep on an append-only table whose times grow.
CREATE INDEX events_created_brin ON events USING brin (created_at);

-- Every rollback and restore: the audit trail, and what makes a retried
-- request do nothing twice (operation_id is the client's idempotency key).
CREATE TABLE rollback_operations (
  operation_id   uuid PRIMARY KEY,
  world_id       text NOT NULL,
  kind           text NOT NULL CHECK (kind IN ('rollback', 'restore')),
  -- { type: 'stream', streamId, toRevision } | { type: 'world', toPosition | toTime }
  -- | { type: 'actor', actorId, since } | { type: 'restore', operationId }
  scope          jsonb NOT NULL,
  reason         text NOT NULL,
  actor          text NOT NULL,
  -- What the request asked, hashed: the same operation id with another request is refused.
  request_hash   text NOT NULL,
  -- [{ streamId, fromRevision, toRevision, revision, events }]
  streams        jsonb NOT NULL,
  position       bigint NOT NULL,
  restores       uuid REFERENCES rollback_operations (operation_id),
  restored_by    uuid,
  created_at     timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX rollback_operations_world ON rollback_operations (world_id, created_at DESC, operation_id);
-- One restore per rollback.
CREATE UNIQUE INDEX rollback_operations_one_restore ON rollback_operations (restores) WHERE restores IS NOT NULL;
