/**
 * `earshot replay` and `earshot collect`: one pipeline, fed by a file (replay) or a live source
 * (collect), ending with the report on stdout.
 */
import { accessSync, constants as fsConstants, statSync } from 'node:fs';
import { lazyBuiltin } from '../collector/builtins.js';
import { fileError } from '../collector/capture/input.js';
import { buildSource, type SourceOptions } from '../collector/capture/index.js';
import { checkLiveCapture } from '../collector/capture/interfaces.js';
import { buildProgress } from '../collector/capture/progress.js';
import type { CaptureSource, CaptureStats } from '../collector/capture/types.js';
import type { Config } from '../collector/config.js';
import { earshotError, isEarshotError, systemReason, type EarshotError } from '../collector/errors.js';
import { exitProcess, onStopSignals, signalExitCode } from '../collector/stop-signals.js';
import { openOutputFileWhenRead } from '../collector/output-file.js';
import type { AtomicFile } from '../collector/durable.js';
import type { Logger } from '../collector/log.js';
import { loadState, prepareDataDir, saveState } from '../collector/identify/state.js';
import { lockDataDir } from '../collector/data-dir.js';
import type { InfluxSink } from '../collector/sink/influx/index.js';
import { buildRuntime, type Runtime } from '../collector/runtime.js';
import type { WakeEvent } from '../collector/detect/wake-events.js';
import type { EventDevice } from '../collector/sink/events.js';
import { buildWebhookSink } from '../collector/sink/alerts/index.js';
import { version } from '../collector/version.js';
import { buildViewSource, type ViewSource } from '../collector/view.js';
import type { AppContext } from '../api/app.js';
import type { CommandSpec, ParsedCommand } from './args.js';
import { heapSizing, type HeapMode } from './heap-flags.js';
import { renderTextReport } from './text-report.js';

export interface CliIo {
  stdout: NodeJS.WriteStream;
  stderr: NodeJS.WriteStream;
  env: Record<string, string | undefined>;
}

/** Live collectors save the inventory and DNS cache this often (seconds), and when they stop. */
const STATE_SAVE_EVERY_S = 300;

const OUTPUT_FLAGS: CommandSpec['flags'] = {
  format: { type: 'string', value: 'json|text', description: 'Report format. Default: text when stdout is a terminal, json otherwise.' },
  output: { type: 'string', short: 'o', value: 'FILE', description: 'Write the report to FILE instead of standard output.' },
};

export const replaySpec: CommandSpec = {
  name: 'replay',
  summary: 'Reads a capture file (pcap or pcapng, optionally gzip-compressed; - for stdin) through the whole pipeline and prints the report: devices, flows, DNS answers, activations.',
  usage: 'earshot replay FILE [options]',
  positionals: [1, 1],
  config: true,
  flags: {
    ...OUTPUT_FLAGS,
    'realtime-speed': { type: 'string', value: 'N', description: 'Pace the replay at N times capture time (1 = real time) so dashboards and alerts see it as if live. 0 = as fast as possible.', default: '0' },
    progress: { type: 'boolean', description: 'Show a progress bar on stderr (default when stderr is a terminal and the input is a file).' },
    'no-progress': { type: 'boolean', description: 'Never show the progress bar.' },
  },
  epilog: 'Examples:\n  earshot replay capture.pcapng --format json > report.json\n  earshot replay big.pcap.gz --realtime-speed 10\n  tcpdump -r x.pcap -w - | earshot replay -',
};

