import { fold } from './decider';
import { MAX_CLOCK_SKEW_MS, playerDecider, type PlayerEvent } from './player';
import { DeciderSpecification, metadata, T0, T1, T2 } from './testing/decider-spec';

const spec = DeciderSpecification.for(playerDecider);

const PLAYER = 'a1b2c3d4-0000-4000-8000-0000000000a1';
const BLACKSMITH = 'a1b2c3d4-0000-4000-8000-0000000000b1';
const INNKEEPER = 'a1b2c3d4-0000-4000-8000-0000000000b2';

const plus = (iso: string, ms: number) => new Date(Date.parse(iso) + ms).toISOString();

const actionRecorded = (action: string, at: string, recordedAt = at): PlayerEvent => ({
  type: 'PlayerActionRecorded',
  data: { playerId: PLAYER, action, context: {}, at, recordedAt },
});
const relationship = (targetId: string, from: number, to: number, delta = to - from): PlayerEvent => ({
  type: 'PlayerRelationshipChanged',
  data: { playerId: PLAYER, targetId, delta, from, to, reason: null, at: T0 },
});

describe('player.record_action', () => {
  const record = (data: { action?: string; at?: string | null }, now = T1) =>
    ({
      type: 'player.record_action',
      data: { playerId: PLAYER, action: data.action ?? 'trade', context: { item: 'sword' }, at: data.at },
      metadata: metadata(now),
    }) as const;

  it('stamps the action with metadata.now when no time is given', () =>
    spec
      .given([])
      .when(record({}))
      .then([{ type: 'PlayerActionRecorded', data: { playerId: PLAYER, action: 'trade', context: { item: 'sword' }, at: T1, recordedAt: T1 } }]));

  it('keeps a past action time and records when it was received', () =>
    spec
      .given([])
      .when(record({ at: T0 }))
      .then([{ type: 'PlayerActionRecorded', data: { playerId: PLAYER, action: 'trade', context: { item: 'sword' }, at: T0, recordedAt: T1 } }]));

  it('accepts an action exactly MAX_CLOCK_SKEW_MS ahead', () => {
    const at = plus(T1, MAX_CLOCK_SKEW_MS);
    spec
      .given([])
      .when(record({ at }))
      .then([{ type: 'PlayerActionRecorded', data: { playerId: PLAYER, action: 'trade', context: { item: 'sword' }, at, recordedAt: T1 } }]);
  });

  it('refuses an action further in the future than MAX_CLOCK_SKEW_MS', () =>
    spec.given([]).when(record({ at: plus(T1, MAX_CLOCK_SKEW_MS + 1) })).thenThrows('out_of_range'));

  it('counts actions in total and per action, and tracks the latest action time', () =>
    expect(fold(playerDecider, [actionRecorded('trade', T0), actionRecorded('fight', T1), actionRecorded('trade', T2)])).toMatchObject({
      playerId: PLAYER,
      counters: { actions: 3, byAction: { trade: 2, fight: 1 }, relationshipChanges: 0 },
      lastActionAt: T2,
    }));

  it('does not move lastActionAt back for an action reported late', () =>
    expect(fold(playerDecider, [actionRecorded('trade', T2), actionRecorded('fight', T0, T2)]).lastActionAt).toBe(T2));

  it('compares action times as instants, not as strings', () => {
    // Both valid ISO-8601; as strings '…00Z' sorts after '…00.500Z' although it is earlier.
    const later = '2025-03-01T12:00:00.500Z';
    expect(fold(playerDecider, [actionRecorded('trade', later), actionRecorded('fight', '2025-03-01T12:00:00Z', later)]).lastActionAt).toBe(later);
  });

  it.each(['constructor', '__proto__', 'toString', 'hasOwnProperty'])('counts an action named %p like any other', (action) => {
    const state = fold(playerDecider, [actionRecorded(action, T0), actionRecorded(action, T1)]);
    expect(Object.getOwnPropertyDescriptor(state.counters.byAction, action)?.value).toBe(2);
  });
});

