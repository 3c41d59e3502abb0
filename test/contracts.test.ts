import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { contractSchemas } from '../scripts/contractSchemas';

const dir = join(__dirname, '..', 'contracts');

describe('contracts/', () => {
  const generated = contractSchemas();

  it('holds exactly the schemas generated from the zod contracts (run `npm run contracts` after changing them)', () => {
    const committed = readdirSync(dir).filter((f) => f.endsWith('.json')).sort();
    expect(committed).toEqual(Object.keys(generated).sort());
    for (const [name, text] of Object.entries(generated)) {
      expect({ name, text: readFileSync(join(dir, name), 'utf8') }).toEqual({ name, text });
    }
  });

  it('describes step payloads strictly, so a misspelt field is rejected on the Python side too', () => {
    const generate = JSON.parse(generated['generate.input.schema.json']);
    expect(generate.additionalProperties).toBe(false);
    expect(generate.required).toEqual(expect.arrayContaining(['jobId', 'prompt', 'seed', 'width', 'height', 'outputPrefix']));
    expect(generate.properties.width).toMatchObject({ multipleOf: 16, maximum: 4096 });
  });
});
