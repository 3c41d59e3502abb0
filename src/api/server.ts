import { loadConfig } from '../config';
import { QueueSet } from '../flows/queues';
import { logger } from '../logger';
import { connectApiRedis } from '../redis';
import { connectMongo } from '../store/mongo';
import { ObjectStore } from '../store/objectStore';
import { startTracing } from '../telemetry';
import { createApp } from './app';
import { createHttpServer, listenOnConfiguredAddress } from './httpServer';

async function main() {
  const config = loadConfig();
  const tracing = startTracing(config, 'api');
  const mongoose = await connectMongo(config.MONGO_URL);
  const redis = await connectApiRedis(config.REDIS_URL);
  const objects = ObjectStore.fromConfig(config);
  await objects.ensureBucket();
  const queues = new QueueSet(redis, config.QUEUE_PREFIX);
  const server = createHttpServer(createApp({ config, objects, queues, redis }), config);
  const { address, port } = await listenOnConfiguredAddress(server, config);
  logger.info('api listening', { host: address, port });
  const stop = () => {
    logger.info('api stopping');
    // Event streams never end by themselves: after the grace period the remaining connections are
    // cut (SSE clients reconnect elsewhere with Last-Event-ID).
    setTimeout(() => server.closeAllConnections(), config.SHUTDOWN_GRACE_MS).unref();
    server.closeIdleConnections();
    server.close(async () => {
      await queues.close();
      redis.disconnect();
      await mongoose.disconnect();
      await tracing.shutdown();
      process.exit(0);
    });
  };
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
}

main().catch((err) => {
  logger.error('api failed to start', { error: err instanceof Error ? err.message : String(err) });
  process.exit(1);
});
