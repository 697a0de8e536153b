/**
 * The gRPC handlers of the EventStoreDB test double (see ./index.ts):
 * Streams.{Read, Append, BatchAppend, Delete, Tombstone} and
 * ServerFeatures.GetSupportedMethods, over the in-memory EventLog.
 */
import { randomUUID } from 'node:crypto';
import * as grpc from '@grpc/grpc-js';
import * as features from '@eventstore/db-client/generated/serverfeatures_pb';
import type * as shared from '@eventstore/db-client/generated/shared_pb';
import * as pb from '@eventstore/db-client/generated/streams_pb';
import type { IStreamsServer } from '@eventstore/db-client/generated/streams_grpc_pb';
import type { IServerFeaturesServer } from '@eventstore/db-client/generated/serverfeatures_grpc_pb';
import type { EventLog, Expected, ProposedEvent, StoredEvent } from './store';
import * as wire from './wire';

export const FAULT_METHODS = ['BatchAppend', 'Append', 'Read', 'Delete', 'Tombstone'] as const;
export type FaultMethod = (typeof FAULT_METHODS)[number];

/** `failNext`: per method, the status codes the next calls fail with. */
export class FaultInjector {
  private readonly pending = new Map<FaultMethod, grpc.status[]>();

  add(method: string, n: number, code: number): void {
    if (!(FAULT_METHODS as readonly string[]).includes(method)) {
      throw new Error(`failNext: unknown method '${method}' (one of ${FAULT_METHODS.join(', ')})`);
    }
    const queue = this.pending.get(method as FaultMethod) ?? [];
    for (let i = 0; i < n; i += 1) queue.push(code);
    this.pending.set(method as FaultMethod, queue);
  }

  take(method: FaultMethod): wire.RpcError | null {
    const code = this.pending.get(method)?.shift();
    if (code === undefined) return null;
    return wire.rpcError(code, `esdb-test-server: injected ${grpc.status[code] ?? code} for ${method} (failNext)`);
  }
}

/** Default read batch size of EventStoreDB's enumerators, the filter window when the client sends none. */
const DEFAULT_SEARCH_WINDOW = 32;

type Filter = { matches: (event: StoredEvent) => boolean; checkpointInterval: number };

const parseFilter = (options: pb.ReadReq.Options.FilterOptions): Filter => {
  const onType = options.hasEventType();
  const expression = onType ? options.getEventType() : options.getStreamIdentifier();
  if (!expression) throw wire.invalidArgument('filter: event_type or stream_identifier is required');
  const field = (event: StoredEvent) => (onType ? event.type : event.streamId);
  let test: (value: string) => boolean;
  if (expression.getRegex()) {
    let regex: RegExp;
    try {
      regex = new RegExp(expression.getRegex());
    } catch {
      throw wire.invalidArgument(`filter: invalid regex '${expression.getRegex()}'`);
    }
    test = (value) => regex.test(value);
  } else {
    const prefixes = expression.getPrefixList();
    test = (value) => prefixes.some((prefix) => value.startsWith(prefix));
  }
  const window = options.hasMax() ? options.getMax() : DEFAULT_SEARCH_WINDOW;
  return { matches: (event) => test(field(event)), checkpointInterval: window * options.getCheckpointintervalmultiplier() };
};

/** $all positions compare as (commit, prepare); stored events have commit == prepare. */
type AllPosition = { commit: bigint; prepare: bigint };
const compareToPosition = (event: StoredEvent, position: AllPosition): number => {
  if (event.position !== position.commit) return event.position < position.commit ? -1 : 1;
  return event.position === position.prepare ? 0 : event.position < position.prepare ? -1 : 1;
};
const allPosition = (position: pb.ReadReq.Options.Position): AllPosition => ({
  commit: BigInt(position.getCommitPosition()),
  prepare: BigInt(position.getPreparePosition()),
});

export type ServiceOptions = { batchAppend: boolean; serverVersion: string };

