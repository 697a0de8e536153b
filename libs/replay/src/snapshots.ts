import path from 'node:path';
import type { Pool } from 'pg';
import { loadMigrations, migrate } from '@lorestore/infra';

export const REPLAY_MIGRATIONS_DIR = path.join(__dirname, 'postgres', 'migrations');

export const migrateReplay = async (pool: Pool, schema: string): Promise<string[]> => migrate(pool, schema, await loadMigrations(REPLAY_MIGRATIONS_DIR));

export type Snapshot = {
  streamId: string;
  revision: bigint;
  reducerVersion: number;
  position: bigint;
  eventTime: Date;
  state: unknown;
};

/** At or before which point a snapshot may be used: the same bounds a state-at takes. */
export type SnapshotBound = { revision?: bigint; position?: bigint; time?: Date };

/**
 * Aggregate states in PostgreSQL, every N events of a stream, tagged with the
 * reducer version that folded them. Written by the command path when a
 * stream crosses a multiple of N, and by state-at when it had to fold far.
 * Never the truth: a missing or unusable snapshot only means a longer fold.
 */
export class SnapshotStore {
  constructor(private readonly pool: Pool) {}

  /** The newest snapshot of this reducer version within the bound, or null. */
  async latest(streamId: string, reducerVersion: number, bound: SnapshotBound = {}): Promise<Snapshot | null> {
    const { rows } = await this.pool.query<{ revision: string; position: string; event_time: Date; state: unknown }>(
      `SELECT revision, position, event_time, state FROM snapshots
        WHERE stream_id = $1 AND reducer_version = $2
          AND ($3::bigint IS NULL OR revision <= $3) AND ($4::bigint IS NULL OR position <= $4) AND ($5::timestamptz IS NULL OR event_time <= $5)
        ORDER BY revision DESC LIMIT 1`,
      [streamId, reducerVersion, bound.revision?.toString() ?? null, bound.position?.toString() ?? null, bound.time ?? null],
    );
    const row = rows[0];
    if (!row) return null;
    return { streamId, revision: BigInt(row.revision), reducerVersion, position: BigInt(row.position), eventTime: row.event_time, state: row.state };
  }

  /**
   * Stores snapshots (an existing one at the same revision and version is
   * kept). The position and time are taken from the event itself, so a
   * snapshot can only exist for an event that is committed.
   */
  async save(snapshots: readonly { streamId: string; revision: bigint; reducerVersion: number; state: unknown }[]): Promise<number> {
    if (snapshots.length === 0) return 0;
    const { rowCount } = await this.pool.query(
      `INSERT INTO snapshots (stream_id, revision, reducer_version, position, event_time, state)
       SELECT e.stream_id, e.revision, s.reducer_version, e.position, e.created_at, s.state
         FROM jsonb_to_recordset($1::jsonb) AS s(stream_id text, revision bigint, reducer_version int, state jsonb)
         JOIN events e ON e.stream_id = s.stream_id AND e.revision = s.revision
       ON CONFLICT DO NOTHING`,
      [JSON.stringify(snapshots.map((s) => ({ stream_id: s.streamId, revision: s.revision.toString(), reducer_version: s.reducerVersion, state: s.state })))],
    );
    return rowCount ?? 0;
  }

  /** Snapshots made by other reducer versions: never read again. Returns how many were deleted. */
  async pruneStale(current: Record<string, number>): Promise<number> {
    const { rowCount } = await this.pool.query(
      `DELETE FROM snapshots s USING jsonb_each_text($1::jsonb) AS v(category, version)
        WHERE split_part(s.stream_id, '-', 1) = v.category AND s.reducer_version <> v.version::int`,
      [JSON.stringify(current)],
    );
    return rowCount ?? 0;
  }
}
