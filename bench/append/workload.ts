import { randomUUID } from 'node:crypto';
import type { AppendSpec, BenchEvent } from './contender';

/** One event of the shape every contender writes, for `streamId`. */
export const benchEvent = (streamId: string, commandId: string): BenchEvent => ({
  id: randomUUID(),
  type: 'PlayerActionRecorded',
  data: { playerId: streamId.slice('player-'.length), action: 'jump', context: { x: 1 }, at: new Date().toISOString() },
  metadata: { commandId, correlationId: commandId, actor: 'bench', worldId: 'bench' },
});

/**
 * Which stream each append goes to. `streams = 0`: every append starts its own
 * new stream. `streams = N`: N streams, each owned by one writer, so no
 * contender ever loses a race and the revisions are known in advance.
 */
export class Workload {
  private readonly owned: { id: string; next: bigint }[][];
  private readonly cursor: number[];

  constructor(
    writers: number,
    private readonly streams: number,
  ) {
    this.cursor = new Array<number>(writers).fill(0);
    this.owned = Array.from({ length: writers }, () => []);
    if (streams > 0) {
      const total = Math.max(streams, writers);
      for (let k = 0; k < total; k++) this.owned[k % writers]!.push({ id: `player-${randomUUID()}`, next: 0n });
    }
  }

  next(writer: number): AppendSpec {
    const commandId = randomUUID();
    let streamId: string;
    let revision: bigint;
    if (this.streams === 0) {
      streamId = `player-${randomUUID()}`;
      revision = 0n;
    } else {
      const mine = this.owned[writer]!;
      const stream = mine[this.cursor[writer]!++ % mine.length]!;
      streamId = stream.id;
      revision = stream.next++;
    }
    return { streamId, revision, commandId, event: benchEvent(streamId, commandId) };
  }
}
