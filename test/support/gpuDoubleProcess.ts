/**
 * The scripted GPU worker as its own process (for tests that kill GPU workers): instant steps but
 * a short generate, and validation that rejects attempt 1, so every job runs two attempts.
 */
import { loadConfig } from '../../src/config';
import { ObjectStore } from '../../src/store/objectStore';
import { connectRedis } from '../../src/workers/redis';
import { ScriptedGpuWorker } from './scriptedGpuWorker';

const config = loadConfig();
const generateMs = Number(process.env.GPU_DOUBLE_GENERATE_MS ?? 0);
const objects = ObjectStore.fromConfig(config);
const gpu = new ScriptedGpuWorker(config, connectRedis(config.REDIS_URL), objects, {
  // A generation that takes a while, so a killed worker is holding some when it dies.
  generate: async ({ outputPrefix, width, height, seed }) => {
    await new Promise((r) => setTimeout(r, generateMs));
    return { images: [{ key: `${outputPrefix}/0.png`, width, height, contentType: 'image/png' }], seed, timings: {} };
  },
  validate: ({ attempt }) => ({ passed: attempt >= 2, score: attempt / 2, checks: [], feedback: 'closer crop' }),
}).start(Number(process.env.GPU_DOUBLE_CONCURRENCY ?? 8), Number(process.env.GPU_DOUBLE_LOCK_MS ?? 2000));
process.on('SIGTERM', () => void gpu.close().then(() => process.exit(0)));
process.stdout.write('gpu double ready\n');
