-- Erasure (GDPR): a memory about an erased player loses its text and vector
-- and leaves search for good (no rollback or restore brings it back: its
-- sealed text can no longer be opened).
ALTER TABLE npc_memories ADD COLUMN erased boolean NOT NULL DEFAULT false;
CREATE INDEX npc_memories_subjects ON npc_memories USING gin (subjects);
DROP INDEX npc_memories_unsynced;
CREATE INDEX npc_memories_unsynced ON npc_memories (changed_at)
  WHERE indexed IS DISTINCT FROM (NOT rolled_back AND NOT forgotten AND NOT erased);
-- A memory about players keeps its text and embedding sealed as the event has
-- them ({ text, embedding } envelopes; `text` and `embedding` stay empty), so
-- a backup of the rows holds no plaintext of them; the store opens them as it reads.
ALTER TABLE npc_memories ADD COLUMN sealed jsonb;
