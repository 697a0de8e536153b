import type { Command, CommandMetadata, Decider, Event, JsonObject } from './decider';
import { uuidV7 } from './ids';
import { refuse } from './refusal';
import type { StreamRolledBack } from './rollback';

// ── commands ────────────────────────────────────────────────────────────────
export type SpawnEntity = Command<
  'entity.spawn',
  { entityId: string; kind: string; attributes: JsonObject; locationId?: string | null }
>;
export type UpdateEntity = Command<'entity.update', { entityId: string; set: JsonObject; unset: string[] }>;
export type MoveEntity = Command<'entity.move', { entityId: string; locationId: string }>;
export type DespawnEntity = Command<'entity.despawn', { entityId: string; reason?: string | null }>;
export type RecordNpcMemory = Command<
  'npc.record_memory',
  { npcId: string; text: string; embedding: number[]; importance?: number; subjects?: string[] }
>;
export type ForgetNpcMemory = Command<'npc.forget_memory', { npcId: string; memoryId: string }>;
export type EntityCommand = SpawnEntity | UpdateEntity | MoveEntity | DespawnEntity | RecordNpcMemory | ForgetNpcMemory;

// ── events ──────────────────────────────────────────────────────────────────
export type EntitySpawned = Event<
  'EntitySpawned',
  { entityId: string; kind: string; attributes: JsonObject; locationId: string | null; at: string }
>;
export type EntityUpdated = Event<'EntityUpdated', { entityId: string; set: JsonObject; unset: string[]; at: string }>;
export type EntityMoved = Event<'EntityMoved', { entityId: string; from: string | null; to: string; at: string }>;
export type EntityDespawned = Event<'EntityDespawned', { entityId: string; reason: string | null; at: string }>;
export type NpcMemoryRecorded = Event<
  'NpcMemoryRecorded',
  {
    npcId: string;
    memoryId: string;
    text: string;
    embedding: number[];
    importance: number;
    subjects: string[];
    at: string;
  }
>;
/**
 * The NPC forgets one memory: it leaves search (the vector index projection
 * drops it). Like every event it can be rolled back, which brings the memory
 * back. The NPC's state does not list its memories (an NPC may hold tens of
 * thousands), so forgetting an id it never had changes nothing downstream.
 */
export type NpcMemoryForgotten = Event<'NpcMemoryForgotten', { npcId: string; memoryId: string; at: string }>;
export type EntityEvent =
  | EntitySpawned
  | EntityUpdated
  | EntityMoved
  | EntityDespawned
  | NpcMemoryRecorded
  | NpcMemoryForgotten
  | StreamRolledBack<EntityState>;

// ── state ───────────────────────────────────────────────────────────────────
type EntityCore = {
  entityId: string;
  kind: string;
  attributes: JsonObject;
  locationId: string | null;
  spawnedAt: string;
  updatedAt: string;
  memoryCount: number;
};
export type EntityState =
  | { status: 'unspawned' }
  | ({ status: 'active' } & EntityCore)
  | ({ status: 'despawned'; reason: string | null; despawnedAt: string } & EntityCore);

export const DEFAULT_MEMORY_IMPORTANCE = 5;

const requireActive = (state: EntityState, entityId: string): Extract<EntityState, { status: 'active' }> => {
  if (state.status === 'unspawned') return refuse('not_found', `entity ${entityId} was never spawned`);
  if (state.status === 'despawned') return refuse('gone', `entity ${entityId} was despawned at ${state.despawnedAt}`);
  return state;
};

const at = (metadata: CommandMetadata) => metadata.now;

