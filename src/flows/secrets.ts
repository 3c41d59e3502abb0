import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';

/**
 * Per-request secrets (a caller's Hugging Face token) are sealed with AES-256-GCM under the
 * deployment's SECRETS_KEY before they enter Redis or MongoDB, bound to their use (see
 * secretsBinding), and opened only inside the GPU step that uses them
 * (gpu-worker/apex_gpu_worker/secrets.py). Format: `v1.<iv>.<tag>.<ciphertext>`, base64url parts.
 */
export function sealSecrets(keyBase64: string, binding: string, secrets: Record<string, unknown>): string {
  const iv = randomBytes(12);
  const cipher = createCipheriv('aes-256-gcm', key(keyBase64), iv);
  cipher.setAAD(Buffer.from(binding));
  const ciphertext = Buffer.concat([cipher.update(JSON.stringify(secrets), 'utf8'), cipher.final()]);
  return ['v1', iv, cipher.getAuthTag(), ciphertext].map((p) => (typeof p === 'string' ? p : p.toString('base64url'))).join('.');
}

export function openSecrets(keyBase64: string, binding: string, envelope: string): Record<string, unknown> {
  const [version, iv, tag, ciphertext] = envelope.split('.');
  if (version !== 'v1' || !iv || !tag || ciphertext === undefined) throw new Error('not a v1 secrets envelope');
  const decipher = createDecipheriv('aes-256-gcm', key(keyBase64), Buffer.from(iv, 'base64url'));
  decipher.setAAD(Buffer.from(binding));
  decipher.setAuthTag(Buffer.from(tag, 'base64url'));
  return JSON.parse(Buffer.concat([decipher.update(Buffer.from(ciphertext, 'base64url')), decipher.final()]).toString('utf8'));
}

export type Destination = { bucket: string; endpoint?: string; prefix?: string; region?: string };

/**
 * The additional authenticated data of a job's secrets: its id, and where its images go when they
 * go to the caller's bucket. Anyone who edits the queued job's destination (an operator in the
 * dashboard) breaks the seal, so the caller's keys never reach a place the caller did not name.
 * The Python worker builds the same bytes (secrets_binding in gpu-worker/apex_gpu_worker/secrets.py).
 */
export function secretsBinding(jobId: string, destination?: Destination): string {
  if (!destination) return jobId;
  return JSON.stringify([jobId, destination.bucket, destination.endpoint ?? '', destination.prefix ?? '', destination.region ?? '']);
}

function key(keyBase64: string): Buffer {
  const k = Buffer.from(keyBase64, 'base64');
  if (k.length !== 32) throw new Error('SECRETS_KEY must be 32 bytes, base64-encoded');
  return k;
}
