import mongoose, { Schema } from 'mongoose';

/** One delivery attempt of one webhook: what was sent where, and what came back. */
const deliverySchema = new Schema(
  {
    jobId: { type: String, required: true, index: true },
    tenant: { type: String, required: true },
    webhookId: { type: String, required: true },
    type: { type: String, required: true },
    url: { type: String, required: true },
    attempt: { type: Number, required: true },
    status: { type: Number, default: null },
    error: { type: String },
    durationMs: { type: Number, required: true },
  },
  { timestamps: { createdAt: true, updatedAt: false }, versionKey: false },
);

export const WebhookDeliveryModel = mongoose.models.WebhookDelivery ?? mongoose.model('WebhookDelivery', deliverySchema);
