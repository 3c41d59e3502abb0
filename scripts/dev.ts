/**
 * npm run dev: the whole product in the foreground (services on free ports, API on :8001, the
 * orchestrator and the Python GPU worker), throw-away: its data directory is deleted at Ctrl-C.
 * `npm start` is the kind that keeps its data.
 */
import { startLocalStack } from './localStack';

async function main() {
  const stack = await startLocalStack({ onExit: (name, code) => void shutdown(`${name} exited with ${code}`, 1) });
  process.stderr.write(`[dev] ready: API on ${stack.apiUrl} (redis ${stack.env.REDIS_URL}, mongodb ${stack.env.MONGO_URL}, s3 ${stack.env.S3_ENDPOINT})\n`);
  process.stderr.write(
    `[dev] throw-away: everything lives in ${stack.dataDir} and is deleted at Ctrl-C (\`npm start\` keeps its data). ` +
      `A key for this stack: MONGO_URL=${stack.env.MONGO_URL} npm run keys -- create --tenant NAME\n`,
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