export const collectSpec: CommandSpec = {
  name: 'collect',
  summary: 'Captures live traffic (libpcap, a tcpdump pipe, or a pcap stream on stdin), or a capture file, through the pipeline while serving the API (--listen, default 127.0.0.1:8377), until stopped (SIGINT, SIGTERM or SIGHUP) or --duration; then prints the report.',
  usage: 'earshot collect --interface IF [--filter BPF] [options]\n       earshot collect --file CAPTURE [--realtime-speed N] [--exit-when-done] [options]',
  positionals: [0, 0],
  config: true,
  flags: {
    ...OUTPUT_FLAGS,
    duration: { type: 'string', value: 'SECONDS', description: 'Stop after this many seconds of wall time (with --file: the API\'s serving after the capture ended too).' },
    file: { type: 'string', value: 'CAPTURE', description: 'Read a capture file instead of an interface; the API keeps serving after it ends, until SIGTERM, SIGINT or SIGHUP (or --exit-when-done).' },
    'realtime-speed': { type: 'string', value: 'N', description: 'With --file: pace it at N times capture time (1 = real time).' },
    'exit-when-done': { type: 'boolean', description: 'With --file: exit when the capture ends.' },
  },
  epilog: 'Examples:\n  earshot collect --interface wlan0 --filter "not port 22"\n  earshot collect --file capture.pcapng --realtime-speed 1 --wake-events events.jsonl\n  earshot collect --interface eth0 --source tcpdump\n  ssh router tcpdump -i br-lan -U -w - not port 22 | earshot collect --source stdin',
};

function parseFormat(value: unknown, stdout: NodeJS.WriteStream, output: unknown): 'json' | 'text' {
  if (value === undefined) return stdout.isTTY && output === undefined ? 'text' : 'json';
  if (value === 'json' || value === 'text') return value;
  throw earshotError('EARSHOT_ERR_USAGE', `--format: must be json or text, got "${String(value)}"`);
}

function parseNumberFlag(name: string, value: unknown, fallback: number): number {
  if (value === undefined) return fallback;
  const n = Number(value);
  if (typeof value !== 'string' || value.trim() === '' || !Number.isFinite(n) || n < 0) {
    throw earshotError('EARSHOT_ERR_USAGE', `--${name}: expected a number >= 0, got "${String(value)}"`);
  }
  return n;
}

/** Bytes of report text encoded before each write to an --output file. */
const REPORT_WRITE_BYTES = 1 << 20;

/**
 * The report into a file (--output): encoded into one reused buffer and written synchronously. The
 * stream it replaced made a buffer for each ~64-kB chunk and wrote it on the thread pool: ~25 ms more
 * of the bench capture's 30-MB report (bench/stages.mjs, in-process) for no overlap worth having, as
 * the chunks are made on this thread either way.
 */
function writeReportFile(chunks: Iterable<string>, output: string, file: AtomicFile): void {
  try {
    const buf = Buffer.allocUnsafe(REPORT_WRITE_BYTES);
    let used = 0;
    const flush = () => {
      file.write(buf.subarray(0, used));
      used = 0;
    };
    for (const chunk of chunks) {
      // a UTF-16 code unit takes at most 3 bytes in UTF-8
      if (used + chunk.length * 3 > buf.length) flush();
      if (chunk.length * 3 > buf.length) file.write(chunk);
      else used += buf.write(chunk, used, 'utf8');
    }
    flush();
    file.commit();
  } catch (err) {
    file.abort();
    throw isEarshotError(err) ? err : earshotError('EARSHOT_ERR_OUTPUT', output, systemReason(err));
  }
}

async function writeReport(chunks: Iterable<string>, output: string | undefined, host: RunHost, log: Logger): Promise<void> {
  const stdout = host.stdout;
  if (output !== undefined) {
    // whole or not at all: a full disk or a kill leaves the report that was there (collector/output-file.ts);
    // the run's own stop requests end a wait for a FIFO's reader (on the pipeline's thread, the only ones)
    const file = await openOutputFileWhenRead(output, {}, { onWait: (message) => log.warn(message), onStop: (handler) => host.onStop(handler) });
    writeReportFile(chunks, output, file);
    return;
  }
  await new Promise<void>((resolve, reject) => {
    stdout.on('error', (err: Error) => reject(earshotError('EARSHOT_ERR_OUTPUT', 'stdout', err.message)));
    const iterator = chunks[Symbol.iterator]();
    const pump = () => {
      for (let step = iterator.next(); !step.done; step = iterator.next()) {
        if (!stdout.write(step.value)) {
          stdout.once('drain', pump);
          return;
        }
      }
      resolve();
    };
    pump();
  });
}

