import { Errors, Pinecone, type Index } from '@pinecone-database/pinecone';
import { startPineconeTestServer, type PineconeTestServer } from '../support/pinecone-test-server';

/**
 * The Pinecone test double, driven only through the official client
 * (@pinecone-database/pinecone 8.2): if these pass, the double speaks the
 * paths, field names and error shapes the client really uses.
 */
describe('Pinecone test server (through @pinecone-database/pinecone)', () => {
  let server: PineconeTestServer;
  let index: Index;

  /** `maxRetries` is the client's own retry budget for 5xx answers (default 3). */
  const connect = (maxRetries?: number): Index => new Pinecone({ apiKey: 'test', maxRetries }).index({ host: server.host });
  const record = (id: string, values: number[], metadata?: Record<string, string | number | boolean | string[]>) => ({ id, values, ...(metadata ? { metadata } : {}) });

  beforeAll(async () => {
    server = await startPineconeTestServer({ dimension: 3 });
  });
  afterAll(() => server.close());
  beforeEach(() => {
    server.reset();
    index = connect();
  });

  it('upserts, then answers a filtered query with only the matching records, by descending cosine', async () => {
    await index.upsert({
      records: [
        record('a-far', [0, 1, 0], { npc_id: 'a', position: 3 }),
        record('a-same', [2, 0, 0], { npc_id: 'a', position: 1 }),
        record('a-near', [1, 1, 0], { npc_id: 'a', position: 2 }),
        record('b-same', [1, 0, 0], { npc_id: 'b', position: 1 }),
      ],
    });

    const result = await index.query({ vector: [1, 0, 0], topK: 10, filter: { npc_id: 'a' }, includeMetadata: true });

    expect(result.matches.map((m) => m.id)).toEqual(['a-same', 'a-near', 'a-far']);
    expect(result.matches[0].score).toBeCloseTo(1, 6);
    expect(result.matches[1].score).toBeCloseTo(Math.SQRT1_2, 6);
    expect(result.matches[2].score).toBeCloseTo(0, 6);
    expect(result.matches[0].metadata).toEqual({ npc_id: 'a', position: 1 });
    expect(result.matches[0].values).toEqual([]); // not asked for: Pinecone sends an empty list
    expect(server.requests.map((r) => `${r.method} ${r.path}`)).toEqual(['POST /vectors/upsert', 'POST /query']);
    expect(server.requests[0].records).toBe(4);

    const top = await index.query({ vector: [1, 0, 0], topK: 2, includeValues: true });
    expect(top.matches.map((m) => [m.id, m.values])).toEqual([
      ['a-same', [2, 0, 0]],
      ['b-same', [1, 0, 0]],
    ]);
    expect(top.matches[0].metadata).toBeUndefined();

    const byId = await index.query({ id: 'a-near', topK: 1 });
    expect(byId.matches.map((m) => m.id)).toEqual(['a-near']);
  });

  it('evaluates the metadata filter language', async () => {
    await index.upsert({
      records: [
        record('r1', [1, 0, 0], { position: 5, tags: ['quest', 'tavern'], hostile: false }),
        record('r2', [1, 0, 0], { position: 15, tags: ['combat'], hostile: true }),
        record('r3', [1, 0, 0], { position: 25, kind: 'lore' }),
      ],
    });
    const ids = async (filter: object) => (await index.query({ vector: [1, 0, 0], topK: 10, filter })).matches.map((m) => m.id).sort();

    expect(await ids({ position: { $gt: 10 } })).toEqual(['r2', 'r3']);
    expect(await ids({ position: { $gte: 5, $lt: 25 } })).toEqual(['r1', 'r2']);
    expect(await ids({ position: { $lte: 5 } })).toEqual(['r1']);
    expect(await ids({ tags: 'tavern' })).toEqual(['r1']); // any element of a string list
    expect(await ids({ tags: { $in: ['combat', 'tavern'] } })).toEqual(['r1', 'r2']);
    expect(await ids({ tags: { $nin: ['combat'] } })).toEqual(['r1', 'r3']);
    expect(await ids({ tags: { $ne: 'quest' } })).toEqual(['r2', 'r3']);
    expect(await ids({ hostile: true })).toEqual(['r2']);
    expect(await ids({ kind: { $exists: true } })).toEqual(['r3']);
    expect(await ids({ kind: { $exists: false } })).toEqual(['r1', 'r2']);
    expect(await ids({ $or: [{ kind: 'lore' }, { hostile: false }] })).toEqual(['r1', 'r3']);
    expect(await ids({ $and: [{ position: { $gt: 1 } }, { position: { $lt: 20 } }], hostile: { $eq: true } })).toEqual(['r2']);

    await expect(index.query({ vector: [1, 0, 0], topK: 10, filter: { position: { $regex: 'x' } } })).rejects.toThrow(Errors.PineconeBadRequestError);
    await expect(index.query({ vector: [1, 0, 0], topK: 10, filter: { position: { $gt: 'ten' } } })).rejects.toThrow(/\$gt for field position needs a number/);
  });

  it('keeps namespaces apart and counts them in describeIndexStats', async () => {
    await index.namespace('npc-a').upsert({ records: [record('x', [1, 0, 0]), record('y', [0, 1, 0])] });
    await index.upsert({ records: [record('x', [0, 0, 1])], namespace: 'npc-b' });
    await index.upsert({ records: [record('z', [0, 0, 1])] }); // no namespace: the client sends "__default__"

    const inB = await index.query({ vector: [1, 0, 0], topK: 10, namespace: 'npc-b', includeValues: true });
    expect(inB.matches.map((m) => [m.id, m.values])).toEqual([['x', [0, 0, 1]]]);
    expect((await index.namespace('elsewhere').query({ vector: [1, 0, 0], topK: 10 })).matches).toEqual([]);

    const stats = await index.describeIndexStats();
    expect(stats).toEqual({
      namespaces: { 'npc-a': { recordCount: 2 }, 'npc-b': { recordCount: 1 }, __default__: { recordCount: 1 } },
      dimension: 3,
      indexFullness: 0,
      totalRecordCount: 4,
    });
    expect(server.counts()).toEqual({ 'npc-a': 2, 'npc-b': 1, __default__: 1 });
  });

  it('deletes by ids, by filter and all of a namespace', async () => {
    const ns = index.namespace('memories');
    await ns.upsert({ records: Array.from({ length: 20 }, (_, i) => record(`m${i}`, [1, i, 0], { position: i })) });

    await ns.deleteOne({ id: 'm0' });
    await ns.deleteMany({ ids: ['m1', 'm2', 'not-there'] });
    expect(server.counts()).toEqual({ memories: 17 });

    await ns.deleteMany({ filter: { position: { $gt: 10 } } });
    expect((await ns.listPaginated()).vectors?.map((v) => v.id)).toEqual(['m10', 'm3', 'm4', 'm5', 'm6', 'm7', 'm8', 'm9']);

    await ns.deleteAll();
    expect(server.counts()).toEqual({ memories: 0 });
    expect(server.requests.filter((r) => r.path === '/vectors/delete')).toHaveLength(4);

    // A namespace that never existed: serverless Pinecone answers 404.
    await expect(index.namespace('never-written').deleteAll()).rejects.toThrow(Errors.PineconeNotFoundError);
  });

  it('fetches records by id, leaving out unknown ids', async () => {
    await index.upsert({ records: [record('f1', [1, 2, 3], { npc_id: 'a' }), record('f2', [3, 2, 1])], namespace: 'n' });

    const fetched = await index.fetch({ ids: ['f1', 'f2', 'missing'], namespace: 'n' });

    expect(fetched.records).toEqual({
      f1: { id: 'f1', values: [1, 2, 3], metadata: { npc_id: 'a' } },
      f2: { id: 'f2', values: [3, 2, 1] },
    });
    expect(fetched.namespace).toBe('n');
    expect(server.requests.at(-1)).toMatchObject({ method: 'GET', path: '/vectors/fetch', bytes: 0 });
  });

  it('pages ids with listPaginated and manages namespaces', async () => {
    const ns = index.namespace('paged');
    await ns.upsert({ records: ['doc#3', 'doc#1', 'doc#2', 'other'].map((id) => record(id, [1, 1, 1])) });

    const first = await ns.listPaginated({ prefix: 'doc#', limit: 2 });
    expect(first.vectors?.map((v) => v.id)).toEqual(['doc#1', 'doc#2']);
    expect(first.pagination?.next).toEqual(expect.any(String));
    const second = await ns.listPaginated({ prefix: 'doc#', limit: 2, paginationToken: first.pagination!.next });
    expect(second.vectors?.map((v) => v.id)).toEqual(['doc#3']);
    expect(second.pagination).toBeUndefined();

    await index.createNamespace({ name: 'empty' });
    expect((await index.listNamespaces()).namespaces?.map((n) => [n.name, n.recordCount])).toEqual([
      ['empty', 0],
      ['paged', 4],
    ]);
    expect(await index.describeNamespace('paged')).toMatchObject({ name: 'paged', recordCount: 4 });

    await index.deleteNamespace('paged');
    expect(server.counts()).toEqual({ empty: 0 });
    await expect(index.describeNamespace('paged')).rejects.toThrow(Errors.PineconeNotFoundError);
    await expect(index.createNamespace({ name: 'empty' })).rejects.toThrow(Errors.PineconeConflictError);
  });

  it('refuses an upsert of 1001 records with a 400, storing none of them', async () => {
    const records = Array.from({ length: 1001 }, (_, i) => record(`r${i}`, [1, 0, 0]));

    const error: unknown = await index.upsert({ records }).catch((e: unknown) => e);

    expect(error).toBeInstanceOf(Errors.PineconeBadRequestError);
    expect(error).toMatchObject({ name: 'PineconeBadRequestError', message: 'Batch size of 1001 vectors exceeds the maximum of 1000 vectors per upsert request' });
    expect(server.requests).toEqual([{ method: 'POST', path: '/vectors/upsert', bytes: expect.any(Number), records: 1001 }]);
    expect(server.counts()).toEqual({});
  });

  it('refuses request bodies over 2 MB and metadata over 40 KB per record', async () => {
    const bulky = Array.from({ length: 700 }, (_, i) => record(`r${i}`, [1, 0, 0], { text: 'x'.repeat(4000) }));
    await expect(index.upsert({ records: bulky })).rejects.toThrow(/^Request size 3MB exceeds the maximum supported size of 2MB$/);
    expect(server.requests[0].bytes).toBeGreaterThan(2 * 1024 * 1024);

    await expect(index.upsert({ records: [record('big', [1, 0, 0], { text: 'x'.repeat(41_000) })] })).rejects.toThrow(
      /^Metadata size is 41011 bytes, which exceeds the limit of 40960 bytes per vector$/,
    );
    await index.upsert({ records: [record('fits', [1, 0, 0], { text: 'x'.repeat(40_000) })] });
    expect(server.counts()).toEqual({ __default__: 1 });
  });

  it('refuses vectors whose dimension differs from the index', async () => {
    const error: unknown = await index.upsert({ records: [record('ok', [1, 0, 0]), record('short', [1, 0])] }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(Errors.PineconeBadRequestError);
    expect((error as Error).message).toBe('Vector dimension 2 does not match the dimension of the index 3');
    expect(server.counts()).toEqual({}); // all or nothing
    await expect(index.query({ vector: [1, 0, 0, 0], topK: 1 })).rejects.toThrow(/^Vector dimension 4 does not match the dimension of the index 3$/);
    await expect(index.query({ vector: [1, 0, 0], topK: 10_001 })).rejects.toThrow(Errors.PineconeBadRequestError);
  });

  it('answers an injected 429 once; the client does not retry it and throws PineconeUnmappedHttpError', async () => {
    server.failNext(1, 429);

    const error: unknown = await index.upsert({ records: [record('r', [1, 0, 0])] }).catch((e: unknown) => e);

    expect(error).toBeInstanceOf(Errors.PineconeUnmappedHttpError);
    expect((error as Error).name).toBe('PineconeUnmappedHttpError');
    expect((error as Error).message).toContain('Too many requests: rate limit exceeded');
    expect((error as Error).message).toContain('Status: 429.');
    expect(server.requests).toHaveLength(1);
    expect(server.counts()).toEqual({});

    await index.upsert({ records: [record('r', [1, 0, 0])] });
    expect(server.counts()).toEqual({ __default__: 1 });
  });

  it('lets the client retry an injected 503 by itself, and limits injection to a path', async () => {
    server.failNext(1, 503, '/vectors/upsert');

    await index.query({ vector: [1, 0, 0], topK: 1 }); // another path: not failed
    await index.upsert({ records: [record('r', [1, 0, 0])] });

    expect(server.requests.map((r) => r.path)).toEqual(['/query', '/vectors/upsert', '/vectors/upsert']);
    expect(server.counts()).toEqual({ __default__: 1 });
  });

  it('ends 5xx retries with PineconeMaxRetriesExceededError, even with maxRetries 0', async () => {
    server.failNext(2, 503);
    await expect(connect(1).fetch({ ids: ['r'] })).rejects.toThrow(Errors.PineconeMaxRetriesExceededError);
    expect(server.requests).toHaveLength(2);

    server.failNext(1, 500);
    await expect(connect(0).fetch({ ids: ['r'] })).rejects.toThrow(Errors.PineconeMaxRetriesExceededError);
    expect(server.requests).toHaveLength(3);
  });
});
