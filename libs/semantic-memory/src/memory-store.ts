import path from 'node:path';
import type { Pool, PoolClient } from 'pg';
import { loadMigrations, migrate } from '@lorestore/infra';
import type { Position } from '@lorestore/event-store';
import type { MemoryOp, PersonalDataOpener } from './memory-plan';
import { InvalidEmbeddingError, unitVector, vectorToBytes } from './vectors';

export const MEMORY_MIGRATIONS_DIR = path.join(__dirname, 'postgres', 'migrations');
export const migrateSemanticMemory = async (pool: Pool, schema: string): Promise<string[]> =>
  migrate(pool, schema, await loadMigrations(MEMORY_MIGRATIONS_DIR));

/** The projection's name: its checkpoint row, its table, its rebuild jobs. */
export const MEMORY_PROJECTION = 'npc_memories';

/** A memory row as search needs it. */
export type MemoryRow = {
  memoryId: string;
  worldId: string;
  npcId: string;
  text: string;
  importance: number;
  subjects: string[];
  createdAt: Date;
  lastAccessedAt: Date | null;
  position: bigint;
};

/** A row changed since a cache last looked: its vector and whether search should find it. */
export type MemoryChange = { memoryId: string; embedding: Buffer; visible: boolean; changedAt: bigint };

/** What the external index must be told: records to (re)insert and ids to delete. */
export type PendingSync = MemoryChange & Omit<MemoryRow, 'lastAccessedAt'>;

const VISIBLE = 'NOT rolled_back AND NOT forgotten AND NOT erased';

/** The envelopes of a memory about players, as its event sealed them. */
type Sealed = { text: unknown; embedding: unknown };

/** The columns of a memory row that search and the external index both read. */
type RowColumns = {
  sealed?: Sealed | null;
  memory_id: string;
  world_id: string;
  npc_id: string;
  text: string;
  importance: number;
  subjects: string[];
  created_at: Date;
  position: string;
};

const toRow = (r: RowColumns): Omit<MemoryRow, 'lastAccessedAt'> => ({
  memoryId: r.memory_id,
  worldId: r.world_id,
  npcId: r.npc_id,
  text: r.text,
  importance: r.importance,
  subjects: r.subjects,
  createdAt: r.created_at,
  position: BigInt(r.position),
});

/**
 * The memory rows in PostgreSQL: the truth of the vector-index projection
 * (the embedded index searches them; an external one is kept in step with
 * them). `table` is `npc_memories`, or its copy during a rebuild.
 */
export class MemoryStore {
  /**
   * `external`: an external index (Pinecone) is kept in step through the
   * `indexed` column, the outbox; with the embedded index the rows are the
   * index, so every write marks them in step at once.
   */
  constructor(
    private readonly pool: Pool,
    readonly table = MEMORY_PROJECTION,
    private readonly external = false,
    /** Opens the sealed memories about players as they are read (without one, those read as unopenable). */
    private readonly personal: PersonalDataOpener | null = null,
  ) {
    if (!/^npc_memories(__next)?$/.test(table)) throw new Error(`not a memory table: ${table}`);
  }

