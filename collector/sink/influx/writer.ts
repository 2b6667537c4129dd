/**
 * The write path: points -> batches (by size, or after flushIntervalMs) -> one request at a time, in
 * order. When InfluxDB is down, slow or answers 5xx, the batch and every later one go to the spool and
 * the oldest spooled batch is retried with back-off; once it is taken, the spool is written out in order
 * before anything newer. 4xx answers are logged with InfluxDB's reason and the batch is dropped (counted):
 * a bad point or a missing database does not get better by retrying.
 */
import { gzip, constants as zlib } from 'node:zlib';
import type { Logger } from '../../log.js';
import type { WriteClient, WriteOutcome } from './client.js';
import { Spool, type Batch, type SpoolStats } from './spool.js';

export interface WriterOptions {
  batchSize: number;
  flushIntervalMs: number;
  gzip: boolean;
  retentionPolicy: string | null;
  /** Batches kept in memory waiting for their turn; beyond it they go to the spool. */
  maxQueuedBatches: number;
  /** First and longest wait between retries while InfluxDB is unreachable. */
  retryMinMs: number;
  retryMaxMs: number;
  /** Runs once before the first write (database setup); a 'retry' outcome is treated like a failed write. */
  prepare?: (() => Promise<WriteOutcome>) | null;
}

export interface WriterStats {
  pointsWritten: number;
  batchesWritten: number;
  /** Write attempts that failed and will be retried (InfluxDB down, slow, 5xx). */
  writeErrors: number;
  /** Points InfluxDB refused with a 4xx answer (not retried). */
  pointsRejected: number;
  /** Batches waiting in memory (not yet sent, not spooled). */
  queueDepth: number;
  spool: SpoolStats;
}

/** What is still undelivered. */
export interface Pending {
  points: number;
  spooled: number;
}

interface Compressing {
  readonly raw: Buffer;
  readonly points: number;
  body: Buffer | null;
  failed?: boolean;
}

export class InfluxWriter {
  readonly stats: WriterStats;
  /**
   * The open batch, written as it grows: a point's text dies young instead of waiting, promoted to the
   * old generation, for its batch to be joined. One buffer, reused: a sealed batch takes a copy of its
   * own size (a few points sealed by the flush timer must not hold a buffer made for a full batch).
   */
  private open: Buffer = Buffer.alloc(0);
  private openBytes = 0;
  private openPoints = 0;
  private readonly queue: Batch[] = [];
  private sending = false;
  /** The batch on its way is the queue's first (until the queue is spilled). */
  private sendingFromQueue = false;
  /** The batch on its way moved to the spool, which sends it again: its answer is let go. */
  private letGo = false;
  /** Closed and done waiting: nothing more is sent. */
  private stopped = false;
  private outage = false;
  private retryMs: number;
  private retryTimer: NodeJS.Timeout | null = null;
  private flushTimer: NodeJS.Timeout | null = null;
  private idleWaiters: Array<() => void> = [];
  private rejectionsLogged = new Map<string, number>();
  private closed = false;
  /** Sealed batches whose compression has not finished, in order. */
  private readonly compressing: Compressing[] = [];
  private prepared: boolean;

  constructor(
    private readonly options: WriterOptions,
    private readonly client: WriteClient,
    private readonly spool: Spool,
    private readonly log: Logger,
  ) {
    this.retryMs = options.retryMinMs;
    this.prepared = !options.prepare;
    this.stats = { pointsWritten: 0, batchesWritten: 0, writeErrors: 0, pointsRejected: 0, queueDepth: 0, spool: spool.stats };
    if (spool.size > 0) log.info({ points: spool.stats.points, batches: spool.stats.batches }, 'InfluxDB: writing the spool left by an earlier run');
    if (spool.size > 0 || !this.prepared) this.pump();
  }

  /** Adds one line-protocol point; a full batch is sealed at once. */
  add(line: string): void {
    // a UTF-16 unit takes at most 3 bytes in UTF-8, plus the newline
    const room = line.length * 3 + 1;
    if (this.openBytes + room > this.open.length) this.grow(room);
    if (this.openPoints > 0) this.open[this.openBytes++] = 0x0a;
    this.openBytes += this.open.write(line, this.openBytes);
    if (++this.openPoints >= this.options.batchSize) this.seal();
    else if (this.flushTimer === null && !this.closed) {
      this.flushTimer = setTimeout(() => {
        this.flushTimer = null;
        this.seal();
      }, this.options.flushIntervalMs);
      this.flushTimer.unref();
    }
  }

  /** True while InfluxDB does not answer (batches go to the spool). */
  inOutage(): boolean {
    return this.outage;
  }

  /** Points not yet delivered: in the open batch, the queue, a request in flight and the spool. */
  pending(): Pending {
    let points = this.openPoints + this.spool.stats.points;
    for (const b of this.queue) points += b.points;
    for (const c of this.compressing) points += c.points;
    return { points, spooled: this.spool.stats.points };
  }

