import type Redis from 'ioredis';
import type { Cluster } from 'ioredis';
import { hotKey, type Doc, type InlineReadModels } from '@lorestore/projections';
import type { Pool } from 'pg';
import { comparePositions, type EventStore, type Position, type RecordedEvent } from '@lorestore/event-store';

/** The feed position of the last event committed in the pool's schema (not gap-safe: for tests that wait for their own writes). */
export const lastCommitted = async (pool: Pool): Promise<Position | null> => {
  const { rows } = await pool.query<{ commit: string; position: string }>(
    'SELECT transaction_id::text AS commit, position FROM events ORDER BY events.transaction_id DESC, events.position DESC LIMIT 1',
  );
  return rows[0] ? { commit: BigInt(rows[0].commit), prepare: BigInt(rows[0].position) } : null;
};

/**
 * Waits until a runner has applied `position`, by default the last event
 * committed in the pool's schema (not the gap-safe head, which another
 * suite's open transaction may hold back); polls for at most `timeoutMs`.
 */
export const runnerCaughtUp = async (runner: { position: Position | null }, pool: Pool, position?: Position, timeoutMs = 10_000): Promise<void> => {
  const head = position ?? (await lastCommitted(pool));
  for (const deadline = Date.now() + timeoutMs; Date.now() < deadline; ) {
    const p = runner.position;
    if (head === null || (p && comparePositions(p, head) >= 0)) return;
    await new Promise((r) => setTimeout(r, 20));
  }
  throw new Error('the projector did not catch up');
};

/** The whole log through the gap-safe feed, once it holds the last event committed in the schema. */
export const wholeLog = async (store: EventStore, pool: Pool): Promise<RecordedEvent[]> => {
  const last = await lastCommitted(pool);
  for (let i = 0; ; i++) {
    const log = await store.readAll({ maxCount: 10_000_000 });
    if (!last || log.at(-1)?.position.prepare === last.prepare || i > 500) return log;
    await new Promise((r) => setTimeout(r, 20));
  }
};

/** A document as the comparisons see it, keyed `table|world|id`. */
export type ComparableDoc = { state: unknown; revision: bigint; position: bigint };

/** Every read-model row PostgreSQL holds, in the shape `expectedOf` gives a fresh fold. */
export const readBackPostgres = async (pool: Pool) => {
  const docs = new Map<string, ComparableDoc>();
  for (const table of ['entities', 'world_state', 'narrative_state', 'player_state'] as const) {
    const id = table === 'entities' ? 'entity_id::text' : table === 'player_state' ? 'player_id::text' : 'world_id';
    const { rows } = await pool.query<{ world_id: string; id: string; data: unknown; revision: string; position: string }>(
      `SELECT world_id, ${id} AS id, data, revision, position FROM ${table}`,
    );
    for (const r of rows) docs.set(`${table}|${r.world_id}|${r.id}`, { state: r.data, revision: BigInt(r.revision), position: BigInt(r.position) });
  }
  const { rows } = await pool.query<{ key: string }>(
    `SELECT world_id || '|' || player_id || '|' || revision || '|' || action || '|' || to_char(at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"') || '|' || rolled_back AS key
       FROM player_history ORDER BY 1`,
  );
  return { docs, history: rows.map((r) => r.key) };
};

/** What a fresh, ordered, once-only fold of the log says the read models must hold. */
export const expectedOf = (models: InlineReadModels) => ({
  docs: new Map([...models.docs.values()].map((d) => [`${d.table}|${d.worldId}|${d.id}`, { state: d.state, revision: d.revision, position: d.position }])),
  history: [...models.history.values()].map((h) => `${h.worldId}|${h.playerId}|${h.revision}|${h.action}|${h.at}|${h.rolledBack}`).sort(),
});

/** The hot-state copies of these documents, read straight from Redis (null where a key is missing). */
export const readBackRedis = async (redis: Redis | Cluster, prefix: string, docs: Iterable<Doc>) => {
  const out = new Map<string, ComparableDoc | null>();
  for (const d of docs) {
    const [revision, position, doc] = await redis.hmget(prefix + hotKey(d.table, d.worldId, d.id), 'revision', 'position', 'doc');
    out.set(`${d.table}|${d.worldId}|${d.id}`, doc === null ? null : { state: JSON.parse(doc), revision: BigInt(revision!), position: BigInt(position!) });
  }
  return out;
};
