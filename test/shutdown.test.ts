import { join } from 'node:path';
import request from 'supertest';
import { freePort } from '../scripts/services';
import { referencePhoto } from './support/fixtures';
import { startStack, type Stack } from './support/stack';
import { startProcess, stopProcess } from './support/workerProcess';

/** SIGTERM on the API process: it stops taking requests, cuts what is still open after the grace period, exits 0. */
describe('graceful shutdown of the API', () => {
  let stack: Stack;
  beforeAll(async () => {
    stack = await startStack({ orchestrator: false, gpu: false });
  });
  afterAll(() => stack.close());

  it('exits 0 on SIGTERM even with an event stream open, ending the stream after SHUTDOWN_GRACE_MS', async () => {
    const port = await freePort();
    const config = { ...stack.config, PORT: port, SHUTDOWN_GRACE_MS: 1000 };
    const api = await startProcess(process.execPath, ['--import', 'tsx', 'src/api/server.ts'], { cwd: join(__dirname, '..'), config, ready: 'api listening' });
    const base = `http://127.0.0.1:${port}`;
    // No orchestrator runs here: the job stays pending and its event stream stays open.
    const jobId = (await request(base).post('/jobs').attach('image_file', await referencePhoto(), 'me.jpg')).body.job_id;
    const stream = await fetch(`${base}/jobs/${jobId}/events`);
    expect(stream.headers.get('content-type')).toMatch(/text\/event-stream/);
    const streamEnded = stream.body!.pipeTo(new WritableStream()).then(() => 'ended', () => 'cut');

    const started = Date.now();
    expect(await stopProcess(api)).toBe(0);
    expect(await streamEnded).toMatch(/ended|cut/);
    // It waited for the open stream (the grace period) rather than cutting it at once.
    expect(Date.now() - started).toBeGreaterThanOrEqual(900);
    await expect(fetch(`${base}/health`)).rejects.toThrow();
  });
});
