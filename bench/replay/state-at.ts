import { randomUUID } from 'node:crypto';
import { PerformanceObserver } from 'node:perf_hooks';
import type { Pool } from 'pg';
import { REDUCER_VERSIONS, fold, playerDecider, streamIds, upcast, type PlayerCommand, type PlayerEvent, type PlayerState } from '@lorestore/domain';
import { PostgresEventStore } from '@lorestore/event-store';
import { createPostgresPool, withTransaction } from '@lorestore/infra';
import { ReadModelStore } from '@lorestore/projections';
import { SnapshotStore, StateAt, migrateReplay, type StateTarget } from '@lorestore/replay';
import { analyzeSchema } from '../support/database';
import { log } from '../support/env';
import { LatencyRecorder, type LatencySummary } from '../support/latency';
import { canonical } from './fold';
import { prng } from '../support/random';

type TargetKind = 'revision' | 'position' | 'time';

export type StateAtResult = {
  stream: {
    streamId: string;
    events: number;
    eventTypes: Record<string, number>;
    insertMs: number;
    insertedWith: string;
    snapshots: number;
    snapshotEvery: number;
    snapshotsMs: number;
    snapshotsMadeBy: string;
  };
  /** StateAt before any snapshot existed (snapshotEvery 0, so it makes none): a paged fold from the stream's start. */
  withoutSnapshots: { calls: number; latency: LatencySummary; meanEventsFolded: number };
  lorestore: {
    label: string;
    calls: number;
    warmupCalls: number;
    targets: Record<TargetKind, number>;
    latency: LatencySummary;
    byTarget: Record<TargetKind, LatencySummary>;
    meanEventsFolded: number;
    maxEventsFolded: number;
    /** Calls that started from a snapshot. */
    fromSnapshot: number;
  };
  baseline: { label: string; calls: number; warmupCalls: number; latency: LatencySummary; rowsReadPerCall: number };
  /** baseline p99 / lorestore p99. */
  ratioP99: number | null;
  /**
   * Where the measured calls' time went: waiting on PostgreSQL (every query
   * of the call: snapshot, pages) and the rest (fold, bookkeeping), as
   * p50/p99 over all calls and averaged over the slowest 1 %; and the
   * garbage collector meanwhile.
   */
  parts: {
    database: LatencySummary;
    rest: LatencySummary;
    queriesPerCall: number;
    slowestPercent: { calls: number; totalMs: number; databaseMs: number; restMs: number; queries: number };
    gc: { pauses: number; totalMs: number; maxMs: number };
  };
  /** Results checked against the bench's own fold (state and revision). */
  check: { compared: number; mismatches: number; ok: boolean };
};

const ACTIONS = ['attack', 'trade', 'craft', 'talk', 'loot', 'jump', 'cast', 'quest'];
const BASE_TIME = Date.parse('2026-01-01T00:00:00.000Z');
const INSERT_CHUNK = 5000;

/**
 * A long-lived player: mostly recorded actions, some relationship changes
 * among 50 others, a profile now and then. Kept compact — each event as its
 * type and JSON text, the state after every `every`-th event only — so the
 * bench's own heap adds little to the garbage collector's work while the
 * calls are timed.
 */
const playerStream = (events: number, worldId: string, every: number) => {
  const random = prng(7);
  const playerId = randomUUID();
  const others = Array.from({ length: 50 }, () => randomUUID());
  const streamId = streamIds.player(worldId, playerId);
  const types: string[] = [];
  const dataJson: string[] = [];
  const snapshots: PlayerState[] = [];
  let state = playerDecider.initialState();
  for (let i = 0; types.length < events; i++) {
    const metadata = { commandId: randomUUID(), worldId, actor: 'bench', now: new Date(BASE_TIME + types.length * 1000).toISOString() };
    const roll = random();
    const command: PlayerCommand =
      roll < 0.9
        ? {
            type: 'player.record_action',
            metadata,
            data: { playerId, action: ACTIONS[Math.floor(random() * ACTIONS.length)]!, context: { zone: `z${Math.floor(random() * 40)}`, x: Math.floor(random() * 4096), y: Math.floor(random() * 4096) } },
          }
        : roll < 0.999
          ? { type: 'player.change_relationship', metadata, data: { playerId, targetId: others[Math.floor(random() * others.length)]!, delta: Math.floor(random() * 21) - 10, reason: 'quest' } }
          : { type: 'player.set_profile', metadata, data: { playerId, displayName: `player ${i}`, email: null, locale: 'en' } };
    for (const event of playerDecider.decide(command, state)) {
      if (types.length === events) break;
      state = playerDecider.evolve(state, event);
      types.push(event.type);
      dataJson.push(JSON.stringify(event.data));
      if (types.length % every === 0) snapshots.push(state);
    }
  }
  /** The state after `revision`, folded from the bench's own snapshot before it. */
  const stateAfter = (revision: number): PlayerState => {
    const k = Math.floor((revision + 1) / every);
    let at = k > 0 ? snapshots[k - 1]! : playerDecider.initialState();
    for (let r = k * every; r <= revision; r++) at = playerDecider.evolve(at, { type: types[r], data: JSON.parse(dataJson[r]!) } as PlayerEvent);
    return at;
  };
  return { streamId, playerId, types, dataJson, snapshots, stateAfter };
};

