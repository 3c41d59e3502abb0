/**
 * The API listens on HOST: loopback unless a deployment says otherwise, so `npm start` and `npm run
 * dev` (which start src/api/server.ts with no HOST) cannot be reached from another machine, while
 * the container image listens on every address of its container.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import http from 'node:http';
import { networkInterfaces } from 'node:os';
import { join } from 'node:path';
import { parse, parseAllDocuments } from 'yaml';
import { createHttpServer, listenOnConfiguredAddress, localApiUrl } from '../src/api/httpServer';
import { loadConfig } from '../src/config';
import { startStack, configEnv, type Stack } from './support/stack';

const ROOT = join(__dirname, '..');

/** What /health answers at address:port, or the connection's error code (ECONNREFUSED, ETIMEDOUT, ...). */
function healthAt(address: string, port: number): Promise<number | string> {
  return new Promise((resolve) => {
    const req = http.get({ host: address, port, path: '/health', agent: false, timeout: 5000 }, (res) => {
      res.resume();
      resolve(res.statusCode!);
    });
    req.on('timeout', () => req.destroy(Object.assign(new Error('no answer in 5 s'), { code: 'ETIMEDOUT' })));
    req.on('error', (err: NodeJS.ErrnoException) => resolve(err.code ?? err.message));
  });
}
/**
 * Nothing answers there: a connection error of any kind. Refused where the address routes to this
 * machine (Linux's 127/8), unreachable or timed out where it does not: either way no HTTP status.
 */
const NO_ANSWER = expect.any(String);

/** This machine's addresses that are not loopback (another machine would reach the API on these). */
const outsideAddresses = Object.values(networkInterfaces())
  .flat()
  .filter((a) => a && !a.internal && a.family === 'IPv4')
  .map((a) => a!.address);
/** Whether this machine has IPv6 loopback (some containers have none). */
const hasIPv6Loopback = Object.values(networkInterfaces())
  .flat()
  .some((a) => a?.internal && a.family === 'IPv6' && a.address === '::1');
/** Linux routes all of 127/8 to the loopback device; a socket bound to 127.0.0.1 takes none but its own address. */
const OTHER_LOOPBACK = '127.0.0.2';