  /** Seals the open batch and moves every unsent batch to the spool (a hurried exit). */
  saveUnsent(): void {
    this.seal();
    // batches still being compressed go as they are
    for (const c of this.compressing.splice(0)) this.queue.push(c.body !== null ? { body: c.body, points: c.points, gzip: true } : { body: c.raw, points: c.points, gzip: false });
    this.spillQueue();
  }

  /** Seals the open batch now (end of a replay, shutdown). */
  flush(): void {
    this.seal();
  }

  /**
   * Resolves once every sealed batch is compressed and handed to the send queue (milliseconds): then a
   * request is on its way while the caller does other work, such as writing the report.
   */
  async compressed(): Promise<void> {
    while (this.compressing.length > 0) await new Promise<void>((resolve) => setImmediate(resolve));
  }

  /**
   * Seals what is open and waits up to `waitMs` for every batch (queue and spool) to be delivered.
   * Whatever is left is in the spool afterwards (on disk when it has a directory).
   */
  async close(waitMs: number): Promise<Pending> {
    if (this.stopped) return this.pending();
    this.seal();
    this.closed = true;
    // compressions take milliseconds: let them finish, whatever the wait, so nothing sealed is lost
    await this.compressed();
    if (this.flushTimer) clearTimeout(this.flushTimer);
    if (!this.idle()) {
      const { points, spooled } = this.pending();
      this.log.info({ points, spooled }, `waiting up to ${Math.round(waitMs / 100) / 10} s for InfluxDB to take ${points} points (${spooled} in the spool)`);
      // hurry a retry that is waiting out its back-off
      if (this.retryTimer) {
        clearTimeout(this.retryTimer);
        this.retryTimer = null;
        this.pump();
      }
      await new Promise<void>((resolve) => {
        const timer = setTimeout(done, waitMs);
        function done() {
          clearTimeout(timer);
          resolve();
        }
        this.idleWaiters.push(done);
      });
    }
    if (this.retryTimer) clearTimeout(this.retryTimer);
    this.retryTimer = null;
    // what could not be sent is kept: in memory batches move to the spool, and the answer to a request
    // still on its way is let go (its batch is in the spool; a point written twice is kept once)
    this.spillQueue();
    this.stopped = true;
    return this.pending();
  }

  private idle(): boolean {
    return this.openPoints === 0 && this.compressing.length === 0 && this.queue.length === 0 && this.spool.size === 0 && !this.sending;
  }

  /** Makes room for `bytes` more in the open batch (its first buffer is sized for a full batch). */
  private grow(bytes: number): void {
    const wanted = this.openBytes + bytes;
    const estimate = this.openPoints > 0 ? Math.ceil((this.openBytes / this.openPoints) * this.options.batchSize * 1.1) : 0;
    const next = Buffer.allocUnsafe(Math.max(wanted, estimate, this.open.length * 2, 4096));
    this.open.copy(next, 0, 0, this.openBytes);
    this.open = next;
  }

  private seal(): void {
    if (this.flushTimer) {
      clearTimeout(this.flushTimer);
      this.flushTimer = null;
    }
    if (this.openPoints === 0) return;
    // exactly the batch's bytes, outside Node's shared pool of small buffers
    const raw = Buffer.allocUnsafeSlow(this.openBytes);
    this.open.copy(raw, 0, 0, this.openBytes);
    const points = this.openPoints;
    this.openBytes = 0;
    this.openPoints = 0;
    if (!this.options.gzip) {
      this.enqueue({ body: raw, points, gzip: false });
      return;
    }
    // compressed on libuv's thread pool, off the packet path; batches still leave in the order sealed
    const entry: Compressing = { raw, points, body: null };
    this.compressing.push(entry);
    this.stats.queueDepth = this.queue.length + this.compressing.length;
    gzip(raw, { level: zlib.Z_BEST_SPEED }, (err, body) => {
      entry.body = err ? null : body;
      if (err) entry.failed = true;
      this.releaseCompressed();
    });
  }

  /** Moves finished compressions, oldest first, to the queue (a failed one goes as it is). */
  private releaseCompressed(): void {
    while (this.compressing.length > 0) {
      const head = this.compressing[0];
      if (head.body === null && !head.failed) return;
      this.compressing.shift();
      this.enqueue(head.body !== null ? { body: head.body, points: head.points, gzip: true } : { body: head.raw, points: head.points, gzip: false });
    }
  }

  private enqueue(batch: Batch): void {
    if (this.outage || this.stopped) {
      this.spool.push(batch);
    } else {
      this.queue.push(batch);
      if (this.queue.length > this.options.maxQueuedBatches) this.spillQueue();
    }
    this.stats.queueDepth = this.queue.length + this.compressing.length;
    this.pump();
  }

