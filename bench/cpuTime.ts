import { readdirSync, readFileSync } from 'node:fs';

/**
 * CPU time as Linux accounts it (/proc), to explain a throughput: how busy the whole machine was
 * (every process: ours, the services', anyone else's) and how much CPU given processes used.
 */
const TICK_MS = 10; // USER_HZ is 100 on Linux

/** Busy and total milliseconds of all cores since boot. */
export function machineCpu(): { busyMs: number; totalMs: number } {
  const fields = readFileSync('/proc/stat', 'utf8').split('\n')[0].trim().split(/\s+/).slice(1).map(Number);
  const total = fields.reduce((a, b) => a + b, 0);
  const idle = fields[3] + (fields[4] ?? 0); // idle + iowait
  return { busyMs: (total - idle) * TICK_MS, totalMs: total * TICK_MS };
}

/** A process's program name (comm) and user + system milliseconds, from /proc/<pid>/stat. */
function readProcessStat(pid: number | string): { program: string; cpuMs: number } {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return { program: stat.slice(stat.indexOf('(') + 1, stat.lastIndexOf(')')), cpuMs: (Number(fields[11]) + Number(fields[12])) * TICK_MS }; // utime, stime
}

/** User + system milliseconds a process has used. */
export const processCpuMs = (pid: number): number => readProcessStat(pid).cpuMs;

/** User + system milliseconds used so far by every live process, summed by program name (comm). */
export function cpuMsByProgram(): Map<string, number> {
  const totals = new Map<string, number>();
  for (const pid of readdirSync('/proc').filter((name) => /^\d+$/.test(name))) {
    let entry: { program: string; cpuMs: number };
    try {
      entry = readProcessStat(pid);
    } catch {
      continue; // it ended meanwhile
    }
    totals.set(entry.program, (totals.get(entry.program) ?? 0) + entry.cpuMs);
  }
  return totals;
}
