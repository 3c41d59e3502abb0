import { Router, type Request, type Response } from 'express';
import { WebhookDeliveryModel } from '../../store/webhookDeliveryModel';
import { findBatch, findGeneration, findIdentity, findJob } from '../tenantResources';
import { deliveryListView, type DeliveryOwner, type StoredDelivery } from '../views/delivery';

type Owned = { _id: { toHexString(): string } };

/**
 * GET /jobs/:id/deliveries, /generations/:id/deliveries, /batches/:id/deliveries and
 * /identities/:id/deliveries: every webhook
 * delivery attempt for the resource, oldest first, as the notifier recorded it.
 */
export function deliveriesRouter(): Router {
  const router = Router();
  const list = (kind: DeliveryOwner, find: (req: Request, res: Response) => Promise<Owned>) => async (req: Request, res: Response) => {
    const id = (await find(req, res))._id.toHexString();
    const deliveries = await WebhookDeliveryModel.find({ jobId: id }).sort({ createdAt: 1 }).lean<StoredDelivery[]>();
    res.json(deliveryListView(kind, id, deliveries));
  };
  router.get('/jobs/:id/deliveries', list('job', findJob));
  router.get('/generations/:id/deliveries', list('generation', findGeneration));
  router.get('/batches/:id/deliveries', list('batch', findBatch));
  router.get('/identities/:id/deliveries', list('identity', findIdentity));
  return router;
}
