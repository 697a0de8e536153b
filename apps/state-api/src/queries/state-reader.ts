import { Inject, Injectable } from '@nestjs/common';
import { deciders, fold, type AggregateName } from '@lorestore/domain';
import type { EventStore, RecordedEvent } from '@lorestore/event-store';
import { toDomainEvent } from '@lorestore/projections';
import { APP_CONFIG, type AppConfig } from '../config';
import { Problem } from '../http/problem';
import { EVENT_STORE } from '../persistence/tokens';
import { toUntil, type PointInTime } from './point-in-time';

export type LoadedState<S> = { state: S; events: RecordedEvent[]; last: RecordedEvent | undefined };

/**
 * Answers queries by folding the aggregate's stream, optionally only up to a
 * revision, a global position or a time. (Read models replace the fold for
 * current state later; point-in-time reads keep using it.)
 */
@Injectable()
export class StateReader {
  constructor(
    @Inject(EVENT_STORE) private readonly store: EventStore,
    @Inject(APP_CONFIG) private readonly config: AppConfig,
  ) {}

  async load<S>(aggregate: AggregateName, streamId: string, at: PointInTime): Promise<LoadedState<S>> {
    const events = await this.store.readStream(streamId, { until: toUntil(at) });
    if (at.atRevision !== undefined && (events.at(-1)?.revision ?? -1n) < BigInt(at.atRevision)) {
      throw new Problem(404, 'revision-not-found', 'Revision not found', `stream ${streamId} has no revision ${at.atRevision}`, {
        streamId,
        currentRevision: events.length - 1,
      });
    }
    const state = fold(deciders[aggregate], events.map(toDomainEvent)) as S;
    return { state, events, last: events.at(-1) };
  }

  /** Reads answer from the log, which holds every acknowledged write; wait only for a token from the future. */
  async waitFor(minPosition: number | undefined): Promise<void> {
    if (minPosition === undefined || minPosition === 0) return;
    const deadline = Date.now() + this.config.CONSISTENCY_WAIT_MS;
    for (let delay = 5; ; delay = Math.min(delay * 2, 100)) {
      if (await this.store.isPositionCommitted(BigInt(minPosition))) return;
      if (Date.now() >= deadline) {
        throw new Problem(504, 'consistency-timeout', 'Not caught up', `position ${minPosition} was not reached within ${this.config.CONSISTENCY_WAIT_MS} ms`, {}, { 'retry-after': '1' });
      }
      await new Promise((r) => setTimeout(r, delay));
    }
  }
}
