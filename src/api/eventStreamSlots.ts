import type { Response } from 'express';
import type { Redis } from 'ioredis';
import { randomUUID } from 'node:crypto';
import type { Config } from '../config';
import { eventStreamLeasesKey } from '../flows/redisKeys';
import { logger } from '../logger';
import { ApiKeyModel } from '../store/apiKeyModel';
import { callerOf, type Caller } from './auth';
import { ApiError } from './errors';

const RETRY_AFTER_S = '5';
/** A stream's lease on its tenant's count: refreshed while it is open, so a crashed process's leases lapse within this. */
const LEASE_TTL_MS = 60_000;
const LEASE_REFRESH_MS = LEASE_TTL_MS / 3;

/** KEYS[1]: the tenant's leases. ARGV: lease id, limit, ttl ms. 1 when leased, 0 when the tenant is at its limit. */
const ACQUIRE_LEASE = `
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
if redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[2]) then return 0 end
redis.call('ZADD', KEYS[1], now + tonumber(ARGV[3]), ARGV[1])
redis.call('PEXPIRE', KEYS[1], ARGV[3])
return 1`;

/** KEYS[1]: the tenant's leases. ARGV: ttl ms, then the lease ids still open. */
const REFRESH_LEASES = `
local t = redis.call('TIME')
local expiry = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000) + tonumber(ARGV[1])
for i = 2, #ARGV do redis.call('ZADD', KEYS[1], expiry, ARGV[i]) end
redis.call('PEXPIRE', KEYS[1], ARGV[1])
return 1`;

/** The reason an open stream was ended by the server, sent to the client as its last `event: error`. */
export class EventStreamEnded extends Error {
  name = 'EventStreamEnded';
}

export type Slot = { caller: Caller; leaseId: string; ended: AbortController };

/**
 * Who may hold an event stream open: at most EVENT_STREAMS_MAX in this process (503 beyond) and
 * EVENT_STREAMS_PER_TENANT per tenant across every process (429 beyond, counted as expiring leases
 * in Redis), and only while the caller's API key stays valid: every EVENT_STREAM_AUTH_CHECK_MS one
 * query checks the keys of all open streams, and a revoked key's streams are ended.
 */
export class EventStreamSlots {
  private readonly open = new Set<Slot>();
  private timers: NodeJS.Timeout[] = [];

  constructor(
    private readonly config: Config,
    private readonly redis: Redis,
  ) {}

  /** A slot for the caller's stream, or an ApiError (429, 503) with Retry-After set on `res`. */
  async acquire(res: Response): Promise<Slot> {
    const caller = callerOf(res);
    if (this.open.size >= this.config.EVENT_STREAMS_MAX) {
      res.setHeader('Retry-After', RETRY_AFTER_S);
      throw new ApiError(503, 'server_busy', `this API process serves at most ${this.config.EVENT_STREAMS_MAX} event streams; retry shortly`);
    }
    const slot: Slot = { caller, leaseId: randomUUID(), ended: new AbortController() };
    this.add(slot); // counted at once, so that concurrent requests cannot overshoot
    try {
      const leased = await this.redis.eval(ACQUIRE_LEASE, 1, this.leasesKey(caller), slot.leaseId, this.config.EVENT_STREAMS_PER_TENANT, LEASE_TTL_MS);
      if (leased !== 1) {
        res.setHeader('Retry-After', RETRY_AFTER_S);
        const limit = this.config.EVENT_STREAMS_PER_TENANT;
        throw new ApiError(429, 'too_many_streams', `at most ${limit} open event streams per tenant; close one first`);
      }
      return slot;
    } catch (err) {
      this.remove(slot);
      throw err;
    }
  }

  release(slot: Slot): void {
    if (!this.open.has(slot)) return;
    this.remove(slot);
    this.redis.zrem(this.leasesKey(slot.caller), slot.leaseId).catch(() => undefined); // else it lapses by itself
  }

  private leasesKey(caller: Caller): string {
    return eventStreamLeasesKey(this.config.QUEUE_PREFIX, caller.tenant);
  }

  private add(slot: Slot): void {
    this.open.add(slot);
    if (this.timers.length > 0) return;
    this.timers = [
      setInterval(() => void this.endRevoked(), this.config.EVENT_STREAM_AUTH_CHECK_MS).unref(),
      setInterval(() => void this.refreshLeases(), LEASE_REFRESH_MS).unref(),
    ];
  }

  private remove(slot: Slot): void {
    this.open.delete(slot);
    if (this.open.size > 0) return;
    for (const timer of this.timers) clearInterval(timer);
    this.timers = [];
  }

  /** One query for the keys of every open stream; a key revoked (or deleted) ends its streams. */
  private async endRevoked(): Promise<void> {
    const keyIds = [...new Set([...this.open].flatMap((s) => (s.caller.keyId ? [s.caller.keyId] : [])))];
    if (keyIds.length === 0) return;
    try {
      const keys = await ApiKeyModel.find({ _id: { $in: keyIds } }, { revokedAt: 1 }).lean<{ _id: string; revokedAt?: Date }[]>();
      const valid = new Set(keys.filter((k) => !k.revokedAt).map((k) => k._id));
      for (const slot of this.open) {
        if (slot.caller.keyId && !valid.has(slot.caller.keyId)) slot.ended.abort(new EventStreamEnded('the API key was revoked'));
      }
    } catch (err) {
      // MongoDB unreachable: the streams stay open and the next check decides.
      logger.warn('event stream key check failed', { error: err instanceof Error ? err.message : String(err) });
    }
  }

  private async refreshLeases(): Promise<void> {
    const byKey = new Map<string, string[]>();
    for (const slot of this.open) {
      const key = this.leasesKey(slot.caller);
      byKey.set(key, [...(byKey.get(key) ?? []), slot.leaseId]);
    }
    const pipeline = this.redis.pipeline();
    for (const [key, leaseIds] of byKey) pipeline.eval(REFRESH_LEASES, 1, key, LEASE_TTL_MS, ...leaseIds);
    await pipeline.exec().catch((err) => logger.warn('event stream lease refresh failed', { error: err instanceof Error ? err.message : String(err) }));
  }
}
