/**
 * gzip, read member by member (RFC 1952) with zlib's raw inflate, instead of Node's gunzip stream.
 *
 * Node's gunzip drops the output of the zlib call that meets a problem: a wrong checksum in the trailer
 * or junk after the last member (both found after every byte was decompressed right) then cost up to a
 * whole output chunk of packets before them, and a failed stream drops what it holds unread (a 300-kB
 * .pcapng.gz with a damaged checksum gave 1,351 of its 2,778 packets; `gzip -d` and tshark give them all).
 * Here the header and trailer are read by this module: a checksum that does not match and junk after the
 * data are notes (the capture reader warns), not failures; only damaged deflate data fails, and then the
 * output before it has been handed on. Members follow each other as in `gzip -d` (bgzip writes many);
 * zero bytes after a member are padding, anything else after one is ignored with a note.
 */
import type { InflateRaw } from 'node:zlib';
import { lazyBuiltin } from '../builtins.js';
import { EarshotError, earshotError } from '../errors.js';

// only for a compressed capture: not loaded for every replay
const zlib = lazyBuiltin<typeof import('node:zlib')>('node:zlib');

/** Decompressed output per chunk. */
export const GUNZIP_CHUNK = 256 * 1024;
/**
 * Decompressed chunks the reader has not taken yet before zlib is given more input. The output of one
 * input chunk may be several chunks (gzip's ratio), so this bounds memory as a stream's backpressure does.
 */
const MAX_QUEUED_OUTPUT = 2;
/**
 * Decompressed bytes queued at which zlib itself is paused: one slice of a gzip bomb (256 kB of zeros
 * compressed from 260 MB) would otherwise queue all of its output at once. Far above what one slice of a
 * capture gives (~3x), so a capture never pauses there (a stream paused on failure would drop what it holds).
 */
export const MAX_QUEUED_BYTES = 4 * 1024 * 1024;
/**
 * zlib is given the compressed bytes in slices that end at multiples of this (of the input's offsets),
 * whatever the chunks they came in: zlib drops the output of the call that meets damaged data, so the
 * packets before damage must not depend on where the input's chunks ended (a pipe's, a file's). A file's
 * 1-MiB reads are whole slices; bytes of a pipe that straddle two reads are copied to complete a slice.
 * Smaller slices lose fewer packets before damage but cost a zlib call each (64 kB: a .gz replay of the
 * bench capture took ~12 % longer).
 */
const SLICE = 256 * 1024;
const EMPTY = Buffer.alloc(0);
/** Longest member header kept while it is read (a file name or comment of a damaged header could be endless). */
const MAX_HEADER = 64 * 1024;

const FHCRC = 0x02;
const FEXTRA = 0x04;
const FNAME = 0x08;
const FCOMMENT = 0x10;
const FRESERVED = 0xe0;

/**
 * Damaged deflate data (or a damaged member header after the first): everything decompressed before it
 * was handed on; the capture reader reads that as a capture cut short there, and throws this only when
 * nothing of a capture came out.
 */
export class GzipDamageError extends EarshotError {
  constructor(name: string, readonly reason: string, readonly compressedOffset: number) {
    super('EARSHOT_ERR_GZIP', earshotError('EARSHOT_ERR_GZIP', name, `${reason} (near compressed byte ${compressedOffset})`).message);
  }
}

/** What the stream showed that is no failure: said once by the capture reader. */
export interface GzipNotes {
  /** Members whose trailer's checksum or length does not match their data. */
  checksumMismatches: number;
  /** Bytes after the last member that are neither a member nor zero padding (counted up to the first chunk's end). */
  trailingBytes: number;
  /** Compressed offset of those bytes. */
  trailingAt: number;
  /** The input ended inside a member (before its trailer). */
  cutShort: boolean;
}

/** Decompressed chunks waiting for the reader, and what ended the stream. */
export class Outflow {
  readonly queue: Buffer[] = [];
  /** Bytes in the queue. */
  queuedBytes = 0;
  failure: Error | null = null;
  ended = false;
  private wake: (() => void) | null = null;
  private room: (() => void) | null = null;
  /** Called once the queue is below MAX_QUEUED_BYTES again (zlib paused at it). */
  private drained: (() => void) | null = null;

  push(chunk: Buffer): void {
    this.queue.push(chunk);
    this.queuedBytes += chunk.length;
    this.signal();
  }

  /** True when the producer must pause until `resume` is called (the queue holds MAX_QUEUED_BYTES). */
  full(resume: () => void): boolean {
    if (this.queuedBytes < MAX_QUEUED_BYTES) return false;
    this.drained = resume;
    return true;
  }