/** After the report: waits for InfluxDB to take the points; the exit code says whether it did. */
async function deliverPoints(influx: InfluxSink, config: Readonly<Config>, log: Logger, isReplay: boolean): Promise<number> {
  const left = await influx.deliver(config.influx.waitS * 1000);
  const where = left.persistent ? `in the spool (${config.dataDir}/spool/influx), written when earshot next starts with this data directory` : 'in memory only (no --data-dir), now lost';
  const problems: string[] = [];
  const onDisk = left.persistent ? left.points - left.held : left.points;
  if (onDisk > 0) problems.push(`${onDisk} points wait ${where}`);
  // held in memory because the disk refused them: they end with the process
  if (left.persistent && left.held > 0) problems.push(`${left.held} points could not be spooled (the disk refused them) and are lost`);
  if (left.dropped > 0) problems.push(`${left.dropped} points were dropped because the spool was full (influx.spoolMaxMB)`);
  if (left.rejected > 0) problems.push(`${left.rejected} points were refused by InfluxDB (4xx, reason logged above)`);
  if (problems.length === 0) return 0;
  const lost = left.points + left.dropped + left.rejected;
  // a live collector with a disk spool has lost nothing yet: the next start writes it
  if (!isReplay && left.dropped === 0 && left.rejected === 0 && left.persistent && left.held === 0) {
    log.warn({ points: left.points }, problems.join('; '));
    return 0;
  }
  const e = earshotError('EARSHOT_ERR_INFLUX_UNDELIVERED', lost, `InfluxDB did not take them within ${config.influx.waitS} s: ${problems.join('; ')}`);
  log.error({ code: e.code, points: lost }, e.message);
  return e.exitCode;
}

/**
 * Wake events from MQTT: saved and applied. MQTT has no answer to refuse them with, so when they cannot
 * be saved (disk full) they still count for this run, and the log says they will not survive a restart.
 */
function addMqttWakeEvents(runtime: Runtime, events: WakeEvent[], log: Logger): void {
  try {
    runtime.addWakeEvents(events);
  } catch (err) {
    log.error({ events: events.length, err: (err as Error).message }, 'MQTT wake events could not be saved: they count for this run only');
    runtime.addWakeEvents(events, { save: false });
  }
}

/** The owner's presence from MQTT: like its wake events, it counts for the run even when it cannot be saved. */
function setMqttPresence(runtime: Runtime, away: boolean, log: Logger): void {
  try {
    runtime.setPresence(away, 'mqtt');
  } catch (err) {
    log.error({ away, err: (err as Error).message }, 'MQTT presence could not be saved: it counts for this run only');
    runtime.setPresence(away, 'mqtt', { save: false });
  }
}

