import { randomUUID } from 'node:crypto';
import { Pool } from 'pg';
import { streamIds, uuidV7 } from '@lorestore/domain';
import { PostgresEventStore, type EventData } from '@lorestore/event-store';
import { ReadModelStore } from '@lorestore/projections';
import { EmbeddedVectorIndex, MEMORY_PROJECTION, MemoryProjector, MemorySearch, MemoryStore, NpcVectors, migrateSemanticMemory, vectorToBytes } from '@lorestore/semantic-memory';
import { acquireDatabase, adminPool, dropSchemas, freshSchema, quoteIdent, redactUrl } from './support/database';
import { envNumber, log } from './support/env';
import { LatencyRecorder, type LatencySummary } from './support/latency';
import { describeMachine, machineLine } from './support/machine';
import { prng } from './support/random';
import { printReport, ratio, type Table } from './support/report';

/** Targets of the memory issue. */
const TARGETS = { embeddedSearchP99Ms: 5, recallAt5: 0.99, exactRecallAt5: 1 };

/** Random unit vectors (Gaussian components, normalised: uniform on the sphere), from a seeded PRNG. */
const unitVectors = (random: () => number, count: number, d: number): Float32Array => {
  const out = new Float32Array(count * d);
  for (let i = 0; i < out.length; i += 2) {
    const u = 1 - random();
    const v = random();
    const r = Math.sqrt(-2 * Math.log(u));
    out[i] = r * Math.cos(2 * Math.PI * v);
    if (i + 1 < out.length) out[i + 1] = r * Math.sin(2 * Math.PI * v);
  }
  for (let n = 0; n < count; n++) {
    let s = 0;
    for (let j = 0; j < d; j++) s += out[n * d + j]! ** 2;
    const k = 1 / Math.sqrt(s);
    for (let j = 0; j < d; j++) out[n * d + j]! *= k;
  }
  return out;
};

/** The baseline: plain JavaScript, every vector, exact dot products, a sorted top k. */
const bruteForce = (data: Float32Array, n: number, d: number, q: Float32Array, k: number): number[] => {
  const best: { i: number; s: number }[] = [];
  for (let i = 0; i < n; i++) {
    let s = 0;
    const o = i * d;
    for (let j = 0; j < d; j++) s += data[o + j]! * q[j]!;
    if (best.length < k || s > best[best.length - 1]!.s) {
      best.push({ i, s });
      best.sort((a, b) => b.s - a.s);
      if (best.length > k) best.pop();
    }
  }
  return best.map((b) => b.i);
};

type SearchPart = {
  npcs: number;
  memoriesPerNpc: number;
  dimension: number;
  queries: number;
  buildSeconds: number;
  indexBytes: number;
  bytesPerMemory: number;
  rssBytes: number;
  embedded: LatencySummary & { recallAt5: number; path: string };
  exact: LatencySummary & { recallAt5: number; path: string };
  bruteForceJs: LatencySummary;
};

/**
 * The embedded index's search, in process, on 100 NPCs × 10,000 memories:
 * its default path (i8 SIMD scan, exact re-rank: NPCs over MEMORY_EXACT_MAX),
 * the exact path (f32 SIMD over every vector), and plain JavaScript brute
 * force, on the same queries; recall@5 of each against the brute force.
 */
