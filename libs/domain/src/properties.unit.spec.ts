import fc from 'fast-check';
import { fold, type Decider, type JsonObject, type JsonValue } from './decider';
import { entityDecider, type EntityCommand } from './entity';
import { narrativeDecider, type NarrativeCommand } from './narrative';
import { MAX_CLOCK_SKEW_MS, playerDecider, type PlayerCommand, type PlayerState } from './player';
import { DomainRefusal } from './refusal';
import { metadata } from './testing/decider-spec';
import { STANDING_MAX, STANDING_MIN, worldDecider, type WorldCommand, type WorldState } from './world';

/**
 * Random command sequences through decide → evolve, refusals skipped. Small id
 * pools (including slugs and action names that shadow Object.prototype keys)
 * so commands keep hitting the same targets, plots, flags and regions.
 */
const RUNS = { numRuns: 200 };
const commands = <C>(command: fc.Arbitrary<C>) => fc.array(command, { maxLength: 40 });

const BASE = Date.parse('2025-03-01T12:00:00.000Z');
/** Half-second steps over 6 s, so times collide; whole seconds sometimes written without '.000' (both ISO-8601). */
const isoAt = (ms: number, short: boolean) => {
  const iso = new Date(ms).toISOString();
  return short ? iso.replace('.000Z', 'Z') : iso;
};
const nowMs = fc.integer({ min: 0, max: 12 }).map((step) => BASE + step * 500);
const meta = fc.tuple(nowMs, fc.boolean()).map(([ms, short]) => metadata(isoAt(ms, short)));

const json: fc.Arbitrary<JsonValue> = fc.json({ maxDepth: 2 }).map((text) => JSON.parse(text) as JsonValue);
const jsonObject = (keys: string[]): fc.Arbitrary<JsonObject> =>
  fc.dictionary(fc.constantFrom(...keys), json, { maxKeys: 3, noNullPrototype: true });
const ownValue = <T>(record: Record<string, T>, key: string): T | undefined => Object.getOwnPropertyDescriptor(record, key)?.value;
const uuid = (n: number) => `00000000-0000-4000-8000-${String(n).padStart(12, '0')}`;

/** `accepted` pairs each command decide accepted with the state right after its events. */
type Run<S, C, E> = { state: S; events: E[]; states: S[]; accepted: { command: C; after: S }[] };
const run = <S, C, E>(decider: Decider<S, C, E>, sequence: C[]): Run<S, C, E> => {
  let state = decider.initialState();
  const events: E[] = [];
  const states = [state];
  const accepted: Run<S, C, E>['accepted'] = [];
  for (const command of sequence) {
    let produced: E[];
    try {
      produced = decider.decide(command, state);
    } catch (error) {
      if (error instanceof DomainRefusal) continue;
      throw error;
    }
    for (const event of produced) {
      state = decider.evolve(state, event); // (a) throws here if evolve cannot take what decide produced
      events.push(event);
      states.push(state);
    }
    accepted.push({ command, after: state });
  }
  return { state, events, states, accepted };
};

/**
 * Deep equality plus identical serialization (so key order and undefined-vs-absent count too).
 * Not toStrictEqual: its type check compares `a.constructor`, which for a flag or attribute
 * named `constructor` is the stored value itself, so equal states would fail.
 */
const expectSameState = (actual: unknown, expected: unknown) => {
  expect(actual).toEqual(expected);
  expect(JSON.stringify(actual)).toBe(JSON.stringify(expected));
};

/** (a) evolve accepts decide's events, (b) replay is deterministic, (c) events survive JSON. */
const replays = <S, C, E>(
  decider: Decider<S, C, E>,
  sequence: fc.Arbitrary<C[]>,
  invariant: (result: Run<S, C, E>) => void = () => undefined,
) =>
  fc.assert(
    fc.property(sequence, (cmds) => {
      const result = run(decider, cmds);
      const replayed = fold(decider, result.events);
      expectSameState(replayed, fold(decider, result.events));
      expectSameState(replayed, result.state);
      expectSameState(fold(decider, JSON.parse(JSON.stringify(result.events)) as E[]), result.state);
      const inPlace = decider.evolveInPlace;
      if (inPlace) {
        // (d) the in-place fold gives evolve's states: from the start, and from any state read back from JSON
        // (as a projection loads a stored document), key order included.
        const events = JSON.parse(JSON.stringify(result.events)) as E[];
        let state = decider.initialState();
        for (const [i, event] of events.entries()) {
          state = inPlace(state, event);
          expectSameState(state, result.states[i + 1]);
          if (i % 7 === 3) state = JSON.parse(JSON.stringify(state)) as S;
        }
      }
      invariant(result);
    }),
    RUNS,
  );

