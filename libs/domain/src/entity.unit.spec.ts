import { fold } from './decider';
import { DEFAULT_MEMORY_IMPORTANCE, entityDecider, type EntityEvent } from './entity';
import { uuidV7, uuidV7Time } from './ids';
import { DeciderSpecification, metadata, T0, T1, T2 } from './testing/decider-spec';

const spec = DeciderSpecification.for(entityDecider);

const NPC = '3f6c1d8e-0b1a-4c55-9e0e-5a1f2b3c4d01';
const TAVERN = '3f6c1d8e-0b1a-4c55-9e0e-5a1f2b3c4d02';
const FOREST = '3f6c1d8e-0b1a-4c55-9e0e-5a1f2b3c4d03';
const PLAYER = '3f6c1d8e-0b1a-4c55-9e0e-5a1f2b3c4d04';
const MEMORY = '3f6c1d8e-0b1a-4c55-9e0e-5a1f2b3c4d05';

const spawned = (kind = 'npc', locationId: string | null = TAVERN): EntityEvent => ({
  type: 'EntitySpawned',
  data: { entityId: NPC, kind, attributes: { name: 'Mira', hp: 10 }, locationId, at: T0 },
});
const despawned: EntityEvent = { type: 'EntityDespawned', data: { entityId: NPC, reason: 'slain', at: T1 } };

describe('entity.spawn', () => {
  it('spawns an entity that was never spawned', () =>
    spec
      .given([])
      .when({
        type: 'entity.spawn',
        data: { entityId: NPC, kind: 'npc', attributes: { name: 'Mira', hp: 10 }, locationId: TAVERN },
        metadata: metadata(T0),
      })
      .then([spawned()]));

  it('defaults locationId to null', () =>
    spec
      .given([])
      .when({ type: 'entity.spawn', data: { entityId: NPC, kind: 'item', attributes: {} }, metadata: metadata(T0) })
      .then([{ type: 'EntitySpawned', data: { entityId: NPC, kind: 'item', attributes: {}, locationId: null, at: T0 } }]));

  it('refuses to spawn an entity that already exists', () =>
    spec
      .given([spawned()])
      .when({ type: 'entity.spawn', data: { entityId: NPC, kind: 'npc', attributes: {} }, metadata: metadata(T1) })
      .thenThrows('already_exists'));

  it('refuses to respawn a despawned entity', () =>
    spec
      .given([spawned(), despawned])
      .when({ type: 'entity.spawn', data: { entityId: NPC, kind: 'npc', attributes: {} }, metadata: metadata(T2) })
      .thenThrows('already_exists'));

  it('evolves to an active entity with no memories', () =>
    expect(fold(entityDecider, [spawned()])).toStrictEqual({
      status: 'active',
      entityId: NPC,
      kind: 'npc',
      attributes: { name: 'Mira', hp: 10 },
      locationId: TAVERN,
      spawnedAt: T0,
      updatedAt: T0,
      memoryCount: 0,
    }));
});

describe('entity.update', () => {
  it('records the set and unset as given', () =>
    spec
      .given([spawned()])
      .when({ type: 'entity.update', data: { entityId: NPC, set: { hp: 7 }, unset: ['name'] }, metadata: metadata(T1) })
      .then([{ type: 'EntityUpdated', data: { entityId: NPC, set: { hp: 7 }, unset: ['name'], at: T1 } }]));

  it('refuses an entity that was never spawned', () =>
    spec
      .given([])
      .when({ type: 'entity.update', data: { entityId: NPC, set: { hp: 1 }, unset: [] }, metadata: metadata(T1) })
      .thenThrows('not_found'));

  it('refuses a despawned entity', () =>
    spec
      .given([spawned(), despawned])
      .when({ type: 'entity.update', data: { entityId: NPC, set: { hp: 1 }, unset: [] }, metadata: metadata(T2) })
      .thenThrows('gone'));

  it('merges set shallowly, drops unset keys, ignores unknown ones and stamps updatedAt', () => {
    const state = fold(entityDecider, [
      {
        type: 'EntitySpawned',
        data: { entityId: NPC, kind: 'npc', attributes: { name: 'Mira', hp: 10, bag: { gold: 3 } }, locationId: null, at: T0 },
      },
      { type: 'EntityUpdated', data: { entityId: NPC, set: { hp: 7, mood: 'angry', bag: { silver: 1 } }, unset: ['name', 'missing'], at: T1 } },
    ]);
    expect(state).toMatchObject({ status: 'active', attributes: { hp: 7, mood: 'angry', bag: { silver: 1 } }, spawnedAt: T0, updatedAt: T1 });
    expect(state.status === 'active' && Object.keys(state.attributes).sort()).toStrictEqual(['bag', 'hp', 'mood']);
  });

  it('applies unset after set, so a key in both ends up removed', () => {
    const state = fold(entityDecider, [
      spawned(),
      { type: 'EntityUpdated', data: { entityId: NPC, set: { hp: 1, name: 'Ana' }, unset: ['name'], at: T1 } },
    ]);
    expect(state).toMatchObject({ attributes: { hp: 1 } });
    expect(state.status === 'active' && 'name' in state.attributes).toBe(false);
  });

  it('does not mutate the attributes of earlier events', () => {
    const first = spawned();
    fold(entityDecider, [first, { type: 'EntityUpdated', data: { entityId: NPC, set: { hp: 1 }, unset: ['name'], at: T1 } }]);
    expect(first).toStrictEqual(spawned());
  });
});

