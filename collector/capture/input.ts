/**
 * Opens the bytes of a capture: a file, stdin or a given stream, transparently gunzipped when it starts
 * with the gzip magic. Every failure becomes a coded error naming the input.
 *
 * Files and pipes are read into one buffer that is reused for every chunk: a fresh buffer per read
 * (64 KB per pipe read, 256 KB per gunzip output chunk) is garbage that V8 frees only at its next
 * collection, and tens of MB of it were alive at any moment (a stdin replay of the bench capture
 * peaked 14 % above the plain file's). Reuse holds because every consumer is done with a chunk when it
 * asks for the next one: the stream reader parses it (copying a record cut at its end into its carry
 * buffer), and gunzip is given the next input only once it has taken in the last (its write callback).
 */
import { closeSync, constants as fsConstants, createReadStream, fstatSync, openSync, readSync } from 'node:fs';
import type { OnReadOpts, SocketConstructorOpts } from 'node:net';
import { stat } from 'node:fs/promises';
import type { Readable } from 'node:stream';
import { runInNewContext } from 'node:vm';
import { isMainThread } from 'node:worker_threads';
import { lazyBuiltin } from '../builtins.js';
import { earshotError, isEarshotError, type EarshotError } from '../errors.js';
import { GzipMembers, Outflow, type GzipNotes } from './gzip.js';

// pipes and sockets only (a file is read with fs), and a rare collection: not loaded for every replay
const net = lazyBuiltin<typeof import('node:net')>('node:net');
const v8 = lazyBuiltin<typeof import('node:v8')>('node:v8');

/**
 * Reads of 1 MiB: few enough chunks that records straddling a boundary cost nothing, small enough that
 * the buffer the kernel copies into stays in the CPU's cache while the records are parsed out of it
 * (4 MiB: reading the 426 MB bench capture took ~25 ms longer, and its first fill ~13 ms of page faults).
 */
const READ_CHUNK = 1024 * 1024;
/** A pipe hands over at most what it holds (64 KB on Linux by default); a socket may give more. */
const PIPE_CHUNK = 256 * 1024;

/** Bytes of fresh buffers between two minor collections (see collectYoung). */
const FRESH_BYTES_PER_GC = 8 * 1024 * 1024;

/** An opened capture input. */
export interface CaptureInput {
  /** Decompressed bytes, in chunks; a chunk is valid only until the next one is asked for. */
  readonly chunks: AsyncIterable<Buffer>;
  /** File size when the input is a regular file, else null. */
  readonly totalBytes: number | null;
  /** Raw (possibly compressed) bytes read so far. */
  fileBytesRead(): number;
  /** True once the input turned out to be gzip-compressed. */
  compressed(): boolean;
  /** What the gzip stream showed that is no failure (a checksum, junk after it, cut short); null when not gzip. */
  gzipNotes(): GzipNotes | null;
  /** Stops reading and releases the file. */
  close(): void;
}

/** Raw bytes from somewhere, and how to stop reading them. */
interface RawInput {
  chunks: AsyncGenerator<Buffer>;
  close(): void;
}

interface Counter {
  bytes: number;
  compressed: boolean;
}

function errnoCode(err: unknown): string {
  return typeof err === 'object' && err !== null && 'code' in err ? String((err as { code: unknown }).code) : '';
}

