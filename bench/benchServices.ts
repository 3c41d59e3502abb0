import mongoose from 'mongoose';
import { startServices } from '../scripts/services';
import { loadConfig, type Config } from '../src/config';
import { logger } from '../src/logger';
import { connectMongo, mongoUrlWithDatabase } from '../src/store/mongo';

/**
 * Runs a benchmark on the services named by REDIS_URL, MONGO_URL etc. when they are set, else on
 * throw-away local ones started here; either way in a database and under a queue prefix of its own.
 */
export async function withBenchServices(name: string, body: (config: Config) => Promise<void>): Promise<void> {
  logger.level = 'warn';
  const services = process.env.REDIS_URL ? undefined : await startServices();
  const env = { ...process.env, ...services?.env };
  const run = `${name}${Date.now()}`;
  const config = loadConfig({ ...env, LOG_LEVEL: 'error', QUEUE_PREFIX: run, MONGO_URL: mongoUrlWithDatabase(env.MONGO_URL!, `apex_${run}`) });
  await connectMongo(config.MONGO_URL);
  try {
    await body(config);
  } finally {
    await mongoose.disconnect();
    await services?.stop();
  }
}

/** A benchmark's entry point: a failure exits non-zero with its message. */
export function runBench(main: () => Promise<void>): void {
  main().catch((err) => {
    console.error(err);
    process.exit(1);
  });
}
