import { createHash, randomUUID } from 'node:crypto';
import {
  DomainRefusal,
  EVENT_SCHEMA_VERSIONS,
  deciders,
  routeCommand,
  type DomainCommand,
  type DomainEvent,
  type EntityState,
  type JsonObject,
} from '@lorestore/domain';
import { deriveEventId } from '@lorestore/event-store';
import { prng } from '../support/random';

/**
 * Game traffic for the projections bench: commands over many entities and
 * players (a few hot, most cold), each world's clock and weather, and its
 * narrative, decided by the real deciders on the state the traffic has built
 * so far, so every event is one the service could have appended (exact
 * revisions, spawns before updates, no moves to where an entity already is).
 */
export type TrafficShape = {
  worlds: string[];
  entitiesPerWorld: number;
  playersPerWorld: number;
  seed: number;
};

/** One accepted command: what `appendToStream` gets (the service's event ids, metadata and command hash). */
export type GeneratedCommand = {
  streamId: string;
  worldId: string;
  category: string;
  commandId: string;
  commandHash: string;
  /** The stream's revision before this command: -1n for a new stream. */
  expected: bigint;
  events: { id: string; type: string; data: unknown; schemaVersion: number; metadata: Record<string, unknown> }[];
};

/** Share of each command type, in percent of attempts (entity commands on an unspawned id become spawns). */
const MIX: [DomainCommand['type'], number][] = [
  ['player.record_action', 45],
  ['player.change_relationship', 5],
  ['player.set_profile', 1],
  ['entity.update', 20],
  ['entity.move', 13],
  ['npc.record_memory', 4],
  ['entity.despawn', 1],
  ['world.advance_time', 2],
  ['world.set_weather', 1.5],
  ['world.set_faction_standing', 1],
  ['narrative.set_flag', 2],
  ['narrative.advance_plot', 0.5],
];
const MIX_TOTAL = MIX.reduce((sum, [, w]) => sum + w, 0);

const ACTIONS = ['attack', 'trade', 'craft', 'talk', 'loot', 'jump', 'cast', 'quest'];
const MOODS = ['calm', 'angry', 'afraid', 'curious'];
const WEATHER = ['rain', 'sun', 'fog', 'snow', 'wind'];
const LOCATIONS_PER_WORLD = 200;


type Stream = { state: unknown; revision: bigint };

export class GameTraffic {
  private readonly random: () => number;
  private readonly streams = new Map<string, Stream>();
  /** Per world: entity and player ids by slot; a despawned entity's slot gets a new id. */
  private readonly entities: string[][];
  private readonly players: string[][];
  private readonly locations: string[][];
  private readonly plotStage = new Map<string, number>();
  private entityCounter = 0;
  commands = 0;

  constructor(
    private readonly shape: TrafficShape,
    private readonly clock: () => number = Date.now,
  ) {
    this.random = prng(shape.seed);
    this.entities = shape.worlds.map(() => Array.from({ length: shape.entitiesPerWorld }, () => randomUUID()));
    this.players = shape.worlds.map(() => Array.from({ length: shape.playersPerWorld }, () => randomUUID()));
    this.locations = shape.worlds.map(() => Array.from({ length: LOCATIONS_PER_WORLD }, () => randomUUID()));
  }

  private int(n: number): number {
    return Math.floor(this.random() * n);
  }

  /** Skewed towards low slots: slot k is picked about 1/sqrt(k) as often as slot 0 (a few hot entities and players). */
  private hot(n: number): number {
    const u = this.random();
    return Math.min(n - 1, Math.floor(n * u * u));
  }

  private pick<T>(items: readonly T[]): T {
    return items[this.int(items.length)]!;
  }

  private entityState(worldId: string, entityId: string): EntityState {
    const stream = this.streams.get(`entity-${worldId}-${entityId}`);
    return (stream?.state as EntityState | undefined) ?? { status: 'unspawned' };
  }

  private command(type: DomainCommand['type'], w: number, now: string): DomainCommand {
    const worldId = this.shape.worlds[w]!;
    const metadata = { commandId: randomUUID(), worldId, actor: 'bench', now };
    const players = this.players[w]!;
    switch (type) {
      case 'player.record_action': {
        const context: JsonObject = { zone: `z${this.int(40)}`, x: this.int(4096), y: this.int(4096) };
        if (this.random() < 0.4) context.targetId = this.pick(this.entities[w]!);
        return { type, metadata, data: { playerId: players[this.hot(players.length)]!, action: this.pick(ACTIONS), context } };
      }
      case 'player.change_relationship': {
        const playerId = players[this.hot(players.length)]!;
        let targetId = this.pick(players);
        if (targetId === playerId) targetId = players[(players.indexOf(playerId) + 1) % players.length]!;
        return { type, metadata, data: { playerId, targetId, delta: this.int(21) - 10, reason: this.random() < 0.5 ? 'quest' : null } };
      }
      case 'player.set_profile': {
        const playerId = players[this.hot(players.length)]!;
        return { type, metadata, data: { playerId, displayName: `player ${playerId.slice(0, 8)}`, email: `${playerId.slice(0, 8)}@example.com`, locale: this.pick(['en', 'fr', 'de', 'ja']) } };
      }
      case 'entity.update':
      case 'entity.move':
      case 'npc.record_memory':
      case 'npc.forget_memory':
      case 'entity.despawn':
      case 'entity.spawn':
        return this.entityCommand(type, w, metadata);
      case 'world.advance_time':
        return { type, metadata, data: { ticks: 1 + this.int(10) } };
      case 'world.set_weather':
        return { type, metadata, data: { weather: this.pick(WEATHER), regionId: this.random() < 0.5 ? null : `r${this.int(4)}` } };
      case 'world.set_faction_standing': {
        const a = this.int(8);
        return { type, metadata, data: { factionId: `f${a}`, otherFactionId: `f${(a + 1 + this.int(7)) % 8}`, standing: this.int(201) - 100 } };
      }
      case 'narrative.set_flag':
        return { type, metadata, data: { flag: `flag${this.int(40)}`, value: this.random() < 0.5 ? this.int(100) : this.random() < 0.5 } };
      case 'narrative.advance_plot': {
        const plotId = this.pick(['main', 'side1', 'side2', 'side3']);
        const key = `${worldId}|${plotId}`;
        const stage = (this.plotStage.get(key) ?? 0) + 1;
        this.plotStage.set(key, stage);
        return { type, metadata, data: { plotId, stage: `s${stage}`, choices: this.random() < 0.3 ? { picked: `c${this.int(3)}` } : null } };
      }
    }
  }

