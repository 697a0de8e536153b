import { Inject } from '@nestjs/common';
import { QueryHandler, type IQueryHandler } from '@nestjs/cqrs';
import type { EventStore } from '@lorestore/event-store';
import type { PersonalDataCodec } from '@lorestore/privacy';
import { PERSONAL_DATA } from '../privacy/privacy.providers';
import { Problem } from '../http/problem';
import { EVENT_STORE } from '../persistence/tokens';
import { toUntil, type PointInTime } from './point-in-time';

export class GetStreamEvents {
  constructor(
    readonly worldId: string,
    readonly streamId: string,
    readonly fromRevision: number,
    readonly limit: number,
    readonly at: PointInTime,
  ) {}
}

/** The raw events of one of the world's streams (the stream name must belong to the world). */
@QueryHandler(GetStreamEvents)
export class GetStreamEventsHandler implements IQueryHandler<GetStreamEvents> {
  constructor(
    @Inject(EVENT_STORE) private readonly store: EventStore,
    @Inject(PERSONAL_DATA) private readonly personal: PersonalDataCodec,
  ) {}

  async execute({ worldId, streamId, fromRevision, limit, at }: GetStreamEvents) {
    const category = streamId.split('-', 1)[0]!;
    // A world's own streams only: the privacy streams (`privacy-<playerId>`, admin audit) belong to none,
    // though a player id is a valid world slug.
    const belongs =
      category !== 'privacy' &&
      (streamId === `${category}-${worldId}` ||
        (streamId.startsWith(`${category}-${worldId}-`) && /^[0-9a-f-]{36}$/.test(streamId.slice(category.length + worldId.length + 2))));
    const events = belongs ? await this.store.readStream(streamId, { fromRevision: BigInt(fromRevision), maxCount: limit + 1, until: toUntil(at) }) : [];
    if (events.length === 0 && (!belongs || (await this.store.streamRevision(streamId)) === null)) {
      throw new Problem(404, 'not-found', 'Stream not found', `world ${worldId} has no stream ${streamId}`);
    }
    // Personal fields opened for the caller (ERASED once the player is erased); the log itself keeps the envelopes.
    const page = await this.personal.openEvents(events.slice(0, limit));
    return {
      streamId,
      events: page.map((e) => ({
        id: e.id,
        type: e.type,
        revision: Number(e.revision),
        position: Number(e.position.prepare),
        schemaVersion: e.schemaVersion,
        data: e.data,
        metadata: e.metadata,
        createdAt: e.created.toISOString(),
      })),
      nextRevision: events.length > limit ? Number(events[limit]!.revision) : null,
    };
  }
}
