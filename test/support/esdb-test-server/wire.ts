/**
 * Message and error shapes of EventStoreDB's gRPC protocol for the test double
 * (see ./index.ts), built from the classes `@eventstore/db-client` ships in
 * `generated/`. Every int64 travels as a decimal string (the client's protos
 * are generated with jstype = JS_STRING).
 */
import * as grpc from '@grpc/grpc-js';
import { Any } from 'google-protobuf/google/protobuf/any_pb';
import { Empty as GoogleEmpty } from 'google-protobuf/google/protobuf/empty_pb';
import { Code } from '@eventstore/db-client/generated/code_pb';
import * as shared from '@eventstore/db-client/generated/shared_pb';
import { Status } from '@eventstore/db-client/generated/status_pb';
import * as pb from '@eventstore/db-client/generated/streams_pb';
import type { Expected, ProposedEvent, StoredEvent } from './store';

export const JSON_CONTENT_TYPE = 'application/json';
export const BINARY_CONTENT_TYPE = 'application/octet-stream';

/** A gRPC status for grpc-js: `callback(error)` for unary / client-streaming calls, `call.emit('error', error)` for streaming ones. */
export type RpcError = grpc.ServerErrorResponse;

export const rpcError = (code: grpc.status, details: string, metadata: Record<string, string> = {}): RpcError => {
  const trailers = new grpc.Metadata();
  for (const [key, value] of Object.entries(metadata)) trailers.set(key, value);
  return Object.assign(new Error(details), { code, details, metadata: trailers });
};

export const invalidArgument = (details: string): RpcError => rpcError(grpc.status.INVALID_ARGUMENT, details);

/** As EventStoreDB's RpcExceptions.StreamDeleted: the client turns it into `StreamDeletedError`. */
export const streamDeletedError = (streamName: string): RpcError =>
  rpcError(grpc.status.FAILED_PRECONDITION, `Event stream '${streamName}' is deleted.`, {
    exception: 'stream-deleted',
    'stream-name': streamName,
  });

/** EventStoreDB's internal "expected version" number: any -2, no stream -1, stream exists -4, else the revision. */
export const expectedVersionNumber = (expected: Expected): bigint =>
  expected.kind === 'any' ? -2n : expected.kind === 'no_stream' ? -1n : expected.kind === 'stream_exists' ? -4n : expected.revision;

/** As EventStoreDB's RpcExceptions.WrongExpectedVersion (Delete and Tombstone; Append answers with a message instead). */
export const wrongExpectedVersionError = (operation: string, streamName: string, expected: Expected, actual: bigint): RpcError => {
  const expectedVersion = expectedVersionNumber(expected).toString();
  return rpcError(
    grpc.status.FAILED_PRECONDITION,
    `${operation} failed due to WrongExpectedVersion. Stream: ${streamName}, Expected version: ${expectedVersion}, Actual version: ${actual}`,
    { exception: 'wrong-expected-version', 'stream-name': streamName, 'expected-version': expectedVersion, 'actual-version': actual.toString() },
  );
};

export const requiredMetadataMissing = (property: string): RpcError =>
  rpcError(grpc.status.INVALID_ARGUMENT, `Required Metadata Property '${property}' is missing`, {
    exception: 'missing-required-metadata-property',
    'required-metadata-properties': 'type,content-type',
  });

export const streamName = (identifier: shared.StreamIdentifier | undefined): string => {
  if (!identifier) throw invalidArgument('stream_identifier is required');
  const name = Buffer.from(identifier.getStreamName_asU8()).toString('utf8');
  if (!name) throw invalidArgument('stream name must not be empty');
  return name;
};

export const streamIdentifier = (name: string): shared.StreamIdentifier => {
  const identifier = new shared.StreamIdentifier();
  identifier.setStreamName(Uint8Array.from(Buffer.from(name, 'utf8')));
  return identifier;
};

const UUID_PATTERN = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

/** A UUID in either of its wire forms, as the lower-case text form (EventStoreDB parses ids into Guids). */
export const parseUuid = (uuid: shared.UUID | undefined): string => {
  if (!uuid) throw invalidArgument('id is required');
  if (uuid.hasStructured()) {
    const structured = uuid.getStructured()!;
    const hex = [structured.getMostSignificantBits(), structured.getLeastSignificantBits()]
      .map((bits) => BigInt.asUintN(64, BigInt(bits)).toString(16).padStart(16, '0'))
      .join('');
    return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
  }
  const text = uuid.getString().toLowerCase();
  if (!UUID_PATTERN.test(text)) throw invalidArgument(`'${uuid.getString()}' is not a valid UUID`);
  return text;
};

