import { ReplyError, type Redis } from 'ioredis';
import { logger } from '../logger';
import { compareStreamIds, parseJobEvents, type JobEvent } from './jobEvents';
import { jobEventsKey } from './redisKeys';

/** Entries per job log per read: a subscriber far behind catches up over several reads. */
const READ_COUNT = 100;
/** Only a safety net: a read is woken (CLIENT UNBLOCK) as soon as the set of logs to read changes. */
const BLOCK_MS = 10_000;
/** How often a wake-up is retried when it reached Redis before the read it was meant for. */
const WAKE_ATTEMPTS = 50;
/** The read's block when Redis refuses CLIENT ID or CLIENT UNBLOCK (an ACL without them): polling instead of waking. */
const POLL_MS = 250;

/** One reader of one job's event log, from a position on; created by `JobEventStreams.subscribe`. */
export class JobEventSubscription {
  private pending: JobEvent[] = [];
  private failure?: Error;
  private notify?: () => void;
  private closed = false;

  constructor(
    readonly key: string,
    /** The id of the last event handed to this subscriber ('0': none yet). */
    public position: string,
    private readonly onClose: (subscription: JobEventSubscription) => void,
  ) {}

  /**
   * The events that arrived since the last call, waiting up to `timeoutMs` for one: [] when none
   * came (or the subscription was closed). Rejects once the subscription failed.
   */
  async next(timeoutMs: number): Promise<JobEvent[]> {
    if (this.pending.length === 0 && !this.failure && !this.closed) {
      await new Promise<void>((resolve) => {
        const timer = setTimeout(() => this.notify?.(), timeoutMs);
        this.notify = () => {
          clearTimeout(timer);
          this.notify = undefined;
          resolve();
        };
      });
    }
    if (this.failure) throw this.failure;
    const events = this.pending;
    this.pending = [];
    return events;
  }

  deliver(events: JobEvent[]): void {
    this.position = events.at(-1)!.id;
    this.pending.push(...events);
    this.notify?.();
  }

  /** Ends the subscription with an error: the next `next()` rejects with it (events not yet taken are dropped). */
  fail(error: Error): void {
    this.failure ??= error;
    this.close();
  }

  close(): void {
    if (!this.closed) {
      this.closed = true;
      this.onClose(this);
    }
    this.notify?.();
  }
}

type Reader = { connection: Redis; clientId?: number; reading?: Map<string, string>; waking?: Map<string, string> };

/**
 * Every open event stream of a process, read through one Redis connection: one blocking
 * `XREAD ... STREAMS k1 k2 ... id1 id2 ...` over all subscribed logs, each read from its furthest-behind
 * subscriber's position, and each entry handed only to the subscribers that have not seen it yet.
 * The connection is opened with the first subscriber and closed with the last; when the set of
 * logs changes during a read, `CLIENT UNBLOCK` (sent on the process's normal connection) ends the
 * read so the next one includes it. If the read fails (Redis lost), every subscriber fails and the
 * next subscriber starts a new connection.
 */
export class JobEventStreams {
  private readonly subscribers = new Map<string, Set<JobEventSubscription>>();
  private reader?: Reader;
  private canWake = true;

  constructor(
    private readonly redis: Redis,
    private readonly prefix: string,
    private readonly blockMs = BLOCK_MS,
  ) {
    // The process's own connection closed for good (the process, or a test, is stopping): nothing outlives it.
    redis.once('end', () => this.close(new Error('the API is shutting down')));
  }

  /** Open subscriptions, all logs together. */
  get size(): number {
    let n = 0;
    for (const set of this.subscribers.values()) n += set.size;
    return n;
  }

  /** The job's events after `afterId` ('0': from the start), as they are appended. */
  subscribe(jobId: string, afterId: string): JobEventSubscription {
    const key = jobEventsKey(this.prefix, jobId);
    const subscription = new JobEventSubscription(key, afterId, (s) => this.unsubscribe(s));
    const set = this.subscribers.get(key) ?? new Set();
    set.add(subscription);
    this.subscribers.set(key, set);
    const reading = this.reader?.reading;
    if (!this.reader) this.startReader();
    else if (reading && (!reading.has(key) || compareStreamIds(afterId, reading.get(key)!) < 0)) this.wake(this.reader);
    return subscription;
  }

  /** Fails every subscription with `error` and closes the connection. */
  close(error: Error): void {
    const all = [...this.subscribers.values()].flatMap((set) => [...set]);
    this.subscribers.clear();
    this.stopReader();
    for (const subscription of all) subscription.fail(error);
  }

