import type { Redis } from 'ioredis';
import mongoose from 'mongoose';
import { Writable } from 'node:stream';
import winston from 'winston';
import { logger } from '../../src/logger';

/** Every value in Redis under `prefix`, whatever its type, as text. */
export async function dumpRedis(redis: Redis, prefix: string): Promise<string> {
  const parts: string[] = [];
  let cursor = '0';
  do {
    const [next, keys] = await redis.scan(cursor, 'MATCH', `${prefix}:*`, 'COUNT', 500);
    cursor = next;
    for (const key of keys) {
      const type = await redis.type(key);
      const value =
        type === 'string' ? await redis.get(key)
        : type === 'hash' ? await redis.hgetall(key)
        : type === 'list' ? await redis.lrange(key, 0, -1)
        : type === 'set' ? await redis.smembers(key)
        : type === 'zset' ? await redis.zrange(key, '0', '-1')
        : type === 'stream' ? await redis.xrange(key, '-', '+')
        : null;
      parts.push(key, JSON.stringify(value));
    }
  } while (cursor !== '0');
  return parts.join('\n');
}

/** Every document of every collection in the connected database, as text. */
export async function dumpMongo(): Promise<string> {
  const db = mongoose.connection.db!;
  const parts: string[] = [];
  for (const { name } of await db.listCollections().toArray()) {
    parts.push(name, JSON.stringify(await db.collection(name).find({}).toArray()));
  }
  return parts.join('\n');
}

/** Collects every line the in-process logger writes (at debug level) until `stop()`. */
export function captureLogs() {
  const lines: string[] = [];
  const transport = new winston.transports.Stream({
    stream: new Writable({ write: (chunk, _enc, done) => (lines.push(String(chunk)), done()) }),
  });
  const previous = { silent: logger.silent, level: logger.level };
  logger.silent = false;
  logger.level = 'debug';
  for (const t of logger.transports) t.silent = true;
  logger.add(transport);
  return {
    lines,
    stop() {
      logger.remove(transport);
      for (const t of logger.transports) t.silent = false;
      Object.assign(logger, previous);
    },
  };
}
