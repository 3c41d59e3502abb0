import mongoose, { Schema, type InferSchemaType } from 'mongoose';
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';

/**
 * API keys: `apx_<id>_<secret>`. Only the id (the lookup key) and a SHA-256 of the secret are
 * stored; the whole key is shown once, when it is created. The secret is 32 random bytes, so a
 * plain hash is enough (no password-style stretching needed).
 */
const apiKeySchema = new Schema(
  {
    _id: { type: String, required: true },
    tenant: { type: String, required: true, index: true },
    name: { type: String },
    secretHash: { type: String, required: true },
    revokedAt: { type: Date },
  },
  { timestamps: true, versionKey: false },
);

export type ApiKeyDocument = InferSchemaType<typeof apiKeySchema>;
export const ApiKeyModel = mongoose.models.ApiKey ?? mongoose.model('ApiKey', apiKeySchema);

export const TENANT_PATTERN = /^[a-z0-9][a-z0-9_-]{0,62}$/;
const KEY_PATTERN = /^apx_([0-9a-f]{16})_([A-Za-z0-9_-]{43})$/;

const hash = (secret: string) => createHash('sha256').update(secret).digest('hex');

export async function createApiKey(tenant: string, name?: string): Promise<{ id: string; key: string }> {
  if (!TENANT_PATTERN.test(tenant)) throw new Error('tenant must be lowercase letters, digits, - or _ (at most 63)');
  const id = randomBytes(8).toString('hex');
  const secret = randomBytes(32).toString('base64url');
  await markKeysIssued();
  await ApiKeyModel.create({ _id: id, tenant, name, secretHash: hash(secret) });
  return { id, key: `apx_${id}_${secret}` };
}

export async function revokeApiKey(id: string): Promise<boolean> {
  const res = await ApiKeyModel.updateOne({ _id: id }, { $set: { revokedAt: new Date() } });
  return res.matchedCount === 1;
}

/** The key's tenant and id when the key is valid and not revoked; otherwise null. */
export async function verifyApiKey(key: string): Promise<{ id: string; tenant: string } | null> {
  const match = KEY_PATTERN.exec(key);
  if (!match) return null;
  const doc = await ApiKeyModel.findById(match[1]).lean<ApiKeyDocument & { _id: string }>();
  if (!doc || doc.revokedAt) return null;
  const given = Buffer.from(hash(match[2]), 'hex');
  return timingSafeEqual(given, Buffer.from(doc.secretHash, 'hex')) ? { id: doc._id, tenant: doc.tenant } : null;
}

/**
 * "API keys were issued here": one document without a tenant, written with the first key and kept
 * when a tenant's keys are erased, so erasing the last tenant does not open an `AUTH_MODE=auto` API.
 */
const keysIssuedSchema = new Schema({ _id: { type: String, required: true } }, { timestamps: true, versionKey: false });
const KeysIssuedModel = mongoose.models.KeysIssued ?? mongoose.model('KeysIssued', keysIssuedSchema, 'keys_issued');
const KEYS_ISSUED = 'keys-issued';

export async function markKeysIssued(): Promise<void> {
  await KeysIssuedModel.updateOne({ _id: KEYS_ISSUED }, { $setOnInsert: { _id: KEYS_ISSUED } }, { upsert: true });
}

/** Whether the API is past its open start: a key exists, or keys were issued here and erased since. */
export async function anyApiKeyExists(): Promise<boolean> {
  return (await ApiKeyModel.exists({})) !== null || (await KeysIssuedModel.exists({ _id: KEYS_ISSUED })) !== null;
}