// ── entity: one stream is one entity, as routeCommand guarantees ─────────────
const ENTITY = uuid(1);
const location = fc.constantFrom(uuid(11), uuid(12), uuid(13));
const attributeKeys = ['name', 'hp', 'mood', '__proto__', 'constructor'];
const entityCommand: fc.Arbitrary<EntityCommand> = fc.oneof(
  fc.record({
    type: fc.constant('entity.spawn' as const),
    data: fc.record({
      entityId: fc.constant(ENTITY),
      kind: fc.constantFrom('npc', 'item', 'location'),
      attributes: jsonObject(attributeKeys),
      locationId: fc.option(location),
    }),
    metadata: meta,
  }),
  fc.record({
    type: fc.constant('entity.update' as const),
    data: fc.record({ entityId: fc.constant(ENTITY), set: jsonObject(attributeKeys), unset: fc.subarray(attributeKeys) }),
    metadata: meta,
  }),
  fc.record({
    type: fc.constant('entity.move' as const),
    data: fc.record({ entityId: fc.constant(ENTITY), locationId: location }),
    metadata: meta,
  }),
  fc.record({
    type: fc.constant('entity.despawn' as const),
    data: fc.record({ entityId: fc.constant(ENTITY), reason: fc.option(fc.string()) }),
    metadata: meta,
  }),
  fc.record({
    type: fc.constant('npc.record_memory' as const),
    data: fc.record(
      {
        npcId: fc.constant(ENTITY),
        text: fc.string(),
        embedding: fc.array(fc.double({ noNaN: true, min: -1, max: 1 }), { maxLength: 4 }),
        importance: fc.integer({ min: 1, max: 10 }),
        subjects: fc.subarray([uuid(21), uuid(22)]),
      },
      { requiredKeys: ['npcId', 'text', 'embedding'] },
    ),
    metadata: meta,
  }),
  fc.record({
    type: fc.constant('npc.forget_memory' as const),
    data: fc.record({ npcId: fc.constant(ENTITY), memoryId: fc.uuid() }),
    metadata: meta,
  }),
);

// ── world ────────────────────────────────────────────────────────────────────
const faction = fc.constantFrom(uuid(31), uuid(32), uuid(33));
const worldCommand: fc.Arbitrary<WorldCommand> = fc.oneof(
  fc.record({
    type: fc.constant('world.advance_time' as const),
    data: fc.record({
      ticks: fc.oneof(
        fc.integer({ min: -2, max: 1_000 }),
        fc.integer({ min: 2 ** 51, max: Number.MAX_SAFE_INTEGER }), // a few of these overflow the clock
        fc.constant(1.5),
      ),
    }),
    metadata: meta,
  }),
  fc.record({
    type: fc.constant('world.set_weather' as const),
    data: fc.record({
      weather: fc.constantFrom('rain', 'sun', 'fog'),
      regionId: fc.option(fc.constantFrom('north', 'south', 'constructor', '__proto__')),
    }),
    metadata: meta,
  }),
  fc.record({
    type: fc.constant('world.set_faction_standing' as const),
    data: fc.record({ factionId: faction, otherFactionId: faction, standing: fc.integer({ min: -120, max: 120 }) }),
    metadata: meta,
  }),
);

// ── player: one stream is one player ─────────────────────────────────────────
const PLAYER = uuid(41);
const recordAction: fc.Arbitrary<PlayerCommand> = fc
  .record({
    now: nowMs,
    // none (→ now), near now, or right around the clock-skew limit
    offset: fc.option(
      fc.oneof(
        fc.integer({ min: -4, max: 4 }).map((steps) => steps * 500),
        fc.integer({ min: -2, max: 2 }).map((ms) => MAX_CLOCK_SKEW_MS + ms),
      ),
    ),
    short: fc.boolean(),
    action: fc.constantFrom('trade', 'fight', 'constructor', '__proto__', 'toString'),
    context: jsonObject(['item', 'npc', 'where']),
  })
  .map(({ now, offset, short, action, context }) => ({
    type: 'player.record_action',
    data: { playerId: PLAYER, action, context, at: offset === null ? null : isoAt(now + offset, short) },
    metadata: metadata(isoAt(now, short)),
  }));
const playerCommand: fc.Arbitrary<PlayerCommand> = fc.oneof(
  recordAction,
  fc.record({
    type: fc.constant('player.change_relationship' as const),
    data: fc.record({
      playerId: fc.constant(PLAYER),
      targetId: fc.constantFrom(uuid(51), uuid(52), uuid(53)),
      delta: fc.oneof(
        fc.integer({ min: -150, max: 150 }),
        fc.constantFrom(Number.MAX_SAFE_INTEGER, -Number.MAX_SAFE_INTEGER, 0.5),
      ),
      reason: fc.option(fc.string()),
    }),
    metadata: meta,
  }),
  fc.record({
    type: fc.constant('player.set_profile' as const),
    data: fc.record({
      playerId: fc.constant(PLAYER),
      displayName: fc.string({ minLength: 1 }),
      email: fc.option(fc.emailAddress()),
      locale: fc.option(fc.constantFrom('en-GB', 'fr-FR')),
    }),
    metadata: meta,
  }),
);

