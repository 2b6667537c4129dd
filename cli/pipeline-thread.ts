/**
 * A run with the API: the pipeline (capture, decoding, flows, tagging, detection and the sinks) runs on
 * its own thread (cli/pipeline-worker.ts), the API on this one. The API reads the run's view
 * (collector/view.ts) through messages, a part at a time and at most once per VIEW_MAX_AGE_MS each
 * (api/view.ts), so a flood of requests costs the pipeline a bounded amount of work and never makes it
 * wait: it answers between packets. Activations come a page at a time, filtered there: only the page
 * is copied across. Labels, wake events and presence go to the pipeline's thread as
 * messages and are answered once saved there.
 *
 * Once the pipeline's thread runs, this thread lowers its own priority (nice +10, Linux threads have
 * their own): on a machine with no core to spare, requests slow down before packets are lost. Not when it
 * holds the libpcap capture (node_pcap's session cannot live on a worker thread): its packets are handed
 * over to the pipeline's thread (collector/capture/handover.ts), and they must not wait.
 */
import { stat } from 'node:fs/promises';
import { setPriority } from 'node:os';
import { setFlagsFromString } from 'node:v8';
import { Worker } from 'node:worker_threads';
import { HandoverWriter, type HandoverMessage, type HandoverReply } from '../collector/capture/handover.js';
import { buildLibpcapSource, libpcapOptions } from '../collector/capture/index.js';
import type { CaptureSource } from '../collector/capture/types.js';
import { EarshotError, type ErrorCode } from '../collector/errors.js';
import { onStopSignals } from '../collector/stop-signals.js';
import type { Logger } from '../collector/log.js';
import { version } from '../collector/version.js';
import type { ApiFlow } from '../collector/sink/activity.js';
import type { ActivationPage, ActivationQuery, DeviceDetail, FlowQuery, ViewCommand, ViewCommandResult, ViewPart, ViewParts } from '../collector/view.js';
import { MAX_SEMI_SPACE_MB } from './heap-flags.js';
import type { CliIo, RunRequest } from './run-capture.js';

/** The niceness of the API's thread while the pipeline has its own. */
const API_THREAD_NICE = 10;

/**
 * The pipeline thread's young generation: 12 MB (two 4-MB semi-spaces, V8's starting size) instead of
 * V8's 48. Its short-lived objects (per-packet records, names) die within a semi-space; what survives
 * lives for a flow's lifetime and is promoted either way. Uncapped, V8 grew the young generation to
 * 32 MB within two hours of the soak (bench/soak.mjs) and kept it: 25 MB of RSS for no speed (the
 * bench capture through `collect` took the same CPU time, 4.1 s, capped or not).
 */
export const PIPELINE_YOUNG_GENERATION_MB = 12;

/** What the pipeline's thread is given. */
export interface WorkerData {
  request: RunRequest;
  /** The log format this process chose (the worker cannot tell whether stderr is a terminal). */
  logFormat: 'text' | 'json';
  /** The capture is held by the main thread and its packets handed over (the libpcap source); its description. */
  handover: string | null;
}

/** An error as it crosses the threads. */
export type WireError = { kind: 'earshot'; code: ErrorCode; message: string } | { kind: 'other'; message: string; statusCode?: number; stack?: string };

/** Messages from the pipeline's thread. */
export type FromWorker =
  | HandoverReply
  | { t: 'ready'; captureSource: string }
  | { t: 'reply'; id: number; ok: true; value: unknown }
  | { t: 'reply'; id: number; ok: false; error: WireError }
  | { t: 'captureEnded' }
  | { t: 'done'; code: number }
  | { t: 'failed'; error: WireError };

/** Messages to the pipeline's thread (an error of the hand-over as it crosses: WireError). */
export type ToWorker =
  | Exclude<HandoverMessage, { t: 'captureFailed' }>
  | { t: 'captureFailed'; error: WireError }
  | { t: 'go'; url: string }
  | { t: 'abort' }
  | { t: 'part'; id: number; name: ViewPart }
  | { t: 'activations'; id: number; query: ActivationQuery }
  | { t: 'flows'; id: number; query: FlowQuery }
  | { t: 'device'; id: number; mac: string }
  | { t: 'command'; id: number; command: ViewCommand }
  | { t: 'signal'; signal: string };

export function toWire(err: unknown): WireError {
  if (err instanceof EarshotError) return { kind: 'earshot', code: err.code, message: err.message };
  const e = err as { message?: unknown; statusCode?: unknown; stack?: unknown };
  return {
    kind: 'other',
    message: typeof e?.message === 'string' ? e.message : String(err),
    ...(typeof e?.statusCode === 'number' ? { statusCode: e.statusCode } : {}),
    ...(typeof e?.stack === 'string' ? { stack: e.stack } : {}),
  };
}

