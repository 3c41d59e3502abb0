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
 * Failed authentication per client address (wrong API keys and wrong operator credentials
 * together), counted in Redis so that every API process shares the count. After
 * FAILED_AUTH_PER_MINUTE failures in a one-minute window the address gets 429 with Retry-After for
 * the rest of the window, before its credentials are looked at: each try no longer costs a MongoDB
 * lookup, and even a right key is refused then, else guessing would go on with the answers telling
 * right from wrong. Requests without credentials never count (a browser's first request to the
 * dashboard has none) and are never refused here: they cost nothing and get their 401.
 */
export class FailedAuthLimit {
  constructor(
    private readonly config: Pick<Config, 'QUEUE_PREFIX' | 'FAILED_AUTH_PER_MINUTE'>,
    private readonly redis: Redis,
  ) {}

  /** Throws 429 (Retry-After set on `res`) while `req`'s address has no failures left in this window. */
  async check(req: Request, res: Response): Promise<void> {
    const failures = Number(await this.redis.get(this.key(req)));
    if (failures < this.config.FAILED_AUTH_PER_MINUTE) return;
    res.setHeader('Retry-After', String(Math.ceil((WINDOW_MS - (Date.now() % WINDOW_MS)) / 1000)));
    throw new ApiError(
      429,
      'too_many_failed_auth',
      `more than ${this.config.FAILED_AUTH_PER_MINUTE} failed authentication attempts from this address in a minute; wait for Retry-After`,
      'authorization',
    );
  }

  /** Counts one failed attempt of `req`'s address. */
  async recordFailure(req: Request): Promise<void> {
    const key = this.key(req);
    await this.redis.multi().incr(key).pexpire(key, WINDOW_MS + 1000).exec();
  }

  private key(req: Request): string {
    return failedAuthKey(this.config.QUEUE_PREFIX, addressBucket(req.ip ?? 'unknown'), Math.floor(Date.now() / WINDOW_MS));
  }
}
