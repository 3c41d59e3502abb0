/**
 * Everything the product runs, on this machine: the backing services (scripts/services.ts), the
 * API, the TypeScript orchestrator and notifier, and the Python GPU worker, each a child process
 * whose log lines are prefixed with its name. `startLocalStack` is the throw-away kind (`npm run
 * dev`, `npm run demo`, tests); `npm start` (scripts/start.ts) starts the services on its own data
 * directory and ports and then the same `startProduct`.
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import { localApiUrl } from '../src/api/httpServer';
import { stopProcess } from './processes';
import { startServices } from './services';

const ROOT = join(__dirname, '..');
const GPU_WORKER = join(ROOT, 'gpu-worker');

function run(name: string, command: string, args: string[], cwd: string, env: NodeJS.ProcessEnv, quiet: boolean): ChildProcess {
  const child = spawn(command, args, { cwd, env, stdio: ['ignore', 'pipe', 'pipe'] });
  const prefix = (chunk: Buffer) =>
    chunk
      .toString()
      .split('\n')
      .filter(Boolean)
      .map((line) => `[${name}] ${line}\n`)
      .join('');
  const forward = (d: Buffer) => (quiet ? undefined : process.stderr.write(prefix(d)));
  child.stdout!.on('data', forward);
  child.stderr!.on('data', forward);
  return child;
}

/** Resolves once `child` prints `marker`; rejects if it exits first. */
function waitFor(child: ChildProcess, marker: string, name: string): Promise<void> {
  return new Promise((resolve, reject) => {
    let seen = '';
    const onData = (d: Buffer) => {
      seen = (seen + d.toString()).slice(-10_000);
      if (seen.includes(marker)) resolve();
    };
    child.stdout!.on('data', onData);
    child.stderr!.on('data', onData);
    child.once('exit', (code) => reject(new Error(`${name} exited with ${code} before it was ready:\n${seen}`)));
  });
}

/** Whether the GPU worker will run on the tiny random-weight models (no model configured). */
export function usesTinyModels(env: NodeJS.ProcessEnv): boolean {
  return !env.APEX_GPU_FLUX_MODEL || !env.APEX_GPU_PORTRAIT_MODEL || !env.APEX_GPU_VLM_MODEL;
}

export type Product = Awaited<ReturnType<typeof startProduct>>;

/**
 * The API, orchestrator, notifier and GPU worker against the services in `env`; resolves once all
 * four are ready. `stop()` sends each SIGTERM and waits: they finish or hand back what they hold.
 */
export async function startProduct(env: NodeJS.ProcessEnv, opts: { quiet?: boolean; onExit?: (name: string, code: number | null) => void } = {}) {
  const quiet = opts.quiet ?? false;
  const tsx = (script: string, ...args: string[]): [string, string[], string] => [process.execPath, ['--import', 'tsx', script, ...args], ROOT];
  // Without APEX_GPU_FLUX_MODEL / APEX_GPU_PORTRAIT_MODEL / APEX_GPU_VLM_MODEL the worker uses the tiny models, and
  // says so; they are built here first (seconds when they exist), since the worker itself does not.
  if (usesTinyModels(env)) {
    execFileSync(join(GPU_WORKER, '.venv', 'bin', 'python'), ['-m', 'dev_support.tiny_models'], { cwd: GPU_WORKER, stdio: quiet ? 'ignore' : 'inherit' });
  }
  const processes = {
    api: run('api', ...tsx('src/api/server.ts'), { ...env, APEX_SERVICE: 'api' }, quiet),
    orchestrator: run('orchestrator', ...tsx('src/workers/main.ts', '--role', 'orchestrator'), { ...env, APEX_SERVICE: 'orchestrator' }, quiet),
    notifier: run('notifier', ...tsx('src/workers/main.ts', '--role', 'notifier'), { ...env, APEX_SERVICE: 'notifier' }, quiet),
    'gpu-worker': run('gpu-worker', join(GPU_WORKER, '.venv', 'bin', 'python'), ['-m', 'apex_gpu_worker', '--role', 'all'], GPU_WORKER, env, quiet),
  };
  let stopping = false;
  for (const [name, child] of Object.entries(processes)) {
    child.once('exit', (code) => (stopping ? undefined : opts.onExit?.(name, code)));
  }
  const stop = async () => {
    stopping = true;
    // Below start.ts's 120 s backstop: a role still running then is killed rather than orphaned.
    await Promise.all(Object.values(processes).map((c) => stopProcess(c, 'SIGTERM', 110_000)));
  };
  try {
    await Promise.all([
      waitFor(processes.api, 'listening', 'api'),
      waitFor(processes.orchestrator, 'worker started', 'orchestrator'),
      waitFor(processes.notifier, 'worker started', 'notifier'),
      waitFor(processes['gpu-worker'], 'GPU worker ready', 'gpu-worker'),
    ]);
  } catch (err) {
    await stop();
    throw err;
  }
  return { apiUrl: localApiUrl(env), processes, stop };
}

export type LocalStack = Awaited<ReturnType<typeof startLocalStack>>;

/** Throw-away: services on free ports with a temporary data directory that stop() deletes. */
export async function startLocalStack(opts: { quiet?: boolean; onExit?: (name: string, code: number | null) => void } = {}) {
  const services = await startServices();
  const env: NodeJS.ProcessEnv = { ...process.env, ...services.env, LOG_FORMAT: process.env.LOG_FORMAT ?? 'pretty' };
  let product: Product;
  try {
    product = await startProduct(env, opts);
  } catch (err) {
    await services.stop();
    throw err;
  }
  const stop = async () => {
    await product.stop();
    await services.stop();
  };
  return { env, serviceEnv: services.env, ports: services.ports, apiUrl: product.apiUrl, processes: product.processes, dataDir: services.dataDir, stop };
}
