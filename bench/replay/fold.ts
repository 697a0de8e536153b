import { deciders, fold, parseStreamId, type AnyDecider, type DomainEvent } from '@lorestore/domain';
import { GameTraffic, type TrafficShape } from '../projections/traffic';

/** One event of the generated log, in log order, with its stream. */
export type LogEntry = { streamId: string; event: DomainEvent };

type StreamEvents = { streamId: string; decider: AnyDecider; events: DomainEvent[] };

export type FoldMeasure = { label: string; events: number; streams: number; runsMs: number[]; medianMs: number; eventsPerSecond: number };

export type FoldResult = {
  log: { events: number; streams: number; generatedMs: number; shape: TrafficShape };
  repetitions: number;
  /** decider.evolve via `fold`, one stream at a time, over the whole log (grouped by stream beforehand, not timed). */
  lorestore: FoldMeasure;
  /** The same fold over the baseline's subset only: the like-for-like figure. */
  lorestoreOnSubset: FoldMeasure;
  /** The seed's replay, per stream: filter the whole (subset) log by stream id, then fold. Quadratic. */
  baseline: FoldMeasure;
  ratio: number | null;
  /** Same final states from both (canonical JSON of every stream's state). */
  statesMatch: boolean;
};

/** Realistic events: GameTraffic's commands, decided by the real deciders on the state built so far. */
export const generateLog = (shape: TrafficShape, events: number): LogEntry[] => {
  const traffic = new GameTraffic(shape);
  const log: LogEntry[] = [];
  while (log.length < events) {
    const command = traffic.next();
    if (!command) continue;
    for (const e of command.events) {
      if (log.length >= events) break;
      log.push({ streamId: command.streamId, event: { type: e.type, data: e.data } as DomainEvent });
    }
  }
  return log;
};

const deciderOf = (streamId: string): AnyDecider => {
  const parsed = parseStreamId(streamId);
  if (!parsed) throw new Error(`not a stream id: ${streamId}`);
  return deciders[parsed.aggregate];
};

const groupByStream = (log: readonly LogEntry[]): StreamEvents[] => {
  const streams = new Map<string, StreamEvents>();
  for (const { streamId, event } of log) {
    let s = streams.get(streamId);
    if (!s) streams.set(streamId, (s = { streamId, decider: deciderOf(streamId), events: [] }));
    s.events.push(event);
  }
  return [...streams.values()];
};

const median = (values: number[]): number => {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
};

const measure = (label: string, events: number, streams: number, repetitions: number, run: () => unknown): FoldMeasure => {
  run(); // warm-up: the JIT sees every evolve branch before the clock starts
  const runsMs: number[] = [];
  for (let i = 0; i < repetitions; i++) {
    const started = performance.now();
    run();
    runsMs.push(Math.round((performance.now() - started) * 1000) / 1000);
  }
  const medianMs = median(runsMs);
  return { label, events, streams, runsMs, medianMs, eventsPerSecond: medianMs > 0 ? Math.round((events / medianMs) * 1000) : 0 };
};

/** Keys sorted at every level: states compare equal whatever order their keys were set in. */
export const canonical = (value: unknown): string =>
  JSON.stringify(value, (_key, v: unknown) =>
    v && typeof v === 'object' && !Array.isArray(v) ? Object.fromEntries(Object.entries(v as Record<string, unknown>).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))) : v,
  );

/** lorestore's fold: every stream's events, already apart, through `fold(decider, events)`. */
const foldStreams = (streams: readonly StreamEvents[], out: unknown[]): unknown[] => {
  for (let i = 0; i < streams.length; i++) out[i] = fold(streams[i]!.decider, streams[i]!.events);
  return out;
};

/** The seed's replay of every stream: read the whole log, keep the stream's events, fold. */
const naiveReplay = (log: readonly LogEntry[], streamIds: readonly string[], out: unknown[]): unknown[] => {
  for (let i = 0; i < streamIds.length; i++) {
    const id = streamIds[i]!;
    const events = log.filter((e) => e.streamId === id).map((e) => e.event);
    out[i] = fold(deciderOf(id), events);
  }
  return out;
};

/**
 * (1) Fold rate in memory: decider.evolve over a realistic log, stream by
 * stream, against the seed's read-all-filter-fold on a subset of the log.
 */
export const runFold = (options: { shape: TrafficShape; events: number; naiveEvents: number; repetitions: number }): FoldResult => {
  const generatedAt = performance.now();
  const log = generateLog(options.shape, options.events);
  const generatedMs = Math.round(performance.now() - generatedAt);
  const streams = groupByStream(log);

  const subset = log.slice(0, Math.min(options.naiveEvents, log.length));
  const subsetStreams = groupByStream(subset);
  const subsetIds = subsetStreams.map((s) => s.streamId);

  const full: unknown[] = [];
  const lorestore = measure('fold(decider, events) per stream', log.length, streams.length, options.repetitions, () => foldStreams(streams, full));
  const onSubset: unknown[] = [];
  const lorestoreOnSubset = measure('fold(decider, events) per stream, baseline subset', subset.length, subsetStreams.length, options.repetitions, () =>
    foldStreams(subsetStreams, onSubset),
  );
  const naive: unknown[] = [];
  const baseline = measure(
    `per stream: filter the whole ${subset.length}-event log by stream id, then fold (quadratic)`,
    subset.length,
    subsetIds.length,
    Math.min(options.repetitions, 3),
    () => naiveReplay(subset, subsetIds, naive),
  );
  const statesMatch = subsetIds.every((_, i) => canonical(naive[i]) === canonical(onSubset[i]));
  return {
    log: { events: log.length, streams: streams.length, generatedMs, shape: options.shape },
    repetitions: options.repetitions,
    lorestore,
    lorestoreOnSubset,
    baseline,
    ratio: baseline.eventsPerSecond > 0 ? Math.round((lorestore.eventsPerSecond / baseline.eventsPerSecond) * 100) / 100 : null,
    statesMatch,
  };
};
