import { fold, type CommandMetadata, type Decider } from '../decider';
import { DomainRefusal, type RefusalCode } from '../refusal';

/**
 * Given/When/Then for deciders, after Emmett's `DeciderSpecification`:
 * given past events, when a command is decided, then these events, nothing,
 * or a `DomainRefusal` with this code. No mocks, no store: only the decider.
 */
export const DeciderSpecification = {
  for: <State, Command, Event>(decider: Decider<State, Command, Event>) => ({
    given: (events: Event[]) => ({
      when: (command: Command) => {
        const decide = () => decider.decide(command, fold(decider, events));
        return {
          then: (expected: Event[]) => expect(decide()).toStrictEqual(expected),
          thenNothing: () => expect(decide()).toStrictEqual([]),
          thenThrows: (code: RefusalCode) => {
            let produced: Event[];
            try {
              produced = decide();
            } catch (error) {
              if (!(error instanceof DomainRefusal)) throw error;
              expect(error.code).toBe(code);
              return;
            }
            throw new Error(`expected a DomainRefusal '${code}', but decide returned ${JSON.stringify(produced)}`);
          },
        };
      },
    }),
  }),
};

/** Fixed instants, so every expected event can be written out in full. */
export const T0 = '2025-03-01T12:00:00.000Z';
export const T1 = '2025-03-01T12:05:00.000Z';
export const T2 = '2025-03-01T12:10:00.000Z';

export const metadata = (now: string = T0, overrides: Partial<CommandMetadata> = {}): CommandMetadata => ({
  commandId: '00000000-0000-4000-8000-00000000c0de',
  worldId: 'test-world',
  actor: 'test-actor',
  now,
  ...overrides,
});
