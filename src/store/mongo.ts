import mongoose from 'mongoose';

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
