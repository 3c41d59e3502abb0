import mongoose, { Schema, type InferSchemaType } from 'mongoose';
import { storedPhotoSchema } from './storedPhotoSchema';
import { JOB_STATUSES } from './statuses';

/**
 * A portrait job as the API shows it. The orchestrator is its single writer after creation: it
 * writes its state machine (attempts, steps, verdicts) here at the transitions a reader needs, so
 * the document may trail a running job. The nested records are stored as Mixed, as the state
 * machine writes them; their types are its zod contracts, which the layers above name (the API's
 * StoredJob): this layer sits below the workflows and does not import them.
 */
const jobSchema = new Schema(
  {
    /** The API key's tenant that created it: every lookup filters on it, so other tenants get 404. */
    tenant: { type: String, required: true, index: true },
    status: { type: String, enum: JOB_STATUSES, required: true, index: true },
    parameters: { type: Schema.Types.Mixed, required: true },
    /** Images rendered per attempt (best of N). */
    candidates: { type: Number, default: 1 },
    /** Identity LoRAs of every attempt ({repo, weight_name?, scale}). */
    loras: { type: [Schema.Types.Mixed], default: [] },
    /** A private LoRA repo's token, sealed (never in clear, never shown): kept so a retry can use it. */
    sealedSecrets: { type: String },
    /** The first reference photo (a job stored before several photos has only this one). */
    reference: { type: storedPhotoSchema, required: true },
    /** A portrait of a learnt identity: its id (the references are its photos, the LoRA its). */
    identityId: { type: String, index: true },
    /** Every reference photo, in upload order; the first is `reference`. */
    references: { type: [storedPhotoSchema], default: undefined },
    attempts: { type: [Schema.Types.Mixed], default: [] },
    report: { type: Schema.Types.Mixed },
    result: { type: Schema.Types.Mixed },
    error: { type: Schema.Types.Mixed },
    /** Where and for which events the job's webhooks go (url, events). */
    webhook: { type: Schema.Types.Mixed },
    cycle: { type: Number, default: 1 },
    history: { type: [Schema.Types.Mixed], default: [] },
    finishedAt: { type: Date },
    /** When retention erased the job's photos (its reference and the inbox photo it came from): no retry after that. */
    inputsErasedAt: { type: Date },
    /** The orchestrator's revision of the state written here (stateMachine.ts revisionOf): a late write with a lower one is ignored. */
    revision: { type: Number, default: 0 },
  },
  { timestamps: true, minimize: false, versionKey: false },
);

export type JobDocument = InferSchemaType<typeof jobSchema> & { _id: mongoose.Types.ObjectId };

export const JobModel = mongoose.models.Job ?? mongoose.model('Job', jobSchema);
