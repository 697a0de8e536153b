import path from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { Pool, PoolClient } from 'pg';
import { from as copyFrom } from 'pg-copy-streams';
import { ERASED, parseStreamId } from '@lorestore/domain';
import type { Position } from '@lorestore/event-store';
import { loadMigrations, migrate, withTransaction } from '@lorestore/infra';
import { docKey, type BatchChanges, type Doc, type DocTable, type HistoryRow } from '../projections';

/** A projection that keeps failing: the last error, how many times in a row, since when, at which checkpoint. */
export type ProjectionFailure = { message: string; failures: number; since: Date; lastAt: Date; checkpoint: bigint | null };

export const READ_MODEL_MIGRATIONS_DIR = path.join(__dirname, 'migrations');

export type Checkpoint = {
  name: string;
  position: Position;
  /** When the last event covered was appended. */
  eventTime: Date | null;
  events: bigint;
  updatedAt: Date;
  /** The generation of the projection's hot-state keys (raised by each rebuild). */
  generation: number;
};

export type ReadModelStoreOptions = {
  /**
   * Appended to every table and checkpoint name: a rebuild writes
   * `entities__next` and checkpoints as `entities__next` beside the live ones.
   * Empty (the live read models) by default.
   */
  suffix?: string;
  /** The projections this store writes (a rebuild's store writes one); all by default. */
  only?: readonly string[];
};

/** What marks the tables and checkpoints of a rebuild in progress. */
export const REBUILD_SUFFIX = '__next';

type DocRow = { world_id: string; id: string; data: unknown; revision: string; position: string; updated_at: Date };

/** Per table, the id column after `world_id` (world-wide documents have none). */
const ID_COLUMN: Record<DocTable, string | null> = { entities: 'entity_id', world_state: null, narrative_state: null, player_state: 'player_id' };

const STREAM_PREFIX: Record<DocTable, string> = { entities: 'entity', world_state: 'world', narrative_state: 'narrative', player_state: 'player' };

const streamOf = (table: DocTable, worldId: string, id: string) =>
  table === 'entities' || table === 'player_state' ? `${STREAM_PREFIX[table]}-${worldId}-${id}` : `${STREAM_PREFIX[table]}-${worldId}`;

const toDoc = (table: DocTable, row: DocRow): Doc => ({
  table,
  streamId: streamOf(table, row.world_id, row.id),
  worldId: row.world_id,
  id: row.id,
  revision: BigInt(row.revision),
  position: BigInt(row.position),
  state: row.data,
  updatedAt: row.updated_at.toISOString(),
});

/** For jsonb_to_recordset; bigints are turned into strings by the callers (a replacer function costs more). */
const json = (value: unknown) => JSON.stringify(value);

/** A value of COPY's text format: backslash, tab, newline and carriage return escaped. */
const copyText = (value: string): string => (/[\\\t\n\r]/.test(value) ? value.replace(/[\\\t\n\r]/g, (c) => COPY_ESCAPES[c]!) : value);
const COPY_ESCAPES: Record<string, string> = { '\\': '\\\\', '\t': '\\t', '\n': '\\n', '\r': '\\r' };

const HISTORY_COLUMNS = 'world_id, player_id, at, action, context, revision, position, rolled_back';

/** History rows as the body of `COPY player_history (HISTORY_COLUMNS) FROM STDIN` (text format), in pieces of about 1 MB. */
const historyCopy = (history: readonly HistoryRow[]): string[] => {
  const pieces: string[] = [];
  let piece = '';
  for (const h of history) {
    piece += `${copyText(h.worldId)}\t${h.playerId}\t${copyText(h.at)}\t${copyText(h.action)}\t${copyText(JSON.stringify(h.context))}\t${h.revision}\t${h.position}\t${h.rolledBack ? 't' : 'f'}\n`;
    if (piece.length >= 1 << 20) {
      pieces.push(piece);
      piece = '';
    }
  }
  if (piece) pieces.push(piece);
  return pieces;
};

const DOC_ROWS = (param: string) =>
  `jsonb_to_recordset(${param}::jsonb) AS r(world_id text, id text, data jsonb, revision bigint, position bigint, updated_at timestamptz)`;
const SET_DOC = 'data = excluded.data, revision = excluded.revision, position = excluded.position, updated_at = excluded.updated_at';
/**
 * Only newer documents replace stored ones: a replayed batch changes nothing.
 * The position breaks a tie of revisions (an erasure rewrites a player's
 * document at the same revision, a later position).
 */
const NEWER = 'WHERE (t.revision, t.position) < (excluded.revision, excluded.position)';

