import type { Command, Decider, Event, JsonObject, JsonValue } from './decider';
import { refuse } from './refusal';
import type { StreamRolledBack } from './rollback';

export type AdvancePlot = Command<'narrative.advance_plot', { plotId: string; stage: string; choices?: JsonObject | null }>;
export type SetFlag = Command<'narrative.set_flag', { flag: string; value: JsonValue }>;
export type NarrativeCommand = AdvancePlot | SetFlag;

export type PlotAdvanced = Event<
  'PlotAdvanced',
  { plotId: string; from: string | null; stage: string; choices: JsonObject | null; at: string }
>;
export type NarrativeFlagSet = Event<'NarrativeFlagSet', { flag: string; value: JsonValue; at: string }>;
export type NarrativeEvent = PlotAdvanced | NarrativeFlagSet | StreamRolledBack<NarrativeState>;

export type PlotStep = { stage: string; choices: JsonObject | null; at: string };
export type NarrativeState = {
  plots: Record<string, { stage: string; history: PlotStep[] }>;
  flags: Record<string, JsonValue>;
};

const sameJson = (a: JsonValue, b: JsonValue): boolean => JSON.stringify(a) === JSON.stringify(b);

export const decideNarrative = (command: NarrativeCommand, state: NarrativeState): NarrativeEvent[] => {
  const at = command.metadata.now;
  switch (command.type) {
    case 'narrative.advance_plot': {
      const { plotId, stage } = command.data;
      const current = state.plots[plotId]?.stage ?? null;
      if (current === stage) return refuse('invalid_transition', `plot ${plotId} is already at stage ${stage}`);
      return [{ type: 'PlotAdvanced', data: { plotId, from: current, stage, choices: command.data.choices ?? null, at } }];
    }
    case 'narrative.set_flag': {
      const { flag, value } = command.data;
      if (Object.hasOwn(state.flags, flag) && sameJson(state.flags[flag]!, value)) return [];
      return [{ type: 'NarrativeFlagSet', data: { flag, value, at } }];
    }
    default: {
      const _exhaustive: never = command;
      return _exhaustive;
    }
  }
};

export const evolveNarrative = (state: NarrativeState, event: NarrativeEvent): NarrativeState => {
  switch (event.type) {
    case 'PlotAdvanced': {
      const { plotId, stage, choices, at } = event.data;
      const history = state.plots[plotId]?.history ?? [];
      return { ...state, plots: { ...state.plots, [plotId]: { stage, history: [...history, { stage, choices, at }] } } };
    }
    case 'NarrativeFlagSet':
      return { ...state, flags: { ...state.flags, [event.data.flag]: event.data.value } };
    case 'StreamRolledBack':
      return event.data.state;
    default: {
      const _exhaustive: never = event;
      return _exhaustive;
    }
  }
};

export const narrativeDecider: Decider<NarrativeState, NarrativeCommand, NarrativeEvent> = {
  decide: decideNarrative,
  evolve: evolveNarrative,
  initialState: () => ({ plots: {}, flags: {} }),
};
