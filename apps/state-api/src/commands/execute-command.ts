import { Inject } from '@nestjs/common';
import { Logger } from '@nestjs/common';
import { CommandHandler, type ICommandHandler } from '@nestjs/cqrs';
import {
  DomainRefusal,
  EVENT_SCHEMA_VERSIONS,
  REDUCER_VERSIONS,
  deciders,
  routeCommand,
  type AggregateName,
  type AnyDecider,
  type DomainCommand,
  type DomainEvent,
} from '@lorestore/domain';
import {
  CommandIdReusedError,
  MirroredEventStore,
  WrongExpectedVersionError,
  deriveEventId,
  type AppendResult,
  type EventStore,
  type ExpectedRevision,
} from '@lorestore/event-store';
import { toDomainEvent } from '@lorestore/projections';
import type { PersonalDataCodec } from '@lorestore/privacy';
import type { SnapshotStore } from '@lorestore/replay';
import { PERSONAL_DATA } from '../privacy/privacy.providers';
import { SNAPSHOTS } from '../replay/replay.providers';
import { APP_CONFIG, type AppConfig } from '../config';
import { EVENT_STORE } from '../persistence/tokens';
import { Metrics } from '../metrics/metrics';
import { AggregateCache } from './aggregate-cache';
import { KeyedQueue } from './stream-queue';

export type CommandResponse = {
  streamId: string;
  revision: number;
  position: number | null;
  events: { type: string; revision: number; position: number | null }[];
  duplicate: boolean;
  /** EventStoreDB mode only, when false: the mirror did not hold the events within MIRROR_WAIT_MS (they are safe in EventStoreDB). */
  mirrored?: false;
  /** `npc.record_memory` only: the id the decider gave the memory (the stored one, for a repeated command). */
  memoryId?: string;
};

type StreamView = {
  state: unknown;
  current: bigint | null;
  lastPosition: bigint | null;
  /** Read from the store in this command, as opposed to taken from the cache. */
  verified: boolean;
};

export class ExecuteCommand {
  constructor(
    readonly command: DomainCommand,
    /** undefined: the client did not ask for a check; the handler still appends against the revision it decided on. */
    readonly expectedRevision: ExpectedRevision | undefined,
    readonly correlationId: string,
  ) {}
}

export const toCommandResponse = (result: AppendResult): CommandResponse =>
  result.mirrored === false
    ? {
        // EventStoreDB mode, the mirror not caught up in time: the events are safe in EventStoreDB, but there is
        // no position of the mirror to hand out as a consistency token yet.
        streamId: result.streamId,
        revision: Number(result.nextExpectedRevision),
        position: null,
        events: result.events.map((e) => ({ type: e.type, revision: Number(e.revision), position: null })),
        duplicate: result.duplicate,
        mirrored: false,
      }
    : {
        streamId: result.streamId,
        revision: Number(result.nextExpectedRevision),
        position: Number(result.position.prepare),
        events: result.events.map((e) => ({ type: e.type, revision: Number(e.revision), position: Number(e.position.prepare) })),
        duplicate: result.duplicate,
      };

/**
 * What makes two sends "the same command": a commandId reused for anything
 * else is refused. A command with personal data is hashed under its players'
 * key (PersonalDataCodec.commandDigest): a plain hash of the payload could be
 * checked against guessed names or emails.
 */
export const commandHash = (command: DomainCommand, expected: ExpectedRevision | undefined, digest: (command: DomainCommand, text: string) => Promise<string>): Promise<string> =>
  digest(command, JSON.stringify([command.metadata.worldId, command.type, command.data, expected === undefined ? null : String(expected)]));

const matches = (expected: ExpectedRevision, actual: bigint | null): boolean => {
  if (expected === 'any') return true;
  if (expected === 'no_stream') return actual === null;
  if (expected === 'exists') return actual !== null;
  return actual === expected;
};

/**
 * The one command handler: fold the stream (from the cached state when there
 * is one), decide, append with the revision the decision was made on. Nothing
 * is written anywhere but the log.
 */
@CommandHandler(ExecuteCommand)
export class ExecuteCommandHandler implements ICommandHandler<ExecuteCommand, CommandResponse> {
  private readonly streams = new KeyedQueue();
  private readonly logger = new Logger('Commands');

  constructor(
    @Inject(EVENT_STORE) private readonly store: EventStore,
    @Inject(APP_CONFIG) private readonly config: AppConfig,
    private readonly metrics: Metrics,
    private readonly cache: AggregateCache,
    @Inject(SNAPSHOTS) private readonly snapshots: SnapshotStore,
    @Inject(PERSONAL_DATA) private readonly personal: PersonalDataCodec,
  ) {}

