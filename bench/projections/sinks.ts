import Redis from 'ioredis';
import type { Pool } from 'pg';
import { createPostgresPool, withTransaction } from '@lorestore/infra';
import { ReadModelStore, RedisHotState, hotKey, type Doc, type DocTable } from '@lorestore/projections';
import { checkpoint, quoteIdent } from '../support/database';
import type { RecordedCommit } from './instrumented';
import { countKeys, redisCpuMs } from './redis';

export type SinkResult = {
  label: string;
  events: number;
  writes: number;
  ms: number;
  eventsPerSecond: number;
  /** Documents (Redis) or rows (PostgreSQL) per second. */
  writesPerSecond: number;
  /** What is there afterwards (keys or rows), to show the writes landed. */
  stored: number;
  /** Redis sinks: CPU the Redis server used meanwhile (the rest of the time is the client and the network). */
  serverCpuMs?: number | null;
};

const rate = (n: number, ms: number) => (ms > 0 ? Math.round((n / ms) * 1000) : 0);

const result = (label: string, events: number, writes: number, ms: number, stored: number): SinkResult => ({
  label,
  events,
  writes,
  ms: Math.round(ms),
  eventsPerSecond: rate(events, ms),
  writesPerSecond: rate(writes, ms),
  stored,
});

/** (b) `RedisHotState.put` of the documents the runner wrote, chunk by chunk as it wrote them, into fresh keys. */
export const redisSink = async (url: string, prefix: string, puts: Doc[][], events: number, ttlSeconds: number): Promise<SinkResult> => {
  const hot = new RedisHotState({ url, keyPrefix: prefix, ttlSeconds, connectTimeoutMs: 5000, commandTimeoutMs: 30_000 });
  try {
    await hot.ping();
    const cpuBefore = await redisCpuMs(url);
    const started = performance.now();
    for (const docs of puts) await hot.put(docs);
    const ms = performance.now() - started;
    const cpuAfter = await redisCpuMs(url);
    return {
      ...result('RedisHotState.put (Lua revision guard)', events, puts.reduce((n, p) => n + p.length, 0), ms, await countKeys(url, prefix)),
      serverCpuMs: cpuBefore !== null && cpuAfter !== null ? Math.round(cpuAfter - cpuBefore) : null,
    };
  } finally {
    await hot.close();
  }
};

/** Baseline for (b): the same documents and chunks as one pipeline of HSET + EXPIRE each, no guard. */
export const redisPlain = async (url: string, prefix: string, puts: Doc[][], events: number, ttlSeconds: number): Promise<SinkResult> => {
  const redis = new Redis(url, { keyPrefix: prefix, maxRetriesPerRequest: 2, commandTimeout: 30_000 });
  try {
    await redis.ping();
    const cpuBefore = await redisCpuMs(url);
    const started = performance.now();
    for (const docs of puts) {
      const pipeline = redis.pipeline();
      for (const d of docs) {
        const key = hotKey(d.table, d.worldId, d.id);
        pipeline.hset(key, 'revision', d.revision.toString(), 'position', d.position.toString(), 'updatedAt', d.updatedAt, 'doc', JSON.stringify(d.state));
        pipeline.expire(key, ttlSeconds);
      }
      const replies = await pipeline.exec();
      const failed = replies?.find(([error]) => error);
      if (failed) throw failed[0]!;
    }
    const ms = performance.now() - started;
    const cpuAfter = await redisCpuMs(url);
    return {
      ...result('pipelined HSET + EXPIRE (no guard)', events, puts.reduce((n, p) => n + p.length, 0), ms, await countKeys(url, prefix)),
      serverCpuMs: cpuBefore !== null && cpuAfter !== null ? Math.round(cpuAfter - cpuBefore) : null,
    };
  } finally {
    redis.disconnect();
  }
};

const DOC_TABLES: DocTable[] = ['entities', 'world_state', 'narrative_state', 'player_state'];
const READ_MODEL_TABLES = [...DOC_TABLES, 'player_history'];

const countRows = async (pool: Pool): Promise<number> => {
  const { rows } = await pool.query<{ n: string }>(`SELECT ${READ_MODEL_TABLES.map((t) => `(SELECT count(*) FROM ${t})`).join(' + ')} AS n`);
  return Number(rows[0]!.n);
};

const rowsOf = (commits: RecordedCommit[]) => commits.reduce((n, c) => n + c.changes.docs.length + c.changes.history.length, 0);

/** (c) `ReadModelStore.commit` of the runner's batches, in order, into a freshly migrated schema. */
export const postgresSink = async (url: string, admin: Pool, schema: string, commits: RecordedCommit[], events: number): Promise<SinkResult> => {
  const pool = createPostgresPool({ url, schema, max: 2, applicationName: 'bench-proj-sink' });
  try {
    await ReadModelStore.migrate(pool, schema);
    const store = new ReadModelStore(pool);
    await checkpoint(admin);
    const started = performance.now();
    // As the runner committed them (its catch-up batches send their history rows by COPY).
    for (const c of commits) await store.commit(c.changes, c.projections, c.eventCount, 1, c.options);
    const ms = performance.now() - started;
    return result('ReadModelStore.commit (guarded upserts + checkpoints)', events, rowsOf(commits), ms, await countRows(pool));
  } finally {
    await pool.end();
  }
};

