/**
 * Bodies the API cannot take get a 4xx that names the problem, never a 500: JSON nested deeper than
 * MAX_JSON_DEPTH (a walk over it used to overflow the stack), a charset other than UTF-8 and a
 * Content-Encoding the JSON parser does not decode.
 */
import { gzipSync, deflateSync, brotliCompressSync } from 'node:zlib';
import request from 'supertest';
import { z } from 'zod';
import { MAX_JSON_DEPTH, parseOr400 } from '../src/api/validation';
import { ApiError } from '../src/api/errors';
import { referencePhoto } from './support/fixtures';
import { startStack, type Stack } from './support/stack';

/** `depth` arrays inside each other: `[[[...]]]`. */
const nestedArrays = (depth: number) => '['.repeat(depth) + ']'.repeat(depth);
/** `depth` objects inside each other (the outermost counted): `{"a":{"a":{}}}`. */
const nestedObjects = (depth: number): unknown => (depth === 1 ? {} : { a: nestedObjects(depth - 1) });

const GENERATION = { prompt: 'a portrait in soft light', width: 512, height: 512, steps: 4 };
const DEEPEST_VALID_BATCH = {
  target: { type: 'generations', requests: [{ prompt: 'x', width: 512, height: 512, loras: [{ repo: 'owner/style', scale: 0.8 }] }] },
};

