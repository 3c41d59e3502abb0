import type { RequestHandler, Response } from 'express';
import type { Config } from '../config';
import { logger } from '../logger';
import { anyApiKeyExists, verifyApiKey } from '../store/apiKeyModel';
import { ApiError } from './errors';
import type { FailedAuthLimit } from './failedAuthLimit';

/** The tenant every request acts for; `local` when the API runs open. */
export type Caller = { tenant: string; keyId?: string };
export const OPEN_TENANT = 'local';

export function callerOf(res: Response): Caller {
  return res.locals.caller as Caller;
}

/**
 * Bearer API keys. In `auto` mode the API is open until the first key exists (checked at most once
 * every few seconds), then closed for good: a revoked-to-zero deployment stays closed. A wrong key
 * counts against its address in `failedAuth`, which refuses the address once it has too many.
 */
export function authenticate(config: Config, failedAuth: FailedAuthLimit): RequestHandler {
  let closed = config.AUTH_MODE === 'required';
  let checkedAt = 0;
  let warned = false;
  const required = async () => {
    if (closed || config.AUTH_MODE === 'open') return closed;
    if (Date.now() - checkedAt > 5_000) {
      checkedAt = Date.now();
      closed = await anyApiKeyExists();
    }
    if (!closed && !warned) {
      warned = true;
      logger.warn('API running open: no API keys exist (create one with `npm run keys -- create --tenant NAME`)');
    }
    return closed;
  };
  return async (req, res, next) => {
    try {
      const header = req.get('authorization') ?? '';
      if (!(await required())) {
        res.locals.caller = { tenant: OPEN_TENANT } satisfies Caller;
        return next();
      }
      const token = /^Bearer\s+(\S+)$/i.exec(header)?.[1];
      const key = token ? await failedAuth.attempt(req, res, () => verifyApiKey(token)) : null;
      if (!key) {
        res.setHeader('WWW-Authenticate', 'Bearer');
        throw new ApiError(401, 'unauthorized', token ? 'the API key is invalid or revoked' : 'send Authorization: Bearer <API key>', 'authorization');
      }
      res.locals.caller = { tenant: key.tenant, keyId: key.id } satisfies Caller;
      next();
    } catch (err) {
      next(err);
    }
  };
}
