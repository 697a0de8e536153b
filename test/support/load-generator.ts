import { randomUUID } from 'node:crypto';

/** One command a game server would send: its type and payload (a commandId is added per send). */
export type GameCommand = { type: string; payload: Record<string, unknown> };

export type LoadOutcome = {
  commandId: string;
  type: string;
  target: string;
  status: number | 'failed';
  ms: number;
  /** 2xx: how many events the answer says were appended (0 for a command that changed nothing). */
  events?: number;
};

export type LoadReport = {
  sent: number;
  /** 2xx: the service says the events are committed. */
  acknowledged: number;
  /** 4xx: the domain or validation refused; nothing appended. */
  refused: number;
  /** 5xx, a cut connection or a timeout: the client does not know (a retry with the commandId would tell). */
  failed: number;
  outcomes: LoadOutcome[];
};

/**
 * An open-loop load generator, like a fleet of game servers: commands leave
 * at a steady rate whatever the answers, spread round-robin over the
 * service instances that are up now (`targets()` may change as the test
 * kills and restarts them). Every outcome is recorded with its commandId.
 */
export const runLoad = (options: {
  targets: () => string[];
  ratePerSecond: number;
  apiKey: string;
  world: string;
  next: (i: number) => GameCommand;
  timeoutMs?: number;
}): { stop: () => Promise<LoadReport> } => {
  const outcomes: LoadOutcome[] = [];
  const inFlight = new Set<Promise<void>>();
  let i = 0;
  let stopped = false;
  const started = performance.now();

  const sendOne = async (target: string, command: GameCommand) => {
    const commandId = randomUUID();
    const at = performance.now();
    let status: number | 'failed';
    let events: number | undefined;
    try {
      const response = await fetch(`${target}/v1/worlds/${options.world}/commands`, {
        method: 'POST',
        headers: { authorization: `Bearer ${options.apiKey}`, 'content-type': 'application/json' },
        body: JSON.stringify({ commandId, ...command }),
        signal: AbortSignal.timeout(options.timeoutMs ?? 10_000),
      });
      const body = await response.text();
      status = response.status;
      if (status >= 200 && status < 300) events = (JSON.parse(body) as { events: unknown[] }).events.length;
    } catch {
      status = 'failed';
    }
    outcomes.push({ commandId, type: command.type, target, status, ms: performance.now() - at, ...(events !== undefined ? { events } : {}) });
  };

  const tick = setInterval(() => {
    if (stopped) return;
    // Catch up to the schedule: the number of commands due by now at the steady rate.
    const due = Math.floor(((performance.now() - started) / 1000) * options.ratePerSecond);
    while (i < due) {
      const targets = options.targets();
      const command = options.next(i);
      const target = targets.length ? targets[i % targets.length]! : null;
      i++;
      if (!target) {
        outcomes.push({ commandId: randomUUID(), type: command.type, target: 'none', status: 'failed', ms: 0 });
        continue;
      }
      const p = sendOne(target, command).finally(() => inFlight.delete(p));
      inFlight.add(p);
    }
  }, 5);

  return {
    stop: async () => {
      stopped = true;
      clearInterval(tick);
      await Promise.all([...inFlight]);
      const ok = (s: LoadOutcome['status']) => typeof s === 'number' && s >= 200 && s < 300;
      const client = (s: LoadOutcome['status']) => typeof s === 'number' && s >= 400 && s < 500;
      return {
        sent: outcomes.length,
        acknowledged: outcomes.filter((o) => ok(o.status)).length,
        refused: outcomes.filter((o) => client(o.status)).length,
        failed: outcomes.filter((o) => !ok(o.status) && !client(o.status)).length,
        outcomes,
      };
    },
  };
};