/**
 * The stream written straight into `events` (set-based, 5,000 rows per
 * transaction, explicit created_at one second apart so time targets mean
 * something) and its head row in `streams`, as append_batch leaves them.
 */
const insertStream = async (pool: Pool, streamId: string, worldId: string, types: readonly string[], dataJson: readonly string[]): Promise<void> => {
  for (let from = 0; from < types.length; from += INSERT_CHUNK) {
    const chunk = types.slice(from, from + INSERT_CHUNK);
    await withTransaction(pool, async (client) => {
      await client.query(
        `INSERT INTO streams (stream_id, revision, world_id, category, last_tx) VALUES ($1, $2, $3, 'player', pg_current_xact_id())
         ON CONFLICT (stream_id) DO UPDATE SET revision = excluded.revision, last_tx = excluded.last_tx, updated_at = now()`,
        [streamId, String(from + chunk.length - 1), worldId],
      );
      await client.query(
        `INSERT INTO events (stream_id, revision, event_id, type, schema_version, data, metadata, created_at)
         SELECT $1, r, e, t, 1, d, m, c
           FROM unnest($2::bigint[], $3::uuid[], $4::text[], $5::jsonb[], $6::jsonb[], $7::timestamptz[]) WITH ORDINALITY AS x(r, e, t, d, m, c, o)
          ORDER BY o`,
        [
          streamId,
          chunk.map((_, k) => String(from + k)),
          chunk.map(() => randomUUID()),
          chunk,
          dataJson.slice(from, from + INSERT_CHUNK),
          chunk.map(() => JSON.stringify({ worldId, actor: 'bench', commandId: randomUUID() })),
          chunk.map((_, k) => new Date(BASE_TIME + (from + k) * 1000).toISOString()),
        ],
      );
    });
  }
};

/** Per call: time spent waiting on PostgreSQL (every query of the call) and how many queries it made. */
const db = { ms: 0, queries: 0 };

/**
 * Times every promise-style `pool.query` (StateAt's own and its store's,
 * which share the pool): whatever round trips a state-at makes — the
 * snapshot, the first page, further pages — are counted without knowing them.
 */
const timeQueries = (pool: Pool): void => {
  const query = pool.query.bind(pool) as (...args: unknown[]) => Promise<unknown>;
  Object.assign(pool, {
    query: async (...args: unknown[]) => {
      const started = performance.now();
      try {
        return await query(...args);
      } finally {
        db.ms += performance.now() - started;
        db.queries++;
      }
    },
  });
};

/** Every event's position and append time, in revision order, as plain numbers (cheap for the garbage collector to keep). */
const positionsAndTimes = async (pool: Pool, streamId: string): Promise<{ positions: Float64Array; times: Float64Array }> => {
  const { rows } = await pool.query<{ position: string; created_at: Date }>('SELECT position, created_at FROM events WHERE stream_id = $1 ORDER BY revision', [streamId]);
  return { positions: Float64Array.from(rows, (r) => Number(r.position)), times: Float64Array.from(rows, (r) => r.created_at.getTime()) };
};

const ratio2 = (a: number, b: number) => (b > 0 ? Math.round((a / b) * 100) / 100 : null);

/**
 * (2) State-at on one long stream with snapshots every N events, against the
 * seed's replay_events: the whole stream read, filtered to the target, folded.
 */