/** The alert sinks (MQTT, webhooks) that are configured, started and listening to the runtime. */
export async function startAlertSinks(config: Readonly<Config>, runtime: Runtime, log: Logger) {
  const inventory = runtime.collector.inventory;
  const devices = (): EventDevice[] => (inventory?.all() ?? []).map((d) => ({ mac: d.macText, name: d.name, vendor: d.vendor ?? d.ouiVendor, model: d.model, assistant: d.assistant }));
  // MQTT and the API load their packages only when configured: a plain replay starts faster
  const mqtt = config.mqtt.url === null ? null
    : (await import('../collector/sink/mqtt/index.js')).buildMqttSink(config, { log, devices, version: version(), onWakeEvents: (events) => addMqttWakeEvents(runtime, events, log), onPresence: (away) => setMqttPresence(runtime, away, log) });
  if (mqtt) {
    runtime.addListener(mqtt);
    await mqtt.start();
  }
  const webhooks = buildWebhookSink(config, { log });
  if (webhooks) {
    runtime.addListener(webhooks);
    webhooks.start();
  }
  // new assistants (and new names) reach Home Assistant's discovery within seconds
  const refresh = mqtt ? setInterval(() => mqtt.onDevicesChanged(), 5000) : null;
  refresh?.unref();
  return {
    stats: (): Record<string, Record<string, number | boolean>> => ({
      ...(mqtt ? { mqtt: { ...mqtt.stats } } : {}),
      ...(webhooks ? { webhooks: { ...webhooks.stats } } : {}),
    }),
    stopTimers(): void {
      if (refresh) clearInterval(refresh);
    },
    async close(): Promise<void> {
      if (refresh) clearInterval(refresh);
      mqtt?.onDevicesChanged();
      const left = await webhooks?.close(config.alerts.waitS * 1000);
      if (left && left.pending > 0) log.warn({ pending: left.pending }, `${left.pending} alerts wait in the outbox${config.dataDir ? ` (${config.dataDir}/outbox/webhooks) for the next start` : ' (in memory only, no --data-dir: now lost)'}`);
      await mqtt?.close();
    },
  };
}

interface PipelineOptions {
  progress: boolean;
  /** > 0: the clock also advances with wall time at this many capture seconds per second. */
  speed: number;
  /** Exit non-zero when points are left in the spool (replay). */
  isReplay: boolean;
  /** Points carry capture time ('packet') or wall time (live capture). */
  clock: 'packet' | 'wall';
  /** Serve the API while running. */
  api: boolean;
  /** After a file ends, keep serving the API until a signal. */
  keepServing: boolean;
  /**
   * A live source: when it fails after packets came (tcpdump killed, the interface gone), the run
   * ends as if stopped (flows finished, report written, points delivered) and then exits with the error.
   */
  live: boolean;
}

/** A run as plain data: what the pipeline's thread is given (cli/pipeline-thread.ts). */
export interface RunRequest {
  source: SourceOptions;
  config: Config;
  format: 'json' | 'text';
  /** The report's file; undefined: standard output. */
  output: string | undefined;
  /** Stop after this many seconds of wall time (0: never). */
  durationS: number;
  options: PipelineOptions;
}

/** What differs between a run on this thread and one on the pipeline's thread. */
export interface RunHost {
  /** Serves the API over the run's view (options.api); resolves once it listens. */
  startApi(view: ViewSource, captureSource: string): Promise<{ url: string; close(): Promise<void> }>;
  /** The capture ended (the API forgets what it kept of the run). */
  captureEnded(): void;
  /** Calls `handler` on each request to stop (SIGINT, SIGTERM, SIGHUP: collector/stop-signals.ts); returns what removes it. */
  onStop(handler: (signal: string) => void): () => void;
  /** Where the report goes without --output. */
  stdout: NodeJS.WritableStream;
  /** The capture source when the host builds it (the libpcap source's packets handed over from the main thread). */
  source?: CaptureSource;
}

/** Runs the pipeline over the request's source and writes the report; returns the exit code. */
export async function executeRun(request: RunRequest, host: RunHost, log: Logger): Promise<number> {
  const { config } = request;
  // one earshot per data directory (collector/data-dir.ts), taken before anything there is read or written
  const diskWarning = config.dataDir !== null ? prepareDataDir(config.dataDir) : null;
  if (diskWarning) log.warn(diskWarning);
  const lock = config.dataDir !== null ? lockDataDir(config.dataDir) : null;
  if (lock?.warning) log.warn(lock.warning);
  try {
    return await executeLocked(request, host, log);
  } finally {
    lock?.release();
  }
}

