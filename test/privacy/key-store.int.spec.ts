import { randomBytes, randomUUID } from 'node:crypto';
import type { Pool } from 'pg';
import { createPostgresPool } from '@lorestore/infra';
import { LocalKeyWrapper, MasterKeyError, PlayerKeyStore, migratePrivacy, type KeyWrapper, type PlayerKeyStoreOptions } from '@lorestore/privacy';
import { createTestSchema, type TestSchema } from '../support/database';

/**
 * The players' data keys in PostgreSQL: one key per player however many
 * processes ask at once, erasure for ever (a tombstone row), told to every
 * listening process at once and bounded by the TTL for the others, and a
 * wrong master key that fails loudly instead of making players look erased.
 */
describe('PlayerKeyStore (PostgreSQL)', () => {
  let db: TestSchema;
  let otherPool: Pool;
  const wrapper = new LocalKeyWrapper(randomBytes(32));
  const stores: PlayerKeyStore[] = [];
  const pools: Pool[] = [];

  const storeOn = (pool: Pool, options: Partial<PlayerKeyStoreOptions> = {}): PlayerKeyStore => {
    const store = new PlayerKeyStore({ pool, wrapper, ...options });
    stores.push(store);
    return store;
  };
  const newPool = (name: string): Pool => {
    const pool = createPostgresPool({ url: db.url, schema: db.schema, name, max: 10, applicationName: `lorestore-test-${name}` });
    pools.push(pool);
    return pool;
  };
  const rowsOf = async (playerId: string) =>
    (
      await db.pool.query<{ wrapped_key: Buffer | null; wrapped_by: string; erased_at: Date | null; erase_reason: string | null; erased_by: string | null }>(
        'SELECT wrapped_key, wrapped_by, erased_at, erase_reason, erased_by FROM player_keys WHERE player_id = $1',
        [playerId],
      )
    ).rows;
  const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
  /** Polls `keys()` (no create) until the player reads as erased, or gives up after `timeoutMs`; the time it took, or null. */
  const untilErased = async (store: PlayerKeyStore, playerId: string, timeoutMs: number): Promise<number | null> => {
    const started = Date.now();
    while (Date.now() - started < timeoutMs) {
      if ((await store.keys([playerId], { create: false })).get(playerId) === null) return Date.now();
      await sleep(20);
    }
    return null;
  };

  beforeAll(async () => {
    db = await createTestSchema('player-keys');
    expect(await migratePrivacy(db.pool, db.schema)).toEqual(['401_player_keys']);
    // Applied once: a second run finds nothing to do.
    expect(await migratePrivacy(db.pool, db.schema)).toEqual([]);
    otherPool = newPool('other');
  });

  afterAll(async () => {
    for (const store of stores) await store.close();
    for (const pool of pools) await pool.end();
    await db?.drop();
  });

  it('20 concurrent callers on two stores (two pools) asking to create the same new player’s key all get one key, stored once', async () => {
    for (let round = 0; round < 8; round++) {
      // Fresh stores, so no cache helps: the two INSERTs really race.
      const one = storeOn(db.pool);
      const two = storeOn(otherPool);
      const playerId = randomUUID();
      const answers = await Promise.all(Array.from({ length: 20 }, (_, i) => (i % 2 === 0 ? one : two).keys([playerId], { create: true })));
      const keys = answers.map((m) => m.get(playerId));
      for (const key of keys) {
        expect(key).toBeInstanceOf(Buffer);
        expect(key).toHaveLength(32);
        expect(key!.equals(keys[0]!)).toBe(true);
      }
      const rows = await rowsOf(playerId);
      expect(rows).toHaveLength(1);
      // Stored wrapped by the master key, never in the clear.
      expect(rows[0]!.wrapped_by).toBe(wrapper.id);
      expect(rows[0]!.erased_at).toBeNull();
      expect(rows[0]!.wrapped_key!.includes(keys[0]!)).toBe(false);
      expect((await wrapper.unwrap(rows[0]!.wrapped_key!)).equals(keys[0]!)).toBe(true);
      // A third store, reading cold, gets the same key.
      const cold = storeOn(otherPool);
      expect((await cold.keys([playerId], { create: false })).get(playerId)!.equals(keys[0]!)).toBe(true);
    }
  });

  it('overlapping batches of players created at once from two stores agree on every key', async () => {
    const one = storeOn(db.pool);
    const two = storeOn(otherPool);
    const players = Array.from({ length: 6 }, () => randomUUID());
    const [a, b, c] = await Promise.all([
      one.keys(players.slice(0, 4), { create: true }),
      two.keys(players.slice(2, 6), { create: true }),
      two.keys([players[5]!, players[0]!, players[0]!], { create: true }),
    ]);
    expect([...a.keys()].sort()).toEqual(players.slice(0, 4).sort());
    expect([...b.keys()].sort()).toEqual(players.slice(2, 6).sort());
    for (const id of players.slice(2, 4)) expect(a.get(id)!.equals(b.get(id)!)).toBe(true);
    expect(c.get(players[5]!)!.equals(b.get(players[5]!)!)).toBe(true);
    expect(c.get(players[0]!)!.equals(a.get(players[0]!)!)).toBe(true);
    const { rows } = await db.pool.query<{ n: number }>('SELECT count(*)::int AS n FROM player_keys WHERE player_id = ANY ($1::uuid[])', [players]);
    expect(rows[0]!.n).toBe(6);
    // Different players, different keys.
    expect(new Set([...a.values(), ...b.values()].map((k) => k!.toString('hex'))).size).toBe(6);
  });

  it('without create, a player with no key has no entry, and none is made', async () => {
    const store = storeOn(db.pool);
    const unknown = randomUUID();
    const known = randomUUID();
    const made = (await store.keys([known], { create: true })).get(known);
    const found = await store.keys([unknown, known], { create: false });
    expect(found.has(unknown)).toBe(false);
    expect(found.get(unknown)).toBeUndefined();
    expect(found.get(known)!.equals(made!)).toBe(true);
    expect(found.size).toBe(1);
    expect(await rowsOf(unknown)).toHaveLength(0);
    expect(await store.has(unknown)).toBe(false);
    expect(await store.has(known)).toBe(true);
    expect(await store.erasure(unknown)).toBeNull();
    expect(await store.erasure(known)).toBeNull();
    // Asked again (not cached as absent), then made.
    expect((await store.keys([unknown], { create: false })).has(unknown)).toBe(false);
    expect((await store.keys([unknown], { create: true })).get(unknown)).toHaveLength(32);
  });

  it('erase: fresh the first time; a second call changes nothing and returns the first reason and time; the key reads as null from then on', async () => {
    const store = storeOn(db.pool);
    const playerId = randomUUID();
    const key = (await store.keys([playerId], { create: true })).get(playerId)!;
    expect(key).toHaveLength(32);

    const first = await store.erase(playerId, 'gdpr request #1', 'admin:k1');
    expect(first.fresh).toBe(true);
    expect(first.erasure).toMatchObject({ playerId, reason: 'gdpr request #1', erasedBy: 'admin:k1', position: null });
    expect(first.erasure.erasedAt).toBeInstanceOf(Date);
    expect(Math.abs(first.erasure.erasedAt.getTime() - Date.now())).toBeLessThan(60_000);

    await sleep(15);
    const second = await store.erase(playerId, 'another reason', 'admin:k2');
    expect(second.fresh).toBe(false);
    expect(second.erasure).toEqual({ playerId, reason: 'gdpr request #1', erasedBy: 'admin:k1', erasedAt: first.erasure.erasedAt, position: null });
    expect(await store.erasure(playerId)).toEqual(second.erasure);

    const rows = await rowsOf(playerId);
    expect(rows).toHaveLength(1);
    expect(rows[0]).toMatchObject({ wrapped_key: null, erase_reason: 'gdpr request #1', erased_by: 'admin:k1' });
    expect(rows[0]!.erased_at!.getTime()).toBe(first.erasure.erasedAt.getTime());

    // The erasing store, another store reading cold, and a create all read null: no new key is ever made.
    expect((await store.keys([playerId], { create: false })).get(playerId)).toBeNull();
    expect((await store.keys([playerId], { create: true })).get(playerId)).toBeNull();
    const cold = storeOn(otherPool);
    const coldKeys = await cold.keys([playerId], { create: true });
    expect(coldKeys.has(playerId)).toBe(true);
    expect(coldKeys.get(playerId)).toBeNull();
    expect(await rowsOf(playerId)).toHaveLength(1);
    expect(await store.has(playerId)).toBe(true);

    // The audit event's position is recorded once.
    await store.recordErasePosition(playerId, 42n);
    await store.recordErasePosition(playerId, 99n);
    expect((await store.erasure(playerId))?.position).toBe(42n);
    expect((await store.erase(playerId, 'again', null)).erasure.position).toBe(42n);
  });

  it('a store that listens drops an erased key at once (NOTIFY); one that does not keeps it until its TTL', async () => {
    const playerId = randomUUID();
    const eraser = storeOn(db.pool);
    const key = (await eraser.keys([playerId], { create: true })).get(playerId)!;

    // Listening first, then caching the key: only the notice can drop it (listen() itself expires what was cached before).
    const listening = storeOn(newPool('listening'));
    await listening.listen();
    expect((await listening.keys([playerId], { create: false })).get(playerId)!.equals(key)).toBe(true);
    // Not listening, default TTL (60 s): the control that shows caches are really used.
    const stale = storeOn(otherPool);
    expect((await stale.keys([playerId], { create: false })).get(playerId)!.equals(key)).toBe(true);
    // Not listening, 200 ms TTL.
    const shortTtl = storeOn(otherPool, { ttlMs: 200 });
    const cachedBefore = Date.now();
    expect((await shortTtl.keys([playerId], { create: false })).get(playerId)!.equals(key)).toBe(true);

    const erasedAt = Date.now();
    expect((await eraser.erase(playerId, 'gdpr', null)).fresh).toBe(true);
    expect((await eraser.keys([playerId], { create: false })).get(playerId)).toBeNull();

    const heard = await untilErased(listening, playerId, 2000);
    expect(heard).not.toBeNull();
    expect(heard! - erasedAt).toBeLessThan(2000);

    const expired = await untilErased(shortTtl, playerId, 2000);
    expect(expired).not.toBeNull();
    // Not before its TTL ran out: it was served from the cache until then.
    expect(expired! - cachedBefore).toBeGreaterThanOrEqual(200);

    // The store that neither listened nor reached its TTL still has the destroyed key in memory.
    const still = (await stale.keys([playerId], { create: false })).get(playerId);
    expect(still).toBeInstanceOf(Buffer);
    expect(still!.equals(key)).toBe(true);
    // forget() is what the notice does.
    stale.forget(playerId);
    expect((await stale.keys([playerId], { create: false })).get(playerId)).toBeNull();
  });

  it('a read that was in flight when the erasure notice arrived does not put the destroyed key back in the cache', async () => {
    const playerId = randomUUID();
    const eraser = storeOn(db.pool);
    const key = (await eraser.keys([playerId], { create: true })).get(playerId)!;

    // A pool whose key reads run at once but answer only when the gate opens: a read that straddles the erasure.
    const base = newPool('straddling');
    let gate!: () => void;
    const opened = new Promise<void>((resolve) => (gate = resolve));
    let ran!: () => void;
    const readRan = new Promise<void>((resolve) => (ran = resolve));
    const held = new Proxy(base, {
      get(target, property, receiver) {
        if (property !== 'query') return Reflect.get(target, property, receiver);
        return async (...args: unknown[]) => {
          const text = typeof args[0] === 'string' ? args[0] : (args[0] as { text: string }).text;
          const result = await (target.query as (...a: unknown[]) => Promise<unknown>)(...args);
          if (/^\s*SELECT .* FROM player_keys WHERE player_id = ANY/s.test(text)) {
            ran();
            await opened;
          }
          return result;
        };
      },
    });
    const listening = storeOn(held);
    await listening.listen();
    const told = jest.spyOn(listening, 'forget');

    const inFlight = listening.keys([playerId], { create: false });
    await readRan; // it read the live key, and has not answered yet
    expect((await eraser.erase(playerId, 'gdpr', null)).fresh).toBe(true);
    for (let waited = 0; !told.mock.calls.some(([id]) => id === playerId) && waited < 2000; waited += 10) await sleep(10);
    expect(told).toHaveBeenCalledWith(playerId);
    gate();
    // The read began before the erasure: its caller may get the key it read.
    expect((await inFlight).get(playerId)?.equals(key)).toBe(true);
    // But the notice came after that read began, so the process must not keep serving the key
    // (here it would, for its whole TTL: 60 s by default).
    expect((await listening.keys([playerId], { create: false })).get(playerId)).toBeNull();
  });

  it('a store whose master key is not the one a key was written under fails with MasterKeyError, never “erased”', async () => {
    const writer = storeOn(db.pool);
    const live = randomUUID();
    const erased = randomUUID();
    await writer.keys([live, erased], { create: true });
    await writer.erase(erased, 'gdpr', null);

    const foreign = storeOn(otherPool, { wrapper: new LocalKeyWrapper(randomBytes(32)) });
    await expect(foreign.keys([live], { create: false })).rejects.toBeInstanceOf(MasterKeyError);
    await expect(foreign.keys([live], { create: true })).rejects.toBeInstanceOf(MasterKeyError);
    await expect(foreign.keys([live, erased], { create: false })).rejects.toBeInstanceOf(MasterKeyError);
    // A tombstone needs no unwrapping: erased reads as erased under any master key.
    expect((await foreign.keys([erased], { create: false })).get(erased)).toBeNull();

    // The same id but a key that does not unwrap (a KMS answering with another key): MasterKeyError too.
    const liar: KeyWrapper = {
      id: wrapper.id,
      wrap: (dataKey) => wrapper.wrap(dataKey),
      unwrap: (wrapped) => new LocalKeyWrapper(randomBytes(32)).unwrap(wrapped),
    };
    const confused = storeOn(otherPool, { wrapper: liar });
    await expect(confused.keys([live], { create: false })).rejects.toBeInstanceOf(MasterKeyError);

    // Nothing was changed by the failures: the right master key still reads the key.
    expect(await rowsOf(live)).toHaveLength(1);
    const right = storeOn(otherPool);
    expect((await right.keys([live], { create: false })).get(live)).toHaveLength(32);
  });

  it('erasing a player who never had a key leaves a tombstone: erased, and no key is ever made for them', async () => {
    const store = storeOn(db.pool);
    const playerId = randomUUID();
    expect(await store.has(playerId)).toBe(false);

    const { erasure, fresh } = await store.erase(playerId, 'asked before playing', 'admin:k9');
    expect(fresh).toBe(true);
    expect(await store.erasure(playerId)).toEqual({ playerId, reason: 'asked before playing', erasedBy: 'admin:k9', erasedAt: erasure.erasedAt, position: null });
    expect(await store.has(playerId)).toBe(true);
    const rows = await rowsOf(playerId);
    expect(rows).toHaveLength(1);
    expect(rows[0]).toMatchObject({ wrapped_key: null, wrapped_by: wrapper.id, erase_reason: 'asked before playing' });

    const cold = storeOn(otherPool);
    expect((await cold.keys([playerId], { create: true })).get(playerId)).toBeNull();
    expect(await rowsOf(playerId)).toHaveLength(1);
    expect((await store.erase(playerId, 'twice', null)).fresh).toBe(false);
  });
});