  /**
   * One batch of the feed in the caller's transaction: its ops in feed order,
   * then the checkpoint. Redelivered ops change nothing (a row exists; a
   * forget's revision is listed; a reset is older than the row's last change).
   */
  async apply(client: PoolClient, ops: readonly MemoryOp[], checkpoint: { name: string; position: Position; time: Date; events: number }): Promise<void> {
    for (let i = 0; i < ops.length; ) {
      const op = ops[i]!;
      if (op.kind === 'record') {
        let j = i;
        while (j < ops.length && ops[j]!.kind === 'record') j++;
        await this.insert(client, ops.slice(i, j) as Extract<MemoryOp, { kind: 'record' }>[]);
        i = j;
        continue;
      }
      if (op.kind === 'forget') {
        await client.query(
          `UPDATE ${this.table} SET forgotten_at = array_append(forgotten_at, $4::bigint), forgotten = true, changed_at = $5${this.external ? '' : ', indexed = false'}
            WHERE memory_id = $1 AND world_id = $2 AND npc_id = $3 AND NOT ($4::bigint = ANY (forgotten_at))`,
          [op.memoryId, op.worldId, op.npcId, op.revision.toString(), op.position.toString()],
        );
      } else if (op.kind === 'erase') {
        // Every memory about the player recorded before the erasure: text and vector gone, out of search
        // for good. changed_at moves (an NPC's changes only grow: the erasure is later than its rows), so
        // the embedded index drops them and the external index is sent their deletes.
        await client.query(
          `UPDATE ${this.table} SET text = '', embedding = ''::bytea, sealed = NULL, erased = true, changed_at = greatest(changed_at, $2::bigint)${this.external ? '' : ', indexed = false'}
            WHERE $1::uuid = ANY (subjects) AND position < $2::bigint`,
          [op.playerId, op.position.toString()],
        );
      } else {
        // A forget later than the rollback (a redelivered batch) stays in effect.
        await client.query(
          `WITH next AS (
             SELECT memory_id,
                    NOT lorestore_in_ranges(revision, $4::jsonb) AS rolled_back,
                    EXISTS (SELECT 1 FROM unnest(forgotten_at) f WHERE f >= $3::bigint OR lorestore_in_ranges(f, $4::jsonb)) AS forgotten
               FROM ${this.table}
              WHERE world_id = $1 AND npc_id = $2 AND revision < $3::bigint AND changed_at < $5::bigint)
           UPDATE ${this.table} m SET rolled_back = next.rolled_back, forgotten = next.forgotten, changed_at = $5${this.external ? '' : ', indexed = NOT next.rolled_back AND NOT next.forgotten AND NOT m.erased'}
             FROM next
            WHERE m.memory_id = next.memory_id AND m.changed_at < $5::bigint
              AND (m.rolled_back, m.forgotten) IS DISTINCT FROM (next.rolled_back, next.forgotten)`,
          [op.worldId, op.npcId, op.before.toString(), JSON.stringify(op.kept), op.position.toString()],
        );
      }
      i++;
    }
    await client.query(
      `INSERT INTO projection_checkpoints AS c (name, commit, position, event_time, events, updated_at)
       VALUES ($1, $2::text::xid8, $3::bigint, $4, $5, now())
       ON CONFLICT (name) DO UPDATE
         SET commit = excluded.commit, position = excluded.position, event_time = excluded.event_time, events = c.events + excluded.events, updated_at = now()
       WHERE (c.commit, c.position) < (excluded.commit, excluded.position)`,
      [checkpoint.name, checkpoint.position.commit.toString(), checkpoint.position.prepare.toString(), checkpoint.time, checkpoint.events],
    );
  }

  private async insert(client: PoolClient, records: Extract<MemoryOp, { kind: 'record' }>[]): Promise<void> {
    const embeddings = records.map((r) => {
      // Sealed: the vector is in `sealed`, opened when read.
      if (r.sealed) return Buffer.alloc(0);
      try {
        return vectorToBytes(unitVector(r.embedding, r.embedding.length));
      } catch (error) {
        // The API refuses these; an event that has one anyway (written by hand, or before a check
        // existed) is kept with a zero vector, found by nothing, rather than stopping the projection.
        if (error instanceof InvalidEmbeddingError) return Buffer.alloc(r.embedding.length * 4);
        throw error;
      }
    });
    await client.query(
      `INSERT INTO ${this.table} (memory_id, world_id, npc_id, revision, position, text, importance, subjects, created_at, embedding, changed_at, indexed, sealed)
       SELECT m, w, n, r, p, t, i, ARRAY(SELECT jsonb_array_elements_text(s)::uuid), c, e, p, ${this.external ? 'NULL' : 'true'}, x.sealed
         FROM unnest($1::uuid[], $2::text[], $3::uuid[], $4::bigint[], $5::bigint[], $6::text[], $7::smallint[], $8::jsonb[], $9::timestamptz[], $10::bytea[], $11::jsonb[])
           AS x(m, w, n, r, p, t, i, s, c, e, sealed)
       ON CONFLICT (memory_id) DO NOTHING`,
      [
        records.map((r) => r.memoryId),
        records.map((r) => r.worldId),
        records.map((r) => r.npcId),
        records.map((r) => r.revision.toString()),
        records.map((r) => r.position.toString()),
        records.map((r) => r.text),
        records.map((r) => r.importance),
        records.map((r) => JSON.stringify(r.subjects)),
        records.map((r) => r.createdAt),
        embeddings,
        records.map((r) => (r.sealed ? JSON.stringify(r.sealed) : null)),
      ],
    );
  }

