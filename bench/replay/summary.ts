import { ratio, type Table } from '../support/report';
import type { FoldResult } from './fold';
import type { QuadraticBaseline, UpsertBaseline } from './naive-rebuild';
import type { FeedRun, RebuildRun, RebuildSetup, WorkerRound } from './rebuild';
import type { StateAtResult } from './state-at';

/** The replay targets. */
export const TARGETS = { foldEventsPerSecond: 500_000, stateAtP99Ms: 10, rebuildEventsPerSecond: 50_000 };

export type Outcome<T> = { result: T } | { skipped: string } | { failed: string };

export type RebuildResult = {
  setup: RebuildSetup;
  /** The feed read alone, per batch size: parsed, and as text. */
  feed: FeedRun[];
  baselines: { upsert: UpsertBaseline; quadratic: QuadraticBaseline | null };
  runner: RebuildRun[];
  worker: WorkerRound[];
};

export type Verdict = { measure: string; lorestore: string; baseline: string; ratio: string; target: string; met: boolean | null };

const fmt = (n: number) => n.toLocaleString('en-US');
const x = (r: number | null) => (r === null ? '-' : `${r}x`);
const verdict = (met: boolean | null) => (met === null ? 'n/a' : met ? 'met' : 'MISSED');
const notRun = (o: { skipped: string } | { failed: string }) => ('skipped' in o ? `skipped: ${o.skipped}` : `FAILED: ${o.failed}`);

