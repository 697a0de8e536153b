import { Inject } from '@nestjs/common';
import { QueryHandler, type IQueryHandler } from '@nestjs/cqrs';
import { inRanges, streamIds, type PlayerActionRecorded, type PlayerState } from '@lorestore/domain';
import type { PersonalDataCodec } from '@lorestore/privacy';
import { PERSONAL_DATA } from '../privacy/privacy.providers';
import { profileView } from '../privacy/profile-view';
import type { EventStore } from '@lorestore/event-store';
import type { StateAt } from '@lorestore/replay';
import { STATE_AT } from '../replay/replay.providers';
import { Problem } from '../http/problem';
import { EVENT_STORE } from '../persistence/tokens';
import { isPointInTime, toUntil, type PointInTime } from './point-in-time';
import { ReadModels } from './read-models';
import { StateReader } from './state-reader';

export class GetPlayer {
  constructor(
    readonly worldId: string,
    readonly playerId: string,
    readonly at: PointInTime,
  ) {}
}

@QueryHandler(GetPlayer)
export class GetPlayerHandler implements IQueryHandler<GetPlayer> {
  constructor(
    private readonly reader: StateReader,
    private readonly readModels: ReadModels,
    @Inject(PERSONAL_DATA) private readonly personal: PersonalDataCodec,
  ) {}

  async execute({ worldId, playerId, at }: GetPlayer) {
    let state: PlayerState;
    let last: { revision: bigint } | undefined;
    if (isPointInTime(at)) {
      ({ state, last } = await this.reader.load<PlayerState>('player', streamIds.player(worldId, playerId), at));
    } else {
      const doc = await this.readModels.doc('player_state', worldId, playerId, at.fence);
      state = doc?.state as PlayerState;
      last = doc ? { revision: doc.revision } : undefined;
    }
    // A player rolled back to before its first event has a document again at its initial state.
    if (!last || state.playerId === null) throw new Problem(404, 'not-found', 'Player not found', `player ${playerId} has no recorded state in world ${worldId}`);
    // The profile is sealed with the player's key; erased (key destroyed), it reads as nothing.
    const { profile, erased } = profileView(state, await this.personal.open(state.profile));
    return {
      playerId,
      relationships: state.relationships,
      counters: state.counters,
      profile,
      erased,
      lastActionAt: state.lastActionAt,
      revision: Number(last.revision),
    };
  }
}

export class GetPlayerHistory {
  constructor(
    readonly worldId: string,
    readonly playerId: string,
    readonly range: { from?: string; to?: string },
    readonly limit: number,
    /** The revision to continue below (from the previous page's nextCursor). */
    readonly cursor: number | undefined,
    readonly at: PointInTime,
  ) {}
}

const PAGE_READ = 200;

/** Actions newest first (in recording order), filtered to from ≤ at < to. */
type HistoryItem = { action: string; context: unknown; at: string; revision: number; position: number };

@QueryHandler(GetPlayerHistory)
export class GetPlayerHistoryHandler implements IQueryHandler<GetPlayerHistory> {
  constructor(
    @Inject(EVENT_STORE) private readonly store: EventStore,
    @Inject(STATE_AT) private readonly stateAt: StateAt,
    private readonly readModels: ReadModels,
    @Inject(PERSONAL_DATA) private readonly personal: PersonalDataCodec,
  ) {}

  async execute(query: GetPlayerHistory) {
    const page = isPointInTime(query.at) ? await this.folded(query) : await this.fromReadModel(query);
    // Contexts are sealed with the player's key: opened here, one key lookup for the page (ERASED once erased).
    const contexts = await this.personal.open(page.items.map((item) => item.context));
    return { ...page, items: page.items.map((item, i) => ({ ...item, context: contexts[i] })) };
  }

  /**
   * The partitioned `player_history` table, newest first in recording order;
   * a `from`/`to` range reads only the months it spans.
   */
  private async fromReadModel({ worldId, playerId, range, limit, cursor, at }: GetPlayerHistory) {
    const { rows } = await this.readModels.query<{ action: string; context: unknown; at: Date; revision: string; position: string }>(
      `SELECT action, context, at, revision, position FROM player_history
        WHERE world_id = $1 AND player_id = $2::uuid AND NOT rolled_back
          AND ($3::timestamptz IS NULL OR at >= $3) AND ($4::timestamptz IS NULL OR at < $4)
          AND ($5::bigint IS NULL OR revision < $5)
        ORDER BY revision DESC LIMIT $6`,
      [worldId, playerId, range.from ?? null, range.to ?? null, cursor ?? null, limit + 1],
      at.fence,
    );
    const items: HistoryItem[] = rows.slice(0, limit).map((r) => ({
      action: r.action,
      context: r.context,
      at: r.at.toISOString(),
      revision: Number(r.revision),
      position: Number(r.position),
    }));
    return { items, nextCursor: rows.length > limit ? String(items.at(-1)!.revision) : null };
  }

  /** The history as it was at a point in time, read backwards from the log. */
  private async folded({ worldId, playerId, range, limit, cursor, at }: GetPlayerHistory) {
    const streamId = streamIds.player(worldId, playerId);
    const items: HistoryItem[] = [];
    let from: bigint | 'end' = cursor === undefined ? 'end' : BigInt(cursor) - 1n;
    let exhausted = false;
    // Which actions still count at that point: all after the last rollback before it, and those that rollback kept.
    const point = await this.stateAt.stream(streamId, toUntil(at) ?? {});
    const reset = point.revision >= 0n ? await this.stateAt.lastReset(streamId, point.revision) : null;
    const counts = (revision: bigint) => !reset || revision > BigInt(reset.revision) || inRanges(Number(revision), reset.kept);
    while (items.length < limit && !exhausted && (from === 'end' || from >= 0n)) {
      const events = await this.store.readStream(streamId, { direction: 'backwards', fromRevision: from, maxCount: PAGE_READ, until: toUntil(at) });
      exhausted = events.length < PAGE_READ;
      for (const event of events) {
        from = event.revision - 1n;
        if (event.type !== 'PlayerActionRecorded' || !counts(event.revision)) continue;
        const data = event.data as PlayerActionRecorded['data'];
        if (range.from !== undefined && Date.parse(data.at) < Date.parse(range.from)) continue;
        if (range.to !== undefined && Date.parse(data.at) >= Date.parse(range.to)) continue;
        items.push({ action: data.action, context: data.context, at: data.at, revision: Number(event.revision), position: Number(event.position.prepare) });
        if (items.length === limit) break;
      }
    }
    const more = items.length === limit && from !== 'end' && from >= 0n;
    return { items, nextCursor: more ? String(items.at(-1)!.revision) : null };
  }
}
