-- Which index the memory rows' `indexed` column speaks for. Switching VECTOR_INDEX
-- (embedded <-> pinecone) makes the rows resend themselves to the new index.
CREATE TABLE npc_memory_index (
  id    int PRIMARY KEY DEFAULT 1 CHECK (id = 1),
  kind  text NOT NULL
);
