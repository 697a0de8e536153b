import type { Pool } from 'pg';
import { LeaderLoop, withTransaction } from '@lorestore/infra';
import { START, type Position, type RecordedEvent } from '../types';
import type { EsdbEventStore, EsdbRecordedEvent } from './esdb-event-store';

export type MirrorLogger = { info(msg: string): void; warn(msg: string): void; error(msg: string): void };

export type EsdbMirrorOptions = {
  esdb: EsdbEventStore;
  pool: Pool;
  /** Names the leadership lock: one mirror per schema writes, the others wait. */
  lockName: string;
  batchSize?: number;
  logger?: MirrorLogger;
  /** After each committed batch: the event ids now in PostgreSQL (wakes the appends waiting for them, and subscribers). */
  onCommitted?: (ids: string[]) => void;
  onError?: (error: unknown) => void;
  /** Tests: hold every batch this long before writing it (the window between EventStoreDB's acknowledgement and the mirror). */
  delayMs?: number;
};

export type MirrorStatus = { position: Position | null; events: number; eventTime: Date | null; updatedAt: Date | null };

const silent: MirrorLogger = { info: () => undefined, warn: () => undefined, error: () => undefined };
const MIRROR = 'mirror';

/**
 * The PostgreSQL mirror of an EventStoreDB log: a catch-up subscription to
 * `$all` (system events filtered out by the server) that writes every event
 * into the `events` table in EventStoreDB's order, with EventStoreDB's
 * position beside it, the stream heads and the command results (from the
 * events' commandId), and its checkpoint — one transaction per batch. A
 * crash between EventStoreDB's acknowledgement and the mirror's write is
 * caught up on restart from the checkpoint: nothing lost, nothing doubled.
 * Never a dual write: EventStoreDB is the log, this follows it.
 */
export class EsdbMirror {
  private readonly logger: MirrorLogger;
  private readonly leader: LeaderLoop;
  private subscription: { unsubscribe(): Promise<void> } | null = null;
  private last: Position | null = null;

  constructor(private readonly options: EsdbMirrorOptions) {
    this.logger = options.logger ?? silent;
    this.leader = new LeaderLoop({
      pool: options.pool,
      lockName: options.lockName,
      name: 'esdb mirror',
      work: () => this.follow(),
      onLeaseLost: () => void this.subscription?.unsubscribe(),
      onError: options.onError,
      logger: this.logger,
    });
  }

  get isLeader(): boolean {
    return this.leader.isLeader;
  }

  /** EventStoreDB's position of the last event mirrored, as this process knows it. */
  get position(): Position | null {
    return this.last;
  }

  start(): void {
    this.leader.start();
  }

  async stop(): Promise<void> {
    await this.leader.stop(async () => {
      await this.subscription?.unsubscribe();
    });
  }

  /** The checkpoint as PostgreSQL has it (whichever process mirrors). */
  async status(): Promise<MirrorStatus> {
    const { rows } = await this.options.pool.query<{ commit: string; prepare: string; events: string; event_time: Date | null; updated_at: Date }>(
      'SELECT commit, prepare, events, event_time, updated_at FROM esdb_mirror WHERE name = $1',
      [MIRROR],
    );
    const r = rows[0];
    return r
      ? { position: { commit: BigInt(r.commit), prepare: BigInt(r.prepare) }, events: Number(r.events), eventTime: r.event_time, updatedAt: r.updated_at }
      : { position: null, events: 0, eventTime: null, updatedAt: null };
  }

  private async follow(): Promise<void> {
    this.last = (await this.status()).position;
    const subscription = this.options.esdb.subscribeToAll({ fromPosition: this.last ?? START, batchSize: this.options.batchSize ?? 1000 });
    this.subscription = subscription;
    try {
      for await (const batch of subscription.batches()) {
        if (this.leader.isStopped || !this.leader.isLeader) break;
        if (this.options.delayMs) await this.leader.sleep(this.options.delayMs);
        if (this.leader.isStopped || !this.leader.isLeader) break;
        await this.write(batch);
      }
    } finally {
      this.subscription = null;
      await subscription.unsubscribe();
    }
  }

