import { fork, type ChildProcess } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import path from 'node:path';
import { Pool } from 'pg';
import { EsdbEventStore, EsdbMirror, PostgresEventStore, type EventData, type EventStore } from '@lorestore/event-store';
import { acquireDatabase, adminPool, dropSchemas, freshSchema, quoteIdent, redactUrl } from './support/database';
import { envIntList, envNumber, log } from './support/env';
import { LatencyRecorder, type LatencySummary } from './support/latency';
import { describeMachine, durabilityWarnings, machineLine } from './support/machine';
import { printReport, ratio, type Table } from './support/report';

const TARGET_MIRROR_EVENTS_PER_SECOND = 20_000;

const event = (n: number): EventData => ({
  id: randomUUID(),
  type: 'PlayerActionRecorded',
  data: { playerId: randomUUID(), action: 'jump', context: { x: n, y: n * 2 }, at: new Date().toISOString() },
  metadata: { worldId: 'bench', actor: 'bench', commandId: randomUUID() },
});

type AppendRun = { writers: number; seconds: number; appends: number; appendsPerSecond: number; latency: LatencySummary };

/** Single-event appends by `writers` concurrent loops for `seconds`, each to a stream of its own set. */
const appendLoad = async (store: EventStore, writers: number, seconds: number, warmup: number): Promise<AppendRun> => {
  const latency = new LatencyRecorder();
  let appends = 0;
  let measuring = false;
  let stop = false;
  const loops = Array.from({ length: writers }, async (_, w) => {
    for (let n = 0; !stop; n++) {
      const t0 = performance.now();
      await store.appendToStream(`player-bench-${w}-${n % 50}`, [event(n)]);
      if (measuring) {
        latency.record(performance.now() - t0);
        appends++;
      }
    }
  });
  await new Promise((r) => setTimeout(r, warmup * 1000));
  measuring = true;
  const started = performance.now();
  await new Promise((r) => setTimeout(r, seconds * 1000));
  measuring = false;
  const elapsed = (performance.now() - started) / 1000;
  stop = true;
  await Promise.all(loops);
  return { writers, seconds: Math.round(elapsed * 100) / 100, appends, appendsPerSecond: Math.round(appends / elapsed), latency: latency.summary() };
};

/** The test double in a child process (see esdb/server-child.ts). */
const startServerChild = async (): Promise<{ connectionString: string; count: () => Promise<number>; stop: () => Promise<void> }> => {
  const child: ChildProcess = fork(path.join(__dirname, 'esdb', 'server-child.js'), [], { stdio: 'inherit' });
  const connectionString = await new Promise<string>((resolve, reject) => {
    child.once('message', (m) => resolve((m as { connectionString: string }).connectionString));
    child.once('exit', (code) => reject(new Error(`the EventStoreDB test double exited with ${code}`)));
  });
  return {
    connectionString,
    count: () =>
      new Promise<number>((resolve) => {
        child.once('message', (m) => resolve((m as { count: number }).count));
        child.send('count');
      }),
    stop: async () => {
      const exited = new Promise((r) => child.once('exit', r));
      child.send('stop');
      await exited;
    },
  };
};

/**
 * `npm run bench -- esdb`: (1) appends/s through the official EventStoreDB
 * client against the protocol-level test double (the client's own cost; the
 * double is not a real EventStoreDB: it keeps events in memory and fsyncs
 * nothing) at 1 and 50 writers, beside the PostgreSQL adapter's append rate
 * in the same run; (2) the mirror's ingest rate: EsdbMirror copying a
 * prefilled log from EventStoreDB into PostgreSQL, from empty to caught up.
 */
