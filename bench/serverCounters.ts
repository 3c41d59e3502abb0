import mongoose from 'mongoose';
import type { Redis } from 'ioredis';

/**
 * What a benchmark phase cost the servers, read as deltas so every change shows its effect:
 * Redis commands (from `INFO commandstats`, every client included: the GPU doubles' too), the Lua
 * script calls among them (BullMQ's moves are scripts, each many commands' work), Redis CPU time,
 * the MongoDB writes issued by this process (mongoose's debug hook sees every collection call), and
 * this process's own CPU time (the workers, and the orchestrator where it runs in-process).
 */
export type ServerCost = { redisCommands: number; redisScripts: number; redisCpuMs: number; mongoWrites: number; processCpuMs: number };

const MONGO_WRITES = new Set(['insertOne', 'insertMany', 'updateOne', 'updateMany', 'replaceOne', 'findOneAndUpdate', 'bulkWrite', 'deleteOne', 'deleteMany']);
let mongoWrites = 0;
let counting = false;

/** Counts the MongoDB writes of this process from now on (mongoose's global debug hook). */
function countMongoWrites() {
  if (counting) return;
  counting = true;
  mongoose.set('debug', (_collection: string, method: string) => {
    if (MONGO_WRITES.has(method)) mongoWrites++;
  });
}

async function redisTotals(redis: Redis) {
  const stats = await redis.info('commandstats');
  let commands = 0;
  let scripts = 0;
  for (const [, name, calls] of stats.matchAll(/^cmdstat_([^:]+):calls=(\d+)/gm)) {
    if (name === 'info') continue; // the probe itself
    commands += Number(calls);
    if (name.startsWith('eval')) scripts += Number(calls);
  }
  const cpu = await redis.info('cpu');
  const seconds = (field: string) => Number(new RegExp(`^${field}:([\\d.]+)`, 'm').exec(cpu)?.[1] ?? 0);
  return { commands, scripts, cpuMs: (seconds('used_cpu_user') + seconds('used_cpu_sys')) * 1000 };
}

/** Starts a measurement; `stop()` returns the cost since then. */
export async function measureServers(redis: Redis): Promise<{ stop(): Promise<ServerCost> }> {
  countMongoWrites();
  const before = await redisTotals(redis);
  const writesBefore = mongoWrites;
  const cpuBefore = process.cpuUsage();
  return {
    async stop() {
      const cpu = process.cpuUsage(cpuBefore);
      const after = await redisTotals(redis);
      return {
        processCpuMs: (cpu.user + cpu.system) / 1000,
        redisCommands: after.commands - before.commands,
        redisScripts: after.scripts - before.scripts,
        redisCpuMs: after.cpuMs - before.cpuMs,
        mongoWrites: mongoWrites - writesBefore,
      };
    },
  };
}

/** One line per phase: the cost divided by the jobs it ran (MongoDB writes only where this process made them). */
export function perJob(cost: ServerCost, jobs: number, opts: { mongo: boolean } = { mongo: true }): string {
  const f = (n: number) => (n / jobs).toFixed(1);
  const ms = (n: number) => (n / jobs).toFixed(2);
  const redis = `Redis ${f(cost.redisCommands)} commands (${f(cost.redisScripts)} Lua scripts), ${ms(cost.redisCpuMs)} ms Redis CPU`;
  const cpu = `${ms(cost.processCpuMs)} ms CPU in this process`;
  return opts.mongo ? `${redis}; MongoDB ${f(cost.mongoWrites)} writes; ${cpu}` : `${redis}; ${cpu}`;
}