async function executeLocked(request: RunRequest, host: RunHost, log: Logger): Promise<number> {
  const { config, format, options } = request;
  const source: CaptureSource = host.source ?? buildSource(request.source, {
    onWarning: (message) => log.warn(message),
    onOpen: () => log.info({ source: source.description }, 'capture open'),
  });
  if (!options.isReplay) log.info({ source: source.description }, 'capturing');
  // --duration bounds the whole run: the capture, and the API's serving after a capture file ended
  const deadline: Deadline = { armed: request.durationS > 0, passed: false, wake: null };
  const timer = request.durationS > 0
    ? setTimeout(() => {
      deadline.passed = true;
      source.stop();
      deadline.wake?.();
    }, request.durationS * 1000)
    : null;
  try {
    return await runPipeline(source, config, format, request.output, host, log, options, deadline);
  } finally {
    if (timer) clearTimeout(timer);
  }
}

/** The end of --duration (`armed` when one was given): `passed` once it came, `wake` ends a wait for it. */
interface Deadline {
  armed: boolean;
  passed: boolean;
  wake: (() => void) | null;
}

async function runPipeline(source: CaptureSource, config: Readonly<Config>, format: 'json' | 'text', output: string | undefined, host: RunHost, log: Logger, options: PipelineOptions, deadline: Deadline): Promise<number> {
  const dataDir = config.dataDir;
  // a replay ends by itself and keeps the report's records in memory: reading a spill back at the end
  // cost the bench replay 30 MB more at its peak than it saved (collector/runtime.ts)
  const runtime = buildRuntime(config, { clock: options.clock, activity: options.api, spill: !options.isReplay }, { log });
  const { collector, report, influx } = runtime;
  const { inventory, tagger } = collector;
  const persist = dataDir !== null && inventory !== null && tagger !== null;
  let stateDamaged = false;
  if (persist) {
    // labels in the state file are an older version's: the journal (labels.jsonl) takes them over
    const warning = loadState(dataDir, inventory, tagger.dnsCache, collector.detect?.labels ?? null, collector.findings);
    if (warning) log.warn(warning);
    stateDamaged = warning !== null;
    for (const journalWarning of runtime.openJournals(dataDir)) log.warn(journalWarning);
  }
  // labels are not in the state file: each is in labels.jsonl before the API accepts it
  // a state file that cannot be written (a full disk) is not worth stopping for: the last good one
  // stays, the failure is logged once, and the next save tries again
  let saveFailing = false;
  const save = () => {
    if (!persist) return;
    try {
      saveState(dataDir, inventory, tagger.dnsCache, runtime.labelsInJournal ? null : collector.detect?.labels ?? null, collector.findings);
      if (saveFailing) log.info('the state file is saved again');
      saveFailing = false;
    } catch (err) {
      if (!saveFailing) log.warn({ err: (err as Error).message }, `${(err as Error).message}; the last saved state is kept, earshot tries again every ${STATE_SAVE_EVERY_S} s and when it stops`);
      saveFailing = true;
    }
  };
  // a damaged state file is replaced at once by what could be read of it
  if (stateDamaged) save();
  const alerts = await startAlertSinks(config, runtime, log);
  let capturing = true;
  const view = buildViewSource(runtime, {
    captureRunning: () => capturing,
    influxReachable: () => (influx ? !influx.writer.inOutage() : null),
    alerts: alerts.stats,
  });
  let api: { url: string; close(): Promise<void> } | null = null;
  let signals = 0;
  let signalled: (() => void) | null = null;
  /** The signal that stopped a replay before the end of its input (its report then says so). */
  const interrupted: { by: string | null } = { by: null };
  const onSignal = (sig: string) => {
    signals++;
    if (options.isReplay && capturing && interrupted.by === null) interrupted.by = sig;
    if (signals > 1) {
      // what InfluxDB has not taken yet is kept in the spool (on disk with a data directory)
      influx?.writer.saveUnsent();
      exitProcess(130);
    }
    log.info({ signal: sig }, `stopping: finishing flows and writing the report${influx ? ' and the points' : ''} (again to quit at once)`);
    collector.stop();
    signalled?.();
  };
  const offStop = host.onStop(onSignal);
  const bar = options.progress ? buildProgress(process.stderr, source) : null;
  // live (and paced replays), the clock also advances with wall time so uploads end and idle flows
  // expire while no packet arrives; every 100 ms, the detector's slot, so a stalled upload alerts on time
  let ticks = 0;
  let ticker: NodeJS.Timeout | null = null;
  let captureError: EarshotError | null = null;
  // a run that lasts (live or paced): V8 sizes its heaps for memory while the traffic is quiet (cli/heap-flags.ts)
  const sizing = options.speed > 0 ? heapSizing() : null;
  const sized = (mode: HeapMode | null) => {
    if (mode !== null) log.debug({ heap: mode }, `V8 heap sizing: ${mode === 'memory' ? 'memory first (quiet traffic)' : 'speed first'}`);
  };
  try {
    if (options.api) api = await host.startApi(view, source.description);
    bar?.start();
    sized(sizing?.start(collector.stats().capture.packets, Date.now()) ?? null);
    ticker = options.speed > 0
      ? setInterval(() => {
        collector.wallTick(Date.now(), options.speed, source.heldPacketMs?.());
        if (++ticks % (STATE_SAVE_EVERY_S * 10) === 0) save();
        if (sizing !== null && ticks % 10 === 0) sized(sizing.sample(collector.stats().capture.packets, Date.now()));
      }, 100)
      : null;
    let stats: CaptureStats;
    try {
      stats = await runtime.run(source);
    } catch (err) {
      if (!options.live || !isEarshotError(err) || collector.stats().capture.packets === 0) throw err;
      captureError = err;
      log.error({ code: err.code }, `${err.message}: finishing the flows, writing the report${influx ? ' and the points' : ''}`);
      stats = source.stats();
    }
    capturing = false;
    host.captureEnded();
    bar?.stop();
    if (ticker) clearInterval(ticker);
    sized(sizing?.stop() ?? null);
    // the last points leave before the report is made: InfluxDB takes them while the report is written
    await influx?.writer.compressed();
    // a capture's own times: an earlier run over the same packets may have written these activations
    // differently (docs/influxdb.md); asked now, while the report is made (it never rejects)
    const retraction = influx && options.clock === 'packet' ? influx.retractEarlierRuns() : null;
    save();
    const inputs = { devices: collector.inventory?.all(), findings: collector.findings.list(), interrupted: interrupted.by !== null };
    const chunks = format === 'json' ? report.jsonChunks(stats, collector.stats(), inputs) : [renderTextReport(report.build(stats, collector.stats(), inputs), undefined, runtime.privacy?.devices({ assistantsOnly: true }))];
    // a report that cannot be written (a full disk, a terminal gone from under stdout) is the run's error,
    // said at its end: the points and alerts are delivered first, they do not depend on where it goes
    let reportError: unknown = null;
    try {
      await writeReport(chunks, output, host, log);
    } catch (err) {
      reportError = err;
    }
    const dropped = report.dropped();
    const left = [
      dropped.flows > 0 ? `${dropped.flows} older flows (report.maxFlows ${config.report.maxFlows})` : '',
      dropped.activations > 0 ? `${dropped.activations} older activations (report.maxActivations ${config.report.maxActivations})` : '',
      dropped.dnsAnswers > 0 ? `${dropped.dnsAnswers} older DNS answers (report.maxDnsAnswers ${config.report.maxDnsAnswers})` : '',
    ].filter((part) => part !== '');
    if (left.length > 0) log.warn(`the report leaves out ${left.join(', ')}; device totals count every flow`);
    if (api && options.keepServing && signals === 0 && !deadline.passed) {
      log.info(`capture ended; the API keeps serving on ${api.url} until SIGTERM, SIGINT or SIGHUP${deadline.armed ? ' or the end of --duration' : ''}`);
      await new Promise<void>((resolve) => {
        signalled = resolve;
        deadline.wake = resolve;
      });
    }
    await retraction;
    const code = influx ? await deliverPoints(influx, config, log, options.isReplay) : 0;
    await alerts.close();
    if (captureError !== null) throw captureError;
    if (reportError !== null) throw reportError;
    // a replay stopped before its end wrote a partial report (`capture.interrupted`): not a success, so
    // that `timeout 600 earshot replay big.pcap > r.json && publish r.json` publishes nothing half-read
    if (interrupted.by !== null && code === 0) {
      log.warn({ signal: interrupted.by }, `the replay was stopped (${interrupted.by}) before the end of its input: the report covers ${stats.packets} packets`);
      return signalExitCode(interrupted.by);
    }
    return code;
  } finally {
    bar?.stop();
    if (ticker) clearInterval(ticker);
    sized(sizing?.stop() ?? null);
    alerts.stopTimers();
    await api?.close();
    runtime.closeJournals();
    runtime.close();
    offStop();
  }
}

