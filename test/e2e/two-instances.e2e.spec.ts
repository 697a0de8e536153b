import { randomUUID } from 'node:crypto';
import { startTestApp, type TestApp } from '../support/app';

/**
 * Two service instances on one database, each with its own aggregate cache and
 * group commit: what one writes, the other decides on; conflicts stay conflicts.
 */
describe('two state-api instances on one store (e2e)', () => {
  let a: TestApp;
  let b: TestApp;
  const world = 'twins';
  beforeAll(async () => {
    a = await startTestApp('e2e_twins');
    b = await startTestApp('e2e_twins', {}, a);
  });
  afterAll(async () => {
    await b.close();
    await a.close();
  });

  const send = (t: TestApp, type: string, payload: unknown, extra: Record<string, unknown> = {}) =>
    t.request({ method: 'POST', url: `/v1/worlds/${world}/commands`, body: { commandId: randomUUID(), type, payload, ...extra } });

  it('each instance decides on what the other appended', async () => {
    const entityId = randomUUID();
    expect((await send(a, 'entity.spawn', { entityId, kind: 'npc', attributes: {} })).status).toBe(200);
    expect((await send(a, 'entity.update', { entityId, set: { fromA: 1 } })).body.revision).toBe(1); // a caches revision 1
    expect((await send(b, 'entity.update', { entityId, set: { fromB: 2 } })).body.revision).toBe(2);
    // a's cache is behind: it must read b's event, not decide on its stale state.
    const stale = await send(a, 'entity.update', { entityId, set: { again: 3 } }, { expectedRevision: 1 });
    expect(stale.status).toBe(409);
    expect(stale.body.currentRevision).toBe(2);
    expect((await send(a, 'entity.despawn', { entityId }, { expectedRevision: 2 })).status).toBe(200);
    // b's cache knows nothing of the despawn: the domain must still refuse the move.
    expect((await send(b, 'entity.move', { entityId, locationId: randomUUID() })).status).toBe(410);
    const events = await b.request({ method: 'GET', url: `/v1/worlds/${world}/streams/entity-${world}-${entityId}/events` });
    expect(events.body.events.map((e: { type: string }) => e.type)).toEqual(['EntitySpawned', 'EntityUpdated', 'EntityUpdated', 'EntityDespawned']);
  });

  it('never refuses or skips a command because of a stale cache', async () => {
    // a caches the plot at stage "a"; b moves it on to "b"; advancing to "a" again is then valid.
    await send(a, 'narrative.advance_plot', { plotId: 'stale-cache', stage: 'a' });
    await send(b, 'narrative.advance_plot', { plotId: 'stale-cache', stage: 'b' });
    const back = await send(a, 'narrative.advance_plot', { plotId: 'stale-cache', stage: 'a' });
    expect(back.status).toBe(200);
    expect(back.body.events).toHaveLength(1);

    // a caches the entity at home; b moves it away; moving it home is a real move, not a no-op.
    const entityId = randomUUID();
    const [home, away] = [randomUUID(), randomUUID()];
    await send(a, 'entity.spawn', { entityId, kind: 'npc', locationId: home });
    await send(b, 'entity.move', { entityId, locationId: away });
    const moved = await send(a, 'entity.move', { entityId, locationId: home });
    expect(moved.body.events.map((e: { type: string }) => e.type)).toEqual(['EntityMoved']);
    const read = await b.request({ method: 'GET', url: `/v1/worlds/${world}/entities/${entityId}?minPosition=${moved.body.position}` });
    expect(read.body.locationId).toBe(home);
  });

  it('never serves a stale document from an in-process hot state that another instance’s projector does not write', async () => {
    const entityId = randomUUID();
    const spawned = await send(a, 'entity.spawn', { entityId, kind: 'npc', attributes: { hp: 1 } });
    const token = { 'x-consistency-token': String(spawned.body.position) };
    for (const instance of [a, b]) {
      expect((await instance.request({ method: 'GET', url: `/v1/worlds/${world}/entities/${entityId}`, headers: token })).body.attributes).toEqual({ hp: 1 });
    }
    const updated = await send(b, 'entity.update', { entityId, set: { hp: 2 }, unset: [] });
    for (const instance of [a, b]) {
      const read = await instance.request({ method: 'GET', url: `/v1/worlds/${world}/entities/${entityId}`, headers: { 'x-consistency-token': String(updated.body.position) } });
      expect(read.body.attributes).toEqual({ hp: 2 });
    }
  });

  it('keeps relationship arithmetic exact under concurrent changes from both instances', async () => {
    const playerId = randomUUID();
    const targetId = randomUUID();
    const responses = await Promise.all(
      Array.from({ length: 40 }, (_, i) => send(i % 2 ? a : b, 'player.change_relationship', { playerId, targetId, delta: 1 })),
    );
    expect(responses.every((r) => r.status === 200)).toBe(true);
    const token = Math.max(...responses.map((r) => r.body.position as number));
    // Whichever instance runs the projector, the other sees the checkpoint in PostgreSQL.
    for (const instance of [a, b]) {
      const player = await instance.request({ method: 'GET', url: `/v1/worlds/${world}/players/${playerId}`, headers: { 'x-consistency-token': String(token) } });
      expect(player.body.relationships[targetId]).toBe(40);
      expect(player.body.revision).toBe(39);
    }
  });

  it('lets one of 50 concurrent commands with the same expectedRevision through, across both', async () => {
    const entityId = randomUUID();
    await send(a, 'entity.spawn', { entityId, kind: 'item', attributes: {} });
    const responses = await Promise.all(
      Array.from({ length: 50 }, (_, i) => send(i % 2 ? a : b, 'entity.update', { entityId, set: { i } }, { expectedRevision: 0 })),
    );
    expect(responses.filter((r) => r.status === 200)).toHaveLength(1);
    expect(responses.filter((r) => r.status === 409)).toHaveLength(49);
  });
});