const searchPart = (npcs: number, perNpc: number, d: number, queries: number, exactMax: number): SearchPart => {
  const random = prng(42);
  const started = performance.now();
  const blocks: { block: NpcVectors; data: Float32Array }[] = [];
  for (let n = 0; n < npcs; n++) {
    const data = unitVectors(random, perNpc, d);
    const block = new NpcVectors(d, perNpc);
    for (let i = 0; i < perNpc; i++) block.add(`m${i}`, data.subarray(i * d, (i + 1) * d));
    // The i8 copy is built on the first search of a large NPC: build it now, outside the timings.
    block.search(data.subarray(0, d), 1, exactMax, 8);
    blocks.push({ block, data });
    if ((n + 1) % 10 === 0) log(`memory: built ${n + 1}/${npcs} NPCs (${Math.round(process.memoryUsage().rss / 2 ** 20)} MiB resident)`);
  }
  const buildSeconds = (performance.now() - started) / 1000;
  const indexBytes = blocks.reduce((s, b) => s + b.block.bytes, 0);
  const qs = Array.from({ length: queries }, () => ({ npc: Math.floor(random() * npcs), q: unitVectors(random, 1, d) }));

  const truth = new LatencyRecorder();
  const expected: Set<string>[] = [];
  for (const { npc, q } of qs) {
    const t0 = performance.now();
    const top = bruteForce(blocks[npc]!.data, perNpc, d, q, 5);
    truth.record(performance.now() - t0);
    expected.push(new Set(top.map((i) => `m${i}`)));
  }
  const run = (max: number) => {
    const latency = new LatencyRecorder();
    let hits = 0;
    qs.forEach(({ npc, q }, i) => {
      const t0 = performance.now();
      const found = blocks[npc]!.block.search(q, 5, max, 8);
      latency.record(performance.now() - t0);
      for (const f of found) if (expected[i]!.has(f.memoryId)) hits++;
    });
    return { ...latency.summary(), recallAt5: Math.round((hits / (qs.length * 5)) * 10_000) / 10_000 };
  };
  // A warm-up pass, so both paths run with the vectors paged in and the code compiled.
  run(exactMax);
  run(Number.MAX_SAFE_INTEGER);
  const embedded = { ...run(exactMax), path: perNpc > exactMax ? `i8 scan + exact re-rank (NPCs over ${exactMax} memories)` : 'exact f32' };
  const exact = { ...run(Number.MAX_SAFE_INTEGER), path: 'exact f32 (every vector)' };
  return {
    npcs,
    memoriesPerNpc: perNpc,
    dimension: d,
    queries,
    buildSeconds: Math.round(buildSeconds * 10) / 10,
    indexBytes,
    bytesPerMemory: Math.round(indexBytes / (npcs * perNpc)),
    rssBytes: process.memoryUsage().rss,
    embedded,
    exact,
    bruteForceJs: truth.summary(),
  };
};

type IngestPart = {
  memories: number;
  dimension: number;
  projectorMemoriesPerSecond: number;
  rawInsertRowsPerSecond: number;
  coldLoadMs: number;
  searchThroughService: LatencySummary;
};

/**
 * Ingest: NpcMemoryRecorded events in the log (JSON embeddings, as the API
 * writes them) projected into the memory rows by the MemoryProjector, beside
 * the raw rate of inserting the same rows into a plain table; then the first
 * search of an NPC (loading its vectors from PostgreSQL) and warm searches
 * through MemorySearch (head check, candidates, rows, scoring, access times).
 */
