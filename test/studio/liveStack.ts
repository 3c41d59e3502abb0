import { execFileSync, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createHttpServer } from '../../src/api/httpServer';
import { createApiKey } from '../../src/store/apiKeyModel';
import type { GpuScript } from '../support/scriptedGpuWorker';
import { startStack, type Stack } from '../support/stack';
import { buildTinyModels, GPU_PYTHON, GPU_WORKER, startTinyGpuWorker, stopProcess } from '../support/workerProcess';

const ROOT = join(__dirname, '..', '..');

/** A LoRA the GPU worker finds in its offline Hugging Face cache, as if downloaded from this repo. */
export const TINY_LORA = { repo: 'studio-tests/tiny-style', weight_name: 'style.safetensors' };

/**
 * What a person or a client program reaches over HTTP: the API listening on a free port (with its
 * CSP, the studio page and an API key required), the orchestrator, and the real Python GPU worker on
 * the tiny random-weight models (portraits end failed_validation under the default checks: random
 * weights draw no face; gating on the image's dimensions alone lets them complete).
 */
export async function startLiveStack() {
  buildTinyModels();
  buildStudio();
  const loraCache = mkdtempSync(join(tmpdir(), 'apex-studio-loras-'));
  // The same LoRA files the Python tests make (non-zero peft weights on the tiny FLUX transformer).
  execFileSync(
    GPU_PYTHON,
    ['-c', `import sys; sys.path.insert(0, 'tests/support'); from pathlib import Path; from loras import publish_lora; from apex_gpu_worker.settings import TINY_MODELS
publish_lora(TINY_MODELS / 'flux', Path(sys.argv[1]), '${TINY_LORA.repo}', '${TINY_LORA.weight_name}', seed=5)`, loraCache],
    { cwd: GPU_WORKER },
  );
  const stack = await startStack({ gpu: false, config: LIVE_CONFIG() });
  const { apiUrl, apiKey, closeServer } = await serve(stack);
  let gpu: ChildProcess | undefined;
  /** (Re)starts the Python worker; `env` sets what its verdicts gate on, the deployment's choice. */
  const startGpuWorker = async (env: Record<string, string> = {}) => {
    if (gpu) await stopProcess(gpu);
    gpu = undefined;
    gpu = await startTinyGpuWorker(stack.config, { APEX_GPU_LORA_CACHE_DIR: loraCache, ...env });
  };
  const close = async () => {
    if (gpu) await stopProcess(gpu);
    await closeServer();
    await stack.close();
    rmSync(loraCache, { recursive: true, force: true });
  };
  try {
    await startGpuWorker();
  } catch (err) {
    await close();
    throw err;
  }
  return { ...stack, apiUrl, apiKey, startGpuWorker, close };
}

export type LiveStack = Awaited<ReturnType<typeof startLiveStack>>;

/**
 * The same, with the scripted GPU double (test/support/scriptedGpuWorker.ts) in place of the Python
 * worker: for pages whose subject is what the API reports (an identity's face checks and training
 * progress), which a test scripts, not what the models draw.
 */
export async function startScriptedLiveStack(script: GpuScript = {}) {
  buildStudio();
  const stack = await startStack({ gpu: script, config: LIVE_CONFIG() });
  try {
    const { apiUrl, apiKey, closeServer } = await serve(stack);
    const close = async () => {
      await closeServer();
      await stack.close();
    };
    return { ...stack, gpu: stack.gpu!, apiUrl, apiKey, close };
  } catch (err) {
    await stack.close();
    throw err;
  }
}

const LIVE_CONFIG = () => ({ MAX_ATTEMPTS: '2', AUTH_MODE: 'required', SECRETS_KEY: randomBytes(32).toString('base64') });

/** Output captured: a failed build shows it in the error. */
const buildStudio = () => execFileSync(process.execPath, ['--import', 'tsx', 'scripts/build-studio.ts'], { cwd: ROOT });

/** The API listening on a free port (with its CSP and the studio page), and a key the page can use. */
async function serve(stack: Stack) {
  const server = createHttpServer(stack.app, stack.config);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const apiUrl = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  const apiKey = (await createApiKey('studio')).key;
  const closeServer = async () => {
    server.closeAllConnections();
    await new Promise((resolve) => server.close(resolve));
  };
  return { apiUrl, apiKey, closeServer };
}
