import { Schema, type InferSchemaType } from 'mongoose';

/** A photo as stored in S3 for a job or an identity: where it is and what it is (upright, metadata stripped). */
export const storedPhotoSchema = new Schema(
  {
    key: { type: String, required: true },
    contentType: { type: String, required: true },
    width: { type: Number, required: true },
    height: { type: Number, required: true },
    bytes: { type: Number, required: true },
  },
  { _id: false },
);
export type StoredPhoto = InferSchemaType<typeof storedPhotoSchema>;
