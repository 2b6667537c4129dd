/**
 * The pipeline's thread (started by cli/pipeline-thread.ts): runs the capture, the pipeline and the
 * sinks (executeRun), answers the API's requests for parts of the run's view and its commands between
 * packets, and takes the stop signals the main thread forwards. Logs and the report go straight to
 * file descriptors 2 and 1 (written here, in order, not through the main thread).
 */
import { readlinkSync, writeSync } from 'node:fs';
import { basename } from 'node:path';
import { Writable } from 'node:stream';
import { getHeapStatistics } from 'node:v8';
import { parentPort, resourceLimits, workerData } from 'node:worker_threads';
import { buildHandoverSource } from '../collector/capture/handover.js';
import { buildLogger } from '../collector/log.js';
import type { ViewSource } from '../collector/view.js';
import { fromWire, toWire, type FromWorker, type ToWorker, type WorkerData } from './pipeline-thread.js';
import { executeRun, type RunHost } from './run-capture.js';

/** Blocks this thread for `ms` (it has nothing else to do while its output waits). */
const pause = (ms: number) => Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);

/**
 * A stream writing to descriptor `fd` synchronously; a reader gone (EPIPE) takes nothing more, quietly.
 * The main thread's process.stdout made a pipe on fd 1 or 2 non-blocking: a full pipe answers EAGAIN,
 * and the write waits for the reader (1 ms at a time) instead of failing.
 */
function fdWriter(fd: number): NodeJS.WriteStream {
  let closed = false;
  return new Writable({
    write(chunk: Buffer | string, _encoding, done) {
      if (closed) return done();
      try {
        const data = typeof chunk === 'string' ? Buffer.from(chunk) : chunk;
        for (let off = 0; off < data.length;) {
          try {
            off += writeSync(fd, data, off);
          } catch (err) {
            if ((err as NodeJS.ErrnoException).code !== 'EAGAIN') throw err;
            pause(1);
          }
        }
        done();
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code === 'EPIPE') {
          closed = true;
          done();
        } else {
          done(err as Error);
        }
      }
    },
  }) as unknown as NodeJS.WriteStream;
}

const port = parentPort;
if (port === null) throw new Error('cli/pipeline-worker.js runs as a worker thread');
const { request, logFormat, handover } = workerData as WorkerData;
const post = (message: FromWorker) => port.postMessage(message);
const stderr = fdWriter(2);
// pino writes JSON to descriptor 2 itself; text lines go through the same synchronous writer
const log = buildLogger({ level: request.config.log.level, format: logFormat }, Object.assign(stderr, { fd: 2, isTTY: logFormat === 'text' }));

/** This thread's id in the kernel (Linux: /proc/thread-self), for `top -H`, taskset and chrt; null elsewhere. */
function threadId(): number | null {
  try {
    const id = Number(basename(readlinkSync('/proc/thread-self')));
    return Number.isInteger(id) ? id : null;
  } catch {
    return null;
  }
}

// the heap this thread was given (cli/pipeline-thread.ts) and the limit V8 made of it, for `--log-level debug`
log.debug({ resourceLimits, heapSizeLimit: getHeapStatistics().heap_size_limit, tid: threadId() }, 'the pipeline thread started');

// the libpcap capture is held by the main thread: its packets come as messages (collector/capture/handover.ts)
// (each chunk goes back, transferred, once read: the main thread writes the next packets into it)
const captured = handover !== null
  ? buildHandoverSource(handover, (m) => (m.t === 'consumed' ? port.postMessage(m, [m.chunk]) : post(m)), { onWarning: (message) => log.warn(message) })
  : undefined;

let view: ViewSource | null = null;
const stopHandlers = new Set<(signal: string) => void>();
let go: { resolve(url: string): void; reject(err: Error): void } | null = null;

/** Answers request `id` with what `make` returns from the run's view, or the error it throws. */
function answer(id: number, make: (source: ViewSource) => unknown): void {
  try {
    if (view === null) throw new Error('the run has not started');
    post({ t: 'reply', id, ok: true, value: make(view) });
  } catch (err) {
    post({ t: 'reply', id, ok: false, error: toWire(err) });
  }
}

port.on('message', (m: ToWorker) => {
  switch (m.t) {
    case 'packets':
    case 'captureStats':
    case 'captureDone':
      captured?.take(m);
      break;
    case 'captureFailed':
      captured?.take({ t: 'captureFailed', error: fromWire(m.error) });
      break;
    case 'go':
      go?.resolve(m.url);
      break;
    case 'abort':
      go?.reject(new Error('the API could not start'));
      break;
    case 'part':
      answer(m.id, (v) => v.part(m.name));
      break;
    case 'activations':
      answer(m.id, (v) => v.activations(m.query));
      break;
    case 'flows':
      answer(m.id, (v) => v.flows(m.query));
      break;
    case 'device':
      answer(m.id, (v) => v.device(m.mac));
      break;
    case 'command':
      answer(m.id, (v) => v.command(m.command));
      break;
    case 'signal':
      for (const handler of stopHandlers) handler(m.signal);
      break;
  }
});

const host: RunHost = {
  startApi(source, captureSource) {
    view = source;
    const started = new Promise<string>((resolve, reject) => { go = { resolve, reject }; });
    post({ t: 'ready', captureSource });
    return started.then((url) => ({ url, close: async () => {} }));
  },
  captureEnded: () => post({ t: 'captureEnded' }),
  onStop(handler) {
    stopHandlers.add(handler);
    return () => stopHandlers.delete(handler);
  },
  stdout: fdWriter(1),
  source: captured,
};

executeRun(request, host, log).then(
  (code) => post({ t: 'done', code }),
  (err: unknown) => post({ t: 'failed', error: toWire(err) }),
);
