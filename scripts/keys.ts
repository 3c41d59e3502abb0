/**
 * API key administration, on the local deployment running from APEX_HOME (`npm start`), or on the
 * MongoDB of MONGO_URL when that is set:
 *   npm run keys -- create --tenant acme [--name ci]   prints the key once
 *   npm run keys -- list [--tenant acme]
 *   npm run keys -- revoke <key id>
 *   npm run keys -- erase-tenant --tenant acme         erases the tenant's keys and all its data
 */
import mongoose from 'mongoose';
import { loadConfig } from '../src/config';
import { eraseTenant } from '../src/flows/erasure/tenantErasure';
import { QueueSet } from '../src/flows/queues';
import { connectRedis } from '../src/redis';
import { ApiKeyModel, createApiKey, revokeApiKey, TENANT_PATTERN } from '../src/store/apiKeyModel';
import { connectMongo } from '../src/store/mongo';
import { ObjectStore } from '../src/store/objectStore';
import { adminEnv, deploymentConfig, erasureLogPath } from './deployment';

function option(args: string[], name: string): string | undefined {
  const i = args.indexOf(`--${name}`);
  return i >= 0 ? args[i + 1] : undefined;
}

/**
 * Erases a tenant on the deployment: its keys (deleted, so nothing new arrives), schedules,
 * batches, jobs, generations and inbox photos, through the same path as DELETE and retention;
 * logged in the deployment's erasure log, so a restore of an older backup does not bring it back.
 */
async function eraseTenantData(env: NodeJS.ProcessEnv, tenant: string) {
  if (!TENANT_PATTERN.test(tenant)) throw new Error('--tenant must be a tenant name (lowercase letters, digits, - or _)');
  // The local deployment's log, as npm start sets it for its own processes.
  const config = loadConfig({ ...env, ERASURE_LOG: env.ERASURE_LOG ?? (process.env.MONGO_URL ? undefined : erasureLogPath(deploymentConfig(env).home)) });
  const redis = connectRedis(config.REDIS_URL);
  const queues = new QueueSet(redis, config.QUEUE_PREFIX);
  const objects = ObjectStore.fromConfig(config);
  try {
    const done = await eraseTenant({ config, redis, queues, objects }, tenant, 'tenant');
    const { batch, job, generation } = done.erased;
    process.stdout.write(
      `erased tenant ${tenant}: ${done.keys} keys, ${done.schedules} schedules, ${batch} batches, ${job} jobs, ${generation} generations, ${done.inboxPhotos} inbox photos` +
        (done.pending ? `; ${done.pending} were still running and are erased by the orchestrator once they stop\n` : '\n'),
    );
    if (!config.ERASURE_LOG) process.stdout.write('no ERASURE_LOG is set: a restore of an older backup would bring this tenant back\n');
  } finally {
    await queues.close();
    redis.disconnect();
    objects.client.destroy();
  }
}

async function main(args: string[]) {
  const [command, ...rest] = args;
  const env = adminEnv();
  await connectMongo(env.MONGO_URL!);
  try {
    if (command === 'create') {
      const tenant = option(rest, 'tenant');
      if (!tenant) throw new Error('create needs --tenant NAME');
      const { id, key } = await createApiKey(tenant, option(rest, 'name'));
      process.stdout.write(`created key ${id} for tenant ${tenant}; it is shown only now:\n${key}\n`);
    } else if (command === 'list') {
      const tenant = option(rest, 'tenant');
      const keys = await ApiKeyModel.find(tenant ? { tenant } : {}).lean();
      for (const k of keys) {
        process.stdout.write(`${k._id}\t${k.tenant}\t${k.name ?? ''}\t${k.revokedAt ? `revoked ${k.revokedAt.toISOString()}` : 'active'}\n`);
      }
    } else if (command === 'revoke') {
      if (!rest[0]) throw new Error('revoke needs a key id');
      if (!(await revokeApiKey(rest[0]))) throw new Error(`no key ${rest[0]}`);
      process.stdout.write(`revoked ${rest[0]}\n`);
    } else if (command === 'erase-tenant') {
      const tenant = option(rest, 'tenant');
      if (!tenant) throw new Error('erase-tenant needs --tenant NAME');
      await eraseTenantData(env, tenant);
    } else {
      throw new Error('usage: keys create --tenant NAME [--name LABEL] | list [--tenant NAME] | revoke KEY_ID | erase-tenant --tenant NAME');
    }
  } finally {
    await mongoose.disconnect();
  }
}

main(process.argv.slice(2)).catch((err) => {
  process.stderr.write(`keys: ${err instanceof Error ? err.message : String(err)}\n`);
  process.exit(1);
});