export const decideEntity = (command: EntityCommand, state: EntityState): EntityEvent[] => {
  switch (command.type) {
    case 'entity.spawn': {
      if (state.status !== 'unspawned') {
        return refuse('already_exists', `entity ${command.data.entityId} already exists (${state.status})`);
      }
      const { entityId, kind, attributes, locationId } = command.data;
      return [
        { type: 'EntitySpawned', data: { entityId, kind, attributes, locationId: locationId ?? null, at: at(command.metadata) } },
      ];
    }
    case 'entity.update': {
      requireActive(state, command.data.entityId);
      const { entityId, set, unset } = command.data;
      return [{ type: 'EntityUpdated', data: { entityId, set, unset, at: at(command.metadata) } }];
    }
    case 'entity.move': {
      const active = requireActive(state, command.data.entityId);
      // Moving to where it already is changes nothing: no event, no revision bump.
      if (active.locationId === command.data.locationId) return [];
      return [
        {
          type: 'EntityMoved',
          data: { entityId: active.entityId, from: active.locationId, to: command.data.locationId, at: at(command.metadata) },
        },
      ];
    }
    case 'entity.despawn': {
      const active = requireActive(state, command.data.entityId);
      return [
        { type: 'EntityDespawned', data: { entityId: active.entityId, reason: command.data.reason ?? null, at: at(command.metadata) } },
      ];
    }
    case 'npc.record_memory': {
      const active = requireActive(state, command.data.npcId);
      if (active.kind !== 'npc') return refuse('not_an_npc', `entity ${active.entityId} is a ${active.kind}, not an npc`);
      const { npcId, text, embedding, importance, subjects } = command.data;
      // A UUIDv7 of the decision's instant, its other bits from the commandId: unique, time-ordered, and pure.
      const memoryId = uuidV7(Date.parse(command.metadata.now), `memory:${command.metadata.commandId}`);
      return [
        {
          type: 'NpcMemoryRecorded',
          data: {
            npcId,
            memoryId,
            text,
            embedding,
            importance: importance ?? DEFAULT_MEMORY_IMPORTANCE,
            subjects: subjects ?? [],
            at: at(command.metadata),
          },
        },
      ];
    }
    case 'npc.forget_memory': {
      const active = requireActive(state, command.data.npcId);
      if (active.kind !== 'npc') return refuse('not_an_npc', `entity ${active.entityId} is a ${active.kind}, not an npc`);
      return [{ type: 'NpcMemoryForgotten', data: { npcId: command.data.npcId, memoryId: command.data.memoryId, at: at(command.metadata) } }];
    }
    default: {
      const _exhaustive: never = command;
      return _exhaustive;
    }
  }
};

const applyUpdate = (attributes: JsonObject, set: JsonObject, unset: string[]): JsonObject => {
  const next: JsonObject = { ...attributes, ...set };
  for (const key of unset) delete next[key];
  return next;
};

export const evolveEntity = (state: EntityState, event: EntityEvent): EntityState => {
  switch (event.type) {
    case 'EntitySpawned':
      return {
        status: 'active',
        entityId: event.data.entityId,
        kind: event.data.kind,
        attributes: event.data.attributes,
        locationId: event.data.locationId,
        spawnedAt: event.data.at,
        updatedAt: event.data.at,
        memoryCount: 0,
      };
    case 'EntityUpdated':
      if (state.status !== 'active') return state;
      return { ...state, attributes: applyUpdate(state.attributes, event.data.set, event.data.unset), updatedAt: event.data.at };
    case 'EntityMoved':
      if (state.status !== 'active') return state;
      return { ...state, locationId: event.data.to, updatedAt: event.data.at };
    case 'EntityDespawned':
      if (state.status !== 'active') return state;
      return { ...state, status: 'despawned', reason: event.data.reason, despawnedAt: event.data.at, updatedAt: event.data.at };
    case 'NpcMemoryRecorded':
      if (state.status !== 'active') return state;
      return { ...state, memoryCount: state.memoryCount + 1, updatedAt: event.data.at };
    case 'NpcMemoryForgotten':
      // memoryCount counts memories recorded; the index knows which are still remembered.
      return state;
    case 'StreamRolledBack':
      return event.data.state;
    default: {
      const _exhaustive: never = event;
      return _exhaustive;
    }
  }
};

export const entityDecider: Decider<EntityState, EntityCommand, EntityEvent> = {
  decide: decideEntity,
  evolve: evolveEntity,
  initialState: () => ({ status: 'unspawned' }),
};
