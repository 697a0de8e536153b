import { randomUUID } from 'node:crypto';
import { CommandIdReusedError, WrongExpectedVersionError } from '../errors';
import { deriveEventId } from '../event-ids';
import { comparePositions, type EventData, type EventStore, type RecordedEvent } from '../types';

/**
 * The behaviour every EventStore adapter must have. Each adapter's integration
 * spec calls this with a factory for a fresh, empty-or-not store; tests only
 * look at streams they created, so a shared server is fine.
 */
export type ContractTarget = {
  store: EventStore;
  teardown: () => Promise<void>;
};

const event = (type = 'Thing', data: unknown = { n: 1 }, metadata: Record<string, unknown> = {}): EventData => ({
  id: randomUUID(),
  type,
  data,
  metadata,
});
const stream = (label: string) => `contract-${label}-${randomUUID()}`;
const collect = async (iterable: AsyncIterable<RecordedEvent>, count: number, filter: (e: RecordedEvent) => boolean) => {
  const seen: RecordedEvent[] = [];
  for await (const e of iterable) {
    if (filter(e)) seen.push(e);
    if (seen.length >= count) break;
  }
  return seen;
};

/**
 * Re-reads until `done` holds or the time is up, then returns the last value
 * for the caller to assert on. The gap-safe feed hides events while any older
 * transaction on the server is open (other test files' too), so a "becomes
 * visible" check must allow for that.
 */
export const eventually = async <T>(read: () => Promise<T>, done: (value: T) => boolean, timeoutMs = 10_000): Promise<T> => {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await read();
    if (done(value) || Date.now() > deadline) return value;
    await new Promise((r) => setTimeout(r, 25));
  }
};

/**
 * What an adapter guarantees about repeats. PostgreSQL (and EventStoreDB with
 * its PostgreSQL mirror) keep command results: a repeated commandId answers
 * the first result, flagged `duplicate`. EventStoreDB alone deduplicates by
 * event id (the ids of a command's events derive from its commandId, so a
 * retried command carries the same ids) but keeps no command results and
 * cannot tell a repeat from a first write.
 */
export type ContractCapabilities = { commandResults: boolean };