  fail(err: Error): void {
    if (this.failure === null) this.failure = err;
    this.signal();
  }

  end(): void {
    this.ended = true;
    this.signal();
  }

  /** Resolves when the reader has taken the queue below MAX_QUEUED_OUTPUT chunks. */
  waitForRoom(): Promise<void> {
    return this.queue.length < MAX_QUEUED_OUTPUT ? Promise.resolve() : new Promise((resolve) => { this.room = resolve; });
  }

  /** Resolves at the next push, failure or end. */
  waitForSignal(): Promise<void> {
    return new Promise((resolve) => { this.wake = resolve; });
  }

  take(): Buffer {
    const chunk = this.queue.shift() as Buffer;
    this.queuedBytes -= chunk.length;
    if (this.drained !== null && this.queuedBytes < MAX_QUEUED_BYTES) {
      const drained = this.drained;
      this.drained = null;
      drained();
    }
    if (this.queue.length < MAX_QUEUED_OUTPUT && this.room !== null) {
      const room = this.room;
      this.room = null;
      room();
    }
    return chunk;
  }

  private signal(): void {
    const wake = this.wake;
    this.wake = null;
    wake?.();
  }
}

const enum State { Header, Body, Trailer, After, Done }

/**
 * The length of the member header at the start of `b`, 0 when more bytes are needed, or a reason the
 * bytes are no gzip member header.
 */
function headerLength(b: Buffer): number | string {
  if (b.length < 10) return 0;
  if (b[0] !== 0x1f || b[1] !== 0x8b) return 'not a gzip member header';
  if (b[2] !== 8) return `compression method ${b[2]} (gzip knows only 8, deflate)`;
  const flags = b[3];
  if ((flags & FRESERVED) !== 0) return 'reserved header flags set';
  let at = 10;
  if (flags & FEXTRA) {
    if (b.length < at + 2) return 0;
    at += 2 + b.readUInt16LE(at);
  }
  for (const flag of [FNAME, FCOMMENT]) {
    if ((flags & flag) === 0) continue;
    const zero = b.indexOf(0, at);
    if (zero < 0) return 0;
    at = zero + 1;
  }
  if (flags & FHCRC) at += 2;
  return b.length < at ? 0 : at;
}

/** Writes `chunk` and resolves once zlib has taken in what it will of it (its buffer may then be reused). */
function feed(inflate: InflateRaw, chunk: Buffer): Promise<void> {
  return new Promise((resolve, reject) => {
    inflate.write(chunk, (err) => (err ? reject(err) : resolve()));
  });
}

/** Decompresses gzip members pushed chunk by chunk into `out`; `name` names the input in messages. */
export class GzipMembers {
  readonly notes: GzipNotes = { checksumMismatches: 0, trailingBytes: 0, trailingAt: 0, cutShort: false };
  private state = State.Header;
  /** Header or trailer bytes carried over from earlier chunks (copied: a chunk's buffer is reused). */
  private pending: Buffer = Buffer.alloc(0);
  /** Compressed offset of pending[0], or of the next byte given to zlib. */
  private offset = 0;
  private inflate: InflateRaw | null = null;
  private inflateEnded = false;
  /** Bytes waiting to complete a slice. */
  private staged: Buffer = EMPTY;
  /** At the end of input: a slice short of SLICE is given as it is. */
  private flushing = false;
  private crc = 0;
  private size = 0;
  private destroyed = false;

  constructor(private readonly name: string, private readonly out: Outflow) {}

