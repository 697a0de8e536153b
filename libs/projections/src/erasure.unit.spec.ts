import fc from 'fast-check';
import {
  ERASED,
  isErasedValue,
  keptAt,
  playerDecider,
  privacyStreamId,
  type JsonValue,
  type PlayerErased,
  type PlayerEvent,
  type PlayerState,
  type RevisionRanges,
} from '@lorestore/domain';
import type { RecordedEvent } from '@lorestore/event-store';
import { InlineReadModels } from './inline';
import { docKey, type Doc, type HistoryRow } from './projections';
import { redelivery } from './testing/game-log';

/**
 * Erasure in the projections (PlayerErased): the read models of a log that
 * erases player A are the same however the feed cuts it into batches; A's
 * documents lose their profile and say when, A's history rows before the
 * erasure lose their context, and everything of player B is exactly what the
 * same log without the erasure gives. Personal fields are any JSON (fake
 * envelopes among them): the projections never open them.
 */
const A = '11111111-0000-4000-8000-00000000000a';
const B = '11111111-0000-4000-8000-00000000000b';
const PLAYERS = [A, B] as const;
const WORLDS = ['w1', 'w2'] as const;
const BASE = Date.parse('2026-03-01T10:00:00.000Z');

type Kind = 'profile' | 'action' | 'relationship' | 'rollback';
type Step = { player: 0 | 1; world: 0 | 1; kind: Kind; personal: [JsonValue, JsonValue, JsonValue]; n: number };

const fakeEnvelope = (player: string): fc.Arbitrary<JsonValue> =>
  fc.record({ $pii: fc.constant(1), s: fc.constant([player] as JsonValue[]), iv: fc.base64String({ maxLength: 16 }), ct: fc.base64String({ maxLength: 24 }) });
const personal = (player: string): fc.Arbitrary<JsonValue> => fc.oneof(fakeEnvelope(player), fc.jsonValue({ maxDepth: 2 }) as fc.Arbitrary<JsonValue>);

const stepOf = (kinds: readonly Kind[], players: readonly (0 | 1)[] = [0, 1]): fc.Arbitrary<Step> =>
  fc
    .record({ player: fc.constantFrom(...players), world: fc.constantFrom(0 as const, 1 as const), kind: fc.constantFrom(...kinds), n: fc.nat(1000) })
    .chain((s) => fc.tuple(personal(PLAYERS[s.player]), personal(PLAYERS[s.player]), personal(PLAYERS[s.player])).map((p) => ({ ...s, personal: p })));

/**
 * Before the erasure: anything, by both players. After it: B anything; A only
 * relationship changes and rollbacks (nothing personal is sealed for an erased
 * player; a rollback brings back only envelopes that no longer open, and the
 * read model keeps saying the player is erased).
 */
const before = fc.array(stepOf(['profile', 'action', 'action', 'relationship', 'rollback']), { maxLength: 25 });
const after = fc.array(fc.oneof(stepOf(['profile', 'action', 'relationship', 'rollback'], [1]), stepOf(['relationship', 'rollback'], [0])), { maxLength: 15 });

type Built = { log: RecordedEvent[]; erased: RecordedEvent; erasedAt: string };

