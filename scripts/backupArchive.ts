/**
 * The backup archive as a file on disk: written private from its first byte (it holds the
 * deployment's secrets), and read back only when it holds nothing but regular files and folders.
 */
import { spawn, execFileSync } from 'node:child_process';
import { closeSync, fchmodSync, lstatSync, openSync, readdirSync } from 'node:fs';
import { join, relative } from 'node:path';

/** `dir`'s contents as a .tar.gz at `target`, a file made mode 600 before tar writes a byte into it. */
export async function writePrivateArchive(target: string, dir: string): Promise<void> {
  const fd = openSync(target, 'w', 0o600);
  try {
    fchmodSync(fd, 0o600); // an existing file keeps its mode through open(): make it private too
    await new Promise<void>((resolve, reject) => {
      const tar = spawn('tar', ['czf', '-', '-C', dir, '.'], { stdio: ['ignore', fd, 'pipe'] });
      let stderr = '';
      tar.stderr!.on('data', (d) => (stderr += d));
      tar.once('error', reject);
      tar.once('exit', (code) => (code === 0 ? resolve() : reject(new Error(`tar exited with ${code}: ${stderr.trim()}`))));
    });
  } finally {
    closeSync(fd);
  }
}

const notOurs = (file: string, what: string) => new Error(`${file} is not a backup this tool made: ${what}; nothing was restored`);

/**
 * A backup holds regular files and folders, nothing else: a link or device in an archive (made by
 * hand, or tampered with) could make the restore read or write outside its own tree — upload a
 * server file as an object, load it into Redis, take it as secrets.json. Checked on the listing
 * before anything is extracted (assertPlainTree checks the extracted tree again).
 */
export function assertOnlyFilesAndFolders(file: string) {
  const list = (...flags: string[]) =>
    execFileSync('tar', [...flags, '-zf', file, '--quoting-style=escape'], { encoding: 'utf8', maxBuffer: 1 << 30 }).split('\n').filter(Boolean);
  for (const line of list('-tv')) {
    // GNU tar's long listing starts with the entry's type: '-' a regular file, 'd' a folder.
    if (line[0] !== '-' && line[0] !== 'd') throw notOurs(file, `it holds a link or special file (${line.trim()})`);
  }
  for (const name of list('-t')) {
    if (name.startsWith('/') || name.split('/').includes('..')) throw notOurs(file, `its entry ${name} points outside the archive`);
  }
}

/** Every entry under `dir` is a regular file or a folder, looked at without following any link. */
export function assertPlainTree(dir: string, root = dir) {
  for (const entry of readdirSync(dir)) {
    const path = join(dir, entry);
    const st = lstatSync(path);
    if (st.isDirectory()) assertPlainTree(path, root);
    else if (!st.isFile()) throw new Error(`the backup holds ${relative(root, path)}, which is not a regular file; nothing was restored`);
  }
}
