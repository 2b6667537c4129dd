/**
 * What people and other systems tell earshot while it runs (labels, wake events from the API and MQTT),
 * kept in the data directory so that a restart, a kill -9 or a power cut does not forget it. Each
 * accepted batch is appended to a small JSON Lines file and fsynced before the caller answers: cheap
 * (one line, not the whole inventory) and durable. The file is bounded: once it holds twice its bound
 * of lines it is rewritten atomically with the records still live. Reading back, every line is
 * checked; a file with a bad line (an append torn by a power cut, a flipped byte) is copied aside and
 * rewritten with the good lines, and the warning names both files.
 */
import { closeSync, existsSync, fsyncSync, ftruncateSync, openSync, readFileSync, writeSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fsyncDir, keepDamagedCopy, quarantine, writeFileAtomic } from '../durable.js';
import type { Label } from './index.js';
import { MAX_WAKE_DEVICE_LENGTH, MAX_WAKE_SOURCE_LENGTH, type WakeEvent } from './wake-events.js';

/** A record that could not be saved: the API answers 503 with this message, and nothing changed. */
export class NotSavedError extends Error {
  readonly statusCode = 503;
}

export interface JournalOptions<T> {
  /** File name in the data directory. */
  file: string;
  /** What the records are, for messages ("labels"). */
  what: string;
  /** Most live records; the file is compacted past twice this many lines. */
  max: number;
  /** A record from one parsed line, or null when the line is not one. */
  parse: (value: unknown) => T | null;
  /** The records still live (what a compaction keeps), oldest first. */
  live: () => T[];
}

/** One append-only, fsynced, bounded journal. Opened with load(); append() throws NotSavedError. */
export class Journal<T> {
  readonly path: string;
  private fd = -1;
  private size = 0;
  private lines = 0;
  /** The file on disk lacks live records (its rewrite at load failed): rewrite before appending. */
  private mustCompact = false;

  constructor(dir: string, private readonly options: JournalOptions<T>) {
    this.path = join(dir, options.file);
  }

