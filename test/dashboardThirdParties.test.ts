/**
 * The operator's dashboard (Bull Board at /admin/queues) loads nothing from another host: its page
 * asked Google Fonts for IBM Plex, telling a third party who opens the dashboard and when. The page
 * and its styles name no other host, its Content-Security-Policy allows none, and a real browser
 * opening it makes no request beyond the API.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import request from 'supertest';
import { launchChromium, pageErrors } from './studio/browser';
import { startStack, type Stack } from './support/stack';

const ADMIN_TOKEN = 'ops-token-0123456789abcdef';
/** An absolute URL (or a protocol-relative one): a resource on some other host. */
const ELSEWHERE = /^(?:[a-z][a-z0-9+.-]*:)?\/\//i;

/** Every URL the HTML makes a browser load: href and src attributes, and url()/@import in inline styles. */
function referencedUrls(html: string): string[] {
  const attributes = [...html.matchAll(/\s(?:href|src)\s*=\s*["']([^"']*)["']/gi)].map((m) => m[1]);
  return [...attributes, ...styleUrls(html)];
}
function styleUrls(css: string): string[] {
  return [...css.matchAll(/url\(\s*["']?([^"')]+)["']?\s*\)|@import\s+["']([^"']+)["']/gi)].map((m) => m[1] ?? m[2]);
}

describe('the operator dashboard and third-party hosts', () => {
  let stack: Stack;
  const admin = (path: string) => request(stack.app).get(path).auth('ops', ADMIN_TOKEN);
  beforeAll(async () => {
    stack = await startStack({ gpu: false, orchestrator: false, config: { ADMIN_TOKEN } });
  });
  afterAll(() => stack.close());

  it('serves a page that names no other host, and still links its own styles and scripts', async () => {
    const page = await admin('/admin/queues');
    expect(page.status).toBe(200);
    const urls = referencedUrls(page.text);
    expect(urls.filter((u) => ELSEWHERE.test(u))).toEqual([]);
    expect(page.text).not.toMatch(/fonts\.(googleapis|gstatic)\.com/);
    const stylesheets = [...page.text.matchAll(/<link[^>]+rel="stylesheet"[^>]*>/g)].map((m) => /href="([^"]+)"/.exec(m[0])![1]);
    const scripts = [...page.text.matchAll(/<script[^>]+src="([^"]+)"/g)].map((m) => m[1]);
    expect(stylesheets.length).toBeGreaterThanOrEqual(1);
    expect(scripts.length).toBeGreaterThanOrEqual(1);
    for (const asset of [...stylesheets, ...scripts]) {
      const res = await admin(`/admin/queues/${asset}`);
      expect([asset, res.status]).toEqual([asset, 200]);
    }
  });

  it('serves stylesheets that load nothing from another host', async () => {
    const page = await admin('/admin/queues');
    const stylesheets = [...page.text.matchAll(/<link[^>]+rel="stylesheet"[^>]*>/g)].map((m) => /href="([^"]+)"/.exec(m[0])![1]);
    for (const href of stylesheets) {
      const css = (await admin(`/admin/queues/${href}`)).text;
      expect(css.length).toBeGreaterThan(1000);
      expect([href, styleUrls(css).filter((u) => ELSEWHERE.test(u))]).toEqual([href, []]);
    }
  });

  it('forbids other hosts in its Content-Security-Policy, and allows its own inline scripts and styles', async () => {
    const policy = String((await admin('/admin/queues')).headers['content-security-policy']);
    const directives = Object.fromEntries(policy.split(';').map((d) => d.trim().split(/\s+/)).map(([name, ...sources]) => [name, sources]));
    for (const [name, sources] of Object.entries(directives)) {
      expect([name, sources.filter((s: string) => !["'self'", "'unsafe-inline'", 'data:'].includes(s))]).toEqual([name, []]);
    }
    expect(directives['default-src']).toEqual(["'self'"]);
    expect(directives['font-src']).toEqual(["'self'", 'data:']);
    expect(directives['script-src']).toContain("'unsafe-inline'");
    expect(directives['style-src']).toContain("'unsafe-inline'");
  });

  it('makes a real browser request nothing but the API, and shows the queues', async () => {
    const server = stack.app.listen(0, '127.0.0.1');
    await new Promise((r) => server.once('listening', r));
    const origin = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    const browser = await launchChromium();
    try {
      const context = await browser.newContext({ httpCredentials: { username: 'ops', password: ADMIN_TOKEN } });
      const page = await context.newPage();
      const requested: string[] = [];
      page.on('request', (r) => requested.push(r.url()));
      const errors = pageErrors(page); // a refusal by the policy shows up here
      await page.goto(`${origin}/admin/queues`, { waitUntil: 'networkidle' });
      await page.getByText('portrait', { exact: false }).first().waitFor({ timeout: 20_000 });
      expect(requested.length).toBeGreaterThan(3);
      expect(requested.filter((url) => !url.startsWith(`${origin}/`) && !url.startsWith('data:'))).toEqual([]);
      expect(errors).toEqual([]);
    } finally {
      await browser.close();
      server.closeAllConnections();
      await new Promise((r) => (server as http.Server).close(r));
    }
  });
});
