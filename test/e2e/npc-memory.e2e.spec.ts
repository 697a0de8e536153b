import { randomUUID } from 'node:crypto';
import type { Pool } from 'pg';
import { PG_POOL } from '../../apps/state-api/src/persistence/tokens';
import { ADMIN_KEY, startTestApp, type TestApp } from '../support/app';
import { startPineconeTestServer, type PineconeTestServer } from '../support/pinecone-test-server';

const DIM = 4;

/**
 * NPC memory through HTTP, on both vector indexes: record, search (with each
 * retrieval term shown), forget, rollback and restore of an NPC and of a
 * world, a rebuild of the index from the log; and bad input that records nothing.
 */
const scenario = (label: string, env: () => Promise<Record<string, string>>) =>
  describe(`NPC memory (e2e, ${label})`, () => {
    let t: TestApp;
    const world = `mem-${randomUUID().slice(0, 8)}`;

    beforeAll(async () => {
      t = await startTestApp(`e2e_memory_${label.split(' ')[0]}`, { VECTOR_DIMENSION: String(DIM), ...(await env()) });
    });
    afterAll(async () => t?.close());

    const pool = () => t.app.get<Pool>(PG_POOL);
    const eventCount = async () => Number((await pool().query<{ n: string }>('SELECT count(*) AS n FROM events')).rows[0]!.n);
    const send = async (type: string, payload: unknown) => {
      const r = await t.request({ method: 'POST', url: `/v1/worlds/${world}/commands`, body: { commandId: randomUUID(), type, payload } });
      expect(r.status).toBe(200);
      return r.body as { streamId: string; position: number; revision: number };
    };
    const admin = (url: string, body: unknown) => t.request({ method: 'POST', url, key: ADMIN_KEY, body });
    const spawnNpc = async (kind = 'npc') => {
      const entityId = randomUUID();
      const spawned = await send('entity.spawn', { entityId, kind, attributes: {} });
      return { npcId: entityId, spawned };
    };
    const memories = (npcId: string) => `/v1/worlds/${world}/npcs/${npcId}/memories`;
    const record = async (npcId: string, text: string, embedding: number[], importance?: number) => {
      const r = await t.request({ method: 'POST', url: memories(npcId), body: { text, embedding, ...(importance ? { importance } : {}) } });
      expect(r.status).toBe(200);
      return r.body as { memoryId: string; position: number; revision: number };
    };
    const search = async (npcId: string, body: Record<string, unknown>) => {
      const r = await t.request({ method: 'POST', url: `${memories(npcId)}/search`, body });
      expect(r.status).toBe(200);
      return r.body.memories as { memoryId: string; text: string; score: number; relevance: number; recency: number; importance: number; terms: Record<string, number> }[];
    };
    const texts = (list: { text: string }[]) => list.map((m) => m.text);

    it('stores three memories and retrieves them; relevance, importance and recency each change the order; only that NPC’s memories', async () => {
      const { npcId } = await spawnNpc();
      const other = await spawnNpc();
      const query = [1, 0, 0, 0];
      await record(npcId, 'the stranger paid in gold', [0.9, 0.1, 0, 0], 2);
      await record(npcId, 'the tavern burned down', [0.5, 0.5, 0.5, 0], 9);
      const last = await record(npcId, 'it rained all day', [0, 0, 1, 0.2], 5);
      const foreign = await record(other.npcId, 'a memory of another NPC, identical to the query', query, 10);
      expect(last.memoryId).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-7/);

      const byRelevance = await search(npcId, { embedding: query, topK: 3, minPosition: foreign.position, weights: { relevance: 1, recency: 0, importance: 0 } });
      expect(texts(byRelevance)).toEqual(['the stranger paid in gold', 'the tavern burned down', 'it rained all day']);
      expect(byRelevance[0]!.relevance).toBeCloseTo(0.9 / Math.hypot(0.9, 0.1), 5);
      expect(byRelevance[0]!.terms).toMatchObject({ relevance: 1 });

      const byImportance = await search(npcId, { embedding: query, topK: 3, weights: { relevance: 0, recency: 0, importance: 1 } });
      expect(texts(byImportance)).toEqual(['the tavern burned down', 'it rained all day', 'the stranger paid in gold']);

      // Retrieving only the rain memory makes it the most recently retrieved: recency alone puts it first.
      await search(npcId, { embedding: [0, 0, 1, 0], topK: 1, weights: { relevance: 1, recency: 0, importance: 0 } });
      const byRecency = await search(npcId, { embedding: query, topK: 3, weights: { relevance: 0, recency: 1, importance: 0 } });
      expect(byRecency[0]!.text).toBe('it rained all day');

      const balanced = await search(npcId, { embedding: query, topK: 3 });
      for (const m of balanced) expect(m.score).toBeCloseTo(m.terms.relevance! + m.terms.recency! + m.terms.importance!, 9);
      expect(balanced.map((m) => m.memoryId)).not.toContain(foreign.memoryId);
      expect(await search(npcId, { embedding: query, topK: 3, minScore: 3.5 })).toEqual([]);
    });

    it('forgets a memory (DELETE), and a rollback of the NPC and its restore change the results', async () => {
      const { npcId, spawned } = await spawnNpc();
      const q = [0, 1, 0, 0];
      const a = await record(npcId, 'a', [0, 1, 0.1, 0]);
      const b = await record(npcId, 'b', [0, 1, 0.2, 0]);
      const c = await record(npcId, 'c', [0, 1, 0.3, 0]);
      const forgot = await t.request({ method: 'DELETE', url: `${memories(npcId)}/${b.memoryId}?minPosition=${c.position}` });
      expect(forgot.status).toBe(200);
      expect(forgot.body).toMatchObject({ memoryId: b.memoryId, duplicate: false });
      expect(texts(await search(npcId, { embedding: q, topK: 10, minPosition: forgot.body.position }))).toEqual(['a', 'c']);

      const rollback = await admin(`/v1/admin/worlds/${world}/streams/${spawned.streamId}/rollback`, { toRevision: a.revision, reason: 'exploit' });
      expect(rollback.status).toBe(200);
      expect(texts(await search(npcId, { embedding: q, topK: 10, minPosition: rollback.body.position }))).toEqual(['a']);

      const restore = await admin(`/v1/admin/rollbacks/${rollback.body.operationId}/restore`, { reason: 'false alarm' });
      expect(restore.status).toBe(200);
      expect(texts(await search(npcId, { embedding: q, topK: 10, minPosition: restore.body.position }))).toEqual(['a', 'c']);
    });

    it('a world rollback hides every memory recorded after the target; its restore brings them back', async () => {
      const [x, y] = [await spawnNpc(), await spawnNpc()];
      const q = [0, 0, 0, 1];
      const early = await record(x.npcId, 'x early', [0, 0, 0.1, 1]);
      await record(y.npcId, 'y late', [0, 0, 0.2, 1]);
      const late = await record(x.npcId, 'x late', [0, 0, 0.3, 1]);
      const rollback = await admin(`/v1/admin/worlds/${world}/rollback`, { toPosition: early.position, reason: 'bad patch' });
      expect(rollback.status).toBe(200);
      expect(texts(await search(x.npcId, { embedding: q, topK: 10, minPosition: rollback.body.position }))).toEqual(['x early']);
      expect(await search(y.npcId, { embedding: q, topK: 10 })).toEqual([]);
      const restore = await admin(`/v1/admin/rollbacks/${rollback.body.operationId}/restore`, { reason: 'undo', force: true });
      expect(restore.status).toBe(200);
      expect(texts(await search(x.npcId, { embedding: q, topK: 10, minPosition: restore.body.position }))).toEqual(['x early', 'x late']);
      expect(late.position).toBeGreaterThan(early.position);
    });

    it('a rebuild of the index from the log (admin route) gives the same results', async () => {
      const { npcId } = await spawnNpc();
      let last = 0;
      for (let i = 0; i < 8; i++) last = (await record(npcId, `m${i}`, [Math.sin(i), Math.cos(i), i / 8, 1])).position;
      const q = { embedding: [1, 0.5, 0, 0.2], topK: 5, weights: { relevance: 1, recency: 0, importance: 0 }, minPosition: last };
      const before = await search(npcId, q);
      const started = await admin('/v1/admin/projections/npc_memories/rebuild', { reason: 'index check' });
      expect(started.status).toBe(202);
      let job = started.body;
      for (let i = 0; i < 300 && job.state !== 'succeeded' && job.state !== 'failed'; i++) {
        await new Promise((r) => setTimeout(r, 100));
        job = (await t.request({ method: 'GET', url: `/v1/admin/jobs/${started.body.jobId}`, key: ADMIN_KEY })).body;
      }
      expect(job).toMatchObject({ projection: 'npc_memories', state: 'succeeded' });
      const after = await search(npcId, q);
      expect(after.map((m) => [m.memoryId, m.relevance])).toEqual(before.map((m) => [m.memoryId, m.relevance]));
      const status = await t.request({ method: 'GET', url: '/v1/admin/projections', key: ADMIN_KEY });
      expect(status.body.projections ?? status.body).toEqual(expect.arrayContaining([expect.objectContaining({ name: 'npc_memories' })]));
    });

    describe('bad input → a clear 4xx, nothing recorded', () => {
      let npcId: string;
      let itemId: string;
      let itemAt: number;
      beforeAll(async () => {
        npcId = (await spawnNpc()).npcId;
        const item = await spawnNpc('item');
        itemId = item.npcId;
        itemAt = item.spawned.position;
      });

      it.each<[string, number, () => { url: string; body: unknown }, string | undefined]>([
        ['record: embedding of the wrong length', 400, () => ({ url: memories(npcId), body: { text: 'hi', embedding: [1, 0] } }), 'embedding'],
        ['record: Infinity (1e999)', 400, () => ({ url: memories(npcId), body: '{"text":"hi","embedding":[1e999,0,0,0]}' }), 'embedding.0'],
        ['record: NaN (not JSON)', 400, () => ({ url: memories(npcId), body: '{"text":"hi","embedding":[NaN,0,0,0]}' }), undefined],
        ['record: the zero vector', 400, () => ({ url: memories(npcId), body: { text: 'hi', embedding: [0, 0, 0, 0] } }), 'embedding'],
        ['record: empty text', 400, () => ({ url: memories(npcId), body: { text: '  ', embedding: [1, 0, 0, 0] } }), 'text'],
        ['record: text over 4,000 characters', 400, () => ({ url: memories(npcId), body: { text: 'x'.repeat(4001), embedding: [1, 0, 0, 0] } }), 'text'],
        ['record: importance 0', 400, () => ({ url: memories(npcId), body: { text: 'hi', embedding: [1, 0, 0, 0], importance: 0 } }), 'importance'],
        ['record: unknown NPC', 404, () => ({ url: memories(randomUUID()), body: { text: 'hi', embedding: [1, 0, 0, 0] } }), undefined],
        ['command: npc.record_memory of the wrong length', 400, () => ({ url: `/v1/worlds/${world}/commands`, body: { commandId: randomUUID(), type: 'npc.record_memory', payload: { npcId, text: 'hi', embedding: [1] } } }), 'payload.embedding'],
        ['search: wrong length', 400, () => ({ url: `${memories(npcId)}/search`, body: { embedding: [1, 0, 0] } }), 'embedding'],
        ['search: topK 0', 400, () => ({ url: `${memories(npcId)}/search`, body: { embedding: [1, 0, 0, 0], topK: 0 } }), 'topK'],
        ['search: topK 101', 400, () => ({ url: `${memories(npcId)}/search`, body: { embedding: [1, 0, 0, 0], topK: 101 } }), 'topK'],
        ['search: topK 2.5', 400, () => ({ url: `${memories(npcId)}/search`, body: { embedding: [1, 0, 0, 0], topK: 2.5 } }), 'topK'],
        ['search: a negative weight', 400, () => ({ url: `${memories(npcId)}/search`, body: { embedding: [1, 0, 0, 0], weights: { recency: -1 } } }), 'weights.recency'],
        ['search: an unknown field', 400, () => ({ url: `${memories(npcId)}/search`, body: { embedding: [1, 0, 0, 0], k: 3 } }), undefined],
        ['search: a body that is not an object', 400, () => ({ url: `${memories(npcId)}/search`, body: [1, 2] }), undefined],
        ['search: unknown NPC', 404, () => ({ url: `${memories(randomUUID())}/search`, body: { embedding: [1, 0, 0, 0] } }), undefined],
        ['search: an item, not an NPC', 422, () => ({ url: `${memories(itemId)}/search`, body: { embedding: [1, 0, 0, 0], minPosition: itemAt } }), undefined],
        ['search: a bad npcId', 400, () => ({ url: `${memories('abc')}/search`, body: { embedding: [1, 0, 0, 0] } }), 'npcId'],
      ])('%s → %d', async (_label, status, request, path) => {
        const before = await eventCount();
        const { url, body } = request();
        const r = await t.request({ method: 'POST', url, body });
        expect(r.status).toBe(status);
        expect(r.body.type).toMatch(/^urn:lorestore:problem:/);
        if (path) expect(r.body.errors.map((e: { path: string }) => e.path)).toContain(path);
        expect(await eventCount()).toBe(before);
      });

      it('forget: an unknown memory → 404, a bad memoryId → 400, another NPC’s memory → 404; nothing appended', async () => {
        const other = await spawnNpc();
        const mine = await record(other.npcId, 'mine', [1, 0, 0, 0]);
        const before = await eventCount();
        expect((await t.request({ method: 'DELETE', url: `${memories(npcId)}/${randomUUID()}` })).status).toBe(404);
        expect((await t.request({ method: 'DELETE', url: `${memories(npcId)}/not-a-uuid` })).status).toBe(400);
        const foreign = await t.request({ method: 'DELETE', url: `${memories(npcId)}/${mine.memoryId}?minPosition=${mine.position}` });
        expect(foreign.status).toBe(404);
        expect(foreign.body.type).toBe('urn:lorestore:problem:memory-not-found');
        expect(await eventCount()).toBe(before);
      });
    });

    it('keeps a memory about a player sealed in its row, and drops it from search (and Pinecone) when the player is erased', async () => {
      const { npcId } = await spawnNpc();
      const player = randomUUID();
      const about = await t.request({ method: 'POST', url: memories(npcId), body: { text: 'she paid in stolen coin', embedding: [1, 0, 0, 0], subjects: [player] } });
      expect(about.status).toBe(200);
      const plain = await record(npcId, 'the roof leaks', [0, 1, 0, 0]);
      const query = { embedding: [1, 1, 0, 0], topK: 5, weights: { relevance: 1, recency: 0, importance: 0 } };
      expect(texts(await search(npcId, { ...query, minPosition: plain.position })).sort()).toEqual(['she paid in stolen coin', 'the roof leaks']);
      const row = await pool().query<{ text: string; sealed: unknown }>('SELECT text, sealed FROM npc_memories WHERE memory_id = $1', [about.body.memoryId]);
      expect(row.rows[0]).toMatchObject({ text: '', sealed: { text: { $pii: 1, s: [player] }, embedding: { $pii: 1, s: [player] } } });
      const total = () => Object.values(server?.counts() ?? {}).reduce((a, b) => a + b, 0);
      const indexed = total();

      const erased = await admin(`/v1/admin/players/${player}/erase`, { reason: 'player asked' });
      expect(erased.status).toBe(200);
      expect(texts(await search(npcId, { ...query, minPosition: erased.body.position }))).toEqual(['the roof leaks']);
      // The search waited for the external index to take the NPC's changes: the record is gone there too.
      if (server) expect(total()).toBe(indexed - 1);
      const after = await pool().query<{ text: string; sealed: unknown; erased: boolean }>('SELECT text, sealed, erased FROM npc_memories WHERE memory_id = $1', [about.body.memoryId]);
      expect(after.rows[0]).toEqual({ text: '', sealed: null, erased: true });
    });
  });

scenario('embedded index', async () => ({}));

let server: PineconeTestServer | null = null;
afterAll(async () => server?.close());
scenario('pinecone index against the local test double', async () => {
  server = await startPineconeTestServer({ dimension: DIM });
  return { VECTOR_INDEX: 'pinecone', PINECONE_API_KEY: 'test', PINECONE_HOST: server.host, PINECONE_NAMESPACE_PREFIX: `e2e-${randomUUID().slice(0, 6)}-` };
});
