import { BatcherBacklogError, MicroBatcher, type MicroBatchOptions } from './micro-batcher';

/** A writer whose batches finish when the test says so; it records each batch it was given. */
const controlledWriter = () => {
  const batches: number[][] = [];
  const finish: (() => void)[] = [];
  const write = (batch: number[]) =>
    new Promise<string[]>((resolve) => {
      batches.push(batch);
      finish.push(() => resolve(batch.map((n) => `done ${n}`)));
    });
  return { batches, finish, write };
};

/** Lets setImmediate callbacks and the promise chains behind them run. */
const turn = () => new Promise<void>((resolve) => setImmediate(resolve));

const batcher = (write: (b: number[]) => Promise<string[]>, options: Partial<MicroBatchOptions> = {}) =>
  new MicroBatcher<number, string>(write, { maxConcurrentBatches: 2, maxBatchSize: 256, ...options });

describe('MicroBatcher', () => {
  it('sends the requests of one turn of the event loop as one batch, even with a connection free at the first', async () => {
    const w = controlledWriter();
    const b = batcher(w.write);
    const answers = Array.from({ length: 5 }, (_, i) => b.submit(i));
    await turn();
    expect(w.batches).toEqual([[0, 1, 2, 3, 4]]);
    w.finish[0]!();
    expect(await Promise.all(answers)).toEqual(['done 0', 'done 1', 'done 2', 'done 3', 'done 4']);
  });

  it('keeps the callers a batch answered together when they send again, instead of letting the first leave alone', async () => {
    const w = controlledWriter();
    const b = batcher(w.write, { maxConcurrentBatches: 2 });
    // Ten callers in a closed loop: each sends again as soon as it is answered.
    const loop = async (caller: number, rounds: number) => {
      for (let r = 0; r < rounds; r++) await b.submit(caller * 100 + r);
    };
    const loops = Array.from({ length: 10 }, (_, i) => loop(i, 3));
    for (let round = 0; round < 3; round++) {
      await turn();
      expect(w.batches).toHaveLength(round + 1);
      w.finish[round]!();
      await turn();
    }
    await Promise.all(loops);
    // Every batch held all ten callers: none went out alone while a connection was free.
    expect(w.batches.map((batch) => batch.length)).toEqual([10, 10, 10]);
  });

  it('never has more batches in flight than connections, nor more requests in a batch than maxBatchSize', async () => {
    const w = controlledWriter();
    const b = batcher(w.write, { maxConcurrentBatches: 2, maxBatchSize: 3, minSplitSize: 1000 });
    const answers = Array.from({ length: 10 }, (_, i) => b.submit(i));
    await turn();
    expect(w.batches).toEqual([
      [0, 1, 2],
      [3, 4, 5],
    ]);
    w.finish[0]!();
    await turn();
    await turn();
    expect(w.batches).toHaveLength(3);
    expect(w.batches[2]).toEqual([6, 7, 8]);
    w.finish[1]!();
    w.finish[2]!();
    await turn();
    await turn();
    w.finish[3]!();
    expect(await Promise.all(answers)).toHaveLength(10);
    expect(w.batches.flat()).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
  });

  it('splits a long queue evenly over the free connections, in parts of at least minSplitSize, and sends a short one whole', async () => {
    for (const [queued, expected] of [
      [64, [32, 32]],
      [63, [63]],
      [16, [16]],
      [100, [50, 50]],
    ] as const) {
      const w = controlledWriter();
      const b = batcher(w.write, { maxConcurrentBatches: 2, minSplitSize: 32 });
      const answers = Array.from({ length: queued }, (_, i) => b.submit(i));
      await turn();
      expect(w.batches.map((batch) => batch.length)).toEqual(expected);
      w.finish.forEach((f) => f());
      await Promise.all(answers);
    }
  });

  it('writes each request of a batch that failed as a whole alone, so only the culprit gets the error', async () => {
    const seen: number[][] = [];
    const b = batcher(async (batch) => {
      seen.push(batch);
      if (batch.includes(2)) throw new Error(`bad ${batch.join(',')}`);
      return batch.map((n) => `ok ${n}`);
    });
    const outcomes = await Promise.allSettled([1, 2, 3].map((n) => b.submit(n)));
    expect(outcomes.map((o) => o.status)).toEqual(['fulfilled', 'rejected', 'fulfilled']);
    expect((outcomes[1] as PromiseRejectedResult).reason.message).toBe('bad 2');
    expect(seen).toEqual([[1, 2, 3], [1], [2], [3]]);
  });

  it('with isolateFailures false, gives a failed batch’s error to each of its requests and sends nothing again', async () => {
    const seen: number[][] = [];
    const b = batcher(
      async (batch) => {
        seen.push(batch);
        throw new Error(`down ${batch.join(',')}`);
      },
      { isolateFailures: false },
    );
    const outcomes = await Promise.allSettled([1, 2, 3].map((n) => b.submit(n)));
    expect(outcomes.map((o) => (o.status === 'rejected' ? (o.reason as Error).message : 'fulfilled'))).toEqual(['down 1,2,3', 'down 1,2,3', 'down 1,2,3']);
    expect(seen).toEqual([[1, 2, 3]]);
  });

  it('refuses a request at once when maxQueued wait already, and abandon() fails the waiting ones while the one in flight ends', async () => {
    const w = controlledWriter();
    const b = batcher(w.write, { maxConcurrentBatches: 1, maxBatchSize: 2, maxQueued: 3 });
    const first = b.submit(0);
    await turn();
    expect(w.batches).toEqual([[0]]);
    const waiting = [1, 2, 3].map((n) => b.submit(n));
    await expect(b.submit(4)).rejects.toThrow(BatcherBacklogError);
    b.abandon(new Error('closed'));
    await expect(Promise.allSettled(waiting)).resolves.toEqual(Array(3).fill({ status: 'rejected', reason: new Error('closed') }));
    await expect(b.submit(5)).rejects.toThrow('batcher is closed');
    w.finish[0]!();
    await expect(first).resolves.toBe('done 0');
    expect(w.batches).toEqual([[0]]);
  });

  it('drains: waits for every accepted request, then refuses new ones', async () => {
    const w = controlledWriter();
    const b = batcher(w.write);
    const answer = b.submit(7);
    let drained = false;
    const draining = b.drain().then(() => (drained = true));
    await turn();
    expect(drained).toBe(false);
    w.finish[0]!();
    await draining;
    expect(await answer).toBe('done 7');
    await expect(b.submit(8)).rejects.toThrow('batcher is closed');
  });
});
