import { isErasedValue, parseStreamId, upcast, type NpcMemoryForgotten, type NpcMemoryRecorded, type PlayerErased, type RevisionRanges, type StreamRolledBack } from '@lorestore/domain';
import type { RecordedEvent } from '@lorestore/event-store';

/** What one event of the feed does to the memory rows, in feed order. */
export type MemoryOp =
  | {
      kind: 'record';
      memoryId: string;
      worldId: string;
      npcId: string;
      revision: bigint;
      position: bigint;
      text: string;
      importance: number;
      subjects: string[];
      createdAt: string;
      embedding: number[];
      /** About a player erased (its sealed text no longer opens): kept as a row with no text or vector, never searchable. */
      erased: boolean;
    }
  | { kind: 'forget'; memoryId: string; worldId: string; npcId: string; revision: bigint; position: bigint }
  /** A rollback or restore of the NPC: of its memories before `before`, only those `kept` count, and only the forgets `kept`. */
  | { kind: 'reset'; worldId: string; npcId: string; before: bigint; kept: RevisionRanges; position: bigint }
  /** A player erased: every memory about them recorded before it loses its text and vector and leaves search. */
  | { kind: 'erase'; playerId: string; position: bigint };

/**
 * The personal data of memory events, opened before planning (see
 * PersonalDataCodec): text and embedding in plain, or ERASED. `forget` drops
 * a player's key from the cache on an erasure seen in the feed.
 */
export type PersonalDataOpener = {
  openEvents(events: readonly RecordedEvent[]): Promise<RecordedEvent[]>;
  forget(playerId: string): void;
};

/**
 * The ops of a batch of the feed (its personal data opened): only events of
 * entity streams touch memories, and erasures.
 */
export const planMemoryOps = (events: readonly RecordedEvent[]): MemoryOp[] => {
  const ops: MemoryOp[] = [];
  for (const event of events) {
    if (event.type === 'PlayerErased') {
      ops.push({ kind: 'erase', playerId: (event.data as PlayerErased['data']).playerId, position: event.position.prepare });
      continue;
    }
    if (event.type !== 'NpcMemoryRecorded' && event.type !== 'NpcMemoryForgotten' && event.type !== 'StreamRolledBack') continue;
    const stream = parseStreamId(event.streamId);
    if (stream?.aggregate !== 'entity') continue;
    const data = upcast(event.type, event.schemaVersion, event.data);
    const base = { worldId: stream.worldId, npcId: stream.id, position: event.position.prepare };
    if (event.type === 'NpcMemoryRecorded') {
      const d = data as NpcMemoryRecorded['data'];
      const erased = isErasedValue(d.text) || isErasedValue(d.embedding);
      ops.push({
        kind: 'record',
        ...base,
        memoryId: d.memoryId,
        revision: event.revision,
        text: erased ? '' : d.text,
        importance: d.importance,
        subjects: d.subjects,
        createdAt: d.at,
        embedding: erased ? [] : d.embedding,
        erased,
      });
    } else if (event.type === 'NpcMemoryForgotten') {
      const d = data as NpcMemoryForgotten['data'];
      ops.push({ kind: 'forget', ...base, memoryId: d.memoryId, revision: event.revision });
    } else {
      const d = data as StreamRolledBack<unknown>['data'];
      ops.push({ kind: 'reset', ...base, before: event.revision, kept: d.kept });
    }
  }
  return ops;
};
