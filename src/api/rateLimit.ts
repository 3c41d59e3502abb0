import type { RequestHandler } from 'express';
import type { Redis } from 'ioredis';
import type { Config } from '../config';
import { rateLimitKey } from '../flows/redisKeys';
import { callerOf } from './auth';
import { ApiError } from './errors';

/**
 * A fixed one-minute window per API key (per client address when the API runs open), counted in
 * Redis so every API process shares it.
 */
export function rateLimit(config: Config, redis: Redis): RequestHandler {
  const limit = config.RATE_LIMIT_PER_MINUTE;
  return async (req, res, next) => {
    try {
      const caller = callerOf(res);
      const who = caller.keyId ?? `ip:${req.ip}`;
      const window = Math.floor(Date.now() / 60_000);
      const key = rateLimitKey(config.QUEUE_PREFIX, who, window);
      const [[, count]] = (await redis.multi().incr(key).pexpire(key, 61_000).exec()) as [[null, number]];
      const reset = 60 - Math.floor((Date.now() / 1000) % 60);
      res.setHeader('RateLimit-Limit', String(limit));
      res.setHeader('RateLimit-Remaining', String(Math.max(0, limit - count)));
      res.setHeader('RateLimit-Reset', String(reset));
      if (count > limit) {
        res.setHeader('Retry-After', String(reset));
        throw new ApiError(429, 'rate_limited', `more than ${limit} requests in a minute for this API key`);
      }
      next();
    } catch (err) {
      next(err);
    }
  };
}
