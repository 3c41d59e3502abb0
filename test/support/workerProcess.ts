import { spawn, type ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import type { Config } from '../../src/config';
import { configEnv } from './stack';

const ROOT = join(__dirname, '..', '..');

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

export function stopProcess(child: ChildProcess, signal: NodeJS.Signals = 'SIGTERM'): Promise<number | null> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve(child.exitCode);
  return new Promise((resolve) => {
    child.once('exit', (code) => resolve(code));
    child.kill(signal);
  });
}
