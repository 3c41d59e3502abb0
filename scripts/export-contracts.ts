/** Writes contracts/ from the TypeScript definitions (npm run contracts); see contractSchemas.ts. */
import { mkdirSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { contractSchemas } from './contractSchemas';

const dir = join(__dirname, '..', 'contracts');
mkdirSync(dir, { recursive: true });
for (const old of readdirSync(dir).filter((f) => f.endsWith('.json'))) rmSync(join(dir, old));
const files = contractSchemas();
for (const [name, text] of Object.entries(files)) writeFileSync(join(dir, name), text);
process.stdout.write(`wrote ${Object.keys(files).length} files to contracts/\n`);
