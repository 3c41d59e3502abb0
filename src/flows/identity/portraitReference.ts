import type { IdentityDocument } from '../../store/identityModel';
import { MAX_REFERENCE_PHOTOS } from '../contracts/common';
import type { IdentityReference } from '../portrait/submission';

type Prepared = { embeddingsKey?: string; bestPhotos?: number[] } | undefined;
type Lora = { loraKey?: string } | undefined;

/**
 * What a portrait of a ready identity renders from and is checked against: its most typical photos
 * as sent (bestPhotos.ts; up to the 4 references FLUX.2 klein takes, the first for a model that takes
 * one), its LoRA and trigger token, and the embeddings of every photo for the gate. Undefined when the
 * identity is not ready for portraits.
 */
export function identityReferenceOf(identity: IdentityDocument): IdentityReference | undefined {
  const prepared = identity.prepared as Prepared;
  const loraKey = (identity.lora as Lora)?.loraKey;
  if (identity.status !== 'ready' || !loraKey || !prepared?.embeddingsKey) return undefined;
  const order = prepared.bestPhotos?.length ? prepared.bestPhotos : identity.photos.map((_, i) => i);
  const photos = order.slice(0, MAX_REFERENCE_PHOTOS).map((i) => identity.photos[i]);
  return { identityId: identity._id.toHexString(), loraKey, triggerToken: identity.triggerToken, embeddingsKey: prepared.embeddingsKey, photos };
}
