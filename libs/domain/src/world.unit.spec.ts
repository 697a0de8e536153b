import { fold } from './decider';
import { DeciderSpecification, metadata, T0, T1, T2 } from './testing/decider-spec';
import { worldDecider, type WorldEvent } from './world';

const spec = DeciderSpecification.for(worldDecider);

const ELVES = '7d2a0c4e-1f3b-4a5d-8e6f-000000000e01';
const DWARVES = '7d2a0c4e-1f3b-4a5d-8e6f-000000000e02';

const advanced = (from: number, to: number, at = T0): WorldEvent => ({ type: 'WorldTimeAdvanced', data: { ticks: to - from, from, to, at } });
const weather = (value: string, regionId: string | null = null, at = T0): WorldEvent => ({
  type: 'WeatherChanged',
  data: { weather: value, regionId, at },
});
const standing = (factionId: string, otherFactionId: string, value: number, at = T0): WorldEvent => ({
  type: 'FactionStandingSet',
  data: { factionId, otherFactionId, standing: value, at },
});

describe('world.advance_time', () => {
  it('advances time from zero', () =>
    spec.given([]).when({ type: 'world.advance_time', data: { ticks: 10 }, metadata: metadata(T0) }).then([advanced(0, 10)]));

  it('advances from the current time', () =>
    spec
      .given([advanced(0, 10)])
      .when({ type: 'world.advance_time', data: { ticks: 5 }, metadata: metadata(T1) })
      .then([advanced(10, 15, T1)]));

  it('refuses to overflow the world clock', () =>
    spec
      .given([advanced(0, Number.MAX_SAFE_INTEGER - 5)])
      .when({ type: 'world.advance_time', data: { ticks: 10 }, metadata: metadata(T1) })
      .thenThrows('out_of_range'));

  it('accepts advancing exactly to the largest safe tick', () =>
    spec
      .given([advanced(0, Number.MAX_SAFE_INTEGER - 5)])
      .when({ type: 'world.advance_time', data: { ticks: 5 }, metadata: metadata(T1) })
      .then([advanced(Number.MAX_SAFE_INTEGER - 5, Number.MAX_SAFE_INTEGER, T1)]));

  it.each([0, -1, 1.5, Number.NaN, Number.POSITIVE_INFINITY, Number.MAX_SAFE_INTEGER + 1])('refuses ticks = %p', (ticks) =>
    spec.given([]).when({ type: 'world.advance_time', data: { ticks }, metadata: metadata(T0) }).thenThrows('invalid_transition'));

  it('evolves time to the event target', () => expect(fold(worldDecider, [advanced(0, 10), advanced(10, 25)]).time).toBe(25));

  it('never moves time backwards, even on an out-of-order event', () =>
    expect(fold(worldDecider, [advanced(0, 25), advanced(0, 10)]).time).toBe(25));
});

describe('world.set_weather', () => {
  it('sets the global weather', () =>
    spec.given([]).when({ type: 'world.set_weather', data: { weather: 'rain' }, metadata: metadata(T0) }).then([weather('rain')]));

  it('produces nothing when the global weather is already that', () =>
    spec
      .given([weather('rain')])
      .when({ type: 'world.set_weather', data: { weather: 'rain', regionId: null }, metadata: metadata(T1) })
      .thenNothing());

  it('changes the global weather', () =>
    spec
      .given([weather('rain')])
      .when({ type: 'world.set_weather', data: { weather: 'fog' }, metadata: metadata(T1) })
      .then([weather('fog', null, T1)]));

  it('sets the weather of a region independently of the global weather', () =>
    spec
      .given([weather('rain')])
      .when({ type: 'world.set_weather', data: { weather: 'rain', regionId: 'north' }, metadata: metadata(T1) })
      .then([weather('rain', 'north', T1)]));

  it('produces nothing when the region already has that weather', () =>
    spec
      .given([weather('snow', 'north')])
      .when({ type: 'world.set_weather', data: { weather: 'snow', regionId: 'north' }, metadata: metadata(T1) })
      .thenNothing());

  it('treats regions separately', () =>
    spec
      .given([weather('snow', 'north')])
      .when({ type: 'world.set_weather', data: { weather: 'snow', regionId: 'south' }, metadata: metadata(T1) })
      .then([weather('snow', 'south', T1)]));

  it('evolves global and regional weather', () =>
    expect(fold(worldDecider, [weather('rain'), weather('snow', 'north'), weather('sun', 'south'), weather('fog', 'north')]).weather).toStrictEqual({
      global: 'rain',
      regions: { north: 'fog', south: 'sun' },
    }));
});

describe('world.set_faction_standing', () => {
  const command = (value: number, factionId = ELVES, otherFactionId = DWARVES) =>
    ({ type: 'world.set_faction_standing', data: { factionId, otherFactionId, standing: value }, metadata: metadata(T1) }) as const;

  it('sets a standing', () => spec.given([]).when(command(-40)).then([standing(ELVES, DWARVES, -40, T1)]));

  it.each([-100, 100])('accepts the bound %p', (value) => spec.given([]).when(command(value)).then([standing(ELVES, DWARVES, value, T1)]));

  it.each([-101, 101, 2.5, Number.NaN])('refuses standing = %p', (value) => spec.given([]).when(command(value)).thenThrows('out_of_range'));

  it('refuses a standing of a faction towards itself', () => spec.given([]).when(command(10, ELVES, ELVES)).thenThrows('invalid_transition'));

  it('produces nothing when the standing is unchanged', () => spec.given([standing(ELVES, DWARVES, 30)]).when(command(30)).thenNothing());

  it('is directional: the reverse standing is a separate value', () =>
    spec.given([standing(ELVES, DWARVES, 30)]).when(command(30, DWARVES, ELVES)).then([standing(DWARVES, ELVES, 30, T1)]));

  it('evolves standings per ordered pair', () =>
    expect(
      fold(worldDecider, [standing(ELVES, DWARVES, 30), standing(DWARVES, ELVES, -5), standing(ELVES, DWARVES, 60, T2)]).factions,
    ).toStrictEqual({
      [ELVES]: { [DWARVES]: 60 },
      [DWARVES]: { [ELVES]: -5 },
    }));
});

it('starts at time 0 with no weather and no factions', () =>
  expect(worldDecider.initialState()).toStrictEqual({ time: 0, weather: { global: null, regions: {} }, factions: {} }));