/** A run on this thread: signals from this process, the API (when asked) over the run directly. */
function localHost(config: Readonly<Config>, io: CliIo, log: Logger): RunHost {
  let context: AppContext | null = null;
  return {
    async startApi(view, captureSource) {
      const [{ startApiServer }, { contextOver }, { VIEW_MAX_AGE_MS }] = await Promise.all([import('../api/server.js'), import('../api/app.js'), import('../api/view.js')]);
      // parts kept as long as over the pipeline's thread: the two compare on the same work
      context = contextOver(view, { config, captureSource, startedMs: Date.now(), version: version() }, VIEW_MAX_AGE_MS);
      return startApiServer(config, context, log);
    },
    captureEnded: () => context?.view.invalidate(),
    onStop: onStopSignals,
    stdout: io.stdout,
  };
}

/**
 * Runs `request`: with the API, the pipeline (capture, decode, flows, tagging, detection, the sinks)
 * runs on its own thread and the API on this one (cli/pipeline-thread.ts); without, all here.
 */
async function run(request: RunRequest, io: CliIo, log: Logger): Promise<number> {
  if (request.options.api && request.config.api.thread) {
    const { runOnPipelineThread } = await import('./pipeline-thread.js');
    return runOnPipelineThread(request, io, log);
  }
  return executeRun(request, localHost(request.config, io, log), log);
}