function errorMessage(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

/** Maps a file-system error on `name` to its coded error. */
export function fileError(err: unknown, name: string): EarshotError {
  if (isEarshotError(err)) return err;
  const code = errnoCode(err);
  if (code === 'ENOENT') return earshotError(name.includes('\uFFFD') ? 'EARSHOT_ERR_FILE_NAME_NOT_UTF8' : 'EARSHOT_ERR_FILE_NOT_FOUND', name);
  if (code === 'EISDIR') return earshotError('EARSHOT_ERR_FILE_IS_DIRECTORY', name);
  return earshotError('EARSHOT_ERR_FILE_UNREADABLE', name, errorMessage(err));
}

type MinorGc = (options: { type: 'minor' }) => void;
let minorGc: MinorGc | null | undefined;

/**
 * Where a buffer per chunk cannot be avoided (gunzip's output: Node's zlib stream allocates a new one
 * for every chunk; a stream made by the caller, such as tcpdump's stdout), the parsed chunks are dead
 * at once, but V8 collects them only when 32 MB of young buffers are pending (twice its default
 * semi-space, whatever --max-semi-space-size says), so that much dead memory sat on top of every such
 * read: a .gz replay of the bench capture peaked at 163 MB against 137 MB for the plain file. A minor
 * collection (a scavenge, about a millisecond) after every FRESH_BYTES_PER_GC of them keeps it to that.
 * The collector is V8's own gc extension, switched on here; where that fails nothing is collected early.
 */
function freshBytesCounter(): (bytes: number) => void {
  if (minorGc === undefined) {
    try {
      v8().setFlagsFromString('--expose-gc');
      const gc: unknown = runInNewContext('gc');
      minorGc = typeof gc === 'function' ? gc as MinorGc : null;
    } catch {
      minorGc = null;
    }
  }
  const gc = minorGc;
  if (gc === null) return () => undefined;
  let fresh = 0;
  return (bytes) => {
    fresh += bytes;
    if (fresh < FRESH_BYTES_PER_GC) return;
    fresh = 0;
    gc({ type: 'minor' });
  };
}

/**
 * Standard input: a regular file is read as a file; a pipe or socket through the event loop, never
 * from the thread pool (a read there would block one of its threads until input comes, and the process
 * could not exit while it waits). Anything else (a terminal) as a stream: process.stdin on the main
 * thread; on the pipeline's thread process.stdin is the worker's own (empty) stream, so fd 0 directly.
 */
function stdinInput(counter: Counter, name: string): RawInput {
  const info = fstatSync(0);
  if (info.isFile()) return { chunks: fdChunks(0, counter, name), close: () => undefined };
  if (info.isFIFO() || info.isSocket()) return pipeChunks(0, counter, name);
  const stream = isMainThread ? process.stdin : createReadStream('', { fd: 0, autoClose: false, highWaterMark: 1 << 16 });
  return {
    chunks: streamChunks(stream, counter, name),
    // stdin belongs to the process: stop reading it without closing the descriptor
    close: () => stream.pause(),
  };
}

/**
 * Opens `path` ('-' = stdin) or `stream` when given; `name` names the input in messages. Rejects with
 * EARSHOT_ERR_FILE_NOT_FOUND, _FILE_IS_DIRECTORY or _FILE_UNREADABLE.
 */
export async function openCaptureInput(path: string, stream: NodeJS.ReadableStream | AsyncIterable<Buffer> | undefined, name: string): Promise<CaptureInput> {
  let totalBytes: number | null = null;
  const counter: Counter = { bytes: 0, compressed: false };
  let raw: RawInput;
  if (stream !== undefined) {
    raw = { chunks: streamChunks(stream, counter, name), close: () => (stream as Readable).destroy?.() };
  } else if (path === '-') {
    raw = stdinInput(counter, name);
  } else {
    let info;
    try {
      info = await stat(path);
    } catch (err) {
      throw fileError(err, name);
    }
    if (info.isDirectory()) throw earshotError('EARSHOT_ERR_FILE_IS_DIRECTORY', name);
    if (info.isFile()) totalBytes = info.size;
    if (!info.isFile()) {
      // a FIFO (or a device): opened and read on the thread pool, as a stream. Opened here, a FIFO with
      // no writer blocked the thread in open() and Ctrl-C and SIGTERM were never acted on
      const stream = createReadStream(path, { highWaterMark: 1 << 20 });
      const close = () => {
        // an open() still waiting for a writer holds a thread-pool thread and keeps the process alive:
        // opening the write end ourselves (no wait) lets it finish, and closing it is the end of input
        if (stream.pending && info.isFIFO()) {
          try {
            closeSync(openSync(path, fsConstants.O_WRONLY | fsConstants.O_NONBLOCK));
          } catch {
            // no reader left waiting: nothing holds
          }
        }
        stream.destroy();
      };
      raw = { chunks: streamChunks(stream, counter, name), close };
      return inputOver(raw, counter, name, totalBytes);
    }
    let fd: number;
    try {
      fd = openSync(path, 'r');
    } catch (err) {
      throw fileError(err, name);
    }
    raw = { chunks: fdChunks(fd, counter, name, () => closeSync(fd)), close: () => undefined };
  }
  return inputOver(raw, counter, name, totalBytes);
}

/** The input over `raw`: decompressed when it is gzip, counted. */
function inputOver(raw: RawInput, counter: Counter, name: string, totalBytes: number | null): CaptureInput {
  const gzip: { members: GzipMembers | null } = { members: null };
  return {
    chunks: decompressed(raw.chunks, counter, name, gzip),
    totalBytes,
    fileBytesRead: () => counter.bytes,
    compressed: () => counter.compressed,
    gzipNotes: () => gzip.members?.notes ?? null,
    close() {
      gzip.members?.destroy();
      raw.close();
      // a generator suspended at a yield runs its finally (closing the file) only when returned
      void raw.chunks.return(undefined).catch(() => undefined);
    },
  };
}

/**
 * Reads a file descriptor with synchronous reads into one reused buffer: no allocation and no
 * thread-pool round trip per chunk (a stream was ~10x slower here). Between chunks it yields to the
 * event loop so signals, timers and the progress bar keep running. `done` releases the descriptor.
 */
async function* fdChunks(fd: number, counter: Counter, name: string, done?: () => void): AsyncGenerator<Buffer> {
  try {
    const buf = Buffer.allocUnsafe(READ_CHUNK);
    for (;;) {
      let n: number;
      try {
        n = readSync(fd, buf, 0, buf.length, null);
      } catch (err) {
        throw fileError(err, name);
      }
      if (n === 0) return;
      counter.bytes += n;
      yield buf.subarray(0, n);
      await new Promise<void>((resolve) => setImmediate(resolve));
    }
  } finally {
    done?.();
  }
}

/**
 * Reads a pipe or socket through the event loop into one reused buffer (net.Socket's `onread`): each
 * read pauses the socket until the consumer asks for the next chunk, so the kernel's pipe buffer, not
 * this process, holds what the consumer has not taken yet. The descriptor is left open (it is stdin).
 */
function pipeChunks(fd: number, counter: Counter, name: string): RawInput {
  const buf = Buffer.allocUnsafe(PIPE_CHUNK);
  let filled = 0;
  let ended = false;
  let failure: unknown = null;
  let wake: (() => void) | null = null;
  // onread is a documented option of new net.Socket(); this @types/node lists it only for connect()
  const options: SocketConstructorOpts & { onread: OnReadOpts } = {
    fd,
    readable: true,
    writable: false,
    onread: {
      buffer: buf,
      callback(n: number) {
        filled = n;
        wake?.();
        return false; // paused until the chunk is used
      },
    },
  };
  const socket = new (net().Socket)(options);
  const finish = (): void => {
    ended = true;
    wake?.();
  };
  socket.on('end', finish);
  socket.on('close', finish);
  socket.on('error', (err) => {
    failure = err;
    wake?.();
  });
  async function* chunks(): AsyncGenerator<Buffer> {
    for (;;) {
      if (filled === 0 && !ended && failure === null) await new Promise<void>((resolve) => { wake = resolve; });
      wake = null;
      if (failure !== null) throw fileError(failure, name);
      if (filled > 0) {
        const n = filled;
        filled = 0;
        counter.bytes += n;
        yield buf.subarray(0, n);
        if (!ended) socket.resume();
      } else if (ended) {
        return;
      }
    }
  }
  return {
    chunks: chunks(),
    close() {
      socket.pause();
      socket.unref();
      finish();
    },
  };
}

/** A stream's chunks as they come (a stream the caller made: tcpdump's stdout, a test's). */
async function* streamChunks(raw: NodeJS.ReadableStream | AsyncIterable<Buffer>, counter: Counter, name: string): AsyncGenerator<Buffer> {
  const fresh = freshBytesCounter();
  try {
    for await (const chunk of raw) {
      const bytes = typeof chunk === 'string' ? Buffer.from(chunk, 'latin1') : chunk as Buffer;
      counter.bytes += bytes.length;
      yield bytes;
      fresh(bytes.length);
    }
  } catch (err) {
    throw fileError(err, name);
  }
}

/** The first chunk of an input, held until it is passed on (then the holder lets go of it). */
interface Head {
  chunk: Buffer | null;
}

/** Yields the head chunk (unless empty) and forgets it. */
async function* takeHead(head: Head): AsyncGenerator<Buffer> {
  const chunk = head.chunk;
  head.chunk = null;
  if (chunk !== null && chunk.length > 0) yield chunk;
}

/** The head chunk, then the rest of `source`; each in a frame of its own that ends when it is done. */
async function* prepend(head: Head, source: AsyncGenerator<Buffer>): AsyncGenerator<Buffer> {
  yield* takeHead(head);
  yield* source;
}

function startsWithGzipMagic(bytes: Buffer): boolean {
  return bytes.length >= 2 && bytes[0] === 0x1f && bytes[1] === 0x8b;
}

/** Reads until at least 2 bytes are in: enough to tell gzip. */
async function readHead(source: AsyncGenerator<Buffer>): Promise<Head> {
  const parts: Buffer[] = [];
  let length = 0;
  while (length < 2) {
    const step = await source.next();
    if (step.done) break;
    length += step.value.length;
    // the source may read the next chunk into the same buffer: keep a copy of a part that is not enough
    parts.push(length < 2 ? Buffer.from(step.value) : step.value);
  }
  return { chunk: parts.length === 1 ? parts[0] : Buffer.concat(parts) };
}

/** Feeds the compressed bytes to the member reader as the reader takes the output; a failure ends it. */
async function pump(source: AsyncGenerator<Buffer>, members: GzipMembers, out: Outflow): Promise<void> {
  try {
    for await (const chunk of source) {
      await out.waitForRoom();
      if (!(await members.push(chunk))) break;
    }
    await members.end();
  } catch (err) {
    members.destroy();
    out.fail(err as Error);
  }
}

/**
 * Yields the input's bytes, gunzipped when the first two bytes are the gzip magic. The first chunk goes
 * through a Head that is emptied once it is passed on: a local variable here would keep it alive (in
 * this generator's frame) for as long as the stream lasts.
 */
async function* decompressed(source: AsyncGenerator<Buffer>, counter: Counter, name: string, holder: { members: GzipMembers | null }): AsyncGenerator<Buffer> {
  const head = await readHead(source);
  if (!startsWithGzipMagic(head.chunk as Buffer)) {
    yield* prepend(head, source);
    return;
  }
  counter.compressed = true;
  const out = new Outflow();
  const members = new GzipMembers(name, out);
  holder.members = members;
  void pump(prepend(head, source), members, out);
  const fresh = freshBytesCounter();
  for (;;) {
    if (out.queue.length > 0) {
      const chunk = out.take();
      yield chunk;
      fresh(chunk.length);
      continue;
    }
    const failure = out.failure;
    if (failure !== null) {
      if (isEarshotError(failure)) throw failure;
      throw earshotError('EARSHOT_ERR_GZIP', name, errorMessage(failure));
    }
    if (out.ended) return;
    await out.waitForSignal();
  }
}
