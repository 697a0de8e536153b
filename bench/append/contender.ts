import type { GroupCommitOptions } from '@lorestore/event-store';

/** One event as every contender writes it: same type, same payload, same metadata. */
export type BenchEvent = {
  id: string;
  type: string;
  data: Record<string, unknown>;
  metadata: Record<string, unknown>;
};

export type AppendSpec = {
  streamId: string;
  /** The revision the event gets: 0 appends to a new stream. */
  revision: bigint;
  commandId: string;
  event: BenchEvent;
};

/**
 * `lorestore-personal`: lorestore with a chat-like personal context per event, plain or sealed (the cost of encryption).
 * `lorestore-full`: lorestore with every batch through the full append_batch, as before the fast path (migration 004).
 */
export type ContenderKind = 'raw-pg' | 'emmett' | 'lorestore' | 'lorestore-personal' | 'lorestore-full';

/**
 * The personal-data cells: `plain` writes the chat context as it is; `sealed`
 * seals it per player (AES-256-GCM, keys cached: players of a pool of 10,000
 * seen before); `sealed-new-player` gives every append a player never seen,
 * so each one first creates and stores that player's key.
 */
export type PersonalMode = 'plain' | 'sealed' | 'sealed-new-player';

export type ContenderConfig = {
  kind: ContenderKind;
  label: string;
  url: string;
  /** Each contender writes into its own schema, created on open, dropped by the orchestrator. */
  schema: string;
  groupCommit?: GroupCommitOptions;
  personal?: PersonalMode;
};

export interface Contender {
  append(spec: AppendSpec): Promise<void>;
  /**
   * Gives the store a history before measuring, as if `events` earlier appends
   * had each started a stream, then ANALYZE (see support/history.ts).
   */
  prefill(events: number): Promise<void>;
  /** Figures about the contender's own behaviour (e.g. batch sizes) since the last reset. */
  stats(): Record<string, number>;
  resetStats(): void;
  close(): Promise<void>;
}

/** Connections per contender: one per writer, as a service would size its pool, capped like one. */
export const poolSizeFor = (writers: number): number => Math.min(Math.max(writers, 2), 64);
