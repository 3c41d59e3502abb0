import mongoose from 'mongoose';
import { FERRETDB_POOL } from '../scripts/services';
import { MONGO_POOL_PER_PROCESS, mongoConnectOptions, mongoUrlWithDatabase } from '../src/store/mongo';

/**
 * Many processes writing at once to the local MongoDB stand-in. FerretDB v1 holds one PostgreSQL
 * connection per update while it takes a second, so with its default pool (50) or with the driver's
 * default client pools (100 per process) this many writers froze FerretDB for good: bench:scale
 * with 3 orchestrators stopped after ~100 jobs. The pools set in mongo.ts and services.ts keep it
 * moving.
 */
/** The PostgreSQL plan nodes FerretDB's explain reports for a find. */
async function planOf(collection: mongoose.mongo.Collection, filter: mongoose.mongo.Filter<any>) {
  const explained = (await collection.find(filter).explain()) as { queryPlanner: { Plan: PlanNode } };
  const nodes: PlanNode[] = [];
  const walk = (node: PlanNode) => (nodes.push(node), node.Plans?.forEach(walk));
  walk(explained.queryPlanner.Plan);
  return nodes.map((n) => `${n['Node Type']}${n['Index Name'] ? ` ${n['Index Name']}` : ''}`);
}
type PlanNode = { 'Node Type': string; 'Index Name'?: string; Plans?: PlanNode[] };

/**
 * Lookups by an indexed field use an index (scripts/postgres/containment-indexes.sql): FerretDB's
 * own btree indexes cannot serve its containment lookups, so without the GIN twins every Job
 * document write read the whole collection and grew slower with every job stored.
 */
describe('indexed lookups on the MongoDB stand-in', () => {
  let connection: mongoose.Connection;
  let things: mongoose.mongo.Collection;
  beforeAll(async () => {
    const target = mongoUrlWithDatabase(process.env.MONGO_URL!, `apex_indexes_${Date.now()}`);
    connection = await mongoose.createConnection(target, mongoConnectOptions(target)).asPromise();
    things = connection.collection('things');
    await things.insertMany(Array.from({ length: 2000 }, (_, i) => ({ _id: `job${i}` as never, keyHash: `h${i}`, note: `n${i}`, status: 'running', revision: i })));
    await things.createIndex({ keyHash: 1 }); // after the documents, as a new index on a live collection
  });
  afterAll(async () => {
    await connection.dropDatabase();
    await connection.close();
  });

  it.each([
    ['an _id', { _id: 'job7' }, /^Bitmap Index Scan .*__id_.*_gin$/],
    ['the Job document write\'s guarded filter', { _id: 'job7', $or: [{ revision: { $lt: 9 } }, { revision: { $exists: false } }], status: { $in: ['pending', 'running'] } }, /^Bitmap Index Scan .*__id_.*_gin$/],
    ['a field indexed later', { keyHash: 'h7' }, /^Bitmap Index Scan .*keyhash.*_gin$/i],
  ])('a lookup by %s uses an index', async (_name, filter, indexNode) => {
    expect((await planOf(things, filter as never)).some((node) => indexNode.test(node))).toBe(true);
  });

  it('a lookup by a field without an index reads the collection (what the others avoid)', async () => {
    expect(await planOf(things, { note: 'n7' })).toEqual(['Seq Scan']);
  });
});

describe('concurrent writers on the MongoDB stand-in', () => {
  const PROCESSES = 8;
  const UPDATES_PER_PROCESS = 300;
  const url = () => mongoUrlWithDatabase(process.env.MONGO_URL!, `apex_concurrency_${Date.now()}`);

  it('the processes together stay below the stand-in\'s connections', () => {
    // Eight processes (an API, orchestrators, notifier, admin commands) fit.
    expect(8 * MONGO_POOL_PER_PROCESS).toBeLessThan(FERRETDB_POOL);
  });

  it(`${PROCESSES} processes' worth of connections, ${UPDATES_PER_PROCESS} updates each at once: all done`, async () => {
    const target = url();
    const connections = await Promise.all(Array.from({ length: PROCESSES }, () => mongoose.createConnection(target, mongoConnectOptions(target)).asPromise()));
    try {
      const docs = connections[0].collection('docs');
      // One document per update: FerretDB v1 updates read then write, so concurrent $inc on one
      // document can lose counts (the product never has two writers on one document at once).
      const ids = Object.values((await docs.insertMany(Array.from({ length: PROCESSES * UPDATES_PER_PROCESS }, () => ({ done: false })))).insertedIds);
      const updates = connections.flatMap((c, p) =>
        Array.from({ length: UPDATES_PER_PROCESS }, (_, i) => c.collection('docs').updateOne({ _id: ids[p * UPDATES_PER_PROCESS + i] }, { $set: { done: true } })),
      );
      let timer: NodeJS.Timeout | undefined;
      const frozen = new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error('updates stopped answering: the stand-in is deadlocked')), 60_000);
      });
      await Promise.race([Promise.all(updates), frozen]).finally(() => clearTimeout(timer));
      expect(await docs.countDocuments({ done: true })).toBe(PROCESSES * UPDATES_PER_PROCESS);
      await connections[0].dropDatabase();
    } finally {
      await Promise.all(connections.map((c) => c.close(true)));
    }
  }, 120_000);

  it.each([
    ['mongodb://127.0.0.1:27017/apex', MONGO_POOL_PER_PROCESS],
    ['mongodb+srv://cluster.example.net/apex?retryWrites=true', MONGO_POOL_PER_PROCESS],
  ])('a MONGO_URL without maxPoolSize gets the bounded pool: %s', (mongoUrl, pool) => {
    expect(mongoConnectOptions(mongoUrl).maxPoolSize).toBe(pool);
  });

  it.each([
    'mongodb://127.0.0.1:27017/apex?maxPoolSize=5',
    'mongodb://db.example.net/apex?w=majority&maxPoolSize=200',
    'mongodb://db.example.net/apex?maxpoolsize=7',
  ])('a MONGO_URL that sets maxPoolSize keeps its own: %s', (mongoUrl) => {
    expect(mongoConnectOptions(mongoUrl).maxPoolSize).toBeUndefined();
  });
});
