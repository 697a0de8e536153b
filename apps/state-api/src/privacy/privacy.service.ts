import { createHash } from 'node:crypto';
import { Readable } from 'node:stream';
import { Inject, Injectable, Logger, type OnApplicationBootstrap, type OnApplicationShutdown } from '@nestjs/common';
import type { Pool } from 'pg';
import { EVENT_SCHEMA_VERSIONS, privacyStreamId, uuidV7, type PlayerErased, type PlayerState } from '@lorestore/domain';
import { PostgresEventStore, deriveEventId, type EventStore } from '@lorestore/event-store';
import type { Erasure, PersonalDataCodec, PlayerKeyStore } from '@lorestore/privacy';
import type { ReadModelStore } from '@lorestore/projections';
import { MEMORY_PROJECTION, type MemoryStore } from '@lorestore/semantic-memory';
import { Problem } from '../http/problem';
import { Metrics } from '../metrics/metrics';
import { EVENT_STORE, PG_POOL } from '../persistence/tokens';
import { ReadModels } from '../queries/read-models';
import { MEMORY_STORE, READ_MODELS } from '../projections/projections.providers';
import { KEY_STORE, PERSONAL_DATA } from './privacy.providers';
import { profileView } from './profile-view';

export type ErasureView = { playerId: string; erasedAt: string; reason: string; erasedBy: string | null; position: number | null };

const EXPORT_PAGE = 1000;
/** How often, and after how long, an erasure whose audit event is missing is completed. */
const SWEEP_EVERY_MS = 30_000;
const SWEEP_AFTER_MS = 10_000;

/**
 * Erasure and export of a player's personal data (GDPR). Erasure destroys
 * the player's data key (crypto-shredding: every copy of their sealed data,
 * in the log, its mirrors and backups, is unreadable from that instant),
 * then appends a PlayerErased audit event, from which every read model drops
 * what it held. Export reads everything held about the player, opened.
 */
@Injectable()
export class PrivacyService implements OnApplicationBootstrap, OnApplicationShutdown {
  private readonly logger = new Logger('Privacy');
  private sweeper: NodeJS.Timeout | null = null;

  constructor(
    @Inject(KEY_STORE) private readonly keys: PlayerKeyStore,
    @Inject(PERSONAL_DATA) private readonly personal: PersonalDataCodec,
    @Inject(EVENT_STORE) private readonly store: EventStore,
    @Inject(PG_POOL) private readonly pool: Pool,
    @Inject(MEMORY_STORE) private readonly memories: MemoryStore,
    @Inject(READ_MODELS) private readonly documents: ReadModelStore,
    private readonly readModels: ReadModels,
    private readonly metrics: Metrics,
  ) {}

  onApplicationBootstrap(): void {
    this.sweeper = setInterval(() => {
      this.completeErasures().catch((error: unknown) => this.logger.warn(`completing erasures: ${(error as Error).message}`));
    }, SWEEP_EVERY_MS);
    this.sweeper.unref();
  }

  onApplicationShutdown(): void {
    if (this.sweeper) clearInterval(this.sweeper);
    this.sweeper = null;
  }

  /**
   * Appends the audit event of every erasure that has none yet: a process
   * that died between destroying the key and appending would otherwise leave
   * the read models and Pinecone holding what they held. Idempotent (the
   * erasure's command id), so every API instance may run it.
   */
  async completeErasures(olderThanMs = SWEEP_AFTER_MS): Promise<number> {
    let done = 0;
    for (const erasure of await this.keys.unfinishedErasures(olderThanMs)) {
      const position = await this.appendErased(erasure, `complete-erasure:${erasure.playerId}`);
      if (position !== null) done++;
      this.logger.warn(`erasure of player ${erasure.playerId} (${erasure.erasedAt.toISOString()}) had no audit event: appended${position === null ? ' (not mirrored yet)' : ` at ${position}`}`);
    }
    return done;
  }

  /** Whether lorestore holds anything of this player: a key (erased or not), a player document, or a memory about them. */
  async known(playerId: string): Promise<boolean> {
    const { rows } = await this.pool.query<{ known: boolean }>(
      `SELECT EXISTS (SELECT 1 FROM player_keys WHERE player_id = $1)
           OR EXISTS (SELECT 1 FROM player_state WHERE player_id = $1)
           OR EXISTS (SELECT 1 FROM ${MEMORY_PROJECTION} WHERE $1 = ANY (subjects)) AS known`,
      [playerId],
    );
    return rows[0]!.known;
  }

  private async mustKnow(playerId: string): Promise<void> {
    if (!(await this.known(playerId))) throw new Problem(404, 'not-found', 'Player not found', `lorestore holds nothing about player ${playerId}`);
  }

  /**
   * Erases a player. Idempotent: a second call changes nothing and answers
   * the first erasure (its time, reason and position). The key goes first,
   * so a crash between the two steps leaves the data erased and the audit
   * event to be appended by the retry.
   */
  async erase(playerId: string, reason: string, erasedBy: string, correlationId: string): Promise<ErasureView> {
    await this.mustKnow(playerId);
    const { erasure, fresh } = await this.keys.erase(playerId, reason, erasedBy);
    if (fresh) this.metrics.erasures.inc();
    const position = erasure.position ?? (await this.appendErased(erasure, correlationId));
    return this.view({ ...erasure, position });
  }