export type CommitOptions = {
  /**
   * History rows by COPY instead of `INSERT … ON CONFLICT DO NOTHING`: for a
   * writer that knows none of them is stored yet (the rebuild's bulk phase,
   * which writes each once, after its copy's checkpoint); a row stored twice
   * fails the commit. About half of PostgreSQL's work on those rows.
   */
  historyByCopy?: boolean;
  /**
   * Runs inside the transaction once its statements have run, before COMMIT;
   * if it throws, the transaction rolls back and the error is the commit's.
   * The live runner waits here for the hot store's write of the batch, which
   * it started beside the statements.
   */
  beforeCommit?: () => Promise<void>;
};

type WrittenTable = DocTable | 'player_history';
const ALL_TABLES: readonly WrittenTable[] = ['entities', 'world_state', 'narrative_state', 'player_state', 'player_history'];

/** The CTE that writes each table; `x` is the store's suffix. */
const tableWrites = (x: string): Record<WrittenTable, string> => ({
  entities: `entity_rows AS (
  INSERT INTO entities${x} AS t (world_id, entity_id, stream_id, kind, status, location_id, data, revision, position, updated_at)
  -- An entity rolled back to before its spawn keeps a row (status 'unspawned', no kind) that holds its revision.
  SELECT r.world_id, r.id::uuid, 'entity-' || r.world_id || '-' || r.id, coalesce(r.data->>'kind', ''), r.data->>'status',
         (r.data->>'locationId')::uuid, r.data, r.revision, r.position, r.updated_at
    FROM ${DOC_ROWS('$1')}
  ON CONFLICT (world_id, entity_id) DO UPDATE
    SET kind = excluded.kind, status = excluded.status, location_id = excluded.location_id, ${SET_DOC} ${NEWER}
)`,
  world_state: `world_rows AS (
  INSERT INTO world_state${x} AS t (world_id, data, revision, position, updated_at)
  SELECT r.world_id, r.data, r.revision, r.position, r.updated_at FROM ${DOC_ROWS('$2')}
  ON CONFLICT (world_id) DO UPDATE SET ${SET_DOC} ${NEWER}
)`,
  narrative_state: `narrative_rows AS (
  INSERT INTO narrative_state${x} AS t (world_id, data, revision, position, updated_at)
  SELECT r.world_id, r.data, r.revision, r.position, r.updated_at FROM ${DOC_ROWS('$3')}
  ON CONFLICT (world_id) DO UPDATE SET ${SET_DOC} ${NEWER}
)`,
  player_state: `player_rows AS (
  INSERT INTO player_state${x} AS t (world_id, player_id, data, revision, position, updated_at)
  SELECT r.world_id, r.id::uuid, r.data, r.revision, r.position, r.updated_at FROM ${DOC_ROWS('$4')}
  ON CONFLICT (world_id, player_id) DO UPDATE SET ${SET_DOC} ${NEWER}
)`,
  player_history: `history_rows AS (
  INSERT INTO player_history${x} (world_id, player_id, at, action, context, revision, position, rolled_back)
  SELECT r.world_id, r.player_id, r.at, r.action, r.context, r.revision, r.position, r.rolled_back
    FROM jsonb_to_recordset($5::jsonb) AS r(world_id text, player_id uuid, at timestamptz, action text, context jsonb, revision bigint, position bigint, rolled_back boolean)
  ON CONFLICT DO NOTHING
), history_resets AS (
  -- A rollback on a player stream: rows before it count only if the restored state holds them.
  UPDATE player_history${x} h
     SET rolled_back = NOT EXISTS (SELECT 1 FROM jsonb_array_elements(r.kept) k WHERE h.revision BETWEEN (k->>0)::bigint AND (k->>1)::bigint)
    FROM jsonb_to_recordset($11::jsonb) AS r(world_id text, player_id uuid, before bigint, kept jsonb)
   WHERE h.world_id = r.world_id AND h.player_id = r.player_id AND h.revision < r.before
)`,
});

/**
 * A whole batch in one statement: each data-modifying CTE writes one table
 * (an empty array writes nothing), the main INSERT moves the checkpoints.
 * Only the tables this store writes appear (a rebuild's store has one).
 * $1–$4 documents (entities, world, narrative, players), $5 history rows,
 * $6 projection names, $7 commit, $8 position, $9 event time, $10 event count,
 * $11 history resets, $12 the hot-state generation of a new checkpoint.
 */
