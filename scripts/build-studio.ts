/**
 * Builds the studio page (studio/) into dist/studio/, which the API serves at `/`: type-checks its
 * TypeScript, bundles it with esbuild into one script (no CDN, nothing inline, so the API's CSP needs
 * no 'unsafe-inline'), and copies the HTML and CSS beside it. The output is not committed; the
 * install, test and image builds run this (a second or two).
 */
import { build } from 'esbuild';
import { execFileSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { STUDIO_BUILD_DIR } from '../src/api/routes/studio';
import { isAlive } from './processes';

const ROOT = join(__dirname, '..');
const SOURCE = join(ROOT, 'studio');

async function main() {
  execFileSync(process.execPath, [join(dirname(require.resolve('typescript/package.json')), 'bin', 'tsc'), '-p', SOURCE], { stdio: 'inherit' });
  // Built beside the served copy and swapped in, so a deployment already serving it (a second
  // `npm start` rebuilds) is never left without its files.
  const building = `${STUDIO_BUILD_DIR}.building-${process.pid}`;
  mkdirSync(building, { recursive: true });
  await build({
    entryPoints: [join(SOURCE, 'src', 'main.ts')],
    outfile: join(building, 'app.js'),
    bundle: true,
    format: 'esm',
    target: 'es2022',
    minify: true,
    sourcemap: 'linked',
    logLevel: 'warning',
  });
  for (const file of ['index.html', 'styles.css']) copyFileSync(join(SOURCE, file), join(building, file));
  // Builds may run at once (test suites and `npm start`s side by side): one swaps at a time.
  await holdingLock(`${STUDIO_BUILD_DIR}.lock`, () => {
    const previous = `${STUDIO_BUILD_DIR}.previous-${process.pid}`;
    if (existsSync(STUDIO_BUILD_DIR)) renameSync(STUDIO_BUILD_DIR, previous);
    renameSync(building, STUDIO_BUILD_DIR);
    rmSync(previous, { recursive: true, force: true });
  });
  console.error(`[studio] built into ${STUDIO_BUILD_DIR}`);
}

/** Runs `swap` holding a lock directory (mkdir is atomic); one left by a process that died is taken over. */
async function holdingLock(lock: string, swap: () => void): Promise<void> {
  for (;;) {
    try {
      mkdirSync(lock);
      break;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
      if (abandoned(lock)) rmSync(lock, { recursive: true, force: true });
      else await new Promise((r) => setTimeout(r, 50));
    }
  }
  try {
    writeFileSync(join(lock, 'pid'), String(process.pid));
    swap();
  } finally {
    rmSync(lock, { recursive: true, force: true });
  }
}

/** A swap takes milliseconds: a lock whose holder has exited, or that is a minute old, was left behind. */
function abandoned(lock: string): boolean {
  try {
    const holder = Number(readFileSync(join(lock, 'pid'), 'utf8'));
    if (!Number.isInteger(holder) || holder <= 0) return false; // being written
    return !isAlive(holder) || Date.now() - statSync(lock).mtimeMs > 60_000;
  } catch {
    return false; // just taken (no pid yet) or just released: look again
  }
}

main().catch((err) => {
  console.error(err instanceof Error ? err.message : err);
  process.exit(1);
});
