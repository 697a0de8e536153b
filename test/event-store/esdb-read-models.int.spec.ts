import { randomUUID } from 'node:crypto';
import type { Pool } from 'pg';
import type { PersonalDataCodec } from '@lorestore/privacy';
import { PERSONAL_DATA } from '../../apps/state-api/src/privacy/privacy.providers';
import { PG_POOL } from '../../apps/state-api/src/persistence/tokens';
import { ADMIN_KEY, startTestApp, type TestApp } from '../support/app';
import { readBackPostgres } from '../support/read-models';

/**
 * The same command sequence (every command type, a memory forgotten, a stream
 * rollback and its restore) sent to the service in PostgreSQL mode and in
 * EventStoreDB mode (the protocol-level test double + the PostgreSQL mirror):
 * the read models, the player history and the memory rows built in the two
 * modes are equal (times aside: each run stamps its own clock).
 */
describe('read models: EventStoreDB mode equals PostgreSQL mode', () => {
  let pg: TestApp;
  let esdb: TestApp;

  beforeAll(async () => {
    pg = await startTestApp('equal_pg', { EVENT_STORE: 'postgres', VECTOR_DIMENSION: '3' });
    esdb = await startTestApp('equal_esdb', { EVENT_STORE: 'esdb', VECTOR_DIMENSION: '3' });
  });
  afterAll(async () => {
    await pg?.close();
    await esdb?.close();
  });

  const world = 'equal';
  const ids = { npc: randomUUID(), item: randomUUID(), tavern: randomUUID(), market: randomUUID(), ann: randomUUID(), bob: randomUUID(), f1: randomUUID(), f2: randomUUID() };
  const at = (minute: number) => `2026-06-01T10:${String(minute).padStart(2, '0')}:00.000Z`;
  const script: { type: string; payload: Record<string, unknown> }[] = [
    { type: 'entity.spawn', payload: { entityId: ids.npc, kind: 'npc', attributes: { name: 'Mira', hp: 30 }, locationId: ids.tavern } },
    { type: 'entity.spawn', payload: { entityId: ids.item, kind: 'item', attributes: { name: 'sword' } } },
    { type: 'entity.move', payload: { entityId: ids.npc, locationId: ids.market } },
    { type: 'entity.update', payload: { entityId: ids.npc, set: { hp: 12, mood: 'angry' }, unset: ['name'] } },
    { type: 'world.advance_time', payload: { ticks: 60 } },
    { type: 'world.set_weather', payload: { weather: 'storm', regionId: 'north' } },
    { type: 'world.set_faction_standing', payload: { factionId: ids.f1, otherFactionId: ids.f2, standing: -40 } },
    { type: 'player.set_profile', payload: { playerId: ids.ann, displayName: 'Ann', locale: 'en-GB' } },
    ...[1, 2, 3, 4].map((m) => ({ type: 'player.record_action', payload: { playerId: ids.ann, action: `act-${m}`, context: { m }, at: at(m) } })),
    { type: 'player.change_relationship', payload: { playerId: ids.ann, targetId: ids.bob, delta: 25, reason: 'gift' } },
    { type: 'player.record_action', payload: { playerId: ids.bob, action: 'wave', context: {}, at: at(5) } },
    { type: 'narrative.advance_plot', payload: { plotId: 'main', stage: 'act-1', choices: { door: 'left' } } },
    { type: 'narrative.set_flag', payload: { flag: 'bridge_open', value: true } },
    { type: 'npc.record_memory', payload: { npcId: ids.npc, text: 'Ann waved', embedding: [1, 0, 0], importance: 7, subjects: [ids.ann] } },
    { type: 'npc.record_memory', payload: { npcId: ids.npc, text: 'storm came', embedding: [0, 1, 0] } },
    { type: 'entity.despawn', payload: { entityId: ids.item, reason: 'sold' } },
  ];

  /** The same commands, same commandIds, same order, then a rollback and a restore through the admin routes. */
  const play = async (t: TestApp) => {
    let last = 0;
    for (const [i, command] of script.entries()) {
      const r = await t.request({ method: 'POST', url: `/v1/worlds/${world}/commands`, body: { commandId: `00000000-0000-4000-8000-${String(i).padStart(12, '0')}`, ...command } });
      expect({ i, status: r.status, mirrored: r.body.mirrored }).toEqual({ i, status: 200, mirrored: undefined });
      last = r.body.position;
    }
    const admin = (url: string, body: unknown) => t.request({ method: 'POST', url, key: ADMIN_KEY, body });
    const rollback = await admin(`/v1/admin/worlds/${world}/streams/player-${world}-${ids.ann}/rollback`, { toRevision: 2, reason: 'exploit', operationId: '00000000-0000-4000-8000-00000000aaaa' });
    expect(rollback.status).toBe(200);
    const worldRollback = await admin(`/v1/admin/worlds/${world}/rollback`, { toPosition: last - 3, reason: 'bad patch', operationId: '00000000-0000-4000-8000-00000000bbbb' });
    expect(worldRollback.status).toBe(200);
    const restore = await admin(`/v1/admin/rollbacks/00000000-0000-4000-8000-00000000bbbb/restore`, { reason: 'undo' });
    expect(restore.status).toBe(200);
    // Wait until every projection has passed the last event.
    for (let i = 0; i < 200; i++) {
      const list = await t.request({ method: 'GET', url: '/v1/admin/projections', key: ADMIN_KEY });
      const projections = (list.body as { name: string; checkpoint: number | null; lag: { events: number } }[]).filter((p) => p.name !== 'esdb_mirror');
      if (projections.every((p) => (p.checkpoint ?? 0) >= restore.body.position && p.lag.events === 0)) return;
      await new Promise((r) => setTimeout(r, 50));
    }
    throw new Error('projections did not catch up');
  };

  const ISO = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?Z$/;
  /** Times are each run's own clock (the history's `at` is given, so it stays). */
  const timeless = (value: unknown): unknown => JSON.parse(JSON.stringify(value, (_k, v: unknown) => (typeof v === 'string' && ISO.test(v) ? '<time>' : v)));

  const readModels = async (t: TestApp) => {
    const pool = t.app.get<Pool>(PG_POOL);
    const { docs: sealed, history: sealedHistory } = await readBackPostgres(pool);
    // Personal data is sealed with a random IV per value: compared opened, as the API shows it.
    const personal = t.app.get<PersonalDataCodec>(PERSONAL_DATA);
    const docs = new Map(await Promise.all([...sealed].map(async ([k, d]) => [k, { ...d, state: await personal.open(d.state) }] as const)));
    const history = await personal.open(sealedHistory);
    const memories = await pool.query<{ row: string }>(
      `SELECT world_id || '|' || npc_id || '|' || revision || '|' || text || '|' || importance || '|' || rolled_back || '|' || forgotten AS row FROM npc_memories ORDER BY 1`,
    );
    return {
      docs: Object.fromEntries([...docs].sort(([a], [b]) => (a < b ? -1 : 1)).map(([k, d]) => [k, { state: timeless(d.state), revision: String(d.revision), position: String(d.position) }])),
      history,
      memories: memories.rows.map((r) => r.row),
    };
  };

  it('builds the same read models from the same commands', async () => {
    await play(pg);
    await play(esdb);
    const fromPostgres = await readModels(pg);
    const fromEsdb = await readModels(esdb);
    expect(Object.keys(fromPostgres.docs)).toHaveLength(6);
    expect(fromPostgres.history.length).toBe(5);
    expect(fromPostgres.memories.length).toBe(2);
    expect(fromEsdb).toEqual(fromPostgres);
    // The EventStoreDB run really went through EventStoreDB: its log holds every event the mirror has.
    const mirrored = await esdb.app.get<Pool>(PG_POOL).query<{ n: string }>('SELECT count(*) AS n FROM events WHERE esdb_commit IS NOT NULL');
    expect(Number(mirrored.rows[0]!.n)).toBe(esdb.esdb!.log().length);
  });
});
