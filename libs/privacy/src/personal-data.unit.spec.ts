import { createHash, randomBytes } from 'node:crypto';
import { PERSONAL_DATA, type DomainCommand } from '@lorestore/domain';
import type { PlayerKeyStore } from './key-store';
import { PersonalDataCodec, subjectsOf } from './personal-data';

/** Whose personal data an event holds, as PERSONAL_DATA declares it (sealing and opening need a key store: see test/privacy). */
describe('subjectsOf', () => {
  const A = '11111111-0000-4000-8000-000000000001';
  const B = '11111111-0000-4000-8000-000000000002';

  it('a string subject field: that player', () => {
    expect(PERSONAL_DATA.PlayerProfileSet?.subjectField).toBe('playerId');
    expect(subjectsOf({ type: 'PlayerProfileSet', data: { playerId: A, displayName: 'x', email: null, locale: null, at: 't' } })).toEqual([A]);
    expect(subjectsOf({ type: 'PlayerActionRecorded', data: { playerId: B, action: 'a', context: {} } })).toEqual([B]);
  });

  it('an array subject field: its players, distinct and sorted, strings only', () => {
    expect(PERSONAL_DATA.NpcMemoryRecorded?.subjectField).toBe('subjects');
    expect(subjectsOf({ type: 'NpcMemoryRecorded', data: { subjects: [B, A, B], text: 't' } })).toEqual([A, B]);
    expect(subjectsOf({ type: 'NpcMemoryRecorded', data: { subjects: [B, 7, null, { id: A }], text: 't' } })).toEqual([B]);
  });

  it('no subject: an empty array, a missing or null field, or no data', () => {
    expect(subjectsOf({ type: 'NpcMemoryRecorded', data: { subjects: [], text: 't' } })).toEqual([]);
    expect(subjectsOf({ type: 'NpcMemoryRecorded', data: { text: 't' } })).toEqual([]);
    expect(subjectsOf({ type: 'PlayerProfileSet', data: { playerId: null, displayName: 'x' } })).toEqual([]);
    expect(subjectsOf({ type: 'PlayerProfileSet', data: null })).toEqual([]);
    expect(subjectsOf({ type: 'PlayerProfileSet', data: A })).toEqual([]);
  });

  it('an event type with nothing personal declared: none, whatever its data', () => {
    expect(PERSONAL_DATA.PlayerRelationshipChanged).toBeUndefined();
    expect(subjectsOf({ type: 'PlayerRelationshipChanged', data: { playerId: A, targetId: B, delta: 1 } })).toEqual([]);
    expect(subjectsOf({ type: 'PlayerErased', data: { playerId: A, reason: 'r', erasedBy: null, at: 't' } })).toEqual([]);
    expect(subjectsOf({ type: 'NoSuchEvent', data: { playerId: A, subjects: [A] } })).toEqual([]);
  });
});

describe('PersonalDataCodec.commandDigest (the idempotency hash)', () => {
  const A = '11111111-0000-4000-8000-000000000001';
  const B = '11111111-0000-4000-8000-000000000002';
  /** A key store in memory: the codec only asks it for keys. */
  const storeOf = (keys: Record<string, Buffer | null>) =>
    ({
      cached: () => null,
      keys: async (ids: readonly string[]) => new Map(ids.filter((id) => id in keys).map((id) => [id, keys[id]!])),
    }) as unknown as PlayerKeyStore;
  const command = (type: string, data: Record<string, unknown>) => ({ type, data, metadata: {} }) as unknown as DomainCommand;
  const sha256 = (text: string) => createHash('sha256').update(text).digest('base64url');

  it('hashes a command without personal data with plain SHA-256', async () => {
    const codec = new PersonalDataCodec(storeOf({}));
    expect(await codec.commandDigest(command('entity.spawn', { entityId: A }), 'text')).toBe(sha256('text'));
    expect(await codec.commandDigest(command('player.change_relationship', { playerId: A, targetId: B, delta: 1 }), 'text')).toBe(sha256('text'));
  });

  it('hashes a personal command under its players’ key: not the plain hash, another key another hash, refused once erased', async () => {
    const one = new PersonalDataCodec(storeOf({ [A]: randomBytes(32), [B]: randomBytes(32) }));
    const other = new PersonalDataCodec(storeOf({ [A]: randomBytes(32), [B]: randomBytes(32) }));
    const profile = command('player.set_profile', { playerId: A, displayName: 'Alice' });
    const hash = await one.commandDigest(profile, 'text');
    expect(hash).not.toBe(sha256('text'));
    expect(await one.commandDigest(profile, 'text')).toBe(hash);
    expect(await other.commandDigest(profile, 'text')).not.toBe(hash);
    expect(await one.commandDigest(command('npc.record_memory', { npcId: B, text: 't', subjects: [B, A] }), 'text')).not.toBe(hash);
    const erased = new PersonalDataCodec(storeOf({ [A]: null }));
    await expect(erased.commandDigest(profile, 'text')).rejects.toMatchObject({ name: 'DomainRefusal', code: 'erased' });
  });
});