describe('the address the API listens on', () => {
  let stack: Stack;
  const servers: http.Server[] = [];
  beforeAll(async () => {
    stack = await startStack({ gpu: false, orchestrator: false });
  });
  afterAll(async () => {
    for (const s of servers) s.closeAllConnections();
    await Promise.all(servers.map((s) => new Promise((r) => s.close(r))));
    await stack.close();
  });

  const listen = async (env: Record<string, string>) => {
    const { HOST: _default, ...rest } = configEnv(stack.config);
    const config = loadConfig({ ...rest, ...env, PORT: '0' });
    const server = createHttpServer(stack.app, config);
    servers.push(server);
    return { config, ...(await listenOnConfiguredAddress(server, config)) };
  };

  it('is loopback when HOST is not set', () => {
    const { HOST: _set, ...env } = configEnv(stack.config);
    expect(loadConfig(env).HOST).toBe('127.0.0.1');
  });

  const unreachable: [string, Record<string, string>][] = [
    ['HOST unset', {}],
    ['HOST=127.0.0.1', { HOST: '127.0.0.1' }],
  ];
  it.each(unreachable)('with %s, answers on 127.0.0.1 only: not on another address of this machine', async (_what, env) => {
    const { address, port } = await listen(env);
    expect(address).toBe('127.0.0.1');
    expect(await healthAt('127.0.0.1', port)).toBe(200);
    expect(await healthAt(OTHER_LOOPBACK, port)).toEqual(NO_ANSWER);
    for (const outside of outsideAddresses) expect([outside, await healthAt(outside, port)]).toEqual([outside, NO_ANSWER]);
  });

  it('with HOST=0.0.0.0 (containers), answers on every address of this machine', async () => {
    const { address, port } = await listen({ HOST: '0.0.0.0' });
    expect(address).toBe('0.0.0.0');
    for (const at of ['127.0.0.1', OTHER_LOOPBACK, ...outsideAddresses]) expect([at, await healthAt(at, port)]).toEqual([at, 200]);
  });

  it.each([['0.0.0.0'], ['::'], ['::1'], ['localhost'], ['api.internal']])('accepts HOST=%s', (host) => {
    expect(loadConfig({ HOST: host }).HOST).toBe(host);
  });

  it.each([[''], ['http://0.0.0.0'], ['127.0.0.1:8001'], ['two words']])('refuses HOST=%j at start, naming the variable', (host) => {
    expect(() => loadConfig({ HOST: host })).toThrow(/HOST/);
  });

  it('src/api/server.ts (what npm start and npm run dev run) listens on loopback when HOST is not set', async () => {
    const { HOST: _unset, ...env } = { ...process.env, ...configEnv(stack.config) };
    const child: ChildProcess = spawn(process.execPath, ['--import', 'tsx', 'src/api/server.ts'], {
      cwd: ROOT,
      env: { ...env, PORT: '0', LOG_SILENT: '0', LOG_FORMAT: 'json', LOG_LEVEL: 'info' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    try {
      const listening = await new Promise<{ host: string; port: number }>((resolve, reject) => {
        let output = '';
        const onData = (d: Buffer) => {
          output += d;
          const line = output.split('\n').find((l) => l.includes('"api listening"'));
          if (line) resolve(JSON.parse(line));
        };
        child.stdout!.on('data', onData);
        child.stderr!.on('data', onData);
        child.once('exit', (code) => reject(new Error(`the API exited with ${code}: ${output}`)));
      });
      expect(listening.host).toBe('127.0.0.1');
      expect(await healthAt('127.0.0.1', listening.port)).toBe(200);
      expect(await healthAt(OTHER_LOOPBACK, listening.port)).toEqual(NO_ANSWER);
    } finally {
      child.kill('SIGTERM');
      await new Promise((r) => child.once('exit', r));
    }
  });

  describe('the URL npm start announces in running.json and npm run dev prints, from HOST and PORT', () => {
    it.each([
      [{}, 'http://127.0.0.1:8001'],
      [{ HOST: '127.0.0.1', PORT: '9001' }, 'http://127.0.0.1:9001'],
      [{ HOST: '0.0.0.0' }, 'http://127.0.0.1:8001'],
      [{ HOST: '192.0.2.10' }, 'http://192.0.2.10:8001'],
      [{ HOST: '::', PORT: '9001' }, 'http://[::1]:9001'],
      [{ HOST: '0:0:0:0:0:0:0:0' }, 'http://[::1]:8001'],
      [{ HOST: '::1' }, 'http://[::1]:8001'],
      [{ HOST: '2001:db8::7' }, 'http://[2001:db8::7]:8001'],
      [{ HOST: 'localhost' }, 'http://localhost:8001'],
      [{ HOST: 'api.internal', PORT: '80' }, 'http://api.internal:80'],
    ])('for %j is %s', (env, url) => {
      expect(localApiUrl(env)).toBe(url);
    });

    it.each([['http://0.0.0.0'], ['127.0.0.1:8001']])('refuses HOST=%j, naming it', (host) => {
      expect(() => localApiUrl({ HOST: host })).toThrow(/HOST/);
    });

    const listened = [['127.0.0.1'], ['0.0.0.0'], ...(hasIPv6Loopback ? [['::1'], ['::']] : [])];
    it.each(listened)('reaches the API listening on HOST=%s', async (host) => {
      const { port } = await listen({ HOST: host });
      const res = await fetch(`${localApiUrl({ HOST: host, PORT: String(port) })}/health`);
      expect(res.status).toBe(200);
    });
  });

  it('is every address in the container image and the Kubernetes Deployment, which are reached from outside', () => {
    const dockerfile = readFileSync(join(ROOT, 'Dockerfile.api'), 'utf8');
    const finalStage = dockerfile.slice(dockerfile.lastIndexOf('\nFROM '));
    expect(finalStage).toMatch(/^ENV .*\bHOST=0\.0\.0\.0\b/m);
    const compose = parse(readFileSync(join(ROOT, 'docker-compose.yml'), 'utf8'));
    expect(compose['x-ts-service'].build.dockerfile).toBe('Dockerfile.api'); // the api service runs that image
    expect(compose.services.api.environment?.HOST).toBeUndefined();
    const [deployment] = parseAllDocuments(readFileSync(join(ROOT, 'deploy/k8s/api.yaml'), 'utf8')).map((d) => d.toJSON());
    expect(deployment.spec.template.spec.containers[0].env).toContainEqual({ name: 'HOST', value: '0.0.0.0' });
  });
});
