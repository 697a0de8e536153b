import { randomUUID } from 'node:crypto';
import { startTestApp, type TestApp } from '../support/app';

type Response = Awaited<ReturnType<TestApp['request']>>;

/** Every error is application/problem+json with type, title, status, detail; validation errors name the bad field. */
const expectProblem = (res: Response, status: number, path?: string) => {
  expect({ status: res.status, body: res.body }).toMatchObject({ status, body: { status } });
  expect(res.headers['content-type']).toMatch(/application\/problem\+json/);
  expect(res.body).toEqual(
    expect.objectContaining({ type: expect.any(String), title: expect.any(String), status, detail: expect.any(String) }),
  );
  if (status === 400) {
    expect(Array.isArray(res.body.errors)).toBe(true);
    expect(res.body.errors.length).toBeGreaterThan(0);
  }
  if (path !== undefined) expect(res.body.errors.map((e: { path: string }) => e.path)).toContain(path);
};

describe('bad input is refused with a problem and changes nothing (e2e)', () => {
  let t: TestApp;
  const world = 'bad-input-world';
  const other = 'bad-input-other';
  const commands = `/v1/worlds/${world}/commands`;

  /** Number of events of a stream, 0 if it does not exist. */
  const eventCount = async (streamId: string, w = world): Promise<number> => {
    const res = await t.request({ method: 'GET', url: `/v1/worlds/${w}/streams/${streamId}/events?limit=1000` });
    if (res.status === 404) return 0;
    expect(res.status).toBe(200);
    return res.body.events.length;
  };
  const send = (body: unknown, options: { url?: string; key?: string | null; headers?: Record<string, string> } = {}) =>
    t.request({ method: 'POST', url: options.url ?? commands, body, key: options.key, headers: options.headers });
  const ok = async (type: string, payload: unknown, w = world) => {
    const res = await t.request({ method: 'POST', url: `/v1/worlds/${w}/commands`, body: { commandId: randomUUID(), type, payload } });
    expect(res.status).toBe(200);
    return res.body;
  };

  const entityId = randomUUID();
  const playerId = randomUUID();
  const npcId = randomUUID();
  const streams = {
    entity: `entity-${world}-${entityId}`,
    npc: `entity-${world}-${npcId}`,
    world: `world-${world}`,
    player: `player-${world}-${playerId}`,
    narrative: `narrative-${world}`,
  };
  let itemId: string;
  let spawnedId: string;
  let otherEntityId: string;

  /**
   * Deprecation warnings that the app's libraries emit through
   * process.emitWarning while it is built (Fastify's FSTDEP…, a library's
   * DeprecationWarning; Node's own deprecations bypass Jest's sandboxed
   * process). Other warnings are not this test's business (pg warns about an
   * sslmode in a user's DATABASE_URL, say).
   */
  let warnings: string[] = [];

  beforeAll(async () => {
    // Spied, not listened to: Jest's sandboxed `process` does not see the real one's 'warning' events.
    const spy = jest.spyOn(process, 'emitWarning');
    try {
      t = await startTestApp('e2e_bad_input', { CONSISTENCY_WAIT_MS: '200' });
    } finally {
      warnings = spy.mock.calls.map((args: unknown[]) => args.map(String).join(' ')).filter((w) => /Deprecat|FSTDEP|FastifyWarning/.test(w));
      spy.mockRestore();
    }
    itemId = randomUUID();
    await ok('entity.spawn', { entityId: itemId, kind: 'item', attributes: {} });
    spawnedId = randomUUID();
    await ok('entity.spawn', { entityId: spawnedId, kind: 'npc', attributes: { name: 'Mira' } });
    otherEntityId = randomUUID();
    await ok('entity.spawn', { entityId: otherEntityId, kind: 'npc', attributes: {} }, other);
  });
  afterAll(async () => t.close());

  describe('POST /v1/worlds/{w}/commands', () => {
    const spawn = (payload: Record<string, unknown> = {}, extra: Record<string, unknown> = {}) => ({
      commandId: randomUUID(),
      type: 'entity.spawn',
      payload: { entityId, kind: 'npc', attributes: {}, ...payload },
      ...extra,
    });
    const cmd = (type: string, payload: Record<string, unknown>) => ({ commandId: randomUUID(), type, payload });

    it.each([
      ['no Authorization', null, 401],
      ['an unknown key', 'not-a-key', 401],
    ])('%s → 401 problem, nothing appended', async (_label, key, status) => {
      const res = await send(spawn(), { key });
      expectProblem(res, status);
      expect(await eventCount(streams.entity)).toBe(0);
    });

    it.each<[string, () => unknown, string | undefined, string | undefined]>([
      ['bad worldId', () => spawn(), 'worldId', `/v1/worlds/${encodeURIComponent('bad world!')}/commands`],
      ['a body that is an array', () => '[]', undefined, undefined],
      ['a body that is a string', () => '"x"', undefined, undefined],
      ['invalid JSON', () => '{"commandId": ', undefined, undefined],
      ['missing commandId', () => ({ type: 'entity.spawn', payload: { entityId, kind: 'npc' } }), 'commandId', undefined],
      ['a non-UUID commandId', () => spawn({}, { commandId: 'not-a-uuid' }), 'commandId', undefined],
      ['an unknown type', () => ({ commandId: randomUUID(), type: 'entity.explode', payload: { entityId } }), 'type', undefined],
      ['an unknown top-level field', () => spawn({}, { extra: 1 }), undefined, undefined],
      ['expectedRevision -1', () => spawn({}, { expectedRevision: -1 }), 'expectedRevision', undefined],
      ["expectedRevision 'latest'", () => spawn({}, { expectedRevision: 'latest' }), 'expectedRevision', undefined],
      ['entity.spawn with entityId abc', () => cmd('entity.spawn', { entityId: 'abc', kind: 'npc' }), 'payload.entityId', undefined],
      ['an unknown payload field', () => spawn({ colour: 'red' }), undefined, undefined],
    ])('%s → 400, nothing appended', async (_label, body, path, url) => {
      const res = await send(body(), { url });
      expectProblem(res, 400, path);
      expect(await eventCount(streams.entity)).toBe(0);
    });

    it.each<[string, () => unknown, string, string | undefined]>([
      ['entity.update with empty set and unset', () => cmd('entity.update', { entityId: spawnedId, set: {}, unset: [] }), 'entity', 'payload.set'],
      ['world.advance_time ticks 0', () => cmd('world.advance_time', { ticks: 0 }), 'world', 'payload.ticks'],
      ['world.set_faction_standing standing 101', () => cmd('world.set_faction_standing', { factionId: randomUUID(), otherFactionId: randomUUID(), standing: 101 }), 'world', 'payload.standing'],
      ['player.record_action action over 100 chars', () => cmd('player.record_action', { playerId, action: 'x'.repeat(101), context: {} }), 'player', 'payload.action'],
      ['player.record_action at not a date', () => cmd('player.record_action', { playerId, action: 'jump', context: {}, at: 'yesterday' }), 'player', 'payload.at'],
      ['player.set_profile bad email', () => cmd('player.set_profile', { playerId, displayName: 'Ann', email: 'not-an-email' }), 'player', 'payload.email'],
      ['npc.record_memory embedding with a string', () => cmd('npc.record_memory', { npcId, text: 'hi', embedding: [0.1, 'x'] }), 'npc', 'payload.embedding.1'],
      ['npc.record_memory empty embedding', () => cmd('npc.record_memory', { npcId, text: 'hi', embedding: [] }), 'npc', 'payload.embedding'],
      ['npc.record_memory importance 11', () => cmd('npc.record_memory', { npcId, text: 'hi', embedding: [1], importance: 11 }), 'npc', 'payload.importance'],
      ['narrative.set_flag flag with a space', () => cmd('narrative.set_flag', { flag: 'bridge open', value: true }), 'narrative', 'payload.flag'],
      ['narrative.advance_plot unknown payload field', () => cmd('narrative.advance_plot', { plotId: 'main', stage: 'a', extra: 1 }), 'narrative', undefined],
    ])('%s → 400, nothing appended', async (_label, body, stream, path) => {
      const streamId = stream === 'entity' ? `entity-${world}-${spawnedId}` : streams[stream as keyof typeof streams];
      const before = await eventCount(streamId);
      const res = await send(body());
      expectProblem(res, 400, path);
      expect(await eventCount(streamId)).toBe(before);
    });

    it('a body over 1 MiB → 413, nothing appended', async () => {
      const res = await send(spawn({ attributes: { blob: 'x'.repeat(1024 * 1024 + 10) } }));
      expectProblem(res, 413);
      expect(await eventCount(streams.entity)).toBe(0);
    });
  });

  describe('POST /v1/worlds/{w}/npcs/{npcId}/memories', () => {
    const memories = (id: string) => `/v1/worlds/${world}/npcs/${id}/memories`;

    it('a non-UUID npcId → 400 naming npcId', async () => {
      expectProblem(await send({ text: 'hi', embedding: [1] }, { url: memories('abc') }), 400, 'npcId');
    });

    it('empty text → 400, nothing appended', async () => {
      const before = await eventCount(`entity-${world}-${spawnedId}`);
      expectProblem(await send({ text: '', embedding: [1] }, { url: memories(spawnedId) }), 400, 'text');
      expect(await eventCount(`entity-${world}-${spawnedId}`)).toBe(before);
    });

    it('an unknown NPC → 404, nothing appended', async () => {
      const unknown = randomUUID();
      expectProblem(await send({ text: 'hi', embedding: [1, 0] }, { url: memories(unknown) }), 404);
      expect(await eventCount(`entity-${world}-${unknown}`)).toBe(0);
    });

    it('an item rather than an NPC → 422, nothing appended', async () => {
      const before = await eventCount(`entity-${world}-${itemId}`);
      expect(before).toBe(1);
      expectProblem(await send({ text: 'hi', embedding: [1, 0] }, { url: memories(itemId) }), 422);
      expect(await eventCount(`entity-${world}-${itemId}`)).toBe(before);
    });
  });

  describe('GET routes', () => {
    const w = `/v1/worlds/${world}`;
    it.each<[string, () => string, number, string | undefined]>([
      ['entity: non-UUID id', () => `${w}/entities/abc`, 400, 'entityId'],
      ['entity: atRevision=-1', () => `${w}/entities/${spawnedId}?atRevision=-1`, 400, 'atRevision'],
      ['entity: atRevision and asOf together', () => `${w}/entities/${spawnedId}?atRevision=0&asOf=2026-01-01T00:00:00Z`, 400, 'atRevision'],
      ['entity: asOf not a date', () => `${w}/entities/${spawnedId}?asOf=yesterday`, 400, 'asOf'],
      ['entity: asOf in the future', () => `${w}/entities/${spawnedId}?asOf=2999-01-01T00:00:00Z`, 400, 'asOf'],
      ['stream events: asOf in the future', () => `${w}/streams/entity-${world}-${spawnedId}/events?asOf=2999-01-01T00:00:00Z`, 400, 'asOf'],
      ['entity: atRevision beyond head', () => `${w}/entities/${spawnedId}?atRevision=99`, 404, undefined],
      ['entity: an unknown query param', () => `${w}/entities/${spawnedId}?colour=red`, 400, undefined],
      ['entity: never spawned', () => `${w}/entities/${randomUUID()}`, 404, undefined],
      ['entities: limit=0', () => `${w}/entities?limit=0`, 400, 'limit'],
      ['entities: limit=10000', () => `${w}/entities?limit=10000`, 400, 'limit'],
      ['entities: locationId not a UUID', () => `${w}/entities?locationId=abc`, 400, 'locationId'],
      ['state: minPosition=abc', () => `${w}/state?minPosition=abc`, 400, 'minPosition'],
      ['state: minPosition far in the future', () => `${w}/state?minPosition=999999999`, 504, undefined],
      ['narrative: minPosition=abc', () => `${w}/narrative?minPosition=abc`, 400, 'minPosition'],
      ['narrative: minPosition far in the future', () => `${w}/narrative?minPosition=999999999`, 504, undefined],
      ['player: unknown', () => `${w}/players/${randomUUID()}`, 404, undefined],
      ['player: non-UUID', () => `${w}/players/abc`, 400, 'playerId'],
      ['player history: from not a date', () => `${w}/players/${playerId}/history?from=yesterday`, 400, 'from'],
      ['events: unknown stream', () => `${w}/streams/entity-${world}-${randomUUID()}/events`, 404, undefined],
      ['events: a stream of another world', () => `${w}/streams/entity-${other}-${otherEntityId}/events`, 404, undefined],
      ['events: limit=0', () => `${w}/streams/entity-${world}-${spawnedId}/events?limit=0`, 400, 'limit'],
    ])('%s → problem', async (_label, url, status, path) => {
      expectProblem(await t.request({ method: 'GET', url: url() }), status, path);
    });

    it('the other world’s stream is really there (so the 404 above is about ownership)', async () => {
      expect(await eventCount(`entity-${other}-${otherEntityId}`, other)).toBe(1);
    });
  });

  describe('open routes and unknown routes', () => {
    it.each(['/health/live', '/health/ready'])('%s needs no key', async (url) => {
      expect((await t.request({ method: 'GET', url, key: null })).status).toBe(200);
    });

    it('/docs/json needs no key and lists paths', async () => {
      const res = await t.request({ method: 'GET', url: '/docs/json', key: null });
      expect(res.status).toBe(200);
      expect(res.body.paths).toEqual(expect.any(Object));
    });

    it('an unknown route → 404 problem', async () => {
      expectProblem(await t.request({ method: 'GET', url: '/v1/no/such/route' }), 404);
    });

    it('a path parameter up to 256 characters reaches its route (a stream name is up to 108); a longer one → 414 problem', async () => {
      const longest = `entity-${'a'.repeat(64)}-${randomUUID()}`;
      expect(longest).toHaveLength(108);
      const res = await t.request({ method: 'GET', url: `/v1/worlds/${world}/streams/${longest}/events` });
      expectProblem(res, 404);
      expect(res.body.detail).not.toBe('no such route');
      // At the limit the route's own validation answers (not a stream name); one past it, the router does.
      const atLimit = `entity-${'a'.repeat(249)}`;
      expect(atLimit).toHaveLength(256);
      expectProblem(await t.request({ method: 'GET', url: `/v1/worlds/${world}/streams/${atLimit}/events` }), 400);
      expectProblem(await t.request({ method: 'GET', url: `/v1/worlds/${world}/streams/${atLimit}a/events` }), 414);
    });

    it('the app is built without a deprecation warning from its framework (Fastify, Nest: process.emitWarning)', () => {
      expect(warnings).toEqual([]);
    });
  });
});