  /**
   * The text and unit vector of each row: as stored for a memory about no
   * one, opened from `sealed` for a memory about players; null where a
   * sealed one does not open (its player erased, or no opener here).
   */
  private async open(rows: readonly { text?: string; embedding?: Buffer; sealed?: Sealed | null }[]): Promise<{ text: string | null; embedding: Buffer | null }[]> {
    const sealed = rows.map((r) => r.sealed ?? null);
    const opened = this.personal && sealed.some((x) => x !== null) ? await this.personal.open(sealed) : sealed.map(() => null);
    return rows.map((r, i) => {
      if (!sealed[i]) return { text: r.text ?? null, embedding: r.embedding ?? null };
      const plain = opened[i];
      if (!plain || typeof plain.text !== 'string' || !Array.isArray(plain.embedding)) return { text: null, embedding: null };
      const vector = plain.embedding as number[];
      let embedding: Buffer;
      try {
        embedding = vectorToBytes(unitVector(vector, vector.length));
      } catch (error) {
        if (!(error instanceof InvalidEmbeddingError)) throw error;
        embedding = Buffer.alloc(vector.length * 4);
      }
      return { text: plain.text, embedding };
    });
  }

  /**
   * Records which index the rows' `indexed` marks speak for, and when it
   * changed (VECTOR_INDEX switched), resets them: for an external index every
   * row is to be sent again; for the embedded one the rows are the index.
   * Returns the previous kind (null on a new database).
   */
  async adoptIndexKind(kind: 'embedded' | 'pinecone'): Promise<string | null> {
    const client = await this.pool.connect();
    try {
      await client.query('BEGIN');
      const { rows } = await client.query<{ kind: string }>('SELECT kind FROM npc_memory_index WHERE id = 1 FOR UPDATE');
      // Rows from before this table existed were embedded ones (the only index then).
      const previous = rows[0]?.kind ?? ((await client.query(`SELECT 1 FROM ${this.table} LIMIT 1`)).rowCount ? 'embedded' : null);
      if (previous !== null && previous !== kind) {
        await client.query(kind === 'embedded' ? `UPDATE ${this.table} SET indexed = (${VISIBLE})` : `UPDATE ${this.table} SET indexed = NULL`);
      }
      await client.query('INSERT INTO npc_memory_index (id, kind) VALUES (1, $1) ON CONFLICT (id) DO UPDATE SET kind = excluded.kind', [kind]);
      await client.query('COMMIT');
      return previous;
    } catch (error) {
      await client.query('ROLLBACK').catch(() => undefined);
      throw error;
    } finally {
      client.release();
    }
  }

  /** The last change to an NPC's memories (0 when it has none), and the projection's generation (a rebuild's switch raises it). */
  async head(worldId: string, npcId: string): Promise<{ changedAt: bigint; generation: number }> {
    const { rows } = await this.pool.query<{ head: string | null; generation: number | null }>(
      // ORDER BY … LIMIT 1, not max(): one step back along the index whatever the planner's statistics say.
      `SELECT (SELECT changed_at FROM ${this.table} WHERE world_id = $1 AND npc_id = $2 ORDER BY changed_at DESC LIMIT 1) AS head,
              (SELECT generation FROM projection_checkpoints WHERE name = $3) AS generation`,
      [worldId, npcId, this.table],
    );
    return { changedAt: BigInt(rows[0]?.head ?? 0), generation: rows[0]?.generation ?? 1 };
  }

