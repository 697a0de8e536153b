import { deciders, type AggregateName, type DomainCommand, type DomainEvent } from './aggregates';
import { REDUCER_VERSIONS } from './rollback';
import { metadata, T0, T1, T2 } from './testing/decider-spec';

/**
 * Snapshots are tagged with REDUCER_VERSIONS. If `evolve` changes what it
 * makes of a stored history and nobody raises the version, old snapshots
 * would serve state the new code would never fold. This test folds a fixed
 * history per aggregate and compares a digest of every intermediate state with
 * the one recorded for the current version: a change to `evolve` fails here
 * until the version is raised and the digest recorded again.
 */
const RECORDED: Record<AggregateName, { version: number; digest: string }> = {
  entity: { version: 1, digest: 'df521da0fdba3109' },
  world: { version: 1, digest: '03e7014d6038a8c9' },
  player: { version: 1, digest: '9b5097b12d1d75d5' },
  narrative: { version: 1, digest: 'c66be74d371f1786' },
};

/** FNV-1a, 2 × 32 bits: libs/domain imports nothing, and this needs no cryptography. */
const digestOf = (text: string): string => {
  let a = 0x811c9dc5;
  let b = 0x01000193 ^ text.length;
  for (let i = 0; i < text.length; i++) {
    a = Math.imul(a ^ text.charCodeAt(i), 0x01000193) >>> 0;
    b = Math.imul(b ^ text.charCodeAt(text.length - 1 - i), 0x01000193) >>> 0;
  }
  return a.toString(16).padStart(8, '0') + b.toString(16).padStart(8, '0');
};

const E = '00000000-0000-4000-8000-000000000001';
const L1 = '00000000-0000-4000-8000-000000000011';
const L2 = '00000000-0000-4000-8000-000000000012';
const P = '00000000-0000-4000-8000-000000000041';
const Q = '00000000-0000-4000-8000-000000000042';

const histories: Record<AggregateName, { commands: Omit<DomainCommand, 'metadata'>[] }> = {
  entity: {
    commands: [
      { type: 'entity.spawn', data: { entityId: E, kind: 'npc', attributes: { name: 'Ada', hp: 10 }, locationId: L1 } },
      { type: 'entity.update', data: { entityId: E, set: { hp: 7, mood: 'calm' }, unset: ['name'] } },
      { type: 'entity.move', data: { entityId: E, locationId: L2 } },
      { type: 'npc.record_memory', data: { npcId: E, text: 'met a stranger', embedding: [0.1, 0.2], importance: 8, subjects: [P] } },
      { type: 'entity.despawn', data: { entityId: E, reason: 'slain' } },
    ] as Omit<DomainCommand, 'metadata'>[],
  },
  world: {
    commands: [
      { type: 'world.advance_time', data: { ticks: 5 } },
      { type: 'world.set_weather', data: { weather: 'rain' } },
      { type: 'world.set_weather', data: { weather: 'fog', regionId: 'north' } },
      { type: 'world.set_faction_standing', data: { factionId: P, otherFactionId: Q, standing: -40 } },
      { type: 'world.advance_time', data: { ticks: 3 } },
    ] as Omit<DomainCommand, 'metadata'>[],
  },
  player: {
    commands: [
      { type: 'player.record_action', data: { playerId: P, action: 'trade', context: { gold: 3 } } },
      { type: 'player.record_action', data: { playerId: P, action: 'trade', context: {}, at: T0 } },
      { type: 'player.change_relationship', data: { playerId: P, targetId: Q, delta: 150, reason: 'gift' } },
      { type: 'player.set_profile', data: { playerId: P, displayName: 'Bo', email: 'bo@example.org', locale: 'de' } },
    ] as Omit<DomainCommand, 'metadata'>[],
  },
  narrative: {
    commands: [
      { type: 'narrative.advance_plot', data: { plotId: 'main', stage: 'act-1', choices: { spared: true } } },
      { type: 'narrative.set_flag', data: { flag: 'door', value: { open: true } } },
      { type: 'narrative.advance_plot', data: { plotId: 'main', stage: 'act-2' } },
    ] as Omit<DomainCommand, 'metadata'>[],
  },
};

/** Every state along the history, then a rollback to the second state and one more command. */
const foldDigest = (aggregate: AggregateName): string => {
  const decider = deciders[aggregate];
  const times = [T0, T1, T2];
  let state = decider.initialState();
  const states: unknown[] = [state];
  const { commands } = histories[aggregate];
  const step = (command: Omit<DomainCommand, 'metadata'>, i: number) => {
    for (const event of decider.decide({ ...command, metadata: metadata(times[i % 3]) } as DomainCommand, state)) {
      state = decider.evolve(state, event);
      states.push(state);
    }
  };
  commands.forEach(step);
  const reset: DomainEvent = {
    type: 'StreamRolledBack',
    data: { operationId: Q, kind: 'rollback', toRevision: 1, fromRevision: states.length - 2, state: states[2] as never, kept: [[0, 1]], reason: 'r', actor: 'admin:k', at: T2 },
  } as DomainEvent;
  state = decider.evolve(state, reset);
  states.push(state);
  step(commands[commands.length - 1]!, 0);
  return digestOf(JSON.stringify(states));
};

describe('REDUCER_VERSIONS', () => {
  it.each(Object.keys(RECORDED) as AggregateName[])('%s: the fold of a fixed history is the one recorded for its version', (aggregate) => {
    const recorded = RECORDED[aggregate];
    const digest = foldDigest(aggregate);
    const hint = `evolve of ${aggregate} folds differently now (digest ${digest}): raise REDUCER_VERSIONS.${aggregate} and record the new version and digest here`;
    expect({ version: REDUCER_VERSIONS[aggregate], digest, hint }).toStrictEqual({ version: recorded.version, digest: recorded.digest, hint });
  });
});
