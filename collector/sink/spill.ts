/**
 * Lines that wait on disk instead of in the heap: the report is written when a run stops, and a live
 * collector that kept every finished flow and DNS answer for it in memory grew all day (issue 16's soak:
 * the pipeline thread's heap went from ~10 to ~23 MB over 24 h of a home's traffic, and V8 reserved
 * three times that). Like Zeek's conn.log, each record is written as it finishes, already in its
 * report form, and read back once at the end.
 *
 * A SpillDir is one run's scratch directory (`earshot-spill-PID-XXXXXX` under the data directory or the
 * system's temp directory), made at the first write and removed by close(); one a killed run left is
 * removed by the next run that spills into the same place. A SpillRing keeps the newest `max` lines
 * there in segment files of max/8 lines, deleting a segment once every line in it is older than the
 * newest `max`: the disk holds at most max + max/8 lines. The files are scratch (unsynced, never
 * renamed into place): the report they feed is only written at the end, so nothing is lost that the
 * in-memory report would have kept.
 *
 * When a write fails (a full disk, a directory that cannot be made), one warning says so and the ring
 * keeps its lines in memory for the rest of the run (the same `max`): the report stays whole.
 */
import { closeSync, ftruncateSync, mkdtempSync, openSync, readdirSync, readSync, rmSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { StringDecoder } from 'node:string_decoder';
import { otherProcessRuns } from '../data-dir.js';
import { NewestRing } from './ring.js';

const PREFIX = 'earshot-spill-';

/** `text` as one flat string (a slice of one character more: ~20 bytes beside the text). */
function flat(text: string): string {
  return ` ${text}`.slice(1);
}
/** Lines are written in batches of about this many characters: one write per ~250 flows. */
const BATCH = 1 << 16;

/** A run's scratch directory for spilled lines; `base` null keeps every ring in memory. */
export class SpillDir {
  private path: string | null = null;
  private failed = false;
  private closed = false;
  private files = 0;
  private readonly rings: SpillRing[] = [];

  constructor(readonly base: string | null, private readonly onWarning: (message: string) => void = () => {}) {}

  /** A ring of the newest `max` lines, in files named after `name`. */
  ring(name: string, max: number): SpillRing {
    const ring = new SpillRing(this, name, max);
    this.rings.push(ring);
    return ring;
  }

  /** A new file's path in the directory (made at the first call); null when spilling is off or failed. */
  newFile(name: string): string | null {
    if (this.base === null || this.failed || this.closed) return null;
    if (this.path === null) {
      try {
        removeStale(this.base);
        this.path = mkdtempSync(join(this.base, `${PREFIX}${process.pid}-`));
      } catch (err) {
        this.fail(`cannot make a directory in ${this.base}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
        return null;
      }
    }
    return join(this.path, `${name}-${++this.files}.jsonl`);
  }

  /** Where the lines go (null: in memory). */
  get dir(): string | null {
    return this.path;
  }

  /** A write failed: one warning for the run; rings keep their lines in memory from now on. */
  fail(reason: string): void {
    if (!this.failed) this.onWarning(`the report's records cannot be spilled to disk (${reason}): they are kept in memory for the rest of the run`);
    this.failed = true;
  }

  /** Removes the directory and everything in it (the rings keep nothing more). */
  close(): void {
    this.closed = true;
    for (const ring of this.rings) ring.close();
    if (this.path !== null) rmSync(this.path, { recursive: true, force: true });
    this.path = null;
  }
}

/** Removes spill directories whose process is gone (a run killed before it could clean up). */
function removeStale(base: string): void {
  for (const name of readdirSync(base)) {
    const m = /^earshot-spill-(\d+)-/.exec(name);
    if (m === null) continue;
    const pid = Number(m[1]);
    // this process's other runs (tests) clean up after themselves
    if (pid === process.pid || otherProcessRuns(pid)) continue;
    rmSync(join(base, name), { recursive: true, force: true });
  }
}


interface Segment {
  path: string;
  lines: number;
  /** Bytes of whole lines written. */
  bytes: number;
}

/** The newest `max` lines (no newline in them), on disk in `dir` while it can be written, else in memory. */
export class SpillRing {
  private readonly segments: Segment[] = [];
  private current: { segment: Segment; fd: number } | null = null;
  private batch = '';
  private batchLines = 0;
  private onDisk = 0;
  private memory: NewestRing<string> | null = null;
  private pushed = 0;
  private readonly segmentLines: number;

  /** Made by SpillDir.ring(). */
  constructor(private readonly dir: SpillDir, private readonly name: string, private readonly max: number) {
    this.segmentLines = Math.max(1, Math.ceil(max / 8));
    if (dir.base === null) this.memory = new NewestRing<string>(max);
  }

  push(line: string): void {
    this.pushed++;
    if (this.max === 0) return;
    if (this.memory !== null) {
      // a line built by concatenation is a rope of its pieces (~2 KB for a flow's ~330 characters): a
      // substring of it needs it flat, so V8 copies it into one string and the pieces become garbage
      // (reading a character did so in Node 20's V8, no longer in Node 22's and 24's: 1.5 KB a line)
      this.memory.push(flat(line));
      return;
    }
    this.batch += `${line}\n`;
    this.batchLines++;
    const segmentFull = (this.current?.segment.lines ?? 0) + this.batchLines >= this.segmentLines;
    if (segmentFull || this.batch.length >= BATCH) this.flush();
    if (segmentFull && this.memory === null) this.rotate();
  }

  /** Lines pushed out by newer ones (or refused, with max 0). */
  get dropped(): number {
    return this.pushed - Math.min(this.pushed, this.max);
  }

  /** The kept lines, oldest first (read from disk now). */
  *lines(): Generator<string> {
    this.flush();
    const inMemory = this.memory?.toArray() ?? [];
    let skip = this.onDisk - Math.min(this.onDisk, Math.max(0, this.max - inMemory.length));
    for (const segment of [...this.segments, ...(this.current ? [this.current.segment] : [])]) {
      if (skip >= segment.lines) {
        skip -= segment.lines;
        continue;
      }
      for (const line of readLines(segment)) {
        if (skip > 0) skip--;
        else yield line;
      }
    }
    yield* inMemory;
  }

  /** Writes the batch; on failure the batch and every later line stay in memory. */
  private flush(): void {
    if (this.batchLines === 0 || this.memory !== null) return;
    const lines = this.batchLines;
    const data = Buffer.from(this.batch);
    this.batch = '';
    this.batchLines = 0;
    if (this.current === null) {
      const path = this.dir.newFile(this.name);
      if (path === null) return this.toMemory(data);
      try {
        this.current = { segment: { path, lines: 0, bytes: 0 }, fd: openSync(path, 'wx') };
      } catch (err) {
        this.dir.fail(`${path}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
        return this.toMemory(data);
      }
    }
    const { segment, fd } = this.current;
    try {
      for (let off = 0; off < data.length;) off += writeSync(fd, data, off);
    } catch (err) {
      // a line cut short by the full disk is not left for the reader
      try {
        ftruncateSync(fd, segment.bytes);
      } catch {
        // the reader stops at segment.bytes anyway
      }
      this.dir.fail(`${segment.path}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
      return this.toMemory(data);
    }
    segment.lines += lines;
    segment.bytes += data.length;
    this.onDisk += lines;
  }

  /** From now on in memory, starting with the lines that could not be written. */
  private toMemory(unwritten: Buffer): void {
    this.closeCurrent();
    this.memory = new NewestRing<string>(this.max);
    const text = unwritten.toString();
    for (let start = 0; start < text.length;) {
      const end = text.indexOf('\n', start);
      this.memory.push(text.slice(start, end));
      start = end + 1;
    }
  }

  /** Closes the segment being written and deletes the oldest ones no kept line is in. */
  private rotate(): void {
    if (this.current === null) return;
    this.segments.push(this.current.segment);
    this.closeCurrent();
    while (this.segments.length > 0 && this.onDisk - this.segments[0].lines >= this.max) {
      const old = this.segments.shift() as Segment;
      this.onDisk -= old.lines;
      rmSync(old.path, { force: true });
    }
  }

  /** Closes the file being written (SpillDir.close() removes the files); later lines stay in memory. */
  close(): void {
    this.closeCurrent();
    this.segments.length = 0;
    this.onDisk = 0;
    this.memory ??= new NewestRing<string>(this.max);
  }

  private closeCurrent(): void {
    if (this.current === null) return;
    closeSync(this.current.fd);
    this.current = null;
  }
}

/** The whole lines of a segment (up to the bytes written), in order. */
function* readLines(segment: Segment): Generator<string> {
  const fd = openSync(segment.path, 'r');
  try {
    const buf = Buffer.allocUnsafe(BATCH);
    // a character cut by a chunk's end waits for the next chunk
    const decoder = new StringDecoder('utf8');
    let rest = '';
    for (let pos = 0; pos < segment.bytes;) {
      const n = readSync(fd, buf, 0, Math.min(buf.length, segment.bytes - pos), pos);
      if (n === 0) break;
      pos += n;
      const text = rest + decoder.write(buf.subarray(0, n));
      let start = 0;
      for (let nl = text.indexOf('\n'); nl !== -1; nl = text.indexOf('\n', start)) {
        yield text.slice(start, nl);
        start = nl + 1;
      }
      rest = text.slice(start);
    }
  } finally {
    closeSync(fd);
  }
}