export const runEsdbBench = async (): Promise<void> => {
  const seconds = envNumber('BENCH_ESDB_SECONDS', 5, 0.5, 600);
  const warmup = envNumber('BENCH_ESDB_WARMUP_SECONDS', 1, 0, 60);
  const levels = envIntList('BENCH_ESDB_WRITERS', [1, 50], 1, 512);
  const mirrorEvents = envNumber('BENCH_ESDB_MIRROR_EVENTS', 200_000, 1000, 5_000_000);
  const mirrorBatch = envNumber('BENCH_ESDB_MIRROR_BATCH', 1000, 10, 100_000);

  const db = await acquireDatabase();
  const admin = adminPool(db.url);
  const schemas = [freshSchema('bench_esdb_pg'), freshSchema('bench_esdb_mirror'), freshSchema('bench_esdb_writes')];
  const server = await startServerChild();
  const pools: Pool[] = [];
  const poolFor = async (schema: string) => {
    const pool = new Pool({ connectionString: db.url, max: 60, options: `-c search_path=${quoteIdent(schema)}` });
    pool.on('error', () => undefined);
    pools.push(pool);
    await pool.query(`CREATE SCHEMA IF NOT EXISTS ${quoteIdent(schema)}`);
    await PostgresEventStore.migrate(pool, schema);
    return pool;
  };
  try {
    const machine = await describeMachine(admin, db.source, redactUrl(db.url));
    log(`esdb: ${machineLine(machine)}`);
    for (const warning of durabilityWarnings(machine)) log(`WARNING: ${warning}`);

    const esdb = new EsdbEventStore({ connectionString: server.connectionString });
    const pgPool = await poolFor(schemas[0]!);
    const pg = new PostgresEventStore({ pool: pgPool, schema: schemas[0]! });
    const appendsEsdb: AppendRun[] = [];
    const appendsPg: AppendRun[] = [];
    for (const writers of levels) {
      log(`esdb: ${writers} writer(s) through @eventstore/db-client against the test double`);
      appendsEsdb.push(await appendLoad(esdb, writers, seconds, warmup));
      log(`esdb: ${writers} writer(s) through the PostgreSQL adapter`);
      appendsPg.push(await appendLoad(pg, writers, seconds, warmup));
    }
    await pg.close();

    // The mirror: prefill the test double, then copy it into an empty PostgreSQL schema.
    log(`esdb: prefilling the test double with ${mirrorEvents} events`);
    const before = await server.count();
    let written = 0;
    await Promise.all(
      Array.from({ length: 32 }, async (_, w) => {
        for (let n = w; n < mirrorEvents; n += 32 * 10) {
          const count = Math.min(10, mirrorEvents - n);
          await esdb.appendToStream(`player-mirror-${w}-${n % 200}`, Array.from({ length: count }, (_, i) => event(n + i)));
          written += count;
        }
      }),
    );
    const total = await server.count();
    log(`esdb: ${written} events written (log holds ${total}, ${before} from the append runs); mirroring into PostgreSQL`);
    const mirrorPool = await poolFor(schemas[1]!);
    const mirror = new EsdbMirror({ esdb, pool: mirrorPool, lockName: `${schemas[1]}.mirror`, batchSize: mirrorBatch });
    const t0 = performance.now();
    mirror.start();
    for (;;) {
      const { rows } = await mirrorPool.query<{ n: string }>('SELECT coalesce((SELECT events FROM esdb_mirror), 0) AS n');
      if (Number(rows[0]!.n) >= total) break;
      await new Promise((r) => setTimeout(r, 20));
    }
    const mirrorSeconds = (performance.now() - t0) / 1000;
    await mirror.stop();
    const { rows } = await mirrorPool.query<{ n: string }>('SELECT count(*) AS n FROM events');
    const mirrorRate = Math.round(total / mirrorSeconds);

    // The mirror's own part: the same log read first, then only its PostgreSQL writes timed (EsdbMirror.write).
    log('esdb: the mirror\'s PostgreSQL writes alone, from batches read beforehand');
    const all = [];
    const subscription = esdb.subscribeToAll({ fromPosition: 'start', batchSize: mirrorBatch });
    for await (const batch of subscription.batches()) {
      all.push(...batch);
      if (all.length >= total) break;
    }
    await subscription.unsubscribe();
    const read = all.length;
    const batches = [];
    for (let i = 0; i < all.length; i += mirrorBatch) batches.push(all.slice(i, i + mirrorBatch));
    const writesPool = await poolFor(schemas[2]!);
    const writer = new EsdbMirror({ esdb, pool: writesPool, lockName: `${schemas[2]}.mirror` });
    const t1 = performance.now();
    for (const batch of batches) await writer.write(batch);
    const writeSeconds = (performance.now() - t1) / 1000;
    const writeRate = Math.round(read / writeSeconds);
    await esdb.close();

    const outcome = {
      mirrorEventsPerSecond: mirrorRate,
      mirrorWritesEventsPerSecond: writeRate,
      mirrorMeetsTarget: mirrorRate >= TARGET_MIRROR_EVENTS_PER_SECOND,
      mirroredRows: Number(rows[0]!.n),
      esdbVsPostgres: levels.map((w, i) => ({ writers: w, ratio: ratio(appendsEsdb[i]!.appendsPerSecond, appendsPg[i]!.appendsPerSecond) })),
    };
    const tables: Table[] = [
      {
        title: `single-event appends, ${seconds} s each after ${warmup} s warm-up (${machineLine(machine)})`,
        headers: ['writers', 'store', 'appends/s', 'p50 ms', 'p99 ms'],
        rows: levels.flatMap((w, i) => [
          [w, 'EventStoreDB client → test double (not a real EventStoreDB)', appendsEsdb[i]!.appendsPerSecond, appendsEsdb[i]!.latency.p50Ms, appendsEsdb[i]!.latency.p99Ms],
          [w, 'PostgreSQL adapter (synchronous_commit on)', appendsPg[i]!.appendsPerSecond, appendsPg[i]!.latency.p50Ms, appendsPg[i]!.latency.p99Ms],
        ]),
      },
      {
        title: `the mirror: EventStoreDB $all → PostgreSQL, ${total} events, batches of ${mirrorBatch}`,
        headers: ['what', 'value'],
        rows: [
          ['end to end: subscription from the test double + PostgreSQL writes, events/s (target >= 20,000)', mirrorRate],
          ['seconds', Math.round(mirrorSeconds * 100) / 100],
          ['rows in events', Number(rows[0]!.n)],
          ['the mirror\'s PostgreSQL writes alone (EsdbMirror.write, batches read beforehand), events/s', writeRate],
        ],
      },
    ];
    printReport({ bench: 'esdb', machine, note: 'the EventStoreDB figures are against the in-memory protocol test double, not a real EventStoreDB', appendsEsdb, appendsPg, mirror: { events: total, seconds: mirrorSeconds, eventsPerSecond: mirrorRate, writesOnlyEventsPerSecond: writeRate, batch: mirrorBatch }, outcome }, tables, [
      `mirror ${mirrorRate} events/s (target >= ${TARGET_MIRROR_EVENTS_PER_SECOND}): ${outcome.mirrorMeetsTarget ? 'met' : 'MISSED'}`,
    ]);
  } finally {
    for (const pool of pools) await pool.end().catch(() => undefined);
    await server.stop();
    await dropSchemas(admin, schemas).catch(() => undefined);
    await admin.end();
    await db.release();
  }
};
