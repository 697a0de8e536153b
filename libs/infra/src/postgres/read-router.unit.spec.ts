import type { Pool } from 'pg';
import { ReadRouter, parseLsn } from './read-router';

/** Routing decisions over scripted WAL positions (the real replica is in test/infra/read-replicas.int.spec.ts). */
describe('ReadRouter', () => {
  const lsn = (n: number) => `0/${n.toString(16).toUpperCase()}`;
  let primaryLsn = 100;
  const replicaLsn = new Map<string, number | Error>();
  const pool = (name: string) =>
    ({
      name,
      query: async (sql: string) => {
        if (sql.includes('pg_current_wal_insert_lsn')) return { rows: [{ lsn: lsn(primaryLsn) }] };
        const r = replicaLsn.get(name);
        if (r instanceof Error) throw r;
        return { rows: [{ lsn: lsn(r!), paused: false }] };
      },
    }) as unknown as Pool;
  let now = 0;
  let draws: number[] = [];
  const router = (share = 0.8) =>
    new ReadRouter({
      primary: pool('primary'),
      replicas: [
        { name: 'r1', pool: pool('r1') },
        { name: 'r2', pool: pool('r2') },
      ],
      share,
      maxLagMs: 100,
      sampleMs: 10,
      now: () => now,
      random: () => draws.shift() ?? 0,
    });
  beforeEach(() => {
    primaryLsn = 100;
    replicaLsn.set('r1', 100).set('r2', 100);
    now = 0;
    draws = [];
  });

  it('parses LSNs', () => {
    expect(parseLsn('16/B374D848')).toBe(0x16b374d848n);
    expect(parseLsn('0/0')).toBe(0n);
  });

  it('measures lag as the age of the oldest primary sample a replica has not replayed', async () => {
    const r = router();
    await r.sample();
    expect(r.statuses().map((s) => s.lagMs)).toEqual([0, 0]);
    primaryLsn = 200;
    now = 10;
    await r.sample(); // r1, r2 still at 100: the primary passed them at t=10
    now = 80;
    primaryLsn = 300;
    replicaLsn.set('r2', 300);
    await r.sample();
    expect(r.statuses().map((s) => [s.lagMs, s.inRotation])).toEqual([
      [70, true],
      [0, true],
    ]);
    now = 111;
    await r.sample();
    expect(r.statuses()[0]).toMatchObject({ lagMs: 101, inRotation: false });
  });

  it('an idle primary never makes a replica look late', async () => {
    const r = router();
    for (now = 0; now < 10_000; now += 1000) await r.sample();
    expect(r.statuses().every((s) => s.lagMs === 0 && s.inRotation)).toBe(true);
  });

  it('sends the share to replicas, a fenced read only to one that replayed the fence, the rest to the primary', async () => {
    const r = router(0.8);
    replicaLsn.set('r1', 100).set('r2', 150);
    primaryLsn = 150;
    await r.sample();
    draws = [0.85];
    expect(r.pick().name).toBe('primary'); // beyond the share
    draws = [0.1, 0.99];
    expect(r.pick().replica).toBe(true);
    draws = [0.1, 0.0];
    expect(r.pick(150n).name).toBe('r2'); // r1 has not replayed 150
    replicaLsn.set('r2', 140);
    await r.sample();
    draws = [0.1, 0.0];
    expect(r.pick(150n).name).toBe('primary');
  });

  it('a replica that fails its sample, or a read, leaves rotation until a sample finds it well', async () => {
    const r = router(1);
    await r.sample();
    replicaLsn.set('r1', new Error('connection refused'));
    await r.sample();
    expect(r.statuses()[0]).toMatchObject({ up: false, inRotation: false, error: 'connection refused' });
    for (let i = 0; i < 20; i++) expect(r.pick().name).toBe('r2');
    r.markDown('r2', new Error('read failed'));
    expect(r.pick().name).toBe('primary');
    replicaLsn.set('r1', 100);
    await r.sample();
    expect(r.statuses().map((s) => s.inRotation)).toEqual([true, true]);
  });
});
