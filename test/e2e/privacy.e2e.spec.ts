import { randomUUID } from 'node:crypto';
import Redis from 'ioredis';
import type { Pool } from 'pg';
import { PG_POOL } from '../../apps/state-api/src/persistence/tokens';
import type { PlayerKeyStore } from '@lorestore/privacy';
import { KEY_STORE } from '../../apps/state-api/src/privacy/privacy.providers';
import { PrivacyService } from '../../apps/state-api/src/privacy/privacy.service';
import { ADMIN_KEY, GAME_KEY, startTestApp, type TestApp } from '../support/app';
import { describeWithRedis } from '../support/services';

const DIM = 4;
const ERASED = { $erased: true };
const PROJECTIONS = ['entities', 'world_state', 'narrative_state', 'player_state', 'player_history', 'npc_memories'];

/**
 * GDPR through HTTP: personal data is sealed per player at write time; an
 * erasure destroys the key, and afterwards no table (the log included), no
 * Redis key and no vector search holds or finds the player's personal
 * strings, while other players and the world are untouched. A rebuild of
 * every projection gives the same erased read models; a rollback to before
 * the erasure does not bring anything back. Export holds everything of the
 * player and nothing of anyone else.
 */
describeWithRedis('player erasure and export (e2e, GDPR)', (redisUrl) => {
  let t: TestApp;
  let redis: Redis;
  const prefix = `t_privacy_${randomUUID().slice(0, 8)}:`;
  const tag = randomUUID().slice(0, 8);
  const w1 = `gdpr-a-${tag}`;
  const w2 = `gdpr-b-${tag}`;
  const alice = randomUUID();
  const bob = randomUUID();
  // Strings that exist nowhere else: found anywhere in plaintext means a leak.
  const A = {
    name: `Alice Zygmunt ${tag}`,
    email: `alice.${tag}@example.test`,
    chat: `alice says: meet me at the old mill ${tag}`,
    chat2: `alice whispers the vault code 7719 ${tag}`,
    memory: `Alice stole the silver chalice ${tag}`,
    joint: `Alice and Bob plotted against the king ${tag}`,
  };
  const B = { name: `Bob Quillfeather ${tag}`, email: `bob.${tag}@example.test`, chat: `bob trades twelve iron ore ${tag}`, memory: `Bob fixed the mill wheel ${tag}` };
  let npcId: string;
  let erasure: { playerId: string; erasedAt: string; reason: string; erasedBy: string; position: number };
  let beforeErase: number;

  beforeAll(async () => {
    t = await startTestApp('e2e_privacy', { REDIS_URL: redisUrl, REDIS_KEY_PREFIX: prefix, VECTOR_DIMENSION: String(DIM) });
    redis = new Redis(redisUrl);
  });
  afterAll(async () => {
    if (redis) {
      const keys = await redis.keys(`${prefix}*`);
      if (keys.length) await redis.del(...keys);
      redis.disconnect();
    }
    await t?.close();
  });

  const pool = () => t.app.get<Pool>(PG_POOL);
  const send = async (world: string, type: string, payload: unknown, status = 200) => {
    const r = await t.request({ method: 'POST', url: `/v1/worlds/${world}/commands`, body: { commandId: randomUUID(), type, payload } });
    expect({ type, status: r.status, body: r.status === status ? null : r.body }).toEqual({ type, status, body: null });
    return r.body as { position: number; memoryId?: string; type?: string };
  };
  const get = async (url: string, minPosition?: number) => {
    const r = await t.request({ method: 'GET', url: minPosition ? `${url}${url.includes('?') ? '&' : '?'}minPosition=${minPosition}` : url });
    return r;
  };
  const admin = (method: 'GET' | 'POST', url: string, body?: unknown, key: string = ADMIN_KEY) => t.request({ method, url, key, ...(body !== undefined ? { body } : {}) });
  const remember = async (text: string, embedding: number[], subjects: string[]) => {
    const r = await t.request({ method: 'POST', url: `/v1/worlds/${w1}/npcs/${npcId}/memories`, body: { text, embedding, subjects } });
    expect(r.status).toBe(200);
    return r.body as { memoryId: string; position: number };
  };
  const search = async (minPosition: number) => {
    const r = await t.request({ method: 'POST', url: `/v1/worlds/${w1}/npcs/${npcId}/memories/search`, body: { embedding: [1, 1, 1, 1], topK: 20, minPosition } });
    expect(r.status).toBe(200);
    return (r.body.memories as { text: string }[]).map((m) => m.text).sort();
  };
  const exportOf = async (playerId: string) => {
    const r = await admin('GET', `/v1/admin/players/${playerId}/export`);
    expect(r.status).toBe(200);
    expect(String(r.headers['content-type'])).toMatch(/^application\/json/);
    return r.body;
  };

  /** Every row of every table of the test's schema as text, with the strings among `needles` it contains. */
  const scanTables = async (needles: string[]): Promise<{ table: string; needle: string }[]> => {
    const schema = t.db.schema;
    const { rows: tables } = await pool().query<{ name: string }>(
      `SELECT c.relname AS name FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
        WHERE n.nspname = $1 AND c.relkind IN ('r', 'p') AND NOT c.relispartition ORDER BY 1`,
      [schema],
    );
    expect(tables.map((r) => r.name)).toEqual(expect.arrayContaining(['events', 'player_state', 'player_history', 'npc_memories', 'player_keys', 'snapshots', 'commands']));
    const found: { table: string; needle: string }[] = [];
    for (const { name } of tables) {
      // convert_from(…, 'SQL_ASCII') would miss nothing either: every column as text, bytea as its escape form.
      const { rows } = await pool().query<{ row: string }>(`SELECT t::text AS row FROM "${schema}"."${name}" t`);
      for (const { row } of rows) for (const needle of needles) if (row.includes(needle)) found.push({ table: name, needle });
    }
    return found;
  };

  /** EventStoreDB mode: the events EventStoreDB (the test double) holds, with the strings among `needles` they contain. */
  const scanEsdb = (needles: string[]): { streamId: string; needle: string }[] =>
    (t.esdb?.log() ?? []).flatMap((e) => needles.filter((needle) => e.data.includes(needle)).map((needle) => ({ streamId: e.streamId, needle })));

  /** Every key under the test's prefix, every field, with the strings among `needles` it contains. */
  const scanRedis = async (needles: string[]): Promise<{ key: string; needle: string }[]> => {
    const found: { key: string; needle: string }[] = [];
    const keys = await redis.keys(`${prefix}*`);
    expect(keys.length).toBeGreaterThan(0);
    for (const key of keys) {
      const type = await redis.type(key);
      const text = type === 'hash' ? JSON.stringify(await redis.hgetall(key)) : type === 'string' ? ((await redis.get(key)) ?? '') : JSON.stringify(await redis.dump(key));
      for (const needle of needles) if (text.includes(needle)) found.push({ key, needle });
    }
    return found;
  };

  const readModelRows = async () => {
    const q = async (sql: string) => (await pool().query(sql)).rows;
    return {
      entities: await q('SELECT world_id, entity_id, data, revision, position, updated_at FROM entities ORDER BY 1, 2'),
      world: await q('SELECT world_id, data, revision, position, updated_at FROM world_state ORDER BY 1'),
      narrative: await q('SELECT world_id, data, revision, position, updated_at FROM narrative_state ORDER BY 1'),
      players: await q('SELECT world_id, player_id, data, revision, position, updated_at FROM player_state ORDER BY 1, 2'),
      history: await q('SELECT world_id, player_id, at, action, context, revision, position, rolled_back FROM player_history ORDER BY 1, 2, revision'),
      memories: await q('SELECT memory_id, world_id, npc_id, text, subjects, embedding, sealed, rolled_back, forgotten, erased, changed_at FROM npc_memories ORDER BY 1'),
    };
  };

  /** Each player's and the world's state through the API. */
  const snapshot = async (minPosition: number) => ({
    worldState: (await get(`/v1/worlds/${w1}/state`, minPosition)).body,
    narrative: (await get(`/v1/worlds/${w1}/narrative`, minPosition)).body,
    npc: (await get(`/v1/worlds/${w1}/entities/${npcId}`, minPosition)).body,
    bob: (await get(`/v1/worlds/${w1}/players/${bob}`, minPosition)).body,
    bobHistory: (await get(`/v1/worlds/${w1}/players/${bob}/history`, minPosition)).body,
  });

  it('seals personal data before it reaches the log, and reads it back opened', async () => {
    npcId = randomUUID();
    await send(w1, 'entity.spawn', { entityId: npcId, kind: 'npc', attributes: { name: 'Innkeeper' } });
    await send(w1, 'world.set_weather', { weather: 'rain' });
    await send(w1, 'narrative.advance_plot', { plotId: 'heist', stage: 'planning' });
    await send(w1, 'player.set_profile', { playerId: alice, displayName: A.name, email: A.email, locale: 'fr-FR' });
    await send(w1, 'player.set_profile', { playerId: bob, displayName: B.name, email: B.email, locale: 'en-GB' });
    await send(w1, 'player.record_action', { playerId: alice, action: 'chat', context: { text: A.chat, channel: 'party' } });
    await send(w2, 'player.record_action', { playerId: alice, action: 'chat', context: { text: A.chat2 } });
    await send(w1, 'player.record_action', { playerId: bob, action: 'trade', context: { text: B.chat } });
    await send(w1, 'player.change_relationship', { playerId: alice, targetId: npcId, delta: 15, reason: 'tipped well' });
    await send(w1, 'player.change_relationship', { playerId: bob, targetId: npcId, delta: -5 });
    await remember(A.memory, [1, 0, 0, 0], [alice]);
    await remember(A.joint, [0, 1, 0, 0], [alice, bob]);
    const last = await remember(B.memory, [0, 0, 1, 0], [bob]);

    expect(await scanTables(Object.values(A))).toEqual([]);
    expect(await scanTables([B.name, B.email, B.chat])).toEqual([]);
    expect(scanEsdb([...Object.values(A), ...Object.values(B)])).toEqual([]);
    if (t.esdb) expect(t.esdb.log().some((e) => e.streamId === `player-${w1}-${alice}` && e.data.includes('"$pii":1'))).toBe(true);
    const player = await get(`/v1/worlds/${w1}/players/${alice}`, last.position);
    expect(player.body).toMatchObject({ profile: { displayName: A.name, email: A.email, locale: 'fr-FR' }, erased: false, relationships: { [npcId]: 15 } });
    const history = await get(`/v1/worlds/${w2}/players/${alice}/history`, last.position);
    expect(history.body.items.map((i: { context: unknown }) => i.context)).toEqual([{ text: A.chat2 }]);
    const events = await get(`/v1/worlds/${w1}/streams/player-${w1}-${alice}/events`);
    expect(events.body.events[0].data).toMatchObject({ displayName: A.name, email: A.email });
    expect(await search(last.position)).toEqual([A.joint, A.memory, B.memory].sort());
  });

  it('exports everything of a player, opened, and nothing of anyone else', async () => {
    const exported = await exportOf(alice);
    expect(exported).toMatchObject({ playerId: alice, erased: false, erasure: null });
    expect(exported.worlds.map((w: { worldId: string }) => w.worldId).sort()).toEqual([w1, w2].sort());
    const inW1 = exported.worlds.find((w: { worldId: string }) => w.worldId === w1);
    expect(inW1).toMatchObject({ profile: { displayName: A.name, email: A.email, locale: 'fr-FR' }, relationships: { [npcId]: 15 }, counters: { actions: 1 } });
    expect(exported.actions.map((a: { worldId: string; context: unknown }) => [a.worldId, a.context]).sort()).toEqual(
      [
        [w1, { text: A.chat, channel: 'party' }],
        [w2, { text: A.chat2 }],
      ].sort(),
    );
    expect(exported.memories.map((m: { text: string; otherSubjects: number }) => [m.text, m.otherSubjects]).sort()).toEqual(
      [
        [A.joint, 1],
        [A.memory, 0],
      ].sort(),
    );
    const text = JSON.stringify(exported);
    for (const other of [B.name, B.email, B.chat, B.memory, bob]) expect({ other, found: text.includes(other) }).toEqual({ other, found: false });

    const bobs = await exportOf(bob);
    expect(bobs.memories.map((m: { text: string }) => m.text).sort()).toEqual([A.joint, B.memory].sort());
    expect(JSON.stringify(bobs)).not.toContain(alice);
  });

  it('refuses bad input, a game key (403) and an unknown player (404), changing nothing', async () => {
    const count = async () => Number((await pool().query<{ n: string }>('SELECT count(*) AS n FROM events')).rows[0]!.n);
    const before = await count();
    const cases: { method: 'GET' | 'POST'; url: string; body?: unknown; key?: string; status: number; type: string; path?: string }[] = [
      { method: 'POST', url: `/v1/admin/players/${alice}/erase`, body: { reason: 'asked' }, key: GAME_KEY, status: 403, type: 'forbidden' },
      { method: 'GET', url: `/v1/admin/players/${alice}/export`, key: GAME_KEY, status: 403, type: 'forbidden' },
      { method: 'POST', url: `/v1/admin/players/${randomUUID()}/erase`, body: { reason: 'asked' }, status: 404, type: 'not-found' },
      { method: 'GET', url: `/v1/admin/players/${randomUUID()}/export`, status: 404, type: 'not-found' },
      { method: 'POST', url: '/v1/admin/players/not-a-uuid/erase', body: { reason: 'asked' }, status: 400, type: 'validation', path: 'playerId' },
      { method: 'GET', url: '/v1/admin/players/not-a-uuid/export', status: 400, type: 'validation', path: 'playerId' },
      { method: 'POST', url: `/v1/admin/players/${alice}/erase`, body: {}, status: 400, type: 'validation', path: 'reason' },
      { method: 'POST', url: `/v1/admin/players/${alice}/erase`, body: { reason: '   ' }, status: 400, type: 'validation', path: 'reason' },
      { method: 'POST', url: `/v1/admin/players/${alice}/erase`, body: { reason: 'x', also: 1 }, status: 400, type: 'validation' },
    ];
    for (const c of cases) {
      const r = await t.request({ method: c.method, url: c.url, key: c.key ?? ADMIN_KEY, ...(c.body !== undefined ? { body: c.body } : {}) });
      expect({ url: c.url, status: r.status, type: r.body.type }).toEqual({ url: c.url, status: c.status, type: `urn:lorestore:problem:${c.type}` });
      if (c.path) expect(r.body.errors.map((e: { path: string }) => e.path)).toContain(c.path);
    }
    // A client's object shaped like a sealed value would be taken for one when read back: refused.
    const forged = await t.request({
      method: 'POST',
      url: `/v1/worlds/${w1}/commands`,
      body: { commandId: randomUUID(), type: 'entity.spawn', payload: { entityId: randomUUID(), kind: 'item', attributes: { note: { $pii: 1, s: [bob], iv: 'AAAAAAAAAAAAAAAA', ct: 'AAAA' } } } },
    });
    expect(forged.status).toBe(400);
    expect(forged.body.errors.map((e: { path: string }) => e.path)).toContain('payload.attributes.note.$pii');
    // The privacy stream belongs to no world (a player id is a valid world slug, so try that).
    const audit = await t.request({ method: 'GET', url: `/v1/worlds/${alice}/streams/privacy-${alice}/events` });
    expect(audit.status).toBe(404);
    expect(await count()).toBe(before);
    expect((await pool().query('SELECT 1 FROM player_keys WHERE erased_at IS NOT NULL')).rows).toEqual([]);
  });

  it('erases: nothing of the player is left in plaintext anywhere, others and the world are untouched; erasing again changes nothing', async () => {
    beforeErase = Number((await pool().query<{ p: string }>('SELECT max(position) AS p FROM events')).rows[0]!.p);
    // Changes after `beforeErase` on the player's and the NPC's streams, so the rollback below covers both.
    await send(w1, 'player.change_relationship', { playerId: alice, targetId: npcId, delta: 1 });
    const touched = await send(w1, 'entity.update', { entityId: npcId, set: { mood: 'wary' }, unset: [] });
    const before = await snapshot(touched.position);
    const eventsBefore = Number((await pool().query<{ n: string }>('SELECT count(*) AS n FROM events')).rows[0]!.n);

    const r = await admin('POST', `/v1/admin/players/${alice}/erase`, { reason: 'player asked (ticket 4411)' });
    expect(r.status).toBe(200);
    erasure = r.body;
    expect(erasure).toMatchObject({ playerId: alice, reason: 'player asked (ticket 4411)', erasedBy: expect.stringMatching(/^admin:/), position: expect.any(Number) });
    const again = await admin('POST', `/v1/admin/players/${alice}/erase`, { reason: 'a second time' });
    expect(again.status).toBe(200);
    expect(again.body).toEqual(erasure);
    expect(Number((await pool().query<{ n: string }>('SELECT count(*) AS n FROM events')).rows[0]!.n)).toBe(eventsBefore + 1);
    const metrics = await t.request({ method: 'GET', url: '/metrics', key: null });
    expect(metrics.body).toMatch(/^lorestore_privacy_erasures_total 1$/m);
    expect(metrics.body).toMatch(/^lorestore_privacy_unreadable_values_total 0$/m);
    expect((await t.request({ method: 'GET', url: `/v1/worlds/${alice}/streams/privacy-${alice}/events` })).status).toBe(404);
    const audit = await pool().query(`SELECT type, data FROM events WHERE stream_id = $1`, [`privacy-${alice}`]);
    expect(audit.rows).toEqual([{ type: 'PlayerErased', data: { playerId: alice, reason: 'player asked (ticket 4411)', erasedBy: erasure.erasedBy, at: erasure.erasedAt } }]);

    const player = await get(`/v1/worlds/${w1}/players/${alice}`, erasure.position);
    expect(player.body).toMatchObject({ profile: null, erased: true, relationships: { [npcId]: 16 } });
    const history = await get(`/v1/worlds/${w2}/players/${alice}/history`, erasure.position);
    expect(history.body.items.map((i: { context: unknown }) => i.context)).toEqual([ERASED]);
    const events = await get(`/v1/worlds/${w1}/streams/player-${w1}-${alice}/events`);
    expect(events.body.events[0].data).toMatchObject({ displayName: ERASED, email: ERASED, locale: ERASED });
    expect(await search(erasure.position)).toEqual([B.memory]);

    expect(await scanTables(Object.values(A))).toEqual([]);
    expect(await scanRedis(Object.values(A))).toEqual([]);
    expect(scanEsdb(Object.values(A))).toEqual([]);
    // The read models were rewritten, not only made unreadable: no envelope of hers is left in them.
    const rows = await readModelRows();
    expect(rows.players.filter((p) => p.player_id === alice).map((p) => [p.world_id, p.data.profile ?? null, p.data.erasedAt])).toEqual(
      [
        [w1, null, erasure.erasedAt],
        [w2, null, erasure.erasedAt],
      ].sort(),
    );
    expect(rows.history.filter((h) => h.player_id === alice).map((h) => h.context)).toEqual([ERASED, ERASED]);
    expect(rows.memories.filter((m) => m.subjects.includes(alice)).map((m) => [m.text, m.erased, m.embedding.length])).toEqual([
      ['', true, 0],
      ['', true, 0],
    ]);
    const hot = await redis.hgetall(`${prefix}player:{${w1}:${alice}}`);
    // Redis got the rewritten document too (at the same revision, the erasure's position).
    expect(JSON.parse(hot.doc!)).toMatchObject({ profile: null, erasedAt: erasure.erasedAt });
    expect(hot.position).toBe(String(erasure.position));

    expect(await snapshot(erasure.position)).toEqual(before);
    const exported = await exportOf(alice);
    expect(exported).toMatchObject({ erased: true, erasure: { erasedAt: erasure.erasedAt, position: erasure.position }, memories: [] });
    expect(exported.worlds.map((w: { profile: unknown }) => w.profile)).toEqual([null, null]);
    expect(exported.actions.map((a: { context: unknown }) => a.context)).toEqual([ERASED, ERASED]);
  });

  it('completes an erasure whose audit event was never appended (the process died between the two steps)', async () => {
    const carol = randomUUID();
    await send(w2, 'player.set_profile', { playerId: carol, displayName: `Carol ${tag}` });
    // The first step alone, as a crash right after it would leave it.
    await t.app.get<PlayerKeyStore>(KEY_STORE).erase(carol, 'crash test', 'admin:t');
    const privacy = t.app.get(PrivacyService);
    expect(await privacy.completeErasures(60_000)).toBe(0); // too recent: the erasing request may still be appending
    expect(await privacy.completeErasures(0)).toBe(1);
    const { rows } = await pool().query<{ erase_position: string }>('SELECT erase_position FROM player_keys WHERE player_id = $1', [carol]);
    const position = Number(rows[0]!.erase_position);
    expect((await pool().query('SELECT type FROM events WHERE stream_id = $1', [`privacy-${carol}`])).rows).toEqual([{ type: 'PlayerErased' }]);
    expect((await get(`/v1/worlds/${w2}/players/${carol}`, position)).body).toMatchObject({ profile: null, erased: true });
    expect(await privacy.completeErasures(0)).toBe(0);
    // The route answers the same erasure, with its position, and appends nothing more.
    const r = await admin('POST', `/v1/admin/players/${carol}/erase`, { reason: 'again' });
    expect(r.body).toMatchObject({ reason: 'crash test', position });
    expect((await pool().query('SELECT type FROM events WHERE stream_id = $1', [`privacy-${carol}`])).rows).toHaveLength(1);
  });

  it('takes no new personal data for an erased player (410), but still their non-personal commands', async () => {
    const refused = await send(w1, 'player.set_profile', { playerId: alice, displayName: 'Alice again' }, 410);
    expect(refused).toMatchObject({ type: 'urn:lorestore:problem:refused-erased' });
    await send(w1, 'player.record_action', { playerId: alice, action: 'chat', context: { text: 'hello again' } }, 410);
    const r = await t.request({ method: 'POST', url: `/v1/worlds/${w1}/npcs/${npcId}/memories`, body: { text: 'about her', embedding: [1, 0, 0, 1], subjects: [alice, bob] } });
    expect(r.status).toBe(410);
    await send(w1, 'player.change_relationship', { playerId: alice, targetId: npcId, delta: -1 });
    expect(await scanTables(['Alice again', 'hello again', 'about her'])).toEqual([]);
  });

  it('rebuilding every projection after the erasure gives the same erased read models', async () => {
    const head = Number((await pool().query<{ p: string }>('SELECT max(position) AS p FROM events')).rows[0]!.p);
    await get(`/v1/worlds/${w1}/players/${alice}`, head);
    await search(head);
    const before = await readModelRows();
    for (const projection of PROJECTIONS) {
      const started = await admin('POST', `/v1/admin/projections/${projection}/rebuild`, { reason: 'after erasure' });
      expect(started.status).toBe(202);
      let job = started.body;
      for (let i = 0; i < 600 && job.state !== 'succeeded' && job.state !== 'failed'; i++) {
        await new Promise((resolve) => setTimeout(resolve, 100));
        job = (await admin('GET', `/v1/admin/jobs/${started.body.jobId}`)).body;
      }
      expect({ projection, state: job.state, error: job.error }).toEqual({ projection, state: 'succeeded', error: null });
    }
    const after = await readModelRows();
    // changed_at of a memory is bookkeeping of the embedded index's cache: the same here as well.
    expect(after).toEqual(before);
    expect(await scanTables(Object.values(A))).toEqual([]);
    expect(await search(head)).toEqual([B.memory]);
  });

  it('a rollback of the world to before the erasure does not bring her data back', async () => {
    const r = await admin('POST', `/v1/admin/worlds/${w1}/rollback`, { toPosition: beforeErase, reason: 'undo the patch' });
    expect(r.status).toBe(200);
    const streams = (r.body.streams as { streamId: string }[]).map((s) => s.streamId);
    expect(streams).toEqual(expect.arrayContaining([`player-${w1}-${alice}`, `entity-${w1}-${npcId}`]));
    const player = await get(`/v1/worlds/${w1}/players/${alice}`, r.body.position);
    expect(player.body).toMatchObject({ profile: null, erased: true, relationships: { [npcId]: 15 } });
    const history = await get(`/v1/worlds/${w1}/players/${alice}/history`, r.body.position);
    expect(history.body.items.map((i: { context: unknown }) => i.context)).toEqual([ERASED]);
    expect(await search(r.body.position)).toEqual([B.memory]);
    const atBefore = await get(`/v1/worlds/${w1}/players/${alice}?atPosition=${beforeErase}`);
    expect(atBefore.body).toMatchObject({ profile: null, erased: true });
    expect(await scanTables(Object.values(A))).toEqual([]);
    expect(await scanRedis(Object.values(A))).toEqual([]);
    // Bob kept everything.
    const bobNow = await get(`/v1/worlds/${w1}/players/${bob}`, r.body.position);
    expect(bobNow.body).toMatchObject({ profile: { displayName: B.name, email: B.email }, erased: false });
  });
});
