import type { Express } from 'express';
import request from 'supertest';
import { ERROR_CODES } from '../src/api/openapi';
import { startStack, type Stack } from './support/stack';
import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';

/** Every METHOD /path the app routes, with Express's :params written as OpenAPI's {params}. */
function appRoutes(app: Express): string[] {
  const routes: string[] = [];
  const walk = (stack: any[]) => {
    for (const layer of stack) {
      if (layer.route) {
        for (const method of Object.keys(layer.route.methods)) {
          routes.push(`${method.toUpperCase()} ${String(layer.route.path).replace(/:(\w+)/g, '{$1}')}`);
        }
      } else if (layer.handle?.stack && layer.slash !== false) {
        // Routers mounted at a path (the Bull Board dashboard) are operator UI, not the public API.
        walk(layer.handle.stack);
      }
    }
  };
  walk((app as any).router.stack);
  // The docs page and the studio page (with the upload rules it shows) are pages for people, not API operations.
  return routes.filter((r) => !r.startsWith('GET /docs') && r !== 'GET /openapi.json' && r !== 'GET /' && !r.startsWith('GET /studio/'));
}

describe('OpenAPI document', () => {
  let stack: Stack;
  beforeAll(async () => {
    stack = await startStack({ gpu: false, orchestrator: false });
  });
  afterAll(() => stack.close());

  it('is OpenAPI 3.1 and documents every route the app serves', async () => {
    const doc = (await request(stack.app).get('/openapi.json').expect(200)).body;
    expect(doc.openapi).toBe('3.1.0');
    const documented = Object.entries(doc.paths).flatMap(([path, ops]) => Object.keys(ops as object).map((m) => `${m.toUpperCase()} ${path}`));
    const served = appRoutes(stack.app);
    expect(served.length).toBeGreaterThan(5);
    expect(served.filter((r) => !documented.includes(r))).toEqual([]);
    expect(documented.filter((r) => !served.includes(r))).toEqual([]);
  });

  it('describes query parameters from the zod schema the route validates with', async () => {
    const doc = (await request(stack.app).get('/openapi.json')).body;
    const limit = doc.paths['/jobs'].get.parameters.find((p: any) => p.name === 'limit');
    expect(limit.schema).toMatchObject({ minimum: 1, maximum: 100, default: 20 });
  });

  it('types every JSON answer from the public views, the verdict of a job included', async () => {
    const doc = (await request(stack.app).get('/openapi.json')).body;
    const untyped = Object.entries(doc.paths).flatMap(([path, ops]) =>
      Object.entries(ops as Record<string, any>).flatMap(([method, op]) =>
        Object.entries(op.responses as Record<string, any>)
          .filter(([, r]) => r.content?.['application/json'] && !r.content['application/json'].schema)
          .map(([status]) => `${method.toUpperCase()} ${path} ${status}`),
      ),
    );
    // GET /parameters is the portrait vocabulary itself, documented by its own values.
    expect(untyped).toEqual(['GET /parameters 200']);
    const job = doc.paths['/jobs/{id}'].get.responses['200'].content['application/json'].schema;
    const verdict = job.properties.attempts.items.properties.verdict.anyOf.find((s: any) => s.type === 'object');
    expect(Object.keys(verdict.properties)).toEqual(expect.arrayContaining(['passed', 'score', 'checks', 'feedback', 'best', 'candidates']));
    expect(job.properties.error.anyOf.find((s: any) => s.type === 'object').properties.code.enum).toContain('step_failed');
  });

  it('lists every error code the API code can send', () => {
    const documented = new Set(Object.values(ERROR_CODES).flat());
    const source = readdirSync(join(__dirname, '..', 'src', 'api'), { recursive: true })
      .filter((f) => String(f).endsWith('.ts'))
      .map((f) => readFileSync(join(__dirname, '..', 'src', 'api', String(f)), 'utf8'))
      .join('\n');
    const sent = [...source.matchAll(/ApiError\(\s*\d{3},\s*'([a-z_]+)'/g), ...source.matchAll(/\[\d{3}, '([a-z_]+)'\]/g)].map((m) => m[1]);
    expect(sent.length).toBeGreaterThan(15);
    expect(sent.filter((code) => !documented.has(code as never))).toEqual([]);
  });

  it('serves the interactive docs page and its assets without a CDN', async () => {
    const page = await request(stack.app).get('/docs').expect(200);
    expect(page.text).toContain('/docs/assets/swagger-ui-bundle.js');
    await request(stack.app).get('/docs/assets/swagger-ui-bundle.js').expect(200).expect('content-type', /javascript/);
    await request(stack.app).get('/docs/init.js').expect(200);
  });
});
