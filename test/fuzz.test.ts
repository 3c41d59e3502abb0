import { spawn } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { createApiKey } from '../src/store/apiKeyModel';
import { startStack, type Stack } from './support/stack';

const SCHEMATHESIS = join(__dirname, 'fuzz', '.venv', 'bin', 'schemathesis');

/**
 * Property-based fuzzing of the live API from its own OpenAPI document (schemathesis from PyPI,
 * installed by `npm test`): no generated request may produce a 5xx.
 */
describe('API fuzz from /openapi.json', () => {
  let stack: Stack;
  let server: Server;
  let key: string;
  beforeAll(async () => {
    stack = await startStack({ config: { AUTH_MODE: 'required', RATE_LIMIT_PER_MINUTE: '100000', GENERATION_MAX_WAIT_S: '0' }, gpu: false, orchestrator: false });
    key = (await createApiKey('fuzz')).key;
    server = await new Promise<Server>((resolve) => {
      const s = stack.app.listen(0, '127.0.0.1', () => resolve(s));
    });
  });
  afterAll(async () => {
    await new Promise((r) => server.close(r));
    await stack.close();
  });

  it('answers every generated request without a server error', async () => {
    const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    const args = [
      'run', `${base}/openapi.json`,
      '--checks', 'not_a_server_error',
      '--max-examples', process.env.FUZZ_EXAMPLES ?? '40',
      '--generation-deterministic',
      '--header', `Authorization: Bearer ${key}`,
      '--workers', '1',
      // Event streams stay open until the job ends (none does here: no workers), so they are not
      // request/response operations a fuzzer can drive; their error answers are tested in jobEvents.
      '--exclude-path-regex', '/events$',
      '--no-color',
    ];
    const { code, output } = await new Promise<{ code: number | null; output: string }>((resolve) => {
      // In a temp dir: schemathesis keeps a cache of found failures in its working directory.
      const child = spawn(SCHEMATHESIS, args, { cwd: mkdtempSync(join(tmpdir(), 'fuzz-')), env: { ...process.env, SCHEMATHESIS_HOOKS: '' } });
      let output = '';
      child.stdout.on('data', (d) => (output += d));
      child.stderr.on('data', (d) => (output += d));
      child.on('exit', (c) => resolve({ code: c, output }));
    });
    process.stdout.write(output.split('\n').slice(-25).join('\n') + '\n');
    expect(output).toMatch(/passed/i);
    expect({ code, tail: code === 0 ? '' : output.slice(-4000) }).toEqual({ code: 0, tail: '' });
  }, 600_000);
});
