/**
 * The write path: points -> batches (by size, or after flushIntervalMs) -> one request at a time, in
 * order. When InfluxDB is down, slow or answers 5xx, the batch and every later one go to the spool and
 * the oldest spooled batch is retried with back-off; once it is taken, the spool is written out in order
 * before anything newer. 4xx answers are logged with InfluxDB's reason and the batch is dropped (counted):
 * a bad point does not get better by retrying. A missing database, retention policy or DBRP mapping is
 * different: it is one command away (an admin's, on a shared server), so batches wait in the spool and
 * the log names that command (explainMissing). A batch that fails for its own
 * content (a 400 with a line InfluxDB cannot parse) is set aside in the spool's quarantine and the queue
 * moves on. One that gets no usable answer MAX_BATCH_ATTEMPTS times while InfluxDB answers /ping goes to
 * the back of the queue; only when it fails so again after a batch behind it was taken is it set aside
 * (an InfluxDB too busy to answer any write sets nothing aside). "Unreachable" means a server that does
 * not answer, never one bad batch.
 */
import { createHash } from 'node:crypto';
import { lazyBuiltin } from '../../builtins.js';
import type { Logger } from '../../log.js';
import { MAX_RETRY_AFTER_MS, type WriteClient, type WriteOutcome } from './client.js';
import { RejectionLog } from './rejections.js';
import { Spool, type Batch, type SpoolStats } from './spool.js';

const zlib = lazyBuiltin<typeof import('node:zlib')>('node:zlib');

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
  /**
   * The one line that says what is missing and the command that creates it, for a write answered
   * 'missing' (the database, retention policy or DBRP mapping does not exist). Without it, InfluxDB's reason.
   */
  explainMissing?: ((outcome: Extract<WriteOutcome, { kind: 'missing' }>) => string) | null;
  /** The one line for a write refused with 401 or 403 (credentials wrong, revoked, or without write rights). */
  explainDenied?: ((outcome: Extract<WriteOutcome, { kind: 'rejected' }>) => string) | null;
}

/** The code of the log line of a write that found its database, retention policy or mapping missing (docs/errors.md). */
export const MISSING_CODE = 'EARSHOT_ERR_INFLUX_MISSING';
/** The code of the log line of a write refused for its credentials (docs/errors.md). */
export const AUTH_CODE = 'EARSHOT_ERR_INFLUX_AUTH';

/** Attempts of one batch that get no usable answer while InfluxDB answers /ping, before it is set aside. */
export const MAX_BATCH_ATTEMPTS = 3;

export interface WriterStats {
  pointsWritten: number;
  batchesWritten: number;
  /** Write attempts that failed and will be retried (InfluxDB down, slow, 5xx). */
  writeErrors: number;
  /** Points InfluxDB refused with a 4xx answer (not retried). */
  pointsRejected: number;
  /** Batches set aside for their own content (kept in the spool's quarantine when it has a directory). */
  batchesSetAside: number;
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
  /** Batches go to the spool: the last write failed (InfluxDB away, failing, or the setup not done). */
  private spooling = false;
  /** InfluxDB does not answer at all (no HTTP answer to the write, nor to /ping). */
  private unreachable = false;
  /** Why the last write failed, null once one succeeds. */
  private problem: string | null = null;
  /** Attempts of the batch at the head that got no usable answer while /ping answered. */
  private headFailures = 0;
  /** Batches sent to the back for getting no usable answer: digest -> batches written when it was sent back. */
  private readonly suspects = new Map<string, number>();
  private retryMs: number;
  private retryTimer: NodeJS.Timeout | null = null;
  private flushTimer: NodeJS.Timeout | null = null;
  private idleWaiters: Array<() => void> = [];
  private readonly rejections: RejectionLog;
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
    this.rejections = new RejectionLog(log);
    this.prepared = !options.prepare;
    this.stats = { pointsWritten: 0, batchesWritten: 0, writeErrors: 0, pointsRejected: 0, batchesSetAside: 0, queueDepth: 0, spool: spool.stats };
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

  /** True while InfluxDB does not answer at all (a server that answers but fails writes is not "unreachable"). */
  inOutage(): boolean {
    return this.unreachable;
  }