const commitBatchSql = (x: string, tables: readonly WrittenTable[]) => {
  const writes = tableWrites(x);
  // Every parameter is referenced, so each keeps its type whichever tables are left out.
  return `
WITH ${[...tables.map((t) => writes[t]), `unused AS (SELECT $1::jsonb, $2::jsonb, $3::jsonb, $4::jsonb, $5::jsonb, $11::jsonb)`].join(', ')}
INSERT INTO projection_checkpoints AS c (name, commit, position, event_time, events, updated_at, generation)
SELECT n, $7::text::xid8, $8::bigint, $9::timestamptz, $10::bigint, now(), $12::int FROM unnest($6::text[]) AS n
ON CONFLICT (name) DO UPDATE
  SET commit = excluded.commit, position = excluded.position, event_time = excluded.event_time,
      events = c.events + excluded.events, updated_at = now()
WHERE (c.commit, c.position) < (excluded.commit, excluded.position)`;
};

/**
 * The PostgreSQL side of the projections: documents, history rows and
 * checkpoints. `commit` writes a batch's rows and every projection's
 * checkpoint in one transaction, so after a crash a batch is either wholly
 * there (and not read again) or wholly absent (and read again).
 */
export class ReadModelStore {
  private readonly suffix: string;
  private readonly commitBatch: string;
  private readonly writesHistory: boolean;

  constructor(
    private readonly pool: Pool,
    options: ReadModelStoreOptions = {},
  ) {
    this.suffix = options.suffix ?? '';
    if (!/^(__[a-z0-9_]+)?$/.test(this.suffix)) throw new Error(`read model suffix "${this.suffix}" must be empty or __[a-z0-9_]+`);
    const tables = options.only ? ALL_TABLES.filter((t) => options.only!.includes(t)) : ALL_TABLES;
    this.commitBatch = commitBatchSql(this.suffix, tables);
    this.writesHistory = tables.includes('player_history');
  }

  /** The table (or checkpoint) this store writes for a projection. */
  nameOf(projection: string): string {
    return `${projection}${this.suffix}`;
  }

  /** The projection a stored name (of a checkpoint, a failure) stands for, if it is this store's; a live store does not see a rebuild's, nor the other way round. */
  private projectionOf(name: string): string | null {
    const mine = this.suffix ? name.endsWith(this.suffix) : !name.includes('__');
    return mine ? name.slice(0, name.length - this.suffix.length) : null;
  }

  static async migrate(pool: Pool, schema: string): Promise<string[]> {
    return migrate(pool, schema, await loadMigrations(READ_MODEL_MIGRATIONS_DIR));
  }

  async checkpoints(): Promise<Checkpoint[]> {
    const { rows } = await this.pool.query<{ name: string; commit: string; position: string; event_time: Date | null; events: string; updated_at: Date; generation: number }>(
      'SELECT name, commit::text, position, event_time, events, updated_at, generation FROM projection_checkpoints ORDER BY name',
    );
    // This store's own checkpoints only, by projection name.
    return rows.flatMap((r) => {
      const name = this.projectionOf(r.name);
      if (name === null) return [];
      const position = { commit: BigInt(r.commit), prepare: BigInt(r.position) };
      return [{ name, generation: r.generation, position, eventTime: r.event_time, events: BigInt(r.events), updatedAt: r.updated_at }];
    });
  }

  /** The hot-state bypass, if the projector has one open: since when, and from which checkpoint (null: the start). */
  async hotBypass(): Promise<{ since: Date; from: Position | null; reason: string } | null> {
    const { rows } = await this.pool.query<{ since: Date; from_commit: string | null; from_position: string | null; reason: string }>(
      'SELECT since, from_commit::text, from_position, reason FROM hot_state_bypass',
    );
    const row = rows[0];
    if (!row) return null;
    const from = row.from_commit === null ? null : { commit: BigInt(row.from_commit), prepare: BigInt(row.from_position!) };
    return { since: row.since, from, reason: row.reason };
  }

  /** Opens the bypass at this checkpoint (kept if one is open already: the earlier start covers more). */
  async openHotBypass(from: Position | null, reason: string): Promise<void> {
    await this.pool.query(
      'INSERT INTO hot_state_bypass (from_commit, from_position, reason) VALUES ($1::text::xid8, $2, $3) ON CONFLICT (singleton) DO NOTHING',
      [from ? from.commit.toString() : null, from ? from.prepare.toString() : null, reason.slice(0, 500)],
    );
  }

  async closeHotBypass(): Promise<void> {
    await this.pool.query('DELETE FROM hot_state_bypass');
  }

