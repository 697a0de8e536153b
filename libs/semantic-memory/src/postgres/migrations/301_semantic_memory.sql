-- NPC memories: the rows of the vector-index projection (versions 301+).
-- Every row is rebuilt from the log (NpcMemoryRecorded, NpcMemoryForgotten and
-- StreamRolledBack events of NPC streams). The embedded vector index searches
-- these rows in process; the Pinecone index is kept in step with them.

-- Whether `rev` lies in one of the inclusive ranges [[a, b], ...] of a rollback's `kept`.
CREATE FUNCTION lorestore_in_ranges(rev bigint, ranges jsonb) RETURNS boolean
  LANGUAGE sql IMMUTABLE PARALLEL SAFE
  RETURN EXISTS (SELECT 1 FROM jsonb_array_elements(ranges) r WHERE rev BETWEEN (r->>0)::bigint AND (r->>1)::bigint);

CREATE TABLE npc_memories (
  memory_id     uuid PRIMARY KEY,
  world_id      text NOT NULL,
  npc_id        uuid NOT NULL,
  -- The NPC stream's revision and the global position of the NpcMemoryRecorded event.
  revision      bigint NOT NULL,
  position      bigint NOT NULL,
  text          text NOT NULL,
  importance    smallint NOT NULL,
  subjects      uuid[] NOT NULL DEFAULT '{}',
  created_at    timestamptz NOT NULL,
  -- float32 little-endian, scaled to unit length (cosine similarity is then a dot product).
  embedding     bytea NOT NULL,
  -- Undone by a rollback of the NPC (kept, so a restore brings it back).
  rolled_back   boolean NOT NULL DEFAULT false,
  -- Revisions of the NpcMemoryForgotten events naming it; `forgotten` while one of them is in effect.
  forgotten_at  bigint[] NOT NULL DEFAULT '{}',
  forgotten     boolean NOT NULL DEFAULT false,
  -- The position of the last event that changed the row: per NPC it only grows
  -- (an NPC's events are one stream), so a cache catches up with `changed_at > seen`.
  changed_at    bigint NOT NULL,
  -- External index only (Pinecone): whether the record is there; null when never pushed.
  indexed       boolean
);
CREATE INDEX npc_memories_npc ON npc_memories (world_id, npc_id, changed_at);
-- The outbox of the external index: rows whose presence there differs from what it should be.
CREATE INDEX npc_memories_unsynced ON npc_memories (changed_at)
  WHERE indexed IS DISTINCT FROM (NOT rolled_back AND NOT forgotten);

-- When a memory was last retrieved (Generative Agents' recency). Not part of the
-- projection: a rebuild of the index keeps it.
CREATE TABLE npc_memory_access (
  memory_id         uuid PRIMARY KEY,
  last_accessed_at  timestamptz NOT NULL
);
