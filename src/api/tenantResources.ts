import type { Request, Response } from 'express';
import { Types, type Model } from 'mongoose';
import { z } from 'zod';
import { JobId } from '../flows/contracts/common';
import { BatchModel, type BatchDocument } from '../store/batchModel';
import { GenerationModel, type GenerationDocument } from '../store/generationModel';
import { IdentityModel, type IdentityDocument } from '../store/identityModel';
import { JobModel, type JobDocument } from '../store/jobModel';
import { ScheduleModel, type ScheduleDocument } from '../store/scheduleModel';
import { callerOf } from './auth';
import { ApiError } from './errors';

/**
 * The caller's resource named by `:id` (a job, generation, batch, schedule or identity): a malformed id is a
 * 400, and another tenant's resource answers exactly like a missing one (404).
 */
export async function findOwned<T extends { tenant: string }>(model: Model<any>, kind: string, req: Request, res: Response): Promise<T> {
  const id = String(req.params.id);
  if (!JobId.safeParse(id).success) throw new ApiError(400, 'invalid_id', `${kind} id must be a 24-character hex string`, 'id');
  const doc = await model.findById(id).lean<T>();
  if (!doc || doc.tenant !== callerOf(res).tenant) throw new ApiError(404, `${kind}_not_found`, `no ${kind} with id ${id}`, 'id');
  return doc;
}

export const findJob = (req: Request, res: Response) => findOwned<JobDocument>(JobModel, 'job', req, res);
export const findGeneration = (req: Request, res: Response) => findOwned<GenerationDocument>(GenerationModel, 'generation', req, res);
export const findBatch = (req: Request, res: Response) => findOwned<BatchDocument>(BatchModel, 'batch', req, res);
export const findSchedule = (req: Request, res: Response) => findOwned<ScheduleDocument>(ScheduleModel, 'schedule', req, res);
export const findIdentity = (req: Request, res: Response) => findOwned<IdentityDocument>(IdentityModel, 'identity', req, res);

/** The paging parameters every list takes: at most `limit` per page, continuing after `cursor` (the last id of the page before). */
export const PAGE_QUERY = { cursor: JobId.optional(), limit: z.coerce.number().int().min(1).max(100).default(20) };

/** One page of the caller's documents, newest first; `next_cursor` continues after the last (ids only grow, so pages are stable). */
export async function newestFirstPage<T extends { _id: Types.ObjectId }>(
  model: Model<any>,
  filter: Record<string, unknown>,
  query: { cursor?: string; limit: number },
): Promise<{ page: T[]; next_cursor: string | null }> {
  const docs = await model
    .find(query.cursor ? { ...filter, _id: { $lt: new Types.ObjectId(query.cursor) } } : filter)
    .sort({ _id: -1 })
    .limit(query.limit + 1)
    .lean<T[]>();
  const page = docs.slice(0, query.limit);
  return { page, next_cursor: docs.length > query.limit ? page.at(-1)!._id.toHexString() : null };
}
