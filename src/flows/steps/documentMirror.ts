import { logger } from '../../logger';

type Write = () => Promise<unknown>;
type Entry = { writing?: Promise<void>; next?: Write; timer?: NodeJS.Timeout; startedAt: number };

/**
 * Writes workflow documents (MongoDB) behind the transitions they mirror, coalesced per document:
 * one write per document at a time, at most one every `intervalMs`, and a transition arriving in
 * between replaces the one waiting (only the newest state is worth writing). A job whose steps take
 * seconds gets every transition written at once; a burst of transitions costs one write, and
 * under load the writes thin out instead of queueing up in front of the hand-offs (GET /jobs/:id
 * reads the live state meanwhile: portrait/liveProgress.ts). Each write carries its own guard (a
 * revision, or a status it only moves forward from), so one arriving late — from here or from a
 * process replaying the job — never takes a document backwards.
 */
export class DocumentMirror {
  private readonly documents = new Map<string, Entry>();

  constructor(private readonly intervalMs = 2000) {}

  /** Writes soon, not waited for: a failed write is logged, the next transition's write carries the state. */
  behind(id: string, write: Write): void {
    let entry = this.documents.get(id);
    if (!entry) this.documents.set(id, (entry = { startedAt: 0 }));
    entry.next = write;
    if (!entry.writing && !entry.timer) this.start(id, entry);
  }

  /** Writes now and waits for it (a final status): after the write in flight, instead of the one waiting. */
  async now(id: string, write: Write): Promise<void> {
    const entry = this.documents.get(id);
    if (entry) {
      this.forget(id, entry);
      await entry.writing;
    }
    await write();
  }

  /** Writes everything waiting now and waits for it (a process shutting down). */
  async drain(): Promise<void> {
    while (this.documents.size > 0) {
      for (const [id, entry] of this.documents) {
        if (entry.next && !entry.writing) this.start(id, entry);
        else if (!entry.writing) this.forget(id, entry);
      }
      await Promise.all([...this.documents.values()].map((entry) => entry.writing));
    }
  }

  private start(id: string, entry: Entry): void {
    clearTimeout(entry.timer);
    entry.timer = undefined;
    const write = entry.next!;
    entry.next = undefined;
    entry.startedAt = Date.now();
    entry.writing = write()
      .then(
        () => undefined,
        (err) => void logger.warn('document write failed; the next transition writes it again', { id, error: String(err) }),
      )
      .finally(() => {
        entry.writing = undefined;
        if (this.documents.get(id) !== entry) return;
        // The next write, or forgetting the document, waits out the interval since this one started.
        entry.timer = setTimeout(() => (entry.next ? this.start(id, entry) : this.forget(id, entry)), entry.startedAt + this.intervalMs - Date.now());
        entry.timer.unref();
      });
  }

  private forget(id: string, entry: Entry): void {
    clearTimeout(entry.timer);
    entry.next = undefined;
    if (this.documents.get(id) === entry) this.documents.delete(id);
  }
}
