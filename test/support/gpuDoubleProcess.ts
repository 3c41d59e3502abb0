/**
 * The scripted GPU worker as its own process (for tests that kill GPU workers): instant steps but
 * a short generate (writing its image to S3 with GPU_DOUBLE_WRITE_IMAGES=1), and validation that
 * rejects attempt 1, so every job runs two attempts.
 */
import { loadConfig } from '../../src/config';
import { ObjectStore } from '../../src/store/objectStore';
import { connectRedis } from '../../src/redis';
import { ScriptedGpuWorker } from './scriptedGpuWorker';

const config = loadConfig();
const generateMs = Number(process.env.GPU_DOUBLE_GENERATE_MS ?? 0);
const writeImages = process.env.GPU_DOUBLE_WRITE_IMAGES === '1';
const objects = ObjectStore.fromConfig(config);
const TINY_PNG = Buffer.from('iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg==', 'base64');
const gpu = new ScriptedGpuWorker(config, connectRedis(config.REDIS_URL), objects, {
  // A generation that takes a while, so a killed worker is holding some when it dies.
  generate: async ({ outputPrefix, width, height, seed }) => {
    await new Promise((r) => setTimeout(r, generateMs));
    const key = `${outputPrefix}/0.png`;
    // The chaos suite needs the step to depend on S3, as the real one does.
    if (writeImages) await objects.put(key, TINY_PNG, 'image/png');
    return { images: [{ key, width, height, contentType: 'image/png' }], seed, timings: {} };
  },
  validate: ({ attempt }) => ({ passed: attempt >= 2, score: attempt / 2, checks: [], feedback: 'closer crop' }),
}).start(Number(process.env.GPU_DOUBLE_CONCURRENCY ?? 8), Number(process.env.GPU_DOUBLE_LOCK_MS ?? 2000));
process.on('SIGTERM', () => void gpu.close().then(() => process.exit(0)));
process.stdout.write('gpu double ready\n');
