/**
 * Live capture through a tcpdump child process writing pcap to its stdout (-U -w -), parsed by the same
 * streaming reader as capture files. Needs no native module, only a tcpdump binary.
 *
 * Not --immediate-mode: with it libpcap wakes tcpdump for every packet, each pipe read then carries about
 * one packet, and at 30k packets/s the pipeline fell behind (10 % kernel drops). Without it the kernel
 * hands over a block of packets at a time, and at the latest after libpcap's timeout (tcpdump sets
 * 1000 ms), so a quiet network still gets its packets within about a second; -U writes each packet the
 * block carries as soon as tcpdump has it, not when its 4 KB stdio buffer fills.
 * The kernel buffer (-B) is the libpcap source's: a stall of a few hundred ms at 100k packets/s fits.
 * tcpdump prints its drop counters only when it ends, or on SIGUSR1 (Linux; SIGINFO on the BSDs): the
 * source asks once a second, so that /metrics, /health and the log see drops while they happen.
 */
import type { ChildProcess } from 'node:child_process';
import { lazyBuiltin } from '../builtins.js';
import { earshotError, isEarshotError, type EarshotError } from '../errors.js';
import { buildDropWatch } from './drops.js';
import { buildFileSource } from './pcap-file.js';
import { emptyCaptureStats, type CaptureSource, type CaptureStats, type PacketSink, type SourceDeps } from './types.js';

const childProcess = lazyBuiltin<typeof import('node:child_process')>('node:child_process');

/** Options of buildTcpdumpSource(). */
export interface TcpdumpSourceOptions {
  interface: string;
  /** BPF filter expression, passed to tcpdump as is. */
  filter?: string;
  /** tcpdump binary; found on PATH by default. */
  tcpdumpPath?: string;
  /** Bytes captured per packet (tcpdump -s). */
  snaplen?: number;
  /** Kernel capture buffer in bytes (tcpdump -B, which takes KiB). */
  bufferSize?: number;
  /** How often tcpdump is asked for its drop counters, in ms (0: never, only its closing statistics). */
  statsIntervalMs?: number;
}

/** tcpdump's stderr is kept only this long: enough for its error and its closing statistics. */
const STDERR_TAIL = 16_384;
const DEFAULT_SNAPLEN = 262_144;
const DEFAULT_BUFFER = 16 * 1024 * 1024;
const STATS_INTERVAL_MS = 1000;
/** How long a stop waits before it ends tcpdump: libpcap's buffer timeout (1 s, tcpdump's), and a little more. */
const STOP_DRAIN_MS = 1200;
/** The signal that makes tcpdump print its counters and go on: SIGINFO where there is one. */
const STATS_SIGNAL: NodeJS.Signals = process.platform === 'linux' ? 'SIGUSR1' : 'SIGINFO';

/** What tcpdump said on stderr, without its progress lines: the reason it failed, if it did. */
export function tcpdumpErrorText(stderr: string, iface?: string, silent = 'tcpdump exited without saying why'): string {
  const lines = stderr.split('\n').map((line) => line.trim()).filter((line) => line.length > 0
    && !/^(tcpdump: )?listening on /.test(line) && !/^(tcpdump: )?\d+ packets? (captured|received by filter|dropped by)/.test(line)
    && !/^Running as user/.test(line)).map((line) => line.replace(/^tcpdump: /, ''));
  // libpcap's "(No such device exists)" repeats the line before it; the interface is named by the message already
  const said = lines.filter((line, i) => !(/^\(.*\)$/.test(line) && lines.slice(0, i).some((before) => before.includes(line.slice(1, -1)))))
    .map((line) => (iface !== undefined && line.startsWith(`${iface}: `) ? line.slice(iface.length + 2) : line));
  return said.join(' ') || silent;
}