  /** Moves the in-memory queue behind what is spooled, keeping the order. */
  private spillQueue(): void {
    if (this.sending && this.sendingFromQueue && this.queue.length > 0) this.letGo = true;
    while (this.queue.length > 0) this.spool.push(this.queue.shift() as Batch);
    this.stats.queueDepth = this.compressing.length;
  }

  /** Sends the next batch: the spool first (it is older), then the queue. */
  private pump(): void {
    if (this.stopped || this.sending || this.retryTimer !== null) return;
    // the setup runs at once, not at the first batch: a replay keeps the event loop busy, and a setup
    // that waits for the first batch would hold every batch back until the capture is nearly read
    if (!this.prepared && this.options.prepare) {
      // closing with nothing to send: no setup to wait for
      if (this.closed && this.idle()) {
        this.notifyIdle();
        return;
      }
      this.sending = true;
      this.sendingFromQueue = false;
      this.letGo = false;
      void this.options.prepare().then((outcome) => {
        this.sending = false;
        if (this.stopped) return;
        if (outcome.kind === 'retry') return this.failed(outcome.reason);
        this.prepared = true;
        if (outcome.kind === 'rejected') this.log.error({ status: outcome.status }, `InfluxDB: ${outcome.reason}; writing anyway`);
        this.pump();
      });
      return;
    }
    const fromSpool = this.spool.size > 0;
    const batch = fromSpool ? this.spool.peek() : this.queue[0];
    if (!batch) {
      this.notifyIdle();
      return;
    }
    this.sending = true;
    this.letGo = false;
    this.sendingFromQueue = !fromSpool;
    void this.client.write(batch.body, batch.gzip, this.options.retentionPolicy).then((outcome) => {
      this.sending = false;
      if (this.stopped) return;
      if (outcome.kind === 'retry') return this.failed(outcome.reason);
      if (this.letGo) return this.pump();
      if (fromSpool) this.spool.shift();
      else {
        this.queue.shift();
        this.stats.queueDepth = this.queue.length + this.compressing.length;
      }
      if (outcome.kind === 'ok') {
        this.stats.pointsWritten += batch.points;
        this.stats.batchesWritten++;
        if (this.outage) {
          this.outage = false;
          this.log.info({ spooled: this.spool.stats.points }, 'InfluxDB answers again: writing the spool');
        }
        this.retryMs = this.options.retryMinMs;
      } else {
        // "partial write: ... dropped=N": InfluxDB 1.x stored the other points of the batch
        const partial = /^partial write\b.*\bdropped=(\d+)/.exec(outcome.reason);
        const refused = partial ? Math.min(batch.points, Number(partial[1])) : batch.points;
        this.stats.pointsRejected += refused;
        this.stats.pointsWritten += batch.points - refused;
        this.logRejection(outcome.status, outcome.reason, refused);
      }
      this.pump();
    });
  }

  /** A write (or the setup) failed for a reason that may pass: spool, and retry after a back-off. */
  private failed(reason: string): void {
    this.stats.writeErrors++;
    if (!this.outage) {
      this.outage = true;
      this.log.warn(`InfluxDB did not take a write (${reason}): spooling until it answers again`);
    }
    // order: the failed batch and all newer ones wait in the spool
    this.spillQueue();
    this.retryTimer = setTimeout(() => {
      this.retryTimer = null;
      this.pump();
    }, this.closed ? Math.min(this.retryMs, 250) : this.retryMs);
    if (!this.closed) this.retryTimer.unref();
    this.retryMs = Math.min(this.retryMs * 2, this.options.retryMaxMs);
  }

  private notifyIdle(): void {
    if (!this.idle()) return;
    const waiters = this.idleWaiters;
    this.idleWaiters = [];
    for (const w of waiters) w();
  }

  /** One line per distinct reason (then every 100th), so a bad setup does not flood the log. */
  private logRejection(status: number, reason: string, points: number): void {
    const key = `${status} ${reason.replace(/\d+/g, 'N')}`;
    const seen = (this.rejectionsLogged.get(key) ?? 0) + 1;
    if (this.rejectionsLogged.size < 1000) this.rejectionsLogged.set(key, seen);
    if (seen !== 1 && seen % 100 !== 0) return;
    let hint = '';
    if (/beyond retention policy/.test(reason)) hint = ' (points older than the retention policy: replaying an old capture? use --influx-rp autogen or a longer --influx-raw-retention)';
    else if (/database not found/.test(reason)) hint = ' (create it, or let earshot: --influx-setup true)';
    else if (status === 401 || status === 403) hint = ' (check --influx-token or --influx-username/EARSHOT_INFLUX_PASSWORD)';
    this.log.error({ status, reason, points, times: seen }, `InfluxDB refused a write with ${status}: ${reason}${hint}; ${points} points dropped`);
  }
}