  private async appendErased(erasure: Erasure, correlationId: string): Promise<bigint | null> {
    const { playerId } = erasure;
    // The same command id for every attempt at this erasure: the log holds one PlayerErased, whoever retries.
    const commandId = uuidV7(erasure.erasedAt.getTime(), `erase:${playerId}`);
    const data: PlayerErased['data'] = { playerId, reason: erasure.reason, erasedBy: erasure.erasedBy, at: erasure.erasedAt.toISOString() };
    const result = await this.store.appendToStream(
      privacyStreamId(playerId),
      [
        {
          id: deriveEventId(commandId, 0),
          type: 'PlayerErased',
          data,
          schemaVersion: EVENT_SCHEMA_VERSIONS.PlayerErased,
          metadata: { commandId, commandType: 'admin.erase_player', correlationId, causationId: commandId, actor: erasure.erasedBy ?? 'admin' },
        },
      ],
      // Nothing personal in it: a plain hash, the same for every attempt at this erasure.
      { expectedRevision: 'any', commandId, commandHash: createHash('sha256').update(`erase:${playerId}`).digest('base64url') },
    );
    if (result.mirrored === false) return null;
    const position = result.position.prepare;
    await this.keys.recordErasePosition(playerId, position);
    return position;
  }

  private view(erasure: Erasure): ErasureView {
    return {
      playerId: erasure.playerId,
      erasedAt: erasure.erasedAt.toISOString(),
      reason: erasure.reason,
      erasedBy: erasure.erasedBy,
      position: erasure.position === null ? null : Number(erasure.position),
    };
  }

  /**
   * Everything held about the player, opened, as one JSON document written
   * piece by piece (actions in pages of 1000): profile, relationships and
   * counters per world, every recorded action, every memory about them. The
   * read models are caught up with the log's head first, so nothing
   * acknowledged before the request is missing.
   */
  async export(playerId: string): Promise<Readable> {
    await this.mustKnow(playerId);
    if (this.store instanceof PostgresEventStore) {
      const head = await this.store.headPosition();
      if (head) for (const projection of ['player_state', 'player_history', MEMORY_PROJECTION]) await this.readModels.waitFor(projection, Number(head.prepare));
    }
    const erasure = await this.keys.erasure(playerId);
    this.metrics.exports.inc();
    return Readable.from(this.exportChunks(playerId, erasure), { objectMode: false });
  }

  private async *exportChunks(playerId: string, erasure: Erasure | null): AsyncGenerator<string> {
    yield `{"playerId":${JSON.stringify(playerId)},"exportedAt":${JSON.stringify(new Date().toISOString())}`;
    yield `,"erased":${erasure !== null},"erasure":${JSON.stringify(erasure ? this.view(erasure) : null)}`;

    const docs = [...(await this.documents.loadPlayerDocs([playerId])).values()].sort((a, b) => (a.worldId < b.worldId ? -1 : 1));
    const profiles = await this.personal.open(docs.map((d) => (d.state as PlayerState).profile));
    const worlds = docs.map((d, i) => {
      const state = d.state as PlayerState;
      const { profile } = profileView(state, profiles[i] ?? null);
      return {
        worldId: d.worldId,
        profile,
        relationships: state.relationships,
        counters: state.counters,
        lastActionAt: state.lastActionAt,
        revision: Number(d.revision),
        updatedAt: d.updatedAt,
      };
    });
    yield `,"worlds":${JSON.stringify(worlds)}`;

    yield ',"actions":[';
    let after: { worldId: string; revision: string } | null = null;
    let first = true;
    for (;;) {
      const page: { rows: { world_id: string; action: string; context: unknown; at: Date; revision: string; position: string; rolled_back: boolean }[] } = await this.pool.query(
        `SELECT world_id, action, context, at, revision, position, rolled_back FROM player_history
          WHERE player_id = $1 AND ($2::text IS NULL OR (world_id, revision) > ($2, $3::bigint))
          ORDER BY world_id, revision LIMIT $4`,
        [playerId, after?.worldId ?? null, after?.revision ?? null, EXPORT_PAGE],
      );
      if (page.rows.length === 0) break;
      const contexts = await this.personal.open(page.rows.map((r) => r.context));
      const items = page.rows.map((r, i) => ({
        worldId: r.world_id,
        action: r.action,
        context: contexts[i],
        at: r.at.toISOString(),
        revision: Number(r.revision),
        position: Number(r.position),
        rolledBack: r.rolled_back,
      }));
      yield (first ? '' : ',') + items.map((item) => JSON.stringify(item)).join(',');
      first = false;
      const last = page.rows.at(-1)!;
      after = { worldId: last.world_id, revision: last.revision };
      if (page.rows.length < EXPORT_PAGE) break;
    }
    yield ']';

    const memoryItems = (await this.memories.aboutPlayer(playerId)).map((m) => ({
      memoryId: m.memoryId,
      worldId: m.worldId,
      npcId: m.npcId,
      text: m.text,
      importance: m.importance,
      createdAt: m.createdAt.toISOString(),
      forgotten: m.forgotten,
      rolledBack: m.rolledBack,
      // The other players a memory is about are theirs to know: only how many.
      otherSubjects: m.subjects.filter((s) => s !== playerId).length,
    }));
    yield `,"memories":${JSON.stringify(memoryItems)}}`;
  }
}
