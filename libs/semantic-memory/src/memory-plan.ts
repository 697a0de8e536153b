import { parseStreamId, upcast, type NpcMemoryForgotten, type NpcMemoryRecorded, type PlayerErased, type RevisionRanges, type StreamRolledBack } from '@lorestore/domain';
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
      /**
       * A memory about players: its text and embedding as sealed in the event
       * (then `text` is '' and `embedding` []); the rows keep them sealed and
       * MemoryStore opens them when it reads. Null for a memory about no one.
       */
      sealed: { text: unknown; embedding: unknown } | null;
    }
  | { kind: 'forget'; memoryId: string; worldId: string; npcId: string; revision: bigint; position: bigint }
  /** A rollback or restore of the NPC: of its memories before `before`, only those `kept` count, and only the forgets `kept`. */
  | { kind: 'reset'; worldId: string; npcId: string; before: bigint; kept: RevisionRanges; position: bigint }
  /** A player erased: every memory about them recorded before it loses its text and vector and leaves search. */
  | { kind: 'erase'; playerId: string; position: bigint };

/**
 * Opens sealed personal data (PersonalDataCodec): a value with every
 * envelope in it replaced by its plaintext, or by ERASED once the player's
 * key is destroyed.
 */
export type PersonalDataOpener = { open<T>(value: T): Promise<T> };

/** The ops of a batch of the feed: only events of entity streams touch memories, and erasures. */
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
      // Sealed (PERSONAL_DATA): the values are envelopes, not a string and an array.
      const sealed = typeof d.text !== 'string' || !Array.isArray(d.embedding);
      ops.push({
        kind: 'record',
        ...base,
        memoryId: d.memoryId,
        revision: event.revision,
        text: sealed ? '' : d.text,
        importance: d.importance,
        subjects: d.subjects,
        createdAt: d.at,
        embedding: sealed ? [] : d.embedding,
        sealed: sealed ? { text: d.text, embedding: d.embedding } : null,
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
