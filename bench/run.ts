import { runAppendBench } from './append';
import { runEsdbBench } from './esdb';
import { runHttpBench } from './http';
import { runLoadBench } from './load';
import { runMemoryBench } from './memory';
import { runProjectionsBench } from './projections';
import { runReplayBench } from './replay';

/** `npm run bench -- <name>`: builds, then runs one benchmark by name. */
const benches: Record<string, { describe: string; run: () => Promise<void> }> = {
  append: { describe: 'single-event appends at 1/16/64 writers vs raw pg and emmett-postgresql', run: runAppendBench },
  http: { describe: 'POST /v1/worlds/{w}/commands with autocannon vs a bare Fastify + micro-batched INSERT ceiling', run: runHttpBench },
  projections: { describe: 'projection throughput into PostgreSQL and Redis, lag at 5,000 appends/s, GET entity from Redis at 10,000 req/s', run: runProjectionsBench },
  esdb: { describe: 'appends through the EventStoreDB client against the protocol test double at 1 and 50 writers vs the PostgreSQL adapter; the mirror\'s ingest rate', run: runEsdbBench },
  memory: { describe: 'NPC memory: top-5 search on 100 NPCs × 10,000 memories × 1,536 dims (embedded index vs JS brute force), recall@5, footprint, ingest', run: runMemoryBench },
  load: { describe: 'the 10,000-CCU profile: 1,667 req/s of a command/read mix for 60 s (p99 <= 150 ms) and the highest sustained rate, built API + projector + Redis vs a bare Fastify doing 2 queries + 3 Redis ops', run: runLoadBench },
  replay: { describe: 'fold rate in memory, state-at on a 100,000-event stream with snapshots, rebuild of the read models from 1,000,000 events (RebuildWorker)', run: runReplayBench },
};

