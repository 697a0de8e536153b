import { Inject, Injectable } from '@nestjs/common';
import type { AggregateName } from '@lorestore/domain';
import type { EventStore } from '@lorestore/event-store';
import type { StateAt } from '@lorestore/replay';
import { APP_CONFIG, type AppConfig } from '../config';
import { Problem } from '../http/problem';
import { EVENT_STORE } from '../persistence/tokens';
import { STATE_AT } from '../replay/replay.providers';
import { toUntil, type PointInTime } from './point-in-time';

export type LoadedState<S> = { state: S; last: { revision: bigint } | undefined };

/**
 * Answers point-in-time queries (`atRevision`, `atPosition`, `asOf`) with
 * libs/replay's state-at: the nearest snapshot, then the stream's events up
 * to the point.
 */
@Injectable()
export class StateReader {
  constructor(
    @Inject(EVENT_STORE) private readonly store: EventStore,
    @Inject(STATE_AT) private readonly stateAt: StateAt,
    @Inject(APP_CONFIG) private readonly config: AppConfig,
  ) {}

  async load<S>(_aggregate: AggregateName, streamId: string, at: PointInTime): Promise<LoadedState<S>> {
    const folded = await this.stateAt.stream(streamId, toUntil(at) ?? {});
    if (at.atRevision !== undefined && folded.revision < BigInt(at.atRevision)) {
      throw new Problem(404, 'revision-not-found', 'Revision not found', `stream ${streamId} has no revision ${at.atRevision}`, {
        streamId,
        currentRevision: Number(folded.revision),
      });
    }
    return { state: folded.state as S, last: folded.revision >= 0n ? { revision: folded.revision } : undefined };
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
