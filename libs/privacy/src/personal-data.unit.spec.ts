import { PERSONAL_DATA } from '@lorestore/domain';
import { subjectsOf } from './personal-data';

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
