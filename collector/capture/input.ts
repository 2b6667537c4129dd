/**
 * Opens the bytes of a capture: a file, stdin or a given stream, transparently gunzipped when it starts
 * with the gzip magic. Every failure becomes a coded error naming the input.
 */
import { closeSync, createReadStream, fstatSync, openSync, readSync } from 'node:fs';
import { Socket } from 'node:net';
import { stat } from 'node:fs/promises';
import { Readable, pipeline } from 'node:stream';
import { constants as zlibConstants, createGunzip } from 'node:zlib';
import { isMainThread } from 'node:worker_threads';
import { earshotError, isEarshotError, type EarshotError } from '../errors.js';

/**
 * Reads of 1 MiB: few enough chunks that records straddling a boundary cost nothing, small enough that
 * the buffer the kernel copies into stays in the CPU's cache while the records are parsed out of it
 * (4 MiB: reading the 426 MB bench capture took ~25 ms longer, and its first fill ~13 ms of page faults).
 */
const READ_CHUNK = 1024 * 1024;
const GUNZIP_CHUNK = 256 * 1024;

/** An opened capture input. */
export interface CaptureInput {
  /** Decompressed bytes, in chunks. */
  readonly chunks: AsyncIterable<Buffer>;
  /** File size when the input is a regular file, else null. */
  readonly totalBytes: number | null;
  /** Raw (possibly compressed) bytes read so far. */
  fileBytesRead(): number;
  /** True once the input turned out to be gzip-compressed. */
  compressed(): boolean;
  /** Stops reading and releases the file. */
  close(): void;
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
  if (code === 'ENOENT') return earshotError('EARSHOT_ERR_FILE_NOT_FOUND', name);
  if (code === 'EISDIR') return earshotError('EARSHOT_ERR_FILE_IS_DIRECTORY', name);
  return earshotError('EARSHOT_ERR_FILE_UNREADABLE', name, errorMessage(err));
}

/**
 * Standard input on the pipeline's thread, where process.stdin is the worker's own (empty) stream: a
 * pipe or socket through the event loop (a read from the thread pool would block one of its threads
 * until input comes, and the process could not exit while it waits), a file read as a file.
 */
function workerStdin(): NodeJS.ReadableStream {
  const info = fstatSync(0);
  if (info.isFIFO() || info.isSocket()) return new Socket({ fd: 0, readable: true, writable: false });
  return createReadStream('', { fd: 0, autoClose: false, highWaterMark: 1 << 16 });
}

/**
 * Opens `path` ('-' = stdin) or `stream` when given; `name` names the input in messages. Rejects with
 * EARSHOT_ERR_FILE_NOT_FOUND, _FILE_IS_DIRECTORY or _FILE_UNREADABLE.
 */
export async function openCaptureInput(path: string, stream: NodeJS.ReadableStream | undefined, name: string): Promise<CaptureInput> {
  let totalBytes: number | null = null;
  let raw: NodeJS.ReadableStream;
  if (stream !== undefined) {
    raw = stream;
  } else if (path === '-') {
    raw = isMainThread ? process.stdin : workerStdin();
  } else {
    let info;
    try {
      info = await stat(path);
    } catch (err) {
      throw fileError(err, name);
    }
    if (info.isDirectory()) throw earshotError('EARSHOT_ERR_FILE_IS_DIRECTORY', name);
    if (info.isFile()) totalBytes = info.size;
    const counter = { bytes: 0, compressed: false, decided: false };
    const streams: Array<NodeJS.ReadableStream> = [];
    return {
      chunks: decompressed(fileChunks(path, counter, name), counter, name, streams),
      totalBytes,
      fileBytesRead: () => counter.bytes,
      compressed: () => counter.compressed,
      close() {
        for (const s of streams) (s as Readable).destroy?.();
      },
    };
  }
  const counter = { bytes: 0, compressed: false, decided: false };
  const streams: Array<NodeJS.ReadableStream> = [raw];
  return {
    chunks: decompressed(rawChunks(raw, counter, name), counter, name, streams),
    totalBytes,
    fileBytesRead: () => counter.bytes,
    compressed: () => counter.compressed,
    close() {
      for (const s of streams) {
        // stdin belongs to the process: stop reading it without closing the descriptor
        if (s === process.stdin) s.pause();
        else (s as Readable).destroy?.();
      }
    },
  };
}

/**
 * Reads a regular file with synchronous reads into one reused buffer: no allocation and no thread-pool
 * round trip per chunk (a stream was ~10x slower here). The buffer is reused only once the input is
 * known to be uncompressed, because then every chunk is parsed before the next is asked for; between
 * chunks it yields to the event loop so signals, timers and the progress bar keep running.
 */
async function* fileChunks(path: string, counter: { bytes: number; decided: boolean; compressed: boolean }, name: string): AsyncGenerator<Buffer> {
  let fd: number;
  try {
    fd = openSync(path, 'r');
  } catch (err) {
    throw fileError(err, name);
  }
  try {
    let buf = Buffer.allocUnsafe(READ_CHUNK);
    for (;;) {
      if (!counter.decided || counter.compressed) buf = Buffer.allocUnsafe(READ_CHUNK);
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
    closeSync(fd);
  }
}

async function* rawChunks(raw: NodeJS.ReadableStream, counter: { bytes: number }, name: string): AsyncGenerator<Buffer> {
  try {
    for await (const chunk of raw) {
      const bytes = typeof chunk === 'string' ? Buffer.from(chunk, 'latin1') : chunk;
      counter.bytes += bytes.length;
      yield bytes;
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
    parts.push(step.value);
    length += step.value.length;
  }
  return { chunk: parts.length === 1 ? parts[0] : Buffer.concat(parts) };
}

/**
 * Yields the input's bytes, gunzipped when the first two bytes are the gzip magic. The first chunk goes
 * through a Head that is emptied once it is passed on: a local variable here would keep it alive (in
 * this generator's frame) for as long as the stream lasts.
 */
async function* decompressed(source: AsyncGenerator<Buffer>, counter: { bytes: number; compressed: boolean; decided: boolean }, name: string, streams: Array<NodeJS.ReadableStream>): AsyncGenerator<Buffer> {
  const head = await readHead(source);
  if (!startsWithGzipMagic(head.chunk as Buffer)) {
    counter.decided = true;
    yield* prepend(head, source);
    return;
  }
  // Z_SYNC_FLUSH: a gzip stream cut short yields what it holds, so a truncated .pcap.gz reads like a truncated .pcap
  counter.compressed = true;
  counter.decided = true;
  const gunzip = createGunzip({ finishFlush: zlibConstants.Z_SYNC_FLUSH, chunkSize: GUNZIP_CHUNK });
  streams.push(gunzip);
  const compressed = Readable.from(prepend(head, source), { objectMode: false });
  pipeline(compressed, gunzip, () => { /* errors surface through the iteration below */ });
  try {
    for await (const chunk of gunzip) yield chunk as Buffer;
  } catch (err) {
    if (isEarshotError(err)) throw err;
    throw earshotError('EARSHOT_ERR_GZIP', name, errorMessage(err));
  }
}