export const summarize = (fold: Outcome<FoldResult>, stateAt: Outcome<StateAtResult>, rebuild: Outcome<RebuildResult>) => {
  const verdicts: Verdict[] = [];
  const tables: Table[] = [];

  if ('result' in fold) {
    const f = fold.result;
    verdicts.push({
      measure: `(1) fold in memory, ${fmt(f.log.events)} events / ${fmt(f.log.streams)} streams (events/s, median of ${f.repetitions})`,
      lorestore: fmt(f.lorestore.eventsPerSecond),
      baseline: `${fmt(f.baseline.eventsPerSecond)} (on ${fmt(f.baseline.events)} events)`,
      ratio: x(f.ratio),
      target: `>= ${fmt(TARGETS.foldEventsPerSecond)} events/s`,
      met: f.lorestore.eventsPerSecond >= TARGETS.foldEventsPerSecond && f.statesMatch,
    });
  } else verdicts.push({ measure: '(1) fold in memory', lorestore: notRun(fold), baseline: '', ratio: '', target: `>= ${fmt(TARGETS.foldEventsPerSecond)} events/s`, met: null });

  if ('result' in stateAt) {
    const s = stateAt.result;
    verdicts.push({
      measure: `(2) state-at p99 on a ${fmt(s.stream.events)}-event stream, snapshots every ${s.stream.snapshotEvery} (ms; ${fmt(s.lorestore.calls)} vs ${s.baseline.calls} calls)`,
      lorestore: String(s.lorestore.latency.p99Ms),
      baseline: String(s.baseline.latency.p99Ms),
      ratio: x(s.ratioP99),
      target: `p99 <= ${TARGETS.stateAtP99Ms} ms`,
      met: s.lorestore.latency.p99Ms <= TARGETS.stateAtP99Ms && s.check.ok,
    });
    tables.push({
      title: `(2) state-at (ms), one player stream of ${fmt(s.stream.events)} events, ${s.stream.snapshots} snapshots every ${s.stream.snapshotEvery}; sequential calls after warm-up`,
      headers: ['what', 'calls', 'p50', 'p90', 'p99', 'max', 'events folded (mean)'],
      rows: [
        ['StateAt, random { revision } / { position } / { time }', s.lorestore.latency.count, s.lorestore.latency.p50Ms, s.lorestore.latency.p90Ms, s.lorestore.latency.p99Ms, s.lorestore.latency.maxMs, s.lorestore.meanEventsFolded],
        ...(['revision', 'position', 'time'] as const).map((k) => {
          const l = s.lorestore.byTarget[k];
          return [`    { ${k} } only`, l.count, l.p50Ms, l.p90Ms, l.p99Ms, l.maxMs, ''] as (string | number)[];
        }),
        ['StateAt before any snapshot existed (paged fold from revision 0)', s.withoutSnapshots.latency.count, s.withoutSnapshots.latency.p50Ms, s.withoutSnapshots.latency.p90Ms, s.withoutSnapshots.latency.p99Ms, s.withoutSnapshots.latency.maxMs, s.withoutSnapshots.meanEventsFolded],
        ['baseline: replay_events (all rows, filter, fold)', s.baseline.latency.count, s.baseline.latency.p50Ms, s.baseline.latency.p90Ms, s.baseline.latency.p99Ms, s.baseline.latency.maxMs, ''],
      ],
    });
    const p = s.parts;
    tables.push({
      title: `(2) StateAt's calls in parts (ms): waiting on PostgreSQL (queries per call: ${p.queriesPerCall} on average), the rest (fold, bookkeeping); slowest 1 % = mean of the ${p.slowestPercent.calls} slowest calls; GC meanwhile ${p.gc.pauses} pauses, ${p.gc.totalMs} ms, longest ${p.gc.maxMs} ms`,
      headers: ['part', 'p50', 'p90', 'p99', 'max', 'slowest 1 %'],
      rows: [
        ['PostgreSQL round trips', p.database.p50Ms, p.database.p90Ms, p.database.p99Ms, p.database.maxMs, p.slowestPercent.databaseMs],
        ['fold + rest', p.rest.p50Ms, p.rest.p90Ms, p.rest.p99Ms, p.rest.maxMs, p.slowestPercent.restMs],
        ['whole call', s.lorestore.latency.p50Ms, s.lorestore.latency.p90Ms, s.lorestore.latency.p99Ms, s.lorestore.latency.maxMs, p.slowestPercent.totalMs],
      ],
    });
  } else verdicts.push({ measure: '(2) state-at p99', lorestore: notRun(stateAt), baseline: '', ratio: '', target: `p99 <= ${TARGETS.stateAtP99Ms} ms`, met: null });

  if ('result' in rebuild) {
    const r = rebuild.result;
    const events = r.setup.prefill.events;
    const upsert = r.baselines.upsert;
    const base = `${fmt(upsert.eventsPerSecond)} (per-event upsert, ${fmt(upsert.events)} events)`;
    for (const round of r.worker) {
      const onePass = round.jobs.length === 1 && round.jobs[0]!.projection === 'read_models';
      verdicts.push({
        measure: onePass
          ? `(3) rebuild all 5 read models: RebuildWorker, one job (read_models: one pass over the log), batch ${round.batchSize}, ${fmt(events)} events (log events/s)`
          : `(3) rebuild all 5 read models: RebuildWorker, ${round.jobs.length} jobs one after another, batch ${round.batchSize}, ${fmt(events)} events (log events/s)`,
        lorestore: fmt(round.eventsPerSecond),
        baseline: base,
        ratio: x(ratio(round.eventsPerSecond, upsert.eventsPerSecond)),
        target: `>= ${fmt(TARGETS.rebuildEventsPerSecond)} events/s`,
        met: round.eventsPerSecond >= TARGETS.rebuildEventsPerSecond && round.ok,
      });
      for (const job of onePass ? [] : round.jobs) {
        verdicts.push({
          measure: `      one projection: job ${job.projection} (log events/s)`,
          lorestore: fmt(job.eventsPerSecond),
          baseline: '',
          ratio: x(ratio(job.eventsPerSecond, upsert.eventsPerSecond)),
          target: `>= ${fmt(TARGETS.rebuildEventsPerSecond)} events/s`,
          met: job.eventsPerSecond >= TARGETS.rebuildEventsPerSecond && job.ok,
        });
      }
    }
    for (const run of r.runner) {
      verdicts.push({
        measure: `(3) rebuild all 5 read models: one ProjectionRunner over ALL_PROJECTIONS into __next, batch ${run.batchSize} (events/s)`,
        lorestore: fmt(run.eventsPerSecond),
        baseline: base,
        ratio: x(ratio(run.eventsPerSecond, upsert.eventsPerSecond)),
        target: `>= ${fmt(TARGETS.rebuildEventsPerSecond)} events/s`,
        met: run.eventsPerSecond >= TARGETS.rebuildEventsPerSecond && run.ok,
      });
    }
    const runs: RebuildRun[] = [...r.worker.flatMap((w) => w.jobs), ...r.runner];
    tables.push({
      title:
        "(3) where each rebuild's time goes (ms). Reads of the log overlap the work (a runner reads a batch ahead, the worker's bulk phase a page ahead); " +
        'plan = inside runner batches only; rest = wall - load - plan - hot put - commit (the worker: its bulk fold, reads not hidden, job steps); cpu = this Node process / the PostgreSQL server',
      headers: ['rebuild', 'batch', 'wall', 'events/s', 'reads', 'read ms', 'per read', 'load docs', 'plan', 'hot put', 'pg commit', 'commits', 'rest', 'docs/commit', 'doc bytes', 'node cpu', 'pg cpu', 'rows ok'],
      rows: runs.map((run) => [
        run.mode === 'worker' ? `worker job ${run.projection}` : 'runner, all projections',
        run.batchSize,
        run.ms,
        run.eventsPerSecond,
        run.stages.feedReads,
        run.stages.feedReadMs,
        run.stages.perReadMs,
        run.stages.loadDocsMs,
        run.stages.batches > 0 ? run.stages.planMs : '',
        run.stages.hotPutMs,
        run.stages.pgCommitMs,
        run.stages.commits,
        run.stages.restMs,
        run.stages.docsPerCommit,
        run.docBytes ? `${fmt(run.docBytes.mean)} (max ${fmt(run.docBytes.max)})` : '',
        run.cpuMs.nodeMs,
        run.cpuMs.postgresMs ?? '',
        run.ok ? 'yes' : `NO (${run.rows}/${run.expectedRows})`,
      ]),
    });
    if (r.feed.length > 0) {
      tables.push({
        title: `(3) the feed alone, start to head (${fmt(events)} events): the ceiling of a rebuild that reads the log through it`,
        headers: ['read', 'batch', 'reads', 'ms', 'events/s', 'node cpu', 'pg cpu'],
        rows: r.feed.map((f) => [f.label, f.batchSize, f.reads, f.ms, f.eventsPerSecond, f.cpuMs.nodeMs, f.cpuMs.postgresMs ?? '']),
      });
    }
    const q = r.baselines.quadratic;
    tables.push({
      title: `(3) baselines over the same log (${fmt(events)} events, ${fmt(r.setup.prefill.streams)} streams)`,
      headers: ['baseline', 'events', 'ms', 'events/s', `whole log (ms)`],
      rows: [
        [upsert.label, upsert.events, upsert.ms, upsert.eventsPerSecond, `${fmt(upsert.extrapolatedMsForLog)} (linear)`],
        ...(q ? [[q.label, q.events, q.ms, q.eventsPerSecond, `${fmt(q.extrapolatedMsForLog)} (extrapolated: x log/subset x streams)`] as (string | number)[]] : []),
      ],
    });
  } else verdicts.push({ measure: '(3) rebuild of the read models', lorestore: notRun(rebuild), baseline: '', ratio: '', target: `>= ${fmt(TARGETS.rebuildEventsPerSecond)} events/s`, met: null });

  tables.unshift({
    title: 'replay: lorestore beside its naive baseline, same run (ratio = how many times better lorestore is)',
    headers: ['measure', 'lorestore', 'baseline', 'ratio', 'target', 'met?'],
    rows: verdicts.map((v) => [v.measure, v.lorestore, v.baseline, v.ratio, v.target, v.target ? verdict(v.met) : '']),
  });
  return { verdicts, tables };
};
