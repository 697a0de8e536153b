/**
 * The whole contract of an aggregate, after Emmett's `Decider`:
 * pure functions, no I/O, no clock, no randomness.
 */
export type Decider<State, Command, Event> = {
  decide: (command: Command, state: State) => Event[];
  evolve: (state: State, event: Event) => State;
  initialState: () => State;
  /**
   * `evolve` for a caller that owns `state` (no one else holds it or any part
   * of it, and the caller reads only the state returned): may change it and
   * return it, where `evolve` copies. Must give what `evolve` gives, key order
   * included (the property tests fold both ways). For folds of long streams
   * whose state grows (a player's relationships): a copy per event is
   * quadratic. Optional; callers fall back to `evolve`.
   */
  evolveInPlace?: (state: State, event: Event) => State;
};

/**
 * `record[key] = value` for an own property, also when `key` is `__proto__`
 * (a plain assignment would set the object's prototype instead, where a
 * spread or JSON.parse makes an own property).
 */
export const setOwn = <T>(record: Record<string, T>, key: string, value: T): void => {
  if (key === '__proto__') Object.defineProperty(record, key, { value, writable: true, enumerable: true, configurable: true });
  else record[key] = value;
};

/** Time, ids and the caller arrive on the command; `decide` never makes them up. */
export type CommandMetadata = {
  commandId: string;
  worldId: string;
  actor: string;
  /**
   * The player or service the command acts for, as the game server says
   * (player commands: the player, unless told otherwise). What an actor
   * rollback looks for, beside `actor`.
   */
  actorId?: string;
  /** ISO-8601 time at which the service accepted the command. */
  now: string;
};

export type Command<Type extends string, Data> = {
  type: Type;
  data: Data;
  metadata: CommandMetadata;
};

export type Event<Type extends string, Data> = {
  type: Type;
  data: Data;
};

export type JsonValue = string | number | boolean | null | JsonValue[] | { [key: string]: JsonValue };
export type JsonObject = { [key: string]: JsonValue };

export const fold = <State, Ev>(decider: Pick<Decider<State, unknown, Ev>, 'evolve' | 'initialState'>, events: Iterable<Ev>): State => {
  let state = decider.initialState();
  for (const event of events) state = decider.evolve(state, event);
  return state;
};