// ── narrative ────────────────────────────────────────────────────────────────
const narrativeCommand: fc.Arbitrary<NarrativeCommand> = fc.oneof(
  fc.record({
    type: fc.constant('narrative.advance_plot' as const),
    data: fc.record({
      plotId: fc.constantFrom('dragon-hunt', 'lost-ring', '__proto__'),
      stage: fc.constantFrom('start', 'middle', 'end'),
      choices: fc.option(jsonObject(['spared', 'paid'])),
    }),
    metadata: meta,
  }),
  fc.record({
    type: fc.constant('narrative.set_flag' as const),
    data: fc.record({
      flag: fc.constantFrom('gate.open', 'count', 'constructor', '__proto__'),
      value: fc.oneof(fc.constantFrom<JsonValue>(true, false, null, 1, {}), json),
    }),
    metadata: meta,
  }),
);

describe('decide → evolve over random command sequences', () => {
  it('entity: replays deterministically, through JSON too; a despawned entity stays despawned', () =>
    replays(entityDecider, commands(entityCommand), ({ states, events, accepted }) => {
      for (const { command, after } of accepted) {
        if (command.type === 'entity.move') expect(after).toMatchObject({ status: 'active', locationId: command.data.locationId });
      }
      const firstDespawn = states.findIndex((state) => state.status === 'despawned');
      if (firstDespawn >= 0) expect(states.slice(firstDespawn).every((state) => state.status === 'despawned')).toBe(true);
      const last = states[states.length - 1];
      if (last.status !== 'unspawned') expect(last.memoryCount).toBe(events.filter((event) => event.type === 'NpcMemoryRecorded').length);
    }));

  it('world: replays deterministically, through JSON too; time never decreases and stays a safe integer', () =>
    replays(worldDecider, commands(worldCommand), ({ states, accepted }) => {
      for (const { command, after } of accepted) {
        if (command.type === 'world.set_weather') {
          const { weather, regionId } = command.data;
          expect(regionId ? ownValue(after.weather.regions, regionId) : after.weather.global).toBe(weather);
        }
        if (command.type === 'world.set_faction_standing') {
          const { factionId, otherFactionId, standing } = command.data;
          expect(after.factions[factionId]?.[otherFactionId]).toBe(standing);
        }
      }
      states.reduce((previous: WorldState, state) => {
        expect(state.time).toBeGreaterThanOrEqual(previous.time);
        expect(Number.isSafeInteger(state.time)).toBe(true);
        return state;
      });
      for (const state of states) for (const towards of Object.values(state.factions)) for (const value of Object.values(towards)) {
        expect(value).toBeGreaterThanOrEqual(STANDING_MIN);
        expect(value).toBeLessThanOrEqual(STANDING_MAX);
      }
    }));

  it('player: replays deterministically, through JSON too; relationships stay in −100…100; counters and clock add up', () =>
    replays(playerDecider, commands(playerCommand), ({ states, events, accepted }) => {
      for (const { command } of accepted) {
        if (command.type === 'player.record_action' && command.data.at) {
          expect(Date.parse(command.data.at) - Date.parse(command.metadata.now)).toBeLessThanOrEqual(MAX_CLOCK_SKEW_MS);
        }
      }
      for (const state of states) for (const value of Object.values(state.relationships)) {
        expect(Number.isInteger(value)).toBe(true);
        expect(value).toBeGreaterThanOrEqual(STANDING_MIN);
        expect(value).toBeLessThanOrEqual(STANDING_MAX);
      }
      const last: PlayerState = states[states.length - 1];
      const actions = events.flatMap((event) => (event.type === 'PlayerActionRecorded' ? [event.data] : []));
      expect(last.counters.actions).toBe(actions.length);
      expect(Object.values(last.counters.byAction).reduce((sum, n) => sum + n, 0)).toBe(actions.length);
      const latest = actions.reduce<number | null>((max, { at }) => (max === null ? Date.parse(at) : Math.max(max, Date.parse(at))), null);
      expect(last.lastActionAt === null ? null : Date.parse(last.lastActionAt)).toBe(latest);
    }));

  it('narrative: replays deterministically, through JSON too; plots and flags end where the last command put them', () =>
    replays(narrativeDecider, commands(narrativeCommand), ({ state, events, accepted }) => {
      for (const { command, after } of accepted) {
        // own properties only: `flags.constructor` must be the flag, not Object
        if (command.type === 'narrative.set_flag') expect(ownValue(after.flags, command.data.flag)).toEqual(command.data.value);
        else expect(ownValue(after.plots, command.data.plotId)?.stage).toBe(command.data.stage);
      }
      const plotEvents = events.filter((event) => event.type === 'PlotAdvanced');
      expect(Object.values(state.plots).reduce((sum, plot) => sum + plot.history.length, 0)).toBe(plotEvents.length);
      for (const plot of Object.values(state.plots)) expect(plot.history[plot.history.length - 1].stage).toBe(plot.stage);
    }));
});