/**
 * The read-model tables of `template` in `schema`, same columns, defaults and
 * indexes, but every index non-unique (so the same document can be inserted
 * again) and player_history a plain table (no partitions): what a write
 * with no guard, no upsert and no checkpoint costs.
 */
const createUnguardedTables = async (pool: Pool, template: string, schema: string): Promise<void> => {
  const t = quoteIdent(template);
  const s = quoteIdent(schema);
  await pool.query(`CREATE SCHEMA IF NOT EXISTS ${s}`);
  for (const table of READ_MODEL_TABLES) await pool.query(`CREATE TABLE ${s}.${table} (LIKE ${t}.${table} INCLUDING DEFAULTS)`);
  const { rows } = await pool.query<{ indexdef: string }>('SELECT indexdef FROM pg_indexes WHERE schemaname = $1 AND tablename = ANY ($2)', [
    template,
    READ_MODEL_TABLES,
  ]);
  for (const { indexdef } of rows) {
    const plain = indexdef.replace(/^CREATE UNIQUE INDEX/, 'CREATE INDEX').replace(' ON ONLY ', ' ON ').replace(` ${template}.`, ` ${s}.`);
    await pool.query(plain);
  }
};

/** Baseline for (c): per batch one transaction of multi-row INSERT … SELECT FROM unnest(…) per table into unguarded copies. */
export const postgresPlain = async (url: string, admin: Pool, template: string, schema: string, commits: RecordedCommit[], events: number): Promise<SinkResult> => {
  await createUnguardedTables(admin, template, schema);
  const pool = createPostgresPool({ url, schema, max: 2, applicationName: 'bench-proj-plain' });
  const write = async (commit: RecordedCommit) => {
    const byTable = new Map<DocTable, Doc[]>();
    for (const doc of commit.changes.docs) {
      if (!byTable.has(doc.table)) byTable.set(doc.table, []);
      byTable.get(doc.table)!.push(doc);
    }
    await withTransaction(pool, async (client) => {
      // The same durability as ReadModelStore.commit: no wait for the WAL flush.
      await client.query('SET LOCAL synchronous_commit = off');
      for (const [table, docs] of byTable) {
        const common = [docs.map((d) => JSON.stringify(d.state)), docs.map((d) => d.revision.toString()), docs.map((d) => d.position.toString()), docs.map((d) => d.updatedAt)];
        if (table === 'entities') {
          const states = docs.map((d) => d.state as { kind?: string; status?: string; locationId?: string | null });
          await client.query(
            `INSERT INTO entities (world_id, entity_id, stream_id, kind, status, location_id, data, revision, position, updated_at)
             SELECT * FROM unnest($1::text[], $2::uuid[], $3::text[], $4::text[], $5::text[], $6::uuid[], $7::jsonb[], $8::bigint[], $9::bigint[], $10::timestamptz[])`,
            [docs.map((d) => d.worldId), docs.map((d) => d.id), docs.map((d) => d.streamId), states.map((s) => s.kind ?? null), states.map((s) => s.status ?? null), states.map((s) => s.locationId ?? null), ...common],
          );
        } else if (table === 'player_state') {
          await client.query(
            `INSERT INTO player_state (world_id, player_id, data, revision, position, updated_at)
             SELECT * FROM unnest($1::text[], $2::uuid[], $3::jsonb[], $4::bigint[], $5::bigint[], $6::timestamptz[])`,
            [docs.map((d) => d.worldId), docs.map((d) => d.id), ...common],
          );
        } else {
          await client.query(
            `INSERT INTO ${table} (world_id, data, revision, position, updated_at)
             SELECT * FROM unnest($1::text[], $2::jsonb[], $3::bigint[], $4::bigint[], $5::timestamptz[])`,
            [docs.map((d) => d.worldId), ...common],
          );
        }
      }
      const history = commit.changes.history;
      if (history.length > 0) {
        await client.query(
          `INSERT INTO player_history (world_id, player_id, at, action, context, revision, position)
           SELECT * FROM unnest($1::text[], $2::uuid[], $3::timestamptz[], $4::text[], $5::jsonb[], $6::bigint[], $7::bigint[])`,
          [
            history.map((h) => h.worldId),
            history.map((h) => h.playerId),
            history.map((h) => h.at),
            history.map((h) => h.action),
            history.map((h) => JSON.stringify(h.context)),
            history.map((h) => h.revision.toString()),
            history.map((h) => h.position.toString()),
          ],
        );
      }
    });
  };
  try {
    await checkpoint(admin);
    const started = performance.now();
    for (const c of commits) await write(c);
    const ms = performance.now() - started;
    return result('multi-row INSERT into unguarded copies', events, rowsOf(commits), ms, await countRows(pool));
  } finally {
    await pool.end();
  }
};