/** The log as a store records it: revisions per stream from 0, positions strictly increasing (with gaps), one event per step. */
const buildLog = (head: Step[], tail: Step[], gaps: number[]): Built => {
  const log: RecordedEvent[] = [];
  let position = 0n;
  type Stream = { states: PlayerState[]; resets: { revision: number; kept: RevisionRanges }[] };
  const streams = new Map<string, Stream>();
  const push = (streamId: string, revision: bigint, type: string, data: unknown) => {
    position += 1n + BigInt(gaps[log.length % Math.max(1, gaps.length)] ?? 0);
    const event: RecordedEvent = {
      streamId,
      revision,
      position: { commit: position + 1000n, prepare: position },
      id: `00000000-0000-4000-8000-${String(log.length).padStart(12, '0')}`,
      type,
      schemaVersion: 1,
      data,
      metadata: { worldId: streamId.split('-')[1] },
      created: new Date(BASE + log.length * 1000),
    };
    log.push(event);
    return event;
  };
  const apply = (step: Step) => {
    const playerId = PLAYERS[step.player];
    const worldId = WORLDS[step.world];
    const streamId = `player-${worldId}-${playerId}`;
    const stream = streams.get(streamId) ?? { states: [], resets: [] };
    streams.set(streamId, stream);
    const head = stream.states.length - 1;
    const state = stream.states[head] ?? playerDecider.initialState();
    const at = new Date(BASE + log.length * 1000 + 17).toISOString();
    let event: PlayerEvent;
    let kind = step.kind;
    if (kind === 'rollback' && head < 0) kind = 'relationship';
    switch (kind) {
      case 'profile':
        event = { type: 'PlayerProfileSet', data: { playerId, displayName: step.personal[0], email: step.personal[1], locale: step.personal[2], at } as never };
        break;
      case 'action':
        event = { type: 'PlayerActionRecorded', data: { playerId, action: `a${step.n % 3}`, context: step.personal[0], at, recordedAt: at } as never };
        break;
      case 'relationship': {
        const targetId = PLAYERS[1 - step.player]!;
        const from = state.relationships[targetId] ?? 0;
        const delta = (step.n % 61) - 30;
        event = { type: 'PlayerRelationshipChanged', data: { playerId, targetId, delta, from, to: Math.max(-100, Math.min(100, from + delta)), reason: null, at } };
        break;
      }
      case 'rollback': {
        const toRevision = (step.n % (head + 2)) - 1;
        const lastReset = stream.resets.filter((r) => r.revision <= toRevision).at(-1) ?? null;
        const kept = keptAt(toRevision, lastReset);
        const restored = toRevision < 0 ? playerDecider.initialState() : stream.states[toRevision]!;
        event = {
          type: 'StreamRolledBack',
          data: { operationId: `op-${log.length}`, kind: 'rollback', toRevision, fromRevision: head, state: restored, kept, reason: 'test', actor: 'admin:test', at },
        };
        stream.resets.push({ revision: head + 1, kept });
        break;
      }
    }
    push(streamId, BigInt(head + 1), event.type, event.data);
    stream.states.push(playerDecider.evolve(state, event));
  };

  // Both players have a document in both worlds before the erasure.
  for (const player of [0, 1] as const) for (const world of [0, 1] as const) apply({ player, world, kind: 'profile', personal: [`name-${player}`, null, 'fr'], n: 0 });
  head.forEach(apply);
  const erasedAt = new Date(BASE + log.length * 1000 - 250).toISOString();
  const data: PlayerErased['data'] = { playerId: A, reason: 'r', erasedBy: null, at: erasedAt };
  const erased = push(privacyStreamId(A), 0n, 'PlayerErased', data);
  tail.forEach(apply);
  return { log, erased, erasedAt };
};

const scenario = fc.tuple(before, after, fc.array(fc.nat(3), { maxLength: 7 })).map(([head, tail, gaps]) => buildLog(head, tail, gaps));

/** Cut points anywhere in the log: the batches a feed might deliver it in. */
const split = (log: RecordedEvent[], cuts: number[]): RecordedEvent[][] => {
  const at = [...new Set(cuts.map((c) => c % (log.length + 1)))].sort((x, y) => x - y);
  const batches: RecordedEvent[][] = [];
  let from = 0;
  for (const cut of [...at, log.length]) {
    if (cut > from) batches.push(log.slice(from, cut));
    from = Math.max(from, cut);
  }
  return batches;
};

const applied = (batches: RecordedEvent[][]) => {
  const models = new InlineReadModels();
  for (const batch of batches) models.apply(batch);
  return models;
};

