import type { EventStore } from '@lorestore/event-store';
import type { StateAt, StateTarget, StreamStateAt } from './state-at';

/** The categories of a world's streams, in the order a world's state lists them. */
const CATEGORIES = ['world', 'narrative', 'entity', 'player'] as const;

export type WorldStatePage = { streams: StreamStateAt[]; nextCursor: string | null };

/**
 * A whole world at a global position (or time): every stream of the world
 * folded to that point, a page at a time (a world may hold a million
 * entities). Streams with no event at or before the point are left out. The
 * cursor is the last stream id of the previous page.
 */
export const worldStateAt = async (
  deps: { store: EventStore; stateAt: StateAt },
  worldId: string,
  target: Pick<StateTarget, 'position' | 'time'>,
  page: { limit: number; cursor?: string },
): Promise<WorldStatePage> => {
  const out: StreamStateAt[] = [];
  const cursorCategory = page.cursor?.split('-', 1)[0];
  let started = page.cursor === undefined;
  for (const category of CATEGORIES) {
    if (!started && category !== cursorCategory) continue;
    let after = started ? undefined : page.cursor;
    started = true;
    for (;;) {
      const heads = await deps.store.listStreams({ worldId, category, after, limit: Math.max(page.limit, 50) });
      if (heads.length === 0) break;
      for (let i = 0; i < heads.length; i += 16) {
        const chunk = heads.slice(i, i + 16);
        const states = await Promise.all(chunk.map((h) => deps.stateAt.stream(h.streamId, target)));
        for (const state of states) {
          if (out.length === page.limit) return { streams: out, nextCursor: out.at(-1)!.streamId };
          if (state.revision >= 0n) out.push(state);
        }
      }
      after = heads.at(-1)!.streamId;
    }
  }
  return { streams: out, nextCursor: null };
};
