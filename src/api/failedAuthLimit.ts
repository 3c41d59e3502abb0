import type { Request, Response } from 'express';
import type { Redis } from 'ioredis';
import { isIPv6 } from 'node:net';
import type { Config } from '../config';
import { failedAuthKey } from '../flows/redisKeys';
import { ApiError } from './errors';

const WINDOW_MS = 60_000;

/** Expands an IPv6 address to its eight groups ('::' filled in). */
function ipv6Groups(address: string): string[] {
  const [head, tail = ''] = address.split('::');
  const left = head ? head.split(':') : [];
  const right = address.includes('::') && tail ? tail.split(':') : [];
  return [...left, ...Array(8 - left.length - right.length).fill('0'), ...right];
}

/**
 * Whose failures count together: an IPv4 address (also written IPv4-mapped, `::ffff:a.b.c.d`), or
 * an IPv6 address's /64, the block one host is usually given (counting single addresses would give
 * it 2^64 fresh starts).
 */
export function addressBucket(ip: string): string {
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(ip);
  if (mapped) return mapped[1];
  if (!isIPv6(ip)) return ip;
  return `${ipv6Groups(ip.split('%')[0]).slice(0, 4).map((g) => parseInt(g, 16).toString(16)).join(':')}::/64`;
}

/**
 * Takes one of an address's tries before its credentials are looked up, atomically, so that a burst
 * of parallel requests cannot all read "under the limit" and then each cost a lookup. The count (a
 * hash, expiring) holds the address's `failed` tries and those `pending`, still being looked up.
 * KEYS[1] the count; ARGV[1] the limit, ARGV[2] the window in ms.
 * Returns {1} taken, {0, ms left in the window} refused, {2} full of pending tries (ask again shortly).
 */
const TAKE_TRY = `
local failed = tonumber(redis.call('HGET', KEYS[1], 'failed') or '0')
if failed >= tonumber(ARGV[1]) then
  return {0, redis.call('PTTL', KEYS[1])}
end
if failed + tonumber(redis.call('HGET', KEYS[1], 'pending') or '0') >= tonumber(ARGV[1]) then
  return {2}
end
local fresh = redis.call('EXISTS', KEYS[1]) == 0
redis.call('HINCRBY', KEYS[1], 'pending', 1)
if fresh then
  redis.call('PEXPIRE', KEYS[1], ARGV[2]) -- a crashed process's pending tries lapse with it
end
return {1}
`;

/**
 * Ends a try taken with TAKE_TRY. ARGV[1] '1' when its credentials were wrong: it stays counted, as
 * failed, and the address's first failure starts its window (a minute from then, not a wall-clock
 * minute, which gave an attacker twice the limit around each minute's turn). '0' otherwise: it is
 * given back, and a count left with nothing is deleted. ARGV[2] the window in ms.
 */
const END_TRY = `
local pending = tonumber(redis.call('HGET', KEYS[1], 'pending') or '0')
if pending > 0 then
  pending = redis.call('HINCRBY', KEYS[1], 'pending', -1)
end
local failed = tonumber(redis.call('HGET', KEYS[1], 'failed') or '0')
if ARGV[1] == '1' then
  failed = redis.call('HINCRBY', KEYS[1], 'failed', 1)
  if failed == 1 then
    redis.call('PEXPIRE', KEYS[1], ARGV[2])
  end
end
if pending == 0 and failed == 0 then
  redis.call('DEL', KEYS[1])
end
`;

/** How long a try waits for the address's pending ones to end before it is refused, and how often it asks. */
const PENDING_WAIT_MS = 5_000;
const PENDING_POLL_MS = 10;

/**
 * Failed authentication per client address (wrong API keys and wrong operator credentials
 * together), counted in Redis so that every API process shares the count. An address may fail
 * FAILED_AUTH_PER_MINUTE times in a window of one minute from its first failure; then it gets 429,
 * with Retry-After the window's remaining time, before its credentials are looked at: each try no
 * longer costs a MongoDB lookup, and even a right key is refused then, else guessing would go on
 * with the answers telling right from wrong. Tries being looked up count against the limit too, so
 * that concurrent tries cannot overshoot it: one that would exceed it waits for them to end (right
 * credentials end in a lookup's time and give their try back) instead of being refused. Requests
 * without credentials never count (a browser's first request to the dashboard has none) and are
 * never refused here: they cost nothing and get their 401.
 */
export class FailedAuthLimit {
  constructor(
    private readonly config: Pick<Config, 'QUEUE_PREFIX' | 'FAILED_AUTH_PER_MINUTE'>,
    private readonly redis: Redis,
  ) {}

  /**
   * Runs `verify` (a lookup of `req`'s credentials) on one of its address's tries and resolves with
   * its result, a falsy one counting as a failure. Throws 429 (Retry-After set on `res`) without
   * running `verify` while the address has no tries left.
   */
  async attempt<T>(req: Request, res: Response, verify: () => T | Promise<T>): Promise<T> {
    const key = this.key(req);
    await this.takeTry(key, res);
    let result: T;
    try {
      result = await verify();
    } catch (err) {
      await this.redis.eval(END_TRY, 1, key, '0', WINDOW_MS); // the lookup failed, not the credentials
      throw err;
    }
    await this.redis.eval(END_TRY, 1, key, result ? '0' : '1', WINDOW_MS);
    return result;
  }

  private async takeTry(key: string, res: Response): Promise<void> {
    const limit = this.config.FAILED_AUTH_PER_MINUTE;
    for (const giveUpAt = Date.now() + PENDING_WAIT_MS; ; ) {
      const [taken, msLeft] = (await this.redis.eval(TAKE_TRY, 1, key, limit, WINDOW_MS)) as [number, number?];
      if (taken === 1) return;
      if (taken === 0) {
        res.setHeader('Retry-After', String(Math.max(1, Math.ceil(msLeft! / 1000))));
        throw new ApiError(429, 'too_many_failed_auth', `more than ${limit} failed authentication attempts from this address in a minute; wait for Retry-After`, 'authorization');
      }
      if (Date.now() >= giveUpAt) {
        res.setHeader('Retry-After', '1');
        throw new ApiError(429, 'too_many_failed_auth', `more than ${limit} authentication attempts from this address at once; retry shortly`, 'authorization');
      }
      await new Promise((resolve) => setTimeout(resolve, PENDING_POLL_MS));
    }
  }

  private key(req: Request): string {
    return failedAuthKey(this.config.QUEUE_PREFIX, addressBucket(req.ip ?? 'unknown'));
  }
}
