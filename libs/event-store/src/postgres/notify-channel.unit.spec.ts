import { SCHEMA_NAME } from '@lorestore/infra';
import { notifyChannel } from './postgres-event-store';

describe('notifyChannel', () => {
  it('names the channel after the schema while it fits PostgreSQL’s 63 bytes', () => {
    expect(notifyChannel('lorestore')).toBe('lorestore_events_lorestore');
    expect(notifyChannel('s'.repeat(46))).toBe(`lorestore_events_${'s'.repeat(46)}`);
  });

  it('hashes a longer schema name (pg_notify refuses a channel over 63 bytes), distinctly and the same every time', () => {
    const long = `bench_personal_sealed_new_player_${'x'.repeat(29)}`;
    expect(SCHEMA_NAME.test(long)).toBe(true);
    const channel = notifyChannel(long);
    expect(channel.length).toBeLessThanOrEqual(63);
    expect(channel).toBe(notifyChannel(long));
    expect(channel).not.toBe(notifyChannel(`${long.slice(0, -1)}y`));
    expect(notifyChannel('s'.repeat(47)).length).toBeLessThanOrEqual(63);
  });
});