export const uuidMessage = (id: string, structured: boolean): shared.UUID => {
  const uuid = new shared.UUID();
  if (!structured) {
    uuid.setString(id);
    return uuid;
  }
  const hex = id.replaceAll('-', '');
  const bits = new shared.UUID.Structured();
  bits.setMostSignificantBits(BigInt.asIntN(64, BigInt(`0x${hex.slice(0, 16)}`)).toString());
  bits.setLeastSignificantBits(BigInt.asIntN(64, BigInt(`0x${hex.slice(16)}`)).toString());
  uuid.setStructured(bits);
  return uuid;
};

/** Append, Delete and Tombstone options share one oneof (revision 2, no_stream 3, any 4, stream_exists 5). */
export const expectedFromRevisionOptions = (
  options: pb.AppendReq.Options | pb.DeleteReq.Options | pb.TombstoneReq.Options,
): Expected => {
  if (options.hasRevision()) return { kind: 'revision', revision: BigInt(options.getRevision()) };
  if (options.hasNoStream()) return { kind: 'no_stream' };
  if (options.hasAny()) return { kind: 'any' };
  if (options.hasStreamExists()) return { kind: 'stream_exists' };
  throw invalidArgument('expected_stream_revision is required');
};

export const expectedFromBatchOptions = (options: pb.BatchAppendReq.Options): Expected => {
  if (options.hasStreamPosition()) return { kind: 'revision', revision: BigInt(options.getStreamPosition()) };
  if (options.hasNoStream()) return { kind: 'no_stream' };
  if (options.hasAny()) return { kind: 'any' };
  if (options.hasStreamExists()) return { kind: 'stream_exists' };
  throw invalidArgument('expected_stream_position is required');
};

/** A proposed message of Append or BatchAppend: `type` and `content-type` metadata are required, as on the server. */
export const proposedEvent = (message: pb.AppendReq.ProposedMessage | pb.BatchAppendReq.ProposedMessage): ProposedEvent => {
  const metadata = message.getMetadataMap();
  const type = metadata.get('type');
  if (type === undefined) throw requiredMetadataMissing('type');
  const contentType = metadata.get('content-type');
  if (contentType === undefined) throw requiredMetadataMissing('content-type');
  return {
    id: parseUuid(message.getId()),
    type,
    isJson: contentType === JSON_CONTENT_TYPE,
    data: Uint8Array.from(message.getData_asU8()),
    customMetadata: Uint8Array.from(message.getCustomMetadata_asU8()),
  };
};

export const readEvent = (event: StoredEvent, structuredIds: boolean): pb.ReadResp => {
  const recorded = new pb.ReadResp.ReadEvent.RecordedEvent();
  recorded.setId(uuidMessage(event.id, structuredIds));
  recorded.setStreamIdentifier(streamIdentifier(event.streamId));
  recorded.setStreamRevision(event.revision.toString());
  recorded.setCommitPosition(event.position.toString());
  recorded.setPreparePosition(event.position.toString());
  const metadata = recorded.getMetadataMap();
  metadata.set('type', event.type);
  metadata.set('created', event.created.toString());
  metadata.set('content-type', event.isJson ? JSON_CONTENT_TYPE : BINARY_CONTENT_TYPE);
  recorded.setCustomMetadata(event.customMetadata);
  recorded.setData(event.data);
  const read = new pb.ReadResp.ReadEvent();
  read.setEvent(recorded);
  read.setCommitPosition(event.position.toString());
  const response = new pb.ReadResp();
  response.setEvent(read);
  return response;
};

export const confirmation = (subscriptionId: string): pb.ReadResp => {
  const message = new pb.ReadResp.SubscriptionConfirmation();
  message.setSubscriptionId(subscriptionId);
  const response = new pb.ReadResp();
  response.setConfirmation(message);
  return response;
};

export const caughtUp = (): pb.ReadResp => {
  const response = new pb.ReadResp();
  response.setCaughtUp(new pb.ReadResp.CaughtUp());
  return response;
};

export const checkpoint = (position: bigint): pb.ReadResp => {
  const message = new pb.ReadResp.Checkpoint();
  message.setCommitPosition(position.toString());
  message.setPreparePosition(position.toString());
  const response = new pb.ReadResp();
  response.setCheckpoint(message);
  return response;
};

export const streamNotFound = (name: string): pb.ReadResp => {
  const message = new pb.ReadResp.StreamNotFound();
  message.setStreamIdentifier(streamIdentifier(name));
  const response = new pb.ReadResp();
  response.setStreamNotFound(message);
  return response;
};

export const lastStreamPosition = (revision: bigint): pb.ReadResp => {
  const response = new pb.ReadResp();
  response.setLastStreamPosition(revision.toString());
  return response;
};

export const appendSuccess = (currentRevision: bigint, position: bigint | null): pb.AppendResp => {
  const success = new pb.AppendResp.Success();
  if (currentRevision < 0n) success.setNoStream(new shared.Empty());
  else success.setCurrentRevision(currentRevision.toString());
  if (position === null) success.setNoPosition(new shared.Empty());
  else {
    const grpcPosition = new pb.AppendResp.Position();
    grpcPosition.setCommitPosition(position.toString());
    grpcPosition.setPreparePosition(position.toString());
    success.setPosition(grpcPosition);
  }
  const response = new pb.AppendResp();
  response.setSuccess(success);
  return response;
};