export function fromWire(error: WireError): Error {
  if (error.kind === 'earshot') return new EarshotError(error.code, error.message);
  const err = new Error(error.message) as Error & { statusCode?: number };
  if (error.statusCode !== undefined) err.statusCode = error.statusCode;
  if (error.stack !== undefined) err.stack = error.stack;
  return err;
}

/** Runs `request` on the pipeline's thread, with the API on this one; returns the exit code. */
export async function runOnPipelineThread(request: RunRequest, io: CliIo, log: Logger): Promise<number> {
  const logFormat = request.config.log.format;
  // node_pcap's session stays on this thread: it never closes its poll handle, and the end of a worker
  // thread with an open handle aborted the process (exit 134) at every stop. Its packets are handed over
  const handover = request.source.kind === 'libpcap' ? `interface ${request.source.interface ?? ''} (libpcap)` : null;
  const data: WorkerData = { request, logFormat: logFormat === 'json' || (logFormat === 'auto' && io.stderr.isTTY !== true) ? 'json' : 'text', handover };
  // loaded before the worker starts: its first message must find the listener in place (a Worker
  // emits what its thread posts at once, to whoever listens then)
  const [{ prepareApiServer }, { RunView, VIEW_MAX_AGE_MS }] = await Promise.all([import('../api/server.js'), import('../api/view.js')]);
  // the thread pool (file reads, gzip) starts with its first use: before this thread lowers its
  // priority, so its threads keep the process's
  await stat('.');

  let nextId = 1;
  const waiting = new Map<number, { resolve(value: unknown): void; reject(err: Error): void }>();
  const ask = (message: { t: 'part'; name: ViewPart } | { t: 'activations'; query: ActivationQuery } | { t: 'flows'; query: FlowQuery } | { t: 'device'; mac: string } | { t: 'command'; command: ViewCommand }): Promise<unknown> =>
    new Promise((resolve, reject) => {
      const id = nextId++;
      waiting.set(id, { resolve, reject });
      worker.postMessage({ ...message, id } satisfies ToWorker);
    });
  const view = new RunView({
    part: <K extends ViewPart>(name: K) => ask({ t: 'part', name }) as Promise<ViewParts[K]>,
    activations: (query: ActivationQuery) => ask({ t: 'activations', query }) as Promise<ActivationPage>,
    flows: (query: FlowQuery) => ask({ t: 'flows', query }) as Promise<ApiFlow[]>,
    device: (mac: string) => ask({ t: 'device', mac }) as Promise<DeviceDetail | null>,
    command: (command: ViewCommand) => ask({ t: 'command', command }) as Promise<ViewCommandResult>,
  }, VIEW_MAX_AGE_MS);

  let apiError: unknown = null;
  // from here to the listeners below, nothing awaits: no message of the worker's can pass unheard
  // the process's --max-semi-space-size would take the place of the limit (V8 prefers a flag): unset (0)
  // until the thread's heap is made, which is before it runs its first line ('online')
  const restoreFlag = () => setFlagsFromString(`--max-semi-space-size=${MAX_SEMI_SPACE_MB}`);
  setFlagsFromString('--max-semi-space-size=0');
  let worker: Worker;
  try {
    worker = new Worker(new URL('./pipeline-worker.js', import.meta.url), {
      workerData: data,
      resourceLimits: { maxYoungGenerationSizeMb: PIPELINE_YOUNG_GENERATION_MB },
    });
  } catch (err) {
    restoreFlag();
    throw err;
  }
  worker.once('online', restoreFlag);
  worker.once('exit', restoreFlag);
  // the API is built while the pipeline's thread starts (each takes ~0.2 s here), and listens once the
  // pipeline is ready (its source named): before, the two waited for each other. Its failure is taken
  // up then, as a failure to listen is
  const context = { view, config: request.config, captureSource: '', startedMs: Date.now(), version: version() };
  const prepared = prepareApiServer(request.config, context, log);
  prepared.catch(() => undefined);
  // the capture held here must not wait behind the other threads: this thread keeps its priority then
  if (handover === null) lowerPriority(log);
  const capture = handover !== null ? holdCapture(request, worker, log) : null;
  const offSignals = onStopSignals((signal) => worker.postMessage({ t: 'signal', signal } satisfies ToWorker));
  try {
    return await new Promise<number>((resolve, reject) => {
      let settled = false;
      const settle = (fn: () => void) => {
        if (settled) return;
        settled = true;
        fn();
      };
      worker.on('message', (m: FromWorker) => {
        switch (m.t) {
          case 'startCapture':
          case 'stopCapture':
          case 'consumed':
            capture?.take(m);
            break;
          case 'ready':
            context.captureSource = m.captureSource;
            context.startedMs = Date.now();
            prepared.then((app) => app.listen()).then(
              (server) => {
                worker.postMessage({ t: 'go', url: server.url } satisfies ToWorker);
              },
              (err: unknown) => {
                apiError = err;
                worker.postMessage({ t: 'abort' } satisfies ToWorker);
              },
            );
            break;
          case 'reply': {
            const w = waiting.get(m.id);
            waiting.delete(m.id);
            if (m.ok) w?.resolve(m.value);
            else w?.reject(fromWire(m.error));
            break;
          }
          case 'captureEnded':
            view.invalidate();
            break;
          case 'done':
            settle(() => (apiError !== null ? reject(apiError) : resolve(m.code)));
            break;
          case 'failed':
            settle(() => reject(apiError ?? fromWire(m.error)));
            break;
        }
      });
      worker.on('error', (err) => settle(() => reject(err)));
      worker.on('exit', (code) => {
        for (const w of waiting.values()) w.reject(new Error('the pipeline has stopped'));
        waiting.clear();
        // a second signal ends the pipeline's thread at once (exit 130), as it ends a run on one thread
        settle(() => (code === 130 ? resolve(130) : reject(new Error(`the pipeline's thread ended (exit ${code}) without its result`))));
      });
    });
  } finally {
    capture?.close();
    offSignals();
    // the app, listening or not: a run that failed before its pipeline was ready never listened
    await prepared.then((app) => app.close(), () => undefined);
    await worker.terminate();
  }
}

