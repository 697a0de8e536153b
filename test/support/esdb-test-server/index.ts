/**
 * A TEST DOUBLE of EventStoreDB's gRPC wire protocol, held in memory, single
 * node. It is NOT a database and not EventStoreDB: nothing is persisted, there
 * is no cluster, no TLS, no authentication, no scavenge, no projections. It
 * exists so code using the real `@eventstore/db-client` (6.2.x) can be tested
 * without an EventStoreDB server:
 *
 *   const server = await startEsdbTestServer();
 *   const client = EventStoreDBClient.connectionString(server.connectionString);
 *   // ... client.appendToStream / readStream / readAll / subscribeToAll ...
 *   await client.dispose();
 *   await server.close();
 *
 * Services are served with `@grpc/grpc-js` on the service definitions and
 * message classes the client ships in `@eventstore/db-client/generated/`, so
 * both sides encode with the same protobuf classes. Behaviour follows
 * EventStoreDB 23.x/24.x (its server sources were the reference); where this
 * double simplifies, it says so here.
 *
 * Implemented
 *  - ServerFeatures.GetSupportedMethods: version "24.10.0"; Streams Read
 *    (features "position", "events"), Append, Delete, Tombstone, and
 *    BatchAppend unless `batchAppend: false`. The client appends with
 *    BatchAppend when it is advertised, with Append otherwise; with
 *    `batchAppend: false` the BatchAppend method also answers UNIMPLEMENTED.
 *  - Streams.Append (options, then proposed messages) and Streams.BatchAppend
 *    (correlation ids, options, proposed messages, is_final; the options'
 *    deadline is honoured). Success carries the stream's revision and the log
 *    position of the last event (commit == prepare; positions start at 1000
 *    and grow by 100 per event).
 *  - Expected revision any / no_stream / stream_exists / exact, and event-id
 *    idempotency, as EventStoreDB's commit check decides them:
 *      · any / stream_exists: if every proposed id is already an event of
 *        this stream, nothing is written and the answer is the revision and
 *        position of the last of those events; if the first id is new, the
 *        events are written; if only some ids are known, wrong expected
 *        version. (EventStoreDB looks ids up in a bounded cache of recent
 *        events; here every event id is remembered.)
 *      · no_stream / revision r below the current revision: if the events at
 *        r+1, r+2, ... carry exactly the proposed ids, idempotent as above
 *        (the original revision and position); otherwise wrong expected
 *        version (no_stream on a soft-deleted stream recreates it instead).
 *      · r above the current revision: wrong expected version; equal: write.
 *      · stream_exists on a stream with no event: wrong expected version.
 *  - Delete (soft) and Tombstone (hard), both with an expected revision,
 *    checked like a write of one new event. A soft-deleted stream reads as
 *    `stream_not_found` and answers stream_exists with stream-deleted; an
 *    append with any, no_stream or its last revision recreates it, numbering
 *    continuing after the old last revision and the old events staying hidden
 *    from stream reads (EventStoreDB's `$tb`). A tombstoned stream answers
 *    every later read, subscription, append and delete with stream-deleted.
 *    Neither writes an event: EventStoreDB writes a `$metadata` event to
 *    `$$<stream>` (soft) or a `$streamDeleted` record (hard); here they only
 *    take a log position, which Delete/Tombstone return. Events of deleted
 *    streams stay in `$all`, as before a scavenge.
 *  - Streams.Read of a stream, forwards / backwards from start, end or a
 *    revision (inclusive), with a count; `stream_not_found` (a message, not an
 *    error) for a stream never written or soft-deleted. `resolve_links` is
 *    ignored (there are no link events). With control_option.compatibility
 *    >= 1 the read ends with `last_stream_position`.
 *  - Streams.Read of `$all`, forwards from start, end or a position
 *    (inclusive) / backwards from end, start or a position (events before it),
 *    with a count, with or without a filter (event type or stream name; prefix
 *    list or regex, matched unanchored with JavaScript RegExp rather than .NET
 *    Regex; `max` window and checkpointIntervalMultiplier are only used for
 *    subscription checkpoints). The client's `excludeSystemEvents()` is the
 *    event-type regex `^[^$].*`.
 *  - Subscriptions (count option `subscription`): to a stream or to `$all`,
 *    from start, end, or a revision / position EXCLUSIVE, `$all` ones with a
 *    filter. The server sends `confirmation`, then history, then `caught_up`,
 *    then live events as they are appended. Filtered `$all` subscriptions send
 *    a checkpoint every window × multiplier events considered (window: `max`,
 *    else 32), one after the history, and never the same position twice
 *    (EventStoreDB counts per page read; the interval is the same).
 *    `fell_behind` is never sent (EventStoreDB does not send it either).
 *  - UUIDs as string or structured, as the request's uuid_option asks.
 *  - Every event is returned with metadata `type`, `content-type`
 *    (application/json or application/octet-stream, from what was appended)
 *    and `created`: 100-ns ticks since the UNIX epoch as a decimal string —
 *    that is what EventStoreDB sends (`ToTicksSinceEpoch`) and what the client
 *    divides by 10 000 to build a Date; data and custom metadata bytes are
 *    returned exactly as appended.
 *  - Errors in EventStoreDB's shapes (see ./wire.ts): Append wrong expected
 *    version is an AppendResp `wrong_expected_version` message; BatchAppend
 *    errors are `google.rpc.Status` values with typed `Any` details
 *    (`event_store.client.WrongExpectedVersion` code ALREADY_EXISTS,
 *    `event_store.client.StreamDeleted` NOT_FOUND, `...Timeout`,
 *    `...BadRequest`); Read/Append/Delete/Tombstone errors are gRPC statuses
 *    with an `exception` trailer (`stream-deleted` + `stream-name`,
 *    `wrong-expected-version` + `stream-name`, `expected-version`,
 *    `actual-version` on Delete/Tombstone, `missing-required-metadata-property`).
 *  - Test controls: `log()`, `disconnectAll()`, `failNext()` (below).
 *
 * Not implemented: system events of any kind (no `$metadata`, `$streamDeleted`,
 * `$epoch-information`, `$stats`; a test may append `$`-prefixed types itself),
 * stream metadata / ACLs ($maxAge, $maxCount, $tb set by the client), link
 * events and resolve_links, persistent subscriptions, projections, users,
 * operations, gossip / cluster discovery and NotLeader, authentication and
 * access denied, maximum append size, filtered stream reads (invalid, as on
 * the server), backwards subscriptions (invalid), server-side flow control
 * (live events are written without waiting for the client), ending a live
 * stream subscription when its stream is deleted.
 *
 * `disconnectAll()`: the gRPC server listens on an internal port behind a TCP
 * proxy on `port`; disconnecting resets every proxied connection (TCP RST),
 * which the client sees as a dropped connection (UNAVAILABLE) on every open
 * call, and the server sees as cancelled calls. The data is kept.
 */
