/**
 * npm run dev: Redis, FerretDB and MinIO on free local ports, the API on :8001 (PORT) and the
 * TypeScript orchestrator worker, all in the foreground. Ctrl-C stops everything.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import { startServices } from './services';

const ROOT = join(__dirname, '..');

function run(name: string, script: string, args: string[], env: NodeJS.ProcessEnv): ChildProcess {
  const child = spawn(process.execPath, ['--import', 'tsx', script, ...args], { cwd: ROOT, env, stdio: ['ignore', 'pipe', 'pipe'] });
  const prefix = (chunk: Buffer) =>
    chunk
      .toString()
      .split('\n')
      .filter(Boolean)
      .map((line) => `[${name}] ${line}\n`)
      .join('');
  child.stdout!.on('data', (d) => process.stdout.write(prefix(d)));
  child.stderr!.on('data', (d) => process.stderr.write(prefix(d)));
  return child;
}

async function main() {
  const services = await startServices();
  const env: NodeJS.ProcessEnv = { ...process.env, ...services.env, LOG_FORMAT: process.env.LOG_FORMAT ?? 'pretty' };
  process.stderr.write(`[dev] services up: ${JSON.stringify({ redis: env.REDIS_URL, mongodb: env.MONGO_URL, s3: env.S3_ENDPOINT })}\n`);
  const children = [
    run('api', 'src/api/server.ts', [], { ...env, APEX_SERVICE: 'api' }),
    run('orchestrator', 'src/workers/main.ts', ['--role', 'orchestrator'], { ...env, APEX_SERVICE: 'orchestrator' }),
  ];
  process.stderr.write(
    '[dev] GPU steps (prompt, generate, validate, report) are served by the Python worker in gpu-worker/; ' +
      'without it, jobs wait at their first step until STEP_TIMEOUT_MS.\n',
  );

  let stopping = false;
  const stop = async (code: number) => {
    if (stopping) return;
    stopping = true;
    await Promise.all(
      children.map((c) => (c.exitCode !== null ? undefined : new Promise((r) => (c.once('exit', r), c.kill('SIGTERM'))))),
    );
    await services.stop();
    process.exit(code);
  };
  process.on('SIGINT', () => void stop(0));
  process.on('SIGTERM', () => void stop(0));
  for (const child of children) child.on('exit', (code) => void stop(code ?? 1));
}

main().catch((err) => {
  process.stderr.write(`[dev] ${err instanceof Error ? err.message : String(err)}\n`);
  process.exit(1);
});
