import { readFileSync } from 'node:fs';
import path from 'node:path';
import { runCellInWorker } from './append/cell';
import type { ContenderConfig } from './append/contender';
import { SERVICE_DEFAULT_BATCHES, summarize, type Cell } from './append/summary';
import { acquireDatabase, adminPool, checkpoint, dropSchemas, freshSchema, redactUrl } from './support/database';
import { envIntList, envNumber, log } from './support/env';
import { describeMachine, durabilityWarnings, machineLine } from './support/machine';
import { printReport } from './support/report';

const emmettVersion = (): string => {
  try {
    const entry = require.resolve('@event-driven-io/emmett-postgresql');
    return (JSON.parse(readFileSync(path.join(path.dirname(entry), '..', 'package.json'), 'utf8')) as { version: string }).version;
  } catch {
    return 'unknown';
  }
};

/**
 * `npm run bench -- append`: single-event appends at several concurrency
 * levels, lorestore against (a) one INSERT per transaction through `pg` and
 * (b) emmett-postgresql, same events, same database, same run.
 */
export const runAppendBench = async (): Promise<void> => {
  const seconds = envNumber('BENCH_SECONDS', 5, 0.5, 600);
  const warmupSeconds = envNumber('BENCH_WARMUP_SECONDS', 1, 0, 60);
  const levels = envIntList('BENCH_WRITERS', [1, 16, 64], 1, 256);
  const batchSettings = envIntList('BENCH_GROUP_COMMIT', [1, 2, 4], 1, 64);
  const maxBatchSize = envNumber('BENCH_GROUP_COMMIT_MAX_BATCH', 256, 1, 10_000);
  const streams = envNumber('BENCH_STREAMS', 0, 0, 1_000_000);
  const prefill = envNumber('BENCH_PREFILL', 0, 0, 10_000_000);
  const cpuProfDir = process.env.BENCH_CPU_PROF;
  // The cost of encryption (issue: personal fields within 15% of none): the same chat-context event, plain and sealed.
  const personal = envNumber('BENCH_PERSONAL', 1, 0, 1) === 1;

  const db = await acquireDatabase();
  const admin = adminPool(db.url);
  const schemas: string[] = [];
  const cells: Cell[] = [];
  const startedAt = new Date();
  let machine;
  try {
    machine = await describeMachine(admin, db.source, redactUrl(db.url));
    log(machineLine(machine));
    for (const warning of durabilityWarnings(machine)) log(`WARNING: ${warning}`);

    const schema = (prefix: string) => {
      const name = freshSchema(prefix);
      schemas.push(name);
      return name;
    };
    const contenders: ContenderConfig[] = [
      { kind: 'raw-pg', label: 'raw pg, 1 INSERT/txn', url: db.url, schema: schema('bench_raw') },
      { kind: 'emmett', label: `emmett-postgresql ${emmettVersion()}`, url: db.url, schema: schema('bench_emmett') },
      ...batchSettings.map(
        (n): ContenderConfig => ({
          kind: 'lorestore',
          label: `lorestore, ${n} concurrent batch${n > 1 ? 'es' : ''}`,
          url: db.url,
          schema: schema(`bench_lorestore_b${n}`),
          groupCommit: { maxConcurrentBatches: n, maxBatchSize },
        }),
      ),
      // The previous approach at the service's default, in the same run: every batch through append_batch.
      {
        kind: 'lorestore-full',
        label: `lorestore b${SERVICE_DEFAULT_BATCHES}, append_batch only (before 004)`,
        url: db.url,
        schema: schema('bench_lorestore_full'),
        groupCommit: { maxConcurrentBatches: SERVICE_DEFAULT_BATCHES, maxBatchSize },
      },
      // Plain and sealed twice, in the order plain, sealed, new player, sealed, plain: whatever drifts
      // during the run (checkpoints, autovacuum, the page cache) weighs on both sides alike.
      ...(personal
        ? (['plain', 'sealed', 'sealed-new-player', 'sealed', 'plain'] as const).map((mode, i): ContenderConfig => {
            const round = i < 2 ? 1 : i > 2 ? 2 : null;
            return {
              kind: 'lorestore-personal',
              label:
                `lorestore b${SERVICE_DEFAULT_BATCHES}, chat context ${mode === 'plain' ? 'plain' : mode === 'sealed' ? 'sealed (known players)' : 'sealed (a new player each)'}` +
                (round ? ` #${round}` : ''),
              url: db.url,
              schema: schema(`bench_pii_${mode === 'sealed-new-player' ? 'new' : mode}${round ?? ''}`),
              groupCommit: { maxConcurrentBatches: SERVICE_DEFAULT_BATCHES, maxBatchSize },
              personal: mode,
            };
          })
        : []),
    ];

    const prefilled = new Set<string>();
    for (const writers of levels) {
      for (const contender of contenders) {
        const history = prefill > 0 && !prefilled.has(contender.schema) ? prefill : 0;
        prefilled.add(contender.schema);
        if (history > 0) log(`${contender.label}: writing ${history} events of history first`);
        await checkpoint(admin);
        log(`${contender.label}: ${writers} writer(s), ${warmupSeconds}s warm-up + ${seconds}s`);
        const execArgv = cpuProfDir ? ['--cpu-prof', `--cpu-prof-dir=${cpuProfDir}`] : [];
        const result = await runCellInWorker(
          {
            contender,
            writers,
            streams,
            prefill: history,
            warmupMs: warmupSeconds * 1000,
            durationMs: seconds * 1000,
            maxOpsPerWorker: 10_000_000,
            maxErrors: 1000,
          },
          execArgv,
        );
        log(`  ${result.opsPerSecond} events/s, p50 ${result.latency.p50Ms} ms, p99 ${result.latency.p99Ms} ms, errors ${result.errors}`);
        for (const sample of result.errorSamples) log(`  error: ${sample}`);
        cells.push({
          contender: contender.label,
          kind: contender.kind,
          maxConcurrentBatches: contender.groupCommit?.maxConcurrentBatches ?? null,
          personal: contender.personal ?? null,
          writers,
          ...result,
        });
      }
    }
  } finally {
    await dropSchemas(admin, schemas).catch((error: unknown) => log(`could not drop schemas ${schemas.join(', ')}: ${String(error)}`));
    await admin.end();
    await db.release();
  }

  const title =
    `append: single-event appends, ${seconds}s per cell, ${streams === 0 ? 'a new stream per append' : `${streams} streams`}, ` +
    `${prefill > 0 ? `tables prefilled with ${prefill} events and analyzed` : 'empty tables'}`;
  const summary = summarize(cells, title);
  const report = {
    bench: 'append',
    startedAt: startedAt.toISOString(),
    machine,
    settings: {
      seconds,
      warmupSeconds,
      writers: levels,
      streams: streams === 0 ? 'a new stream per append' : streams,
      prefilledEvents: prefill,
      groupCommit: { maxConcurrentBatches: batchSettings, maxBatchSize },
      personalCells: personal,
    },
    targets: summary.targets,
    fastPath: summary.fastPath,
    cells: summary.cells,
  };
  const notes = [
    ...(machine ? [machineLine(machine), ...durabilityWarnings(machine).map((w) => `WARNING: ${w}`)] : []),
    ...summary.notes,
  ];
  printReport(report, [summary.table], notes);
};