  /** An NPC's rows changed after `after` (all of them for 0n), oldest change first. */
  async changes(worldId: string, npcId: string, after: bigint): Promise<MemoryChange[]> {
    const { rows } = await this.pool.query<{ memory_id: string; embedding: Buffer; sealed: Sealed | null; visible: boolean; changed_at: string }>(
      `SELECT memory_id, embedding, CASE WHEN ${VISIBLE} THEN sealed END AS sealed, ${VISIBLE} AS visible, changed_at FROM ${this.table}
        WHERE world_id = $1 AND npc_id = $2 AND changed_at > $3 ORDER BY changed_at, memory_id`,
      [worldId, npcId, after.toString()],
    );
    const opened = await this.open(rows);
    return rows.map((r, i) => {
      const embedding = opened[i]!.embedding;
      // A sealed vector that no longer opens (its player erased, the erasure not projected yet) is not searchable.
      return { memoryId: r.memory_id, embedding: embedding ?? Buffer.alloc(0), visible: r.visible && embedding !== null, changedAt: BigInt(r.changed_at) };
    });
  }

  /** The searchable rows among these ids, of this NPC only, with their last retrieval. */
  async details(worldId: string, npcId: string, ids: readonly string[]): Promise<MemoryRow[]> {
    if (ids.length === 0) return [];
    const { rows } = await this.pool.query<RowColumns & { last_accessed_at: Date | null }>(
      // The candidates by primary key first (materialised, so the planner cannot trade it for a scan of the NPC's rows), then the checks.
      `WITH hit AS MATERIALIZED (SELECT memory_id, world_id, npc_id, text, importance, subjects, created_at, position, rolled_back, forgotten, erased, sealed
                                   FROM ${this.table} WHERE memory_id = ANY ($3::uuid[]))
       SELECT m.memory_id, m.world_id, m.npc_id, m.text, m.importance, m.subjects, m.created_at, a.last_accessed_at, m.position, m.sealed
         FROM hit m LEFT JOIN npc_memory_access a USING (memory_id)
        WHERE m.world_id = $1 AND m.npc_id = $2 AND ${VISIBLE.replace(/(rolled_back|forgotten|erased)/g, 'm.$1')}`,
      [worldId, npcId, ids],
    );
    const opened = await this.open(rows);
    return rows.flatMap((r, i) => (opened[i]!.text === null ? [] : [{ ...toRow(r), text: opened[i]!.text!, lastAccessedAt: r.last_accessed_at }]));
  }

  /**
   * Retrieval marks what it returned as accessed now (Generative Agents'
   * recency). Committed without waiting for the WAL flush (one statement,
   * `synchronous_commit` off for its own transaction): an access time is a
   * hint, and a server crash that loses the last few costs nothing, while a
   * flush would double the latency of every search.
   */
  async touch(ids: readonly string[], at: Date): Promise<void> {
    if (ids.length === 0) return;
    await this.pool.query(
      `WITH async AS (SELECT set_config('synchronous_commit', 'off', true))
       INSERT INTO npc_memory_access (memory_id, last_accessed_at) SELECT id, $2 FROM unnest($1::uuid[]) AS id, async
       ON CONFLICT (memory_id) DO UPDATE SET last_accessed_at = greatest(npc_memory_access.last_accessed_at, excluded.last_accessed_at)`,
      [ids, at],
    );
  }

