import { parseArgs } from 'node:util';
import { loadConfig } from '../config';
import { logger } from '../logger';
import { startTracing } from '../telemetry';
import { connectMongo } from '../store/mongo';
import { startNotifierRole } from './notifierRole';
import { startOrchestratorRole } from './orchestratorRole';

/**
 * Entry point of the long-running TypeScript workers:
 *   tsx src/workers/main.ts --role orchestrator|notifier [--concurrency N]
 * Stateless: scaling out is starting more of these.
 */
const ROLES = { orchestrator: startOrchestratorRole, notifier: startNotifierRole } as const;

async function main() {
  const { values } = parseArgs({ options: { role: { type: 'string' }, concurrency: { type: 'string' } } });
  const role = values.role as keyof typeof ROLES;
  if (!role || !(role in ROLES)) {
    throw new Error(`--role must be one of: ${Object.keys(ROLES).join(', ')}`);
  }
  const config = loadConfig();
  const tracing = startTracing(config, role);
  const mongoose = await connectMongo(config.MONGO_URL);
  const running = ROLES[role](config, values.concurrency ? Number(values.concurrency) : undefined);
  // Ready once what was erased is erased again (a restored backup): starters wait for this line.
  if ('erasureReplay' in running) await running.erasureReplay;
  logger.info('worker started', { role, pid: process.pid });

  let stopping = false;
  const stop = async (signal: string) => {
    if (stopping) return;
    stopping = true;
    logger.info('worker stopping', { role, signal });
    // Jobs in hand may finish within the grace period; past it the process exits anyway, their
    // locks lapse and BullMQ hands them to another process.
    const finished = await Promise.race([running.close().then(() => true), new Promise<false>((r) => setTimeout(() => r(false), config.SHUTDOWN_GRACE_MS))]);
    if (!finished) logger.warn('jobs still running after SHUTDOWN_GRACE_MS; leaving them to other processes', { role });
    await mongoose.disconnect();
    await tracing.shutdown();
    process.exit(0);
  };
  process.on('SIGTERM', () => void stop('SIGTERM'));
  process.on('SIGINT', () => void stop('SIGINT'));
}

main().catch((err) => {
  logger.error('worker failed to start', { error: err instanceof Error ? err.message : String(err) });
  process.exit(1);
});
