import mongoose, { type Model } from 'mongoose';
import { UNFINISHED_STATUSES } from './statuses';

/** One connection per process; mongoose buffers nothing so an outage surfaces as an error, not a hang. */
export async function connectMongo(url: string): Promise<typeof mongoose> {
  mongoose.set('bufferCommands', false);
  return mongoose.connect(url, { serverSelectionTimeoutMS: 5000, autoIndex: true });
}

export async function pingMongo(): Promise<void> {
  const db = mongoose.connection.db;
  if (!db) throw new Error('not connected');
  await db.admin().ping();
}

/** A create that met an existing `_id` (or unique key): how replays and first-claim-wins races show up. */
export const isDuplicateKey = (err: unknown) => (err as { code?: number })?.code === 11000;

/**
 * Ends a job, generation or batch the system itself could not run, unless it already ended; the
 * message is shown to the user (the detail belongs in the log).
 */
export async function markUnfinishedFailed(model: Model<any>, id: string, message: string): Promise<void> {
  await model.updateOne({ _id: id, status: { $in: UNFINISHED_STATUSES } }, { $set: { status: 'failed', error: { code: 'internal', message }, finishedAt: new Date() } });
}
