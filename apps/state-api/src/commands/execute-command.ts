import { createHash } from 'node:crypto';
import { Inject } from '@nestjs/common';
import { CommandHandler, type ICommandHandler } from '@nestjs/cqrs';
import {
  DomainRefusal,
  EVENT_SCHEMA_VERSIONS,
  deciders,
  routeCommand,
  upcast,
  type AggregateName,
  type DomainCommand,
  type DomainEvent,
} from '@lorestore/domain';
import {
  WrongExpectedVersionError,
  deriveEventId,
  type AppendResult,
  type EventStore,
  type ExpectedRevision,
  type RecordedEvent,
} from '@lorestore/event-store';
import { APP_CONFIG, type AppConfig } from '../config';
import { EVENT_STORE } from '../persistence/tokens';
import { Metrics } from '../metrics/metrics';
import { AggregateCache } from './aggregate-cache';
import { KeyedQueue } from './stream-queue';

export type CommandResponse = {
  streamId: string;
  revision: number;
  position: number | null;
  events: { type: string; revision: number; position: number }[];
  duplicate: boolean;
};

export class ExecuteCommand {
  constructor(
    readonly command: DomainCommand,
    /** undefined: the client did not ask for a check; the handler still appends against the revision it decided on. */
    readonly expectedRevision: ExpectedRevision | undefined,
    readonly correlationId: string,
  ) {}
}

export const toDomainEvent = (event: RecordedEvent): DomainEvent =>
  ({ type: event.type, data: upcast(event.type, event.schemaVersion, event.data) }) as DomainEvent;

export const toCommandResponse = (result: AppendResult): CommandResponse => ({
  streamId: result.streamId,
  revision: Number(result.nextExpectedRevision),
  position: Number(result.position.prepare),
  events: result.events.map((e) => ({ type: e.type, revision: Number(e.revision), position: Number(e.position.prepare) })),
  duplicate: result.duplicate,
});

/** What makes two sends "the same command": a commandId reused for anything else is refused. */
export const commandHash = (command: DomainCommand, expected: ExpectedRevision | undefined): string =>
  createHash('sha256')
    .update(JSON.stringify([command.metadata.worldId, command.type, command.data, expected === undefined ? null : String(expected)]))
    .digest('base64url');

const matches = (expected: ExpectedRevision, actual: bigint | null): boolean => {
  if (expected === 'any') return true;
  if (expected === 'no_stream') return actual === null;
  if (expected === 'exists') return actual !== null;
  return actual === expected;
};

/**
 * The one command handler: read the stream, fold, decide, append with the
 * revision the decision was made on. Nothing is written anywhere but the log.
 */
@CommandHandler(ExecuteCommand)
export class ExecuteCommandHandler implements ICommandHandler<ExecuteCommand, CommandResponse> {
  private readonly streams = new KeyedQueue();

  constructor(
    @Inject(EVENT_STORE) private readonly store: EventStore,
    @Inject(APP_CONFIG) private readonly config: AppConfig,
    private readonly metrics: Metrics,
    private readonly cache: AggregateCache,
  ) {}

  async execute({ command, expectedRevision, correlationId }: ExecuteCommand): Promise<CommandResponse> {
    const hash = commandHash(command, expectedRevision);
    try {
      const response = await this.decideAndAppend(command, expectedRevision, hash, correlationId);
      this.metrics.commands.inc({ type: command.type, outcome: response.duplicate ? 'duplicate' : 'ok' });
      return response;
    } catch (error) {
      // A copy of this command may have won a race with us: then its answer is ours.
      if (error instanceof DomainRefusal || error instanceof WrongExpectedVersionError) {
        const prior = await this.store.commandResult(command.metadata.commandId);
        if (prior && prior.commandHash === hash) {
          this.metrics.commands.inc({ type: command.type, outcome: 'duplicate' });
          return toCommandResponse(prior.result);
        }
      }
      this.metrics.commands.inc({ type: command.type, outcome: error instanceof DomainRefusal ? 'refused' : error instanceof WrongExpectedVersionError ? 'conflict' : 'error' });
      throw error;
    }
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
    for (let attempt = 0; ; attempt++) {
      // Fold from the cached state, reading only the events appended after it.
      const cached = this.cache.get(streamId);
      const tail = await this.store.readStream(streamId, cached ? { fromRevision: cached.revision + 1n } : {});
      let state = cached ? cached.state : decider.initialState();
      for (const event of tail) state = decider.evolve(state, toDomainEvent(event));
      const last = tail.at(-1);
      const current = last ? last.revision : (cached?.revision ?? null);
      const lastPosition = last ? last.position.prepare : (cached?.position ?? null);
      if (last) this.cache.set(streamId, { state, revision: last.revision, position: last.position.prepare });

      if (expectedRevision !== undefined && !matches(expectedRevision, current)) {
        throw new WrongExpectedVersionError(streamId, expectedRevision, current);
      }
      const events = decider.decide(command, state);
      if (events.length === 0) {
        // Nothing to change (e.g. moving to where it is): answer with the state as it stands.
        return {
          streamId,
          revision: current === null ? -1 : Number(current),
          position: lastPosition === null ? null : Number(lastPosition),
          events: [],
          duplicate: false,
        };
      }
      const { commandId, actor, worldId } = command.metadata;
      try {
        const result = await this.store.appendToStream(
          streamId,
          events.map((event, index) => ({
            id: deriveEventId(commandId, index),
            type: event.type,
            data: event.data,
            schemaVersion: EVENT_SCHEMA_VERSIONS[event.type],
            metadata: { commandId, commandType: command.type, correlationId, causationId: commandId, actor, worldId },
          })),
          { expectedRevision: current === null ? 'no_stream' : current, commandId, commandHash: hash },
        );
        if (!result.duplicate) {
          const next = events.reduce((s, e) => decider.evolve(s, e), state);
          this.cache.set(streamId, { state: next, revision: result.nextExpectedRevision, position: result.position.prepare });
        }
        return toCommandResponse(result);
      } catch (error) {
        if (error instanceof WrongExpectedVersionError && attempt < retries) {
          // Another instance wrote this stream meanwhile: back off (exponential, full jitter) and decide again.
          await new Promise((r) => setTimeout(r, Math.random() * Math.min(100, 2 * 2 ** attempt)));
          continue;
        }
        throw error;
      }
    }
  }
}