/**
 * Kernel and interface drops from the last statistics tcpdump printed: its closing ones ("N packets
 * dropped by kernel" on a line of its own) or those it prints on SIGUSR1 ("tcpdump: N packets captured,
 * N packets received by filter, N packets dropped by kernel[, N packets dropped by interface]"). null when
 * it printed none.
 */
export function tcpdumpDrops(stderr: string): { kernel: number; interface: number } | null {
  const kernel = [...stderr.matchAll(/(\d+) packets? dropped by kernel/g)];
  if (kernel.length === 0) return null;
  const last = kernel[kernel.length - 1];
  // "dropped by interface" is printed only when not 0, and only after "dropped by kernel"
  const iface = /^,? ?(\d+) packets? dropped by interface/.exec(stderr.slice((last.index ?? 0) + last[0].length).replace(/^\n/, ''));
  return { kernel: Number(last[1]), interface: iface ? Number(iface[1]) : 0 };
}

interface ExitInfo {
  code: number | null;
  signal: NodeJS.Signals | null;
  spawnError: Error | null;
}

/** Builds a live source that runs `tcpdump -i IF -U -w - [filter]`. No process starts until run(). */
export function buildTcpdumpSource(opts: TcpdumpSourceOptions, deps: SourceDeps): CaptureSource {
  const binary = opts.tcpdumpPath ?? 'tcpdump';
  const description = `interface ${opts.interface} (tcpdump)`;
  let child: ChildProcess | null = null;
  let reader: CaptureSource | null = null;
  let stopRequested = false;
  const drops = { kernel: 0, interface: 0 };
  const dropWatch = buildDropWatch(description, deps.onWarning);

  function noteDrops(counters: { kernel: number; interface: number } | null): void {
    if (counters === null) return;
    // counters only grow; a late, older line must not take them back
    drops.kernel = Math.max(drops.kernel, counters.kernel);
    drops.interface = Math.max(drops.interface, counters.interface);
    dropWatch.update(drops.kernel, drops.interface);
  }

  function currentStats(): CaptureStats {
    const stats = reader !== null ? reader.stats() : emptyCaptureStats();
    stats.totalBytes = null;
    stats.kernelDrops = drops.kernel;
    stats.interfaceDrops = drops.interface;
    stats.lastDropMs = dropWatch.lastDropMs;
    return stats;
  }

  let drainTimer: NodeJS.Timeout | null = null;
  function stopChild(): void {
    if (drainTimer !== null) clearTimeout(drainTimer);
    if (child !== null && child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
  }

  async function run(sink: PacketSink): Promise<CaptureStats> {
    const bufferKiB = Math.max(1, Math.round((opts.bufferSize ?? DEFAULT_BUFFER) / 1024));
    const args = ['-i', opts.interface, '-n', '-U', '-B', String(bufferKiB), '-s', String(opts.snaplen ?? DEFAULT_SNAPLEN), '-w', '-'];
    if (opts.filter !== undefined && opts.filter.trim() !== '') args.push(opts.filter);
    const proc = childProcess().spawn(binary, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    child = proc;
    let stderr = '';
    let listening = false;
    let partialLine = '';
    proc.stderr?.setEncoding('utf8');
    proc.stderr?.on('data', (text: string) => {
      stderr = (stderr + text).slice(-STDERR_TAIL);
      // whole lines only: a counter cut in two by a pipe read would read as a smaller number
      const lines = (partialLine + text).split('\n');
      partialLine = (lines.pop() ?? '').slice(-STDERR_TAIL);
      for (const line of lines) {
        if (/listening on /.test(line)) {
          if (!listening) deps.onOpen?.();
          listening = true;
        }
        else if (line.includes('dropped by')) noteDrops(tcpdumpDrops(line));
      }
    });
    // tcpdump installs its SIGUSR1 handler before it says "listening on"; before that the signal would
    // end it (the default action), so the poll waits for that line
    const statsIntervalMs = opts.statsIntervalMs ?? STATS_INTERVAL_MS;
    const poller = statsIntervalMs > 0
      ? setInterval(() => {
        if (listening && proc.exitCode === null && proc.signalCode === null && !stopRequested) proc.kill(STATS_SIGNAL);
      }, statsIntervalMs)
      : null;
    poller?.unref();
    const exited = new Promise<ExitInfo>((resolve) => {
      proc.once('error', (err) => resolve({ code: null, signal: null, spawnError: err }));
      proc.once('close', (code, signal) => resolve({ code, signal, spawnError: null }));
    });
    const source = buildFileSource({ path: '-', input: proc.stdout ?? undefined, name: `tcpdump on ${opts.interface}` }, deps);
    reader = source;
    if (stopRequested) stopChild();
    const reading = source.run(sink).then(
      (stats) => ({ stats, error: null as unknown }),
      (error: unknown) => ({ stats: null, error }),
    );
    // the reader gives up on unusable input while tcpdump may still be running: end it too
    void reading.then(stopChild);
    const [result, exit] = await Promise.all([reading, exited]);
    if (poller !== null) clearInterval(poller);
    noteDrops(tcpdumpDrops(partialLine === '' ? stderr : `${stderr}\n`));
    child = null;
    if (exit.spawnError !== null) {
      const code = (exit.spawnError as NodeJS.ErrnoException).code;
      if (code === 'ENOENT') throw earshotError('EARSHOT_ERR_NO_TCPDUMP');
      throw earshotError('EARSHOT_ERR_CAPTURE_OPEN', opts.interface, exit.spawnError.message);
    }
    const packets = source.stats().packets;
    if (exit.code !== 0 && !stopRequested) {
      // tcpdump writes the file's 24-byte header once the interface is open: without it, it never captured;
      // with it, it failed later (an interface that went away before its buffered packets came out)
      const code = packets === 0 && source.stats().bytesRead < 24 ? 'EARSHOT_ERR_CAPTURE_OPEN' : 'EARSHOT_ERR_CAPTURE_FAILED';
      // killed (a signal, no exit code): it says nothing, the signal says what happened
      throw earshotError(code, opts.interface, tcpdumpErrorText(stderr, opts.interface,
        exit.signal !== null ? `tcpdump ended by itself (signal ${exit.signal}) after ${packets} packets` : undefined));
    }
    if (!stopRequested && result.error === null) {
      // a live capture ends when earshot stops it; tcpdump ending on its own (a kill, a signal from
      // elsewhere) is a failure, so that a service manager starts earshot again
      throw earshotError('EARSHOT_ERR_CAPTURE_FAILED', opts.interface, `tcpdump ended by itself (${exit.signal !== null ? `signal ${exit.signal}` : `exit ${exit.code}`}) after ${packets} packets`);
    }
    if (result.error !== null) {
      // stopped before tcpdump wrote its header: an empty capture, not a broken one
      if (stopRequested && packets === 0 && isEarshotError(result.error)
        && (result.error.code === 'EARSHOT_ERR_NOT_A_CAPTURE' || result.error.code === 'EARSHOT_ERR_BAD_CAPTURE_HEADER')) {
        return currentStats();
      }
      throw isEarshotError(result.error) ? result.error : failed(opts.interface, result.error);
    }
    return currentStats();
  }

  return {
    description,
    run,
    stop() {
      stopRequested = true;
      // tcpdump (no --immediate-mode) hands packets over when libpcap's 1-s buffer timeout ends, and its
      // SIGTERM throws away the packets still in the kernel's buffer: up to a second of them were lost on
      // every stop (a quarter of a burst; found by an audit). It is stopped once that second has passed
      if (drainTimer === null) drainTimer = setTimeout(stopChild, STOP_DRAIN_MS);
    },
    stats: currentStats,
  };
}

function failed(iface: string, err: unknown): EarshotError {
  return earshotError('EARSHOT_ERR_CAPTURE_FAILED', iface, err instanceof Error ? err.message : String(err));
}
