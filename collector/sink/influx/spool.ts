/**
 * The spool: write batches InfluxDB could not take, oldest first, bounded in bytes. On disk (one file
 * per batch under dataDir/spool/influx, written with writeFileAtomic, so a crash or a power cut leaves
 * whole batches or none) it survives restarts; without a data directory it is kept in memory.
 * When full, the oldest batches are dropped and their points counted.
 *
 * The disk is not trusted: at start every file is checked (gzip decodes, UTF-8 line protocol without
 * NUL bytes, as many lines as its name says), and a damaged one, or anything that is not a regular
 * file under a batch's name, is moved to the quarantine (spool/influx/quarantine, bounded) with a
 * warning naming it, so it can neither crash a start nor block the queue. When the disk refuses a
 * write (full, read-only), the batch is held in memory within a bound and written out, in order, once
 * the disk takes writes again.
 */
import { lstatSync, mkdirSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { fsyncDir, isDiskFull, quarantine, removeFile, TMP_SUFFIX, writeFileAtomic } from '../../durable.js';
import type { Logger } from '../../log.js';
import { batchProblem } from './batch-check.js';

/** A batch in its wire form: line protocol, gzip-compressed or not. */
export interface Batch {
  readonly body: Buffer;
  readonly points: number;
  readonly gzip: boolean;
}

interface Entry {
  readonly seq: number;
  readonly points: number;
  readonly bytes: number;
  readonly gzip: boolean;
  /** The body when kept in memory (no directory, or held because the disk refused it). */
  body: Buffer | null;
  /** Held in memory while the spool has a directory: the disk refused it. */
  held: boolean;
  /** Dropped while held (the memory bound): skipped when its turn comes. */
  gone: boolean;
}

const NAME = /^(\d{12})-(\d+)\.lp(\.gz)?$/;
/** Files in the quarantine: `NAME.damaged-TIME` (bad on disk) or `NAME.refused-TIME` (InfluxDB refused it). */
const ASIDE = /\.(damaged|refused)-(\d+)$/;

/** Most files kept in the quarantine; the oldest are removed beyond it. */
export const MAX_QUARANTINED_FILES = 32;
/** Most bytes of batches held in memory while the disk refuses writes (besides the spool's own bound). */
export const MAX_HELD_BYTES = 16 * 1024 * 1024;

export interface SpoolStats {
  /** Batches and points waiting (on disk and held in memory), and their size in bytes. */
  batches: number;
  points: number;
  bytes: number;
  /** Points dropped because the spool was full, or held in memory beyond its bound while the disk refused writes. */
  droppedPoints: number;
  /** Batches and points held in memory because the disk refused them; lost if earshot stops before the disk takes them. */
  heldBatches: number;
  heldPoints: number;
  /** Spool writes the disk refused (full, read-only, I/O error). */
  writeErrors: number;
  /** Why the disk refuses spool writes now ("disk full (ENOSPC)"), null while it takes them. */
  writeError: string | null;
  /** Batches set aside in the quarantine (damaged files, batches InfluxDB refused for their content), and their points. */
  quarantinedBatches: number;
  quarantinedPoints: number;
}

export interface SpoolOptions {
  log?: Logger | null;
  /** Bound of the batches held in memory while the disk refuses writes (default min(maxBytes, 16 MiB)). */
  maxHeldBytes?: number;
  /** Files kept in the quarantine (default 32). */
  maxQuarantined?: number;
}

const errorText = (err: unknown): string => {
  const e = err as NodeJS.ErrnoException;
  if (isDiskFull(err)) return `disk full (${e.code})`;
  return e.code ? `${e.code}: ${e.message}` : String(e.message ?? err);
};

export class Spool {
  readonly stats: SpoolStats = {
    batches: 0, points: 0, bytes: 0, droppedPoints: 0, heldBatches: 0, heldPoints: 0, writeErrors: 0, writeError: null,
    quarantinedBatches: 0, quarantinedPoints: 0,
  };
  private readonly entries: Entry[] = [];
  private head = 0;
  private nextSeq = 1;
  /** Held entries, oldest first (some may be gone or written out since: skipped). */
  private held: Entry[] = [];
  private heldBytes = 0;
  private readonly maxHeldBytes: number;
  private readonly maxQuarantined: number;
  private readonly log: Logger | null;
  /** Held batches dropped since the disk last took a write (logged once per episode). */
  private heldDropped = 0;

  /** `dir` null keeps batches in memory. Opening a directory picks up (and checks) what an earlier run left. */
  constructor(private readonly dir: string | null, private readonly maxBytes: number, options: SpoolOptions = {}) {
    this.log = options.log ?? null;
    this.maxHeldBytes = options.maxHeldBytes ?? Math.min(maxBytes, MAX_HELD_BYTES);
    this.maxQuarantined = options.maxQuarantined ?? MAX_QUARANTINED_FILES;
    if (dir === null) return;
    let names: string[];
    try {
      mkdirSync(dir, { recursive: true });
      names = readdirSync(dir);
    } catch (err) {
      // a full or read-only disk must not stop a start: batches are held in memory until it takes them
      this.refused(err);
      return;
    }
    const found: Entry[] = [];
    let removed = 0;
    for (const name of names) {
      const path = join(dir, name);
      if (TMP_SUFFIX.test(name)) {
        // a batch cut short by a crash while it was being written
        try {
          removeFile(path, false);
          removed++;
        } catch {
          // a directory with a temporary's name: not ours to remove, and never read
        }
        continue;
      }
      const m = NAME.exec(name);
      if (!m) continue;
      const points = Number(m[2]);
      const gzip = m[3] !== undefined;
      let problem: string | null;
      let bytes = 0;
      try {
        const st = lstatSync(path);
        bytes = st.size;
        // larger than the whole spool: no batch of ours, and read whole it could take all the memory
        problem = !st.isFile() ? 'not a regular file'
          : st.size > this.maxBytes ? `${st.size} bytes, more than the spool holds (influx.spoolMaxMB: ${this.maxBytes} bytes)`
            : batchProblem(readFileSync(path), gzip, points);
      } catch (err) {
        problem = `unreadable (${errorText(err)})`;
      }
      if (problem !== null) {
        this.setAsideFile(path, points, problem);
        continue;
      }
      found.push({ seq: Number(m[1]), points, gzip, bytes, body: null, held: false, gone: false });
    }
    // the removals of temporaries are made durable once, not per file
    if (removed > 0) fsyncDir(dir);
    found.sort((a, b) => a.seq - b.seq);
    for (const e of found) this.add(e);
    this.nextSeq = found.length > 0 ? found[found.length - 1].seq + 1 : 1;
    this.trim();
  }

  /** True when batches survive a restart. */
  get persistent(): boolean {
    return this.dir !== null;
  }

  /** Batches waiting. */
  get size(): number {
    return this.stats.batches;
  }

  /** Adds a batch at the end; drops the oldest batches while the spool is over its bound. Never throws. */
  push(batch: Batch): void {
    const seq = this.nextSeq++;
    const entry: Entry = { seq, points: batch.points, bytes: batch.body.length, gzip: batch.gzip, body: null, held: false, gone: false };
    if (this.dir === null) {
      entry.body = batch.body;
    } else if (!this.writeHeld() || !this.writeEntry(entry, batch.body)) {
      // the disk refuses: in memory, behind the batches already held
      entry.body = batch.body;
      entry.held = true;
      this.held.push(entry);
      this.heldBytes += entry.bytes;
      this.stats.heldBatches++;
      this.stats.heldPoints += entry.points;
    }
    this.add(entry);
    this.trim();
    this.trimHeld();
  }

  /**
   * Writes the batches held in memory to disk, oldest first, as far as the disk takes them. Returns
   * true when none is left held. Called at each push and by the writer's retries.
   */
  writeHeld(): boolean {
    if (this.dir === null) return true;
    while (this.held.length > 0) {
      const e = this.held[0];
      if (!e.gone && e.held) {
        if (!this.writeEntry(e, e.body as Buffer)) return false;
        e.held = false;
        e.body = null;
        this.heldBytes -= e.bytes;
        this.stats.heldBatches--;
        this.stats.heldPoints -= e.points;
      }
      this.held.shift();
    }
    return true;
  }

  /** The oldest batch, or null when empty. A file damaged since it was written is set aside, a missing one counted as dropped, and the next one tried. */
  peek(): Batch | null {
    while (this.size > 0) {
      const e = this.entries[this.head];
      if (e.gone) {
        this.advance();
        continue;
      }
      if (e.body !== null) return { body: e.body, points: e.points, gzip: e.gzip };
      const path = join(this.dir as string, this.fileName(e));
      let problem: string;
      try {
        const body = readFileSync(path);
        const found = batchProblem(body, e.gzip, e.points);
        if (found === null) return { body, points: e.points, gzip: e.gzip };
        problem = found;
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code === 'ENOENT') {
          // removed behind our back: nothing to set aside
          this.stats.droppedPoints += e.points;
          this.remove(e, false);
          continue;
        }
        problem = `unreadable (${errorText(err)})`;
      }
      this.setAsideFile(path, e.points, problem);
      this.remove(e, false);
    }
    return null;
  }

  /** Removes the oldest batch (delivered, or rejected for good). */
  shift(): void {
    while (this.size > 0 && this.entries[this.head].gone) this.advance();
    if (this.size === 0) return;
    this.remove(this.entries[this.head], true);
  }

  /**
   * Sets the oldest batch aside: InfluxDB refused it for its content. Its bytes go to the quarantine
   * (bounded) for the owner to look at, and the queue moves on.
   */
  setAsideHead(nowMs = Date.now()): void {
    const batch = this.peek();
    if (batch === null) return;
    const e = this.entries[this.head];
    this.setAsideBytes(this.fileName(e), batch.body, e.points, nowMs);
    this.shift();
  }

  /** Sets aside a batch that never was in the spool (it came from the writer's queue). */
  setAside(batch: Batch, nowMs = Date.now()): void {
    const name = `${String(this.nextSeq++).padStart(12, '0')}-${batch.points}.lp${batch.gzip ? '.gz' : ''}`;
    this.setAsideBytes(name, batch.body, batch.points, nowMs);
  }

  /** The quarantine directory (null for a memory spool). */
  get quarantineDir(): string | null {
    return this.dir === null ? null : join(this.dir, 'quarantine');
  }

  private setAsideBytes(name: string, body: Buffer, points: number, nowMs: number): void {
    this.stats.quarantinedBatches++;
    this.stats.quarantinedPoints += points;
    const into = this.quarantineDir;
    if (into === null) return;
    try {
      mkdirSync(into, { recursive: true });
      writeFileAtomic(join(into, `${name}.refused-${nowMs}`), body);
      this.boundQuarantine();
    } catch (err) {
      this.log?.warn({ batch: name, err: errorText(err) }, 'InfluxDB spool: cannot keep a refused batch in the quarantine; it is dropped');
    }
  }

  /** Moves a damaged file (or a directory under a batch's name) to the quarantine, with a warning naming it. */
  private setAsideFile(path: string, points: number, problem: string): void {
    this.stats.quarantinedBatches++;
    this.stats.quarantinedPoints += points;
    let aside: string | null = null;
    try {
      const into = this.quarantineDir as string;
      mkdirSync(into, { recursive: true });
      aside = quarantine(path, into);
    } catch {
      aside = quarantine(path);
    }
    this.log?.warn({ file: path, problem, points, movedTo: aside }, `InfluxDB spool: ${path} is damaged (${problem}); ${aside ? `moved to ${aside}` : 'removed'}, its ${points} points are not written`);
    this.boundQuarantine();
  }

  /** Keeps the quarantine within its bound: the oldest files set aside go first. */
  private boundQuarantine(): void {
    const into = this.quarantineDir;
    if (into === null) return;
    let names: string[];
    try {
      names = readdirSync(into).filter((n) => ASIDE.test(n));
    } catch {
      return;
    }
    if (names.length <= this.maxQuarantined) return;
    const when = (n: string) => Number(ASIDE.exec(n)?.[2] ?? 0);
    names.sort((a, b) => when(a) - when(b) || a.localeCompare(b));
    for (const n of names.slice(0, names.length - this.maxQuarantined)) {
      try {
        rmSync(join(into, n), { recursive: true, force: true });
      } catch {
        // left for the next time
      }
    }
  }

  /** Writes an entry's file; false when the disk refuses (counted, logged once per episode). */
  private writeEntry(e: Entry, body: Buffer): boolean {
    const dir = this.dir as string;
    try {
      try {
        writeFileAtomic(join(dir, this.fileName(e)), body);
      } catch (err) {
        // the directory could not be made at start (a full disk) or was removed since
        if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
        mkdirSync(dir, { recursive: true });
        writeFileAtomic(join(dir, this.fileName(e)), body);
      }
    } catch (err) {
      this.refused(err);
      return false;
    }
    if (this.stats.writeError !== null) {
      this.log?.info({ previously: this.stats.writeError, droppedBatches: this.heldDropped }, 'InfluxDB spool: the disk takes writes again; the batches held in memory are written to it');
      this.stats.writeError = null;
      this.heldDropped = 0;
    }
    return true;
  }

  private refused(err: unknown): void {
    this.stats.writeErrors++;
    if (this.stats.writeError !== null) return;
    this.stats.writeError = errorText(err);
    this.log?.error({ dir: this.dir, err: this.stats.writeError, maxHeldMB: Math.round(this.maxHeldBytes / 1024 / 1024 * 10) / 10 },
      `InfluxDB spool: cannot write to ${this.dir} (${this.stats.writeError}): unsent batches are held in memory (the oldest dropped beyond the bound) until the disk takes writes again`);
  }

  private add(e: Entry): void {
    this.entries.push(e);
    this.stats.batches++;
    this.stats.points += e.points;
    this.stats.bytes += e.bytes;
  }

  /** Takes an entry out of the counts; `removeFromDisk` deletes its file (durably). */
  private remove(e: Entry, removeFromDisk: boolean): void {
    if (e.gone) return;
    e.gone = true;
    this.stats.batches--;
    this.stats.points -= e.points;
    this.stats.bytes -= e.bytes;
    if (e.held) {
      e.held = false;
      this.heldBytes -= e.bytes;
      this.stats.heldBatches--;
      this.stats.heldPoints -= e.points;
    } else if (removeFromDisk && this.dir !== null) {
      try {
        removeFile(join(this.dir, this.fileName(e)));
      } catch {
        // already gone, or not ours: it was checked at start and is never read again in this run
      }
    }
    e.body = null;
    while (this.entries.length > this.head && this.entries[this.head].gone) this.advance();
  }

  private advance(): void {
    this.entries[this.head] = undefined as unknown as Entry;
    this.head++;
    if (this.head > 1024 && this.head * 2 > this.entries.length) {
      this.entries.splice(0, this.head);
      this.head = 0;
    }
  }

  private trim(): void {
    // the newest batch always stays, even alone over the bound
    while (this.stats.bytes > this.maxBytes && this.size > 1) {
      const e = this.entries[this.head];
      this.stats.droppedPoints += e.points;
      this.remove(e, true);
    }
  }

  /** Held batches beyond their bound: the oldest held one is dropped (the newest always stays). */
  private trimHeld(): void {
    while (this.heldBytes > this.maxHeldBytes && this.stats.heldBatches > 1) {
      const e = this.held.shift() as Entry;
      if (e.gone || !e.held) continue;
      this.stats.droppedPoints += e.points;
      if (this.heldDropped++ === 0) {
        this.log?.warn({ maxHeldMB: Math.round(this.maxHeldBytes / 1024 / 1024 * 10) / 10 }, 'InfluxDB spool: memory bound of held batches reached while the disk refuses writes: the oldest held batches are dropped (counted in points_dropped)');
      }
      this.remove(e, false);
    }
  }

  private fileName(e: Entry): string {
    return `${String(e.seq).padStart(12, '0')}-${e.points}.lp${e.gzip ? '.gz' : ''}`;
  }
}
