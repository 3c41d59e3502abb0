import mongoose, { Schema, type InferSchemaType } from 'mongoose';

/** A tenant's schedule: when (cron + time zone) and what each firing runs as a batch. */
const scheduleSchema = new Schema(
  {
    tenant: { type: String, required: true, index: true },
    name: { type: String },
    cron: { type: String, required: true },
    tz: { type: String, required: true },
    target: { type: Schema.Types.Mixed, required: true },
    /** Checked at creation; its url is checked again at every delivery. */
    webhook: { type: Schema.Types.Mixed },
    lastFiredAt: { type: Date },
    lastBatchId: { type: String },
    /** What its firings may cost in one GPU budget window, reckoned at creation (batches/schedules.ts scheduleWindowCost). */
    gpuUnitsPerWindow: { type: Number },
  },
  { timestamps: true, minimize: false, versionKey: false },
);

export type ScheduleDocument = InferSchemaType<typeof scheduleSchema> & { _id: mongoose.Types.ObjectId };
export const ScheduleModel = mongoose.models.Schedule ?? mongoose.model('Schedule', scheduleSchema);
