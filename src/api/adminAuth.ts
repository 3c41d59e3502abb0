import { createHash, timingSafeEqual } from 'node:crypto';
import type { RequestHandler } from 'express';
import type { Config } from '../config';
import { ApiError } from './errors';
import type { FailedAuthLimit } from './failedAuthLimit';

const digest = (text: string) => createHash('sha256').update(text, 'utf8').digest();
/**
 * Compares SHA-256 digests, which are always 32 bytes: comparing the strings' bytes would need equal
 * byte lengths (timingSafeEqual throws otherwise), and a check of the lengths first tells a caller
 * how long the token is.
 */
const same = (given: string, token: string) => timingSafeEqual(digest(given), digest(token));

/**
 * Operator access (dashboard, metrics), separate from tenant API keys: HTTP Basic with any user name
 * and ADMIN_TOKEN as the password (what a browser prompts for), or `Authorization: Bearer ADMIN_TOKEN`.
 * Without ADMIN_TOKEN these routes are closed. Wrong credentials count against their address in
 * `failedAuth`, the same limit as wrong API keys.
 */
export function adminAuth(config: Config, failedAuth: FailedAuthLimit): RequestHandler {
  return async (req, res, next) => {
    try {
      const header = req.get('authorization') ?? '';
      const token = config.ADMIN_TOKEN;
      const [scheme, value = ''] = header.split(' ');
      const given = /^basic$/i.test(scheme) ? Buffer.from(value, 'base64').toString().split(':').slice(1).join(':') : /^bearer$/i.test(scheme) ? value : '';
      if (token && given && (await failedAuth.attempt(req, res, () => same(given, token)))) return next();
      res.setHeader('WWW-Authenticate', 'Basic realm="apex-admin"');
      throw new ApiError(401, 'admin_unauthorized', token ? 'operator credentials required' : 'operator routes are disabled: set ADMIN_TOKEN', 'authorization');
    } catch (err) {
      next(err);
    }
  };
}
