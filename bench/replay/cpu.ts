import { readdirSync } from 'node:fs';
import type { Pool } from 'pg';
import { TICKS_PER_SECOND, statOf } from '../support/proc';

/** The postmaster of the server the bench talks to, when it runs on this machine; null otherwise. */
let postmaster: number | null = null;

/** Finds the postmaster through a backend of `pool` (its parent process). Without it, CPU of PostgreSQL is reported as null. */
export const locatePostgres = async (pool: Pool): Promise<number | null> => {
  try {
    const { rows } = await pool.query<{ pid: number }>('SELECT pg_backend_pid() AS pid');
    const backend = statOf(String(rows[0]!.pid));
    postmaster = backend && backend.ppid > 1 ? backend.ppid : null;
  } catch {
    postmaster = null;
  }
  return postmaster;
};

/**
 * CPU milliseconds used so far by that server: the postmaster and its children
 * (backends, background workers), with the backends that exited counted
 * through the postmaster's cutime/cstime. Every client's work on that server
 * counts, not only the bench's.
 */
export const postgresCpuMs = (): number | null => {
  if (postmaster === null) return null;
  const root = statOf(String(postmaster));
  if (!root) return null;
  let ticks = root.own + root.children;
  let entries: string[];
  try {
    entries = readdirSync('/proc');
  } catch {
    return null;
  }
  for (const pid of entries) {
    if (!/^\d+$/.test(pid) || Number(pid) === postmaster) continue;
    const s = statOf(pid);
    if (s && s.ppid === postmaster) ticks += s.own;
  }
  return (ticks * 1000) / TICKS_PER_SECOND;
};

export type CpuMark = { node: NodeJS.CpuUsage; postgres: number | null };

export const cpuMark = (): CpuMark => ({ node: process.cpuUsage(), postgres: postgresCpuMs() });

/** CPU ms since `mark`: this Node process, and the PostgreSQL server's processes (null when it is not on this machine). */
export const cpuSince = (mark: CpuMark): { nodeMs: number; postgresMs: number | null } => {
  const node = process.cpuUsage(mark.node);
  const pg = postgresCpuMs();
  return { nodeMs: Math.round((node.user + node.system) / 1000), postgresMs: mark.postgres !== null && pg !== null ? Math.round(pg - mark.postgres) : null };
};