  /** One batch: events, stream heads, command results and checkpoint in one transaction. Public for tests. */
  async write(batch: readonly RecordedEvent[]): Promise<void> {
    if (batch.length === 0) return;
    const rows = batch.map((e, ord) => {
      const metadata = e.metadata ?? {};
      const worldId = metadata.worldId;
      const commandId = metadata.commandId;
      return {
        ord,
        stream_id: e.streamId,
        revision: e.revision.toString(),
        event_id: e.id,
        type: e.type,
        v: e.schemaVersion,
        data: e.data,
        metadata,
        created: e.created.toISOString(),
        commit: e.position.commit.toString(),
        prepare: e.position.prepare.toString(),
        world: typeof worldId === 'string' ? worldId : null,
        category: e.streamId.split('-', 1)[0],
        command_id: typeof commandId === 'string' && /^[0-9a-f-]{36}$/i.test(commandId) ? commandId : null,
        command_hash: (e as EsdbRecordedEvent).commandHash ?? null,
      };
    });
    const last = batch.at(-1)!;
    await withTransaction(this.options.pool, (client) =>
      client.query(
        `WITH input AS (
           SELECT * FROM jsonb_to_recordset($1::jsonb) AS x(ord int, stream_id text, revision bigint, event_id uuid, type text, v int, data jsonb,
                  metadata jsonb, created timestamptz, commit bigint, prepare bigint, world text, category text, command_id uuid, command_hash text)
         ), ins AS (
           INSERT INTO events (stream_id, revision, event_id, type, schema_version, data, metadata, created_at, esdb_commit, esdb_prepare)
           SELECT stream_id, revision, event_id, type, v, data, metadata, created, commit, prepare FROM input ORDER BY ord
           -- Only an event already mirrored (same EventStoreDB position) is skipped. Any other clash — an event id
           -- EventStoreDB holds twice, a revision taken by a row not from EventStoreDB — stops the mirror loudly
           -- (logged, retried) rather than letting the copy differ from the log in silence.
           ON CONFLICT (esdb_commit, esdb_prepare) WHERE esdb_commit IS NOT NULL DO NOTHING
           RETURNING stream_id
         ), heads AS (
           INSERT INTO streams AS s (stream_id, world_id, category, revision, last_tx)
           SELECT stream_id, max(world), max(category), max(revision), pg_current_xact_id() FROM input GROUP BY stream_id
           ON CONFLICT (stream_id) DO UPDATE SET revision = greatest(s.revision, excluded.revision), last_tx = excluded.last_tx, updated_at = now()
         ), cmds AS (
           INSERT INTO commands (command_id, command_hash, stream_id, first_revision, last_revision)
           SELECT command_id, max(command_hash), max(stream_id), min(revision), max(revision) FROM input WHERE command_id IS NOT NULL GROUP BY command_id
           -- A command's events may arrive in two batches: the row grows to cover them.
           ON CONFLICT (command_id) DO UPDATE SET first_revision = least(commands.first_revision, excluded.first_revision),
                                                  last_revision = greatest(commands.last_revision, excluded.last_revision)
         )
         INSERT INTO esdb_mirror AS m (name, commit, prepare, events, event_time) VALUES ($2, $3, $4, $5, $6)
         ON CONFLICT (name) DO UPDATE SET commit = excluded.commit, prepare = excluded.prepare, events = m.events + excluded.events,
                                          event_time = excluded.event_time, updated_at = now()
         WHERE (m.commit, m.prepare) < (excluded.commit, excluded.prepare)`,
        [JSON.stringify(rows), MIRROR, last.position.commit.toString(), last.position.prepare.toString(), batch.length, last.created],
      ),
    );
    this.last = last.position;
    this.options.onCommitted?.(batch.map((e) => e.id));
  }
}
