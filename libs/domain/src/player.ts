import { setOwn, type Command, type Decider, type Event, type JsonObject } from './decider';
import { STANDING_MAX, STANDING_MIN } from './world';
import { refuse } from './refusal';
import type { StreamRolledBack } from './rollback';

export type RecordPlayerAction = Command<
  'player.record_action',
  { playerId: string; action: string; context: JsonObject; at?: string | null }
>;
export type ChangeRelationship = Command<
  'player.change_relationship',
  { playerId: string; targetId: string; delta: number; reason?: string | null }
>;
export type SetPlayerProfile = Command<
  'player.set_profile',
  { playerId: string; displayName: string; email?: string | null; locale?: string | null }
>;
export type PlayerCommand = RecordPlayerAction | ChangeRelationship | SetPlayerProfile;

export type PlayerActionRecorded = Event<
  'PlayerActionRecorded',
  { playerId: string; action: string; context: JsonObject; at: string; recordedAt: string }
>;
export type PlayerRelationshipChanged = Event<
  'PlayerRelationshipChanged',
  { playerId: string; targetId: string; delta: number; from: number; to: number; reason: string | null; at: string }
>;
export type PlayerProfileSet = Event<
  'PlayerProfileSet',
  { playerId: string; displayName: string; email: string | null; locale: string | null; at: string }
>;
export type PlayerEvent = PlayerActionRecorded | PlayerRelationshipChanged | PlayerProfileSet | StreamRolledBack<PlayerState>;

export type PlayerState = {
  playerId: string | null;
  /** relationships[targetId] ∈ −100…100 */
  relationships: Record<string, number>;
  counters: { actions: number; byAction: Record<string, number>; relationshipChanges: number };
  profile: { displayName: string; email: string | null; locale: string | null } | null;
  lastActionAt: string | null;
  /** Set by the read model when the player is erased (see erasePlayerState); never by `evolve`. */
  erasedAt?: string;
};

/** How far in the future a game server's clock may put an action before we call it a mistake. */
export const MAX_CLOCK_SKEW_MS = 5 * 60 * 1000;

/** Reads only own keys, so ids or actions like `constructor` or `__proto__` never hit Object.prototype. */
const own = <T>(record: Record<string, T>, key: string): T | undefined => (Object.hasOwn(record, key) ? record[key] : undefined);

export const clampStanding = (value: number): number => Math.min(STANDING_MAX, Math.max(STANDING_MIN, value));

export const decidePlayer = (command: PlayerCommand, state: PlayerState): PlayerEvent[] => {
  const now = command.metadata.now;
  switch (command.type) {
    case 'player.record_action': {
      const { playerId, action, context } = command.data;
      const actionAt = command.data.at ?? now;
      if (Date.parse(actionAt) - Date.parse(now) > MAX_CLOCK_SKEW_MS) {
        return refuse('out_of_range', `action time ${actionAt} is in the future (now ${now})`);
      }
      return [{ type: 'PlayerActionRecorded', data: { playerId, action, context, at: actionAt, recordedAt: now } }];
    }
    case 'player.change_relationship': {
      const { playerId, targetId, delta } = command.data;
      if (!Number.isSafeInteger(delta)) return refuse('out_of_range', 'delta must be an integer');
      const from = own(state.relationships, targetId) ?? 0;
      const to = clampStanding(from + delta);
      return [
        {
          type: 'PlayerRelationshipChanged',
          data: { playerId, targetId, delta, from, to, reason: command.data.reason ?? null, at: now },
        },
      ];
    }
    case 'player.set_profile': {
      const { playerId, displayName } = command.data;
      return [
        {
          type: 'PlayerProfileSet',
          data: { playerId, displayName, email: command.data.email ?? null, locale: command.data.locale ?? null, at: now },
        },
      ];
    }
    default: {
      const _exhaustive: never = command;
      return _exhaustive;
    }
  }
};

export const evolvePlayer = (state: PlayerState, event: PlayerEvent): PlayerState => {
  switch (event.type) {
    case 'PlayerActionRecorded': {
      const { action, at } = event.data;
      return {
        ...state,
        playerId: event.data.playerId,
        counters: {
          ...state.counters,
          actions: state.counters.actions + 1,
          byAction: { ...state.counters.byAction, [action]: (own(state.counters.byAction, action) ?? 0) + 1 },
        },
        // Compared as instants: as strings, '12:00:00Z' sorts after the later '12:00:00.500Z'.
        lastActionAt: state.lastActionAt === null || Date.parse(at) > Date.parse(state.lastActionAt) ? at : state.lastActionAt,
      };
    }
    case 'PlayerRelationshipChanged':
      return {
        ...state,
        playerId: event.data.playerId,
        // The event carries the clamped result, so replay never depends on arithmetic done again.
        relationships: { ...state.relationships, [event.data.targetId]: clampStanding(event.data.to) },
        counters: { ...state.counters, relationshipChanges: state.counters.relationshipChanges + 1 },
      };
    case 'PlayerProfileSet':
      return {
        ...state,
        playerId: event.data.playerId,
        profile: { displayName: event.data.displayName, email: event.data.email, locale: event.data.locale },
      };
    case 'StreamRolledBack':
      return event.data.state;
    default: {
      const _exhaustive: never = event;
      return _exhaustive;
    }
  }
};

/** `evolvePlayer` on a state the caller owns: the counters and relationships change where they are. */
export const evolvePlayerInPlace = (state: PlayerState, event: PlayerEvent): PlayerState => {
  switch (event.type) {
    case 'PlayerActionRecorded': {
      const { action, at } = event.data;
      state.playerId = event.data.playerId;
      const counters = state.counters;
      counters.actions += 1;
      setOwn(counters.byAction, action, (own(counters.byAction, action) ?? 0) + 1);
      if (state.lastActionAt === null || Date.parse(at) > Date.parse(state.lastActionAt)) state.lastActionAt = at;
      return state;
    }
    case 'PlayerRelationshipChanged':
      state.playerId = event.data.playerId;
      setOwn(state.relationships, event.data.targetId, clampStanding(event.data.to));
      state.counters.relationshipChanges += 1;
      return state;
    case 'PlayerProfileSet':
      state.playerId = event.data.playerId;
      state.profile = { displayName: event.data.displayName, email: event.data.email, locale: event.data.locale };
      return state;
    case 'StreamRolledBack':
      // Rare: a copy, so the state is the caller's and not the event's.
      return structuredClone(event.data.state);
    default: {
      const _exhaustive: never = event;
      return _exhaustive;
    }
  }
};

export const playerDecider: Decider<PlayerState, PlayerCommand, PlayerEvent> = {
  decide: decidePlayer,
  evolve: evolvePlayer,
  evolveInPlace: evolvePlayerInPlace,
  initialState: () => ({
    playerId: null,
    relationships: {},
    counters: { actions: 0, byAction: {}, relationshipChanges: 0 },
    profile: null,
    lastActionAt: null,
  }),
};
