import { randomUUID } from 'node:crypto';
import { startTestApp, type TestApp } from '../support/app';

describe('commands through HTTP (e2e)', () => {
  let t: TestApp;
  const world = 'e2e-world';
  beforeAll(async () => {
    t = await startTestApp('e2e_commands');
  });
  afterAll(async () => t.close());

  const send = (type: string, payload: unknown, extra: Record<string, unknown> = {}) =>
    t.request({ method: 'POST', url: `/v1/worlds/${world}/commands`, body: { commandId: randomUUID(), type, payload, ...extra } });

  it('spawns, moves and reads an entity, also at an older revision', async () => {
    const entityId = randomUUID();
    const [home, market] = [randomUUID(), randomUUID()];
    const spawned = await send('entity.spawn', { entityId, kind: 'npc', attributes: { name: 'Mira' }, locationId: home });
    expect(spawned.status).toBe(200);
    expect(spawned.body).toMatchObject({ streamId: `entity-${world}-${entityId}`, revision: 0, duplicate: false });
    expect(spawned.body.events).toEqual([{ type: 'EntitySpawned', revision: 0, position: spawned.body.position }]);
    const moved = await send('entity.move', { entityId, locationId: market }, { expectedRevision: 0 });
    expect(moved.status).toBe(200);
    expect(moved.body.position).toBeGreaterThan(spawned.body.position);

    // The read models follow the log: the write's position is the token that makes a read see it.
    const now = await t.request({ method: 'GET', url: `/v1/worlds/${world}/entities/${entityId}?minPosition=${moved.body.position}` });
    expect(now.body).toMatchObject({ id: entityId, kind: 'npc', attributes: { name: 'Mira' }, locationId: market, revision: 1 });
    const before = await t.request({ method: 'GET', url: `/v1/worlds/${world}/entities/${entityId}?atRevision=0` });
    expect(before.body).toMatchObject({ locationId: home, revision: 0 });
    const byPosition = await t.request({ method: 'GET', url: `/v1/worlds/${world}/entities/${entityId}?atPosition=${spawned.body.position}` });
    expect(byPosition.body.locationId).toBe(home);
    const withToken = await t.request({ method: 'GET', url: `/v1/worlds/${world}/entities/${entityId}`, headers: { 'x-consistency-token': String(moved.body.position) } });
    expect(withToken.body.locationId).toBe(market);
  });

  it('answers 409 with the current revision on a stale expectedRevision, and changes nothing', async () => {
    const entityId = randomUUID();
    await send('entity.spawn', { entityId, kind: 'item', attributes: {} });
    const updated = await send('entity.update', { entityId, set: { shiny: true } });
    const stale = await send('entity.update', { entityId, set: { shiny: false } }, { expectedRevision: 0 });
    expect(stale.status).toBe(409);
    expect(stale.headers['content-type']).toMatch(/application\/problem\+json/);
    expect(stale.body).toMatchObject({ status: 409, currentRevision: 1 });
    const read = await t.request({ method: 'GET', url: `/v1/worlds/${world}/entities/${entityId}?minPosition=${updated.body.position}` });
    expect(read.body.attributes).toEqual({ shiny: true });
  });

  it('lets exactly one of 50 concurrent commands with the same expectedRevision through', async () => {
    const entityId = randomUUID();
    await send('entity.spawn', { entityId, kind: 'npc', attributes: {} });
    const responses = await Promise.all(Array.from({ length: 50 }, (_, i) => send('entity.update', { entityId, set: { i } }, { expectedRevision: 0 })));
    expect(responses.filter((r) => r.status === 200)).toHaveLength(1);
    expect(responses.filter((r) => r.status === 409)).toHaveLength(49);
    const events = await t.request({ method: 'GET', url: `/v1/worlds/${world}/streams/entity-${world}-${entityId}/events` });
    expect(events.body.events).toHaveLength(2);
  });

  it('appends once for 20 concurrent copies of one commandId, all answered alike', async () => {
    const entityId = randomUUID();
    const body = { commandId: randomUUID(), type: 'entity.spawn', payload: { entityId, kind: 'npc', attributes: {} } };
    const responses = await Promise.all(Array.from({ length: 20 }, () => t.request({ method: 'POST', url: `/v1/worlds/${world}/commands`, body })));
    expect(responses.map((r) => r.status)).toEqual(Array(20).fill(200));
    expect(responses.filter((r) => !r.body.duplicate)).toHaveLength(1);
    expect(new Set(responses.map((r) => r.body.position)).size).toBe(1);
    const events = await t.request({ method: 'GET', url: `/v1/worlds/${world}/streams/entity-${world}-${entityId}/events` });
    expect(events.body.events).toHaveLength(1);
  });

  it('refuses a commandId reused for another command with 422', async () => {
    const commandId = randomUUID();
    const entityId = randomUUID();
    await t.request({ method: 'POST', url: `/v1/worlds/${world}/commands`, body: { commandId, type: 'entity.spawn', payload: { entityId, kind: 'npc' } } });
    const reused = await t.request({ method: 'POST', url: `/v1/worlds/${world}/commands`, body: { commandId, type: 'entity.spawn', payload: { entityId, kind: 'item' } } });
    expect(reused.status).toBe(422);
    expect(reused.body.type).toBe('urn:lorestore:problem:command-id-reused');
    // Also when the reused id carries a command the domain would refuse anyway.
    const refusedToo = await t.request({ method: 'POST', url: `/v1/worlds/${world}/commands`, body: { commandId, type: 'entity.move', payload: { entityId: randomUUID(), locationId: randomUUID() } } });
    expect(refusedToo.body.type).toBe('urn:lorestore:problem:command-id-reused');
  });

  it('maps domain refusals: 404 never spawned, 410 despawned, 422 already exists', async () => {
    const entityId = randomUUID();
    expect((await send('entity.move', { entityId, locationId: randomUUID() })).status).toBe(404);
    await send('entity.spawn', { entityId, kind: 'npc' });
    expect((await send('entity.spawn', { entityId, kind: 'npc' })).status).toBe(422);
    const despawned = await send('entity.despawn', { entityId, reason: 'quest over' });
    const moved = await send('entity.move', { entityId, locationId: randomUUID() });
    expect(moved.status).toBe(410);
    expect(moved.body.code).toBe('gone');
    expect((await t.request({ method: 'GET', url: `/v1/worlds/${world}/entities/${entityId}?minPosition=${despawned.body.position}` })).status).toBe(410);
  });

  it('serves Prometheus metrics without a key, counting commands by type and outcome', async () => {
    const other = await t.request({ method: 'POST', url: '/v1/worlds/metrics-world/commands', body: { commandId: randomUUID(), type: 'world.advance_time', payload: { ticks: 1 } } });
    expect(other.status).toBe(200);
    const metrics = await t.request({ method: 'GET', url: '/metrics', key: null });
    expect(metrics.status).toBe(200);
    expect(metrics.headers['content-type']).toMatch(/text\/plain/);
    expect(metrics.body).toMatch(/lorestore_commands_total\{type="world.advance_time",outcome="ok"\} \d+/);
    expect(metrics.body).toMatch(/lorestore_append_batch_size_count \d+/);
    expect(metrics.body).toMatch(/lorestore_append_fast_path_fallbacks_total \d+/);
  });

  it('documents every command type in the OpenAPI document, with no dangling references', async () => {
    const docs = await t.request({ method: 'GET', url: '/docs/json', key: null });
    const post = docs.body.paths['/v1/worlds/{worldId}/commands'].post;
    const variants = post.requestBody.content['application/json'].schema.oneOf.map((v: { title: string }) => v.title);
    expect(variants).toEqual(expect.arrayContaining(['entity.spawn', 'world.set_weather', 'player.set_profile', 'npc.record_memory', 'npc.forget_memory']));
    expect(variants).toHaveLength(14);
    expect(JSON.stringify(docs.body)).not.toMatch(/\$defs|"\$schema"/);
    const token = docs.body.paths['/v1/worlds/{worldId}/state'].get.parameters.find((p: { name: string }) => p.name === 'x-consistency-token');
    expect(token.required).toBe(false);
  });

  it('runs every command type of API.md', async () => {
    const playerId = randomUUID();
    const npcId = randomUUID();
    const ok = [
      await send('world.advance_time', { ticks: 10 }),
      await send('world.set_weather', { weather: 'rain', regionId: 'north' }),
      await send('world.set_faction_standing', { factionId: randomUUID(), otherFactionId: randomUUID(), standing: -40 }),
      await send('player.record_action', { playerId, action: 'jump', context: { height: 2 } }),
      await send('player.change_relationship', { playerId, targetId: npcId, delta: 150 }),
      await send('player.set_profile', { playerId, displayName: 'Ann', email: 'ann@example.com', locale: 'en-GB' }),
      await send('narrative.advance_plot', { plotId: 'main-quest', stage: 'act-1', choices: { spared: true } }),
      await send('narrative.set_flag', { flag: 'bridge.open', value: true }),
      await send('entity.spawn', { entityId: npcId, kind: 'npc' }),
      await send('npc.record_memory', { npcId, text: 'Ann jumped', embedding: [0.1, 0.2], subjects: [playerId] }),
    ];
    expect(ok.map((r) => r.status)).toEqual(Array(ok.length).fill(200));
    const headers = { 'x-consistency-token': String(Math.max(...ok.map((r) => r.body.position as number))) };
    const state = await t.request({ method: 'GET', url: `/v1/worlds/${world}/state`, headers });
    expect(state.body).toMatchObject({ time: 10, weather: { regions: { north: 'rain' } } });
    const player = await t.request({ method: 'GET', url: `/v1/worlds/${world}/players/${playerId}`, headers });
    expect(player.body.relationships[npcId]).toBe(100);
    const history = await t.request({ method: 'GET', url: `/v1/worlds/${world}/players/${playerId}/history`, headers });
    expect(history.body.items.map((i: { action: string }) => i.action)).toEqual(['jump']);
    const narrative = await t.request({ method: 'GET', url: `/v1/worlds/${world}/narrative`, headers });
    expect(narrative.body).toMatchObject({ plots: { 'main-quest': { stage: 'act-1' } }, flags: { 'bridge.open': true } });
    const memory = await t.request({ method: 'POST', url: `/v1/worlds/${world}/npcs/${npcId}/memories`, body: { text: 'saw a dragon', embedding: [1, 0] } });
    expect(memory.status).toBe(200);
    expect(memory.body.memoryId).toMatch(/^[0-9a-f-]{36}$/);
    const entities = await t.request({ method: 'GET', url: `/v1/worlds/${world}/entities?kind=npc&limit=500&minPosition=${memory.body.position}` });
    expect(entities.body.items.find((e: { id: string }) => e.id === npcId)).toMatchObject({ memoryCount: 2 });
  });
});
