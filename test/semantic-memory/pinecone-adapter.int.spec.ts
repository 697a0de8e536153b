import { randomUUID } from 'node:crypto';
import { PINECONE_LIMITS, PineconeVectorIndex, truncateUtf8, upsertBatches, type VectorRecord } from '@lorestore/semantic-memory';
import { startPineconeTestServer, type PineconeTestServer } from '../support/pinecone-test-server';

const DIM = 1536;

/**
 * What the Pinecone adapter adds to the client, against the local test double
 * of Pinecone's data plane (test/support/pinecone-test-server.ts): requests
 * kept under Pinecone's limits, retries on 429 and 5xx, long texts cut in
 * metadata, one namespace per world.
 */
describe('Pinecone adapter (against the local test double)', () => {
  let server: PineconeTestServer;
  let index: PineconeVectorIndex;

  beforeAll(async () => {
    server = await startPineconeTestServer({ dimension: DIM });
  });
  afterAll(() => server.close());
  beforeEach(() => {
    server.reset();
    index = new PineconeVectorIndex({ apiKey: 'test', host: server.host, namespacePrefix: 'p-', backoffMs: 1, maxAttempts: 4 });
  });

  const record = (worldId: string, npcId: string, text = 'a memory'): VectorRecord => {
    const vector = Float32Array.from({ length: DIM }, () => Math.random() * 2 - 1);
    const norm = Math.hypot(...vector);
    return { memoryId: randomUUID(), worldId, npcId, vector: vector.map((x) => x / norm), text, importance: 5, createdAt: new Date(), position: 1n };
  };

  it('splits a large upsert under 1,000 records and 2 MB per request, and stores every record', async () => {
    const npc = randomUUID();
    const records = Array.from({ length: 1200 }, () => record('w', npc));
    await index.upsert(records);
    const upserts = server.requests.filter((r) => r.path === '/vectors/upsert');
    expect(upserts.length).toBeGreaterThan(1);
    for (const u of upserts) {
      expect(u.records).toBeLessThanOrEqual(PINECONE_LIMITS.recordsPerUpsert);
      expect(u.bytes).toBeLessThanOrEqual(PINECONE_LIMITS.bytesPerUpsert);
    }
    expect(server.counts()['p-w']).toBe(1200);
  });

  it('retries 429 and 503 with back-off, then succeeds; gives up after maxAttempts', async () => {
    const r = record('w', randomUUID());
    server.failNext(2, 429);
    await index.upsert([r]);
    server.failNext(1, 503);
    const found = await index.query({ worldId: 'w', npcId: r.npcId, vector: r.vector, topK: 1 });
    expect(found.map((m) => m.memoryId)).toEqual([r.memoryId]);
    server.failNext(10, 429);
    await expect(index.query({ worldId: 'w', npcId: r.npcId, vector: r.vector, topK: 1 })).rejects.toThrow(/429/);
  });

  it('does not retry a 400 (a bad request stays bad)', async () => {
    const bad = { ...record('w', randomUUID()), vector: new Float32Array(3).fill(0.5) };
    const before = server.requests.length;
    await expect(index.upsert([bad])).rejects.toThrow(/dimension/i);
    expect(server.requests.length - before).toBe(1);
  });

  it('cuts a long text in metadata under 40 KB (whole characters) and says so', async () => {
    const text = 'é'.repeat(30_000);
    const r = record('w', randomUUID(), text);
    await index.upsert([r]);
    expect(server.counts()['p-w']).toBe(1);
    const cut = truncateUtf8(text, 32 * 1024);
    expect(Buffer.byteLength(cut)).toBeLessThanOrEqual(32 * 1024);
    expect(text.startsWith(cut)).toBe(true);
    expect(truncateUtf8('short', 10)).toBe('short');
  });

  it('keeps worlds in their own namespaces and NPCs apart by filter; remove and clear delete', async () => {
    const npc = randomUUID();
    const a = record('w1', npc);
    const b = record('w2', npc);
    await index.upsert([a, b]);
    expect(server.counts()).toMatchObject({ 'p-w1': 1, 'p-w2': 1 });
    expect((await index.query({ worldId: 'w1', npcId: npc, vector: b.vector, topK: 10 })).map((m) => m.memoryId)).toEqual([a.memoryId]);
    expect(await index.query({ worldId: 'w1', npcId: randomUUID(), vector: a.vector, topK: 10 })).toEqual([]);
    await index.remove('w1', [a.memoryId]);
    expect(server.counts()['p-w1'] ?? 0).toBe(0);
    await index.remove('never-written', [randomUUID()]);
    await index.clear();
    expect(server.counts()['p-w2'] ?? 0).toBe(0);
  });

  it('upsertBatches: 1,536-dimension records go about 60 to a request; small ones 1,000', () => {
    const big = Array.from({ length: 200 }, () => ({ id: randomUUID(), values: Array.from({ length: DIM }, () => Math.random()) }));
    const batches = upsertBatches(big);
    for (const b of batches) expect(Buffer.byteLength(JSON.stringify(b))).toBeLessThan(PINECONE_LIMITS.bytesPerUpsert);
    expect(batches.flat()).toHaveLength(200);
    expect(upsertBatches(Array.from({ length: 2500 }, () => ({ id: 'x', values: [1] }))).map((b) => b.length)).toEqual([1000, 1000, 500]);
  });
});
