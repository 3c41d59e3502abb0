import mongoose, { Schema, type InferSchemaType } from 'mongoose';
import { BATCH_STATUSES } from './statuses';

/**
 * A batch: its target, the children it fanned out to (portrait jobs or generations, by id), the
 * photos it turned down, and the summary written when every child has ended. Counts per state are
 * read live from the children.
 */
const batchSchema = new Schema(
  {
    tenant: { type: String, required: true, index: true },
    status: { type: String, enum: BATCH_STATUSES, required: true },
    target: { type: Schema.Types.Mixed, required: true },
    scheduleId: { type: String },
    items: { type: [Schema.Types.Mixed], default: [] },
    skipped: { type: [Schema.Types.Mixed], default: [] },
    summary: { type: Schema.Types.Mixed },
    error: { type: Schema.Types.Mixed },
    finishedAt: { type: Date },
  },
  { timestamps: true, minimize: false, versionKey: false },
);

export type BatchItem = { kind: 'portrait' | 'generation'; id: string; source?: { key: string; etag: string } };
export type BatchDocument = InferSchemaType<typeof batchSchema> & { _id: mongoose.Types.ObjectId; items: BatchItem[] };
export const BatchModel = mongoose.models.Batch ?? mongoose.model('Batch', batchSchema);
