import mongoose, { type Model } from 'mongoose';
import { TERMINAL_STATUSES } from './statuses';

/**
 * A process's share of the database's concurrent operations, unless MONGO_URL sets `maxPoolSize`.
 * The local stand-in needs the bound: a FerretDB v1 update holds one PostgreSQL connection for its
 * read while it takes a second for its write, so as many concurrent updates as FerretDB has
 * connections (services.ts gives it FERRETDB_POOL) wait on each other forever. 20 per process keeps
 * eight processes below that; for MongoDB it is plenty too (the driver's default is 100).
 */
export const MONGO_POOL_PER_PROCESS = 20;

/** The options every connection uses; buffering off, so an outage surfaces as an error, not a hang. */
export function mongoConnectOptions(url: string): mongoose.ConnectOptions {
  const poolSetInUrl = /[?&]maxPoolSize=/i.test(url);
  return { serverSelectionTimeoutMS: 5000, autoIndex: true, ...(poolSetInUrl ? {} : { maxPoolSize: MONGO_POOL_PER_PROCESS }) };
}

/** The same server and credentials (MONGO_URL's options included), another database. */
export function mongoUrlWithDatabase(url: string, database: string): string {
  const target = new URL(url);
  target.pathname = `/${database}`;
  return target.toString();
}

/** One connection per process. */
export async function connectMongo(url: string): Promise<typeof mongoose> {
  mongoose.set('bufferCommands', false);
  return mongoose.connect(url, mongoConnectOptions(url));
}

export async function pingMongo(): Promise<void> {
  const db = mongoose.connection.db;
  if (!db) throw new Error('not connected');
  await db.admin().ping();
}

/** A create that met an existing `_id` (or unique key): how replays and first-claim-wins races show up. */
export const isDuplicateKey = (err: unknown) => (err as { code?: number })?.code === 11000;

/**
 * Ends a job, generation, batch or identity the system itself could not run, unless it already ended; the
 * message is shown to the user (the detail belongs in the log).
 */
export async function markUnfinishedFailed(model: Model<any>, id: string, message: string): Promise<void> {
  await model.updateOne({ _id: id, status: { $nin: [...TERMINAL_STATUSES] } }, { $set: { status: 'failed', error: { code: 'internal', message }, finishedAt: new Date() } });
}
