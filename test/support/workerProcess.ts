import { spawn, type ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import type { Config } from '../../src/config';
import { configEnv } from './stack';

const ROOT = join(__dirname, '..', '..');

/** Starts `src/workers/main.ts --role <role>` as a real process; resolves once it has started. */
export function startWorkerProcess(role: string, config: Config): Promise<ChildProcess> {
  const child = spawn(process.execPath, ['--import', 'tsx', 'src/workers/main.ts', '--role', role], {
    cwd: ROOT,
    env: { ...process.env, ...configEnv(config), LOG_SILENT: '0', LOG_LEVEL: 'info' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  return new Promise((resolve, reject) => {
    let output = '';
    const onData = (d: Buffer) => {
      output += d;
      if (output.includes('worker started')) resolve(child);
    };
    child.stdout!.on('data', onData);
    child.stderr!.on('data', onData);
    child.once('exit', (code) => reject(new Error(`worker exited with ${code} before starting: ${output}`)));
  });
}

export function stopProcess(child: ChildProcess, signal: NodeJS.Signals = 'SIGTERM'): Promise<number | null> {
  if (child.exitCode !== null) return Promise.resolve(child.exitCode);
  return new Promise((resolve) => {
    child.once('exit', (code) => resolve(code));
    child.kill(signal);
  });
}
