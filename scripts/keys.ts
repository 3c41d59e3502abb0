/**
 * API key administration, on the local deployment running from APEX_HOME (`npm start`), or on the
 * MongoDB of MONGO_URL when that is set:
 *   npm run keys -- create --tenant acme [--name ci]   prints the key once
 *   npm run keys -- list [--tenant acme]
 *   npm run keys -- revoke <key id>
 */
import mongoose from 'mongoose';
import { ApiKeyModel, createApiKey, revokeApiKey } from '../src/store/apiKeyModel';
import { connectMongo } from '../src/store/mongo';
import { adminEnv } from './deployment';

function option(args: string[], name: string): string | undefined {
  const i = args.indexOf(`--${name}`);
  return i >= 0 ? args[i + 1] : undefined;
}

async function main(args: string[]) {
  const [command, ...rest] = args;
  await connectMongo(adminEnv().MONGO_URL!);
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
    } else {
      throw new Error('usage: keys create --tenant NAME [--name LABEL] | list [--tenant NAME] | revoke KEY_ID');
    }
  } finally {
    await mongoose.disconnect();
  }
}

main(process.argv.slice(2)).catch((err) => {
  process.stderr.write(`keys: ${err instanceof Error ? err.message : String(err)}\n`);
  process.exit(1);
});
