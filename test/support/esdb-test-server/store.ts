/**
 * The in-memory log behind the EventStoreDB test double (see ./index.ts).
 * No gRPC here: streams, the global log, the expected-revision and
 * idempotency checks, soft delete and tombstone, and live listeners.
 *
 * The checks follow EventStoreDB's own commit check (its IndexWriter
 * `CheckCommit`), case by case; see `checkCommit` below.
 */
import { randomUUID } from 'node:crypto';

export type Expected =
  | { kind: 'any' }
  | { kind: 'no_stream' }
  | { kind: 'stream_exists' }
  | { kind: 'revision'; revision: bigint };

export type ProposedEvent = {
  id: string;
  type: string;
  isJson: boolean;
  data: Uint8Array;
  customMetadata: Uint8Array;
};

export type StoredEvent = ProposedEvent & {
  streamId: string;
  revision: bigint;
  /** commit position == prepare position */
  position: bigint;
  /** 100-ns ticks since the Unix epoch (what EventStoreDB sends as `created`) */
  created: bigint;
};

/** `currentRevision` -1n means "no stream". */
export type AppendOutcome =
  | { kind: 'success'; currentRevision: bigint; position: bigint | null; written: StoredEvent[] }
  | { kind: 'wrong_expected_version'; currentRevision: bigint }
  | { kind: 'stream_deleted' };

export type DeleteOutcome =
  | { kind: 'success'; position: bigint }
  | { kind: 'wrong_expected_version'; currentRevision: bigint }
  | { kind: 'stream_deleted' };

type StreamState = {
  /** every event ever written, index == revision (soft delete hides them, it does not remove them) */
  events: StoredEvent[];
  lastRevision: bigint;
  /** revisions below this are hidden from stream reads (EventStoreDB's `$tb`) */
  truncateBefore: bigint;
  softDeleted: boolean;
  tombstoned: boolean;
};

type CommitCheck =
  | { decision: 'ok'; current: bigint }
  | { decision: 'idempotent'; current: bigint; last: StoredEvent }
  | { decision: 'wrong_expected_version'; current: bigint }
  | { decision: 'deleted' };

export type Listener = (written: StoredEvent[]) => void;

const FIRST_POSITION = 1000n;
const POSITION_STEP = 100n;
const TICKS_PER_MS = 10_000n;

export class EventLog {
  private readonly streams = new Map<string, StreamState>();
  private readonly all: StoredEvent[] = [];
  /** event id -> the event written with it (EventStoreDB keeps a bounded cache of recent ids; this one is unbounded) */
  private readonly byId = new Map<string, StoredEvent>();
  private readonly listeners = new Set<Listener>();
  private nextPosition = FIRST_POSITION;

  /** Every event in log order. */
  events(): readonly StoredEvent[] {
    return this.all;
  }

  lastPosition(): bigint | null {
    return this.all.at(-1)?.position ?? null;
  }

  subscribe(listener: Listener): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  append(streamId: string, expected: Expected, proposed: ProposedEvent[]): AppendOutcome {
    const check = this.checkCommit(streamId, expected, proposed.map((e) => e.id));
    switch (check.decision) {
      case 'deleted':
        return { kind: 'stream_deleted' };
      case 'wrong_expected_version':
        return { kind: 'wrong_expected_version', currentRevision: check.current };
      case 'idempotent':
        // EventStoreDB answers an idempotent write with the revision and log position of the
        // last event of the earlier write that had these ids; nothing is written.
        return { kind: 'success', currentRevision: check.last.revision, position: check.last.position, written: [] };
      case 'ok':
        break;
    }
    if (proposed.length === 0) {
      return { kind: 'success', currentRevision: check.current, position: null, written: [] };
    }
    const stream = this.streamFor(streamId);
    if (stream.softDeleted) {
      // Recreating a soft-deleted stream: numbering continues, older revisions stay hidden.
      stream.softDeleted = false;
      stream.truncateBefore = stream.lastRevision + 1n;
    }
    const created = BigInt(Date.now()) * TICKS_PER_MS;
    const written = proposed.map((event): StoredEvent => {
      stream.lastRevision += 1n;
      const stored: StoredEvent = { ...event, streamId, revision: stream.lastRevision, position: this.takePosition(), created };
      stream.events.push(stored);
      this.all.push(stored);
      this.byId.set(stored.id, stored);
      return stored;
    });
    for (const listener of [...this.listeners]) listener(written);
    const last = written.at(-1)!;
    return { kind: 'success', currentRevision: last.revision, position: last.position, written };
  }

