/**
 * npm run dev: the whole product in the foreground (services on free ports, API on :8001, the
 * orchestrator and the Python GPU worker), throw-away: its data directory is deleted at Ctrl-C.
 * `npm start` is the kind that keeps its data.
 */
import { publishRunning } from './deployment';
import { startLocalStack } from './localStack';

/** A service URL as it may be printed: without its credentials. */
const shown = (url: string | undefined) => (url ?? '').replace(/\/\/[^@/]*@/, '//');

async function main() {
  const stack = await startLocalStack({ onExit: (name, code) => void shutdown(`${name} exited with ${code}`, 1) });
  // The admin commands find this stack like a deployment (its credentials stay in that private file).
  publishRunning(stack.dataDir, { pid: process.pid, apiUrl: stack.apiUrl, ports: stack.ports, env: stack.serviceEnv, startedAt: new Date().toISOString() });
  process.stderr.write(`[dev] ready: API on ${stack.apiUrl} (redis ${shown(stack.env.REDIS_URL)}, mongodb ${shown(stack.env.MONGO_URL)}, s3 ${stack.env.S3_ENDPOINT})\n`);
  process.stderr.write(
    `[dev] throw-away: everything lives in ${stack.dataDir} and is deleted at Ctrl-C (\`npm start\` keeps its data). ` +
      `A key for this stack: APEX_HOME=${stack.dataDir} npm run keys -- create --tenant NAME\n`,
  );
  let stopping = false;
  async function shutdown(reason: string, code: number) {
    if (stopping) return;
    stopping = true;
    process.stderr.write(`[dev] stopping: ${reason}\n`);
    await stack.stop();
    process.exit(code);
  }
  process.on('SIGINT', () => void shutdown('SIGINT', 0));
  process.on('SIGTERM', () => void shutdown('SIGTERM', 0));
}

main().catch((err) => {
  process.stderr.write(`[dev] ${err instanceof Error ? err.message : String(err)}\n`);
  process.exit(1);
});