const ingestPart = async (url: string, schema: string, memories: number, d: number, queries: number): Promise<IngestPart> => {
  const pool = new Pool({ connectionString: url, max: 8, options: `-c search_path=${quoteIdent(schema)}` });
  pool.on('error', () => undefined);
  try {
    await pool.query(`CREATE SCHEMA IF NOT EXISTS ${quoteIdent(schema)}`);
    await PostgresEventStore.migrate(pool, schema);
    await ReadModelStore.migrate(pool, schema);
    await migrateSemanticMemory(pool, schema);
    const store = new PostgresEventStore({ pool, schema, pollIntervalMs: 10 });
    const random = prng(7);
    const world = 'bench';
    const npcs = [randomUUID(), randomUUID()];
    for (const npc of npcs) {
      await store.appendToStream(streamIds.entity(world, npc), [{ id: randomUUID(), type: 'EntitySpawned', data: { entityId: npc, kind: 'npc', attributes: {}, locationId: null, at: new Date().toISOString() }, metadata: {} }]);
    }
    const vectors = unitVectors(random, memories, d);
    log(`memory: appending ${memories} NpcMemoryRecorded events of ${d} dimensions`);
    for (let i = 0; i < memories; i += 100) {
      const byNpc = new Map<string, EventData[]>();
      for (let j = i; j < Math.min(memories, i + 100); j++) {
        const npc = npcs[j % npcs.length]!;
        const at = new Date().toISOString();
        const event: EventData = {
          id: randomUUID(),
          type: 'NpcMemoryRecorded',
          data: { npcId: npc, memoryId: uuidV7(Date.now(), randomUUID()), text: `memory ${j}`, embedding: Array.from(vectors.subarray(j * d, (j + 1) * d)), importance: 1 + (j % 10), subjects: [], at },
          metadata: {},
        };
        if (!byNpc.has(npc)) byNpc.set(npc, []);
        byNpc.get(npc)!.push(event);
      }
      for (const [npc, events] of byNpc) await store.appendToStream(streamIds.entity(world, npc), events);
    }

    const memoriesStore = new MemoryStore(pool, MEMORY_PROJECTION, false);
    const index = new EmbeddedVectorIndex(memoriesStore, { dimension: d });
    const projector = new MemoryProjector({ store, pool, memories: memoriesStore, index, checkpointName: MEMORY_PROJECTION, batchSize: 1000, lockName: `${schema}.bench` });
    const head = await store.headPosition();
    const t0 = performance.now();
    projector.start();
    while (!projector.position || !head || projector.position.prepare < head.prepare) await new Promise((r) => setTimeout(r, 5));
    const projectorSeconds = (performance.now() - t0) / 1000;
    await projector.stop();

    // The baseline: the same rows (unit vectors as bytea, text, ids) straight into a plain table, 1,000 per statement.
    await pool.query('CREATE TABLE raw_memories (memory_id uuid PRIMARY KEY, npc_id uuid, text text, importance smallint, embedding bytea)');
    const t1 = performance.now();
    for (let i = 0; i < memories; i += 1000) {
      const n = Math.min(1000, memories - i);
      const ids = Array.from({ length: n }, () => randomUUID());
      await pool.query('INSERT INTO raw_memories SELECT * FROM unnest($1::uuid[], $2::uuid[], $3::text[], $4::smallint[], $5::bytea[])', [
        ids,
        ids.map((_, k) => npcs[(i + k) % npcs.length]),
        ids.map((_, k) => `memory ${i + k}`),
        ids.map((_, k) => 1 + ((i + k) % 10)),
        ids.map((_, k) => vectorToBytes(vectors.subarray((i + k) * d, (i + k + 1) * d))),
      ]);
    }
    const rawSeconds = (performance.now() - t1) / 1000;

    const search = new MemorySearch(index, memoriesStore, { dimension: d });
    const query = () => Array.from(unitVectors(random, 1, d));
    const t2 = performance.now();
    await search.search({ worldId: world, npcId: npcs[0]!, embedding: query(), topK: 5 });
    const coldLoadMs = performance.now() - t2;
    await search.search({ worldId: world, npcId: npcs[1]!, embedding: query(), topK: 5 });
    const latency = new LatencyRecorder();
    for (let i = 0; i < queries; i++) {
      const embedding = query();
      const t = performance.now();
      await search.search({ worldId: world, npcId: npcs[i % npcs.length]!, embedding, topK: 5 });
      latency.record(performance.now() - t);
    }
    await store.close();
    return {
      memories,
      dimension: d,
      projectorMemoriesPerSecond: Math.round(memories / projectorSeconds),
      rawInsertRowsPerSecond: Math.round(memories / rawSeconds),
      coldLoadMs: Math.round(coldLoadMs * 10) / 10,
      searchThroughService: latency.summary(),
    };
  } finally {
    await pool.end();
  }
};

