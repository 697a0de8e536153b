import type { Command, Decider, Event } from './decider';
import { refuse } from './refusal';
import type { StreamRolledBack } from './rollback';

export type AdvanceTime = Command<'world.advance_time', { ticks: number }>;
export type SetWeather = Command<'world.set_weather', { weather: string; regionId?: string | null }>;
export type SetFactionStanding = Command<
  'world.set_faction_standing',
  { factionId: string; otherFactionId: string; standing: number }
>;
export type WorldCommand = AdvanceTime | SetWeather | SetFactionStanding;

export type WorldTimeAdvanced = Event<'WorldTimeAdvanced', { ticks: number; from: number; to: number; at: string }>;
export type WeatherChanged = Event<'WeatherChanged', { weather: string; regionId: string | null; at: string }>;
export type FactionStandingSet = Event<
  'FactionStandingSet',
  { factionId: string; otherFactionId: string; standing: number; at: string }
>;
export type WorldEvent = WorldTimeAdvanced | WeatherChanged | FactionStandingSet | StreamRolledBack<WorldState>;

export type WorldState = {
  /** Game time in ticks; only ever moves forward. */
  time: number;
  weather: { global: string | null; regions: Record<string, string> };
  /** factions[a][b] is how faction a stands towards faction b (−100…100). */
  factions: Record<string, Record<string, number>>;
};

export const STANDING_MIN = -100;
export const STANDING_MAX = 100;

export const decideWorld = (command: WorldCommand, state: WorldState): WorldEvent[] => {
  const at = command.metadata.now;
  switch (command.type) {
    case 'world.advance_time': {
      const { ticks } = command.data;
      if (!Number.isSafeInteger(ticks) || ticks <= 0) return refuse('invalid_transition', 'time only moves forward: ticks must be a positive integer');
      const to = state.time + ticks;
      if (!Number.isSafeInteger(to)) return refuse('out_of_range', `advancing ${ticks} ticks from ${state.time} overflows the world clock`);
      return [{ type: 'WorldTimeAdvanced', data: { ticks, from: state.time, to, at } }];
    }
    case 'world.set_weather': {
      const regionId = command.data.regionId ?? null;
      const current = regionId === null ? state.weather.global : (state.weather.regions[regionId] ?? null);
      if (current === command.data.weather) return [];
      return [{ type: 'WeatherChanged', data: { weather: command.data.weather, regionId, at } }];
    }
    case 'world.set_faction_standing': {
      const { factionId, otherFactionId, standing } = command.data;
      if (factionId === otherFactionId) return refuse('invalid_transition', 'a faction has no standing towards itself');
      if (!Number.isInteger(standing) || standing < STANDING_MIN || standing > STANDING_MAX) {
        return refuse('out_of_range', `standing must be an integer in ${STANDING_MIN}…${STANDING_MAX}`);
      }
      if (state.factions[factionId]?.[otherFactionId] === standing) return [];
      return [{ type: 'FactionStandingSet', data: { factionId, otherFactionId, standing, at } }];
    }
    default: {
      const _exhaustive: never = command;
      return _exhaustive;
    }
  }
};

export const evolveWorld = (state: WorldState, event: WorldEvent): WorldState => {
  switch (event.type) {
    case 'WorldTimeAdvanced':
      return { ...state, time: Math.max(state.time, event.data.to) };
    case 'WeatherChanged':
      return event.data.regionId === null
        ? { ...state, weather: { ...state.weather, global: event.data.weather } }
        : { ...state, weather: { ...state.weather, regions: { ...state.weather.regions, [event.data.regionId]: event.data.weather } } };
    case 'FactionStandingSet': {
      const { factionId, otherFactionId, standing } = event.data;
      return {
        ...state,
        factions: { ...state.factions, [factionId]: { ...state.factions[factionId], [otherFactionId]: standing } },
      };
    }
    // The one way world time goes back: an admin's rollback.
    case 'StreamRolledBack':
      return event.data.state;
    default: {
      const _exhaustive: never = event;
      return _exhaustive;
    }
  }
};

export const worldDecider: Decider<WorldState, WorldCommand, WorldEvent> = {
  decide: decideWorld,
  evolve: evolveWorld,
  initialState: () => ({ time: 0, weather: { global: null, regions: {} }, factions: {} }),
};