const usage = (): string =>
  [
    'usage: npm run bench -- <name>',
    '',
    ...Object.entries(benches).map(([name, b]) => `  ${name.padEnd(11)} ${b.describe}`),
    '',
    'DATABASE_URL: the PostgreSQL to use (default: a throwaway embedded one).',
    'append: BENCH_SECONDS (5), BENCH_WARMUP_SECONDS (1), BENCH_WRITERS (1,16,64), BENCH_GROUP_COMMIT (1,2,4),',
    '        BENCH_GROUP_COMMIT_MAX_BATCH (256), BENCH_STREAMS (0 = a new stream per append),',
    '        BENCH_PREFILL (0; N = write N events of history per contender and ANALYZE before measuring; http too)',
    'http:   BENCH_HTTP_SECONDS (10), BENCH_HTTP_WARMUP_SECONDS (2), BENCH_HTTP_CONNECTIONS (64), BENCH_HTTP_PLAYERS (1000), BENCH_HTTP_PROJECTOR (inline | external)',
    'projections: BENCH_PROJ_EVENTS (100000, at most 2000000), BENCH_PROJ_BATCH_SIZES (200,1000), BENCH_PROJ_WORLDS (4), BENCH_PROJ_ENTITIES (10000),',
    '        BENCH_PROJ_PLAYERS (2000), BENCH_PROJ_LAG_RATE (5000; 0 skips), BENCH_PROJ_LAG_SECONDS (10), BENCH_PROJ_LAG_WARMUP_SECONDS (2),',
    '        BENCH_PROJ_LAG_BATCH_SIZE (1000), BENCH_PROJ_READ_RATE (10000; 0 skips), BENCH_PROJ_READ_CONNECTIONS (32),',
    '        BENCH_PROJ_READ_SECONDS (10), BENCH_PROJ_READ_WARMUP_SECONDS (10), BENCH_PROJ_READ_IDS (10000),',
    '        BENCH_PROJ_READ_FLOOR (1; 0 skips the three floor servers); REDIS_URL (redis://127.0.0.1:6379)',
    'replay: BENCH_REPLAY_PARTS (fold,state-at,rebuild), BENCH_REPLAY_FOLD_EVENTS (200000), BENCH_REPLAY_FOLD_NAIVE_EVENTS (20000), BENCH_REPLAY_FOLD_REPS (5),',
    '        BENCH_REPLAY_STREAM_EVENTS (100000), BENCH_REPLAY_SNAPSHOT_EVERY (100), BENCH_REPLAY_STATE_AT_CALLS (2000), BENCH_REPLAY_STATE_AT_WARMUP (200),',
    '        BENCH_REPLAY_NAIVE_CALLS (20), BENCH_REPLAY_REBUILD_EVENTS (1000000), BENCH_REPLAY_BATCH_SIZES (1000,5000), BENCH_REPLAY_PROJECTIONS (all five),',
    '        BENCH_REPLAY_WORKER (1; 0 skips the RebuildWorker jobs), BENCH_REPLAY_RUNNER (1; 0 skips the one-runner pass), BENCH_REPLAY_PROGRESS_MS (100),',
    '        BENCH_REPLAY_OTHER_SHADOWS (0; 1 creates the other __next tables before each job), BENCH_REPLAY_UPSERT_EVENTS (50000),',
    '        BENCH_REPLAY_QUADRATIC_EVENTS (20000; 0 skips), BENCH_REPLAY_FEED (1; 0 skips reading the feed alone),',
    '        BENCH_REPLAY_BULK_PAGE, BENCH_REPLAY_BULK_FLUSH (the RebuildWorker\'s bulk phase: events per read and per commit; unset: its defaults)',
    'esdb:   BENCH_ESDB_SECONDS (5), BENCH_ESDB_WARMUP_SECONDS (1), BENCH_ESDB_WRITERS (1,50), BENCH_ESDB_MIRROR_EVENTS (200000), BENCH_ESDB_MIRROR_BATCH (1000)',
    'memory: BENCH_MEMORY_NPCS (100), BENCH_MEMORY_PER_NPC (10000), BENCH_MEMORY_DIMENSION (1536), BENCH_MEMORY_QUERIES (500),',
    '        BENCH_MEMORY_EXACT_MAX (4096), BENCH_MEMORY_INGEST (10000; 0 skips the PostgreSQL part)',
    'load:   BENCH_LOAD_RATE (1667), BENCH_LOAD_SECONDS (60), BENCH_LOAD_WARMUP_SECONDS (10), BENCH_LOAD_CONNECTIONS (256), BENCH_LOAD_STAGGER (16),',
    '        BENCH_LOAD_ENTITIES (2000), BENCH_LOAD_PLAYERS (10000), BENCH_LOAD_SEED_CONCURRENCY (32), BENCH_LOAD_IDLE_SECONDS (5),',
    '        BENCH_LOAD_STEP_SECONDS (10), BENCH_LOAD_STEP_WARMUP_SECONDS (3), BENCH_LOAD_STEP_FACTOR (1.5), BENCH_LOAD_BISECT (2),',
    '        BENCH_LOAD_MAX_RATE (20000; 0 skips the search), BENCH_LOAD_P99_MS (150), BENCH_LOAD_TARGETS (baseline,lorestore); REDIS_URL (redis://127.0.0.1:6379)',
    'all:    BENCH_JSON_OUT=<file> also writes the JSON report there; BENCH_CPU_PROF=<dir> writes .cpuprofile files',
  ].join('\n');

// Ctrl-C also reaches the workers and servers (same process group): they stop, the
// bench fails over to its finally blocks, which drop the schemas and stop an embedded
// server. A second Ctrl-C exits at once.
process.once('SIGINT', () => {
  console.error('[bench] interrupted: cleaning up (Ctrl-C again to exit at once)');
  process.exitCode = 130;
  process.once('SIGINT', () => process.exit(130));
});

const main = async (): Promise<number> => {
  const name = process.argv[2];
  const bench = name && Object.hasOwn(benches, name) ? benches[name] : undefined;
  if (!bench) {
    console.error(name ? `unknown bench "${name}"\n` : '');
    console.error(usage());
    return 2;
  }
  await bench.run();
  return 0;
};

main().then(
  // A bench may set process.exitCode (a part failed) and still print its report.
  (code) => process.exit(code || Number(process.exitCode ?? 0)),
  (error: unknown) => {
    console.error(error instanceof Error ? (error.stack ?? error.message) : error);
    process.exit(1);
  },
);