export const createHandlers = (log: EventLog, faults: FaultInjector, options: ServiceOptions) => {
  /** Open calls whose work the server may still have to stop (subscriptions, batch-append streams). */
  const cleanups = new Set<() => void>();
  const track = (call: NodeJS.EventEmitter, cleanup: () => void) => {
    let done = false;
    const once = () => {
      if (done) return;
      done = true;
      cleanups.delete(once);
      cleanup();
    };
    cleanups.add(once);
    call.on('cancelled', once);
    call.on('close', once);
    call.on('error', once);
    return once;
  };

  const read: grpc.handleServerStreamingCall<pb.ReadReq, pb.ReadResp> = (call) => {
    const fault = faults.take('Read');
    if (fault) {
      call.emit('error', fault);
      return;
    }
    try {
      const request = call.request.getOptions();
      if (!request) throw wire.invalidArgument('options are required');
      if (!request.hasUuidOption()) throw wire.invalidArgument('uuid_option is required');
      const structuredIds = request.getUuidOption()!.hasStructured();
      const subscription = request.hasSubscription();
      const backwards = request.getReadDirection() === pb.ReadReq.Options.ReadDirection.BACKWARDS;
      const filter = request.hasFilter() ? parseFilter(request.getFilter()!) : null;
      if (!request.hasStream() && !request.hasAll()) throw wire.invalidArgument('stream or all is required');
      if (!subscription && !request.hasCount()) throw wire.invalidArgument('count or subscription is required');
      if ((request.hasStream() && filter) || (subscription && backwards)) {
        throw wire.invalidArgument(
          `The combination of (${request.hasStream() ? 'Stream' : 'All'}, ${subscription ? 'Subscription' : 'Count'}, ${backwards ? 'Backwards' : 'Forwards'}, ${filter ? 'Filter' : 'NoFilter'}) is invalid.`,
        );
      }
      if (subscription && filter && filter.checkpointInterval <= 0) {
        throw wire.invalidArgument('checkpointIntervalMultiplier must be greater than 0');
      }
      const compatibility = request.getControlOption()?.getCompatibility() ?? 0;
      if (request.hasStream()) {
        const name = wire.streamName(request.getStream()!.getStreamIdentifier());
        if (subscription) subscribeToStream(call, name, request.getStream()!, structuredIds);
        else readStream(call, name, request.getStream()!, BigInt(request.getCount()), backwards, structuredIds, compatibility);
      } else if (subscription) subscribeToAll(call, request.getAll()!, filter, structuredIds);
      else readAll(call, request.getAll()!, BigInt(request.getCount()), backwards, filter, structuredIds);
    } catch (error) {
      call.emit('error', asRpcError(error));
    }
  };

  const readStream = (
    call: grpc.ServerWritableStream<pb.ReadReq, pb.ReadResp>,
    name: string,
    from: pb.ReadReq.Options.StreamOptions,
    count: bigint,
    backwards: boolean,
    structuredIds: boolean,
    compatibility: number,
  ) => {
    const stream = log.readStream(name);
    if (stream.kind === 'deleted') return void call.emit('error', wire.streamDeletedError(name));
    if (stream.kind === 'not_found') {
      call.write(wire.streamNotFound(name));
      return void call.end();
    }
    // A read INCLUDES its start revision; END forwards reads nothing, START backwards reads revision 0 only.
    let selected: StoredEvent[];
    if (!backwards) {
      const start = from.hasRevision() ? BigInt(from.getRevision()) : from.hasEnd() ? stream.lastRevision + 1n : 0n;
      selected = stream.events.filter((event) => event.revision >= start);
    } else {
      const start = from.hasRevision() ? BigInt(from.getRevision()) : from.hasStart() ? 0n : stream.lastRevision;
      selected = stream.events.filter((event) => event.revision <= start).reverse();
    }
    for (const event of selected.slice(0, Number(count < BigInt(selected.length) ? count : BigInt(selected.length)))) {
      call.write(wire.readEvent(event, structuredIds));
    }
    if (compatibility >= 1) call.write(wire.lastStreamPosition(stream.lastRevision));
    call.end();
  };

  const readAll = (
    call: grpc.ServerWritableStream<pb.ReadReq, pb.ReadResp>,
    from: pb.ReadReq.Options.AllOptions,
    count: bigint,
    backwards: boolean,
    filter: Filter | null,
    structuredIds: boolean,
  ) => {
    const events = log.events();
    // Forwards INCLUDES the event at the given position; backwards starts with the event before it.
    let selected: StoredEvent[];
    if (!backwards) {
      if (from.hasEnd()) selected = [];
      else if (from.hasPosition()) {
        const position = allPosition(from.getPosition()!);
        selected = events.filter((event) => compareToPosition(event, position) >= 0);
      } else selected = [...events];
    } else {
      if (from.hasStart()) selected = [];
      else if (from.hasPosition()) {
        const position = allPosition(from.getPosition()!);
        selected = events.filter((event) => compareToPosition(event, position) < 0);
      } else selected = [...events];
      selected.reverse();
    }
    let sent = 0n;
    for (const event of selected) {
      if (sent >= count) break;
      if (filter && !filter.matches(event)) continue;
      call.write(wire.readEvent(event, structuredIds));
      sent += 1n;
    }
    call.end();
  };

  /** Confirmation, then history, then caught_up, then live events; a subscription starts AFTER its revision. */
  const subscribeToStream = (
    call: grpc.ServerWritableStream<pb.ReadReq, pb.ReadResp>,
    name: string,
    from: pb.ReadReq.Options.StreamOptions,
    structuredIds: boolean,
  ) => {
    const head = log.streamHead(name);
    if (head.tombstoned) return void call.emit('error', wire.streamDeletedError(name));
    let after = from.hasRevision() ? BigInt(from.getRevision()) : from.hasEnd() ? head.lastRevision : -1n;
    call.write(wire.confirmation(randomUUID()));
    const stream = log.readStream(name);
    if (stream.kind === 'found') {
      for (const event of stream.events) {
        if (event.revision <= after) continue;
        call.write(wire.readEvent(event, structuredIds));
        after = event.revision;
      }
    }
    call.write(wire.caughtUp());
    const unsubscribe = log.subscribe((written) => {
      for (const event of written) {
        if (event.streamId !== name || event.revision <= after) continue;
        call.write(wire.readEvent(event, structuredIds));
        after = event.revision;
      }
    });
    track(call, unsubscribe);
  };

  const subscribeToAll = (
    call: grpc.ServerWritableStream<pb.ReadReq, pb.ReadResp>,
    from: pb.ReadReq.Options.AllOptions,
    filter: Filter | null,
    structuredIds: boolean,
  ) => {
    let after: AllPosition | null = null;
    if (from.hasPosition()) after = allPosition(from.getPosition()!);
    else if (from.hasEnd()) {
      const last = log.lastPosition();
      after = last === null ? null : { commit: last, prepare: last };
    }
    call.write(wire.confirmation(randomUUID()));

    // Filtered subscriptions send a checkpoint every `window × multiplier` events considered
    // (matching or not), one at the end of catch-up, and never the same position twice.
    let considered = 0;
    let lastCheckpoint: bigint | null = null;
    const sendCheckpoint = (position: bigint) => {
      if (lastCheckpoint !== null && position <= lastCheckpoint) return;
      lastCheckpoint = position;
      call.write(wire.checkpoint(position));
    };
    const consider = (event: StoredEvent) => {
      if (after !== null && compareToPosition(event, after) <= 0) return false;
      after = { commit: event.position, prepare: event.position };
      if (!filter || filter.matches(event)) call.write(wire.readEvent(event, structuredIds));
      if (filter) {
        considered += 1;
        if (considered >= filter.checkpointInterval) {
          considered = 0;
          sendCheckpoint(event.position);
        }
      }
      return true;
    };

    let caughtUpFrom: bigint | null = null;
    for (const event of log.events()) if (consider(event)) caughtUpFrom = event.position;
    if (filter && caughtUpFrom !== null) sendCheckpoint(caughtUpFrom);
    call.write(wire.caughtUp());
    const unsubscribe = log.subscribe((written) => {
      for (const event of written) consider(event);
    });
    track(call, unsubscribe);
  };

  const append: grpc.handleClientStreamingCall<pb.AppendReq, pb.AppendResp> = (call, callback) => {
    const fault = faults.take('Append');
    if (fault) return callback(fault);
    let header: pb.AppendReq.Options | undefined;
    const proposed: ProposedEvent[] = [];
    let failure: wire.RpcError | null = null;
    call.on('data', (request: pb.AppendReq) => {
      if (failure) return;
      try {
        if (!header) {
          if (!request.hasOptions()) throw wire.invalidArgument('the first Append message must carry options');
          header = request.getOptions()!;
          return;
        }
        if (!request.hasProposedMessage()) throw wire.invalidArgument('Append messages after the first must carry a proposed message');
        proposed.push(wire.proposedEvent(request.getProposedMessage()!));
      } catch (error) {
        failure = asRpcError(error);
      }
    });
    call.on('end', () => {
      if (failure) return callback(failure);
      try {
        if (!header) throw wire.invalidArgument('the first Append message must carry options');
        const name = wire.streamName(header.getStreamIdentifier());
        const expected = wire.expectedFromRevisionOptions(header);
        const outcome = log.append(name, expected, proposed);
        switch (outcome.kind) {
          case 'success':
            return callback(null, wire.appendSuccess(outcome.currentRevision, outcome.position));
          case 'wrong_expected_version':
            return callback(null, wire.appendWrongExpectedVersion(expected, outcome.currentRevision));
          case 'stream_deleted':
            return callback(wire.streamDeletedError(name));
        }
      } catch (error) {
        callback(asRpcError(error));
      }
    });
  };

  const batchAppend: grpc.handleBidiStreamingCall<pb.BatchAppendReq, pb.BatchAppendResp> = (call) => {
    if (!options.batchAppend) {
      call.emit('error', wire.rpcError(grpc.status.UNIMPLEMENTED, 'Method BatchAppend is unimplemented (batchAppend: false)'));
      return;
    }
    type Pending = { name: string; expected: Expected; deadline: number | null; events: ProposedEvent[] };
    const pending = new Map<string, Pending>();
    let ended = false;
    const stop = track(call, () => {
      ended = true;
      pending.clear();
    });
    const respond = (correlationId: shared.UUID | undefined, name: string, fill: (response: pb.BatchAppendResp) => void) => {
      const response = wire.batchResponse(correlationId, name);
      fill(response);
      call.write(response);
    };
    call.on('data', (request: pb.BatchAppendReq) => {
      if (ended) return;
      const correlationId = request.getCorrelationId();
      let key: string;
      try {
        key = wire.parseUuid(correlationId);
      } catch {
        return;
      }
      if (request.hasOptions()) {
        const fault = faults.take('BatchAppend');
        if (fault) {
          // The whole call fails, as when the server drops it: the client rejects every append pending on it.
          call.emit('error', fault);
          stop();
          return;
        }
        const batchOptions = request.getOptions()!;
        try {
          const deadline = batchOptions.getDeadline();
          pending.set(key, {
            name: wire.streamName(batchOptions.getStreamIdentifier()),
            expected: wire.expectedFromBatchOptions(batchOptions),
            deadline: deadline ? deadline.toDate().getTime() : null,
            events: [],
          });
        } catch (error) {
          const identifier = batchOptions.getStreamIdentifier();
          const name = identifier ? Buffer.from(identifier.getStreamName_asU8()).toString('utf8') : '';
          respond(correlationId, name, (response) => response.setError(wire.batchStatus.badRequest(asRpcError(error).details ?? 'bad request')));
          return;
        }
      }
      const write = pending.get(key);
      if (!write) return;
      try {
        write.events.push(...request.getProposedMessagesList().map(wire.proposedEvent));
      } catch (error) {
        pending.delete(key);
        respond(correlationId, write.name, (response) => response.setError(wire.batchStatus.badRequest(asRpcError(error).details ?? 'bad request')));
        return;
      }
      if (!request.getIsFinal()) return;
      pending.delete(key);
      if (write.deadline !== null && write.deadline <= Date.now()) {
        respond(correlationId, write.name, (response) => response.setError(wire.batchStatus.timeout()));
        return;
      }
      const outcome = log.append(write.name, write.expected, write.events);
      respond(correlationId, write.name, (response) => {
        switch (outcome.kind) {
          case 'success':
            response.setSuccess(wire.batchSuccess(outcome.currentRevision, outcome.position));
            break;
          case 'wrong_expected_version':
            response.setError(wire.batchStatus.wrongExpectedVersion(write.expected, outcome.currentRevision));
            break;
          case 'stream_deleted':
            response.setError(wire.batchStatus.streamDeleted(write.name));
            break;
        }
      });
    });
    call.on('end', () => {
      if (!ended) call.end();
    });
  };

  const deleteOrTombstone = <Req extends pb.DeleteReq | pb.TombstoneReq>(hard: boolean) => {
    const method: FaultMethod = hard ? 'Tombstone' : 'Delete';
    return (call: grpc.ServerUnaryCall<Req, unknown>, callback: (error: wire.RpcError | null, position?: bigint) => void) => {
      const fault = faults.take(method);
      if (fault) return callback(fault);
      try {
        const requestOptions = call.request.getOptions();
        if (!requestOptions) throw wire.invalidArgument('options are required');
        const name = wire.streamName(requestOptions.getStreamIdentifier());
        const expected = wire.expectedFromRevisionOptions(requestOptions);
        const outcome = log.delete(name, expected, hard);
        switch (outcome.kind) {
          case 'success':
            return callback(null, outcome.position);
          case 'wrong_expected_version':
            return callback(wire.wrongExpectedVersionError('Delete', name, expected, outcome.currentRevision));
          case 'stream_deleted':
            return callback(wire.streamDeletedError(name));
        }
      } catch (error) {
        callback(asRpcError(error));
      }
    };
  };
  const softDelete = deleteOrTombstone<pb.DeleteReq>(false);
  const hardDelete = deleteOrTombstone<pb.TombstoneReq>(true);

  const streams: IStreamsServer = {
    read,
    append,
    batchAppend,
    delete: (call, callback) =>
      softDelete(call, (error, position) => {
        if (error) return callback(error);
        const response = new pb.DeleteResp();
        response.setPosition(wire.deletePosition(new pb.DeleteResp.Position(), position!));
        callback(null, response);
      }),
    tombstone: (call, callback) =>
      hardDelete(call, (error, position) => {
        if (error) return callback(error);
        const response = new pb.TombstoneResp();
        response.setPosition(wire.deletePosition(new pb.TombstoneResp.Position(), position!));
        callback(null, response);
      }),
  };

  const serverFeatures: IServerFeaturesServer = {
    getSupportedMethods: (_call, callback) => {
      const methods = new features.SupportedMethods();
      methods.setEventStoreServerVersion(options.serverVersion);
      const advertised: [string, string, string[]][] = [
        ['event_store.client.streams.streams', 'read', ['position', 'events']],
        ['event_store.client.streams.streams', 'append', []],
        ['event_store.client.streams.streams', 'delete', []],
        ['event_store.client.streams.streams', 'tombstone', []],
        ...(options.batchAppend ? [['event_store.client.streams.streams', 'batchappend', []] as [string, string, string[]]] : []),
        ['event_store.client.server_features.serverfeatures', 'getsupportedmethods', []],
      ];
      for (const [serviceName, methodName, featureList] of advertised) {
        const method = new features.SupportedMethod();
        method.setServiceName(serviceName);
        method.setMethodName(methodName);
        method.setFeaturesList(featureList);
        methods.addMethods(method);
      }
      callback(null, methods);
    },
  };

  /** Stop every subscription and batch-append stream still open (server shutdown). */
  const stopAll = () => {
    for (const cleanup of [...cleanups]) cleanup();
  };

  return { streams, serverFeatures, stopAll };
};

const asRpcError = (error: unknown): wire.RpcError => {
  if (error instanceof Error && typeof (error as wire.RpcError).code === 'number') return error as wire.RpcError;
  return wire.rpcError(grpc.status.UNKNOWN, error instanceof Error ? error.message : String(error));
};
