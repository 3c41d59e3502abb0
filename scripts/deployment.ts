/**
 * A local deployment (`npm start`): one data directory and fixed ports, read from the environment
 * the same way by `npm start` and by every admin command (`npm run keys`, `backup`, `restore`), so
 * the admin commands find the running deployment without anyone copying URLs.
 *
 *   APEX_HOME/
 *     secrets.json      SECRETS_KEY, ADMIN_TOKEN, WEBHOOK_SECRET, the services' credentials (created once, mode 600)
 *     erasures.jsonl    every erasure (ids only), outside data/: replayed after a restore of an older backup
 *     running.json      the running deployment's pid and service URLs (while it runs)
 *     data/{redis,postgres,ferretdb,minio}/
 */
import { randomBytes } from 'node:crypto';
import { chmodSync, existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { isAlive } from './processes';
import { newServiceCredentials, SERVICE_PORT_VARIABLES, type ServiceCredentials, type ServicePorts } from './services';

/** Defaults away from each server's usual port, so a system Redis, PostgreSQL or MongoDB does not collide. */
export const DEFAULT_PORTS: ServicePorts & { api: number } = {
  api: 8001,
  redis: 6390,
  postgres: 5490,
  mongodb: 27090,
  s3: 9090,
  s3Console: 9091,
  ferretdbDebug: 8090,
};

const PORT_VARIABLES: Record<keyof typeof DEFAULT_PORTS, string> = { api: 'PORT', ...SERVICE_PORT_VARIABLES };

export type DeploymentConfig = { home: string; dataDir: string; ports: typeof DEFAULT_PORTS };

export function deploymentConfig(env: NodeJS.ProcessEnv = process.env): DeploymentConfig {
  const home = env.APEX_HOME || join(env.XDG_DATA_HOME || join(homedir(), '.local', 'share'), 'apex-portraits');
  const ports = { ...DEFAULT_PORTS };
  for (const [name, variable] of Object.entries(PORT_VARIABLES) as [keyof typeof DEFAULT_PORTS, string][]) {
    const value = env[variable];
    if (value === undefined || value === '') continue;
    const port = Number(value);
    if (!Number.isInteger(port) || port < 1 || port > 65535) throw new Error(`${variable} must be a port number (1-65535), got "${value}"`);
    ports[name] = port;
  }
  return { home, dataDir: join(home, 'data'), ports };
}

export type DeploymentSecrets = {
  SECRETS_KEY: string;
  ADMIN_TOKEN: string;
  WEBHOOK_SECRET: string;
  s3: { user: string; password: string };
  /** PostgreSQL's superuser, FerretDB's role and Redis (absent in deployments made before they authenticated). */
  services?: Omit<ServiceCredentials, 's3'>;
};

/** The credentials `npm start`, backup and restore start the services with. */
export const serviceCredentials = (secrets: DeploymentSecrets): ServiceCredentials => ({ ...secrets.services!, s3: secrets.s3 });

const secretsPath = (home: string) => join(home, 'secrets.json');

export function readSecrets(home: string): DeploymentSecrets | undefined {
  return existsSync(secretsPath(home)) ? (JSON.parse(readFileSync(secretsPath(home), 'utf8')) as DeploymentSecrets) : undefined;
}

export function writeSecrets(home: string, secrets: DeploymentSecrets) {
  mkdirSync(home, { recursive: true, mode: 0o700 });
  writeFileSync(secretsPath(home), `${JSON.stringify(secrets, null, 2)}\n`, { mode: 0o600 });
  chmodSync(secretsPath(home), 0o600);
}

/**
 * Created on the first start and kept: sealed secrets, webhook signatures and stored objects depend
 * on them. A deployment made before its services authenticated gets their credentials added.
 */
export function loadOrCreateSecrets(home: string): DeploymentSecrets {
  const existing = readSecrets(home);
  if (existing?.services) return existing;
  const { s3, ...services } = newServiceCredentials();
  const secrets: DeploymentSecrets = existing
    ? { ...existing, services }
    : {
        SECRETS_KEY: randomBytes(32).toString('base64'),
        ADMIN_TOKEN: randomBytes(24).toString('base64url'),
        WEBHOOK_SECRET: randomBytes(32).toString('base64url'),
        s3,
        services,
      };
  writeSecrets(home, secrets);
  return secrets;
}

/** What a running deployment publishes for the admin commands: never secrets beyond what its own files hold. */
export type RunningDeployment = { pid: number; apiUrl: string; ports: ServicePorts; env: Record<string, string>; startedAt: string };

const runningPath = (home: string) => join(home, 'running.json');

/** The deployment running from `home`, if any (a stale file from a killed run is ignored). */
export function runningDeployment(home: string): RunningDeployment | undefined {
  if (!existsSync(runningPath(home))) return undefined;
  const running = JSON.parse(readFileSync(runningPath(home), 'utf8')) as RunningDeployment;
  return isAlive(running.pid) ? running : undefined;
}

export function publishRunning(home: string, running: RunningDeployment) {
  writeFileSync(runningPath(home), `${JSON.stringify(running, null, 2)}\n`, { mode: 0o600 });
}

/** Where `npm start` logs erasures: outside data/, so restoring an older backup does not bring back what was erased since. */
export const erasureLogPath = (home: string) => join(home, 'erasures.jsonl');

export function clearRunning(home: string) {
  rmSync(runningPath(home), { force: true });
}

/**
 * The service URLs an admin command uses: MONGO_URL etc. when set explicitly (a deployment elsewhere),
 * otherwise those of the local deployment running from APEX_HOME.
 */
export function adminEnv(env: NodeJS.ProcessEnv = process.env): NodeJS.ProcessEnv {
  if (env.MONGO_URL) return env;
  const { home } = deploymentConfig(env);
  const running = runningDeployment(home);
  if (!running) {
    throw new Error(`no deployment is running from ${home}: start it with \`npm start\` (APEX_HOME chooses another one), or set MONGO_URL to reach a database elsewhere`);
  }
  return { ...env, ...running.env };
}