describe('malformed request bodies', () => {
  let stack: Stack;
  let photo: Buffer;
  beforeAll(async () => {
    stack = await startStack({ gpu: false, orchestrator: false });
    photo = await referencePhoto();
  });
  afterAll(() => stack.close());

  const postJson = (path: string, body: string, headers: Record<string, string> = {}) =>
    request(stack.app).post(path).set({ 'Content-Type': 'application/json', ...headers }).send(body);
  const expectError = (res: request.Response, status: number, code: string, field: string, says: RegExp) => {
    expect({ status: res.status, code: res.body.error?.code, field: res.body.error?.field }).toEqual({ status, code, field });
    expect(res.body.error.message).toMatch(says);
  };

  describe('nesting', () => {
    const deep: [string, string, string, string][] = [
      ['/generations', 'a field nested 20,000 deep', JSON.stringify({ ...GENERATION, prompt: '@' }).replace('"@"', nestedArrays(20_000)), 'prompt'],
      ['/generations', 'an unknown field nested 20,000 deep', JSON.stringify({ ...GENERATION, extra: '@' }).replace('"@"', nestedArrays(20_000)), 'extra'],
      ['/generations', 'a body that is arrays 30,000 deep', nestedArrays(30_000), 'body'],
      ['/generations', `a field one level past the bound (${MAX_JSON_DEPTH + 1} with the body)`, JSON.stringify({ ...GENERATION, prompt: nestedObjects(MAX_JSON_DEPTH) }), 'prompt'],
      ['/batches', 'a batch nested 20,000 deep', JSON.stringify({ target: '@' }).replace('"@"', nestedArrays(20_000)), 'target'],
      ['/schedules', 'a schedule nested 20,000 deep', JSON.stringify({ name: 'n', cron: '0 3 * * *', target: '@' }).replace('"@"', nestedArrays(20_000)), 'target'],
    ];
    const codes: Record<string, string> = { '/generations': 'invalid_generation', '/batches': 'invalid_batch', '/schedules': 'invalid_schedule' };
    it.each(deep)('POST %s refuses %s with 400 naming the field', async (path, _what, body, field) => {
      expectError(await postJson(path, body), 400, codes[path], field, new RegExp(`nested deeper than ${MAX_JSON_DEPTH} levels`));
    });

    // A form field holds at most 16 KiB. (Not `parameters`: its fields are all enums, so any nested
    // value is refused by its type, unwalked; the nesting bound never applies there.)
    it('POST /jobs refuses loras nested 5,000 deep with 400 naming loras', async () => {
      const res = await request(stack.app).post('/jobs').attach('image_file', photo, 'me.jpg').field('loras', nestedArrays(5_000));
      expectError(res, 400, 'invalid_loras', 'loras', /nested deeper than/);
    });

    it(`takes values nested up to ${MAX_JSON_DEPTH} levels, the body counted, and refuses one more`, () => {
      const anything = z.unknown();
      expect(() => parseOr400(anything, nestedObjects(MAX_JSON_DEPTH), 'invalid_thing')).not.toThrow();
      expect(() => parseOr400(anything, JSON.parse(nestedArrays(MAX_JSON_DEPTH)), 'invalid_thing')).not.toThrow();
      expect(() => parseOr400(anything, nestedObjects(MAX_JSON_DEPTH + 1), 'invalid_thing')).toThrow(ApiError);
      expect(() => parseOr400(anything, JSON.parse(nestedArrays(MAX_JSON_DEPTH + 1)), 'invalid_thing')).toThrow(ApiError);
    });

    it('accepts the most deeply nested request there is: a batch of generations with LoRAs', async () => {
      const res = await postJson('/batches', JSON.stringify(DEEPEST_VALID_BATCH));
      expect(res.status).toBe(202);
    });

    it('still names a NUL character inside a deep but allowed value', async () => {
      const body = { ...GENERATION, loras: [{ repo: 'a/b\u0000', scale: 1 }] };
      expectError(await postJson('/generations', JSON.stringify(body)), 400, 'invalid_generation', 'loras.0.repo', /NUL/);
    });
  });

  describe('encodings', () => {
    const body = JSON.stringify(GENERATION);
    const refused: [string, Record<string, string>, number, string, string][] = [
      ['charset=latin1', { 'Content-Type': 'application/json; charset=latin1' }, 415, 'unsupported_charset', 'content-type'],
      ['charset=iso-8859-1', { 'Content-Type': 'application/json; charset=iso-8859-1' }, 415, 'unsupported_charset', 'content-type'],
      ['charset=nonsense', { 'Content-Type': 'application/json; charset=nonsense' }, 415, 'unsupported_charset', 'content-type'],
      ['Content-Encoding: compress', { 'Content-Encoding': 'compress' }, 415, 'unsupported_content_encoding', 'content-encoding'],
      ['Content-Encoding: x-gzip', { 'Content-Encoding': 'x-gzip' }, 415, 'unsupported_content_encoding', 'content-encoding'],
      ['Content-Encoding: exi', { 'Content-Encoding': 'exi' }, 415, 'unsupported_content_encoding', 'content-encoding'],
    ];
    for (const path of ['/generations', '/batches', '/schedules']) {
      it.each(refused)(`POST ${path} refuses %s with a 4xx naming the header`, async (_what, headers, status, code, field) => {
        const res = await postJson(path, body, headers);
        expectError(res, status, code, field, field === 'content-type' ? /charset .* is not supported: send JSON as UTF-8/ : /Content-Encoding .* is not supported/);
      });
    }

    it('answers 400 to a body that claims gzip but is not', async () => {
      const res = await postJson('/generations', body, { 'Content-Encoding': 'gzip' });
      expect([res.status, res.body.error?.code]).toEqual([400, 'malformed_request']);
    });

    const accepted: [string, Record<string, string>, Buffer | string][] = [
      ['no charset', {}, body],
      ['charset=utf-8', { 'Content-Type': 'application/json; charset=utf-8' }, body],
      ['charset=UTF-8', { 'Content-Type': 'application/json; charset=UTF-8' }, body],
      ['Content-Encoding: identity', { 'Content-Encoding': 'identity' }, body],
      ['Content-Encoding: gzip', { 'Content-Encoding': 'gzip' }, gzipSync(body)],
      ['Content-Encoding: deflate', { 'Content-Encoding': 'deflate' }, deflateSync(body)],
      ['Content-Encoding: br', { 'Content-Encoding': 'br' }, brotliCompressSync(body)],
    ];
    it.each(accepted)('POST /generations takes %s', async (_what, headers, payload) => {
      // Sent as they are: superagent would turn a Buffer into JSON of its bytes.
      const res = await request(stack.app).post('/generations').set({ 'Content-Type': 'application/json', ...headers }).serialize((b) => b).send(payload);
      expect([res.status, res.body.request?.prompt]).toEqual([202, GENERATION.prompt]);
    });
  });
});