/** The report's file: undefined for standard output, which `-o -` names too (as for import and export). */
function outputOf(parsed: ParsedCommand): string | undefined {
  const output = parsed.flags.output as string | undefined;
  return output === '-' ? undefined : output;
}

const tty = lazyBuiltin<typeof import('node:tty')>('node:tty');

/**
 * A capture is bytes from a pipe or a file: standard input that is a terminal (a command run without its
 * pipe) waited without a word for a capture nobody types (as gzip refuses compressed data from one).
 */
function refuseTerminalInput(command: string): void {
  if (!tty().isatty(0)) return;
  throw earshotError('EARSHOT_ERR_USAGE', `${command}: standard input is a terminal; pipe a capture into it (e.g. tcpdump -i IF -U -w - | earshot collect --source stdin, or earshot replay - < FILE)`);
}

/** Throws the error a collect would meet first: a capture file that is none, an API token file that cannot be read. */
function preflight(file: string | undefined, config: Readonly<Config>): void {
  if (file !== undefined && file !== '-') {
    let st;
    try {
      st = statSync(file);
    } catch (err) {
      throw fileError(err, file);
    }
    if (st.isDirectory()) throw earshotError('EARSHOT_ERR_FILE_IS_DIRECTORY', file);
  }
  const tokenFile = config.api.enabled ? config.api.tokenFile : null;
  if (tokenFile) {
    try {
      accessSync(tokenFile, fsConstants.R_OK);
    } catch (err) {
      throw earshotError('EARSHOT_ERR_FILE_UNREADABLE', `${tokenFile} (api.tokenFile)`, (err as NodeJS.ErrnoException).code === 'ENOENT' ? 'no such file' : systemReason(err));
    }
  }
}

