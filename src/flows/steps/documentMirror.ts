import { logger } from '../../logger';

type Write = () => Promise<unknown>;
type Entry = { writing?: Promise<void>; next?: Write; timer?: NodeJS.Timeout; startedAt: number };

/**
 * Writes workflow documents (MongoDB) behind the transitions they mirror, coalesced per document:
 * a transition's write waits up to `intervalMs` (after the document's previous write started, or
 * after it was asked for), one write per document at a time, and a newer transition replaces the
 * one waiting (only the newest state is worth writing). So a running job's document trails its
 * state by about a second at most, a job that ends within the interval is written once (its final
 * status, `now`), and under load the writes thin out instead of queueing up in front of the
 * hand-offs; GET /jobs/:id reads the live state meanwhile (portrait/liveProgress.ts). Each write
 * carries its own guard (a revision, or a status it only moves forward from), so one arriving late —
 * from here or from a process replaying the job — never takes a document backwards.
 */
export class DocumentMirror {
  private readonly documents = new Map<string, Entry>();

  constructor(private readonly intervalMs = 1000) {}

  /** Writes soon, not waited for: a failed write is logged, the next transition's write carries the state. */
  behind(id: string, write: Write): void {
    const entry = this.documents.get(id);
    if (entry) {
      entry.next = write;
      return;
    }
    const waiting: Entry = { next: write, startedAt: Date.now() };
    this.documents.set(id, waiting);
    this.startLater(id, waiting);
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
        if (this.documents.get(id) === entry) this.startLater(id, entry);
      });
  }

  /** At `intervalMs` after the entry's last start: the write waiting then, or forgetting the document. */
  private startLater(id: string, entry: Entry): void {
    entry.timer = setTimeout(() => (entry.next ? this.start(id, entry) : this.forget(id, entry)), entry.startedAt + this.intervalMs - Date.now());
    entry.timer.unref();
  }

  private forget(id: string, entry: Entry): void {
    clearTimeout(entry.timer);
    entry.next = undefined;
    if (this.documents.get(id) === entry) this.documents.delete(id);
  }
}
