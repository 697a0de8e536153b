import { randomUUID } from 'node:crypto';
import * as grpc from '@grpc/grpc-js';
import {
  BACKWARDS,
  END,
  EventStoreDBClient,
  START,
  StreamDeletedError,
  StreamNotFoundError,
  UnavailableError,
  WrongExpectedVersionError,
  binaryEvent,
  excludeSystemEvents,
  jsonEvent,
  type Position,
  type ReadableSubscription,
  type ResolvedEvent,
} from '@eventstore/db-client';
import { StreamsClient } from '@eventstore/db-client/generated/streams_grpc_pb';
import * as shared from '@eventstore/db-client/generated/shared_pb';
import * as pb from '@eventstore/db-client/generated/streams_pb';
import { startEsdbTestServer, type EsdbTestServer } from '../support/esdb-test-server';

/**
 * The EventStoreDB test double, driven through the real `@eventstore/db-client`
 * (6.2.x): appends (BatchAppend and plain Append), reads, subscriptions, error
 * shapes, idempotency, deletes and injected faults.
 */

const collect = async <T>(iterable: AsyncIterable<T>): Promise<T[]> => {
  const out: T[] = [];
  for await (const item of iterable) out.push(item);
  return out;
};

const until = async (condition: () => boolean, what: string, timeoutMs = 2000): Promise<void> => {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
};

const rejection = async (promise: Promise<unknown>): Promise<unknown> => {
  try {
    await promise;
  } catch (error) {
    return error;
  }
  throw new Error('expected a rejection');
};

/** What a subscription delivered, in order: event types, and markers for caught-up and checkpoints. */
type Recording = { seen: string[]; errors: Error[]; confirmed: boolean };
const record = (subscription: ReadableSubscription<ResolvedEvent>): Recording => {
  const recording: Recording = { seen: [], errors: [], confirmed: false };
  subscription.on('confirmation', () => (recording.confirmed = true));
  subscription.on('caughtUp', () => recording.seen.push('<caught-up>'));
  subscription.on('data', (resolved: ResolvedEvent) => recording.seen.push(resolved.event!.type));
  subscription.on('error', (error: Error) => recording.errors.push(error));
  return recording;
};

const event = (type: string, data: Record<string, unknown> = {}) => jsonEvent({ type, data });