  /** An entity command; on an id never spawned, its spawn; on a despawned one, a new entity in that slot. */
  private entityCommand(type: DomainCommand['type'], w: number, metadata: DomainCommand['metadata']): DomainCommand {
    const slots = this.entities[w]!;
    const slot = this.hot(slots.length);
    let entityId = slots[slot]!;
    let state = this.entityState(metadata.worldId, entityId);
    if (state.status === 'despawned') {
      entityId = randomUUID();
      slots[slot] = entityId;
      state = { status: 'unspawned' };
    }
    if (state.status === 'unspawned') {
      const roll = this.random();
      const kind = roll < 0.7 ? 'npc' : roll < 0.9 ? 'item' : 'building';
      const hp = 50 + this.int(150);
      return {
        type: 'entity.spawn',
        metadata,
        data: {
          entityId,
          kind,
          attributes: {
            name: `${kind}-${++this.entityCounter}`,
            hp,
            maxHp: hp,
            level: 1 + this.int(60),
            faction: `f${this.int(8)}`,
            tags: this.random() < 0.5 ? ['quest-giver', 'merchant'] : ['hostile'],
            stats: { str: this.int(20), dex: this.int(20), int: this.int(20) },
          },
          locationId: this.pick(this.locations[w]!),
        },
      };
    }
    if (type === 'entity.move') {
      const to = this.pick(this.locations[w]!);
      return { type, metadata, data: { entityId, locationId: to } };
    }
    if (type === 'entity.despawn') return { type, metadata, data: { entityId, reason: this.pick(['killed', 'expired', 'looted']) } };
    if (type === 'npc.record_memory' && state.kind === 'npc') {
      return {
        type,
        metadata,
        data: {
          npcId: entityId,
          text: `saw ${this.pick(ACTIONS)} near zone z${this.int(40)} at dusk; felt ${this.pick(MOODS)}`,
          // Real embeddings are 384-1536 floats; 16 keep the log realistic in shape without dominating its size.
          embedding: Array.from({ length: 16 }, () => Math.round(this.random() * 1e4) / 1e4),
          importance: 1 + this.int(10),
          subjects: [this.pick(this.players[w]!)],
        },
      };
    }
    const set: JsonObject = this.random() < 0.6 ? { hp: this.int(200) } : { mood: this.pick(MOODS), gold: this.int(1000) };
    return { type: 'entity.update', metadata, data: { entityId, set, unset: this.random() < 0.1 ? ['mood'] : [] } };
  }

  private chooseType(): DomainCommand['type'] {
    let roll = this.random() * MIX_TOTAL;
    for (const [type, weight] of MIX) {
      roll -= weight;
      if (roll < 0) return type;
    }
    return MIX[0]![0];
  }

  /**
   * The next accepted command, applied to the traffic's own state (its
   * revisions are the ones the store will give it). `busy(streamId)`: skip
   * streams with an append still in flight. Null when no free stream was found.
   */
  next(busy?: (streamId: string) => boolean): GeneratedCommand | null {
    for (let attempt = 0; attempt < 50; attempt++) {
      const w = this.int(this.shape.worlds.length);
      const command = this.command(this.chooseType(), w, new Date(this.clock()).toISOString());
      const { aggregate, streamId } = routeCommand(command);
      if (busy?.(streamId)) continue;
      const decider = deciders[aggregate];
      const stream = this.streams.get(streamId);
      let events: DomainEvent[];
      try {
        events = decider.decide(command, stream ? stream.state : decider.initialState());
      } catch (error) {
        if (error instanceof DomainRefusal) continue;
        throw error;
      }
      if (events.length === 0) continue;
      let state = stream ? stream.state : decider.initialState();
      for (const event of events) state = decider.evolve(state, event);
      const expected = stream ? stream.revision : -1n;
      this.streams.set(streamId, { state, revision: expected + BigInt(events.length) });
      this.commands++;
      const { commandId, worldId, actor } = command.metadata;
      return {
        streamId,
        worldId,
        category: aggregate,
        commandId,
        commandHash: createHash('sha256')
          .update(JSON.stringify([worldId, command.type, command.data, String(expected)]))
          .digest('base64url'),
        expected,
        events: events.map((event, index) => ({
          id: deriveEventId(commandId, index),
          type: event.type,
          data: event.data,
          schemaVersion: EVENT_SCHEMA_VERSIONS[event.type],
          metadata: { commandId, commandType: command.type, correlationId: commandId, causationId: commandId, actor, worldId },
        })),
      };
    }
    return null;
  }

  /** Streams written so far and their revisions (for checking the prefill). */
  get streamCount(): number {
    return this.streams.size;
  }

  revisionOf(streamId: string): bigint | undefined {
    return this.streams.get(streamId)?.revision;
  }
}
