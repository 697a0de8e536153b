import { fold, type JsonObject, type JsonValue } from './decider';
import { narrativeDecider, type NarrativeEvent } from './narrative';
import { DeciderSpecification, metadata, T0, T1, T2 } from './testing/decider-spec';

const spec = DeciderSpecification.for(narrativeDecider);

const advanced = (plotId: string, from: string | null, stage: string, at = T0, choices: JsonObject | null = null): NarrativeEvent => ({
  type: 'PlotAdvanced',
  data: { plotId, from, stage, choices, at },
});
const flagSet = (flag: string, value: JsonValue, at = T0): NarrativeEvent => ({ type: 'NarrativeFlagSet', data: { flag, value, at } });

describe('narrative.advance_plot', () => {
  it('starts a plot at its first stage (from: null)', () =>
    spec
      .given([])
      .when({ type: 'narrative.advance_plot', data: { plotId: 'dragon-hunt', stage: 'rumour' }, metadata: metadata(T0) })
      .then([advanced('dragon-hunt', null, 'rumour')]));

  it('advances from the current stage and keeps the choices', () =>
    spec
      .given([advanced('dragon-hunt', null, 'rumour')])
      .when({ type: 'narrative.advance_plot', data: { plotId: 'dragon-hunt', stage: 'lair', choices: { sparedEgg: true } }, metadata: metadata(T1) })
      .then([advanced('dragon-hunt', 'rumour', 'lair', T1, { sparedEgg: true })]));

  it('refuses to advance a plot to the stage it is already at', () =>
    spec
      .given([advanced('dragon-hunt', null, 'rumour')])
      .when({ type: 'narrative.advance_plot', data: { plotId: 'dragon-hunt', stage: 'rumour' }, metadata: metadata(T1) })
      .thenThrows('invalid_transition'));

  it('allows returning to an earlier stage (plots may loop)', () =>
    spec
      .given([advanced('dragon-hunt', null, 'rumour'), advanced('dragon-hunt', 'rumour', 'lair', T1)])
      .when({ type: 'narrative.advance_plot', data: { plotId: 'dragon-hunt', stage: 'rumour' }, metadata: metadata(T2) })
      .then([advanced('dragon-hunt', 'lair', 'rumour', T2)]));

  it('keeps plots separate', () =>
    spec
      .given([advanced('dragon-hunt', null, 'rumour')])
      .when({ type: 'narrative.advance_plot', data: { plotId: 'lost-ring', stage: 'rumour' }, metadata: metadata(T1) })
      .then([advanced('lost-ring', null, 'rumour', T1)]));

  it.each(['constructor', '__proto__', 'toString'])('treats a plot named %p like any other', (plotId) =>
    spec
      .given([])
      .when({ type: 'narrative.advance_plot', data: { plotId, stage: 'start' }, metadata: metadata(T0) })
      .then([advanced(plotId, null, 'start')]));

  it('evolves the current stage and the full history in order', () =>
    expect(
      fold(narrativeDecider, [
        advanced('dragon-hunt', null, 'rumour'),
        advanced('lost-ring', null, 'tavern', T1),
        advanced('dragon-hunt', 'rumour', 'lair', T2, { sparedEgg: true }),
      ]).plots,
    ).toStrictEqual({
      'dragon-hunt': {
        stage: 'lair',
        history: [
          { stage: 'rumour', choices: null, at: T0 },
          { stage: 'lair', choices: { sparedEgg: true }, at: T2 },
        ],
      },
      'lost-ring': { stage: 'tavern', history: [{ stage: 'tavern', choices: null, at: T1 }] },
    }));
});

describe('narrative.set_flag', () => {
  const setFlag = (flag: string, value: JsonValue) => ({ type: 'narrative.set_flag', data: { flag, value }, metadata: metadata(T1) }) as const;

  it('sets a new flag', () => spec.given([]).when(setFlag('gate.open', true)).then([flagSet('gate.open', true, T1)]));

  it('sets a new flag to null (absent is not the same as null)', () =>
    spec.given([]).when(setFlag('gate.open', null)).then([flagSet('gate.open', null, T1)]));

  it('produces nothing when the flag already has that value', () =>
    spec.given([flagSet('gate.open', true)]).when(setFlag('gate.open', true)).thenNothing());

  it('compares structured values by content', () =>
    spec.given([flagSet('party', { size: 3, names: ['a', 'b'] })]).when(setFlag('party', { size: 3, names: ['a', 'b'] })).thenNothing());

  it('changes a flag to a different value', () =>
    spec.given([flagSet('gate.open', true)]).when(setFlag('gate.open', false)).then([flagSet('gate.open', false, T1)]));

  it('distinguishes 1 from "1"', () => spec.given([flagSet('count', 1)]).when(setFlag('count', '1')).then([flagSet('count', '1', T1)]));

  it.each(['constructor', '__proto__', 'toString'])('sets a new flag named %p even to {}', (flag) =>
    spec.given([]).when(setFlag(flag, {})).then([flagSet(flag, {}, T1)]));

  it('evolves flags to their latest values', () =>
    expect(fold(narrativeDecider, [flagSet('gate.open', true), flagSet('count', 2), flagSet('gate.open', false, T2)]).flags).toStrictEqual({
      'gate.open': false,
      count: 2,
    }));
});

it('starts with no plots and no flags', () => expect(narrativeDecider.initialState()).toStrictEqual({ plots: {}, flags: {} }));