  async execute({ command, expectedRevision, correlationId }: ExecuteCommand): Promise<CommandResponse> {
    let hash: string;
    try {
      hash = await commandHash(command, expectedRevision, (c, text) => this.personal.commandDigest(c, text));
    } catch (error) {
      // Personal data of an erased player (410): nothing to compare with a first copy, nothing appended.
      this.metrics.commands.inc({ type: command.type, outcome: error instanceof DomainRefusal ? 'refused' : 'error' });
      throw error;
    }
    try {
      const response = await this.decideAndAppend(command, expectedRevision, hash, correlationId);
      this.metrics.commands.inc({ type: command.type, outcome: response.duplicate ? 'duplicate' : 'ok' });
      return await this.withMemoryId(command, response);
    } catch (error) {
      // A copy of this command may have won a race with us: then its answer is ours.
      if (error instanceof DomainRefusal || error instanceof WrongExpectedVersionError) {
        if (this.store instanceof MirroredEventStore) {
          // EventStoreDB mode: the first copy may be in EventStoreDB and not yet in the mirror.
          const prior = await this.store.priorResult(routeCommand(command).streamId, command.metadata.commandId, hash);
          if (prior) {
            this.metrics.commands.inc({ type: command.type, outcome: 'duplicate' });
            return await this.withMemoryId(command, toCommandResponse(prior));
          }
        }
        const prior = await this.store.commandResult(command.metadata.commandId);
        if (prior && prior.commandHash === hash) {
          this.metrics.commands.inc({ type: command.type, outcome: 'duplicate' });
          return await this.withMemoryId(command, toCommandResponse(prior.result));
        }
        if (prior) throw new CommandIdReusedError(command.metadata.commandId);
      }
      this.metrics.commands.inc({ type: command.type, outcome: error instanceof DomainRefusal ? 'refused' : error instanceof WrongExpectedVersionError ? 'conflict' : 'error' });
      throw error;
    }
  }

  /**
   * The decider names a memory (a UUIDv7 of the instant it decided): a first
   * append answers the id it decided, a repeated command reads back the id
   * the first one stored.
   */
  private async withMemoryId(command: DomainCommand, response: CommandResponse): Promise<CommandResponse> {
    const recorded = command.type === 'npc.record_memory' ? response.events.find((e) => e.type === 'NpcMemoryRecorded') : undefined;
    // A first append knows the id it decided; only a repeat reads back the one stored.
    if (!recorded || response.memoryId !== undefined) return response;
    // Not mirrored yet: the event is read from EventStoreDB itself.
    const source = response.mirrored === false && this.store instanceof MirroredEventStore ? this.store.esdb : this.store;
    const [event] = await source.readStream(response.streamId, { fromRevision: BigInt(recorded.revision), maxCount: 1 });
    return { ...response, memoryId: (event?.data as { memoryId?: string } | undefined)?.memoryId };
  }

  private async decideAndAppend(
    command: DomainCommand,
    expectedRevision: ExpectedRevision | undefined,
    hash: string,
    correlationId: string,
  ): Promise<CommandResponse> {
    const { aggregate, streamId } = routeCommand(command);
    return this.streams.run(streamId, () => this.decideAndAppendInOrder(command, expectedRevision, hash, correlationId, aggregate, streamId));
  }

  /**
   * The state to decide on. With `fresh` false and the stream cached, no read at
   * all: the append's expected revision checks that nothing happened since, and a
   * conflict sends us back here with `fresh` true. Otherwise read only the events
   * after the cached state.
   */
  private async load(decider: AnyDecider, streamId: string, fresh: boolean): Promise<StreamView> {
    const cached = this.cache.get(streamId);
    if (cached && !fresh) return { state: cached.state, current: cached.revision, lastPosition: cached.position, verified: false };
    const from = cached ? cached.revision + 1n : undefined;
    // EventStoreDB mode: decide on EventStoreDB's stream, not on the mirror, which may lag behind it.
    const { events: tail, lastPosition } =
      this.store instanceof MirroredEventStore
        ? await this.store.readForDecision(streamId, from)
        : await this.store.readStream(streamId, from === undefined ? {} : { fromRevision: from }).then((events) => ({ events, lastPosition: events.at(-1)?.position.prepare ?? null }));
    let state = cached ? cached.state : decider.initialState();
    for (const event of tail) state = decider.evolve(state, toDomainEvent(event));
    const last = tail.at(-1);
    if (last && lastPosition !== null) this.cache.set(streamId, { state, revision: last.revision, position: lastPosition });
    return {
      state,
      current: last ? last.revision : (cached?.revision ?? null),
      lastPosition: last ? lastPosition : (cached?.position ?? null),
      verified: true,
    };
  }

