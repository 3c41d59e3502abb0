/**
 * Builds the studio page (studio/) into dist/studio/, which the API serves at `/`: type-checks its
 * TypeScript, bundles it with esbuild into one script (no CDN, nothing inline, so the API's CSP needs
 * no 'unsafe-inline'), and copies the HTML and CSS beside it. The output is not committed; the
 * install, test and image builds run this (a second or two).
 */
import { build } from 'esbuild';
import { execFileSync } from 'node:child_process';
import { copyFileSync, mkdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { STUDIO_BUILD_DIR } from '../src/api/routes/studio';

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
  // Builds may run at once (test suites and `npm start`s side by side): one swaps at a time, under
  // an flock(1) lock, which the kernel releases when its holder exits, however it exits.
  const previous = `${STUDIO_BUILD_DIR}.previous-${process.pid}`;
  execFileSync('flock', [`${STUDIO_BUILD_DIR}.lock`, 'sh', '-c', 'if [ -e "$1" ]; then mv "$1" "$2"; fi && mv "$3" "$1" && rm -rf "$2"', 'swap', STUDIO_BUILD_DIR, previous, building]);
  console.error(`[studio] built into ${STUDIO_BUILD_DIR}`);
}

main().catch((err) => {
  console.error(err instanceof Error ? err.message : err);
  process.exit(1);
});
