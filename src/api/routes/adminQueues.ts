import { createBullBoard } from '@bull-board/api';
import { BullMQAdapter } from '@bull-board/api/bullMQAdapter';
import { ExpressAdapter } from '@bull-board/express';
import { Router, type Express } from 'express';
import type { Config } from '../../config';
import { ALL_QUEUES, type QueueSet } from '../../flows/queues';
import { adminAuth } from '../adminAuth';
import type { FailedAuthLimit } from '../failedAuthLimit';

const BASE_PATH = '/admin/queues';
/** Bull Board's page asks Google Fonts for IBM Plex: a request to a third party from the operator's browser. */
const THIRD_PARTY_STYLESHEET = /<link\b[^>]*\bhref="https?:\/\/[^"]*"[^>]*>\s*/gi;

/**
 * Renders the dashboard's page without stylesheets from other hosts: its text falls back to the
 * browser's sans-serif and monospace fonts. Wraps the page's view engine (ejs), so the page stays
 * whatever the installed Bull Board version ships.
 */
function withoutThirdPartyFonts(dashboard: Express): void {
  type Engine = (path: string, options: object, done: (err: unknown, html?: string) => void) => void;
  const render = (dashboard as Express & { engines: Record<string, Engine | undefined> }).engines['.ejs'];
  if (!render) throw new Error('Bull Board no longer renders its page with ejs: withoutThirdPartyFonts needs updating');
  dashboard.engine('ejs', (path, options, done) => render(path, options, (err, html) => done(err, html?.replace(THIRD_PARTY_STYLESHEET, ''))));
}

/**
 * Bull Board at /admin/queues behind operator auth; ADMIN_READ_ONLY hides retry/remove/clean.
 * Step payloads carry only S3 keys and sealed secrets, so nothing secret shows here.
 */
export function adminQueuesRouter(deps: { config: Config; queues: QueueSet; failedAuth: FailedAuthLimit }): Router {
  const serverAdapter = new ExpressAdapter();
  serverAdapter.setBasePath(BASE_PATH);
  const readOnlyMode = deps.config.ADMIN_READ_ONLY;
  createBullBoard({
    queues: ALL_QUEUES.map((name) => new BullMQAdapter(deps.queues.get(name), { readOnlyMode })),
    serverAdapter,
    options: { uiConfig: { boardTitle: 'APEX Portraits' } },
  });
  withoutThirdPartyFonts(serverAdapter.getRouter());
  const router = Router();
  router.use(BASE_PATH, adminAuth(deps.config, deps.failedAuth), (_req, res, next) => {
    // The dashboard's own page needs its inline scripts and styles; nothing from another host (the
    // API's strict policy stays elsewhere).
    res.setHeader('Content-Security-Policy', "default-src 'self'; script-src 'self' 'unsafe-inline'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; font-src 'self' data:");
    next();
  }, serverAdapter.getRouter());
  return router;
}