  private async decideAndAppendInOrder(
    command: DomainCommand,
    expectedRevision: ExpectedRevision | undefined,
    hash: string,
    correlationId: string,
    aggregate: AggregateName,
    streamId: string,
  ): Promise<CommandResponse> {
    const decider = deciders[aggregate];
    const retries = expectedRevision === undefined || expectedRevision === 'any' ? this.config.COMMAND_RETRIES : 0;
    let view = await this.load(decider, streamId, false);
    for (let conflicts = 0; ; ) {
      // Whatever would turn the command down (a revision mismatch, a refusal, a no-op)
      // is only trusted on a state just read, never on a cached one alone.
      if (expectedRevision !== undefined && !matches(expectedRevision, view.current)) {
        if (!view.verified) {
          view = await this.load(decider, streamId, true);
          continue;
        }
        throw new WrongExpectedVersionError(streamId, expectedRevision, view.current);
      }
      let events: DomainEvent[];
      try {
        events = decider.decide(command, view.state);
      } catch (error) {
        if (error instanceof DomainRefusal && !view.verified) {
          view = await this.load(decider, streamId, true);
          continue;
        }
        throw error;
      }
      if (events.length === 0) {
        if (!view.verified) {
          view = await this.load(decider, streamId, true);
          continue;
        }
        // Nothing to change (e.g. moving to where it is): answer with the state as it stands.
        const { current, lastPosition } = view;
        return { streamId, revision: current === null ? -1 : Number(current), position: lastPosition === null ? null : Number(lastPosition), events: [], duplicate: false };
      }
      // Personal fields sealed with their players' keys before anything is written: the log, its mirrors
      // and every state folded from it (the cache, snapshots, rollback events) hold only envelopes.
      const sealed = await this.personal.seal(events);
      try {
        const result = await this.store.appendToStream(streamId, this.toEventData(command, sealed, correlationId), {
          expectedRevision: view.current === null ? 'no_stream' : view.current,
          commandId: command.metadata.commandId,
          commandHash: hash,
        });
        if (result.mirrored === false) {
          // No mirror position to remember: the next command on this stream reads it again.
          this.cache.delete(streamId);
        } else if (!result.duplicate) {
          const next = sealed.reduce((state, event) => decider.evolve(state, event), view.state);
          this.cache.set(streamId, { state: next, revision: result.nextExpectedRevision, position: result.position.prepare });
          this.snapshotIfDue(aggregate, streamId, view.current, result.nextExpectedRevision, next);
        }
        const decided = result.duplicate ? undefined : events.find((e) => e.type === 'NpcMemoryRecorded');
        return { ...toCommandResponse(result), ...(decided ? { memoryId: (decided.data as { memoryId: string }).memoryId } : {}) };
      } catch (error) {
        if (!(error instanceof WrongExpectedVersionError)) throw error;
        if (view.verified) {
          // Another instance wrote this stream since we read it.
          if (conflicts++ >= retries) throw error;
          await new Promise((r) => setTimeout(r, Math.random() * Math.min(100, 2 * 2 ** conflicts)));
        }
        view = await this.load(decider, streamId, true);
      }
    }
  }

  /**
   * A snapshot each time a stream passes a multiple of SNAPSHOT_EVERY events,
   * from the state the command just folded; off the command's path (a lost
   * snapshot only means a longer fold later).
   */
  private snapshotIfDue(aggregate: AggregateName, streamId: string, before: bigint | null, after: bigint, state: unknown): void {
    const every = BigInt(this.config.SNAPSHOT_EVERY);
    if (((before ?? -1n) + 1n) / every === (after + 1n) / every) return;
    this.snapshots
      .save([{ streamId, revision: after, reducerVersion: REDUCER_VERSIONS[aggregate], state }])
      .catch((error: unknown) => this.logger.warn(`snapshot of ${streamId}@${after} not saved: ${String(error)}`));
  }

  private toEventData(command: DomainCommand, events: DomainEvent[], correlationId: string) {
    const { commandId, actor, actorId, worldId } = command.metadata;
    return events.map((event, index) => ({
      id: deriveEventId(commandId, index),
      type: event.type,
      data: event.data,
      schemaVersion: EVENT_SCHEMA_VERSIONS[event.type],
      metadata: { commandId, commandType: command.type, correlationId, causationId: commandId, actor, ...(actorId ? { actorId } : {}), worldId },
    }));
  }
}
