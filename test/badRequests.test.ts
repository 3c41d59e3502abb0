import request from 'supertest';
import sharp from 'sharp';
import { JobModel } from '../src/store/jobModel';
import { ListObjectsV2Command } from '@aws-sdk/client-s3';
import { referencePhoto } from './support/fixtures';
import { startStack, type Stack } from './support/stack';

/** A PNG whose header claims 30000x30000 pixels: tiny on the wire, 900 MP once decoded. */
async function decompressionBomb(): Promise<Buffer> {
  const width = 30000;
  const height = 30000;
  const small = await sharp({ create: { width: 64, height: 64, channels: 3, background: '#000' } }).png().toBuffer();
  // Rewrite the IHDR dimensions (and its CRC) of a valid PNG.
  const png = Buffer.from(small);
  png.writeUInt32BE(width, 16);
  png.writeUInt32BE(height, 20);
  const { crc32 } = await import('node:zlib');
  png.writeUInt32BE(crc32(png.subarray(12, 29)) >>> 0, 29);
  return png;
}

type Case = {
  name: string;
  send: (stack: Stack) => Promise<request.Response>;
  status: number;
  field?: string;
  code?: string;
  /** What the message must tell the caller to send instead. */
  says?: RegExp;
};

describe('bad requests', () => {
  let stack: Stack;
  let photo: Buffer;
  beforeAll(async () => {
    stack = await startStack({ config: { MAX_UPLOAD_BYTES: String(256 * 1024), MAX_INPUT_PIXELS: String(4_000_000) }, gpu: false, orchestrator: false });
    photo = await referencePhoto();
  });
  afterAll(() => stack.close());

  const post = (s: Stack) => request(s.app).post('/jobs');
  const params = JSON.stringify({ purpose: 'corporate_headshot' });

  const cases: Case[] = [
    { name: 'missing file', send: (s) => post(s).field('parameters', params), status: 400, field: 'image_file', code: 'missing_file', says: /send the photo .* as image_file/ },
    { name: 'non-image bytes', send: (s) => post(s).attach('image_file', Buffer.from('%PDF-1.7 not a photo'), 'photo.jpg'), status: 415, field: 'image_file' },
    { name: 'truncated JPEG', send: (s) => post(s).attach('image_file', photo.subarray(0, Math.floor(photo.length / 2)), 'cut.jpg'), status: 400, field: 'image_file', code: 'unreadable_image' },
    { name: 'zero-byte file', send: (s) => post(s).attach('image_file', Buffer.alloc(0), 'empty.jpg'), status: 400, field: 'image_file' },
    { name: 'oversized file', send: (s) => post(s).attach('image_file', Buffer.concat([photo, Buffer.alloc(300 * 1024)]), 'big.jpg'), status: 413, field: 'image_file', code: 'file_too_large', says: /larger than 262144 bytes/ },
    { name: 'decompression bomb', send: async (s) => post(s).attach('image_file', await decompressionBomb(), 'bomb.png'), status: 413, field: 'image_file', code: 'image_too_large' },
    { name: 'bad JSON in parameters', send: (s) => post(s).attach('image_file', photo, 'a.jpg').field('parameters', '{"purpose": '), status: 400, field: 'parameters', code: 'invalid_json' },
    { name: 'unknown enum value', send: (s) => post(s).attach('image_file', photo, 'a.jpg').field('parameters', JSON.stringify({ vibe: 'sleepy' })), status: 400, field: 'parameters.vibe' },
    { name: 'extra parameter', send: (s) => post(s).attach('image_file', photo, 'a.jpg').field('parameters', JSON.stringify({ mood: 'happy' })), status: 400, field: 'parameters.mood' },
    { name: 'wrong type for a parameter', send: (s) => post(s).attach('image_file', photo, 'a.jpg').field('parameters', JSON.stringify({ resolution: 4 })), status: 400, field: 'parameters.resolution' },
    { name: 'parameters not an object', send: (s) => post(s).attach('image_file', photo, 'a.jpg').field('parameters', '[1,2]'), status: 400, field: 'parameters' },
    { name: 'wrong file field name', send: (s) => post(s).attach('image', photo, 'a.jpg'), status: 400, field: 'image', code: 'unexpected_field', says: /send the photo as image_file/ },
    { name: 'five photos', send: (s) => [1, 2, 3, 4, 5].reduce((r, i) => r.attach('image_file', photo, `${i}.jpg`), post(s)), status: 400, field: 'image_file', code: 'too_many_files', says: /image_file\[4\].*1 to 4 photos/ },
    { name: 'unknown form field', send: (s) => post(s).attach('image_file', photo, 'a.jpg').field('params', params), status: 400, field: 'params', code: 'unknown_field', says: /image_file, parameters, candidates, webhook_url, webhook_events, loras, hf_token/ },
    {
      // Found by the API fuzzer: a control character in a part's header made busboy throw.
      name: 'malformed multipart part header',
      send: (s) => post(s).set('Content-Type', 'multipart/form-data; boundary=XYZ').send('--XYZ\r\nContent-Disposition: form-data; name="\x12"\r\n\r\n{}\r\n--XYZ--\r\n'),
      status: 400,
      code: 'malformed_multipart',
    },
    { name: 'JSON body instead of multipart', send: (s) => post(s).send({ parameters: {} }), status: 415, field: 'image_file', says: /multipart\/form-data with 1 to 4 photos .* as an image_file part/ },
    { name: 'image too small to hold a face', send: async (s) => post(s).attach('image_file', await referencePhoto({ width: 40, height: 40 }), 'tiny.jpg'), status: 400, field: 'image_file', code: 'image_too_small' },
    { name: 'unknown job id', send: (s) => request(s.app).get('/jobs/0123456789abcdef01234567'), status: 404, field: 'id', code: 'job_not_found' },
    { name: 'malformed job id', send: (s) => request(s.app).get('/jobs/not-an-id'), status: 400, field: 'id', code: 'invalid_id' },
    { name: 'malformed id on result', send: (s) => request(s.app).get('/jobs/$where/result'), status: 400, field: 'id' },
    { name: 'unknown id on report', send: (s) => request(s.app).get('/jobs/0123456789abcdef01234567/report'), status: 404, field: 'id' },
  ];

  it.each(cases)('$name -> $status naming $field', async ({ send, status, field, code, says }) => {
    const res = await send(stack);
    expect(res.status).toBe(status);
    expect(res.headers['content-type']).toMatch(/application\/json/);
    expect(res.body.error).toMatchObject({ ...(field ? { field } : {}), ...(code ? { code } : {}) });
    if (!field) expect(res.body.error.field).toBeUndefined();
    expect(res.body.error.message).toEqual(expect.any(String));
    if (says) expect(res.body.error.message).toMatch(says);
  });

  it('stored and enqueued nothing for any of them', async () => {
    expect(await JobModel.countDocuments()).toBe(0);
    const objects = await stack.objects.client.send(new ListObjectsV2Command({ Bucket: stack.objects.bucket }));
    expect(objects.KeyCount ?? 0).toBe(0);
    const counts = await stack.portraitQueue.getJobCounts();
    expect(Object.values(counts).reduce((a, b) => a + b, 0)).toBe(0);
  });
});
