/**
 * The whole contract of an aggregate, after Emmett's `Decider`:
 * pure functions, no I/O, no clock, no randomness.
 */
export type Decider<State, Command, Event> = {
  decide: (command: Command, state: State) => Event[];
  evolve: (state: State, event: Event) => State;
  initialState: () => State;
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
