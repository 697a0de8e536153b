import { isUniqueViolation } from './errors';

describe('isUniqueViolation', () => {
  const violation = Object.assign(new Error('duplicate key value violates unique constraint "events_event_id"'), { code: '23505', constraint: 'events_event_id' });

  it('tells a unique violation, of a named constraint when one is asked for', () => {
    expect(isUniqueViolation(violation)).toBe(true);
    expect(isUniqueViolation(violation, 'events_event_id')).toBe(true);
    expect(isUniqueViolation(violation, 'commands_pkey')).toBe(false);
  });

  it('is false for any other error or value', () => {
    expect(isUniqueViolation(Object.assign(new Error('serialization failure'), { code: '40001' }))).toBe(false);
    expect(isUniqueViolation(new Error('no code'))).toBe(false);
    expect(isUniqueViolation(null)).toBe(false);
    expect(isUniqueViolation(undefined)).toBe(false);
  });
});
