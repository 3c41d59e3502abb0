import type { Redis } from 'ioredis';
import type { Config } from '../../config';
import type { ObjectStore } from '../../store/objectStore';
import type { QueueSet } from '../queues';

/** What can be erased: a resource by its id, or a tenant's whole data (id = the tenant). */
export type ErasureKind = 'job' | 'generation' | 'batch' | 'identity' | 'tenant';
export type ResourceKind = Exclude<ErasureKind, 'tenant'>;

/** One erasure: ids only, never what the resource held (it is written to the erasure log). */
export type ErasureTarget<K extends ErasureKind = ResourceKind> = { kind: K; id: string; tenant: string };

/** Why data was erased: the metric's label, and whether it is logged for a restore. */
export type ErasureTrigger = 'request' | 'retention' | 'tenant' | 'replay';

/** What every erasure touches; `now` is injectable so retention runs on a test's clock. */
export type ErasureDeps = { config: Config; redis: Redis; objects: ObjectStore; queues: QueueSet; now?: () => Date };

export const nowOf = (deps: ErasureDeps) => (deps.now ?? (() => new Date()))();

/** Margin before a resource's creation where its entries in the queues' event streams may begin (clock skew between processes). */
export const STREAM_MARGIN_MS = 60_000;

/** Where a resource's entries in the queues' event streams begin (ms), from its creation; 0 (all) when unknown. */
export const streamsSince = (createdAt: Date | undefined) => (createdAt ? createdAt.getTime() - STREAM_MARGIN_MS : 0);