describe('entity.move', () => {
  it('moves an entity and records where it came from', () =>
    spec
      .given([spawned()])
      .when({ type: 'entity.move', data: { entityId: NPC, locationId: FOREST }, metadata: metadata(T1) })
      .then([{ type: 'EntityMoved', data: { entityId: NPC, from: TAVERN, to: FOREST, at: T1 } }]));

  it('moves an entity that had no location (from: null)', () =>
    spec
      .given([spawned('npc', null)])
      .when({ type: 'entity.move', data: { entityId: NPC, locationId: FOREST }, metadata: metadata(T1) })
      .then([{ type: 'EntityMoved', data: { entityId: NPC, from: null, to: FOREST, at: T1 } }]));

  it('produces nothing when the entity is already there', () =>
    spec
      .given([spawned()])
      .when({ type: 'entity.move', data: { entityId: NPC, locationId: TAVERN }, metadata: metadata(T1) })
      .thenNothing());

  it('refuses an entity that was never spawned', () =>
    spec
      .given([])
      .when({ type: 'entity.move', data: { entityId: NPC, locationId: FOREST }, metadata: metadata(T1) })
      .thenThrows('not_found'));

  it('refuses a despawned entity', () =>
    spec
      .given([spawned(), despawned])
      .when({ type: 'entity.move', data: { entityId: NPC, locationId: FOREST }, metadata: metadata(T2) })
      .thenThrows('gone'));

  it('evolves the location and updatedAt', () =>
    expect(fold(entityDecider, [spawned(), { type: 'EntityMoved', data: { entityId: NPC, from: TAVERN, to: FOREST, at: T1 } }])).toMatchObject({
      locationId: FOREST,
      updatedAt: T1,
    }));
});

describe('entity.despawn', () => {
  it('despawns with a reason', () =>
    spec
      .given([spawned()])
      .when({ type: 'entity.despawn', data: { entityId: NPC, reason: 'slain' }, metadata: metadata(T1) })
      .then([despawned]));

  it('defaults the reason to null', () =>
    spec
      .given([spawned()])
      .when({ type: 'entity.despawn', data: { entityId: NPC }, metadata: metadata(T1) })
      .then([{ type: 'EntityDespawned', data: { entityId: NPC, reason: null, at: T1 } }]));

  it('refuses an entity that was never spawned', () =>
    spec.given([]).when({ type: 'entity.despawn', data: { entityId: NPC }, metadata: metadata(T1) }).thenThrows('not_found'));

  it('refuses to despawn twice', () =>
    spec.given([spawned(), despawned]).when({ type: 'entity.despawn', data: { entityId: NPC }, metadata: metadata(T2) }).thenThrows('gone'));

  it('evolves to despawned, keeping what the entity was', () =>
    expect(fold(entityDecider, [spawned(), despawned])).toStrictEqual({
      status: 'despawned',
      reason: 'slain',
      despawnedAt: T1,
      entityId: NPC,
      kind: 'npc',
      attributes: { name: 'Mira', hp: 10 },
      locationId: TAVERN,
      spawnedAt: T0,
      updatedAt: T1,
      memoryCount: 0,
    }));
});

