import { mkdir, open, readFile } from 'node:fs/promises';
import { dirname } from 'node:path';
import { logger } from '../../logger';
import { TENANT_PATTERN } from '../../store/apiKeyModel';
import type { ErasureKind, ErasureTarget } from './erasureTarget';

/**
 * The erasure log (ERASURE_LOG): one JSON line `{kind, id, tenant, at}` per erasure, ids only.
 * It lives outside the data a backup captures, so after a restore of an older backup the
 * orchestrators replay it (erasureReplay.ts) and erase again what the backup brought back.
 * Each line is fsync'd before the erasure counts as done; the file is private (mode 600).
 */
export type ErasureLogEntry = ErasureTarget<ErasureKind> & { at: string };

const KINDS: readonly ErasureKind[] = ['job', 'generation', 'batch', 'identity', 'tenant'];

export async function appendErasures(path: string | undefined, targets: ErasureTarget<ErasureKind>[], at: Date): Promise<void> {
  if (!path || targets.length === 0) return;
  await mkdir(dirname(path), { recursive: true, mode: 0o700 });
  const file = await open(path, 'a', 0o600);
  try {
    await file.chmod(0o600); // a file created by hand keeps no wider mode
    await file.appendFile(targets.map((t) => JSON.stringify({ kind: t.kind, id: t.id, tenant: t.tenant, at: at.toISOString() })).join('\n') + '\n');
    await file.sync();
  } finally {
    await file.close();
  }
}

/** A resource's id is a 24-hex ObjectId (or an id derived to the same shape, ids.ts), a tenant's a tenant name. */
const validId = (entry: ErasureLogEntry) => (entry.kind === 'tenant' ? TENANT_PATTERN : /^[0-9a-f]{24}$/).test(entry.id);

/**
 * Every well-formed line of the log (none when there is no log). A line that is not (a torn last
 * line after a crash mid-write, a hand-edited one naming no valid id, which would make the
 * replay's queries throw and replay nothing) is skipped, and its number logged.
 */
export async function readErasureLog(path: string | undefined): Promise<ErasureLogEntry[]> {
  if (!path) return [];
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw err;
  }
  const entries: ErasureLogEntry[] = [];
  for (const [index, line] of text.split('\n').entries()) {
    if (!line.trim()) continue;
    try {
      const entry = JSON.parse(line) as ErasureLogEntry;
      if (KINDS.includes(entry.kind) && typeof entry.id === 'string' && validId(entry) && typeof entry.tenant === 'string' && !Number.isNaN(Date.parse(entry.at))) {
        entries.push(entry);
        continue;
      }
    } catch {
      // reported below
    }
    logger.warn('erasure log line skipped', { line: index + 1 });
  }
  return entries;
}