describe.each([
  { batchAppend: true, path: 'BatchAppend' as const },
  { batchAppend: false, path: 'Append' as const },
])('EventStoreDB test server, appends through $path', ({ batchAppend, path }) => {
  let server: EsdbTestServer;
  let client: EventStoreDBClient;

  beforeAll(async () => {
    server = await startEsdbTestServer({ batchAppend });
    client = EventStoreDBClient.connectionString(server.connectionString);
  });
  afterAll(async () => {
    await client.dispose();
    await server.close();
  });

  it(`appends through ${path} and reads the stream forwards and backwards, bytes exactly`, async () => {
    const stream = `order-${randomUUID()}`;
    const rawMetadata = new Uint8Array([0, 1, 2, 254, 255]);
    const binaryData = new Uint8Array([9, 8, 7, 0, 255]);
    const first = await client.appendToStream(stream, [event('Placed', { n: 1 }), event('Paid', { n: 2 })], { expectedRevision: 'no_stream' });
    const second = await client.appendToStream(
      stream,
      [jsonEvent({ type: 'Noted', data: { text: 'ü' }, metadata: { by: 'test' } }), binaryEvent({ type: 'Blob', data: binaryData, metadata: rawMetadata })],
      { expectedRevision: 1n },
    );
    expect(first).toMatchObject({ success: true, nextExpectedRevision: 1n });
    expect(second.nextExpectedRevision).toBe(3n);
    expect(second.position!.commit).toBe(second.position!.prepare);
    expect(second.position!.commit).toBeGreaterThan(first.position!.commit);

    const forwards = (await collect(client.readStream(stream))).map((resolved) => resolved.event!);
    expect(forwards.map((e) => [e.type, e.revision])).toEqual([
      ['Placed', 0n],
      ['Paid', 1n],
      ['Noted', 2n],
      ['Blob', 3n],
    ]);
    expect(forwards[0]).toMatchObject({ streamId: stream, isJson: true, data: { n: 1 } });
    expect(forwards[2]).toMatchObject({ data: { text: 'ü' }, metadata: { by: 'test' } });
    expect(forwards[3].isJson).toBe(false);
    expect(Buffer.from(forwards[3].data as Uint8Array)).toEqual(Buffer.from(binaryData));
    expect(Buffer.from(forwards[3].metadata as Uint8Array)).toEqual(Buffer.from(rawMetadata));
    expect(Math.abs(forwards[0].created.getTime() - Date.now())).toBeLessThan(60_000);
    expect(forwards[3].position).toEqual(second.position);
    expect(server.log().filter((e) => e.streamId === stream).map((e) => e.id)).toEqual(forwards.map((e) => e.id));

    const backwards = await collect(client.readStream(stream, { direction: BACKWARDS, fromRevision: END, maxCount: 3 }));
    expect(backwards.map((resolved) => resolved.event!.revision)).toEqual([3n, 2n, 1n]);
    const fromRevision = await collect(client.readStream(stream, { fromRevision: 2n, maxCount: 1 }));
    expect(fromRevision.map((resolved) => resolved.event!.type)).toEqual(['Noted']);
    const backFromTwo = await collect(client.readStream(stream, { direction: BACKWARDS, fromRevision: 2n }));
    expect(backFromTwo.map((resolved) => resolved.event!.revision)).toEqual([2n, 1n, 0n]);
  });

  it('rejects wrong expected revisions with WrongExpectedVersionError carrying expected and actual', async () => {
    const stream = `wev-${randomUUID()}`;
    const missing = await rejection(client.appendToStream(stream, event('A'), { expectedRevision: 'stream_exists' }));
    expect(missing).toBeInstanceOf(WrongExpectedVersionError);
    expect(missing).toMatchObject({ streamName: stream, expectedVersion: 'stream_exists', actualVersion: 'no_stream' });

    await client.appendToStream(stream, [event('A'), event('B')], { expectedRevision: 'no_stream' });
    const exists = await rejection(client.appendToStream(stream, event('C'), { expectedRevision: 'no_stream' }));
    expect(exists).toMatchObject({ expectedVersion: 'no_stream', actualVersion: 1n });
    const stale = await rejection(client.appendToStream(stream, event('C'), { expectedRevision: 0n }));
    expect(stale).toBeInstanceOf(WrongExpectedVersionError);
    expect(stale).toMatchObject({ streamName: stream, expectedVersion: 0n, actualVersion: 1n });
    const ahead = await rejection(client.appendToStream(stream, event('C'), { expectedRevision: 5n }));
    expect(ahead).toMatchObject({ expectedVersion: 5n, actualVersion: 1n });
    expect(server.log().filter((e) => e.streamId === stream)).toHaveLength(2);
  });

  it('treats a retry with the same event ids as already written (exact revision and any)', async () => {
    const stream = `idem-${randomUUID()}`;
    const batch = [event('A'), event('B')];
    const original = await client.appendToStream(stream, batch, { expectedRevision: 'no_stream' });
    const more = await client.appendToStream(stream, event('C'), { expectedRevision: 1n });

    const retried = await client.appendToStream(stream, batch, { expectedRevision: 'no_stream' });
    expect(retried).toEqual(original);
    const retriedAny = await client.appendToStream(stream, batch, { expectedRevision: 'any' });
    expect(retriedAny).toEqual(original);
    const retriedLastAny = await client.appendToStream(stream, [batch[1]], { expectedRevision: 'any' });
    expect(retriedLastAny).toEqual(original);
    expect(await client.appendToStream(stream, [batch[1]], { expectedRevision: 0n })).toEqual(original);
    expect(server.log().filter((e) => e.streamId === stream).map((e) => e.type)).toEqual(['A', 'B', 'C']);

    // Same first id, different rest: not idempotent.
    const mixed = await rejection(client.appendToStream(stream, [batch[0], event('D')], { expectedRevision: 'no_stream' }));
    expect(mixed).toMatchObject({ expectedVersion: 'no_stream', actualVersion: more.nextExpectedRevision });
    const mixedAny = await rejection(client.appendToStream(stream, [batch[0], event('D')], { expectedRevision: 'any' }));
    expect(mixedAny).toBeInstanceOf(WrongExpectedVersionError);
  });

  it('soft delete: reads answer StreamNotFoundError, a later append recreates the stream continuing the revisions', async () => {
    const stream = `soft-${randomUUID()}`;
    await client.appendToStream(stream, [event('A'), event('B')]);
    const wrong = await rejection(client.deleteStream(stream, { expectedRevision: 0n }));
    expect(wrong).toBeInstanceOf(WrongExpectedVersionError);
    expect(wrong).toMatchObject({ streamName: stream, expectedVersion: 0n, actualVersion: 1n });
    const deleted = await client.deleteStream(stream, { expectedRevision: 1n });
    expect(deleted.position!.commit).toBeGreaterThan(server.log().at(-1)!.position);

    const notFound = await rejection(collect(client.readStream(stream)));
    expect(notFound).toBeInstanceOf(StreamNotFoundError);
    expect(notFound).toMatchObject({ streamName: stream });
    expect(await rejection(client.appendToStream(stream, event('X'), { expectedRevision: 'stream_exists' }))).toBeInstanceOf(StreamDeletedError);

    const recreated = await client.appendToStream(stream, [event('C')], { expectedRevision: 'no_stream' });
    expect(recreated.nextExpectedRevision).toBe(2n);
    const events = await collect(client.readStream(stream));
    expect(events.map((resolved) => [resolved.event!.type, resolved.event!.revision])).toEqual([['C', 2n]]);
    // Only the first write after the delete may say no_stream.
    expect(await rejection(client.appendToStream(stream, event('D'), { expectedRevision: 'no_stream' }))).toMatchObject({ actualVersion: 2n });
  });

  it('tombstone: every later append, read and delete answers StreamDeletedError', async () => {
    const stream = `hard-${randomUUID()}`;
    await client.appendToStream(stream, event('A'));
    await client.tombstoneStream(stream, { expectedRevision: 0n });
    const appendError = await rejection(client.appendToStream(stream, event('B'), { expectedRevision: 'any' }));
    expect(appendError).toBeInstanceOf(StreamDeletedError);
    expect(appendError).toMatchObject({ streamName: stream });
    expect(await rejection(collect(client.readStream(stream)))).toBeInstanceOf(StreamDeletedError);
    expect(await rejection(client.tombstoneStream(stream))).toBeInstanceOf(StreamDeletedError);
    expect(await rejection(client.deleteStream(stream))).toBeInstanceOf(StreamDeletedError);
  });

  it(`failNext('${path}', 1, UNAVAILABLE): that append fails with UnavailableError, the next one reconnects and succeeds`, async () => {
    const stream = `fault-${randomUUID()}`;
    // A fault on the other append method is never reached: this client appends through ${path} only.
    server.failNext(path === 'BatchAppend' ? 'Append' : 'BatchAppend', 1, grpc.status.UNAVAILABLE);
    await client.appendToStream(stream, event('A'), { expectedRevision: 'no_stream' });

    server.failNext(path, 1, grpc.status.UNAVAILABLE);
    const error = await rejection(client.appendToStream(stream, event('B'), { expectedRevision: 0n }));
    expect(error).toBeInstanceOf(UnavailableError);
    expect(server.log().filter((e) => e.streamId === stream).map((e) => e.type)).toEqual(['A']);

    const result = await client.appendToStream(stream, event('B'), { expectedRevision: 0n });
    expect(result.nextExpectedRevision).toBe(1n);
  });
});

