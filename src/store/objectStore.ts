import {
  CreateBucketCommand,
  DeleteObjectsCommand,
  GetObjectCommand,
  HeadObjectCommand,
  HeadBucketCommand,
  ListObjectsV2Command,
  PutObjectCommand,
  S3Client,
  S3ServiceException,
} from '@aws-sdk/client-s3';
import { getSignedUrl } from '@aws-sdk/s3-request-presigner';
import type { Readable } from 'node:stream';
import type { Config } from '../config';

/** Images live in S3 (MinIO locally); only their keys travel through Redis and MongoDB. */
export class ObjectStore {
  readonly client: S3Client;

  constructor(readonly bucket: string, client: S3Client) {
    this.client = client;
  }

  static fromConfig(config: Config): ObjectStore {
    const credentials =
      config.S3_ACCESS_KEY_ID && config.S3_SECRET_ACCESS_KEY
        ? { accessKeyId: config.S3_ACCESS_KEY_ID, secretAccessKey: config.S3_SECRET_ACCESS_KEY }
        : undefined;
    const client = new S3Client({
      region: config.S3_REGION,
      endpoint: config.S3_ENDPOINT,
      forcePathStyle: config.S3_FORCE_PATH_STYLE,
      credentials,
      maxAttempts: 3,
    });
    return new ObjectStore(config.S3_BUCKET, client);
  }

  async ensureBucket(): Promise<void> {
    try {
      await this.client.send(new HeadBucketCommand({ Bucket: this.bucket }));
    } catch (err) {
      if (!(err instanceof S3ServiceException) || err.$metadata.httpStatusCode !== 404) throw err;
      await this.client.send(new CreateBucketCommand({ Bucket: this.bucket }));
    }
  }

  async ping(): Promise<void> {
    await this.client.send(new HeadBucketCommand({ Bucket: this.bucket }));
  }

  async put(key: string, body: Buffer, contentType: string, metadata?: Record<string, string>): Promise<void> {
    await this.client.send(
      new PutObjectCommand({ Bucket: this.bucket, Key: key, Body: body, ContentType: contentType, Metadata: metadata }),
    );
  }

  /** Streams an object; undefined when it does not exist. */
  async get(key: string): Promise<{ body: Readable; contentType?: string; contentLength?: number } | undefined> {
    try {
      const out = await this.client.send(new GetObjectCommand({ Bucket: this.bucket, Key: key }));
      return { body: out.Body as Readable, contentType: out.ContentType, contentLength: out.ContentLength };
    } catch (err) {
      if (err instanceof S3ServiceException && err.name === 'NoSuchKey') return undefined;
      throw err;
    }
  }

  /** A time-limited GET URL for one object, for callers who fetch the image themselves. */
  presignedGetUrl(key: string, expiresInS: number): Promise<string> {
    return getSignedUrl(this.client, new GetObjectCommand({ Bucket: this.bucket, Key: key }), { expiresIn: expiresInS });
  }

  async getBuffer(key: string): Promise<Buffer | undefined> {
    const object = await this.get(key);
    if (!object) return undefined;
    const chunks: Buffer[] = [];
    for await (const chunk of object.body) chunks.push(chunk as Buffer);
    return Buffer.concat(chunks);
  }

  /** Objects under a prefix, in key order, at most `limit` of them (with their ETag and size). */
  async list(prefix: string, limit: number): Promise<{ key: string; etag: string; size: number }[]> {
    const found: { key: string; etag: string; size: number }[] = [];
    let token: string | undefined;
    do {
      const page = await this.client.send(
        new ListObjectsV2Command({ Bucket: this.bucket, Prefix: prefix, ContinuationToken: token, MaxKeys: Math.min(1000, limit - found.length) }),
      );
      for (const o of page.Contents ?? []) found.push({ key: o.Key!, etag: (o.ETag ?? '').replaceAll('"', ''), size: o.Size ?? 0 });
      token = page.IsTruncated ? page.NextContinuationToken : undefined;
    } while (token && found.length < limit);
    return found;
  }

  /** The object's ETag, or undefined when it does not exist. */
  async etag(key: string): Promise<string | undefined> {
    try {
      const out = await this.client.send(new HeadObjectCommand({ Bucket: this.bucket, Key: key }));
      return (out.ETag ?? '').replaceAll('"', '');
    } catch (err) {
      if (err instanceof S3ServiceException && (err.name === 'NotFound' || err.$metadata.httpStatusCode === 404)) return undefined;
      throw err;
    }
  }

  /** Deletes these objects (missing ones are no error), up to 1000 per request. */
  async deleteKeys(keys: string[]): Promise<void> {
    for (let i = 0; i < keys.length; i += 1000) {
      const out = await this.client.send(
        new DeleteObjectsCommand({ Bucket: this.bucket, Delete: { Objects: keys.slice(i, i + 1000).map((Key) => ({ Key })), Quiet: true } }),
      );
      if (out.Errors?.length) throw new Error(`could not delete ${out.Errors.length} objects: ${out.Errors[0].Code} ${out.Errors[0].Message}`);
    }
  }

  /** Deletes every object under a prefix; returns how many there were. */
  async deletePrefix(prefix: string): Promise<number> {
    let deleted = 0;
    for (;;) {
      const page = await this.list(prefix, 1000);
      if (page.length === 0) return deleted;
      await this.deleteKeys(page.map((o) => o.key));
      deleted += page.length;
    }
  }
}