describe('player.change_relationship', () => {
  const change = (delta: number, targetId = BLACKSMITH, reason?: string) =>
    ({ type: 'player.change_relationship', data: { playerId: PLAYER, targetId, delta, reason }, metadata: metadata(T0) }) as const;

  it('starts a relationship from 0', () => spec.given([]).when(change(15)).then([relationship(BLACKSMITH, 0, 15)]));

  it('keeps the reason', () =>
    spec
      .given([])
      .when(change(-5, BLACKSMITH, 'stole a hammer'))
      .then([
        {
          type: 'PlayerRelationshipChanged',
          data: { playerId: PLAYER, targetId: BLACKSMITH, delta: -5, from: 0, to: -5, reason: 'stole a hammer', at: T0 },
        },
      ]));

  it('clamps at 100 and carries from/to: 90 + 50 → 100', () =>
    spec.given([relationship(BLACKSMITH, 0, 90)]).when(change(50)).then([relationship(BLACKSMITH, 90, 100, 50)]));

  it('clamps at -100: -80 - 50 → -100', () =>
    spec.given([relationship(BLACKSMITH, 0, -80)]).when(change(-50)).then([relationship(BLACKSMITH, -80, -100, -50)]));

  it('clamps a huge delta', () =>
    spec.given([]).when(change(Number.MAX_SAFE_INTEGER)).then([relationship(BLACKSMITH, 0, 100, Number.MAX_SAFE_INTEGER)]));

  it('keeps each target separate', () =>
    spec.given([relationship(BLACKSMITH, 0, 90)]).when(change(10, INNKEEPER)).then([relationship(INNKEEPER, 0, 10)]));

  it('reads only relationships already set, even for a target named like an Object.prototype key', () =>
    spec.given([]).when(change(5, 'constructor')).then([relationship('constructor', 0, 5)]));

  it.each([1.5, Number.NaN, Number.POSITIVE_INFINITY, Number.MAX_SAFE_INTEGER + 1])('refuses delta = %p', (delta) =>
    spec.given([]).when(change(delta)).thenThrows('out_of_range'));

  it('evolves relationships from the clamped value the event carries, and counts changes', () =>
    expect(
      fold(playerDecider, [relationship(BLACKSMITH, 0, 90), relationship(BLACKSMITH, 90, 100, 50), relationship(INNKEEPER, 0, -3)]),
    ).toMatchObject({
      playerId: PLAYER,
      relationships: { [BLACKSMITH]: 100, [INNKEEPER]: -3 },
      counters: { actions: 0, relationshipChanges: 3 },
    }));
});

describe('player.set_profile', () => {
  it('sets a profile with optional fields defaulting to null', () =>
    spec
      .given([])
      .when({ type: 'player.set_profile', data: { playerId: PLAYER, displayName: 'Ayla' }, metadata: metadata(T0) })
      .then([{ type: 'PlayerProfileSet', data: { playerId: PLAYER, displayName: 'Ayla', email: null, locale: null, at: T0 } }]));

  it('keeps email and locale', () =>
    spec
      .given([])
      .when({
        type: 'player.set_profile',
        data: { playerId: PLAYER, displayName: 'Ayla', email: 'ayla@example.com', locale: 'fr-FR' },
        metadata: metadata(T0),
      })
      .then([{ type: 'PlayerProfileSet', data: { playerId: PLAYER, displayName: 'Ayla', email: 'ayla@example.com', locale: 'fr-FR', at: T0 } }]));

  it('evolves to the latest profile', () => {
    const state = fold(playerDecider, [
      { type: 'PlayerProfileSet', data: { playerId: PLAYER, displayName: 'Ayla', email: 'ayla@example.com', locale: 'fr-FR', at: T0 } },
      { type: 'PlayerProfileSet', data: { playerId: PLAYER, displayName: 'Ayla the Bold', email: null, locale: 'en-GB', at: T1 } },
    ]);
    expect(state).toMatchObject({ playerId: PLAYER, profile: { displayName: 'Ayla the Bold', email: null, locale: 'en-GB' } });
  });
});

it('starts with no player, relationships, counters or profile', () =>
  expect(playerDecider.initialState()).toStrictEqual({
    playerId: null,
    relationships: {},
    counters: { actions: 0, byAction: {}, relationshipChanges: 0 },
    profile: null,
    lastActionAt: null,
  }));
