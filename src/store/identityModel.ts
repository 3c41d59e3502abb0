import mongoose, { Schema, type InferSchemaType } from 'mongoose';
import { storedPhotoSchema } from './storedPhotoSchema';
import { IDENTITY_STATUSES } from './statuses';

/**
 * A person learnt from several photos (issue 21): the photos as uploaded, what the workflow made of
 * them (framed photos with captions, their face embeddings, the trained LoRA) and how well the
 * LoRA keeps the likeness. All of it is biometric data: it lives under the identity's prefix in S3
 * and in this document, which erasure deletes whole. The identity workflow is its single writer
 * after creation. Nested records are Mixed; their types are the step contracts (src/flows/contracts).
 */
const identitySchema = new Schema(
  {
    /** Every lookup filters on it: another tenant's identity answers like a missing one. */
    tenant: { type: String, required: true, index: true },
    name: { type: String, required: true },
    status: { type: String, enum: IDENTITY_STATUSES, required: true, index: true },
    /** The word that stands for the person in every caption and in every portrait's instruction. */
    triggerToken: { type: String, required: true },
    /** The training recipe (steps, rank, learningRate, resolution, seed, checkpointEvery). */
    training: { type: Schema.Types.Mixed, required: true },
    photos: { type: [storedPhotoSchema], required: true },
    /** prepare_identity + caption_identity: the framed photos with their captions, and the embeddings' key. */
    prepared: { type: Schema.Types.Mixed },
    /** train_identity's result: the LoRA's key, steps done, the loss. */
    lora: { type: Schema.Types.Mixed },
    /** evaluate_identity's result: each render, the likeness with and without the LoRA. */
    evaluation: { type: Schema.Types.Mixed },
    error: { type: Schema.Types.Mixed },
    webhook: { type: Schema.Types.Mixed },
    finishedAt: { type: Date },
  },
  { timestamps: true, minimize: false, versionKey: false },
);

export type IdentityDocument = InferSchemaType<typeof identitySchema> & { _id: mongoose.Types.ObjectId };
export const IdentityModel = mongoose.models.Identity ?? mongoose.model('Identity', identitySchema);
