import mongoose, { Schema, type InferSchemaType } from 'mongoose';
import { GENERATION_STATUSES } from './statuses';

/** A text-to-image generation. Its request is stored without its secrets (those travel sealed in Redis only). */
const generationSchema = new Schema(
  {
    tenant: { type: String, required: true, index: true },
    status: { type: String, enum: GENERATION_STATUSES, required: true },
    request: { type: Schema.Types.Mixed, required: true },
    seed: { type: Number, required: true },
    images: { type: [Schema.Types.Mixed], default: [] },
    timings: { type: Schema.Types.Mixed },
    /** How the images' pixels were made (the generate step's PixelProvenance). */
    pixels: { type: Schema.Types.Mixed },
    error: { type: Schema.Types.Mixed },
    finishedAt: { type: Date },
  },
  { timestamps: true, minimize: false, versionKey: false },
);

export type GenerationDocument = InferSchemaType<typeof generationSchema> & { _id: mongoose.Types.ObjectId };
export const GenerationModel = mongoose.models.Generation ?? mongoose.model('Generation', generationSchema);