export const runStateAt = async (options: {
  url: string;
  schema: string;
  events: number;
  snapshotEvery: number;
  calls: number;
  warmupCalls: number;
  baselineCalls: number;
  noSnapshotCalls: number;
}): Promise<StateAtResult> => {
  const { schema } = options;
  const pool = createPostgresPool({ url: options.url, schema, max: 4, applicationName: 'bench-replay-state-at' });
  timeQueries(pool);
  const store = new PostgresEventStore({ pool, schema });
  try {
    await PostgresEventStore.migrate(pool, schema);
    await ReadModelStore.migrate(pool, schema);
    await migrateReplay(pool, schema);

    const worldId = 'bench-replay';
    const every = options.snapshotEvery;
    const generated = playerStream(options.events, worldId, every);
    const { streamId, types, dataJson, snapshots: snapshotStates, stateAfter } = generated;
    const eventTypes: Record<string, number> = {};
    for (const t of types) eventTypes[t] = (eventTypes[t] ?? 0) + 1;
    let started = performance.now();
    await insertStream(pool, streamId, worldId, types, dataJson);
    await analyzeSchema(pool, schema);
    const insertMs = Math.round(performance.now() - started);
    log(`  ${types.length} events on ${streamId} in ${insertMs} ms`);

    const { positions, times } = await positionsAndTimes(pool, streamId);
    if (positions.length !== types.length) throw new Error(`read back ${positions.length} events, wrote ${types.length}`);

    const random = prng(11);
    const randomRevision = () => Math.floor(random() * types.length);
    const snapshots = new SnapshotStore(pool);
    let compared = 0;
    let mismatches = 0;
    const check = (revision: number, state: unknown, got: bigint) => {
      compared++;
      if (got !== BigInt(revision) || canonical(state) !== canonical(stateAfter(revision))) {
        mismatches++;
        if (mismatches <= 3) log(`  WARNING: state at revision ${revision} differs (got revision ${got})`);
      }
    };

    // Before any snapshot exists: what a state-at costs without them (and it makes none, snapshotEvery 0).
    const cold = new StateAt({ store, pool, snapshots, snapshotEvery: 0 });
    const coldLatency = new LatencyRecorder();
    let coldFolded = 0;
    for (let i = 0; i < options.noSnapshotCalls; i++) {
      const revision = randomRevision();
      const t0 = performance.now();
      const result = await cold.stream(streamId, { revision: BigInt(revision) });
      coldLatency.record(performance.now() - t0);
      coldFolded += result.eventsFolded;
      check(revision, result.state, result.revision);
    }

    // Snapshots every N events, from the bench's own fold, saved as the command path saves them.
    started = performance.now();
    const toSave: { streamId: string; revision: bigint; reducerVersion: number; state: unknown }[] = [];
    snapshotStates.forEach((state, k) => toSave.push({ streamId, revision: BigInt((k + 1) * every - 1), reducerVersion: REDUCER_VERSIONS.player, state }));
    let saved = 0;
    for (let i = 0; i < toSave.length; i += 100) saved += await snapshots.save(toSave.slice(i, i + 100));
    await analyzeSchema(pool, schema);
    const snapshotsMs = Math.round(performance.now() - started);
    log(`  ${saved} snapshots (every ${every} events) in ${snapshotsMs} ms`);

    const stateAt = new StateAt({ store, pool, snapshots, snapshotEvery: every, onSnapshotError: (e) => log(`  snapshot not saved: ${String(e)}`) });
    const kinds: TargetKind[] = [];
    const target = (): { kind: TargetKind; revision: number; target: StateTarget } => {
      const revision = randomRevision();
      const roll = random();
      if (roll < 0.8) return { kind: 'revision', revision, target: { revision: BigInt(revision) } };
      if (roll < 0.9) return { kind: 'position', revision, target: { position: BigInt(positions[revision]!) } };
      return { kind: 'time', revision, target: { time: new Date(times[revision]!) } };
    };
    for (let i = 0; i < options.warmupCalls; i++) {
      const t = target();
      await stateAt.stream(streamId, t.target);
    }
    const all = new LatencyRecorder();
    const byTarget: Record<TargetKind, LatencyRecorder> = { revision: new LatencyRecorder(), position: new LatencyRecorder(), time: new LatencyRecorder() };
    let folded = 0;
    let maxFolded = 0;
    let fromSnapshot = 0;
    const split = { db: new LatencyRecorder(), rest: new LatencyRecorder() };
    const perCall: { ms: number; dbMs: number; queries: number }[] = [];
    const gc = { pauses: 0, totalMs: 0, maxMs: 0 };
    const gcObserver = new PerformanceObserver((list) => {
      for (const entry of list.getEntries()) {
        gc.pauses++;
        gc.totalMs += entry.duration;
        gc.maxMs = Math.max(gc.maxMs, entry.duration);
      }
    });
    gcObserver.observe({ entryTypes: ['gc'] });
    for (let i = 0; i < options.calls; i++) {
      const t = target();
      db.ms = db.queries = 0;
      const t0 = performance.now();
      const result = await stateAt.stream(streamId, t.target);
      const ms = performance.now() - t0;
      split.db.record(db.ms);
      split.rest.record(Math.max(0, ms - db.ms));
      perCall.push({ ms, dbMs: db.ms, queries: db.queries });
      all.record(ms);
      byTarget[t.kind].record(ms);
      kinds.push(t.kind);
      folded += result.eventsFolded;
      maxFolded = Math.max(maxFolded, result.eventsFolded);
      if (result.snapshotRevision !== null) fromSnapshot++;
      if (i % 20 === 0) check(t.revision, result.state, result.revision);
    }
    gcObserver.disconnect();
    const slowest = [...perCall].sort((a, b) => b.ms - a.ms).slice(0, Math.max(1, Math.round(perCall.length / 100)));
    const mean = (f: (c: (typeof perCall)[number]) => number) => Math.round((slowest.reduce((sum, c) => sum + f(c), 0) / slowest.length) * 1000) / 1000;

    // The seed's replay_events: every row of the stream, filtered to the target in memory, folded.
    const naive = async (revision: number) => {
      const { rows } = await pool.query<{ revision: string; type: string; schema_version: number; data: unknown }>('SELECT * FROM events WHERE stream_id = $1 ORDER BY revision', [streamId]);
      const upTo = rows.filter((r) => Number(r.revision) <= revision);
      const state = fold(
        playerDecider,
        upTo.map((r) => ({ type: r.type, data: upcast(r.type, r.schema_version, r.data) }) as PlayerEvent),
      );
      return { state, revision: BigInt(upTo.length - 1), rows: rows.length };
    };
    const baselineWarmup = Math.min(2, options.baselineCalls);
    for (let i = 0; i < baselineWarmup; i++) await naive(randomRevision());
    const naiveLatency = new LatencyRecorder();
    let rowsRead = 0;
    for (let i = 0; i < options.baselineCalls; i++) {
      const revision = randomRevision();
      const t0 = performance.now();
      const result = await naive(revision);
      naiveLatency.record(performance.now() - t0);
      rowsRead += result.rows;
      check(revision, result.state, result.revision);
    }

    const latency = all.summary();
    const baseline = naiveLatency.summary();
    const count = (k: TargetKind) => kinds.filter((x) => x === k).length;
    return {
      stream: {
        streamId,
        events: types.length,
        eventTypes,
        insertMs,
        insertedWith: 'set-based INSERT into events (5,000 rows per transaction, schema_version 1, metadata {worldId, actor, commandId}) + the streams head row',
        snapshots: saved,
        snapshotEvery: every,
        snapshotsMs,
        snapshotsMadeBy: `SnapshotStore.save of the bench's own fold, every ${every} events, before the measured calls (no lazy creation by StateAt)`,
      },
      withoutSnapshots: { calls: options.noSnapshotCalls, latency: coldLatency.summary(), meanEventsFolded: options.noSnapshotCalls ? Math.round(coldFolded / options.noSnapshotCalls) : 0 },
      lorestore: {
        label: `new StateAt({ store, pool, snapshots, snapshotEvery: ${every} }).stream(streamId, target), sequential`,
        calls: options.calls,
        warmupCalls: options.warmupCalls,
        targets: { revision: count('revision'), position: count('position'), time: count('time') },
        latency,
        byTarget: { revision: byTarget.revision.summary(), position: byTarget.position.summary(), time: byTarget.time.summary() },
        meanEventsFolded: options.calls ? Math.round((folded / options.calls) * 10) / 10 : 0,
        maxEventsFolded: maxFolded,
        fromSnapshot,
      },
      baseline: {
        label: 'replay_events: SELECT * FROM events WHERE stream_id = $1 ORDER BY revision (every row), filter revision <= target in memory, fold',
        calls: options.baselineCalls,
        warmupCalls: baselineWarmup,
        latency: baseline,
        rowsReadPerCall: options.baselineCalls ? Math.round(rowsRead / options.baselineCalls) : 0,
      },
      ratioP99: ratio2(baseline.p99Ms, latency.p99Ms),
      parts: {
        database: split.db.summary(),
        rest: split.rest.summary(),
        queriesPerCall: perCall.length ? Math.round((perCall.reduce((n, c) => n + c.queries, 0) / perCall.length) * 100) / 100 : 0,
        slowestPercent: {
          calls: slowest.length,
          totalMs: mean((c) => c.ms),
          databaseMs: mean((c) => c.dbMs),
          restMs: mean((c) => c.ms - c.dbMs),
          queries: mean((c) => c.queries),
        },
        gc: { pauses: gc.pauses, totalMs: Math.round(gc.totalMs), maxMs: Math.round(gc.maxMs * 1000) / 1000 },
      },
      check: { compared, mismatches, ok: mismatches === 0 },
    };
  } finally {
    await store.close().catch(() => undefined);
    await pool.end();
  }
};