  /** Why writes fail now (InfluxDB's answer, or the network's error), null while they succeed. */
  writeProblem(): string | null {
    return this.problem;
  }

  /** Points not yet delivered: in the open batch, the queue, a request in flight and the spool. */
  pending(): Pending {
    let points = this.openPoints + this.spool.stats.points;
    for (const b of this.queue) points += b.points;
    for (const c of this.compressing) points += c.points;
    return { points, spooled: this.spool.stats.points };
  }

  /** Seals the open batch and moves every unsent batch to the spool (a hurried exit; a label or wake event before its answer). */
  saveUnsent(): void {
    this.seal();
    // batches still being compressed go as they are
    for (const c of this.compressing.splice(0)) this.queue.push(c.body !== null ? { body: c.body, points: c.points, gzip: true } : { body: c.raw, points: c.points, gzip: false });
    this.spillQueue();
    // a run that goes on sends them from there (an exit does not wait for it)
    this.pump();
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
    zlib().gzip(raw, { level: zlib().constants.Z_BEST_SPEED }, (err, body) => {
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
    if (this.spooling || this.stopped) {
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
        if (outcome.kind === 'retry') return this.failed(outcome.reason, outcome.answered === true);
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
    void this.attempt(batch, fromSpool);
  }

  /** Sends one batch and acts on the answer; a failure without an answer is told apart by a /ping. */
  private async attempt(batch: Batch, fromSpool: boolean): Promise<void> {
    const outcome = await this.client.write(batch.body, batch.gzip, this.options.retentionPolicy);
    // no usable answer: is the server away, or is it this batch (an answer that could not be read)?
    const serverAnswers = outcome.kind === 'retry' && outcome.answered !== true && this.client.ping && !this.stopped ? await this.client.ping() : null;
    this.sending = false;
    if (this.stopped) return;
    if (outcome.kind === 'retry') {
      if (serverAnswers === true && !this.letGo && ++this.headFailures >= MAX_BATCH_ATTEMPTS) {
        const digest = createHash('sha1').update(batch.body).digest('hex');
        const mark = this.suspects.get(digest);
        if (mark !== undefined && this.stats.batchesWritten > mark) {
          // a batch behind it went through since: the server takes writes, this one it cannot
          this.suspects.delete(digest);
          this.setAside(batch, fromSpool, `InfluxDB answers /ping and takes other batches but gave no usable answer to this one ${2 * MAX_BATCH_ATTEMPTS} times (${outcome.reason})`, batch.points);
          return this.pump();
        }
        if (mark === undefined) {
          this.suspects.set(digest, this.stats.batchesWritten);
          if (this.suspects.size > 64) this.suspects.delete(this.suspects.keys().next().value as string);
        }
        this.sendToBack(batch, fromSpool);
        return this.failed(outcome.reason, true, outcome.retryAfterMs);
      }
      return this.failed(outcome.reason, outcome.answered === true || serverAnswers === true, outcome.retryAfterMs);
    }
    // refusals a person fixes (the admin creates the database, policy or mapping; the owner fixes the
    // token or the grant): kept in the spool, not dropped, and the next retry writes them; on a fleet a
    // home's points must not be lost meanwhile (the spool's bound still holds). Said once per problem.
    const held = outcome.kind === 'missing'
      ? { code: MISSING_CODE, message: this.options.explainMissing?.(outcome) }
      : outcome.kind === 'rejected' && (outcome.status === 401 || outcome.status === 403)
        ? { code: AUTH_CODE, message: this.options.explainDenied?.(outcome) }
        : null;
    if (held !== null && outcome.kind !== 'ok') {
      const message = held.message ?? `InfluxDB ${outcome.status}: ${outcome.reason}`;
      if (message !== this.problem) this.log.error({ code: held.code, status: outcome.status, points: this.pending().points }, message);
      return this.failed(message, true, undefined, true);
    }
    if (this.letGo) return this.pump();
    this.unreachable = false;
    this.headFailures = 0;
    if (outcome.kind === 'ok') {
      this.take(fromSpool);
      this.stats.pointsWritten += batch.points;
      this.stats.batchesWritten++;
      this.problem = null;
      if (this.spooling) {
        this.spooling = false;
        this.log.info({ spooled: this.spool.stats.points }, 'InfluxDB answers again: writing the spool');
      }
      this.retryMs = this.options.retryMinMs;
      return this.pump();
    }
    // "partial write: ... dropped=N": InfluxDB 1.x stored the other points of the batch; a line it could
    // not parse is not in N
    const partial = /^partial write\b.*\bdropped=(\d+)/.exec(outcome.reason);
    const unparsed = outcome.reason.match(/unable to parse/g)?.length ?? 0;
    const refused = partial ? Math.min(batch.points, Number(partial[1]) + unparsed) : batch.points;
    this.stats.pointsRejected += refused;
    this.stats.pointsWritten += batch.points - refused;
    // a batch InfluxDB cannot read (damaged, not line protocol) is kept aside for the owner to look at
    if ((outcome.status === 400 && (unparsed > 0 || !partial)) || outcome.status === 413) this.setAside(batch, fromSpool, null, 0);
    else this.take(fromSpool);
    this.rejections.log(outcome.status, outcome.reason, refused);
    this.pump();
  }

  /** Moves the batch just sent behind every other one (a probe: are the batches behind it taken?). */
  private sendToBack(batch: Batch, fromSpool: boolean): void {
    this.headFailures = 0;
    if (fromSpool) {
      this.spool.shift();
      this.spool.push(batch);
    } else {
      this.queue.shift();
      this.queue.push(batch);
    }
  }

  /** Takes the batch just sent off its queue. */
  private take(fromSpool: boolean): void {
    this.headFailures = 0;
    if (fromSpool) this.spool.shift();
    else {
      this.queue.shift();
      this.stats.queueDepth = this.queue.length + this.compressing.length;
    }
  }

  /** Moves the batch just sent to the spool's quarantine (counted); `reason` non-null is logged (a rejection logs itself). */
  private setAside(batch: Batch, fromSpool: boolean, reason: string | null, points: number): void {
    this.headFailures = 0;
    this.stats.batchesSetAside++;
    if (fromSpool) this.spool.setAsideHead();
    else {
      this.spool.setAside(batch);
      this.queue.shift();
      this.stats.queueDepth = this.queue.length + this.compressing.length;
    }
    this.stats.pointsRejected += points;
    if (reason !== null) {
      const where = this.spool.quarantineDir === null ? 'dropped' : `kept in ${this.spool.quarantineDir}`;
      this.log.error({ points: batch.points, reason }, `InfluxDB: a batch of ${batch.points} points set aside (${where}): ${reason}; the batches behind it go on`);
    }
  }

  /**
   * A write (or the setup) failed for a reason that may pass: spool, and retry after a back-off (or
   * what InfluxDB's Retry-After asked for, within MAX_RETRY_AFTER_MS). `answered`: the server is there;
   * `logged`: the caller has said why already.
   */
  private failed(reason: string, answered: boolean, retryAfterMs?: number, logged = false): void {
    this.stats.writeErrors++;
    this.unreachable = !answered;
    this.problem = reason;
    if (!this.spooling) {
      this.spooling = true;
      if (!logged) this.log.warn(answered
        ? `InfluxDB answers but did not take a write (${reason}): spooling and retrying`
        : `InfluxDB did not take a write (${reason}): spooling until it answers again`);
    }
    // order: the failed batch and all newer ones wait in the spool
    this.spillQueue();
    const wait = Math.min(Math.max(this.retryMs, retryAfterMs ?? 0), MAX_RETRY_AFTER_MS);
    this.retryTimer = setTimeout(() => {
      this.retryTimer = null;
      // a disk that refused the spool's writes may take them again
      this.spool.writeHeld();
      this.pump();
    }, this.closed ? Math.min(wait, 250) : wait);
    if (!this.closed) this.retryTimer.unref();
    this.retryMs = Math.min(this.retryMs * 2, this.options.retryMaxMs);
  }

  private notifyIdle(): void {
    if (!this.idle()) return;
    const waiters = this.idleWaiters;
    this.idleWaiters = [];
    for (const w of waiters) w();
  }
}
