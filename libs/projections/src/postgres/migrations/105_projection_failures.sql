-- Why a projection does not move: the live projector's failures since its last
-- committed batch, one row per projection, written by whichever process leads
-- and deleted by its next committed batch. Any API instance shows them in
-- GET /v1/admin/projections (the projector may be another process).
CREATE TABLE projection_failures (
  name          text PRIMARY KEY,
  message       text NOT NULL,
  failures      int NOT NULL,
  first_at      timestamptz NOT NULL DEFAULT now(),
  last_at       timestamptz NOT NULL DEFAULT now(),
  -- The checkpoint it could not get past (null: the start).
  after_commit  xid8,
  after_position bigint
);
