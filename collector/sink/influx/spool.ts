/**
 * The spool: write batches InfluxDB could not take, oldest first, bounded in bytes. On disk (one file
 * per batch under dataDir/spool/influx, written to a temporary name and renamed, so a crash leaves
 * whole batches or none) it survives restarts; without a data directory it is kept in memory.
 * When full, the oldest batches are dropped and their points counted.
 */
import { mkdirSync, readdirSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

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
  /** The body when kept in memory. */
  body: Buffer | null;
}

const NAME = /^(\d{12})-(\d+)\.lp(\.gz)?$/;

export interface SpoolStats {
  /** Batches and points waiting, and their size in bytes. */
  batches: number;
  points: number;
  bytes: number;
  /** Points dropped because the spool was full (or a spooled file was unreadable). */
  droppedPoints: number;
}

export class Spool {
  readonly stats: SpoolStats = { batches: 0, points: 0, bytes: 0, droppedPoints: 0 };
  private readonly entries: Entry[] = [];
  private head = 0;
  private nextSeq = 1;

  /** `dir` null keeps batches in memory. Opening a directory picks up what an earlier run left. */
  constructor(private readonly dir: string | null, private readonly maxBytes: number) {
    if (dir === null) return;
    mkdirSync(dir, { recursive: true });
    const found: Entry[] = [];
    for (const name of readdirSync(dir)) {
      const m = NAME.exec(name);
      if (!m) {
        // a batch cut short by a crash while it was being written
        if (name.endsWith('.tmp')) rmSync(join(dir, name), { force: true });
        continue;
      }
      found.push({ seq: Number(m[1]), points: Number(m[2]), gzip: m[3] !== undefined, bytes: statSync(join(dir, name)).size, body: null });
    }
    found.sort((a, b) => a.seq - b.seq);
    for (const e of found) this.add(e);
    this.nextSeq = found.length > 0 ? found[found.length - 1].seq + 1 : 1;
    this.trim();
  }

  /** True when batches survive a restart. */
  get persistent(): boolean {
    return this.dir !== null;
  }

  get size(): number {
    return this.entries.length - this.head;
  }

  /** Adds a batch at the end; drops the oldest batches while the spool is over its bound. */
  push(batch: Batch): void {
    const seq = this.nextSeq++;
    const entry: Entry = { seq, points: batch.points, bytes: batch.body.length, gzip: batch.gzip, body: null };
    if (this.dir === null) {
      entry.body = batch.body;
    } else {
      const name = this.fileName(entry);
      writeFileSync(join(this.dir, `${name}.tmp`), batch.body);
      renameSync(join(this.dir, `${name}.tmp`), join(this.dir, name));
    }
    this.add(entry);
    this.trim();
  }

  /** The oldest batch, or null when empty. An unreadable file is dropped (counted) and the next one tried. */
  peek(): Batch | null {
    while (this.size > 0) {
      const e = this.entries[this.head];
      if (e.body !== null) return { body: e.body, points: e.points, gzip: e.gzip };
      try {
        return { body: readFileSync(join(this.dir as string, this.fileName(e))), points: e.points, gzip: e.gzip };
      } catch {
        this.stats.droppedPoints += e.points;
        this.shift();
      }
    }
    return null;
  }

  /** Removes the oldest batch (delivered, or rejected for good). */
  shift(): void {
    if (this.size === 0) return;
    const e = this.entries[this.head];
    this.entries[this.head] = undefined as unknown as Entry;
    this.head++;
    if (this.head > 1024 && this.head * 2 > this.entries.length) {
      this.entries.splice(0, this.head);
      this.head = 0;
    }
    this.stats.batches--;
    this.stats.points -= e.points;
    this.stats.bytes -= e.bytes;
    if (this.dir !== null) rmSync(join(this.dir, this.fileName(e)), { force: true });
  }

  private add(e: Entry): void {
    this.entries.push(e);
    this.stats.batches++;
    this.stats.points += e.points;
    this.stats.bytes += e.bytes;
  }

  private trim(): void {
    // the newest batch always stays, even alone over the bound
    while (this.stats.bytes > this.maxBytes && this.size > 1) {
      this.stats.droppedPoints += this.entries[this.head].points;
      this.shift();
    }
  }

  private fileName(e: Entry): string {
    return `${String(e.seq).padStart(12, '0')}-${e.points}.lp${e.gzip ? '.gz' : ''}`;
  }
}