import { createServer, connect, type Server as NetServer, type Socket } from 'node:net';
import type { AddressInfo } from 'node:net';
import * as grpc from '@grpc/grpc-js';
import { ServerFeaturesService } from '@eventstore/db-client/generated/serverfeatures_grpc_pb';
import { StreamsService } from '@eventstore/db-client/generated/streams_grpc_pb';
import { createHandlers, FaultInjector } from './service';
import { EventLog } from './store';

export type EsdbTestServer = {
  port: number;
  /** 'esdb://127.0.0.1:<port>?tls=false' */
  connectionString: string;
  /** every event in log order, for assertions */
  log(): { streamId: string; revision: bigint; position: bigint; id: string; type: string; data: string }[];
  /** drop every open call and connection abruptly (a network blip / server crash), keep the data */
  disconnectAll(): void;
  /**
   * The next `n` calls of this method ('BatchAppend' | 'Append' | 'Read' | 'Delete' | 'Tombstone')
   * fail with this gRPC status code (e.g. grpc.status.UNAVAILABLE). 'Read' counts reads and
   * subscriptions alike. For 'BatchAppend' a "call" is one append (one correlation id) sent on the
   * client's long-lived BatchAppend stream: the whole stream is ended with the status, so every append
   * pending on it fails.
   */
  failNext(method: string, n: number, code: number): void;
  close(): Promise<void>;
};

export const ESDB_TEST_SERVER_VERSION = '24.10.0';

export async function startEsdbTestServer(options: { port?: number; batchAppend?: boolean } = {}): Promise<EsdbTestServer> {
  const log = new EventLog();
  const faults = new FaultInjector();
  const handlers = createHandlers(log, faults, { batchAppend: options.batchAppend ?? true, serverVersion: ESDB_TEST_SERVER_VERSION });

  const server = new grpc.Server();
  server.addService(StreamsService, handlers.streams);
  server.addService(ServerFeaturesService, handlers.serverFeatures);
  const internalPort = await new Promise<number>((resolve, reject) =>
    server.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (error, port) => (error ? reject(error) : resolve(port))),
  );

  const proxy = await startProxy(options.port ?? 0, internalPort);
  const port = (proxy.server.address() as AddressInfo).port;

  return {
    port,
    connectionString: `esdb://127.0.0.1:${port}?tls=false`,
    log: () =>
      log.events().map(({ streamId, revision, position, id, type, data }) => ({ streamId, revision, position, id, type, data: Buffer.from(data).toString('utf8') })),
    disconnectAll: () => proxy.dropAll(),
    failNext: (method, n, code) => faults.add(method, n, code),
    close: async () => {
      handlers.stopAll();
      proxy.dropAll();
      await new Promise<void>((resolve) => proxy.server.close(() => resolve()));
      server.forceShutdown();
    },
  };
}

/** A TCP proxy whose connections can all be reset at once. */
async function startProxy(port: number, targetPort: number): Promise<{ server: NetServer; dropAll(): void }> {
  const pairs = new Set<{ downstream: Socket; upstream: Socket }>();
  const server = createServer((downstream) => {
    const upstream = connect(targetPort, '127.0.0.1');
    const pair = { downstream, upstream };
    pairs.add(pair);
    downstream.setNoDelay(true);
    upstream.setNoDelay(true);
    const closeBoth = () => {
      pairs.delete(pair);
      downstream.destroy();
      upstream.destroy();
    };
    downstream.on('error', closeBoth).on('close', closeBoth);
    upstream.on('error', closeBoth).on('close', closeBoth);
    downstream.pipe(upstream);
    upstream.pipe(downstream);
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, '127.0.0.1', () => resolve());
  });
  return {
    server,
    dropAll() {
      for (const pair of [...pairs]) {
        pairs.delete(pair);
        if (!pair.downstream.destroyed) pair.downstream.resetAndDestroy();
        pair.upstream.destroy();
      }
    },
  };
}
