-- Rollbacks and blue-green rebuilds.

-- A recorded action undone by a rollback stays (a restore brings it back, and
-- a replay of the log must give the same rows): it is only marked.
ALTER TABLE player_history ADD COLUMN rolled_back boolean NOT NULL DEFAULT false;

-- Which generation of a projection's hot-state keys readers use. A rebuild
-- writes the next generation's keys beside the live ones and the switch moves
-- this number in the same transaction as the tables.
ALTER TABLE projection_checkpoints ADD COLUMN generation int NOT NULL DEFAULT 1;

-- Rebuild jobs: one row per rebuild, its progress written as it runs. At most
-- one unfinished rebuild per projection.
CREATE TABLE projection_jobs (
  job_id        uuid PRIMARY KEY,
  projection    text NOT NULL,
  state         text NOT NULL CHECK (state IN ('pending', 'running', 'switching', 'succeeded', 'failed')),
  processed     bigint NOT NULL DEFAULT 0,
  total         bigint,
  events_per_second double precision,
  requested_by  text NOT NULL,
  reason        text,
  error         text,
  created_at    timestamptz NOT NULL DEFAULT now(),
  started_at    timestamptz,
  finished_at   timestamptz,
  updated_at    timestamptz NOT NULL DEFAULT now()
);
CREATE UNIQUE INDEX projection_jobs_one_active ON projection_jobs (projection) WHERE state IN ('pending', 'running', 'switching');
CREATE INDEX projection_jobs_created ON projection_jobs (created_at DESC);
