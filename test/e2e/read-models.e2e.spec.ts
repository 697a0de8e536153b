import { randomBytes, randomUUID } from 'node:crypto';
import Redis from 'ioredis';
import { Client } from 'pg';
import { QueryBus } from '@nestjs/cqrs';
import { eventually } from '@lorestore/event-store/testing';
import { ADMIN_KEY, TEST_EVENT_STORE, startTestApp, type TestApp } from '../support/app';
import { describeWithRedis } from '../support/services';

/** Queries answered from the read models (Redis hot state, then PostgreSQL), with consistency tokens. */
describeWithRedis('read models through HTTP (e2e, Redis hot state)', (redisUrl) => {
  let t: TestApp;
  let redis: Redis;
  const prefix = `e2e:${randomBytes(4).toString('hex')}:`;
  const world = 'rm-world';

  beforeAll(async () => {
    t = await startTestApp('e2e_read_models', { REDIS_URL: redisUrl, REDIS_KEY_PREFIX: prefix });
    redis = new Redis(redisUrl);
  });
  afterAll(async () => {
    await t.close();
    const keys = await redis.keys(`${prefix}*`);
    if (keys.length) await redis.del(...keys);
    redis.disconnect();
  });

  const send = async (type: string, payload: unknown) => {
    const response = await t.request({ method: 'POST', url: `/v1/worlds/${world}/commands`, body: { commandId: randomUUID(), type, payload } });
    expect(response.status).toBe(200);
    return response.body as { position: number; revision: number };
  };
  const get = (url: string, token?: number, key?: string) =>
    t.request({ method: 'GET', url, ...(token ? { headers: { 'x-consistency-token': String(token) } } : {}), ...(key ? { key } : {}) });

  it('serves an entity from Redis, and from PostgreSQL when the key is gone, filling Redis again', async () => {
    const entityId = randomUUID();
    await send('entity.spawn', { entityId, kind: 'npc', attributes: { name: 'Oda' } });
    const { position } = await send('entity.update', { entityId, set: { mood: 'calm' }, unset: [] });
    const first = await get(`/v1/worlds/${world}/entities/${entityId}`, position);
    expect(first.body).toMatchObject({ id: entityId, attributes: { name: 'Oda', mood: 'calm' }, revision: 1 });

    const key = `${prefix}entity:{${world}:${entityId}}`;
    expect(await redis.hget(key, 'revision')).toBe('1');
    const ttl = await redis.ttl(key);
    expect(ttl).toBeGreaterThan(3500);

    await redis.del(key);
    const again = await get(`/v1/worlds/${world}/entities/${entityId}`);
    expect(again.body).toEqual(first.body);
    // The fill is not awaited by the read (it must not slow it down).
    expect(await eventually(() => redis.hget(key, 'revision'), (v) => v !== null)).toBe('1');
  });

  it('answers a plain GET entity on the short path with what the full route answers (200, 404, 410), and leaves the rest to Nest', async () => {
    // The short path calls the query handler directly: the bus counts the requests Nest answered.
    const bus = t.app.get(QueryBus);
    const viaNest = jest.spyOn(bus, 'execute');
    try {
      const url = (id: string) => `/v1/worlds/${world}/entities/${id}`;
      const same = async (plainUrl: string, status: number) => {
        const before = viaNest.mock.calls.length;
        const plain = await get(plainUrl);
        expect(viaNest.mock.calls.length).toBe(before);
        // minPosition=0 waits for nothing: the same read, through Nest's pipeline.
        const full = await get(`${plainUrl}?minPosition=0`);
        expect(viaNest.mock.calls.length).toBe(before + 1);
        expect(plain.status).toBe(status);
        expect(full.status).toBe(status);
        expect(plain.body).toEqual(full.body);
        expect(plain.headers['content-type']).toBe(full.headers['content-type']);
        return plain;
      };
      const entityId = randomUUID();
      await send('entity.spawn', { entityId, kind: 'npc', attributes: { name: 'Ilse' } });
      const { position } = await send('entity.move', { entityId, locationId: randomUUID() });
      await get(url(entityId), position);
      const found = await same(url(entityId), 200);
      expect(found.body).toMatchObject({ id: entityId, kind: 'npc', attributes: { name: 'Ilse' }, revision: 1 });
      expect((await same(url(entityId.toUpperCase()), 200)).body).toEqual(found.body);
      expect((await same(url(randomUUID()), 404)).body).toMatchObject({ status: 404, title: 'Entity not found' });
      const { position: gone } = await send('entity.despawn', { entityId, reason: 'slain' });
      await get(url(entityId), gone);
      expect((await same(url(entityId), 410)).body).toMatchObject({ status: 410, reason: 'slain', revision: 2 });

      // Refused before any handler, as before: a bad id (400 naming it), a missing or unknown key (401).
      const calls = viaNest.mock.calls.length;
      const bad = await get(url('not-a-uuid'));
      expect(bad.status).toBe(400);
      expect(bad.body).toMatchObject({ errors: [{ path: 'entityId' }] });
      expect((await get(`/v1/worlds/${'x'.repeat(65)}/entities/${entityId}`)).body).toMatchObject({ errors: [{ path: 'worldId' }] });
      expect((await t.request({ method: 'GET', url: url(entityId), key: null })).status).toBe(401);
      const unknown = await get(url(entityId), undefined, 'no-such-key-0000');
      expect(unknown.status).toBe(401);
      expect(unknown.headers['www-authenticate']).toBe('Bearer');
      expect(viaNest.mock.calls.length).toBe(calls);
    } finally {
      viaNest.mockRestore();
    }
  });

  it('answers 504 with Retry-After when the read model does not reach the token in time', async () => {
    const late = await get(`/v1/worlds/${world}/entities/${randomUUID()}?minPosition=999999999`);
    expect(late.status).toBe(504);
    expect(late.headers['retry-after']).toBe('1');
    expect(late.body).toMatchObject({ status: 504, title: 'Not caught up' });
    expect(String(late.body && (late.body as { detail: string }).detail)).toMatch(/entities read model/);
  });

  it('pages through a world’s entities by kind and location, in id order, with nothing twice', async () => {
    const market = randomUUID();
    const npcs = Array.from({ length: 5 }, () => randomUUID());
    for (const entityId of npcs) await send('entity.spawn', { entityId, kind: 'merchant', attributes: {}, locationId: market });
    await send('entity.spawn', { entityId: randomUUID(), kind: 'merchant', attributes: {}, locationId: randomUUID() });
    const token = (await send('entity.despawn', { entityId: npcs[4]!, reason: 'left' })).position;

    const seen: string[] = [];
    let cursor: string | null = null;
    do {
      const page: { status: number; body: { items: { id: string }[]; nextCursor: string | null } } = (await get(
        `/v1/worlds/${world}/entities?kind=merchant&locationId=${market}&limit=2${cursor ? `&cursor=${cursor}` : ''}`,
        token,
      )) as never;
      expect(page.status).toBe(200);
      seen.push(...page.body.items.map((i) => i.id));
      cursor = page.body.nextCursor;
    } while (cursor);
    expect(seen).toEqual(npcs.slice(0, 4).sort());
  });

  it('refuses a cursor it did not issue (400 naming the field), and changes nothing', async () => {
    const bad = await get(`/v1/worlds/${world}/entities?cursor=${Buffer.from('not-a-cursor').toString('base64url')}`);
    expect(bad.status).toBe(400);
    expect(bad.body).toMatchObject({ errors: [{ path: 'cursor' }] });
  });

  it('reads player history from the partitioned table: newest first, by time range, in pages', async () => {
    const playerId = randomUUID();
    const months = [-3, -2, -1, 0].map((k) => {
      const d = new Date();
      d.setUTCDate(10);
      d.setUTCMonth(d.getUTCMonth() + k);
      return d.toISOString();
    });
    let token = 0;
    for (const [i, at] of months.entries()) token = (await send('player.record_action', { playerId, action: `a${i}`, context: { i }, at })).position;
    const all = await get(`/v1/worlds/${world}/players/${playerId}/history`, token);
    expect(all.body.items.map((i: { action: string }) => i.action)).toEqual(['a3', 'a2', 'a1', 'a0']);
    const range = await get(`/v1/worlds/${world}/players/${playerId}/history?from=${encodeURIComponent(months[1]!)}&to=${encodeURIComponent(months[3]!)}`);
    expect(range.body.items.map((i: { action: string }) => i.action)).toEqual(['a2', 'a1']);
    const page1 = await get(`/v1/worlds/${world}/players/${playerId}/history?limit=3`);
    expect(page1.body.items).toHaveLength(3);
    const page2 = await get(`/v1/worlds/${world}/players/${playerId}/history?limit=3&cursor=${page1.body.nextCursor}`);
    expect(page2.body.items.map((i: { action: string }) => i.action)).toEqual(['a0']);
    expect(page2.body.nextCursor).toBeNull();
    const past = await get(`/v1/worlds/${world}/players/${playerId}/history?atRevision=1`);
    expect(past.body.items.map((i: { action: string }) => i.action)).toEqual(['a1', 'a0']);
  });

  it('lists every projection with checkpoint and lag for admins only', async () => {
    const { position } = await send('world.advance_time', { ticks: 1 });
    await get(`/v1/worlds/${world}/state`, position);
    expect((await t.request({ method: 'GET', url: '/v1/admin/projections', key: null })).status).toBe(401);
    expect((await get('/v1/admin/projections')).status).toBe(403);
    // The memory index's projection runs on its own checkpoint: wait for it too.
    let list = await get('/v1/admin/projections', undefined, ADMIN_KEY);
    for (let i = 0; i < 200 && list.body.some((p: { checkpoint: number | null }) => (p.checkpoint ?? 0) < position); i++) {
      await new Promise((r) => setTimeout(r, 50));
      list = await get('/v1/admin/projections', undefined, ADMIN_KEY);
    }
    expect(list.status).toBe(200);
    const names = list.body.map((p: { name: string }) => p.name);
    // EventStoreDB mode lists its mirror first; its checkpoint is an EventStoreDB position.
    const mirror = TEST_EVENT_STORE === 'esdb' ? ['esdb_mirror'] : [];
    expect(names).toEqual([...mirror, 'entities', 'world_state', 'narrative_state', 'player_state', 'player_history', 'npc_memories']);
    if (TEST_EVENT_STORE === 'esdb') expect(list.body[0]).toMatchObject({ name: 'esdb_mirror', status: 'caught_up', lag: { events: 0 }, projector: { leader: true } });
    for (const p of list.body.filter((p: { name: string }) => p.name !== 'esdb_mirror')) {
      expect(p.checkpoint).toBeGreaterThanOrEqual(position);
      expect(p.checkpointCommit).toMatch(/^\d+$/);
      expect(p).toMatchObject({ version: 1, lag: { events: 0, ms: 0 }, status: 'caught_up', projector: { mode: 'inline', leader: true } });
      expect(p.eventsProcessed).toBeGreaterThan(0);
    }
  });

  it('a projector that keeps failing says why: error, failures in a row and checkpoint in /v1/admin/projections and a metric, gone with the next committed batch', async () => {
    const admin = new Client({ connectionString: t.db.url });
    await admin.connect();
    const table = `"${t.db.schema}".entities`;
    try {
      const { position: before } = await send('world.advance_time', { ticks: 1 });
      await get(`/v1/worlds/${world}/state`, before);
      // The projector's next batch cannot commit: its table is gone (as after a bad manual migration).
      await admin.query(`ALTER TABLE ${table} RENAME TO entities_away`);
      const { position } = await send('entity.spawn', { entityId: randomUUID(), kind: 'npc', attributes: {} });
      const failing = await eventually(
        async () => (await get('/v1/admin/projections', undefined, ADMIN_KEY)).body as { name: string; error: { message: string; failures: number; since: string; lastAt: string; checkpoint: number | null } | null; status: string }[],
        (list) => (list.find((p) => p.name === 'entities')?.error?.failures ?? 0) >= 2,
        15_000,
      );
      const entities = failing.find((p) => p.name === 'entities')!;
      expect(entities.error!.message).toMatch(/entities/);
      expect(entities.error!.checkpoint).toBeGreaterThanOrEqual(before);
      expect(entities.error!.checkpoint).toBeLessThan(position);
      expect(Date.parse(entities.error!.lastAt)).toBeGreaterThan(Date.parse(entities.error!.since));
      // Every read model waits on the same batch; the memory index runs on its own and is not failing.
      expect(failing.find((p) => p.name === 'player_state')!.error).not.toBeNull();
      expect(failing.find((p) => p.name === 'npc_memories')!.error).toBeNull();
      const metrics = await t.request({ method: 'GET', url: '/metrics', key: null });
      expect(metrics.body).toMatch(/lorestore_projection_failures\{projection="entities"\} [1-9]\d*/);

      await admin.query(`ALTER TABLE "${t.db.schema}".entities_away RENAME TO entities`);
      expect((await get(`/v1/worlds/${world}/state`, position)).status).toBe(200);
      const healed = await eventually(
        async () => (await get('/v1/admin/projections', undefined, ADMIN_KEY)).body as { name: string; error: unknown }[],
        (list) => list.every((p) => p.error === null),
        15_000,
      );
      expect(healed.find((p) => p.name === 'entities')).toMatchObject({ error: null, status: 'caught_up' });
      // The gauges read the checkpoints at most once a second.
      const after = await eventually(
        async () => String((await t.request({ method: 'GET', url: '/metrics', key: null })).body),
        (text) => /lorestore_projection_failures\{projection="entities"\} 0/.test(text),
        5000,
      );
      expect(after).toMatch(/lorestore_projection_failures\{projection="entities"\} 0/);
    } finally {
      await admin.query(`ALTER TABLE IF EXISTS "${t.db.schema}".entities_away RENAME TO entities`).catch(() => undefined);
      await admin.end();
    }
  });

  it('the NPC memory projection says why it fails too, and the error goes with its next committed batch', async () => {
    const admin = new Client({ connectionString: t.db.url });
    await admin.connect();
    try {
      const npcId = randomUUID();
      await send('entity.spawn', { entityId: npcId, kind: 'npc', attributes: {} });
      await admin.query(`ALTER TABLE "${t.db.schema}".npc_memories RENAME TO npc_memories_away`);
      const recorded = await t.request({ method: 'POST', url: `/v1/worlds/${world}/npcs/${npcId}/memories`, body: { text: 'the smith owes me', embedding: [1, 0] } });
      expect(recorded.status).toBe(200);
      const failing = await eventually(
        async () => (await get('/v1/admin/projections', undefined, ADMIN_KEY)).body as { name: string; error: { message: string; failures: number } | null }[],
        (list) => (list.find((p) => p.name === 'npc_memories')?.error?.failures ?? 0) >= 1,
        15_000,
      );
      expect(failing.find((p) => p.name === 'npc_memories')!.error!.message).toMatch(/npc_memories/);
      expect(failing.find((p) => p.name === 'entities')!.error).toBeNull();

      await admin.query(`ALTER TABLE "${t.db.schema}".npc_memories_away RENAME TO npc_memories`);
      const healed = await eventually(
        async () => (await get('/v1/admin/projections', undefined, ADMIN_KEY)).body as { name: string; error: unknown; status: string }[],
        (list) => list.find((p) => p.name === 'npc_memories')?.error === null,
        15_000,
      );
      expect(healed.find((p) => p.name === 'npc_memories')).toMatchObject({ error: null });
    } finally {
      await admin.query(`ALTER TABLE IF EXISTS "${t.db.schema}".npc_memories_away RENAME TO npc_memories`).catch(() => undefined);
      await admin.end();
    }
  });

  it('reports hot state and projections in readiness, and lag in the metrics', async () => {
    const ready = await t.request({ method: 'GET', url: '/health/ready', key: null });
    expect(ready.status).toBe(200);
    expect(ready.body.info.hotState).toEqual({ status: 'up', kind: 'redis' });
    expect(ready.body.info.projections.status).toBe('up');
    const metrics = await t.request({ method: 'GET', url: '/metrics', key: null });
    expect(metrics.body).toMatch(/lorestore_projection_lag_events\{projection="entities"\} 0/);
    expect(metrics.body).toMatch(/lorestore_hot_state_reads_total\{result="(hit|miss)"\} \d+/);
  });
});