describe('npc.record_memory', () => {
  const memory = { npcId: NPC, text: 'The stranger paid in gold.', embedding: [0.1, 0.2, 0.3] };
  const memoryId = (at: string) => uuidV7(Date.parse(at), `memory:${metadata(at).commandId}`);

  it('records a memory with importance 5 and no subjects by default', () =>
    spec
      .given([spawned()])
      .when({ type: 'npc.record_memory', data: memory, metadata: metadata(T1) })
      .then([{ type: 'NpcMemoryRecorded', data: { ...memory, memoryId: memoryId(T1), importance: DEFAULT_MEMORY_IMPORTANCE, subjects: [], at: T1 } }]));

  it('names the memory with a UUIDv7 of the decision instant, the same each time the same command is decided', () => {
    const [first] = entityDecider.decide({ type: 'npc.record_memory', data: memory, metadata: metadata(T1) }, fold(entityDecider, [spawned()]));
    const [again] = entityDecider.decide({ type: 'npc.record_memory', data: memory, metadata: metadata(T1) }, fold(entityDecider, [spawned()]));
    const [other] = entityDecider.decide(
      { type: 'npc.record_memory', data: memory, metadata: { ...metadata(T1), commandId: '3f6c1d8e-0b1a-4c55-9e0e-5a1f2b3c4d99' } },
      fold(entityDecider, [spawned()]),
    );
    const id = (first!.data as { memoryId: string }).memoryId;
    expect(id).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
    expect(uuidV7Time(id)).toBe(Date.parse(T1));
    expect((again!.data as { memoryId: string }).memoryId).toBe(id);
    // Another command in the same millisecond: another id (the brief's npc_timestamp ids collided here).
    expect((other!.data as { memoryId: string }).memoryId).not.toBe(id);
  });

  it('keeps the given importance and subjects', () =>
    spec
      .given([spawned()])
      .when({ type: 'npc.record_memory', data: { ...memory, importance: 9, subjects: [PLAYER] }, metadata: metadata(T1) })
      .then([{ type: 'NpcMemoryRecorded', data: { ...memory, memoryId: memoryId(T1), importance: 9, subjects: [PLAYER], at: T1 } }]));

  it('refuses an entity that is not an npc', () =>
    spec.given([spawned('item')]).when({ type: 'npc.record_memory', data: memory, metadata: metadata(T1) }).thenThrows('not_an_npc'));

  it('refuses an npc that was never spawned', () =>
    spec.given([]).when({ type: 'npc.record_memory', data: memory, metadata: metadata(T1) }).thenThrows('not_found'));

  it('refuses a despawned npc', () =>
    spec.given([spawned(), despawned]).when({ type: 'npc.record_memory', data: memory, metadata: metadata(T2) }).thenThrows('gone'));

  it('counts memories and stamps updatedAt', () => {
    const recorded = (at: string): EntityEvent => ({ type: 'NpcMemoryRecorded', data: { ...memory, memoryId: memoryId(at), importance: 5, subjects: [], at } });
    expect(fold(entityDecider, [spawned(), recorded(T1), recorded(T2)])).toMatchObject({ memoryCount: 2, updatedAt: T2 });
  });
});

describe('npc.forget_memory', () => {
  const forget = { npcId: NPC, memoryId: MEMORY };

  it('forgets a memory of an active npc', () =>
    spec
      .given([spawned()])
      .when({ type: 'npc.forget_memory', data: forget, metadata: metadata(T1) })
      .then([{ type: 'NpcMemoryForgotten', data: { ...forget, at: T1 } }]));

  it('refuses an entity that is not an npc', () =>
    spec.given([spawned('item')]).when({ type: 'npc.forget_memory', data: forget, metadata: metadata(T1) }).thenThrows('not_an_npc'));

  it('refuses an npc that was never spawned', () =>
    spec.given([]).when({ type: 'npc.forget_memory', data: forget, metadata: metadata(T1) }).thenThrows('not_found'));

  it('changes nothing in the npc state (memoryCount counts memories recorded)', () => {
    const before = fold(entityDecider, [spawned()]);
    expect(entityDecider.evolve(before, { type: 'NpcMemoryForgotten', data: { ...forget, at: T2 } })).toBe(before);
  });
});
