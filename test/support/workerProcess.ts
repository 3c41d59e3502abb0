import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import type { Config } from '../../src/config';
import { configEnv } from './stack';

const ROOT = join(__dirname, '..', '..');
export const GPU_WORKER = join(ROOT, 'gpu-worker');
export const GPU_PYTHON = join(GPU_WORKER, '.venv', 'bin', 'python');

/** Spawns a real process with this suite's config and resolves once it prints `ready`. */
export function startProcess(
  command: string,
  args: string[],
  opts: { cwd: string; config: Config; ready: string; env?: Record<string, string> },
): Promise<ChildProcess> {
  const child = spawn(command, args, {
    cwd: opts.cwd,
    env: { ...process.env, ...configEnv(opts.config), LOG_SILENT: '0', LOG_LEVEL: 'info', ...opts.env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  return new Promise((resolve, reject) => {
    let output = '';
    const onData = (d: Buffer) => {
      output += d;
      if (output.includes(opts.ready)) resolve(child);
    };
    child.stdout!.on('data', onData);
    child.stderr!.on('data', onData);
    child.once('exit', (code) => reject(new Error(`${command} exited with ${code} before it was ready: ${output}`)));
  });
}

/** `src/workers/main.ts --role <role>` as a real process. */
export function startWorkerProcess(role: string, config: Config): Promise<ChildProcess> {
  return startProcess(process.execPath, ['--import', 'tsx', 'src/workers/main.ts', '--role', role], { cwd: ROOT, config, ready: 'worker started' });
}

/** Builds the tiny random-weight models the GPU worker runs by default (once; later calls find them). */
export function buildTinyModels(): void {
  execFileSync(GPU_PYTHON, ['-m', 'dev_support.tiny_models'], { cwd: GPU_WORKER, stdio: 'ignore' });
}

/**
 * The real Python GPU worker (`python -m apex_gpu_worker --role all`) on the tiny models, offline:
 * FLUX, the in-process VLM, dlib's face models, the tiny upscaler. Small renders and few steps keep
 * it quick on CPU; `env` sets what a suite needs beyond that (what its verdicts gate on, say).
 */
export function startTinyGpuWorker(config: Config, env: Record<string, string> = {}): Promise<ChildProcess> {
  return startProcess(GPU_PYTHON, ['-m', 'apex_gpu_worker', '--role', 'all'], {
    cwd: GPU_WORKER,
    config,
    ready: 'GPU worker ready',
    env: { HF_HUB_OFFLINE: '1', APEX_GPU_DEFAULT_STEPS: '4', APEX_GPU_NATIVE_MAX_MEGAPIXELS: '0.08', APEX_GPU_VLM_MAX_NEW_TOKENS: '4096', ...env },
  });
}

export function stopProcess(child: ChildProcess, signal: NodeJS.Signals = 'SIGTERM'): Promise<number | null> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve(child.exitCode);
  return new Promise((resolve) => {
    child.once('exit', (code) => resolve(code));
    child.kill(signal);
  });
}