const docsOf = (models: InlineReadModels, playerId: string): Doc[] =>
  [...models.docs.values()].filter((d) => d.table === 'player_state' && d.id === playerId).sort((x, y) => x.streamId.localeCompare(y.streamId));
const rowsOf = (models: InlineReadModels, playerId: string): HistoryRow[] =>
  [...models.history.values()].filter((r) => r.playerId === playerId).sort((x, y) => Number(x.position - y.position));
/** Deep copies, so a later mutation of the read models (a reset, an erasure) cannot change what was compared. */
const snapshot = <T>(value: T): T => structuredClone(value);

describe('projections: erasure (PlayerErased)', () => {
  it('the log is well formed: revisions per stream from 0, positions strictly increasing, one erasure', () => {
    fc.assert(
      fc.property(scenario, ({ log, erased }) => {
        const revisions = new Map<string, bigint>();
        for (let i = 0; i < log.length; i++) {
          const e = log[i]!;
          if (i > 0) expect(e.position.prepare > log[i - 1]!.position.prepare).toBe(true);
          const expected = (revisions.get(e.streamId) ?? -1n) + 1n;
          expect(e.revision).toBe(expected);
          revisions.set(e.streamId, expected);
        }
        expect(log.filter((e) => e.type === 'PlayerErased')).toEqual([erased]);
        expect(erased.streamId).toBe(`privacy-${A}`);
      }),
      { numRuns: 50 },
    );
  });

  it('any split into batches gives the documents and history of one batch', () => {
    fc.assert(
      fc.property(scenario, fc.array(fc.nat(200), { maxLength: 12 }), ({ log }, cuts) => {
        const once = applied([log]);
        const batches = split(log, cuts);
        expect(batches.flat()).toEqual(log);
        const cut = applied(batches);
        expect(cut.docs).toEqual(once.docs);
        expect(cut.history).toEqual(once.history);
        // One event per batch: the finest split.
        const single = applied(log.map((e) => [e]));
        expect(single.docs).toEqual(once.docs);
        expect(single.history).toEqual(once.history);
      }),
      { numRuns: 300 },
    );
  });

  it('any batching with redelivery (at-least-once: a batch, the erasure among it, comes again) ends in the same state', () => {
    fc.assert(
      fc.property(
        scenario.chain((built) => fc.tuple(fc.constant(built), redelivery(built.log))),
        ([{ log }, batches]) => {
          const once = applied([log]);
          const again = applied(batches);
          expect(again.docs).toEqual(once.docs);
          expect(again.history).toEqual(once.history);
        },
      ),
      { numRuns: 300 },
    );
  });

  it('after the erasure A has no profile and says when in every world, A’s earlier rows read ERASED, and B is untouched', () => {
    fc.assert(
      fc.property(scenario, fc.array(fc.nat(200), { maxLength: 8 }), ({ log, erased, erasedAt }, cuts) => {
        const withErasure = applied(split(log, cuts));
        const without = applied([log.filter((e) => e !== erased)]);
        const erasurePosition = erased.position.prepare;

        // A: a document in each world, each erased at the event's `at` (not its append time).
        const aDocs = docsOf(withErasure, A);
        const aDocsWithout = docsOf(without, A);
        expect(aDocs.map((d) => d.streamId)).toEqual([`player-w1-${A}`, `player-w2-${A}`]);
        expect(aDocsWithout.map((d) => d.streamId)).toEqual(aDocs.map((d) => d.streamId));
        expect(erasedAt).not.toBe(erased.created.toISOString());
        aDocs.forEach((doc, i) => {
          const state = doc.state as PlayerState;
          const other = aDocsWithout[i]!;
          expect(state.profile).toBeNull();
          expect(state.erasedAt).toBe(erasedAt);
          // Nothing else of the state changes: relationships, counters, last action, and the stream's revision.
          const { profile: _p, erasedAt: _e, ...rest } = state;
          const { profile: _op, erasedAt: _oe, ...otherRest } = other.state as PlayerState;
          expect(rest).toEqual(otherRest);
          expect(doc.revision).toBe(other.revision);
          // Rewritten at the erasure's position unless the stream moved after it.
          if (other.position > erasurePosition) {
            expect(doc.position).toBe(other.position);
            expect(doc.updatedAt).toBe(other.updatedAt);
          } else {
            expect(doc.position).toBe(erasurePosition);
            expect(doc.updatedAt).toBe(erased.created.toISOString());
          }
        });

        // A's history: every row recorded before the erasure has lost its context, nothing else.
        const aRows = rowsOf(withErasure, A);
        const aRowsWithout = rowsOf(without, A);
        expect(aRows).toHaveLength(aRowsWithout.length);
        aRows.forEach((row, i) => {
          const { context, ...rest } = row;
          const { context: original, ...otherRest } = aRowsWithout[i]!;
          expect(rest).toEqual(otherRest);
          if (row.position < erasurePosition) {
            expect(context).toEqual({ $erased: true });
            expect(isErasedValue(context)).toBe(true);
          } else {
            expect(context).toEqual(original);
          }
        });
        expect(aRows.filter((r) => r.position < erasurePosition)).toHaveLength(aRows.length);

        // B, and everything that is not A's: exactly as without the erasure.
        const notA = (models: InlineReadModels) => ({
          docs: snapshot([...models.docs].filter(([, d]) => d.id !== A)),
          history: snapshot([...models.history].filter(([, r]) => r.playerId !== A)),
        });
        expect(notA(withErasure)).toEqual(notA(without));
        expect(docsOf(withErasure, B)).toHaveLength(2);
        expect(withErasure.docs.size).toBe(without.docs.size);
        expect(withErasure.history.size).toBe(without.history.size);
        for (const row of rowsOf(withErasure, B)) expect(isErasedValue(row.context)).toBe(false);
      }),
      { numRuns: 300 },
    );
  });

  it('a worked example: A’s row and profile before the erasure, then a relationship change after it keeps the erasure', () => {
    const { log, erased, erasedAt } = buildLog(
      [{ player: 0, world: 1, kind: 'action', personal: [{ $pii: 1, s: [A], iv: 'x', ct: 'y' } as JsonValue, null, null], n: 1 }],
      [{ player: 0, world: 0, kind: 'relationship', personal: [null, null, null], n: 40 }],
      [],
    );
    const models = applied([log.slice(0, 5), log.slice(5)]);
    // Before the erasure it was there.
    const beforeErasure = applied([log.slice(0, log.indexOf(erased))]);
    expect((beforeErasure.docs.get(docKey('player_state', `player-w1-${A}`))!.state as PlayerState).profile).toEqual({ displayName: 'name-0', email: null, locale: 'fr' });
    expect(rowsOf(beforeErasure, A)[0]!.context).toEqual({ $pii: 1, s: [A], iv: 'x', ct: 'y' });

    const w1 = models.docs.get(docKey('player_state', `player-w1-${A}`))!;
    const w2 = models.docs.get(docKey('player_state', `player-w2-${A}`))!;
    expect(w1.state).toMatchObject({ profile: null, erasedAt, relationships: { [B]: 10 } });
    expect(w1.revision).toBe(1n);
    expect(w2.state).toMatchObject({ profile: null, erasedAt, counters: { actions: 1, byAction: { a1: 1 } } });
    expect(w2.revision).toBe(1n);
    expect(w2.position).toBe(erased.position.prepare);
    expect(rowsOf(models, A).map((r) => r.context)).toEqual([ERASED]);
    expect((models.docs.get(docKey('player_state', `player-w1-${B}`))!.state as PlayerState).profile).toEqual({ displayName: 'name-1', email: null, locale: 'fr' });
  });
});