/** How often the held capture's drop counters go to the pipeline's thread (as the libpcap source polls them). */
const CAPTURE_STATS_MS = 1000;

/**
 * The libpcap capture, held on this thread for the pipeline's (collector/capture/handover.ts): opened when
 * the pipeline's source starts, its packets posted in chunks, its drop counters once a second, its end or
 * failure; stopped when the pipeline asks, or when the run ends.
 */
function holdCapture(request: RunRequest, worker: Worker, log: Logger): { take(m: HandoverReply): void; close(): void } {
  const post = (message: ToWorker, transfer?: ArrayBuffer[]) => worker.postMessage(message, transfer);
  const writer = new HandoverWriter((chunk, length) => post({ t: 'packets', chunk, length }, [chunk]));
  let source: CaptureSource | null = null;
  let stopped = false;
  let ticker: NodeJS.Timeout | null = null;
  const postStats = () => {
    if (source === null) return;
    const { kernelDrops, interfaceDrops, lastDropMs } = source.stats();
    post({ t: 'captureStats', kernelDrops, interfaceDrops, lastDropMs });
  };
  const start = () => {
    const live = buildLibpcapSource({
      ...libpcapOptions(request.source),
      onOpen: (linkType, snaplen) => writer.header(linkType, snaplen),
      extraDrops: () => writer.dropped,
    }, { onWarning: (message) => log.warn(message), onOpen: () => log.info({ source: live.description }, 'capture open') });
    source = live;
    ticker = setInterval(postStats, CAPTURE_STATS_MS);
    ticker.unref();
    const finish = (error: unknown) => {
      if (ticker !== null) clearInterval(ticker);
      writer.flush();
      postStats();
      post(error === null ? { t: 'captureDone' } : { t: 'captureFailed', error: toWire(error) });
    };
    live.run((buf, offset, capLen, wireLen, timeMs) => writer.packet(buf, offset, capLen, wireLen, timeMs)).then(() => finish(null), finish);
    if (stopped) live.stop();
  };
  return {
    take(m) {
      if (m.t === 'consumed') writer.consumed(m.bytes, m.chunk);
      else if (m.t === 'startCapture' && source === null) start();
      else if (m.t === 'stopCapture') {
        stopped = true;
        source?.stop();
      }
    },
    close() {
      stopped = true;
      source?.stop();
      if (ticker !== null) clearInterval(ticker);
    },
  };
}

/** Lowers this thread's priority (the pipeline's thread keeps the process's); a failure is only logged. */
function lowerPriority(log: Logger): void {
  try {
    // pid 0: on Linux, the calling thread only
    setPriority(0, API_THREAD_NICE);
  } catch (err) {
    log.debug({ err: (err as Error).message }, 'cannot lower the API thread\'s priority');
  }
}
