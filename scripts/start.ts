/**
 * npm start: the whole product on this machine for real use, its data kept in APEX_HOME across
 * stops and starts (jobs, keys, images, queued work), on the ports of its configuration
 * (scripts/deployment.ts). Ctrl-C or SIGTERM stops it cleanly: the product's processes first (they
 * finish or hand back their work), then the services, PostgreSQL last.
 */
import { chmodSync, mkdirSync } from 'node:fs';
import { localApiUrl } from '../src/api/httpServer';
import { clearRunning, deploymentConfig, erasureLogPath, loadOrCreateSecrets, publishRunning, runningDeployment, serviceCredentials } from './deployment';
import { startProduct, usesTinyModels, type Product } from './localStack';
import { log as logAs } from './processes';
import { assertPortFree, startServices, type RunningServices } from './services';

const log = (message: string) => logAs('start', message);

async function main() {
  const config = deploymentConfig();
  const { home, dataDir, ports } = config;
  const already = runningDeployment(home);
  if (already) throw new Error(`a deployment is already running from ${home} (pid ${already.pid}, API ${already.apiUrl})`);
  await assertPortFree(ports.api, 'PORT', 'PORT, the API');
  mkdirSync(dataDir, { recursive: true, mode: 0o700 });
  chmodSync(home, 0o700); // secrets, the erasure log and every service's data: the owner's alone
  const secrets = loadOrCreateSecrets(home);
  log(`data directory: ${home}`);
  if (process.getuid?.() === 0) {
    log('started by root: the services drop to the apex-services user, but the API, orchestrator, notifier and GPU worker run as root; start it as an ordinary user where you can');
  }

  let services: RunningServices | undefined;
  let product: Product | undefined;
  let stopping = false;
  const shutdown = async (reason: string, code: number) => {
    if (stopping) return;
    stopping = true;
    log(`stopping (${reason})`);
    // A process that does not stop in time must not keep the deployment half-alive: exit regardless.
    setTimeout(() => process.exit(code || 1), 120_000).unref();
    await product?.stop();
    await services?.stop();
    clearRunning(home);
    log('stopped; the data stays in ' + home);
    process.exit(code);
  };
  process.on('SIGINT', () => void shutdown('SIGINT', 0));
  process.on('SIGTERM', () => void shutdown('SIGTERM', 0));

  try {
    services = await startServices({ dataDir, ports, credentials: serviceCredentials(secrets), redisAppendOnly: true, durable: true });
  } catch (err) {
    log(err instanceof Error ? err.message : String(err));
    return shutdown('a service did not start', 1);
  }
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    ...services.env,
    PORT: String(ports.api),
    ERASURE_LOG: erasureLogPath(home),
    SECRETS_KEY: secrets.SECRETS_KEY,
    ADMIN_TOKEN: secrets.ADMIN_TOKEN,
    WEBHOOK_SECRET: secrets.WEBHOOK_SECRET,
    // Every request needs a key (`npm run keys -- create --tenant NAME`), unless the caller chose otherwise.
    AUTH_MODE: process.env.AUTH_MODE ?? 'required',
    LOG_FORMAT: process.env.LOG_FORMAT ?? 'pretty',
  };
  if (usesTinyModels(env)) {
    log('no models configured (APEX_GPU_PORTRAIT_MODEL, APEX_GPU_FLUX_MODEL, APEX_GPU_VLM_MODEL): the GPU worker runs tiny random-weight models, so images are noise (README: "Run it on one machine")');
  }
  // Announced before the product starts: the admin commands need only the services, and none of
  // them may be told "no deployment is running" while the API already answers.
  const apiUrl = localApiUrl(env);
  publishRunning(home, { pid: process.pid, apiUrl, ports: services.ports, env: services.env, startedAt: new Date().toISOString() });
  try {
    product = await startProduct(env, { onExit: (name, code) => void shutdown(`${name} exited with ${code}`, 1) });
  } catch (err) {
    log(err instanceof Error ? err.message : String(err));
    return shutdown('a process did not start', 1);
  }
  log(`ready: API on ${product.apiUrl}; create a key with \`npm run keys -- create --tenant NAME\`; Bull Board at ${product.apiUrl}/admin/queues (password: ADMIN_TOKEN in ${home}/secrets.json); Ctrl-C stops`);
}

main().catch((err) => {
  log(err instanceof Error ? err.message : String(err));
  process.exit(1);
});
