/**
 * package-lock.json is complete for every platform, so that `npm ci` (what a new user or a CI system
 * runs by habit) takes it: npm refuses a lockfile in which a package's dependency has no entry, and
 * a lockfile written on one machine used to lack the other platforms' optional binaries (@swc/core-*,
 * sharp's @img/*, @msgpackr-extract/*). Checked by reading the lockfile, without a network.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';

type LockEntry = {
  version?: string;
  dependencies?: Record<string, string>;
  optionalDependencies?: Record<string, string>;
  devDependencies?: Record<string, string>;
  peerDependencies?: Record<string, string>;
  peerDependenciesMeta?: Record<string, { optional?: boolean }>;
  link?: boolean;
};
type Lockfile = { lockfileVersion: number; packages: Record<string, LockEntry> };

const ROOT = join(__dirname, '..');
const readJson = (file: string) => JSON.parse(readFileSync(join(ROOT, file), 'utf8'));

/**
 * Where Node (and npm) would find `name` for the package installed at `from`: its own
 * node_modules first, then each enclosing one up to the top. Undefined when the lockfile has none.
 */
function resolve(packages: Lockfile['packages'], from: string, name: string): string | undefined {
  let dir = from;
  for (;;) {
    const candidate = `${dir ? `${dir}/` : ''}node_modules/${name}`;
    if (packages[candidate]) return candidate;
    if (!dir) return undefined;
    const up = dir.lastIndexOf('/node_modules/');
    dir = up === -1 ? '' : dir.slice(0, up);
  }
}

/**
 * Every `dependency (of package)` the lockfile declares but holds no entry for: dependencies,
 * optional ones, the root's dev ones, and peers unless marked optional (npm installs those too).
 */
export function missingEntries(lock: Lockfile): string[] {
  const missing: string[] = [];
  for (const [path, entry] of Object.entries(lock.packages)) {
    if (entry.link) continue;
    const peers = Object.keys(entry.peerDependencies ?? {}).filter((name) => !entry.peerDependenciesMeta?.[name]?.optional);
    const wanted = { ...entry.dependencies, ...entry.optionalDependencies, ...(path === '' ? entry.devDependencies : {}), ...Object.fromEntries(peers.map((name) => [name, ''])) };
    for (const name of Object.keys(wanted)) {
      if (!resolve(lock.packages, path, name)) missing.push(`${name} (of ${path || 'package.json'})`);
    }
  }
  return missing;
}

describe('package-lock.json', () => {
  const lock: Lockfile = readJson('package-lock.json');
  const manifest = readJson('package.json');

  it('holds an entry for every dependency any package declares, optional platform binaries included', () => {
    expect(missingEntries(lock)).toEqual([]);
  });

  it("holds every platform's binary of the packages that ship them", () => {
    const names = Object.keys(lock.packages).map((p) => p.slice(p.lastIndexOf('node_modules/') + 'node_modules/'.length));
    for (const binary of ['@swc/core-darwin-arm64', '@swc/core-win32-x64-msvc', '@swc/core-linux-arm64-musl', '@img/sharp-darwin-arm64', '@img/sharp-win32-x64', '@esbuild/darwin-arm64', '@msgpackr-extract/msgpackr-extract-darwin-arm64']) {
      expect([binary, names.includes(binary)]).toEqual([binary, true]);
    }
  });

  it("matches package.json's dependencies, as npm ci requires", () => {
    const root = lock.packages[''];
    expect(root.dependencies).toEqual(manifest.dependencies);
    expect(root.devDependencies).toEqual(manifest.devDependencies);
  });

  // The check itself, both ways: a lockfile with an optional binary's entry removed is caught.
  it.each([
    ['an optional platform binary', 'node_modules/@swc/core-darwin-arm64', '@swc/core-darwin-arm64 (of node_modules/@swc/core)'],
    ['a required dependency', 'node_modules/zod', 'zod (of package.json)'],
    ['a required peer dependency', 'node_modules/@bull-board/ui', '@bull-board/ui (of node_modules/@bull-board/api)'],
  ])('reports %s whose entry is missing', (_what, removed, reported) => {
    const { [removed]: _gone, ...rest } = lock.packages;
    expect(missingEntries({ ...lock, packages: rest })).toContain(reported);
  });

  it('does not ask for a peer marked optional (bullmq works without pg, which it names as one)', () => {
    expect(lock.packages['node_modules/bullmq'].peerDependenciesMeta?.pg?.optional).toBe(true);
    expect(lock.packages['node_modules/pg']).toBeUndefined();
    expect(missingEntries(lock)).not.toContain('pg (of node_modules/bullmq)');
  });
});