  /**
   * One more failure of these projections' live run (the error's name and
   * message) at the checkpoint they stand at; the first one's time is kept.
   */
  async recordFailure(projections: readonly string[], error: unknown, after: Position | null): Promise<void> {
    const message = error instanceof Error ? `${error.name}: ${error.message}` : String(error);
    await this.pool.query(
      `INSERT INTO projection_failures AS f (name, message, failures, after_commit, after_position)
       SELECT n, $2, 1, $3::text::xid8, $4 FROM unnest($1::text[]) AS n
       ON CONFLICT (name) DO UPDATE SET message = EXCLUDED.message, last_at = now(),
         -- A row older than the projection's last committed batch is another episode's (left by a leader
         -- that lost its lease while writing it): count from one again.
         failures = CASE WHEN f.last_at < (SELECT c.updated_at FROM projection_checkpoints c WHERE c.name = f.name) THEN 1 ELSE f.failures + 1 END,
         first_at = CASE WHEN f.last_at < (SELECT c.updated_at FROM projection_checkpoints c WHERE c.name = f.name) THEN now() ELSE f.first_at END,
         after_commit = EXCLUDED.after_commit, after_position = EXCLUDED.after_position`,
      [projections.map((p) => this.nameOf(p)), message.slice(0, 2000), after ? after.commit.toString() : null, after ? after.prepare.toString() : null],
    );
  }

  /** These projections committed a batch again: their failures are over. */
  async clearFailures(projections: readonly string[]): Promise<void> {
    await this.pool.query('DELETE FROM projection_failures WHERE name = ANY ($1::text[])', [projections.map((p) => this.nameOf(p))]);
  }

  /**
   * The failures of this store's projections since each one's last committed
   * batch, by projection name. A row from before that batch (written late by a
   * leader that had lost its lease, its clearing missed) is not one of them.
   */
  async failures(): Promise<Map<string, ProjectionFailure>> {
    const { rows } = await this.pool.query<{ name: string; message: string; failures: number; first_at: Date; last_at: Date; after_position: string | null }>(
      `SELECT f.name, f.message, f.failures, f.first_at, f.last_at, f.after_position FROM projection_failures f
        LEFT JOIN projection_checkpoints c ON c.name = f.name
       WHERE c.updated_at IS NULL OR f.last_at >= c.updated_at`,
    );
    const failures = new Map<string, ProjectionFailure>();
    for (const r of rows) {
      const name = this.projectionOf(r.name);
      if (name === null) continue;
      failures.set(name, { message: r.message, failures: r.failures, since: r.first_at, lastAt: r.last_at, checkpoint: r.after_position === null ? null : BigInt(r.after_position) });
    }
    return failures;
  }

  /** The stored documents of these streams, by `docKey`. */
  async loadDocs(keys: ReadonlyMap<DocTable, readonly string[]>, client: Pool | PoolClient = this.pool): Promise<Map<string, Doc>> {
    const found = new Map<string, Doc>();
    await Promise.all(
      [...keys].map(async ([table, streamIds]) => {
        const parsed = streamIds.map((s) => parseStreamId(s)).filter((p) => p !== undefined);
        if (parsed.length === 0) return;
        for (const doc of await this.queryDocs(table, parsed.map((p) => p.worldId), parsed.map((p) => p.id), client)) {
          found.set(docKey(table, doc.streamId), doc);
        }
      }),
    );
    return found;
  }

  /** Every player_state document of these players, in every world (an erasure rewrites them all). */
  async loadPlayerDocs(playerIds: readonly string[], client: Pool | PoolClient = this.pool): Promise<Map<string, Doc>> {
    const found = new Map<string, Doc>();
    if (playerIds.length === 0) return found;
    const { rows } = await client.query<DocRow>(
      `SELECT world_id, player_id::text AS id, data, revision, position, updated_at FROM ${this.nameOf('player_state')} WHERE player_id = ANY ($1::uuid[])`,
      [playerIds],
    );
    for (const row of rows) {
      const doc = toDoc('player_state', row);
      found.set(docKey('player_state', doc.streamId), doc);
    }
    return found;
  }

  /** One document, or null. */
  async getDoc(table: DocTable, worldId: string, id: string, client: Pool | PoolClient = this.pool): Promise<Doc | null> {
    const [doc] = await this.queryDocs(table, [worldId], [id], client);
    return doc ?? null;
  }