  /** Takes the next compressed chunk; false once nothing more is wanted (failed, or junk after the data). */
  async push(chunk: Buffer): Promise<boolean> {
    let rest = chunk;
    while ((rest.length > 0 || (this.flushing && this.staged.length > 0 && this.state === State.Body)) && !this.destroyed) {
      switch (this.state) {
        case State.Header: {
          const bytes = this.pending.length > 0 ? Buffer.concat([this.pending, rest]) : rest;
          const length = headerLength(bytes);
          if (typeof length === 'string') {
            this.out.fail(new GzipDamageError(this.name, `damaged gzip member header: ${length}`, this.offset));
            return this.stop();
          }
          if (length === 0) {
            if (bytes.length > MAX_HEADER) {
              this.out.fail(new GzipDamageError(this.name, `gzip member header longer than ${MAX_HEADER} bytes`, this.offset));
              return this.stop();
            }
            this.pending = Buffer.from(bytes);
            return true;
          }
          this.offset += length;
          rest = bytes.subarray(length);
          this.pending = Buffer.alloc(0);
          this.startMember();
          break;
        }
        case State.Body: {
          const inflate = this.inflate as InflateRaw;
          // slices end at multiples of SLICE of the file: a file's reads (1 MiB) then need no copy
          const room = SLICE - (this.offset % SLICE);
          let piece: Buffer;
          if (this.staged.length > 0 || rest.length < room) {
            const take = Math.min(room - this.staged.length, rest.length);
            this.staged = Buffer.concat([this.staged, rest.subarray(0, take)]);
            rest = rest.subarray(take);
            if (this.staged.length < room && !this.flushing) return true; // the next chunk completes the slice
            piece = this.staged;
            this.staged = EMPTY;
          } else {
            piece = rest.subarray(0, room);
            rest = rest.subarray(room);
          }
          const before = inflate.bytesWritten;
          try {
            if (!this.inflateEnded) await feed(inflate, piece);
          } catch {
            return this.stop(); // the 'error' handler has told the reader
          }
          if (this.destroyed) return false;
          const used = inflate.bytesWritten - before;
          this.offset += used;
          // all taken in and the deflate data not ended: the next slice continues it
          if (used === piece.length && !this.inflateEnded) break;
          // the member's deflate data ended inside this slice: the trailer follows
          rest = Buffer.concat([piece.subarray(used), rest]);
          this.endMember();
          break;
        }
        case State.Trailer: {
          const bytes = this.pending.length > 0 ? Buffer.concat([this.pending, rest]) : rest;
          if (bytes.length < 8) {
            this.pending = Buffer.from(bytes);
            return true;
          }
          if (bytes.readUInt32LE(0) !== this.crc || bytes.readUInt32LE(4) !== this.size >>> 0) this.notes.checksumMismatches++;
          this.offset += 8;
          rest = bytes.subarray(8);
          this.pending = Buffer.alloc(0);
          this.state = State.After;
          break;
        }
        case State.After: {
          // zero bytes pad a member (tape blocks, some tools): skipped, as gzip -d does
          let at = 0;
          while (at < rest.length && rest[at] === 0) at++;
          this.offset += at;
          rest = rest.subarray(at);
          if (rest.length === 0) return true;
          if (rest[0] === 0x1f && (rest.length === 1 || rest[1] === 0x8b)) {
            this.state = State.Header;
            break;
          }
          this.notes.trailingBytes = rest.length;
          this.notes.trailingAt = this.offset;
          this.state = State.Done;
          return false;
        }
        case State.Done:
          return false;
      }
    }
    return !this.destroyed && this.state !== State.Done;
  }

  /** The input ended. */
  async end(): Promise<void> {
    this.flushing = true;
    if (this.state === State.Body && this.staged.length > 0) await this.push(EMPTY);
    if (this.state === State.Body && !this.inflateEnded && !this.destroyed) {
      const inflate = this.inflate as InflateRaw;
      // Z_SYNC_FLUSH: what zlib holds comes out, so a .pcap.gz cut short reads as a .pcap cut short
      await new Promise<void>((resolve) => {
        inflate.once('close', resolve);
        inflate.end();
      });
    }
    if (this.state === State.Body || this.state === State.Trailer || (this.state === State.Header && this.pending.length > 0)) {
      this.notes.cutShort = true;
    }
    this.stop();
    this.out.end();
  }

  /** Stops: no more output. */
  destroy(): void {
    this.stop();
  }

  private startMember(): void {
    const inflate = zlib().createInflateRaw({ finishFlush: zlib().constants.Z_SYNC_FLUSH, chunkSize: GUNZIP_CHUNK });
    this.inflate = inflate;
    this.inflateEnded = false;
    this.staged = EMPTY;
    this.crc = 0;
    this.size = 0;
    const memberOffset = this.offset;
    inflate.on('data', (chunk: Buffer) => {
      this.crc = zlib().crc32(chunk, this.crc);
      this.size += chunk.length;
      this.out.push(chunk);
      // paused, zlib stops within its current input once its own buffer is full, until resumed
      if (this.out.full(() => inflate.resume())) inflate.pause();
    });
    inflate.on('end', () => { this.inflateEnded = true; });
    inflate.on('error', (err: Error) => {
      // zlib counts the compressed bytes it was given: the damage is in the last chunk it took
      this.out.fail(new GzipDamageError(this.name, err.message, memberOffset + inflate.bytesWritten));
    });
    this.state = State.Body;
  }

  private endMember(): void {
    this.inflate?.destroy();
    this.inflate = null;
    this.state = State.Trailer;
  }

  private stop(): false {
    this.destroyed = true;
    this.inflate?.destroy();
    this.inflate = null;
    return false;
  }
}