describe('EventStoreDB test server: $all reads and subscriptions', () => {
  let server: EsdbTestServer;
  let client: EventStoreDBClient;

  beforeEach(async () => {
    server = await startEsdbTestServer();
    client = EventStoreDBClient.connectionString(server.connectionString);
  });
  afterEach(async () => {
    await client.dispose();
    await server.close();
  });

  it('reads $all forwards, backwards and from a position (inclusive forwards, before it backwards)', async () => {
    await client.appendToStream('a-1', [event('One'), event('Two')]);
    const third = await client.appendToStream('b-1', event('Three'));
    await client.appendToStream('a-1', event('Four'));

    const forwards = await collect(client.readAll());
    expect(forwards.map((resolved) => resolved.event!.type)).toEqual(['One', 'Two', 'Three', 'Four']);
    expect(forwards.map((resolved) => resolved.event!.position!.commit)).toEqual(server.log().map((e) => e.position));
    const backwards = await collect(client.readAll({ direction: BACKWARDS, fromPosition: END, maxCount: 2 }));
    expect(backwards.map((resolved) => resolved.event!.type)).toEqual(['Four', 'Three']);
    const fromThird = await collect(client.readAll({ fromPosition: third.position! }));
    expect(fromThird.map((resolved) => resolved.event!.type)).toEqual(['Three', 'Four']);
    const beforeThird = await collect(client.readAll({ direction: BACKWARDS, fromPosition: third.position! }));
    expect(beforeThird.map((resolved) => resolved.event!.type)).toEqual(['Two', 'One']);
  });

  it('reads $all with a filter (the high-level client has none for readAll: the generated StreamsClient sends it)', async () => {
    await client.appendToStream('a-1', [event('One'), event('$system-like'), event('Two')]);
    await client.appendToStream('b-1', event('Three'));
    const raw = new StreamsClient(`127.0.0.1:${server.port}`, grpc.credentials.createInsecure());
    const readFiltered = (configure: (filter: pb.ReadReq.Options.FilterOptions) => void, backwards = false) => {
      const options = new pb.ReadReq.Options();
      const all = new pb.ReadReq.Options.AllOptions();
      all.setStart(new shared.Empty());
      options.setAll(all);
      options.setCount('10');
      options.setReadDirection(backwards ? pb.ReadReq.Options.ReadDirection.BACKWARDS : pb.ReadReq.Options.ReadDirection.FORWARDS);
      if (backwards) all.setEnd(new shared.Empty());
      const uuidOption = new pb.ReadReq.Options.UUIDOption();
      uuidOption.setStructured(new shared.Empty());
      options.setUuidOption(uuidOption);
      const filter = new pb.ReadReq.Options.FilterOptions();
      configure(filter);
      filter.setCount(new shared.Empty());
      filter.setCheckpointintervalmultiplier(1);
      options.setFilter(filter);
      const request = new pb.ReadReq();
      request.setOptions(options);
      return collect<pb.ReadResp>(raw.read(request)).then((responses) =>
        responses.map((response) => response.getEvent()!.getEvent()!.getMetadataMap().get('type')),
      );
    };
    try {
      const regex = new pb.ReadReq.Options.FilterOptions.Expression();
      regex.setRegex('^[^$].*');
      expect(await readFiltered((filter) => filter.setEventType(regex))).toEqual(['One', 'Two', 'Three']);
      const prefix = new pb.ReadReq.Options.FilterOptions.Expression();
      prefix.setPrefixList(['b-']);
      expect(await readFiltered((filter) => filter.setStreamIdentifier(prefix))).toEqual(['Three']);
      expect(await readFiltered((filter) => filter.setEventType(regex), true)).toEqual(['Three', 'Two', 'One']);
    } finally {
      raw.close();
    }
  });

  it('subscribeToAll from START with excludeSystemEvents: confirmation, history, caught-up, then live, with checkpoints', async () => {
    await client.appendToStream('a-1', [event('One'), event('$system-like'), event('Two')]);
    const checkpoints: Position[] = [];
    const subscription = client.subscribeToAll({
      fromPosition: START,
      filter: excludeSystemEvents({ maxSearchWindow: 2, checkpointInterval: 1, checkpointReached: (_sub, position) => void checkpoints.push(position) }),
    });
    const recording = record(subscription);
    try {
      await until(() => recording.seen.includes('<caught-up>'), 'caught-up');
      expect(recording.confirmed).toBe(true);
      expect(recording.seen).toEqual(['One', 'Two', '<caught-up>']);
      const log = server.log();
      // every 2 events considered (the 2nd), and once at the end of the history (the 3rd)
      expect(checkpoints.map((position) => position.commit)).toEqual([log[1].position, log[2].position]);

      await client.appendToStream('b-1', [event('$another'), event('Three')]);
      await until(() => recording.seen.includes('Three'), 'the live event');
      expect(recording.seen).toEqual(['One', 'Two', '<caught-up>', 'Three']);
      await until(() => checkpoints.length === 3, 'a live checkpoint');
      expect(checkpoints[2].commit).toBe(server.log()[3].position); // $another: the 2nd event considered live
      expect(recording.errors).toEqual([]);
    } finally {
      await subscription.unsubscribe();
    }
  });

  it('subscribeToAll from a position starts AFTER it; from END only sees new events', async () => {
    await client.appendToStream('a-1', event('One'));
    const two = await client.appendToStream('a-1', event('Two'));
    await client.appendToStream('a-1', event('Three'));
    const fromTwo = client.subscribeToAll({ fromPosition: two.position!, filter: excludeSystemEvents() });
    const fromEnd = client.subscribeToAll({ fromPosition: END });
    const afterTwo = record(fromTwo);
    const afterEnd = record(fromEnd);
    try {
      await until(() => afterTwo.seen.includes('<caught-up>') && afterEnd.seen.includes('<caught-up>'), 'caught-up');
      await client.appendToStream('b-1', event('Four'));
      await until(() => afterTwo.seen.includes('Four') && afterEnd.seen.includes('Four'), 'the live event');
      expect(afterTwo.seen).toEqual(['Three', '<caught-up>', 'Four']);
      expect(afterEnd.seen).toEqual(['<caught-up>', 'Four']);
    } finally {
      await fromTwo.unsubscribe();
      await fromEnd.unsubscribe();
    }
  });

  it('subscribeToStream from START and from a revision: history, caught-up, then live events of that stream only', async () => {
    await client.appendToStream('s-1', [event('A'), event('B'), event('C')]);
    const fromStart = client.subscribeToStream('s-1');
    const fromRevision = client.subscribeToStream('s-1', { fromRevision: 1n });
    const all = record(fromStart);
    const afterOne = record(fromRevision);
    try {
      await until(() => all.seen.includes('<caught-up>') && afterOne.seen.includes('<caught-up>'), 'caught-up');
      await client.appendToStream('other', event('Elsewhere'));
      await client.appendToStream('s-1', event('D'), { expectedRevision: 2n });
      await until(() => all.seen.includes('D') && afterOne.seen.includes('D'), 'the live event');
      expect(all.seen).toEqual(['A', 'B', 'C', '<caught-up>', 'D']);
      expect(afterOne.seen).toEqual(['C', '<caught-up>', 'D']);
    } finally {
      await fromStart.unsubscribe();
      await fromRevision.unsubscribe();
    }
  });

  it('disconnectAll(): open subscriptions end with UnavailableError, the data stays, the client reconnects', async () => {
    await client.appendToStream('d-1', [event('A'), event('B')]);
    const subscription = client.subscribeToAll({ fromPosition: START });
    const recording = record(subscription);
    await until(() => recording.seen.includes('<caught-up>'), 'caught-up');

    server.disconnectAll();
    await until(() => recording.errors.length > 0, 'the subscription error');
    expect(recording.errors[0]).toBeInstanceOf(UnavailableError);

    const appended = await client.appendToStream('d-1', event('C'), { expectedRevision: 1n });
    expect(appended.nextExpectedRevision).toBe(2n);
    const events = await collect(client.readStream('d-1'));
    expect(events.map((resolved) => resolved.event!.type)).toEqual(['A', 'B', 'C']);
    expect(server.log()).toHaveLength(3);
  });
});
