import Redis from 'ioredis';
import type { Pool } from 'pg';

/**
 * What the servers did, read from their own counters: PostgreSQL's committed and
 * rolled-back transactions in this database (pg_stat_database; pg_stat_statements
 * needs shared_preload_libraries and a restart), and Redis' calls per command
 * (INFO commandstats). Server-wide: everything else that ran meanwhile is in
 * (the projector, health checks, this bench's own queries, which are subtracted).
 */
export type CounterSnapshot = { at: number; dbTransactions: number; redisCalls: Record<string, number> };

export type CounterDelta = {
  seconds: number;
  dbTransactions: number;
  redisCommands: number;
  /** Calls per Redis command, largest first. */
  redisByCommand: Record<string, number>;
};

export class ServerCounters {
  private readonly redis: Redis;

  constructor(
    private readonly pool: Pool,
    redisUrl: string,
  ) {
    // No ready check: it would send INFO on every (re)connect.
    this.redis = new Redis(redisUrl, { lazyConnect: true, enableReadyCheck: false, maxRetriesPerRequest: 2 });
    this.redis.on('error', () => undefined);
  }

  async connect(): Promise<void> {
    await this.redis.connect();
  }

  async snapshot(): Promise<CounterSnapshot> {
    const { rows } = await this.pool.query<{ n: string }>(
      'SELECT sum(xact_commit + xact_rollback)::text AS n FROM pg_stat_database WHERE datname = current_database()',
    );
    const info = await this.redis.info('commandstats');
    const redisCalls: Record<string, number> = {};
    for (const match of info.matchAll(/^cmdstat_([^:]+):calls=(\d+)/gm)) redisCalls[match[1]!] = Number(match[2]);
    return { at: performance.now(), dbTransactions: Number(rows[0]?.n ?? 0), redisCalls };
  }

  /**
   * `after − before`, less this bench's own reads in between: the snapshot
   * query is counted once it commits, an INFO once it has run, so each
   * snapshot shows up in the next one.
   */
  delta(before: CounterSnapshot, after: CounterSnapshot, ownSnapshotsBetween = 1): CounterDelta {
    const byCommand: Record<string, number> = {};
    for (const [command, calls] of Object.entries(after.redisCalls)) {
      const diff = calls - (before.redisCalls[command] ?? 0) - (command === 'info' ? ownSnapshotsBetween : 0);
      if (diff > 0) byCommand[command] = diff;
    }
    const sorted = Object.fromEntries(Object.entries(byCommand).sort((a, b) => b[1] - a[1]));
    return {
      seconds: Math.round((after.at - before.at) / 10) / 100,
      dbTransactions: after.dbTransactions - before.dbTransactions - ownSnapshotsBetween,
      redisCommands: Object.values(byCommand).reduce((sum, n) => sum + n, 0),
      redisByCommand: sorted,
    };
  }

  close(): void {
    this.redis.disconnect();
  }
}

/**
 * PostgreSQL counts a backend's transactions in shared memory when it goes
 * idle, at most once a second: after the load stops, give the last ones time to land.
 */
export const STATS_SETTLE_MS = 2500;

export const perRequest = (total: number, requests: number): number => (requests > 0 ? Math.round((total / requests) * 100) / 100 : 0);

/** A delta scaled to per-request figures, with the idle background rate (per second) taken off. */
export const costPerRequest = (delta: CounterDelta, requests: number, idle: CounterDelta | null) => {
  const idleDb = idle && idle.seconds > 0 ? (idle.dbTransactions / idle.seconds) * delta.seconds : 0;
  const idleRedis = idle && idle.seconds > 0 ? (idle.redisCommands / idle.seconds) * delta.seconds : 0;
  return {
    requests,
    dbTransactionsPerRequest: perRequest(delta.dbTransactions, requests),
    redisCommandsPerRequest: perRequest(delta.redisCommands, requests),
    dbTransactionsPerRequestLessIdle: perRequest(Math.max(0, delta.dbTransactions - idleDb), requests),
    redisCommandsPerRequestLessIdle: perRequest(Math.max(0, delta.redisCommands - idleRedis), requests),
    redisByCommandPerRequest: Object.fromEntries(Object.entries(delta.redisByCommand).map(([c, n]) => [c, perRequest(n, requests)])),
  };
};