/** `npm run bench -- memory`. */
export const runMemoryBench = async (): Promise<void> => {
  const npcs = envNumber('BENCH_MEMORY_NPCS', 100, 1, 10_000);
  const perNpc = envNumber('BENCH_MEMORY_PER_NPC', 10_000, 10, 1_000_000);
  const d = envNumber('BENCH_MEMORY_DIMENSION', 1536, 2, 4096);
  const queries = envNumber('BENCH_MEMORY_QUERIES', 500, 10, 100_000);
  const exactMax = envNumber('BENCH_MEMORY_EXACT_MAX', 4096, 1, 10_000_000);
  const ingest = envNumber('BENCH_MEMORY_INGEST', 10_000, 0, 1_000_000);

  const db = await acquireDatabase();
  const admin = adminPool(db.url);
  const schema = freshSchema('bench_memory');
  try {
    const machine = await describeMachine(admin, db.source, redactUrl(db.url));
    log(`memory: ${machineLine(machine)}`);
    log(`memory: building ${npcs} NPCs × ${perNpc} memories of ${d} dimensions in process`);
    const search = searchPart(npcs, perNpc, d, queries, exactMax);
    log(`memory: search done (${search.buildSeconds} s to build); ingest of ${ingest} memories through the projector`);
    const ingested = ingest > 0 ? await ingestPart(db.url, schema, ingest, d, Math.min(queries, 500)) : null;

    const outcome = {
      embeddedP99WithinTarget: search.embedded.p99Ms <= TARGETS.embeddedSearchP99Ms,
      embeddedRecallWithinTarget: search.embedded.recallAt5 >= TARGETS.recallAt5,
      exactRecallIsOne: search.exact.recallAt5 >= TARGETS.exactRecallAt5,
      speedupOverJs: ratio(search.bruteForceJs.p50Ms, search.embedded.p50Ms),
      exactSpeedupOverJs: ratio(search.bruteForceJs.p50Ms, search.exact.p50Ms),
      projectorVsRawInsert: ingested ? ratio(ingested.projectorMemoriesPerSecond, ingested.rawInsertRowsPerSecond) : null,
    };
    const tables: Table[] = [
      {
        title: `top-5 search, ${npcs} NPCs × ${perNpc} memories × ${d} dims, ${queries} queries (${machineLine(machine)})`,
        headers: ['path', 'p50 ms', 'p99 ms', 'max ms', 'recall@5'],
        rows: [
          [`embedded default: ${search.embedded.path}`, search.embedded.p50Ms, search.embedded.p99Ms, search.embedded.maxMs, search.embedded.recallAt5],
          ['embedded exact: f32 SIMD, every vector', search.exact.p50Ms, search.exact.p99Ms, search.exact.maxMs, search.exact.recallAt5],
          ['baseline: plain JavaScript brute force', search.bruteForceJs.p50Ms, search.bruteForceJs.p99Ms, search.bruteForceJs.maxMs, 1],
        ],
      },
      {
        title: 'footprint',
        headers: ['what', 'value'],
        rows: [
          ['index bytes (f32 + i8 + ids)', search.indexBytes],
          ['bytes per memory', search.bytesPerMemory],
          ['process RSS bytes', search.rssBytes],
          ['build seconds (generate + add)', search.buildSeconds],
        ],
      },
      ...(ingested
        ? [
            {
              title: `ingest and search through PostgreSQL (${ingested.memories} memories of ${ingested.dimension} dims, 2 NPCs)`,
              headers: ['what', 'value'],
              rows: [
                ['MemoryProjector, memories/s (events → rows)', ingested.projectorMemoriesPerSecond],
                ['baseline: raw INSERT of the same rows, rows/s', ingested.rawInsertRowsPerSecond],
                ['first search of an NPC (loads its vectors), ms', ingested.coldLoadMs],
                ['MemorySearch p50 ms (head, index, rows, score, touch)', ingested.searchThroughService.p50Ms],
                ['MemorySearch p99 ms', ingested.searchThroughService.p99Ms],
              ] as (string | number)[][],
            },
          ]
        : []),
    ];
    printReport({ bench: 'memory', machine, targets: TARGETS, search, ingest: ingested, outcome }, tables, [
      `embedded p99 ${search.embedded.p99Ms} ms (target ≤ ${TARGETS.embeddedSearchP99Ms}): ${outcome.embeddedP99WithinTarget ? 'met' : 'MISSED'}; ` +
        `recall@5 ${search.embedded.recallAt5} (target ≥ ${TARGETS.recallAt5}): ${outcome.embeddedRecallWithinTarget ? 'met' : 'MISSED'}; ` +
        `exact path recall@5 ${search.exact.recallAt5}`,
    ]);
  } finally {
    await dropSchemas(admin, [schema]).catch(() => undefined);
    await admin.end();
    await db.release();
  }
};
