import type { PoolClient } from 'pg';
import { END, START, type AllSubscription, type Position, type RecordedEvent } from '../types';
import type { PostgresEventStore } from './postgres-event-store';

type Options = {
  fromPosition: Position | typeof START | typeof END;
  batchSize: number;
  /** At least batchSize: see SubscribeToAllOptions. */
  catchUpBatchSize: number;
  withMetadata: boolean;
  pollIntervalMs: number;
  channel: string;
  onClose: () => void;
};

const MAX_BACKOFF_MS = 5000;

/**
 * Catch-up then live subscription to the global feed. Reads gap-safe batches;
 * when caught up it sleeps until a NOTIFY from a committing append or, as the
 * fallback, the poll interval (an unrelated long transaction can hold events
 * back without any new NOTIFY when it ends). Survives a database restart by
 * backing off and reading again from its last position.
 */
export class PostgresAllSubscription implements AllSubscription {
  private closed = false;
  private wake: (() => void) | null = null;
  /** A NOTIFY that came while we were reading: the next sleep must not wait for another. */
  private notified = false;
  private listener: PoolClient | null = null;

  constructor(
    private readonly store: PostgresEventStore,
    private readonly options: Options,
  ) {}

  async *[Symbol.asyncIterator](): AsyncIterator<RecordedEvent> {
    for await (const batch of this.batches()) yield* batch;
  }

  /** The same feed a read at a time: what one gap-safe read returned, never empty. */
  async *batches(): AsyncGenerator<RecordedEvent[]> {
    let position: Position | null = null;
    const from = this.options.fromPosition;
    let backoff = 100;
    let started = false;
    /** From the end: what had committed when the subscription started, to be passed over. */
    let before: { committedBefore: (commit: bigint) => boolean; horizon: bigint } | null = null;
    /** Events asked for per read: batchSize, or catchUpBatchSize after a read that came back full. */
    let limit = this.options.batchSize;
    try {
      while (!this.closed) {
        let batch: RecordedEvent[];
        try {
          if (!started) {
            if (from === END) {
              const end = await this.store.endMarker();
              position = end.head;
              before = end;
            } else {
              position = from === START ? null : from;
            }
            started = true;
          }
          await this.ensureListening();
          batch = await this.store.readFeed(position, false, limit, { withMetadata: this.options.withMetadata });
          backoff = 100;
        } catch {
          if (this.closed) return;
          this.dropListener();
          await this.sleep(backoff);
          backoff = Math.min(backoff * 2, MAX_BACKOFF_MS);
          continue;
        }
        if (batch.length > 0) {
          position = batch.at(-1)!.position;
          if (this.closed) return;
          let deliver = batch;
          if (before) {
            const b = before;
            deliver = batch.filter((e) => !b.committedBefore(e.position.commit));
            // The feed is in transaction order: past the snapshot's horizon nothing can be from before.
            if (position.commit >= b.horizon) before = null;
          }
          if (deliver.length > 0) yield deliver;
        }
        const full = batch.length >= limit;
        limit = full ? this.options.catchUpBatchSize : this.options.batchSize;
        if (!full) await this.sleep(this.options.pollIntervalMs);
      }
    } finally {
      await this.unsubscribe();
    }
  }

  async unsubscribe(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.wake?.();
    const listener = this.listener;
    this.listener = null;
    if (listener) {
      await listener.query(`UNLISTEN "${this.options.channel}"`).catch(() => undefined);
      this.detach(listener);
      listener.release();
    }
    this.options.onClose();
  }

  private async ensureListening(): Promise<void> {
    if (this.listener) return;
    const client = await this.store.pool.connect();
    client.on('notification', this.onNotification);
    client.on('error', this.onError);
    try {
      await client.query(`LISTEN "${this.options.channel}"`);
    } catch (error) {
      this.detach(client);
      client.release(true);
      throw error;
    }
    if (this.closed) {
      this.detach(client);
      client.release();
      return;
    }
    this.listener = client;
  }

  private readonly onNotification = () => {
    this.notified = true;
    this.wake?.();
  };

  private readonly onError = () => this.dropListener();

  /** A pooled connection goes back to other users: without our listeners (they would pile up on it). */
  private detach(client: PoolClient): void {
    client.off('notification', this.onNotification);
    client.off('error', this.onError);
  }

  private dropListener(): void {
    const listener = this.listener;
    this.listener = null;
    if (listener) {
      this.detach(listener);
      listener.release(true);
    }
  }

  private sleep(ms: number): Promise<void> {
    if (this.notified) {
      this.notified = false;
      return Promise.resolve();
    }
    return new Promise((resolve) => {
      const done = () => {
        clearTimeout(timer);
        this.wake = null;
        this.notified = false;
        resolve();
      };
      const timer = setTimeout(done, ms);
      this.wake = done;
    });
  }
}