/** `earshot replay FILE`. */
export async function runReplay(parsed: ParsedCommand, io: CliIo, log: Logger): Promise<number> {
  const path = parsed.positionals[0];
  const realtimeSpeed = parseNumberFlag('realtime-speed', parsed.flags['realtime-speed'], 0);
  const format = parseFormat(parsed.flags.format, io.stdout, outputOf(parsed));
  const progress = !parsed.flags['no-progress'] && path !== '-' && (parsed.flags.progress === true || io.stderr.isTTY === true);
  if (path === '-') refuseTerminalInput('replay -');
  return run({
    source: { kind: path === '-' ? 'stdin' : 'file', path, realtimeSpeed },
    config: parsed.config,
    format,
    output: outputOf(parsed),
    durationS: 0,
    options: { progress, speed: realtimeSpeed, isReplay: true, clock: 'packet', api: false, keepServing: false, live: false },
  }, io, log);
}

/** `earshot collect`: live, or a capture file (--file) with the API serving on after it ends. */
export async function runCollect(parsed: ParsedCommand, io: CliIo, log: Logger): Promise<number> {
  const { config } = parsed;
  const file = parsed.flags.file as string | undefined;
  const kind = config.capture.source;
  if (file === undefined && kind !== 'stdin' && !config.capture.interface) {
    throw earshotError('EARSHOT_ERR_USAGE', 'collect: --interface is required (or --file CAPTURE, or --source stdin)');
  }
  // live-capture flags beside --file would be ignored without a word: the run would not be the one asked for
  // (a config file's capture settings are for the service, and stay allowed)
  const live = ['interface', 'source', 'filter', 'snaplen'].filter((flag) => parsed.flags[flag] !== undefined);
  if (file !== undefined && live.length > 0) {
    throw earshotError('EARSHOT_ERR_USAGE', `collect: --file reads a capture file; ${live.map((f) => `--${f}`).join(', ')} ${live.length === 1 ? 'is' : 'are'} for live capture`);
  }
  const duration = parseNumberFlag('duration', parsed.flags.duration, 0);
  const realtimeSpeed = parseNumberFlag('realtime-speed', parsed.flags['realtime-speed'], 0);
  if (file === undefined && realtimeSpeed > 0) throw earshotError('EARSHOT_ERR_USAGE', 'collect: --realtime-speed paces a --file capture');
  const format = parseFormat(parsed.flags.format, io.stdout, outputOf(parsed));
  // what can be checked before anything starts: its error comes alone, not after "capturing" and the API's lines
  preflight(file, config);
  if (file === '-' || (file === undefined && kind === 'stdin')) refuseTerminalInput(file === '-' ? 'collect --file -' : 'collect --source stdin');
  if (file === undefined && kind !== 'stdin') checkLiveCapture(kind, config.capture.interface ?? '', {}, config.capture.filter);
  if (config.api.enabled) await (await import('../api/server.js')).checkApiStart(config);
  const source: SourceOptions = file !== undefined
    ? { kind: 'file', path: file, realtimeSpeed }
    : {
      kind,
      path: '-',
      interface: config.capture.interface ?? undefined,
      filter: config.capture.filter ?? undefined,
      snaplen: config.capture.snaplen,
    };
  return run({
    source,
    config,
    format,
    output: outputOf(parsed),
    durationS: duration,
    options: {
      progress: false,
      speed: file !== undefined ? realtimeSpeed : 1,
      isReplay: false,
      // a file keeps its own times (wake events posted for it use them too)
      clock: file !== undefined ? 'packet' : 'wall',
      api: config.api.enabled,
      keepServing: file !== undefined && parsed.flags['exit-when-done'] !== true,
      live: file === undefined,
    },
  }, io, log);
}
