import { Inject } from '@nestjs/common';
import { QueryHandler, type IQueryHandler } from '@nestjs/cqrs';
import { streamIds, type PlayerActionRecorded, type PlayerState } from '@lorestore/domain';
import type { EventStore } from '@lorestore/event-store';
import { Problem } from '../http/problem';
import { EVENT_STORE } from '../persistence/tokens';
import { toUntil, type PointInTime } from './point-in-time';
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
  constructor(private readonly reader: StateReader) {}

  async execute({ worldId, playerId, at }: GetPlayer) {
    const { state, last } = await this.reader.load<PlayerState>('player', streamIds.player(worldId, playerId), at);
    if (!last) throw new Problem(404, 'not-found', 'Player not found', `player ${playerId} has no recorded state in world ${worldId}`);
    return {
      playerId,
      relationships: state.relationships,
      counters: state.counters,
      profile: state.profile,
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
@QueryHandler(GetPlayerHistory)
export class GetPlayerHistoryHandler implements IQueryHandler<GetPlayerHistory> {
  constructor(@Inject(EVENT_STORE) private readonly store: EventStore) {}

  async execute({ worldId, playerId, range, limit, cursor, at }: GetPlayerHistory) {
    const streamId = streamIds.player(worldId, playerId);
    const items: { action: string; context: unknown; at: string; revision: number; position: number }[] = [];
    let from: bigint | 'end' = cursor === undefined ? 'end' : BigInt(cursor) - 1n;
    let exhausted = false;
    while (items.length < limit && !exhausted && (from === 'end' || from >= 0n)) {
      const events = await this.store.readStream(streamId, { direction: 'backwards', fromRevision: from, maxCount: PAGE_READ, until: toUntil(at) });
      exhausted = events.length < PAGE_READ;
      for (const event of events) {
        from = event.revision - 1n;
        if (event.type !== 'PlayerActionRecorded') continue;
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
