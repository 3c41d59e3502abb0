import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import request from 'supertest';
import { freePort } from '../scripts/services';
import { referencePhoto } from './support/fixtures';
import { startStack, type Stack } from './support/stack';
import { startProcess, startWorkerProcess, stopProcess } from './support/workerProcess';

type OtlpSpan = { traceId: string; spanId: string; parentSpanId?: string; name: string; kind: number };

/** A stand-in OTLP/HTTP collector (a real HTTP server): keeps every span it is sent. */
function startCollector(): Promise<{ server: Server; url: string; spans: OtlpSpan[] }> {
  const spans: OtlpSpan[] = [];
  const server = createServer((req, res) => {
    let body = '';
    req.on('data', (d) => (body += d));
    req.on('end', () => {
      if (req.url === '/v1/traces' && req.headers['content-type']?.includes('json')) {
        for (const rs of JSON.parse(body).resourceSpans ?? []) for (const ss of rs.scopeSpans ?? []) spans.push(...ss.spans);
      }
      res.writeHead(200, { 'content-type': 'application/json' }).end('{}');
    });
  });
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve({ server, url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, spans })));
}

/**
 * Tracing on: the API and the orchestrator run as real processes exporting to the collector (they
 * flush on SIGTERM); the GPU steps are the scripted double here (pytest covers the Python side
 * continuing the trace).
 */
describe('OpenTelemetry traces (off by default, OTLP when configured)', () => {
  let stack: Stack;
  let collector: Awaited<ReturnType<typeof startCollector>>;
  const processes: ChildProcess[] = [];
  beforeAll(async () => {
    collector = await startCollector();
    stack = await startStack();
  });
  afterAll(async () => {
    await Promise.all(processes.map((p) => stopProcess(p, 'SIGKILL')));
    await stack.close();
    collector.server.close();
  });

  it('carries no trace context in job data while tracing is off', async () => {
    const res = await request(stack.app).post('/jobs').attach('image_file', await referencePhoto(), 'me.jpg');
    await stack.waitForJob(res.body.job_id);
    const inputs = stack.gpu!.callsFor(res.body.job_id).map((c) => c.input);
    expect(inputs.length).toBeGreaterThanOrEqual(3);
    for (const input of inputs) expect(input.trace).toBeUndefined();
  });

  it('follows one job from the API request through the orchestrator into every GPU step', async () => {
    await stack.orchestrator!.close(); // this test's orchestrator is a traced process
    const port = await freePort();
    const traced = { ...stack.config, OTEL_EXPORTER_OTLP_ENDPOINT: collector.url, PORT: port };
    const api = await startProcess(process.execPath, ['--import', 'tsx', 'src/api/server.ts'], { cwd: join(__dirname, '..'), config: traced, ready: 'api listening' });
    const orchestrator = await startWorkerProcess('orchestrator', traced);
    processes.push(api, orchestrator);
    const res = await request(`http://127.0.0.1:${port}`).post('/jobs').attach('image_file', await referencePhoto(), 'me.jpg');
    expect(res.status).toBe(202);
    expect((await stack.waitForJob(res.body.job_id)).status).toBe('completed');
    // A graceful stop flushes each process's spans.
    expect([await stopProcess(api), await stopProcess(orchestrator)]).toEqual([0, 0]);

    const post = collector.spans.find((s) => s.name === 'POST /jobs')!;
    expect(post).toMatchObject({ kind: 2 }); // SERVER
    const orchestratorRuns = collector.spans.filter((s) => s.name === 'portrait process');
    // Every run of the orchestrator (it parks between steps unless a step is already done) is a child of the request.
    expect(orchestratorRuns.length).toBeGreaterThanOrEqual(1);
    for (const run of orchestratorRuns) expect([run.traceId, run.parentSpanId]).toEqual([post.traceId, post.spanId]);
    // Each step's payload continues the trace from the orchestrator run that queued it.
    const steps = stack.gpu!.callsFor(res.body.job_id);
    expect(steps.map((c) => c.step)).toEqual(['prompt', 'generate', 'validate']);
    const runIds = new Set(orchestratorRuns.map((s) => s.spanId));
    for (const { input } of steps) {
      const [, traceId, parentId] = input.trace.traceparent.split('-');
      expect(traceId).toBe(post.traceId);
      expect(runIds.has(parentId)).toBe(true);
    }
  });
});