  /**
   * Reads the journal and gives its records, oldest first, to `apply`. Returns a warning when a line was
   * damaged (the file is then quarantined and rewritten with the good records), null otherwise.
   */
  load(apply: (records: T[]) => void): string | null {
    let text: string;
    try {
      text = readFileSync(this.path, 'utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return null;
      // a directory of that name, a file that cannot be read: set aside, so that it stops no start
      const aside = quarantine(this.path);
      return `${this.path}: cannot read (${(err as Error).message}); ${aside ? `kept as ${aside}` : 'removed'}, no ${this.options.what} restored`;
    }
    const records: T[] = [];
    let bad = 0;
    let firstBad = 0;
    const lines = text.split('\n');
    // the text after the last newline is a torn append when not empty
    lines.forEach((line, i) => {
      if (line === '' && i === lines.length - 1) return;
      let record: T | null = null;
      try {
        record = this.options.parse(JSON.parse(line));
      } catch {
        record = null;
      }
      if (record === null) {
        if (bad++ === 0) firstBad = i + 1;
      } else {
        records.push(record);
      }
    });
    apply(records);
    this.lines = records.length + bad;
    this.size = Buffer.byteLength(text);
    if (bad === 0) {
      if (this.lines > 2 * this.options.max) this.compactOrLater();
      return null;
    }
    // a copy first, then the good records replace the file atomically: a power cut between the two
    // finds the damaged file again, never no file
    const aside = keepDamagedCopy(this.path, text);
    const notRewritten = this.compactOrLater();
    return `${this.path}: ${bad} damaged line${bad === 1 ? '' : 's'} (first: line ${firstBad}); ${aside ? `a copy kept as ${aside}` : 'no copy kept'}, ${records.length} ${this.options.what} kept${notRewritten ? ` (${notRewritten})` : ''}`;
  }

  /** Compacts now; when that fails (a full disk at start), the next append compacts first. */
  private compactOrLater(): string | null {
    try {
      this.compact();
      return null;
    } catch (err) {
      this.mustCompact = true;
      return (err as Error).message;
    }
  }

  /** Appends `records` and fsyncs them; on failure nothing is left half written (NotSavedError). */
  append(records: readonly T[]): void {
    if (records.length === 0) return;
    if (this.mustCompact || this.lines + records.length > 2 * this.options.max) this.compact();
    const bytes = Buffer.from(records.map((r) => `${JSON.stringify(r)}\n`).join(''), 'utf8');
    try {
      const created = this.fd < 0 && !existsSync(this.path);
      if (this.fd < 0) this.fd = openSync(this.path, 'a', 0o600);
      let done = 0;
      while (done < bytes.length) done += writeSync(this.fd, bytes, done, bytes.length - done);
      fsyncSync(this.fd);
      // a new file's name must survive a power cut too
      if (created) fsyncDir(dirname(this.path));
    } catch (err) {
      // a partial line would glue onto the next append: cut back to where this one began
      try {
        if (this.fd >= 0) ftruncateSync(this.fd, this.size);
      } catch {
        // the next load quarantines what is left
      }
      this.close();
      throw new NotSavedError(`cannot save ${this.options.what} in ${this.path}: ${(err as Error).message}; nothing was changed`);
    }
    this.size += bytes.length;
    this.lines += records.length;
  }

  /** Closes the file (a later append opens it again). */
  close(): void {
    if (this.fd < 0) return;
    try {
      closeSync(this.fd);
    } catch {
      // closing a descriptor that failed cannot be helped
    }
    this.fd = -1;
  }

  /** Rewrites the file with the live records only (atomically, fsynced). */
  private compact(): void {
    const live = this.options.live();
    const text = live.map((r) => `${JSON.stringify(r)}\n`).join('');
    this.close();
    try {
      writeFileAtomic(this.path, text, { mode: 0o600 });
    } catch (err) {
      throw new NotSavedError(`cannot rewrite ${this.path}: ${(err as Error).message}; nothing was changed`);
    }
    this.size = Buffer.byteLength(text);
    this.lines = live.length;
    this.mustCompact = false;
  }

}

/** A label as saved: the activation's id and the person's word. */
export interface SavedLabel {
  id: string;
  label: Label;
}

const ACTIVATION_ID = /^[0-9a-f]{12}-\d{1,16}$/;

/** A saved label, or null when `value` is not one. */
export function parseSavedLabel(value: unknown): SavedLabel | null {
  if (typeof value !== 'object' || value === null) return null;
  const { id, label } = value as Record<string, unknown>;
  if (typeof id !== 'string' || !ACTIVATION_ID.test(id)) return null;
  if (label !== 'intended' && label !== 'not-intended') return null;
  return { id, label };
}

const LATEST_MS = 4_102_444_800_000;

/** A wake event as saved: what the store holds, its texts within the limits every source of wake events has. */
export function savedWakeEvent(event: WakeEvent): WakeEvent {
  const saved: WakeEvent = { time: Math.round(event.time), device: event.device === null ? null : event.device.slice(0, MAX_WAKE_DEVICE_LENGTH), source: event.source.slice(0, MAX_WAKE_SOURCE_LENGTH) };
  if (event.intended !== undefined) saved.intended = event.intended;
  return saved;
}

/** A saved wake event, or null when `value` is not one. */
export function parseSavedWakeEvent(value: unknown): WakeEvent | null {
  if (typeof value !== 'object' || value === null) return null;
  const { time, device, source, intended } = value as Record<string, unknown>;
  if (typeof time !== 'number' || !Number.isInteger(time) || time < 0 || time > LATEST_MS) return null;
  // as lenient as savedWakeEvent() is on the way in: whatever was saved loads again
  if (device !== null && (typeof device !== 'string' || device.length > MAX_WAKE_DEVICE_LENGTH)) return null;
  if (typeof source !== 'string' || source.length > MAX_WAKE_SOURCE_LENGTH) return null;
  if (intended !== undefined && typeof intended !== 'boolean') return null;
  const event: WakeEvent = { time, device, source };
  if (intended !== undefined) event.intended = intended;
  return event;
}
