import { ReadModelStore, type HistoryRow } from '@lorestore/projections';
import { createTestSchema, type TestSchema } from '../support/database';

const monthStart = (offset: number) => {
  const d = new Date();
  return new Date(Date.UTC(d.getUTCFullYear(), d.getUTCMonth() + offset, 1));
};
const partitionName = (d: Date) => `player_history_${d.getUTCFullYear()}_${String(d.getUTCMonth() + 1).padStart(2, '0')}`;

describe('player_history partitions (monthly, with a default partition)', () => {
  let db: TestSchema;
  let store: ReadModelStore;
  let revision = 0n;

  const row = (at: Date): HistoryRow => ({
    worldId: 'w',
    playerId: '11111111-0000-4000-8000-000000000001',
    at: at.toISOString(),
    action: 'jump',
    context: { at: at.toISOString() },
    revision: revision++,
    position: revision,
    rolledBack: false,
  });
  const write = (rows: HistoryRow[]) =>
    store.commit({ docs: [], history: rows, historyResets: [], checkpoint: { position: { commit: 1n, prepare: revision }, time: new Date() } }, ['player_history'], rows.length);
  const placement = async () => {
    const { rows } = await db.pool.query<{ part: string; at: Date }>('SELECT tableoid::regclass::text AS part, at FROM player_history ORDER BY at');
    return rows.map((r) => ({ part: r.part.replace(/^.*\./, '').replace(/"/g, ''), at: r.at.toISOString() }));
  };

  beforeAll(async () => {
    db = await createTestSchema('partitions');
    await ReadModelStore.migrate(db.pool, db.schema);
    store = new ReadModelStore(db.pool);
  });
  afterAll(() => db.drop());

  it('has partitions from last month to three months ahead after migrating, and creating them again adds none', async () => {
    const { rows } = await db.pool.query<{ name: string }>(
      "SELECT c.relname AS name FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid WHERE i.inhparent = 'player_history'::regclass ORDER BY 1",
    );
    const expected = [-1, 0, 1, 2, 3].map((k) => partitionName(monthStart(k)));
    expect(rows.map((r) => r.name)).toEqual([...expected, 'player_history_default'].sort());
    expect(await store.ensurePartitions(1, 3)).toBe(0);
  });

  it('puts each action in its month’s partition and anything outside them in the default one, all queryable', async () => {
    const inMonths = [-1, 0, 1, 3].map((k) => new Date(monthStart(k).getTime() + 3 * 86_400_000 + k * 3_600_000));
    const farPast = new Date('1999-12-31T23:59:59.000Z');
    const farFuture = new Date('2199-01-01T00:00:00.000Z');
    const lastInstantOfMonth = new Date(monthStart(1).getTime() - 1);
    await write([...inMonths, farPast, farFuture, lastInstantOfMonth].map(row));

    const placed = await placement();
    for (const at of [...inMonths, lastInstantOfMonth]) {
      expect(placed).toContainEqual({ part: partitionName(at), at: at.toISOString() });
    }
    expect(placed).toContainEqual({ part: 'player_history_default', at: farPast.toISOString() });
    expect(placed).toContainEqual({ part: 'player_history_default', at: farFuture.toISOString() });

    const { rows } = await db.pool.query<{ n: string }>(
      "SELECT count(*) AS n FROM player_history WHERE world_id = 'w' AND at < '2000-01-01' OR at > '2100-01-01'",
    );
    expect(Number(rows[0]!.n)).toBe(2);
  });

  it('moves rows out of the default partition when their month gets a partition', async () => {
    const months = monthsSince(new Date('1999-12-01T00:00:00Z'));
    const old = new Date(monthStart(-6).getTime() + 86_400_000);
    await write([row(old)]);
    expect(await placement()).toContainEqual({ part: 'player_history_default', at: old.toISOString() });
    expect(await store.ensurePartitions(months, 3)).toBeGreaterThan(0);
    const placed = await placement();
    expect(placed).toContainEqual({ part: partitionName(old), at: old.toISOString() });
    expect(placed).toContainEqual({ part: 'player_history_1999_12', at: '1999-12-31T23:59:59.000Z' });
    expect(placed.filter((p) => p.part === 'player_history_default').map((p) => p.at)).toEqual(['2199-01-01T00:00:00.000Z']);
  });

  it('retention drops whole months older than the limit and nothing newer', async () => {
    const dropped = await store.dropOldPartitions(2);
    expect(dropped).toContain('player_history_1999_12');
    expect(dropped).toContain(partitionName(monthStart(-6)));
    expect(dropped).not.toContain(partitionName(monthStart(-2)));
    expect(dropped).not.toContain(partitionName(monthStart(-1)));
    const placed = await placement();
    expect(placed.some((p) => p.at.startsWith('1999'))).toBe(false);
    expect(placed.some((p) => p.part === partitionName(monthStart(0)))).toBe(true);
  });
});

function monthsSince(d: Date): number {
  const now = new Date();
  return (now.getUTCFullYear() - d.getUTCFullYear()) * 12 + now.getUTCMonth() - d.getUTCMonth();
}
