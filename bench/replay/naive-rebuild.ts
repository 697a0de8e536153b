import { deciders, fold, parseStreamId, upcast, type DomainEvent, type EntityState } from '@lorestore/domain';
import { createPostgresPool } from '@lorestore/infra';
import { ReadModelStore } from '@lorestore/projections';
import { quoteIdent } from '../support/database';
import { cpuMark, cpuSince } from './cpu';

export type UpsertBaseline = {
  label: string;
  events: number;
  statements: number;
  ms: number;
  eventsPerSecond: number;
  /** The whole log at this rate (linear: one statement or two per event). */
  extrapolatedMsForLog: number;
  rows: number;
  cpuMs: { nodeMs: number; postgresMs: number | null };
};

export type QuadraticBaseline = {
  label: string;
  events: number;
  streams: number;
  readMs: number;
  foldMs: number;
  ms: number;
  eventsPerSecond: number;
  /** read × (log / subset) + fold × (log / subset) × (log's streams / subset's streams): the filter pass is per stream over the whole log. */
  extrapolatedMsForLog: number;
  extrapolatedEventsPerSecond: number;
};

type Row = { stream_id: string; revision: string; position: string; type: string; schema_version: number; data: unknown; created_at: Date };

const PAGE = 5000;

const UPSERT = {
  entity: `INSERT INTO entities AS t (world_id, entity_id, stream_id, kind, status, location_id, data, revision, position, updated_at)
           VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)
           ON CONFLICT (world_id, entity_id) DO UPDATE SET kind = excluded.kind, status = excluded.status, location_id = excluded.location_id,
             data = excluded.data, revision = excluded.revision, position = excluded.position, updated_at = excluded.updated_at`,
  world: `INSERT INTO world_state AS t (world_id, data, revision, position, updated_at) VALUES ($1, $2, $3, $4, $5)
          ON CONFLICT (world_id) DO UPDATE SET data = excluded.data, revision = excluded.revision, position = excluded.position, updated_at = excluded.updated_at`,
  narrative: `INSERT INTO narrative_state AS t (world_id, data, revision, position, updated_at) VALUES ($1, $2, $3, $4, $5)
              ON CONFLICT (world_id) DO UPDATE SET data = excluded.data, revision = excluded.revision, position = excluded.position, updated_at = excluded.updated_at`,
  player: `INSERT INTO player_state AS t (world_id, player_id, data, revision, position, updated_at) VALUES ($1, $2, $3, $4, $5, $6)
           ON CONFLICT (world_id, player_id) DO UPDATE SET data = excluded.data, revision = excluded.revision, position = excluded.position, updated_at = excluded.updated_at`,
  history: `INSERT INTO player_history (world_id, player_id, at, action, context, revision, position, rolled_back) VALUES ($1, $2, $3, $4, $5, $6, $7, false)
            ON CONFLICT DO NOTHING`,
};

const domainEvent = (row: Pick<Row, 'type' | 'schema_version' | 'data'>): DomainEvent => ({ type: row.type, data: upcast(row.type, row.schema_version, row.data) }) as DomainEvent;

/**
 * Baseline (a) for the rebuild: a naive projector over the same log. Events
 * read in pages of 5,000 by position (the prefill's position order is the
 * feed's order), each folded onto its stream's state kept in a Map, then one
 * autocommit INSERT … ON CONFLICT DO UPDATE per event into its read-model
 * table (prepared; the read models' own migrations; no revision guard) and
 * one INSERT per recorded action into player_history; synchronous_commit off
 * for the session, as the read models' commits are. The first `events` events.
 */
