import express from 'express';
import { execFile } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import type { Browser, Locator, Page } from 'playwright-core';
import sharp from 'sharp';
import request from 'supertest';
import { createApp } from '../../src/api/app';
import { createHttpServer } from '../../src/api/httpServer';
import { STUDIO_BUILD_COMMAND, studioRouter } from '../../src/api/routes/studio';
import { PORTRAIT_VOCABULARY } from '../../src/flows/contracts/portraitParameters';
import { createApiKey } from '../../src/store/apiKeyModel';
import { referencePhoto } from '../support/fixtures';
import { launchChromium, pageErrors, screenshot } from './browser';
import { startLiveStack, TINY_LORA, type LiveStack } from './liveStack';

const ROOT = join(__dirname, '..', '..');
const run = promisify(execFile);
// Portraits on the tiny models on a shared 2-core machine: generous, since only the end state is asserted.
const PORTRAIT_DEADLINE_MS = 280_000;

describe('the studio page and the client examples, against a live stack', () => {
  let live: LiveStack;
  let browser: Browser;
  let out: string; // what the examples save
  beforeAll(async () => {
    out = mkdtempSync(join(tmpdir(), 'apex-examples-'));
    live = await startLiveStack();
    browser = await launchChromium();
  }, 300_000);
  afterAll(async () => {
    await browser?.close();
    await live?.close();
    rmSync(out, { recursive: true, force: true });
  });

  const api = (key = live.apiKey) => ({
    get: (path: string) => request(live.apiUrl).get(path).set('Authorization', `Bearer ${key}`),
    post: (path: string) => request(live.apiUrl).post(path).set('Authorization', `Bearer ${key}`),
  });

  /** A fresh tab (its own sessionStorage) with the key entered, as a person would. */
  async function openStudio(hash = '#/portrait', key = live.apiKey, viewport = { width: 1100, height: 900 }) {
    const page = await (await browser.newContext({ viewport })).newPage();
    const errors = pageErrors(page);
    await page.goto(`${live.apiUrl}/${hash}`);
    await page.getByLabel('API key').fill(key);
    await page.getByRole('button', { name: 'Use key' }).click();
    await page.getByText('Key accepted').waitFor();
    return { page, errors };
  }

  /** Controls a keyboard or screen-reader user could not name: no label, no aria-label, no text. */
  type Control = { labels?: { length: number }; tagName: string; textContent: string | null; outerHTML: string; getAttribute(name: string): string | null };
  const unlabelledControls = (page: Page) =>
    page
      .locator('input, select, textarea, button')
      .evaluateAll((controls: Control[]) =>
        controls.filter((c) => !(c.labels?.length || c.getAttribute('aria-label') || (c.tagName === 'BUTTON' && c.textContent?.trim()))).map((c) => c.outerHTML),
      );
  /** Waits until an <img> has decoded its pixels (it loaded, and nothing such as the CSP blocked it); returns its width. */
  const loadedWidth = async (image: Locator) => {
    await image.page().waitForFunction((img: { naturalWidth: number }) => img.naturalWidth > 0, await image.elementHandle());
    return image.evaluate((img: { naturalWidth: number }) => img.naturalWidth);
  };

  const statusIs = (page: Page, selector: string, text: string, timeout = 60_000) => page.locator(selector).filter({ hasText: text }).waitFor({ timeout });

  it('serves the page at / under the CSP, and says how to build it when it is not built', async () => {
    const res = await request(live.apiUrl).get('/');
    expect(res.status).toBe(200);
    expect(res.text).toContain('<script type="module" src="/studio/app.js"></script>');
    const directives = Object.fromEntries(String(res.headers['content-security-policy']).split(';').map((d) => [d.split(' ')[0], d.split(' ').slice(1).join(' ')]));
    expect(directives['script-src']).toBe("'self'"); // one bundled file: no inline script
    // A generation's images come straight from presigned URLs on the object store's own origin.
    expect(directives['img-src']).toBe(`'self' data: blob: ${new URL(live.config.S3_ENDPOINT!).origin}`);
    expect((await request(live.apiUrl).get('/studio/app.js')).status).toBe(200);

    const empty = mkdtempSync(join(tmpdir(), 'apex-studio-unbuilt-'));
    try {
      const unbuilt = await request(express().use(studioRouter(live.config, empty))).get('/');
      expect(unbuilt.status).toBe(503);
      expect(unbuilt.text).toContain(STUDIO_BUILD_COMMAND);
    } finally {
      rmSync(empty, { recursive: true });
    }
  });

  it('asks for an API key, refuses a wrong one and keeps the right one for the tab; an open API is said to be open', async () => {
    const page = await (await browser.newContext()).newPage();
    await page.goto(`${live.apiUrl}/`);
    await page.getByText('This API needs an API key.').waitFor();
    await page.getByRole('heading', { name: 'An API key is needed' }).waitFor();
    await page.getByLabel('API key').fill('apx_not-a-real-key');
    await page.getByRole('button', { name: 'Use key' }).click();
    await page.getByText('That key was refused').waitFor();
    await page.getByLabel('API key').fill(live.apiKey);
    await page.getByRole('button', { name: 'Use key' }).click();
    await page.getByText('Key accepted').waitFor();
    await page.getByRole('heading', { name: 'New portrait' }).waitFor();
    // Kept for the tab: a reload keeps it, a new tab does not have it.
    await page.reload();
    await page.getByText('Key accepted').waitFor();
    expect(await page.evaluate(() => Object.values(sessionStorage))).toContain(live.apiKey);
    expect(await page.evaluate(() => Object.values(localStorage))).toEqual([]);
    await page.context().close();

    const open = createHttpServer(createApp({ ...live, config: { ...live.config, AUTH_MODE: 'open' } }), live.config);
    await new Promise<void>((resolve) => open.listen(0, '127.0.0.1', resolve));
    try {
      const openPage = await (await browser.newContext()).newPage();
      await openPage.goto(`http://127.0.0.1:${(open.address() as AddressInfo).port}/`);
      await openPage.getByText('This API runs open.').waitFor();
      await openPage.getByRole('heading', { name: 'New portrait' }).waitFor();
      await openPage.context().close();
    } finally {
      open.closeAllConnections();
      await new Promise((resolve) => open.close(resolve));
    }
  });

  let portraitJobId: string;

  it('submits a portrait (one job for a double click or a resend after a lost answer) and follows it live to its terminal state with every attempt and check', async () => {
    const { page, errors } = await openStudio('#/portrait');
    const submissions: (string | undefined)[] = [];
    page.on('request', (r) => void (r.method() === 'POST' && r.url().endsWith('/jobs') && submissions.push(r.headers()['idempotency-key'])));
    // The pickers come from GET /parameters, the rules from the server's upload limits.
    await page.getByRole('heading', { name: 'New portrait' }).waitFor();
    expect(await page.locator('#parameter-purpose option').count()).toBe(Object.keys(PORTRAIT_VOCABULARY.purpose).length);
    await page.getByText(`JPEG, PNG, WebP; at most 20 MB and 50 megapixels; at least ${live.config.MIN_IMAGE_SIDE} px on each side.`).waitFor();
    expect(await unlabelledControls(page)).toEqual([]);

    // The page's checks refuse what the server would, before any upload...
    const photo = page.getByLabel('Your photo');
    await photo.setInputFiles({ name: 'notes.txt', mimeType: 'text/plain', buffer: Buffer.from('not a photo') });
    await page.getByText('This photo cannot be used: it is text/plain; the API takes JPEG, PNG, WebP.').waitFor();
    await photo.setInputFiles({ name: 'tiny.png', mimeType: 'image/png', buffer: await referencePhoto({ width: 100, height: 100, format: 'png' }) });
    await page.getByText('each side must be at least 128 px').waitFor();
    await page.getByRole('button', { name: 'Create portrait' }).click();
    expect(submissions).toEqual([]);
    // ...and take a photo that fits, with a preview.
    await photo.setInputFiles({ name: 'me.jpg', mimeType: 'image/jpeg', buffer: await referencePhoto() });
    await page.getByText('me.jpg: 480×600').waitFor();
    expect(await loadedWidth(page.getByAltText('Preview of the chosen photo'))).toBe(480);
    await page.getByLabel('Purpose').selectOption('corporate_headshot');
    await page.getByLabel('Attire').selectOption('business_formal');
    await page.getByLabel('Resolution').selectOption('1k');
    await page.getByText('a corporate headshot for a company website').waitFor();
    await screenshot(page, '1-portrait-form');

    // The first answer is lost on the way back (the API made the job); the person clicks again.
    let answerLost = false;
    await page.route('**/jobs', async (route) => {
      if (route.request().method() !== 'POST' || answerLost) return route.fallback();
      answerLost = true;
      await route.fetch();
      await route.abort('connectionreset');
    });
    const create = page.getByRole('button', { name: 'Create portrait' });
    await create.dblclick();
    await page.getByText('the API could not be reached; check the connection and try again').waitFor();
    await create.click();
    await page.waitForURL(/#\/jobs\/[0-9a-f]{24}$/);
    portraitJobId = page.url().split('/').pop()!;
    // Every send of this draft named the same request, so the API made one job.
    expect(submissions.length).toBeGreaterThanOrEqual(2);
    expect(new Set(submissions).size).toBe(1);
    expect(submissions[0]).toMatch(/^[0-9a-f-]{36}$/);
    const listed = await api().get('/jobs?limit=100');
    expect(listed.body.jobs.map((j: { job_id: string }) => j.job_id)).toEqual([portraitJobId]);

    // Live: the current step, then the Python worker's denoising progress from the event stream.
    await page.locator('#job-now').filter({ hasText: /Attempt 1: (prompt|generate|validate)/ }).waitFor({ timeout: PORTRAIT_DEADLINE_MS });
    await page.locator('#denoise-text').filter({ hasText: /attempt 1: \d of 4 denoising steps/ }).waitFor({ timeout: PORTRAIT_DEADLINE_MS });
    await screenshot(page, '2-portrait-running');

    await statusIs(page, '#job-status', 'failed validation', PORTRAIT_DEADLINE_MS);
    await page.getByRole('heading', { name: 'No attempt passed the checks' }).waitFor();
    const attempts = page.locator('.attempt');
    expect(await attempts.count()).toBe(2);
    for (const n of [1, 2]) {
      const attempt = page.locator(`#attempt-${n}`);
      // Value, threshold, result: random weights draw no face, so no distance is measured.
      const row = (check: string) => attempt.locator('table.checks tr', { hasText: check }).locator('td').allInnerTexts();
      expect(await row('face_count')).toEqual(['0', '—', '✗ fail']);
      expect(await row('identity_distance')).toEqual(['—', '0.600', '✗ fail']);
      expect(await row('dimensions')).toEqual(['816x1024', '—', '✓ pass']);
      expect(await attempt.locator('table.checks tbody tr').count()).toBeGreaterThanOrEqual(5);
      await attempt.getByText('VLM feedback:').waitFor();
      const image = attempt.getByAltText(`Attempt ${n}'s image`);
      expect(await loadedWidth(image)).toBeGreaterThan(0);
    }
    const report = (await api().get(`/jobs/${portraitJobId}/report`)).body.report;
    await page.getByText(report.summary).waitFor();
    const download = page.getByRole('link', { name: /Download the best attempt's image/ });
    expect(await download.getAttribute('download')).toMatch(new RegExp(`^portrait-${portraitJobId}-attempt-\\d\\.png$`));
    expect(await page.getByRole('button', { name: 'Cancel job' }).isDisabled()).toBe(true);
    await screenshot(page, '3-portrait-failed-validation');

    // Readable on a phone: nothing wider than the screen.
    await page.setViewportSize({ width: 390, height: 844 });
    expect(await page.locator('html').evaluate((html: { scrollWidth: number }) => html.scrollWidth)).toBeLessThanOrEqual(390);
    await screenshot(page, '4-portrait-phone');
    expect(errors).toEqual(['Failed to load resource: net::ERR_CONNECTION_RESET']); // the answer this test cut off
    await page.context().close();
  }, PORTRAIT_DEADLINE_MS + 60_000);

  it('cancels a running portrait from the page', async () => {
    const { page, errors } = await openStudio('#/portrait');
    await page.getByLabel('Your photo').setInputFiles({ name: 'me.jpg', mimeType: 'image/jpeg', buffer: await referencePhoto() });
    await page.getByText('me.jpg: 480×600').waitFor();
    await page.getByRole('button', { name: 'Create portrait' }).click();
    await page.waitForURL(/#\/jobs\/[0-9a-f]{24}$/);
    const jobId = page.url().split('/').pop()!;
    // The tiny VLM alone takes seconds to write the first instruction: the job is still running.
    const cancel = page.getByRole('button', { name: 'Cancel job' });
    await page.waitForFunction((button: { disabled: boolean }) => !button.disabled, await cancel.elementHandle());
    await cancel.click();
    await statusIs(page, '#job-status', 'cancelled', PORTRAIT_DEADLINE_MS);
    await page.getByRole('heading', { name: 'Cancelled' }).waitFor();
    expect(await cancel.isDisabled()).toBe(true);
    expect((await api().get(`/jobs/${jobId}`)).body.status).toBe('cancelled');
    await screenshot(page, '5-portrait-cancelled');
    expect(errors).toEqual([]);
    await page.context().close();
  }, PORTRAIT_DEADLINE_MS + 60_000);

  it('sends several photos of the person in the order shown, refusing a fifth or a non-image by its position first, and the job uses them all', async () => {
    const { page, errors } = await openStudio('#/portrait');
    const submissions: string[] = [];
    page.on('request', (r) => void (r.method() === 'POST' && r.url().endsWith('/jobs') && submissions.push(r.url())));
    await page.getByText('several help the portrait keep the likeness, and the first is the one a model that takes a single photo uses').waitFor();
    const photos = page.getByLabel('Your photos');
    const jpeg = async (name: string, width = 480) => ({ name, mimeType: 'image/jpeg', buffer: await referencePhoto({ width, height: 600 }) });

    // The page applies the server's rules to each photo and names the one it refuses; nothing is sent.
    await photos.setInputFiles(await Promise.all([1, 2, 3, 4, 5].map((n) => jpeg(`me-${n}.jpg`))));
    await page.getByText('Photo 5 of 5 (me-5.jpg) cannot be used: it is one too many; choose 1 to 4 photos.').waitFor();
    await photos.setInputFiles([await jpeg('me-1.jpg'), { name: 'notes.txt', mimeType: 'text/plain', buffer: Buffer.from('not a photo') }, await jpeg('me-3.jpg')]);
    await page.getByText('Photo 2 of 3 (notes.txt) cannot be used: it is text/plain; the API takes JPEG, PNG, WebP.').waitFor();
    expect(await photos.getAttribute('aria-invalid')).toBe('true');
    expect(await page.locator('.previews img').count()).toBe(0);
    await page.getByRole('button', { name: 'Create portrait' }).click();
    expect(submissions).toEqual([]);

    // Three that fit: a preview of each, in order, the first marked as the one a single-image model uses.
    await photos.setInputFiles([await jpeg('front.jpg', 480), await jpeg('left.jpg', 400), await jpeg('right.jpg', 360)]);
    await page.getByText('3 photos chosen; they are sent in the order shown.').waitFor();
    expect(await page.locator('.previews figcaption').allInnerTexts()).toEqual([
      expect.stringMatching(/^Photo 1: front\.jpg: 480×600, .*\s*The first: a model that takes one photo renders from this one\.$/),
      expect.stringMatching(/^Photo 2: left\.jpg: 400×600, /),
      expect.stringMatching(/^Photo 3: right\.jpg: 360×600, /),
    ]);
    for (const [n, width] of [[1, 480], [2, 400], [3, 360]]) expect(await loadedWidth(page.getByAltText(`Preview of photo ${n}`))).toBe(width);
    expect(await photos.getAttribute('aria-invalid')).toBeNull();
    expect(await unlabelledControls(page)).toEqual([]);
    await screenshot(page, '9-portrait-several-photos');
    await page.setViewportSize({ width: 390, height: 844 });
    expect(await page.locator('html').evaluate((html: { scrollWidth: number }) => html.scrollWidth)).toBeLessThanOrEqual(390);
    await screenshot(page, '10-portrait-several-photos-phone');

    await page.getByRole('button', { name: 'Create portrait' }).click();
    await page.waitForURL(/#\/jobs\/[0-9a-f]{24}$/);
    const jobId = page.url().split('/').pop()!;
    expect(submissions).toHaveLength(1);
    expect((await api().get(`/jobs/${jobId}`)).body.reference_count).toBe(3);
    const details = page.locator('.job-details');
    await details.getByText('Reference photos').waitFor();
    expect(await details.locator('dt:has-text("Reference photos") + dd').innerText()).toBe('3');
    // Its render is not what this test is about: it is stopped, so the next tests have the worker.
    expect((await api().post(`/jobs/${jobId}/cancel`)).status).toBe(202);
    await live.waitForJob(jobId, undefined, 120_000);
    expect(errors).toEqual([]);
    await page.context().close();
  }, PORTRAIT_DEADLINE_MS + 60_000);

  it("pages through the caller's history with the cursor, filtered by status, by keyboard", async () => {
    // Its own tenant, so the counts are known: six jobs, each cancelled at once.
    const key = (await createApiKey('history')).key;
    const ids: string[] = [];
    for (let i = 0; i < 6; i++) {
      const res = await api(key).post('/jobs').attach('image_file', await referencePhoto(), 'me.jpg');
      ids.unshift(res.body.job_id);
      expect((await api(key).post(`/jobs/${res.body.job_id}/cancel`)).status).toBe(202);
    }
    for (const id of ids) await live.waitForJob(id, undefined, 120_000);

    const { page, errors } = await openStudio('#/history', key);
    const rowIds = async () => (await page.locator('table.history tbody a').evaluateAll((links: { hash: string }[]) => links.map((a) => a.hash.split('/').pop())));
    await page.getByLabel('Per page').selectOption('5');
    await page.getByText('Page 1: 5 jobs, more after these.').waitFor();
    expect(await rowIds()).toEqual(ids.slice(0, 5));
    await page.getByRole('button', { name: 'Older →' }).focus();
    await page.keyboard.press('Enter');
    await page.getByText('Page 2: 1 job.').waitFor();
    expect(await rowIds()).toEqual(ids.slice(5));
    expect(await page.getByRole('button', { name: 'Older →' }).isDisabled()).toBe(true);
    await screenshot(page, '6-history');
    await page.getByRole('button', { name: '← Newer' }).focus();
    await page.keyboard.press('Enter');
    await page.getByText('Page 1: 5 jobs, more after these.').waitFor();

    await page.getByLabel('Status').selectOption('completed');
    await page.getByText('No jobs yet.').waitFor();
    await page.getByLabel('Status').selectOption('cancelled');
    await page.getByText('Page 1: 5 jobs, more after these.').waitFor();
    await page.locator('table.history tbody a').first().press('Enter');
    await page.waitForURL(new RegExp(`#/jobs/${ids[0]}$`));
    await statusIs(page, '#job-status', 'cancelled');
    expect(errors).toEqual([]);
    await page.context().close();
  }, 180_000);

  it('makes a generation with a LoRA and shows its image from the object store', async () => {
    const { page, errors } = await openStudio('#/generations');
    await page.getByLabel('Prompt').fill('a lighthouse at dusk');
    await page.getByLabel('Width (px)').fill('256');
    await page.getByLabel('Height (px)').fill('256');
    await page.getByLabel('Steps').fill('2');
    await page.getByLabel('Guidance').fill('3.5');
    await page.getByLabel('Seed').fill('7');
    await page.getByRole('button', { name: 'Add LoRA' }).click();
    const repo = page.getByLabel('Repo', { exact: true });
    await page.getByLabel('Weight file (optional)').fill(TINY_LORA.weight_name);
    await page.getByLabel('Scale').fill('0.8');
    expect(await unlabelledControls(page)).toEqual([]);
    // A field the API refuses is named, marked and focused; nothing is created.
    await repo.fill('../not-a-repo');
    await page.getByRole('button', { name: 'Generate' }).click();
    await page.getByText(/^Not sent: loras\.0\.repo: must be a Hugging Face repo id/).waitFor();
    expect(await repo.getAttribute('aria-invalid')).toBe('true');
    expect(await repo.evaluate((input: { ownerDocument: { activeElement: unknown } }) => input.ownerDocument.activeElement === input)).toBe(true);
    expect(page.url()).toMatch(/#\/generations$/);
    await repo.fill(TINY_LORA.repo);
    await page.getByRole('button', { name: 'Generate' }).click();
    await page.waitForURL(/#\/generations\/[0-9a-f]{24}$/);
    const id = page.url().split('/').pop()!;
    await statusIs(page, '#generation-status', 'completed', PORTRAIT_DEADLINE_MS);
    const image = page.getByAltText('Generated image 1');
    expect(await image.getAttribute('src')).toMatch(new RegExp(`^${new URL(live.config.S3_ENDPOINT!).origin}/`));
    expect(await loadedWidth(image)).toBe(256);
    await page.getByText(`LoRAs ${TINY_LORA.repo} ×0.8`).waitFor();
    expect((await api().get(`/generations/${id}`)).body.request).toMatchObject({ width: 256, height: 256, steps: 2, guidance: 3.5, seed: 7, loras: [{ ...TINY_LORA, scale: 0.8 }] });
    await screenshot(page, '7-generation');
    // Back on the form, the caller's latest generations list it (GET /generations), newest first.
    await page.goto(page.url().replace(/\/[0-9a-f]{24}$/, ''));
    const latest = page.getByRole('list', { name: 'Your latest generations' }).getByRole('listitem');
    await latest.first().getByRole('link', { name: 'a lighthouse at dusk' }).waitFor();
    expect(await latest.first().innerText()).toMatch(/completed/);
    await latest.first().getByRole('link').press('Enter');
    await page.waitForURL(new RegExp(`#/generations/${id}$`));
    expect(errors).toEqual([]);
    await page.context().close();
  }, PORTRAIT_DEADLINE_MS + 60_000);


  /** Runs an example as a user would, with the API's address and key in its environment; its output tells a failure. */
  const example = (command: string, args: string[]) =>
    run(command, args, { cwd: ROOT, env: { ...process.env, APEX_API_URL: live.apiUrl, APEX_API_KEY: live.apiKey }, timeout: PORTRAIT_DEADLINE_MS }).catch(
      (err: { message: string; stdout?: string; stderr?: string }) => {
        throw new Error(`${err.message}\n${err.stdout ?? ''}${err.stderr ?? ''}`);
      },
    );

  /** The file an example says it saved, read back as an image. */
  async function savedImage(stdout: string) {
    const file = /^saved (.+) \((image\/\w+), (\d+) bytes\)$/m.exec(stdout)?.[1];
    expect(file && existsSync(file)).toBe(true);
    return sharp(file!).metadata();
  }

  /** Both portrait examples on one photo at once; each one's output and the job id it printed. */
  async function portraitExamples(folder: string) {
    const photo = join(out, 'me.jpg');
    await sharp(await referencePhoto()).toFile(photo);
    const runs = await Promise.all([
      example('python3', ['examples/python/portrait.py', photo, join(out, folder, 'python')]),
      example(process.execPath, ['examples/node/portrait.mjs', photo, join(out, folder, 'node')]),
    ]);
    return runs.map(({ stdout }) => ({ stdout, jobId: /^job ([0-9a-f]{24}) created \(pending\)$/m.exec(stdout)?.[1] }));
  }

  it('portrait: the python and node clients submit a photo, follow its events and download the best image when every attempt was rejected', async () => {
    for (const { stdout, jobId } of await portraitExamples('rejected')) {
      expect(jobId).toBeDefined();
      expect(stdout).toMatch(/^attempt 1: denoising \d\/4$/m);
      expect(stdout).toMatch(/^status: failed_validation$/m);
      expect(stdout).toMatch(/^attempt 2: rejected, score [\d.]+, failed checks: .*face_count/m);
      expect(stdout).toContain(`report: ${(await api().get(`/jobs/${jobId}/report`)).body.report.summary}`);
      expect(stdout).toMatch(new RegExp(`^saved .*portrait-${jobId}-attempt-\\d\\.png `, 'm'));
      expect(await savedImage(stdout)).toMatchObject({ format: 'png', width: 816, height: 1024 });
    }
  }, PORTRAIT_DEADLINE_MS + 60_000);

  it('generation: the python and node clients generate with a LoRA and download the image', async () => {
    const lora = `${TINY_LORA.repo}:${TINY_LORA.weight_name}:0.7`;
    const common = ['a red bicycle', '--lora', lora, '--width', '256', '--height', '256', '--steps', '2', '--seed', '11'];
    const results = await Promise.all([
      example('python3', ['examples/python/generation.py', ...common, '--out', join(out, 'python')]),
      example(process.execPath, ['examples/node/generation.mjs', ...common, '--out', join(out, 'node')]),
    ]);
    for (const { stdout } of results) {
      expect(stdout).toMatch(/^generation [0-9a-f]{24} created \(pending\)$/m);
      expect(stdout).toMatch(/^denoising 2\/2$/m);
      expect(stdout).toMatch(/^status: completed$/m);
      expect(stdout).toContain(`seed 11, loras ${TINY_LORA.repo}`);
      expect(await savedImage(stdout)).toMatchObject({ format: 'png', width: 256, height: 256 });
    }
  }, PORTRAIT_DEADLINE_MS + 60_000);

  it('once the deployment gates on the image alone, a retry from the page completes with a download, and the examples save the portrait', async () => {
    // The verdict's gate is deployment config: the random-weight render passes on its dimensions.
    await live.startGpuWorker({ APEX_GPU_GATING_CHECKS: '["dimensions"]', APEX_GPU_PASS_SCORE: '0' });
    const { page, errors } = await openStudio(`#/jobs/${portraitJobId}`);
    await statusIs(page, '#job-status', 'failed validation');
    await page.getByRole('button', { name: 'Retry with new attempts' }).click();
    await statusIs(page, '#job-status', 'completed', PORTRAIT_DEADLINE_MS);
    await page.getByRole('heading', { name: 'Your portrait' }).waitFor();
    expect(await loadedWidth(page.getByAltText('The finished portrait'))).toBe(816);
    await page.getByText('cycle 1 ended failed_validation').waitFor();
    expect(await page.locator('#attempt-3').getByText('passed').count()).toBeGreaterThan(0);
    const [download] = await Promise.all([page.waitForEvent('download'), page.getByRole('link', { name: 'Download the portrait' }).click()]);
    expect(download.suggestedFilename()).toBe(`portrait-${portraitJobId}.png`);
    expect(await sharp(await download.path()).metadata()).toMatchObject({ format: 'png', width: 816, height: 1024 });
    await screenshot(page, '8-portrait-completed');
    expect(errors).toEqual([]);
    await page.context().close();

    for (const { stdout, jobId } of await portraitExamples('completed')) {
      expect(stdout).toMatch(/^status: completed$/m);
      expect(stdout).toMatch(/^attempt 1: passed, score [\d.]+, failed checks: /m);
      expect(stdout).toMatch(new RegExp(`^saved .*portrait-${jobId}\\.png `, 'm'));
      expect(await savedImage(stdout)).toMatchObject({ format: 'png', width: 816, height: 1024 });
    }
  }, PORTRAIT_DEADLINE_MS + 120_000);
});
