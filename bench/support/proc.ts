import { readFileSync } from 'node:fs';

/** Linux's USER_HZ: /proc times are in these ticks (100 on every mainstream build). */
export const TICKS_PER_SECOND = 100;

/** After "(comm) ": state, ppid, …; utime, stime, cutime, cstime are fields 14-17 of /proc/<pid>/stat. Null off Linux or for a gone process. */
export const statOf = (pid: string | number): { ppid: number; own: number; children: number } | null => {
  let stat: string;
  try {
    stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  } catch {
    return null;
  }
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return { ppid: Number(fields[1]), own: Number(fields[11]) + Number(fields[12]), children: Number(fields[13]) + Number(fields[14]) };
};

/** CPU time (user + system, ms) a process has used so far; null when /proc does not tell. */
export const processCpuMs = (pid: number | undefined): number | null => {
  const stat = pid === undefined ? null : statOf(pid);
  return stat ? (stat.own * 1000) / TICKS_PER_SECOND : null;
};
