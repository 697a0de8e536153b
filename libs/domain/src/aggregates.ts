import type { Decider } from './decider';
import { entityDecider, type EntityCommand, type EntityEvent } from './entity';
import { narrativeDecider, type NarrativeCommand, type NarrativeEvent } from './narrative';
import { playerDecider, type PlayerCommand, type PlayerEvent } from './player';
import { worldDecider, type WorldCommand, type WorldEvent } from './world';
import type { PlayerErased } from './privacy';

export type DomainCommand = EntityCommand | WorldCommand | PlayerCommand | NarrativeCommand;
/** PlayerErased belongs to no aggregate: the erasure route appends it to the player's privacy stream. */
export type DomainEvent = EntityEvent | WorldEvent | PlayerEvent | NarrativeEvent | PlayerErased;
export type CommandType = DomainCommand['type'];
export type EventType = DomainEvent['type'];

export type AggregateName = 'entity' | 'world' | 'player' | 'narrative';

/** Stream names: `<aggregate>-<worldId>[-<id>]`. Ids are UUIDs and world ids are slugs, so names never collide. */
export const streamIds = {
  entity: (worldId: string, entityId: string) => `entity-${worldId}-${entityId}`,
  world: (worldId: string) => `world-${worldId}`,
  player: (worldId: string, playerId: string) => `player-${worldId}-${playerId}`,
  narrative: (worldId: string) => `narrative-${worldId}`,
} as const;

/** A decider with its types erased, so one generic handler can run any aggregate. */
export type AnyDecider = Decider<unknown, DomainCommand, DomainEvent>;
const erase = <S, C extends DomainCommand, E extends DomainEvent>(decider: Decider<S, C, E>): AnyDecider =>
  decider as unknown as AnyDecider;

export const deciders: Record<AggregateName, AnyDecider> = {
  entity: erase(entityDecider),
  world: erase(worldDecider),
  player: erase(playerDecider),
  narrative: erase(narrativeDecider),
};

export type CommandRoute = { aggregate: AggregateName; streamId: string };

export const routeCommand = (command: DomainCommand): CommandRoute => {
  const { worldId } = command.metadata;
  switch (command.type) {
    case 'entity.spawn':
    case 'entity.update':
    case 'entity.move':
    case 'entity.despawn':
      return { aggregate: 'entity', streamId: streamIds.entity(worldId, command.data.entityId) };
    case 'npc.record_memory':
    case 'npc.forget_memory':
      return { aggregate: 'entity', streamId: streamIds.entity(worldId, command.data.npcId) };
    case 'world.advance_time':
    case 'world.set_weather':
    case 'world.set_faction_standing':
      return { aggregate: 'world', streamId: streamIds.world(worldId) };
    case 'player.record_action':
    case 'player.change_relationship':
    case 'player.set_profile':
      return { aggregate: 'player', streamId: streamIds.player(worldId, command.data.playerId) };
    case 'narrative.advance_plot':
    case 'narrative.set_flag':
      return { aggregate: 'narrative', streamId: streamIds.narrative(worldId) };
    default: {
      const _exhaustive: never = command;
      return _exhaustive;
    }
  }
};

const UUID_LENGTH = 36;

/** The inverse of `streamIds`: a stream's aggregate, world and (for entities and players) id; undefined for anything else. */
export const parseStreamId = (streamId: string): { aggregate: AggregateName; worldId: string; id: string } | undefined => {
  const dash = streamId.indexOf('-');
  if (dash < 0) return undefined;
  const category = streamId.slice(0, dash);
  const rest = streamId.slice(dash + 1);
  switch (category) {
    case 'world':
    case 'narrative':
      return rest ? { aggregate: category, worldId: rest, id: rest } : undefined;
    case 'entity':
    case 'player': {
      if (rest.length < UUID_LENGTH + 2 || rest[rest.length - UUID_LENGTH - 1] !== '-') return undefined;
      return { aggregate: category, worldId: rest.slice(0, -UUID_LENGTH - 1), id: rest.slice(-UUID_LENGTH) };
    }
    default:
      return undefined;
  }
};