/** As EventStoreDB 21+ answers Append: a `wrong_expected_version` message (new fields and the 20.6.0 ones), not a gRPC error. */
export const appendWrongExpectedVersion = (expected: Expected, currentRevision: bigint): pb.AppendResp => {
  const wrong = new pb.AppendResp.WrongExpectedVersion();
  switch (expected.kind) {
    case 'any':
      wrong.setExpectedAny(new shared.Empty());
      wrong.setAny2060(new shared.Empty());
      break;
    case 'stream_exists':
      wrong.setExpectedStreamExists(new shared.Empty());
      wrong.setStreamExists2060(new shared.Empty());
      break;
    case 'no_stream':
      // (the server also sets expected_revision_20_6_0 to ulong.MaxValue, which a JS number cannot carry)
      wrong.setExpectedNoStream(new shared.Empty());
      break;
    case 'revision':
      wrong.setExpectedRevision(expected.revision.toString());
      wrong.setExpectedRevision2060(Number(expected.revision));
      break;
  }
  if (currentRevision < 0n) {
    wrong.setCurrentNoStream(new shared.Empty());
    wrong.setNoStream2060(new shared.Empty());
  } else {
    wrong.setCurrentRevision(currentRevision.toString());
    wrong.setCurrentRevision2060(Number(currentRevision));
  }
  const response = new pb.AppendResp();
  response.setWrongExpectedVersion(wrong);
  return response;
};

const packed = (message: { serializeBinary(): Uint8Array }, typeName: string): Any => {
  const any = new Any();
  any.pack(message.serializeBinary(), typeName);
  return any;
};

const rpcStatus = (code: Code, message: string, details: Any): Status => {
  const status = new Status();
  status.setCode(code);
  status.setMessage(message);
  status.setDetails(details);
  return status;
};

/** BatchAppend errors are google.rpc.Status values with typed details, as EventStoreDB's Status.cs builds them. */
export const batchStatus = {
  wrongExpectedVersion(expected: Expected, currentRevision: bigint): Status {
    const details = new shared.WrongExpectedVersion();
    if (currentRevision < 0n) details.setCurrentNoStream(new GoogleEmpty());
    else details.setCurrentStreamRevision(currentRevision.toString());
    switch (expected.kind) {
      case 'any':
        details.setExpectedAny(new GoogleEmpty());
        break;
      case 'no_stream':
        details.setExpectedNoStream(new GoogleEmpty());
        break;
      case 'stream_exists':
        details.setExpectedStreamExists(new GoogleEmpty());
        break;
      case 'revision':
        details.setExpectedStreamPosition(expected.revision.toString());
        break;
    }
    return rpcStatus(Code.ALREADY_EXISTS, 'WrongExpectedVersion', packed(details, 'event_store.client.WrongExpectedVersion'));
  },
  streamDeleted(name: string): Status {
    const details = new shared.StreamDeleted();
    details.setStreamIdentifier(streamIdentifier(name));
    return rpcStatus(Code.NOT_FOUND, 'StreamDeleted', packed(details, 'event_store.client.StreamDeleted'));
  },
  timeout(): Status {
    return rpcStatus(Code.DEADLINE_EXCEEDED, 'Timeout', packed(new shared.Timeout(), 'event_store.client.Timeout'));
  },
  badRequest(message: string): Status {
    const details = new shared.BadRequest();
    details.setMessage(message);
    return rpcStatus(Code.INVALID_ARGUMENT, 'BadRequest', packed(details, 'event_store.client.BadRequest'));
  },
};

export const batchResponse = (correlationId: shared.UUID | undefined, name: string): pb.BatchAppendResp => {
  const response = new pb.BatchAppendResp();
  response.setCorrelationId(correlationId);
  response.setStreamIdentifier(streamIdentifier(name));
  return response;
};

export const batchSuccess = (currentRevision: bigint, position: bigint | null): pb.BatchAppendResp.Success => {
  const success = new pb.BatchAppendResp.Success();
  if (currentRevision < 0n) success.setNoStream(new GoogleEmpty());
  else success.setCurrentRevision(currentRevision.toString());
  if (position === null) success.setNoPosition(new GoogleEmpty());
  else {
    const allPosition = new shared.AllStreamPosition();
    allPosition.setCommitPosition(position.toString());
    allPosition.setPreparePosition(position.toString());
    success.setPosition(allPosition);
  }
  return success;
};

export const deletePosition = <T extends pb.DeleteResp.Position | pb.TombstoneResp.Position>(position: T, value: bigint): T => {
  position.setCommitPosition(value.toString());
  position.setPreparePosition(value.toString());
  return position;
};