export const describeEventStoreContract = (name: string, setup: () => Promise<ContractTarget>, capabilities: ContractCapabilities = { commandResults: true }): void => {
  const withCommandResults = capabilities.commandResults ? it : it.skip;
  const why = capabilities.commandResults ? '' : ' (not run: this adapter alone keeps no command results; EventStoreDB + its PostgreSQL mirror does)';
  describe(`EventStore contract: ${name}`, () => {
    let target: ContractTarget;
    let store: EventStore;
    beforeAll(async () => {
      target = await setup();
      store = target.store;
    });
    afterAll(async () => target?.teardown());

    describe('append and read', () => {
      it('appends to a new stream from revision 0 and reads it back in order', async () => {
        const s = stream('new');
        const result = await store.appendToStream(s, [event('A'), event('B'), event('C')], { expectedRevision: 'no_stream' });
        expect(result.nextExpectedRevision).toBe(2n);
        expect(result.duplicate).toBe(false);
        expect(result.events.map((e) => e.revision)).toEqual([0n, 1n, 2n]);
        const read = await store.readStream(s);
        expect(read.map((e) => [e.type, e.revision])).toEqual([['A', 0n], ['B', 1n], ['C', 2n]]);
        expect(comparePositions(read[0]!.position, read[2]!.position)).toBeLessThan(0);
        expect(comparePositions(result.position, read[2]!.position)).toBe(0);
      });

      it('keeps data, metadata, type and schema version as given', async () => {
        const s = stream('payload');
        const data = { nested: { list: [1, 'two', null], unicode: 'héllo ✓' } };
        await store.appendToStream(s, [{ ...event('Typed', data, { actor: 'me' }), schemaVersion: 3 }]);
        const [read] = await store.readStream(s);
        expect(read).toMatchObject({ type: 'Typed', data, schemaVersion: 3, streamId: s, revision: 0n });
        expect(read!.metadata).toMatchObject({ actor: 'me' });
        expect(read!.created).toBeInstanceOf(Date);
      });

      it('reads backwards, from a revision, and at most maxCount', async () => {
        const s = stream('read');
        await store.appendToStream(s, [0, 1, 2, 3, 4].map((n) => event('N', { n })));
        expect((await store.readStream(s, { direction: 'backwards', maxCount: 2 })).map((e) => e.revision)).toEqual([4n, 3n]);
        expect((await store.readStream(s, { fromRevision: 2n, maxCount: 2 })).map((e) => e.revision)).toEqual([2n, 3n]);
        expect((await store.readStream(s, { direction: 'backwards', fromRevision: 1n })).map((e) => e.revision)).toEqual([1n, 0n]);
        expect((await store.readStream(s, { until: { revision: 2n } })).map((e) => e.revision)).toEqual([0n, 1n, 2n]);
      });

      it('reads an unknown stream as empty and reports no revision', async () => {
        const s = stream('none');
        expect(await store.readStream(s)).toEqual([]);
        expect(await store.streamRevision(s)).toBeNull();
      });
    });

    describe('expected revision', () => {
      it('appends at the exact revision and refuses a stale one with the actual revision', async () => {
        const s = stream('exact');
        await store.appendToStream(s, [event()], { expectedRevision: 'no_stream' });
        await store.appendToStream(s, [event()], { expectedRevision: 0n });
        const error = await store.appendToStream(s, [event()], { expectedRevision: 0n }).catch((e: unknown) => e);
        expect(error).toBeInstanceOf(WrongExpectedVersionError);
        expect((error as WrongExpectedVersionError).actualRevision).toBe(1n);
        expect(await store.streamRevision(s)).toBe(1n);
      });

      it('no_stream fails on an existing stream, exists fails on a missing one, any always appends', async () => {
        const s = stream('modes');
        const missing = await store.appendToStream(s, [event()], { expectedRevision: 'exists' }).catch((e: unknown) => e);
        expect(missing).toBeInstanceOf(WrongExpectedVersionError);
        expect((missing as WrongExpectedVersionError).actualRevision).toBeNull();
        await store.appendToStream(s, [event()], { expectedRevision: 'any' });
        await expect(store.appendToStream(s, [event()], { expectedRevision: 'no_stream' })).rejects.toBeInstanceOf(WrongExpectedVersionError);
        await store.appendToStream(s, [event()], { expectedRevision: 'exists' });
        await store.appendToStream(s, [event()]);
        expect(await store.streamRevision(s)).toBe(2n);
      });

      it('lets exactly one of 50 concurrent appends with the same expected revision win', async () => {
        const s = stream('race');
        await store.appendToStream(s, [event()]);
        const outcomes = await Promise.allSettled(
          Array.from({ length: 50 }, () => store.appendToStream(s, [event()], { expectedRevision: 0n })),
        );
        expect(outcomes.filter((o) => o.status === 'fulfilled')).toHaveLength(1);
        const rejected = outcomes.filter((o): o is PromiseRejectedResult => o.status === 'rejected');
        expect(rejected).toHaveLength(49);
        for (const r of rejected) expect(r.reason).toBeInstanceOf(WrongExpectedVersionError);
        expect((await store.readStream(s)).map((e) => e.revision)).toEqual([0n, 1n]);
      });

      it('keeps every stream gapless under concurrent appends with any', async () => {
        const streams = [stream('g1'), stream('g2'), stream('g3')];
        await Promise.all(Array.from({ length: 90 }, (_, i) => store.appendToStream(streams[i % 3]!, [event('N', { i })])));
        for (const s of streams) {
          expect((await store.readStream(s)).map((e) => e.revision)).toEqual(Array.from({ length: 30 }, (_, i) => BigInt(i)));
        }
      });
    });

    describe('idempotency', () => {
      withCommandResults(`returns the first result for a repeated commandId and appends nothing${why}`, async () => {
        const s = stream('idem');
        const commandId = randomUUID();
        const first = await store.appendToStream(s, [event()], { commandId, commandHash: 'h1' });
        const again = await store.appendToStream(s, [event()], { commandId, commandHash: 'h1' });
        expect(again.duplicate).toBe(true);
        expect({ ...again, duplicate: false }).toEqual(first);
        expect(await store.streamRevision(s)).toBe(0n);
        expect(await store.commandResult(commandId)).toEqual({ result: { ...first, duplicate: true }, commandHash: 'h1' });
      });

      withCommandResults(`appends once for 20 concurrent copies of one commandId${why}`, async () => {
        const s = stream('idem-race');
        const commandId = randomUUID();
        const results = await Promise.all(
          Array.from({ length: 20 }, () => store.appendToStream(s, [event()], { commandId, commandHash: 'h', expectedRevision: 'any' })),
        );
        expect(results.filter((r) => !r.duplicate)).toHaveLength(1);
        expect(new Set(results.map((r) => r.position.prepare))).toEqual(new Set([results[0]!.position.prepare]));
        expect(await store.readStream(s)).toHaveLength(1);
      });

      withCommandResults(`refuses a commandId reused for a different command${why}`, async () => {
        const s = stream('reuse');
        const commandId = randomUUID();
        await store.appendToStream(s, [event()], { commandId, commandHash: 'a' });
        await expect(store.appendToStream(s, [event()], { commandId, commandHash: 'b' })).rejects.toBeInstanceOf(CommandIdReusedError);
        expect(await store.streamRevision(s)).toBe(0n);
      });

      it('treats the same event ids appended again to the same stream as a duplicate', async () => {
        const s = stream('event-ids');
        const events = [event('A'), event('B')];
        const first = await store.appendToStream(s, events);
        const again = await store.appendToStream(s, events);
        if (capabilities.commandResults) expect(again.duplicate).toBe(true);
        expect(again.events.map((e) => e.id)).toEqual(first.events.map((e) => e.id));
        expect(again.nextExpectedRevision).toBe(first.nextExpectedRevision);
        expect(await store.readStream(s)).toHaveLength(2);
      });

      it('appends a retried command once when its event ids derive from the commandId', async () => {
        const s = stream('derived-ids');
        const commandId = randomUUID();
        const withDerivedIds = () => [event('A'), event('B')].map((e, i) => ({ ...e, id: deriveEventId(commandId, i) }));
        const first = await store.appendToStream(s, withDerivedIds(), { commandId, commandHash: 'h', expectedRevision: 'any' });
        const again = await store.appendToStream(s, withDerivedIds(), { commandId, commandHash: 'h', expectedRevision: 'any' });
        expect(again.nextExpectedRevision).toBe(first.nextExpectedRevision);
        expect((await store.readStream(s)).map((e) => e.id)).toEqual([deriveEventId(commandId, 0), deriveEventId(commandId, 1)]);
      });
    });

    describe('the global feed', () => {
      it('reads $all in position order, including the start position', async () => {
        const s = stream('all');
        const appended = await store.appendToStream(s, [event('A'), event('B'), event('C')]);
        const from = appended.events[0]!.position;
        const read = await eventually(
          async () => (await store.readAll({ fromPosition: from, maxCount: 1000 })).filter((e) => e.streamId === s),
          (events) => events.length === 3,
        );
        expect(read.map((e) => e.type)).toEqual(['A', 'B', 'C']);
        const all = await store.readAll({ fromPosition: from, maxCount: 1000 });
        for (let i = 1; i < all.length; i++) expect(comparePositions(all[i - 1]!.position, all[i]!.position)).toBeLessThan(0);
      });

      it('subscribes: catches up on history, then delivers live events, starting after fromPosition', async () => {
        const s = stream('sub');
        const history = await store.appendToStream(s, [event('H0'), event('H1')]);
        const subscription = store.subscribeToAll({ fromPosition: history.events[0]!.position });
        const received = collect(subscription, 3, (e) => e.streamId === s);
        await new Promise((r) => setTimeout(r, 50));
        await store.appendToStream(s, [event('L0'), event('L1')]);
        expect((await received).map((e) => e.type)).toEqual(['H1', 'L0', 'L1']);
        await subscription.unsubscribe();
      });

      it('hands out batches of up to catchUpBatchSize while behind, every event once and in order', async () => {
        const s = stream('catch-up');
        const marker = await store.appendToStream(s, [event('M')]);
        for (let chunk = 0; chunk < 13; chunk++) await store.appendToStream(s, Array.from({ length: 10 }, (_, i) => event('E', { i: chunk * 10 + i })));
        const subscription = store.subscribeToAll({ fromPosition: marker.events[0]!.position, batchSize: 10, catchUpBatchSize: 50 });
        // Behind by 130 events when the first batch is asked for.
        await new Promise((r) => setTimeout(r, 300));
        const sizes: number[] = [];
        const seen: number[] = [];
        for await (const batch of subscription.batches()) {
          sizes.push(batch.length);
          for (const e of batch) if (e.streamId === s) seen.push((e.data as { i: number }).i);
          if (seen.length >= 130) break;
        }
        await subscription.unsubscribe();
        expect(seen).toEqual(Array.from({ length: 130 }, (_, i) => i));
        expect(Math.max(...sizes)).toBeLessThanOrEqual(50);
        expect(Math.max(...sizes)).toBeGreaterThan(10);
      });

      it('subscribing from the end delivers only events appended afterwards', async () => {
        const s = stream('end');
        await store.appendToStream(s, [event('Old')]);
        const subscription = store.subscribeToAll({ fromPosition: 'end' });
        const received = collect(subscription, 1, (e) => e.streamId === s);
        await new Promise((r) => setTimeout(r, 100));
        await store.appendToStream(s, [event('New')]);
        expect((await received).map((e) => e.type)).toEqual(['New']);
        await subscription.unsubscribe();
      });
    });
  });
};