  private unsubscribe(subscription: JobEventSubscription): void {
    const set = this.subscribers.get(subscription.key);
    if (!set?.delete(subscription)) return;
    if (set.size === 0) this.subscribers.delete(subscription.key);
    if (this.subscribers.size === 0) this.stopReader();
  }

  private startReader(): void {
    // Queued until connected; no reconnect: a lost connection fails its subscribers and the next one starts afresh.
    const connection = this.redis.duplicate({ enableOfflineQueue: true, retryStrategy: () => null });
    connection.on('error', () => undefined); // surfaces as the read's rejection
    const reader: Reader = { connection };
    this.reader = reader;
    void this.pump(reader);
  }

  private stopReader(): void {
    const reader = this.reader;
    this.reader = undefined;
    // Already gone (Redis dropped it): disconnecting again would only leave ioredis' 2 s close timer behind.
    if (reader && reader.connection.status !== 'end') reader.connection.disconnect();
  }

  private async pump(reader: Reader): Promise<void> {
    try {
      reader.clientId = await reader.connection.client('ID').catch((err) => {
        if (!(err instanceof ReplyError)) throw err;
        this.cannotWake(err);
        return undefined;
      });
      while (this.reader === reader) {
        const positions = this.positions();
        reader.reading = positions;
        const block = this.canWake ? this.blockMs : POLL_MS;
        const reply = (await reader.connection.xread('COUNT', READ_COUNT, 'BLOCK', block, 'STREAMS', ...positions.keys(), ...positions.values())) as
          | [string, [string, string[]][]][]
          | null;
        reader.reading = undefined;
        if (reply && this.reader === reader) this.dispatch(reply, positions);
      }
    } catch (err) {
      if (this.reader !== reader) return; // closed on purpose: the read was cut
      logger.warn('event stream reader failed', { error: err instanceof Error ? err.message : String(err), subscribers: this.size });
      this.close(new Error('event stream reader failed'));
    }
  }

  /** Per log, the furthest-behind subscriber's position: one read serves every subscriber of it. */
  private positions(): Map<string, string> {
    const positions = new Map<string, string>();
    for (const [key, set] of this.subscribers) {
      let least: string | undefined;
      for (const s of set) if (least === undefined || compareStreamIds(s.position, least) < 0) least = s.position;
      positions.set(key, least!);
    }
    return positions;
  }

  private dispatch(reply: [string, [string, string[]][]][], readFrom: Map<string, string>): void {
    for (const [key, entries] of reply) {
      const set = this.subscribers.get(key);
      if (!set) continue;
      const events = parseJobEvents(entries);
      for (const subscription of set) {
        // One that joined during the read from further back would miss the entries in between: the next read is its.
        if (compareStreamIds(subscription.position, readFrom.get(key)!) < 0) continue;
        const unseen = events.filter((e) => compareStreamIds(e.id, subscription.position) > 0);
        if (unseen.length > 0) subscription.deliver(unseen);
      }
    }
  }

  /** Redis refused CLIENT ID or UNBLOCK (not a lost connection): short reads from now on, so new subscribers still start promptly. */
  private cannotWake(err: Error): void {
    if (this.canWake) logger.warn('event streams cannot wake their shared Redis read; polling instead', { error: err.message, pollMs: POLL_MS });
    this.canWake = false;
  }

  /** Ends the read in flight so that the next one reads the current set of logs. */
  private wake(reader: Reader): void {
    const reading = reader.reading;
    if (!reading || reader.clientId === undefined || reader.waking === reading) return;
    reader.waking = reading;
    const attempt = async (n: number): Promise<void> => {
      if (this.reader !== reader || reader.reading !== reading) return;
      let unblocked: unknown;
      try {
        unblocked = await this.redis.client('UNBLOCK', reader.clientId!);
      } catch (err) {
        // Refused: cut this read instead (the subscribers keep their positions) and poll from now on.
        if (err instanceof ReplyError && this.reader === reader) {
          this.cannotWake(err as Error);
          this.stopReader();
          this.startReader();
        }
        return;
      }
      // 0: the read has not reached Redis yet; try again shortly (the block timeout is the last resort).
      if (unblocked === 0 && n < WAKE_ATTEMPTS) setTimeout(() => void attempt(n + 1), 2).unref();
    };
    void attempt(1);
  }
}
