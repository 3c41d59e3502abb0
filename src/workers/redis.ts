import { Redis } from 'ioredis';

/** BullMQ workers block on Redis, so commands must wait for a reconnect instead of failing fast. */
export function connectRedis(url: string): Redis {
  return new Redis(url, { maxRetriesPerRequest: null });
}
