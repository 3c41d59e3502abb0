/**
 * U+0000 in any text field is refused at the door with a 400 naming the field: PostgreSQL (under
 * FerretDB) cannot store it, so letting it through fails the job later instead of the request now.
 */
import request from 'supertest';
import { z } from 'zod';
import { parseOr400 } from '../src/api/validation';
import { GenerationModel } from '../src/store/generationModel';
import { startStack, type Stack } from './support/stack';

describe('the NUL character', () => {
  it.each([[{ prompt: 'a\\u0000b' }], [{ prompt: 'Porträt, 肖像, 🙂' }], [{ n: 0, ok: true, none: null, list: [] }], ['plain'], [42]])(
    'is not found in %j',
    (value) => {
      expect(() => parseOr400(z.unknown(), value, 'invalid_thing')).not.toThrow();
    },
  );

  describe('at the API', () => {
    let stack: Stack;
    beforeAll(async () => {
      stack = await startStack({ gpu: false });
    });
    afterAll(() => stack.close());

    const refused: [string, string, object, string][] = [
      ['/generations', 'a prompt', { prompt: 'a portrait\u0000' }, 'prompt'],
      ['/generations', 'a negative prompt', { prompt: 'x', negative_prompt: '\u0000' }, 'negative_prompt'],
      ['/batches', 'a batch request', { target: { type: 'generations', requests: [{ prompt: 'x' }, { prompt: 'y\u0000' }] } }, 'target.requests.1.prompt'],
      ['/schedules', 'a schedule name', { name: 'night\u0000ly', cron: '0 3 * * *', target: { type: 'portraits_from_prefix', prefix: 'nightly/' } }, 'name'],
      ['/generations', "a LoRA's repo, not the first", { prompt: 'x', loras: [{ repo: 'a/b' }, { repo: 'c/\u0000' }] }, 'loras.1.repo'],
      ['/batches', "a batch request's negative prompt", { target: { type: 'generations', requests: [{ prompt: 'ok' }, { prompt: 'x', negative_prompt: '\u0000' }] } }, 'target.requests.1.negative_prompt'],
      ['/generations', 'a key', { prompt: 'x', 'we\u0000ird': 1 }, 'we\u0000ird'],
    ];
    it.each(refused)('POST %s refuses U+0000 in %s, naming the field', async (path, _what, body, field) => {
      const res = await request(stack.app).post(path).send(body);
      expect(res.status).toBe(400);
      expect(res.body.error.field).toBe(field);
      expect(res.body.error.message).toContain('NUL character (U+0000)');
    });

    it.each([['Porträt im Büro, 肖像, 🙂'], ['a literal \\u0000 escape, as text'], ['tabs\tand\nnewlines']])('POST /generations accepts and stores %p', async (prompt) => {
      const res = await request(stack.app).post('/generations').send({ prompt });
      expect(res.status).toBe(202);
      const stored = await GenerationModel.findById(res.body.generation_id).lean<{ request: { prompt: string } }>();
      expect(stored?.request.prompt).toBe(prompt);
    });
  });
});
