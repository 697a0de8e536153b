import os from 'node:os';
import type { Pool } from 'pg';

export type PostgresSettings = {
  version: string;
  synchronousCommit: string;
  fsync: string;
  walSyncMethod: string;
  sharedBuffers: string;
  maxConnections: string;
};

export type Machine = {
  cpuModel: string;
  cores: number;
  memoryGiB: number;
  os: string;
  node: string;
  /** 1/5/15-minute load averages when the run started: a busy machine skews every figure. */
  loadAverage: number[];
  postgres: PostgresSettings & { source: string; url: string };
};

export const postgresSettings = async (pool: Pool): Promise<PostgresSettings> => {
  const { rows } = await pool.query<Record<keyof PostgresSettings, string>>(`
    SELECT current_setting('server_version') AS "version",
           current_setting('synchronous_commit') AS "synchronousCommit",
           current_setting('fsync') AS "fsync",
           current_setting('wal_sync_method') AS "walSyncMethod",
           current_setting('shared_buffers') AS "sharedBuffers",
           current_setting('max_connections') AS "maxConnections"`);
  return rows[0]!;
};

/** The host and the database server the figures were taken on: the results are meaningless without it. */
export const describeMachine = async (pool: Pool, source: string, url: string): Promise<Machine> => {
  const cpus = os.cpus();
  return {
    cpuModel: cpus[0]?.model.trim() ?? 'unknown',
    cores: cpus.length,
    memoryGiB: Math.round((os.totalmem() / 2 ** 30) * 10) / 10,
    os: `${os.type()} ${os.release()} ${os.arch()}`,
    node: process.version,
    loadAverage: os.loadavg().map((l) => Math.round(l * 100) / 100),
    postgres: { ...(await postgresSettings(pool)), source, url },
  };
};

/** The one-line summary above each table. */
export const machineLine = (m: Machine): string =>
  `${m.cpuModel}, ${m.cores} cores, ${m.memoryGiB} GiB, Node ${m.node}, PostgreSQL ${m.postgres.version} (${m.postgres.source}), ` +
  `synchronous_commit=${m.postgres.synchronousCommit}, fsync=${m.postgres.fsync}, load average at start ${m.loadAverage.join(' ')}`;

/** Durability must match the service's: a run with weakened settings says so loudly. */
export const durabilityWarnings = (m: Machine): string[] => [
  ...(m.postgres.synchronousCommit !== 'on' ? [`synchronous_commit is "${m.postgres.synchronousCommit}", not "on": figures are not comparable`] : []),
  ...(m.postgres.fsync !== 'on' ? ['fsync is off: figures are not comparable'] : []),
];