export const perEventUpsert = async (url: string, eventsSchema: string, targetSchema: string, events: number, logEvents: number): Promise<UpsertBaseline> => {
  const pool = createPostgresPool({ url, schema: targetSchema, max: 2, applicationName: 'bench-replay-naive-upsert' });
  try {
    await ReadModelStore.migrate(pool, targetSchema);
    const client = await pool.connect();
    try {
      await client.query('SET synchronous_commit = off');
      const states = new Map<string, unknown>();
      let after = '0';
      let done = 0;
      let statements = 0;
      const mark = cpuMark();
      const started = performance.now();
      while (done < events) {
        const { rows } = await client.query<Row>(
          `SELECT stream_id, revision, position, type, schema_version, data, created_at FROM ${quoteIdent(eventsSchema)}.events WHERE position > $1 ORDER BY position LIMIT $2`,
          [after, Math.min(PAGE, events - done)],
        );
        if (rows.length === 0) break;
        for (const row of rows) {
          const stream = parseStreamId(row.stream_id);
          if (!stream) continue;
          const decider = deciders[stream.aggregate];
          const event = domainEvent(row);
          const state = decider.evolve(states.has(row.stream_id) ? states.get(row.stream_id) : decider.initialState(), event);
          states.set(row.stream_id, state);
          const data = JSON.stringify(state);
          const created = row.created_at.toISOString();
          switch (stream.aggregate) {
            case 'entity': {
              const e = state as EntityState;
              const active = e.status === 'unspawned' ? null : e;
              await client.query({
                name: 'naive-entity',
                text: UPSERT.entity,
                values: [stream.worldId, stream.id, row.stream_id, active?.kind ?? '', e.status, active?.locationId ?? null, data, row.revision, row.position, active?.updatedAt ?? created],
              });
              break;
            }
            case 'world':
              await client.query({ name: 'naive-world', text: UPSERT.world, values: [stream.worldId, data, row.revision, row.position, created] });
              break;
            case 'narrative':
              await client.query({ name: 'naive-narrative', text: UPSERT.narrative, values: [stream.worldId, data, row.revision, row.position, created] });
              break;
            case 'player':
              await client.query({ name: 'naive-player', text: UPSERT.player, values: [stream.worldId, stream.id, data, row.revision, row.position, created] });
              break;
          }
          statements++;
          if (event.type === 'PlayerActionRecorded') {
            const d = event.data;
            await client.query({ name: 'naive-history', text: UPSERT.history, values: [stream.worldId, stream.id, d.at, d.action, JSON.stringify(d.context), row.revision, row.position] });
            statements++;
          }
        }
        after = rows.at(-1)!.position;
        done += rows.length;
      }
      const ms = performance.now() - started;
      const cpuMs = cpuSince(mark);
      const { rows } = await client.query<{ n: string }>(
        `SELECT (SELECT count(*) FROM entities) + (SELECT count(*) FROM world_state) + (SELECT count(*) FROM narrative_state)
              + (SELECT count(*) FROM player_state) + (SELECT count(*) FROM player_history) AS n`,
      );
      const rate = ms > 0 ? Math.round((done / ms) * 1000) : 0;
      return {
        label: 'naive projector: pages of 5,000, fold in a Map, one autocommit INSERT … ON CONFLICT per event (+1 per history row), synchronous_commit off',
        events: done,
        statements,
        ms: Math.round(ms),
        eventsPerSecond: rate,
        extrapolatedMsForLog: rate > 0 ? Math.round((logEvents / rate) * 1000) : 0,
        rows: Number(rows[0]!.n),
        cpuMs,
      };
    } finally {
      client.release();
    }
  } finally {
    await pool.end();
  }
};

/**
 * Baseline (b), fold only: the seed's replay applied to every stream — all
 * events read in one query, then for each stream the whole array filtered by
 * stream id and folded. Quadratic, so it runs on the first `events` events and
 * is extrapolated to the log (labelled as such); it writes nothing.
 */
export const quadraticFold = async (url: string, eventsSchema: string, events: number, logEvents: number, logStreams: number): Promise<QuadraticBaseline> => {
  const pool = createPostgresPool({ url, schema: eventsSchema, max: 1, applicationName: 'bench-replay-naive-fold' });
  try {
    let started = performance.now();
    const { rows } = await pool.query<Row>('SELECT stream_id, revision, position, type, schema_version, data, created_at FROM events ORDER BY position LIMIT $1', [events]);
    const readMs = performance.now() - started;
    started = performance.now();
    const ids = [...new Set(rows.map((r) => r.stream_id))];
    let folded = 0;
    for (const id of ids) {
      const stream = parseStreamId(id);
      if (!stream) continue;
      const mine = rows.filter((r) => r.stream_id === id);
      if (fold(deciders[stream.aggregate], mine.map(domainEvent)) !== undefined) folded += mine.length;
    }
    const foldMs = performance.now() - started;
    const scale = logEvents / Math.max(1, rows.length);
    const extrapolated = readMs * scale + foldMs * scale * (logStreams / Math.max(1, ids.length));
    return {
      label: `seed replay per stream: read the first ${rows.length} events in one query, filter the array by stream id and fold, for each of their streams (no writes)`,
      events: folded,
      streams: ids.length,
      readMs: Math.round(readMs),
      foldMs: Math.round(foldMs),
      ms: Math.round(readMs + foldMs),
      eventsPerSecond: readMs + foldMs > 0 ? Math.round((folded / (readMs + foldMs)) * 1000) : 0,
      extrapolatedMsForLog: Math.round(extrapolated),
      extrapolatedEventsPerSecond: extrapolated > 0 ? Math.round((logEvents / extrapolated) * 1000) : 0,
    };
  } finally {
    await pool.end();
  }
};
