import type { Decider } from './decider';
import type { DomainEvent } from './aggregates';
import { entityDecider, type EntityCommand, type EntityEvent, type EntityState } from './entity';
import { narrativeDecider, type NarrativeCommand, type NarrativeEvent, type NarrativeState } from './narrative';
import { playerDecider, type PlayerCommand, type PlayerEvent, type PlayerState } from './player';
import { createUpcaster, EVENT_SCHEMA_VERSIONS, PERSONAL_COMMANDS, PERSONAL_DATA, UnknownSchemaVersionError, upcast, type UpcasterRegistry } from './schema';
import { metadata, T0, T1 } from './testing/decider-spec';
import { worldDecider, type WorldCommand, type WorldEvent, type WorldState } from './world';

describe('createUpcaster', () => {
  // A sample history: v1 { name } → v2 { fullName } → v3 { fullName, title }.
  const registry: UpcasterRegistry = {
    HeroNamed: {
      1: (data) => ({ fullName: (data as { name: string }).name }),
      2: (data) => ({ ...(data as object), title: 'none' }),
    },
  };
  const upcastHero = createUpcaster(registry, { HeroNamed: 3, GapEvent: 3 });

  it('applies every step from the stored version up to the current one, in order', () =>
    expect(upcastHero('HeroNamed', 1, { name: 'Ayla' })).toStrictEqual({ fullName: 'Ayla', title: 'none' }));

  it('applies only the remaining steps to a newer stored version', () =>
    expect(upcastHero('HeroNamed', 2, { fullName: 'Ayla' })).toStrictEqual({ fullName: 'Ayla', title: 'none' }));

  it('returns data already at the current version untouched', () => {
    const data = { fullName: 'Ayla', title: 'queen' };
    expect(upcastHero('HeroNamed', 3, data)).toBe(data);
  });

  it('refuses a version newer than this build understands', () =>
    expect(() => upcastHero('HeroNamed', 4, {})).toThrow(UnknownSchemaVersionError));

  it('refuses when a step of the chain is missing', () => {
    expect(() => upcastHero('GapEvent', 1, {})).toThrow(UnknownSchemaVersionError);
    expect(() => upcastHero('GapEvent', 1, {})).toThrow('no upcaster for GapEvent v1 → v2');
  });

  it('refuses an unknown event type', () => expect(() => upcastHero('NoSuchEvent', 1, {})).toThrow(UnknownSchemaVersionError));
});

describe('EVENT_SCHEMA_VERSIONS', () => {
  const NPC = 'c0ffee00-0000-4000-8000-000000000001';
  const PLAYER = 'c0ffee00-0000-4000-8000-000000000002';
  const OTHER = 'c0ffee00-0000-4000-8000-000000000003';

  /** Decides the commands in order, each against the state the previous ones left. */
  const decideAll = <S, C, E>(decider: Decider<S, C, E>, commands: C[]): E[] => {
    let state = decider.initialState();
    return commands.flatMap((command) => {
      const events = decider.decide(command, state);
      state = events.reduce(decider.evolve, state);
      return events;
    });
  };
  const m = metadata(T0);

  // Every command type decided for real, so this list cannot drift from the deciders.
  const produced: DomainEvent[] = [
    ...decideAll<EntityState, EntityCommand, EntityEvent>(entityDecider, [
      { type: 'entity.spawn', data: { entityId: NPC, kind: 'npc', attributes: {} }, metadata: m },
      { type: 'entity.update', data: { entityId: NPC, set: { a: 1 }, unset: [] }, metadata: m },
      { type: 'entity.move', data: { entityId: NPC, locationId: OTHER }, metadata: m },
      { type: 'npc.record_memory', data: { npcId: NPC, text: 'hi', embedding: [1] }, metadata: m },
      { type: 'npc.forget_memory', data: { npcId: NPC, memoryId: OTHER }, metadata: m },
      { type: 'entity.despawn', data: { entityId: NPC }, metadata: metadata(T1) },
    ]),
    ...decideAll<WorldState, WorldCommand, WorldEvent>(worldDecider, [
      { type: 'world.advance_time', data: { ticks: 1 }, metadata: m },
      { type: 'world.set_weather', data: { weather: 'rain' }, metadata: m },
      { type: 'world.set_faction_standing', data: { factionId: PLAYER, otherFactionId: OTHER, standing: 1 }, metadata: m },
    ]),
    ...decideAll<PlayerState, PlayerCommand, PlayerEvent>(playerDecider, [
      { type: 'player.record_action', data: { playerId: PLAYER, action: 'a', context: {} }, metadata: m },
      { type: 'player.change_relationship', data: { playerId: PLAYER, targetId: OTHER, delta: 1 }, metadata: m },
      { type: 'player.set_profile', data: { playerId: PLAYER, displayName: 'A' }, metadata: m },
    ]),
    ...decideAll<NarrativeState, NarrativeCommand, NarrativeEvent>(narrativeDecider, [
      { type: 'narrative.advance_plot', data: { plotId: 'p', stage: 's' }, metadata: m },
      { type: 'narrative.set_flag', data: { flag: 'f', value: true }, metadata: m },
    ]),
  ];
  /** Events no decider produces: appended by the admin routes (rollback, restore). */
  const adminTypes = ['StreamRolledBack', 'PlayerErased'];
  const producedTypes = [...new Set([...produced.map((event) => event.type), ...adminTypes])].sort();

  it('has a positive integer version for every event type the deciders and the admin routes produce, and nothing else', () => {
    expect(Object.keys(EVENT_SCHEMA_VERSIONS).sort()).toStrictEqual(producedTypes);
    for (const version of Object.values(EVENT_SCHEMA_VERSIONS)) expect(Number.isInteger(version) && version >= 1).toBe(true);
  });

  it('lets the real upcaster pass every produced event at its current version', () => {
    for (const event of produced) expect(upcast(event.type, EVENT_SCHEMA_VERSIONS[event.type], event.data)).toBe(event.data);
  });

  it('maps each personal command to the event it produces, whose subject field its payload carries too', () => {
    for (const [command, eventType] of Object.entries(PERSONAL_COMMANDS)) {
      const event = produced.find((e) => e.type === eventType);
      expect({ command, produced: event !== undefined }).toEqual({ command, produced: true });
      expect(Object.keys(PERSONAL_DATA)).toContain(eventType);
    }
  });

  it('names personal-data fields and subject fields that the events really carry', () => {
    for (const event of produced) {
      const personal = PERSONAL_DATA[event.type];
      if (!personal) continue;
      expect(Object.keys(event.data)).toEqual(expect.arrayContaining([personal.subjectField, ...personal.fields]));
    }
  });
});