  private async queryDocs(table: DocTable, worldIds: string[], ids: string[], client: Pool | PoolClient): Promise<Doc[]> {
    const idColumn = ID_COLUMN[table];
    const { rows } = await client.query<DocRow>(
      `SELECT t.world_id, ${idColumn ? `t.${idColumn}::text` : 't.world_id'} AS id, t.data, t.revision, t.position, t.updated_at
         FROM unnest($1::text[], $2::text[]) AS k(world_id, id)
         JOIN ${this.nameOf(table)} t ON t.world_id = k.world_id${idColumn ? ` AND t.${idColumn} = k.id::uuid` : ''}`,
      [worldIds, ids],
    );
    return rows.map((r) => toDoc(table, r));
  }

  /**
   * Writes a batch and moves the named projections' checkpoints to its end,
   * in one statement of one transaction: the rows and the checkpoints commit
   * together or not at all. Rows are written
   * only where they are newer than what is stored, and a checkpoint only moves
   * forwards, so running a batch twice (or two projectors racing) changes
   * nothing the second time. The batch is serialized before the first
   * await: what the caller changes after the call does not reach it (the
   * rebuild's bulk phase folds on while its last flush commits).
   */
  async commit(changes: BatchChanges, projections: readonly string[], eventCount: number, generation = 1, options: CommitOptions = {}): Promise<void> {
    const checkpoint = changes.checkpoint;
    if (!checkpoint) return;
    // One row per document (the newest), as one INSERT … ON CONFLICT may touch a row only once.
    const newest = new Map<string, Doc>();
    for (const doc of changes.docs) {
      const key = docKey(doc.table, doc.streamId);
      const seen = newest.get(key);
      if (!seen || seen.revision < doc.revision) newest.set(key, doc);
    }
    const rows: Record<DocTable, unknown[]> = { entities: [], world_state: [], narrative_state: [], player_state: [] };
    for (const d of newest.values()) {
      rows[d.table].push({ world_id: d.worldId, id: d.id, data: d.state, revision: String(d.revision), position: String(d.position), updated_at: d.updatedAt });
    }
    const copy = options.historyByCopy && this.writesHistory && changes.history.length > 0 ? historyCopy(changes.history) : null;
    const history = copy ? [] : changes.history.map((h) => ({
      world_id: h.worldId,
      player_id: h.playerId,
      at: h.at,
      action: h.action,
      context: h.context,
      revision: String(h.revision),
      position: String(h.position),
      rolled_back: h.rolledBack,
    }));
    const resets = changes.historyResets.map((r) => ({ world_id: r.worldId, player_id: r.playerId, before: String(r.before), kept: r.kept }));
    const params = [
      json(rows.entities),
      json(rows.world_state),
      json(rows.narrative_state),
      json(rows.player_state),
      json(history),
      projections.map((p) => this.nameOf(p)),
      checkpoint.position.commit.toString(),
      checkpoint.position.prepare.toString(),
      checkpoint.time,
      eventCount,
      json(resets),
      generation,
    ];
    await withTransaction(this.pool, async (client) => {
      // Derived data needs no WAL flush before the answer: a crash that loses the last commits
      // loses their checkpoint with them, and the projector applies those events again.
      await client.query('SET LOCAL synchronous_commit = off');
      // An erasure first: every stored action row of the player came before it in the feed and loses its
      // context; the batch's own rows before it were marked in memory, those after it are left as they are.
      if (changes.erasures?.length && this.writesHistory) {
        await client.query(
          `UPDATE ${this.nameOf('player_history')} h SET context = $2::jsonb
            WHERE h.player_id = ANY ($1::uuid[]) AND h.context IS DISTINCT FROM $2::jsonb`,
          [changes.erasures.map((e) => e.playerId), JSON.stringify(ERASED)],
        );
      }
      if (copy) {
        // Before the statement below, whose reset of stored rows then sees these too: they were marked by the same rule already.
        await pipeline(Readable.from(copy), client.query(copyFrom(`COPY ${this.nameOf('player_history')} (${HISTORY_COLUMNS}) FROM STDIN`)));
      }
      await client.query(this.commitBatch, params);
      await options.beforeCommit?.();
    });
  }

  /** Creates the monthly `player_history` partitions around now that are missing; returns how many. */
  async ensurePartitions(monthsBack: number, monthsAhead: number): Promise<number> {
    const { rows } = await this.pool.query<{ n: number }>('SELECT ensure_player_history_partitions($1, $2) AS n', [monthsBack, monthsAhead]);
    return rows[0]!.n;
  }

  /** Drops the monthly partitions older than `keepMonths`; returns their names. */
  async dropOldPartitions(keepMonths: number): Promise<string[]> {
    const { rows } = await this.pool.query<{ name: string }>('SELECT drop_player_history_partitions($1) AS name', [keepMonths]);
    return rows.map((r) => r.name);
  }
}
