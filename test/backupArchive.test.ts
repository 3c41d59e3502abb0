/**
 * The backup archive on disk: private while it is written, and a restore that refuses any archive
 * holding something other than regular files and folders before it touches anything.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { assertOnlyFilesAndFolders, assertPlainTree, writePrivateArchive } from '../scripts/backupArchive';

const ROOT = join(__dirname, '..');

/** An archive with exactly these entries, made with Python's tarfile (it writes any entry type and name). */
function craft(dir: string, name: string, entries: { name: string; type: 'file' | 'dir' | 'symlink' | 'hardlink' | 'fifo'; target?: string }[]): string {
  const file = join(dir, `${name}.tar.gz`);
  const script = `
import io, json, sys, tarfile
kinds = {"file": tarfile.REGTYPE, "dir": tarfile.DIRTYPE, "symlink": tarfile.SYMTYPE, "hardlink": tarfile.LNKTYPE, "fifo": tarfile.FIFOTYPE}
with tarfile.open(sys.argv[1], "w:gz") as tar:
    for e in json.loads(sys.argv[2]):
        info = tarfile.TarInfo(e["name"])
        info.type = kinds[e["type"]]
        info.mode = 0o755 if e["type"] == "dir" else 0o644
        data = b""
        if e["type"] == "file":
            data = b'{"format": 1, "createdAt": "2026-01-01", "objects": 0, "objectBytes": 0}'
            info.size = len(data)
        if "target" in e:
            info.linkname = e["target"]
        tar.addfile(info, io.BytesIO(data) if data else None)
`;
  execFileSync('python3', ['-c', script, file, JSON.stringify(entries)]);
  return file;
}

const plain = [
  { name: './manifest.json', type: 'file' as const },
  { name: './objects', type: 'dir' as const },
  { name: './objects/bucket/team a/photo 1.png', type: 'file' as const },
  { name: './objects/bucket/ünïcode/x.png', type: 'file' as const },
  { name: './objects/empty', type: 'dir' as const },
];

describe('restoring refuses an archive that holds anything but regular files and folders', () => {
  let dir: string;
  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'apex-archives-'));
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  test.each([
    ['secrets.json as a link to a file outside', [{ name: './secrets.json', type: 'symlink', target: '/etc/hostname' }]],
    ['an objects folder linked outside', [{ name: './objects/bucket', type: 'symlink', target: '/etc' }]],
    ['a relative link climbing out', [{ name: './redis.rdb', type: 'symlink', target: '../../../../etc/hostname' }]],
    ['a hard link to a file outside', [{ name: './redis.rdb', type: 'hardlink', target: '/etc/hostname' }]],
    ['a named pipe', [{ name: './redis.rdb', type: 'fifo' }]],
    ['an entry climbing out by ..', [{ name: './objects/../../escaped.png', type: 'file' }]],
    ['an absolute entry', [{ name: '/tmp/apex-absolute-entry.png', type: 'file' }]],
  ] as const)('refuses %s', (name, extra) => {
    const file = craft(dir, name.replace(/\W+/g, '-'), [...plain, ...extra]);
    expect(() => assertOnlyFilesAndFolders(file)).toThrow(/is not a backup this tool made: .*nothing was restored/);
  });

  test.each([
    ['files and nested folders', plain],
    ['files only', [{ name: 'manifest.json', type: 'file' as const }]],
    ['a folder whose name holds dots', [...plain, { name: './objects/bucket/v1.2..3/a.png', type: 'file' as const }]],
  ])('accepts %s', (name, entries) => {
    const file = craft(dir, `ok-${name.replace(/\W+/g, '-')}`, entries);
    expect(() => assertOnlyFilesAndFolders(file)).not.toThrow();
    const into = mkdtempSync(join(dir, 'tree-'));
    execFileSync('tar', ['xzf', file, '-C', into]);
    expect(() => assertPlainTree(into)).not.toThrow();
  });

  test('the extracted tree is checked again without following links', () => {
    const tree = mkdtempSync(join(dir, 'linked-'));
    mkdirSync(join(tree, 'objects'));
    writeFileSync(join(tree, 'manifest.json'), '{}');
    execFileSync('ln', ['-s', '/etc/hostname', join(tree, 'objects', 'leak.png')]);
    expect(() => assertPlainTree(tree)).toThrow(/objects\/leak\.png, which is not a regular file/);
  });

  test('npm run restore --force refuses a linked archive and leaves the deployment there as it was', () => {
    const home = mkdtempSync(join(dir, 'home-'));
    mkdirSync(join(home, 'data'));
    writeFileSync(join(home, 'secrets.json'), '{"kept": true}', { mode: 0o600 });
    const file = craft(dir, 'restore-linked', [...plain, { name: './secrets.json', type: 'symlink', target: '/etc/hostname' }]);
    const result = spawnSync('npm', ['run', '--silent', 'restore', '--', file, '--force'], { cwd: ROOT, env: { ...process.env, APEX_HOME: home }, encoding: 'utf8' });
    expect(result.status).toBe(1);
    expect(result.stderr).toMatch(/is not a backup this tool made: it holds a link or special file/);
    expect(readFileSync(join(home, 'secrets.json'), 'utf8')).toBe('{"kept": true}');
    expect(readdirSync(dir).some((e) => e.startsWith(`${home.split('/').pop()}.before-restore`))).toBe(false);
    expect(existsSync(join(home, 'data', 'redis'))).toBe(false);
  });
});

describe('a backup archive is private while it is written', () => {
  test('its mode is 600 at every look while tar writes it, and after', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'apex-private-'));
    try {
      const content = join(dir, 'content');
      mkdirSync(content);
      // Enough incompressible bytes that tar writes for a while.
      for (let i = 0; i < 8; i++) writeFileSync(join(content, `part${i}`), randomBytes(4 << 20));
      const target = join(dir, 'backup.tar.gz');
      writeFileSync(target, 'an older file of the same name', { mode: 0o644 });
      const seen = new Set<number>();
      const watcher = setInterval(() => {
        if (existsSync(target)) seen.add(statSync(target).mode & 0o777);
      }, 2);
      await writePrivateArchive(target, content);
      clearInterval(watcher);
      seen.add(statSync(target).mode & 0o777);
      expect([...seen]).toEqual([0o600]);
      expect(statSync(target).size).toBeGreaterThan(30 << 20);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
