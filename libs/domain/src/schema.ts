import type { CommandType, EventType } from './aggregates';

/**
 * The version each event type is written with today. Raise one when its data
 * changes shape, and register an upcaster from the old version so stored
 * events keep folding.
 */
export const EVENT_SCHEMA_VERSIONS: Record<EventType, number> = {
  EntitySpawned: 1,
  EntityUpdated: 1,
  EntityMoved: 1,
  EntityDespawned: 1,
  NpcMemoryRecorded: 1,
  NpcMemoryForgotten: 1,
  WorldTimeAdvanced: 1,
  WeatherChanged: 1,
  FactionStandingSet: 1,
  PlayerActionRecorded: 1,
  PlayerRelationshipChanged: 1,
  PlayerProfileSet: 1,
  PlotAdvanced: 1,
  NarrativeFlagSet: 1,
  StreamRolledBack: 1,
  PlayerErased: 1,
};

/** upcasters[type][v] turns data written at version v into version v + 1. */
export type UpcasterRegistry = Partial<Record<string, Record<number, (data: unknown) => unknown>>>;

export class UnknownSchemaVersionError extends Error {
  override readonly name = 'UnknownSchemaVersionError';
}

export const createUpcaster =
  (registry: UpcasterRegistry, currentVersions: Record<string, number>) =>
  (type: string, schemaVersion: number, data: unknown): unknown => {
    const target = currentVersions[type];
    if (target === undefined) throw new UnknownSchemaVersionError(`unknown event type ${type}`);
    if (schemaVersion > target) {
      throw new UnknownSchemaVersionError(`${type} v${schemaVersion} is newer than this build understands (v${target})`);
    }
    let upcasted = data;
    for (let version = schemaVersion; version < target; version++) {
      const step = registry[type]?.[version];
      if (!step) throw new UnknownSchemaVersionError(`no upcaster for ${type} v${version} → v${version + 1}`);
      upcasted = step(upcasted);
    }
    return upcasted;
  };

/** Today's upcasters: none yet, every event type is at version 1. */
export const upcasters: UpcasterRegistry = {};
export const upcast = createUpcaster(upcasters, EVENT_SCHEMA_VERSIONS);

/**
 * Where personal data lives (GDPR): for each event type, which fields are
 * personal and which field names the player(s) they belong to. Declared once
 * here so encryption and erasure never depend on handlers remembering.
 */
export const PERSONAL_DATA: Partial<Record<EventType, { subjectField: string; fields: readonly string[] }>> = {
  PlayerProfileSet: { subjectField: 'playerId', fields: ['displayName', 'email', 'locale'] },
  PlayerActionRecorded: { subjectField: 'playerId', fields: ['context'] },
  // A memory about players: its text and its embedding (which can be inverted back to text).
  NpcMemoryRecorded: { subjectField: 'subjects', fields: ['text', 'embedding'] },
};

/**
 * The commands whose payload carries personal data, and the event their
 * personal fields are declared on (the payload names its subjects with the
 * same field): what the command path needs to key a command's idempotency
 * hash by its players before it decides.
 */
export const PERSONAL_COMMANDS: Partial<Record<CommandType, keyof typeof PERSONAL_DATA>> = {
  'player.set_profile': 'PlayerProfileSet',
  'player.record_action': 'PlayerActionRecorded',
  'npc.record_memory': 'NpcMemoryRecorded',
};
