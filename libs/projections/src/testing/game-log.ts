import fc from 'fast-check';
import {
  DomainRefusal,
  deciders,
  routeCommand,
  type DomainCommand,
  type DomainEvent,
  type JsonObject,
} from '@lorestore/domain';
import type { RecordedEvent } from '@lorestore/event-store';

/**
 * Random but valid game logs for projection tests: commands over a few
 * entities, players, one world and its narrative, run through the real
 * deciders, turned into RecordedEvents in log order. Player actions carry
 * times spread over several years so history spans many partitions.
 */
export type GameStep =
  | { op: 'spawn' | 'update' | 'move' | 'despawn'; target: number; value: number }
  | { op: 'action' | 'relationship'; target: number; value: number; monthOffset: number }
  | { op: 'weather' | 'flag' | 'plot' | 'time'; value: number };

const uuid = (prefix: string, n: number) => `${prefix}-0000-4000-8000-${String(n).padStart(12, '0')}`;
export const entityIdOf = (n: number) => uuid('00000000', n);
export const playerIdOf = (n: number) => uuid('11111111', n);
const locationIdOf = (n: number) => uuid('22222222', n);

export const gameStep: fc.Arbitrary<GameStep> = fc.oneof(
  fc.record({ op: fc.constantFrom('spawn' as const, 'update' as const, 'move' as const, 'despawn' as const), target: fc.nat(4), value: fc.nat(5) }),
  fc.record({ op: fc.constantFrom('action' as const, 'relationship' as const), target: fc.nat(3), value: fc.integer({ min: -30, max: 30 }), monthOffset: fc.integer({ min: -40, max: 2 }) }),
  fc.record({ op: fc.constantFrom('weather' as const, 'flag' as const, 'plot' as const, 'time' as const), value: fc.nat(4) }),
);

const NOW = Date.parse('2026-06-15T12:00:00.000Z');

const commandOf = (step: GameStep, worldId: string, seq: number): DomainCommand => {
  const now = new Date(NOW + seq * 1000).toISOString();
  const metadata = { commandId: uuid('33333333', seq), worldId, actor: 'test', now };
  switch (step.op) {
    case 'spawn':
      return { type: 'entity.spawn', metadata, data: { entityId: entityIdOf(step.target), kind: step.value % 2 ? 'npc' : 'item', attributes: { hp: step.value } } };
    case 'update':
      return { type: 'entity.update', metadata, data: { entityId: entityIdOf(step.target), set: { hp: step.value, [`k${step.value}`]: true } as JsonObject, unset: step.value === 0 ? ['k1'] : [] } };
    case 'move':
      return { type: 'entity.move', metadata, data: { entityId: entityIdOf(step.target), locationId: locationIdOf(step.value) } };
    case 'despawn':
      return { type: 'entity.despawn', metadata, data: { entityId: entityIdOf(step.target), reason: 'test' } };
    case 'action': {
      const at = new Date(NOW);
      at.setUTCMonth(at.getUTCMonth() + step.monthOffset);
      return { type: 'player.record_action', metadata, data: { playerId: playerIdOf(step.target), action: `a${Math.abs(step.value) % 3}`, context: { v: step.value }, at: at.toISOString() } };
    }
    case 'relationship':
      return { type: 'player.change_relationship', metadata, data: { playerId: playerIdOf(step.target), targetId: playerIdOf((step.target + 1) % 4), delta: step.value } };
    case 'weather':
      return { type: 'world.set_weather', metadata, data: { weather: ['rain', 'sun', 'fog', 'snow', 'wind'][step.value]! } };
    case 'time':
      return { type: 'world.advance_time', metadata, data: { ticks: step.value + 1 } };
    case 'flag':
      return { type: 'narrative.set_flag', metadata, data: { flag: `f${step.value}`, value: step.value } };
    case 'plot':
      return { type: 'narrative.advance_plot', metadata, data: { plotId: 'main', stage: `s${step.value}` } };
  }
};

/** The commands of `steps` that the domain accepts, with their events, in order. */
export const gameCommands = (steps: GameStep[], worldId: string): { command: DomainCommand; streamId: string; events: DomainEvent[] }[] => {
  const states = new Map<string, unknown>();
  const accepted: { command: DomainCommand; streamId: string; events: DomainEvent[] }[] = [];
  steps.forEach((step, seq) => {
    const command = commandOf(step, worldId, seq);
    const { aggregate, streamId } = routeCommand(command);
    const decider = deciders[aggregate];
    let state = states.has(streamId) ? states.get(streamId) : decider.initialState();
    let events: DomainEvent[];
    try {
      events = decider.decide(command, state);
    } catch (error) {
      if (error instanceof DomainRefusal) return;
      throw error;
    }
    if (events.length === 0) return;
    for (const event of events) state = decider.evolve(state, event);
    states.set(streamId, state);
    accepted.push({ command, streamId, events });
  });
  return accepted;
};

/** The log as a store would record it: revisions per stream, positions in order, one transaction per event. */
export const gameLog = (steps: GameStep[], worldId = 'w1'): RecordedEvent[] => {
  const revisions = new Map<string, bigint>();
  const log: RecordedEvent[] = [];
  for (const { command, streamId, events } of gameCommands(steps, worldId)) {
    for (const event of events) {
      const revision = (revisions.get(streamId) ?? -1n) + 1n;
      revisions.set(streamId, revision);
      const position = BigInt(log.length + 1);
      log.push({
        streamId,
        revision,
        position: { commit: position + 1000n, prepare: position },
        id: uuid('44444444', log.length),
        type: event.type,
        schemaVersion: 1,
        data: event.data,
        metadata: { commandId: command.metadata.commandId, worldId },
        created: new Date(command.metadata.now),
      });
    }
  }
  return log;
};

/**
 * A delivery of `log` as a feed might make it with failures: batches of any
 * size, and after a failure the feed resumes from an earlier point, so events
 * come again (at-least-once). Per-stream order is kept, as every store keeps it.
 */
export const redelivery = (log: RecordedEvent[]): fc.Arbitrary<RecordedEvent[][]> =>
  fc.array(fc.tuple(fc.integer({ min: 1, max: 8 }), fc.nat(6)), { minLength: 1, maxLength: 60 }).map((plan) => {
    const batches: RecordedEvent[][] = [];
    let at = 0;
    for (const [size, rewind] of plan) {
      if (at >= log.length) break;
      batches.push(log.slice(at, at + size));
      at = Math.max(0, Math.min(log.length, at + size) - rewind);
    }
    if (at < log.length) batches.push(log.slice(at));
    return batches;
  });
