import type { Doc, DocTable } from '../projections';

/** A document as the hot store holds it. */
export type HotDoc = { revision: bigint; position: bigint; state: unknown; updatedAt: string };

/**
 * Hot state: the read models' documents in Redis (one node or a Cluster) or,
 * with neither configured, in process. A cache in front of the PostgreSQL read
 * models, written by the projector and filled by readers on a miss; every
 * write is guarded by the document's stream revision, so a redelivered or
 * late write never moves a document backwards.
 */
export interface HotStateStore {
  readonly kind: 'redis' | 'redis-cluster' | 'memory';
  /** `generation`: which generation of the projection's keys (a rebuild writes the next one). */
  get(table: DocTable, worldId: string, id: string, generation?: number): Promise<HotDoc | null>;
  /** Writes each document unless the stored one is as new or newer; refreshes the TTL of those written. */
  put(docs: readonly Doc[]): Promise<void>;
  /** Throws when the store cannot be reached. */
  ping(): Promise<void>;
  /**
   * Called when the store may have lost acknowledged writes (a Cluster
   * failover promotes a replica that had not received them yet): the
   * projector then writes its recent documents again.
   */
  onPossibleLoss(listener: () => void): void;
  /** In-process stores only: drop everything (this process's projector may not have seen every write). */
  forget?(): void;
  close(): Promise<void>;
}

const KEY_PREFIX: Record<DocTable, string> = {
  entities: 'entity',
  world_state: 'world',
  narrative_state: 'narrative',
  player_state: 'player',
};

/**
 * `entity:{<world>:<id>}`, `player:{<world>:<id>}`, `world:{<world>}`,
 * `narrative:{<world>}`: the braces are a Cluster hash tag, so everything
 * about one document lives in one slot. Generations after the first (each
 * rebuild starts one) add `:g<n>` after the prefix; the keys of the old
 * generation are left to expire.
 */
export const hotKey = (table: DocTable, worldId: string, id: string, generation = 1): string => {
  const prefix = generation === 1 ? KEY_PREFIX[table] : `${KEY_PREFIX[table]}:g${generation}`;
  return table === 'entities' || table === 'player_state' ? `${prefix}:{${worldId}:${id}}` : `${prefix}:{${worldId}}`;
};