  /** Rows the external index does not yet reflect, oldest change first. */
  async pendingSync(limit: number): Promise<PendingSync[]> {
    const { rows } = await this.pool.query<RowColumns & { embedding: Buffer; visible: boolean; changed_at: string }>(
      `SELECT memory_id, world_id, npc_id, text, importance, subjects, created_at, position, embedding, CASE WHEN ${VISIBLE} THEN sealed END AS sealed,
              ${VISIBLE} AS visible, changed_at
         FROM ${this.table} WHERE indexed IS DISTINCT FROM (${VISIBLE}) ORDER BY changed_at LIMIT $1`,
      [limit],
    );
    const opened = await this.open(rows);
    // A sealed memory that no longer opens goes with an empty vector: the projector leaves it out of the index.
    return rows.map((r, i) => ({
      ...toRow(r),
      text: opened[i]!.text ?? '',
      embedding: opened[i]!.embedding ?? Buffer.alloc(0),
      visible: r.visible,
      changedAt: BigInt(r.changed_at),
    }));
  }

  /** After the external index took them: each row marked as it was pushed, unless it changed again meanwhile. */
  async markSynced(rows: readonly PendingSync[]): Promise<void> {
    if (rows.length === 0) return;
    await this.pool.query(
      `UPDATE ${this.table} m SET indexed = x.visible
         FROM unnest($1::uuid[], $2::boolean[], $3::bigint[]) AS x(memory_id, visible, changed_at)
        WHERE m.memory_id = x.memory_id AND m.changed_at = x.changed_at`,
      [rows.map((r) => r.memoryId), rows.map((r) => r.visible), rows.map((r) => r.changedAt.toString())],
    );
  }

  /** Whether an NPC has changes the external index has not taken yet (up to a position). */
  async hasPendingSync(worldId: string, npcId: string, upTo: bigint): Promise<boolean> {
    const { rows } = await this.pool.query<{ pending: boolean }>(
      `SELECT EXISTS (SELECT 1 FROM ${this.table} WHERE world_id = $1 AND npc_id = $2 AND changed_at <= $3 AND indexed IS DISTINCT FROM (${VISIBLE})) AS pending`,
      [worldId, npcId, upTo.toString()],
    );
    return rows[0]!.pending;
  }

  /**
   * Every memory about a player that is not erased (forgotten and rolled-back
   * ones too, marked), opened, oldest first: for an export of their data.
   */
  async aboutPlayer(playerId: string): Promise<(Omit<MemoryRow, 'lastAccessedAt'> & { forgotten: boolean; rolledBack: boolean })[]> {
    const { rows } = await this.pool.query<RowColumns & { forgotten: boolean; rolled_back: boolean }>(
      `SELECT memory_id, world_id, npc_id, text, importance, subjects, created_at, position, sealed, forgotten, rolled_back FROM ${this.table}
        WHERE $1 = ANY (subjects) AND NOT erased ORDER BY created_at, memory_id`,
      [playerId],
    );
    const opened = await this.open(rows);
    return rows.flatMap((r, i) => (opened[i]!.text === null ? [] : [{ ...toRow(r), text: opened[i]!.text!, forgotten: r.forgotten, rolledBack: r.rolled_back }]));
  }

  /** Whether this memory is one of the NPC's (recorded, whatever its state now). */
  async exists(worldId: string, npcId: string, memoryId: string): Promise<boolean> {
    const { rows } = await this.pool.query(`SELECT 1 FROM ${this.table} WHERE memory_id = $1 AND world_id = $2 AND npc_id = $3`, [memoryId, worldId, npcId]);
    return rows.length > 0;
  }

  /** Every NPC's visible memory count and the number of rows waiting for the external index: for status and tests. */
  async stats(): Promise<{ rows: number; visible: number; pendingSync: number }> {
    const { rows } = await this.pool.query<{ rows: string; visible: string; pending: string }>(
      `SELECT count(*) AS rows, count(*) FILTER (WHERE ${VISIBLE}) AS visible, count(*) FILTER (WHERE indexed IS DISTINCT FROM (${VISIBLE})) AS pending FROM ${this.table}`,
    );
    return { rows: Number(rows[0]!.rows), visible: Number(rows[0]!.visible), pendingSync: Number(rows[0]!.pending) };
  }
}
