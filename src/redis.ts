import { Redis } from 'ioredis';

/** BullMQ workers block on Redis, so commands must wait for a reconnect instead of failing fast. */
export function connectRedis(url: string): Redis {
  return new Redis(url, { maxRetriesPerRequest: null });
}

/**
 * The API's connection: while Redis is unreachable a command fails at once, so the request answers
 * 503 instead of waiting in ioredis' offline queue until Redis returns (it still reconnects).
 * Resolves once connected, since without the offline queue nothing may be sent before that.
 */
export async function connectApiRedis(url: string): Promise<Redis> {
  const redis = new Redis(url, { maxRetriesPerRequest: 1, enableOfflineQueue: false });
  await new Promise<void>((resolve, reject) => {
    redis.once('ready', resolve);
    redis.once('end', () => reject(new Error(`could not connect to Redis at ${url}`)));
  });
  return redis;
}
