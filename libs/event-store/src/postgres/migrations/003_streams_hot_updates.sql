-- Every append updates its stream's head. With `revision` in an index predicate
-- (001's partial index), no such update could be HOT: each one wrote new entries
-- into both indexes of `streams`. Index only columns that never change, and
-- leave room on each page, so head updates stay heap-only.
DROP INDEX streams_world_category;
CREATE INDEX streams_world_category ON streams (world_id, category, stream_id);
ALTER TABLE streams SET (fillfactor = 70);