  /** Soft delete (`hard` false) or tombstone (`hard` true). Writes no event (EventStoreDB writes a `$metadata` / `$streamDeleted` record). */
  delete(streamId: string, expected: Expected, hard: boolean): DeleteOutcome {
    // EventStoreDB checks a delete like a write of one new event.
    const check = this.checkCommit(streamId, expected, [randomUUID()]);
    if (check.decision === 'deleted') return { kind: 'stream_deleted' };
    if (check.decision === 'wrong_expected_version' || check.decision === 'idempotent') {
      return { kind: 'wrong_expected_version', currentRevision: check.current };
    }
    const stream = this.streamFor(streamId);
    if (hard) stream.tombstoned = true;
    else {
      stream.softDeleted = true;
      stream.truncateBefore = stream.lastRevision + 1n;
    }
    return { kind: 'success', position: this.takePosition() };
  }

  /**
   * What a stream read sees: `not_found` for a stream never written, soft-deleted, or
   * whose every event is hidden; `deleted` for a tombstoned one; else the visible events.
   */
  readStream(streamId: string): { kind: 'not_found' } | { kind: 'deleted' } | { kind: 'found'; events: StoredEvent[]; lastRevision: bigint } {
    const stream = this.streams.get(streamId);
    if (!stream) return { kind: 'not_found' };
    if (stream.tombstoned) return { kind: 'deleted' };
    if (stream.softDeleted || stream.lastRevision < 0n) return { kind: 'not_found' };
    return { kind: 'found', events: stream.events.slice(Number(stream.truncateBefore)), lastRevision: stream.lastRevision };
  }

  /** For stream subscriptions: tombstoned, and the last revision written (-1n if none). */
  streamHead(streamId: string): { tombstoned: boolean; lastRevision: bigint } {
    const stream = this.streams.get(streamId);
    return { tombstoned: stream?.tombstoned ?? false, lastRevision: stream?.lastRevision ?? -1n };
  }

  private takePosition(): bigint {
    const position = this.nextPosition;
    this.nextPosition += POSITION_STEP;
    return position;
  }

  private streamFor(streamId: string): StreamState {
    let stream = this.streams.get(streamId);
    if (!stream) {
      stream = { events: [], lastRevision: -1n, truncateBefore: 0n, softDeleted: false, tombstoned: false };
      this.streams.set(streamId, stream);
    }
    return stream;
  }

  /**
   * EventStoreDB's commit check (IndexWriter.CheckCommit), for one stream and the ids of the events to write:
   *  - tombstoned stream: deleted, whatever the expectation;
   *  - `stream_exists`: deleted if soft-deleted, wrong version if the stream has no event;
   *  - `any` / `stream_exists`: if the FIRST id is not an event of this stream, write; if every id is
   *    an event of this stream, idempotent (answer with the last of them, write nothing); if only some
   *    are, wrong expected version ("corrupted idempotency");
   *  - `no_stream` (-1) or revision r below the current revision: idempotent if the events at
   *    r+1, r+2, ... carry exactly these ids; if the first differs, wrong expected version, except
   *    `no_stream` on a soft-deleted stream, which recreates it; if a later one differs, wrong version;
   *  - r above the current revision: wrong expected version; r equal to it: write.
   */
  private checkCommit(streamId: string, expected: Expected, ids: string[]): CommitCheck {
    const stream = this.streams.get(streamId);
    const current = stream?.lastRevision ?? -1n;
    if (stream?.tombstoned) return { decision: 'deleted' };

    if (expected.kind === 'stream_exists') {
      if (stream?.softDeleted) return { decision: 'deleted' };
      if (current < 0n) return { decision: 'wrong_expected_version', current };
    }

    if (expected.kind === 'any' || expected.kind === 'stream_exists') {
      let last: StoredEvent | undefined;
      for (const [index, id] of ids.entries()) {
        const found = this.byId.get(id);
        if (!found || found.streamId !== streamId) {
          return index === 0 ? { decision: 'ok', current } : { decision: 'wrong_expected_version', current };
        }
        last = found;
      }
      return last ? { decision: 'idempotent', current, last } : { decision: 'ok', current };
    }

    const expectedRevision = expected.kind === 'no_stream' ? -1n : expected.revision;
    if (expectedRevision < current) {
      let revision = expectedRevision;
      let last: StoredEvent | undefined;
      for (const id of ids) {
        revision += 1n;
        const atRevision = stream?.events[Number(revision)];
        if (atRevision && atRevision.id === id) {
          last = atRevision;
          continue;
        }
        const first = revision === expectedRevision + 1n;
        if (first && expected.kind === 'no_stream' && stream?.softDeleted) return { decision: 'ok', current };
        return { decision: 'wrong_expected_version', current };
      }
      return last ? { decision: 'idempotent', current, last } : { decision: 'wrong_expected_version', current };
    }
    if (expectedRevision > current) return { decision: 'wrong_expected_version', current };
    return { decision: 'ok', current };
  }
}
