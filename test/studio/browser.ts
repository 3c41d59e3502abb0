import { existsSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { chromium, type Browser, type Page } from 'playwright-core';

/** Debian's Chromium (scripts/install-chromium.sh): Playwright's own browser download is not reachable here. */
const CHROMIUM = '/usr/bin/chromium';
export const SCREENSHOTS = join(__dirname, '..', '..', 'test-artifacts', 'studio');

export async function launchChromium(): Promise<Browser> {
  if (!existsSync(CHROMIUM)) throw new Error(`${CHROMIUM} is missing: run bash scripts/install-chromium.sh`);
  return chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: ['--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--no-first-run'],
  });
}

/** A full-page screenshot kept as a test artifact (test-artifacts/studio/<name>.png). */
export async function screenshot(page: Page, name: string): Promise<void> {
  mkdirSync(SCREENSHOTS, { recursive: true });
  await page.screenshot({ path: join(SCREENSHOTS, `${name}.png`), fullPage: true });
}

/** Chromium logs every 4xx answer to fetch() as a console error; the page handles those itself. */
const ANSWERED_BY_API = /^Failed to load resource: the server responded with a status of 4\d\d/;

/**
 * Everything the page reported as broken: uncaught errors and console errors (a CSP refusal shows up
 * here), so a test sees what a person would only notice as something missing.
 */
export function pageErrors(page: Page): string[] {
  const errors: string[] = [];
  page.on('pageerror', (err) => errors.push(err.message));
  page.on('console', (message) => {
    if (message.type() === 'error' && !ANSWERED_BY_API.test(message.text())) errors.push(message.text());
  });
  return errors;
}
