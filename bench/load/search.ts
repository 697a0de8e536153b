import { log } from '../support/env';
import type { DriveResult } from './drive';

export type Criteria = { p99Ms: number; maxBadFraction: number; minAchievedFraction: number };

/** Why a run does not count as sustained; empty when it does. */
export const judge = (r: DriveResult, c: Criteria): string[] => {
  const reasons: string[] = [];
  if (r.latency.p99Ms > c.p99Ms) reasons.push(`p99 ${r.latency.p99Ms} ms > ${c.p99Ms} ms`);
  const bad = r.non2xx + r.errors + r.timeouts;
  const attempted = r.responses + r.errors + r.timeouts;
  if (attempted === 0 || bad / attempted > c.maxBadFraction) reasons.push(`${bad} non-2xx/errors of ${attempted} (> ${c.maxBadFraction * 100}%)`);
  if (r.achievedRate < r.offeredRate * c.minAchievedFraction) reasons.push(`answered ${r.achievedRate}/s of ${r.offeredRate}/s offered`);
  return reasons;
};

export type Step = { rate: number; result: DriveResult; pass: boolean; reasons: string[]; note?: string };

export type SearchOptions = {
  /** The profile rate and whether it passed (measured already, over the long run). */
  start: { rate: number; pass: boolean };
  factor: number;
  bisections: number;
  cap: number;
  floor: number;
  /** Runs one step (warm-up, measure, settle) at `rate`. */
  step: (rate: number) => Promise<Step>;
};

export type SearchResult = {
  /** The highest rate that passed; null when none did (not even `floor`). */
  maxSustainedRate: number | null;
  /** True when `cap` itself passed: the real maximum is higher. */
  capped: boolean;
  firstFailedRate: number | null;
  steps: Step[];
};

/**
 * Steps up by `factor` from the profile rate until a step fails (down, if the
 * profile rate failed, until one passes), then bisects `bisections` times
 * between the last pass and the first failure.
 */
export const searchMaxRate = async (options: SearchOptions): Promise<SearchResult> => {
  const steps: Step[] = [];
  let lastPass: number | null = options.start.pass ? options.start.rate : null;
  let firstFail: number | null = options.start.pass ? null : options.start.rate;
  const run = async (rate: number): Promise<boolean> => {
    const step = await options.step(rate);
    steps.push(step);
    log(`    ${rate}/s: ${step.pass ? 'pass' : `fail (${step.reasons.join('; ')})`}`);
    return step.pass;
  };

  if (options.start.pass) {
    let rate = options.start.rate;
    while (firstFail === null && lastPass !== null && lastPass < options.cap) {
      rate = Math.min(options.cap, Math.round(rate * options.factor));
      if (await run(rate)) lastPass = rate;
      else firstFail = rate;
    }
  } else {
    let rate = options.start.rate;
    while (lastPass === null) {
      rate = Math.round(rate / options.factor);
      if (rate < options.floor) break;
      if (await run(rate)) lastPass = rate;
      else firstFail = rate;
    }
  }

  for (let i = 0; i < options.bisections && lastPass !== null && firstFail !== null; i++) {
    const mid = Math.round((lastPass + firstFail) / 2);
    if (mid <= lastPass || mid >= firstFail || (firstFail - lastPass) / lastPass < 0.05) break;
    if (await run(mid)) lastPass = mid;
    else firstFail = mid;
  }
  return { maxSustainedRate: lastPass, capped: lastPass !== null && lastPass >= options.cap, firstFailedRate: firstFail, steps };
};
