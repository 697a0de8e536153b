import type { Event } from './decider';

/**
 * Inclusive ranges of a stream's revisions, e.g. `[[0, 4], [9, 12]]`: the
 * events whose effects a state holds. Before any rollback a stream's state
 * holds `[[0, head]]`; a rollback to revision 4 at revision 9 leaves `[[0, 4]]`.
 */
export type RevisionRanges = [number, number][];

/**
 * The one event a rollback (and a restore) appends to a stream: the state it
 * goes back to, carried whole, so every aggregate's `evolve` treats it as a
 * reset and every projection sees the restored state through the normal feed.
 * History is never rewritten: the events it undoes stay in the log, and
 * `kept` says which of them still count (the rows of `player_history`, the
 * memories in the vector index).
 */
export type StreamRolledBack<State> = Event<
  'StreamRolledBack',
  {
    operationId: string;
    /** `rollback` undoes events; `restore` undoes a rollback. */
    kind: 'rollback' | 'restore';
    /** The revision whose state this restores; −1 is the state before the stream's first event. */
    toRevision: number;
    /** The stream's last revision before this event. */
    fromRevision: number;
    state: State;
    /** The revisions before this event whose effects `state` holds. */
    kept: RevisionRanges;
    reason: string;
    /** Who asked (the admin's key). */
    actor: string;
    at: string;
  }
>;

/** The revisions a state at `toRevision` holds, given the `kept` of the last reset at or before it (at `resetRevision`). */
export const keptAt = (toRevision: number, lastReset: { revision: number; kept: RevisionRanges } | null): RevisionRanges => {
  if (toRevision < 0) return [];
  if (!lastReset) return [[0, toRevision]];
  const ranges = lastReset.kept.map(([a, b]) => [a, b] as [number, number]);
  if (toRevision > lastReset.revision) {
    const tail: [number, number] = [lastReset.revision + 1, toRevision];
    const last = ranges.at(-1);
    if (last && last[1] + 1 === tail[0]) last[1] = tail[1];
    else ranges.push(tail);
  }
  return ranges;
};

export const inRanges = (revision: number, ranges: RevisionRanges): boolean => ranges.some(([a, b]) => revision >= a && revision <= b);

/**
 * The version of each aggregate's `evolve`. Raise it whenever `evolve` folds
 * any stored history differently: snapshots made by another version are
 * never used. The fingerprint test in `reducer-versions.unit.spec.ts` fails
 * when the fold of a fixed history changes and the version did not.
 */
export const REDUCER_VERSIONS = { entity: 1, world: 1, player: 1, narrative: 1 } as const;
