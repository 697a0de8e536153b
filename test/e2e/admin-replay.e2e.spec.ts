import { randomUUID } from 'node:crypto';
import type { Pool } from 'pg';
import { PG_POOL } from '../../apps/state-api/src/persistence/tokens';
import { ADMIN_KEY, startTestApp, type TestApp } from '../support/app';

/**
 * The admin routes of replay, rollback and rebuild through HTTP: every one is
 * 403 for a game key, bad input is a 4xx problem that changes nothing, and a
 * rollback reaches the query routes (read models) through the projector.
 */
describe('admin: state-at, rollback, restore, audit, rebuild (e2e)', () => {
  let t: TestApp;
  const world = `adm-${randomUUID().slice(0, 8)}`;

  beforeAll(async () => {
    t = await startTestApp('e2e_admin_replay', { SNAPSHOT_EVERY: '10' });
  });
  afterAll(async () => t?.close());

  const send = async (type: string, payload: unknown, extra: Record<string, unknown> = {}) => {
    const r = await t.request({ method: 'POST', url: `/v1/worlds/${world}/commands`, body: { commandId: randomUUID(), type, payload, ...extra } });
    expect(r.status).toBe(200);
    return r.body as { streamId: string; position: number; revision: number };
  };
  const admin = (method: 'GET' | 'POST', url: string, body?: unknown) => t.request({ method, url, key: ADMIN_KEY, ...(body !== undefined ? { body } : {}) });
  /** The app's own pool (the test schema's was closed once the app took over). */
  const pool = () => t.app.get<Pool>(PG_POOL);
  const eventCount = async () => Number((await pool().query<{ n: string }>('SELECT count(*) AS n FROM events')).rows[0]!.n);

  const npc = async () => {
    const entityId = randomUUID();
    const spawned = await send('entity.spawn', { entityId, kind: 'npc', attributes: { hp: 10 } });
    const hurt = await send('entity.update', { entityId, set: { hp: 3 }, unset: [] });
    return { entityId, streamId: spawned.streamId, spawned, hurt };
  };

  it('answers 403 for a game key on every admin route, and 401 without a key', async () => {
    const id = randomUUID();
    const routes: ['GET' | 'POST', string][] = [
      ['POST', `/v1/admin/worlds/${world}/streams/world-${world}/rollback`],
      ['POST', `/v1/admin/worlds/${world}/rollback`],
      ['POST', `/v1/admin/rollbacks/${id}/restore`],
      ['GET', `/v1/admin/rollbacks/${id}`],
      ['GET', `/v1/admin/worlds/${world}/rollbacks`],
      ['GET', `/v1/admin/worlds/${world}/streams/world-${world}/state`],
      ['GET', `/v1/admin/worlds/${world}/state-at?atPosition=1`],
      ['POST', '/v1/admin/projections/entities/rebuild'],
      ['GET', `/v1/admin/jobs/${id}`],
      ['GET', '/v1/admin/projections'],
    ];
    for (const [method, url] of routes) {
      const asGame = await t.request({ method, url, ...(method === 'POST' ? { body: {} } : {}) });
      expect({ url, status: asGame.status, type: asGame.body.type }).toEqual({ url, status: 403, type: 'urn:lorestore:problem:forbidden' });
      const anonymous = await t.request({ method, url, key: null, ...(method === 'POST' ? { body: {} } : {}) });
      expect({ url, status: anonymous.status }).toEqual({ url, status: 401 });
    }
  });

  it('state of a stream at a revision, a position and a time, folded from snapshots', async () => {
    const { entityId, streamId, spawned, hurt } = await npc();
    for (let i = 0; i < 12; i++) await send('entity.update', { entityId, set: { step: i }, unset: [] });
    const base = `/v1/admin/worlds/${world}/streams/${streamId}/state`;
    const byRevision = await admin('GET', `${base}?atRevision=0`);
    expect(byRevision.status).toBe(200);
    expect(byRevision.body).toMatchObject({ streamId, aggregate: 'entity', revision: 0, state: { attributes: { hp: 10 } } });
    const byPosition = await admin('GET', `${base}?atPosition=${hurt.position}`);
    expect(byPosition.body).toMatchObject({ revision: 1, state: { attributes: { hp: 3 } } });
    const head = await admin('GET', base);
    expect(head.body).toMatchObject({ revision: 13, state: { attributes: { hp: 3, step: 11 } } });
    // The command path snapshots every SNAPSHOT_EVERY (10) events: the head folds from revision 9.
    expect(head.body.snapshotRevision).toBe(9);
    expect(head.body.eventsFolded).toBe(4);
    const now = await admin('GET', `${base}?asOf=${encodeURIComponent(new Date().toISOString())}`);
    expect(now.body.revision).toBe(13);
    expect(spawned.revision).toBe(0);

    const world_ = await admin('GET', `/v1/admin/worlds/${world}/state-at?atPosition=${hurt.position}&limit=1000`);
    expect(world_.status).toBe(200);
    expect(world_.body.streams.find((s: { streamId: string }) => s.streamId === streamId)).toMatchObject({ revision: 1, state: { attributes: { hp: 3 } } });
  });

  it('rolls a stream back (dry run first), the read models follow, a restore undoes it, and the audit trail shows both', async () => {
    const { entityId, streamId, hurt } = await npc();
    const url = `/v1/admin/worlds/${world}/streams/${streamId}/rollback`;
    const before = await eventCount();
    const dry = await admin('POST', url, { toRevision: 0, reason: 'bad patch', dryRun: true });
    expect(dry.status).toBe(200);
    expect(dry.body).toMatchObject({ dryRun: true, streams: [{ streamId, fromRevision: 1, toRevision: 0, events: 1 }], totalEvents: 1 });
    expect(await eventCount()).toBe(before);

    const operationId = randomUUID();
    const done = await admin('POST', url, { toRevision: 0, reason: 'bad patch', operationId });
    expect(done.status).toBe(200);
    expect(done.body).toMatchObject({ operationId, kind: 'rollback', streams: [{ streamId, fromRevision: 1, toRevision: 0, events: 1, revision: 2 }], duplicate: false, reason: 'bad patch', actor: expect.stringMatching(/^admin:/) });
    expect(done.body.position).toBeGreaterThan(hurt.position);
    const again = await admin('POST', url, { toRevision: 0, reason: 'bad patch', operationId });
    expect(again.body).toMatchObject({ operationId, duplicate: true, position: done.body.position });

    const entity = await t.request({ method: 'GET', url: `/v1/worlds/${world}/entities/${entityId}?minPosition=${done.body.position}` });
    expect(entity.body).toMatchObject({ attributes: { hp: 10 }, revision: 2 });

    const restored = await admin('POST', `/v1/admin/rollbacks/${operationId}/restore`, { reason: 'false alarm' });
    expect(restored.status).toBe(200);
    expect(restored.body).toMatchObject({ kind: 'restore', restores: operationId, streams: [{ streamId, toRevision: 1, revision: 3 }] });
    const back = await t.request({ method: 'GET', url: `/v1/worlds/${world}/entities/${entityId}?minPosition=${restored.body.position}` });
    expect(back.body).toMatchObject({ attributes: { hp: 3 }, revision: 3 });

    const audit = await admin('GET', `/v1/admin/worlds/${world}/rollbacks?limit=50`);
    expect(audit.status).toBe(200);
    const mine = audit.body.items.filter((o: { operationId: string; restores: string | null }) => o.operationId === operationId || o.restores === operationId);
    expect(mine.map((o: { kind: string }) => o.kind)).toEqual(['restore', 'rollback']);
    expect(mine[1]).toMatchObject({ reason: 'bad patch', scope: { type: 'stream', streamId, toRevision: 0 }, restoredBy: restored.body.operationId });
    const one = await admin('GET', `/v1/admin/rollbacks/${operationId}`);
    expect(one.body).toMatchObject({ operationId, restoredBy: restored.body.operationId });
  });

  it('player history forgets rolled-back actions, now and at any earlier point, page by page', async () => {
    const playerId = randomUUID();
    let last = { position: 0, streamId: '' };
    for (const action of ['a1', 'a2', 'a3', 'a4']) last = await send('player.record_action', { playerId, action, context: {} });
    const done = await admin('POST', `/v1/admin/worlds/${world}/streams/${last.streamId}/rollback`, { toRevision: 1, reason: 'exploit' });
    expect(done.status).toBe(200);
    const after = await send('player.record_action', { playerId, action: 'a5', context: {} });
    const pages = async (query: string) => {
      const actions: string[] = [];
      let cursor: string | null = null;
      do {
        const r = await t.request({ method: 'GET', url: `/v1/worlds/${world}/players/${playerId}/history?limit=1&minPosition=${after.position}${query}${cursor ? `&cursor=${cursor}` : ''}` });
        expect(r.status).toBe(200);
        actions.push(...r.body.items.map((i: { action: string }) => i.action));
        cursor = r.body.nextCursor;
      } while (cursor);
      return actions;
    };
    expect(await pages('')).toEqual(['a5', 'a2', 'a1']);
    expect(await pages(`&atRevision=5`)).toEqual(['a5', 'a2', 'a1']);
    expect(await pages(`&atRevision=4`)).toEqual(['a2', 'a1']);
    expect(await pages(`&atRevision=3`)).toEqual(['a4', 'a3', 'a2', 'a1']);
    const player = await t.request({ method: 'GET', url: `/v1/worlds/${world}/players/${playerId}?minPosition=${after.position}` });
    expect(player.body.counters.actions).toBe(3);
  });

  it('a command racing a rollback gets a 409, never a lost update; a stale expectedRevision on the rollback is a 409 too', async () => {
    const { entityId, streamId } = await npc();
    const stale = await admin('POST', `/v1/admin/worlds/${world}/streams/${streamId}/rollback`, { toRevision: 0, reason: 'x', expectedRevision: 0 });
    expect(stale.status).toBe(409);
    expect(stale.body).toMatchObject({ type: 'urn:lorestore:problem:wrong-expected-revision', currentRevision: 1 });
    await admin('POST', `/v1/admin/worlds/${world}/streams/${streamId}/rollback`, { toRevision: 0, reason: 'x', expectedRevision: 1 });
    const late = await t.request({
      method: 'POST',
      url: `/v1/worlds/${world}/commands`,
      body: { commandId: randomUUID(), type: 'entity.update', expectedRevision: 1, payload: { entityId, set: { hp: 1 }, unset: [] } },
    });
    expect(late.status).toBe(409);
    expect(late.body.currentRevision).toBe(2);
  });

  it('undoes what one actor did since a time, listing the other actors’ events it undoes too', async () => {
    const itemId = randomUUID();
    await send('entity.spawn', { entityId: itemId, kind: 'item', attributes: { gold: 1 } });
    const since = new Date().toISOString();
    await new Promise((r) => setTimeout(r, 10));
    await send('entity.update', { entityId: itemId, set: { gold: 999_999 } }, { actorId: 'player-cheat' });
    await send('entity.update', { entityId: itemId, set: { polished: true }, unset: [] }, { actorId: 'player-honest' });
    const url = `/v1/admin/worlds/${world}/rollback`;
    const dry = await admin('POST', url, { actorId: 'player-cheat', since, reason: 'dupe exploit', dryRun: true });
    expect(dry.status).toBe(200);
    expect(dry.body.streams).toEqual([{ streamId: `entity-${world}-${itemId}`, fromRevision: 2, toRevision: 0, events: 2 }]);
    expect(dry.body.collateral).toEqual([{ streamId: `entity-${world}-${itemId}`, actor: 'player-honest', events: 1, firstRevision: 2, lastRevision: 2 }]);
    const done = await admin('POST', url, { actorId: 'player-cheat', since, reason: 'dupe exploit' });
    expect(done.status).toBe(200);
    const item = await t.request({ method: 'GET', url: `/v1/worlds/${world}/entities/${itemId}?minPosition=${done.body.position}` });
    expect(item.body.attributes).toEqual({ gold: 1 });
  });

  it('turns bad targets and bad bodies into clear 4xx problems that change nothing', async () => {
    const { streamId } = await npc();
    const before = await eventCount();
    const future = new Date(Date.now() + 3_600_000).toISOString();
    const cases: { method: 'GET' | 'POST'; url: string; body?: unknown; status: number; type: string; path?: string }[] = [
      { method: 'POST', url: `/v1/admin/worlds/${world}/streams/${streamId}/rollback`, body: { toRevision: 5, reason: 'x' }, status: 422, type: 'target-beyond-head' },
      { method: 'POST', url: `/v1/admin/worlds/${world}/streams/${streamId}/rollback`, body: { toRevision: 1, reason: 'x' }, status: 422, type: 'nothing-to-roll-back' },
      { method: 'POST', url: `/v1/admin/worlds/${world}/streams/${streamId}/rollback`, body: { toRevision: 0 }, status: 400, type: 'validation', path: 'reason' },
      { method: 'POST', url: `/v1/admin/worlds/${world}/streams/${streamId}/rollback`, body: { toRevision: -2, reason: 'x' }, status: 400, type: 'validation', path: 'toRevision' },
      { method: 'POST', url: `/v1/admin/worlds/${world}/streams/${streamId}/rollback`, body: { toRevision: 0, reason: 'x', extra: 1 }, status: 400, type: 'validation' },
      { method: 'POST', url: `/v1/admin/worlds/${world}/streams/entity-${world}-${randomUUID()}/rollback`, body: { toRevision: 0, reason: 'x' }, status: 404, type: 'unknown-stream' },
      { method: 'POST', url: `/v1/admin/worlds/other/streams/${streamId}/rollback`, body: { toRevision: 0, reason: 'x' }, status: 404, type: 'stream-not-in-world' },
      { method: 'POST', url: `/v1/admin/worlds/${world}/streams/not a stream/rollback`, body: { toRevision: 0, reason: 'x' }, status: 400, type: 'validation', path: 'streamId' },
      { method: 'POST', url: `/v1/admin/worlds/${world}/rollback`, body: { toTime: future, reason: 'x' }, status: 400, type: 'validation', path: 'toTime' },
      { method: 'POST', url: `/v1/admin/worlds/${world}/rollback`, body: { toPosition: 999_999_999, reason: 'x' }, status: 422, type: 'target-beyond-head' },
      { method: 'POST', url: `/v1/admin/worlds/${world}/rollback`, body: { toPosition: 1, toTime: new Date().toISOString(), reason: 'x' }, status: 400, type: 'validation', path: 'toPosition' },
      { method: 'POST', url: `/v1/admin/worlds/${world}/rollback`, body: { actorId: 'p1', reason: 'x' }, status: 400, type: 'validation', path: 'since' },
      { method: 'POST', url: `/v1/admin/worlds/${world}/rollback`, body: { reason: 'x' }, status: 400, type: 'validation' },
      { method: 'POST', url: `/v1/admin/worlds/bad world/rollback`, body: { toPosition: 1, reason: 'x' }, status: 400, type: 'validation', path: 'worldId' },
      { method: 'POST', url: `/v1/admin/rollbacks/${randomUUID()}/restore`, body: {}, status: 404, type: 'operation-not-found' },
      { method: 'POST', url: `/v1/admin/rollbacks/not-a-uuid/restore`, body: {}, status: 400, type: 'validation', path: 'operationId' },
      { method: 'POST', url: `/v1/admin/rollbacks/${randomUUID()}/restore`, body: { force: 'yes' }, status: 400, type: 'validation', path: 'force' },
      { method: 'GET', url: `/v1/admin/rollbacks/${randomUUID()}`, status: 404, type: 'operation-not-found' },
      { method: 'GET', url: `/v1/admin/worlds/${world}/rollbacks?limit=0`, status: 400, type: 'validation', path: 'limit' },
      { method: 'GET', url: `/v1/admin/worlds/${world}/rollbacks?cursor=nonsense`, status: 400, type: 'validation', path: 'cursor' },
      // Shapes that Date.parse and a loose id check accept but PostgreSQL's casts would not.
      {
        method: 'GET',
        url: `/v1/admin/worlds/${world}/rollbacks?cursor=${Buffer.from(`1_${'-'.repeat(36)}`).toString('base64url')}`,
        status: 400,
        type: 'validation',
        path: 'cursor',
      },
      { method: 'GET', url: `/v1/admin/worlds/${world}/streams/${streamId}/state?atRevision=99`, status: 422, type: 'target-beyond-head' },
      { method: 'GET', url: `/v1/admin/worlds/${world}/streams/${streamId}/state?asOf=${encodeURIComponent(future)}`, status: 400, type: 'validation', path: 'asOf' },
      { method: 'GET', url: `/v1/admin/worlds/${world}/streams/${streamId}/state?atRevision=0&atPosition=1`, status: 400, type: 'validation' },
      { method: 'GET', url: `/v1/admin/worlds/${world}/streams/entity-${world}-${randomUUID()}/state`, status: 404, type: 'unknown-stream' },
      { method: 'GET', url: `/v1/admin/worlds/${world}/state-at`, status: 400, type: 'validation', path: 'atPosition' },
      { method: 'POST', url: '/v1/admin/projections/nope/rebuild', body: {}, status: 404, type: 'unknown-projection' },
      { method: 'POST', url: '/v1/admin/projections/entities/rebuild', body: { reason: '' }, status: 400, type: 'validation', path: 'reason' },
      { method: 'GET', url: `/v1/admin/jobs/${randomUUID()}`, status: 404, type: 'job-not-found' },
      { method: 'GET', url: '/v1/admin/jobs/123', status: 400, type: 'validation', path: 'jobId' },
    ];
    for (const c of cases) {
      const r = await admin(c.method, c.url, c.body);
      const got = { url: c.url, body: c.body, status: r.status, type: r.body.type, paths: (r.body.errors ?? []).map((e: { path: string }) => e.path) };
      expect(got).toMatchObject({ url: c.url, body: c.body, status: c.status, type: `urn:lorestore:problem:${c.type}` });
      if (c.path) expect(got.paths).toContain(c.path);
      expect(typeof r.body.detail).toBe('string');
      expect(String(r.headers['content-type'])).toContain('application/problem+json');
    }
    expect(await eventCount()).toBe(before);
    const jobs = await pool().query('SELECT 1 FROM projection_jobs');
    expect(jobs.rowCount).toBe(0);
  });

  it('rebuilds all five read models in one job (read_models); a single read model’s rebuild is a 409 naming the job in the way', async () => {
    const { entityId } = await npc();
    const started = await admin('POST', '/v1/admin/projections/read_models/rebuild', { reason: 'reducers changed' });
    expect(started.status).toBe(202);
    expect(started.body).toMatchObject({ projection: 'read_models', state: 'pending' });
    const blocked = await admin('POST', '/v1/admin/projections/player_history/rebuild', {});
    expect(blocked.status).toBe(409);
    expect(blocked.body).toMatchObject({ type: 'urn:lorestore:problem:rebuild-in-progress', projection: 'player_history', jobId: started.body.jobId, blockedBy: 'read_models' });
    let job = started.body;
    for (let i = 0; i < 300 && job.state !== 'succeeded' && job.state !== 'failed'; i++) {
      await new Promise((r) => setTimeout(r, 100));
      job = (await admin('GET', `/v1/admin/jobs/${started.body.jobId}`)).body;
    }
    expect(job).toMatchObject({ state: 'succeeded', error: null });
    const entity = await t.request({ method: 'GET', url: `/v1/worlds/${world}/entities/${entityId}` });
    expect(entity.body).toMatchObject({ attributes: { hp: 3 } });
  });

  it('starts a rebuild (202 with a job), refuses a second one while it runs (409), and reports progress to the end', async () => {
    const { entityId, hurt } = await npc();
    const started = await admin('POST', '/v1/admin/projections/entities/rebuild', { reason: 'reducer fix' });
    expect(started.status).toBe(202);
    expect(started.body).toMatchObject({ projection: 'entities', state: 'pending', requestedBy: expect.stringMatching(/^admin:/) });
    const second = await admin('POST', '/v1/admin/projections/entities/rebuild', {});
    expect(second.status).toBe(409);
    expect(second.body).toMatchObject({ type: 'urn:lorestore:problem:rebuild-in-progress', jobId: started.body.jobId });
    let job = started.body;
    for (let i = 0; i < 300 && job.state !== 'succeeded' && job.state !== 'failed'; i++) {
      await new Promise((r) => setTimeout(r, 100));
      job = (await admin('GET', `/v1/admin/jobs/${started.body.jobId}`)).body;
    }
    expect(job).toMatchObject({ state: 'succeeded', error: null, etaSeconds: 0 });
    expect(job.processed).toBeGreaterThanOrEqual(hurt.position > 0 ? 2 : 0);
    expect(job.startedAt).not.toBeNull();
    expect(job.finishedAt).not.toBeNull();
    const entity = await t.request({ method: 'GET', url: `/v1/worlds/${world}/entities/${entityId}` });
    expect(entity.body).toMatchObject({ attributes: { hp: 3 } });
  });
});
