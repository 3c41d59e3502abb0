import { spawn } from 'node:child_process';
import { existsSync, readdirSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { STUDIO_BUILD_DIR } from '../../src/api/routes/studio';

const ROOT = join(__dirname, '..', '..');
const LOCK = `${STUDIO_BUILD_DIR}.lock`;

/** `scripts/build-studio.ts` as `npm start` and the test suites run it: its pid, and its exit code and output once it ends. */
function buildStudio() {
  const child = spawn(process.execPath, ['--import', 'tsx', 'scripts/build-studio.ts'], { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  child.stdout.on('data', (d) => (output += d));
  child.stderr.on('data', (d) => (output += d));
  const ended = new Promise<{ code: number | null; output: string }>((resolve) => child.once('exit', (code) => resolve({ code, output })));
  return { pid: child.pid!, ended };
}

/** What a build leaves beside dist/studio (its own `.building-<pid>` and `.previous-<pid>`); other suites may be building too. */
const leftoversOf = (pid: number) => readdirSync(dirname(STUDIO_BUILD_DIR)).filter((name) => name.startsWith(`${basename(STUDIO_BUILD_DIR)}.`) && name.endsWith(`-${pid}`));

/** Builds run side by side (test suites, `npm start`s), so they swap their output in under a lock. */
describe('building the studio page while other builds run', () => {
  jest.setTimeout(180_000);

  it('succeeds for every build side by side and leaves the page whole', async () => {
    const builds = [buildStudio(), buildStudio(), buildStudio()];
    for (const build of builds) expect(await build.ended).toEqual({ code: 0, output: expect.stringContaining('[studio] built into') });
    for (const file of ['app.js', 'index.html', 'styles.css']) expect(existsSync(join(STUDIO_BUILD_DIR, file))).toBe(true);
    for (const build of builds) expect(leftoversOf(build.pid)).toEqual([]);
  });

  it('waits while another build holds the swap lock, and goes on once that holder dies', async () => {
    // A stand-in for a build at its swap: holds the same flock(1) lock until it is killed.
    // (-o: the lock stays with flock itself, so killing it releases the lock.)
    const holder = spawn('flock', ['-o', LOCK, 'sleep', '600'], { stdio: 'ignore', detached: true });
    for (const until = Date.now() + 10_000; !(await heldByAnother()); await new Promise((r) => setTimeout(r, 50))) {
      if (Date.now() > until) throw new Error('the stand-in never took the lock');
    }
    const waiting = buildStudio();
    let finished = false;
    void waiting.ended.then(() => (finished = true));
    // Once its files are built beside the page (styles.css is copied last), it only waits for the lock.
    const ready = () => existsSync(join(`${STUDIO_BUILD_DIR}.building-${waiting.pid}`, 'styles.css'));
    for (const until = Date.now() + 120_000; !ready() && !finished; await new Promise((r) => setTimeout(r, 100))) {
      if (Date.now() > until) throw new Error('the build never got to its swap');
    }
    await new Promise((r) => setTimeout(r, 1000));
    expect(finished).toBe(false);
    process.kill(-holder.pid!, 'SIGKILL'); // flock and its sleep
    expect(await waiting.ended).toMatchObject({ code: 0 });
    expect(leftoversOf(waiting.pid)).toEqual([]);
  });
});

/** Whether someone holds the swap lock now (flock -n fails at once when it is taken). */
function heldByAnother(): Promise<boolean> {
  return new Promise((resolve) => spawn('flock', ['-n', LOCK, 'true']).once('exit', (code) => resolve(code !== 0)));
}
