/**
 * Live capture through a tcpdump child process writing pcap to its stdout (-U -w -), parsed by the same
 * streaming reader as capture files. Needs no native module, only a tcpdump binary.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { earshotError, isEarshotError, type EarshotError } from '../errors.js';
import { buildFileSource } from './pcap-file.js';
import { emptyCaptureStats, type CaptureSource, type CaptureStats, type PacketSink, type SourceDeps } from './types.js';

/** Options of buildTcpdumpSource(). */
export interface TcpdumpSourceOptions {
  interface: string;
  /** BPF filter expression, passed to tcpdump as is. */
  filter?: string;
  /** tcpdump binary; found on PATH by default. */
  tcpdumpPath?: string;
  /** Bytes captured per packet (tcpdump -s). */
  snaplen?: number;
}

/** tcpdump's stderr is kept only this long: enough for its error and its closing statistics. */
const STDERR_TAIL = 16_384;
const DEFAULT_SNAPLEN = 262_144;

/** What tcpdump said on stderr, without its progress lines: the reason it failed, if it did. */
export function tcpdumpErrorText(stderr: string): string {
  const lines = stderr.split('\n').map((line) => line.trim()).filter((line) => line.length > 0
    && !/^(tcpdump: )?listening on /.test(line) && !/^\d+ packets? (captured|received by filter|dropped by)/.test(line)
    && !/^Running as user/.test(line));
  return lines.map((line) => line.replace(/^tcpdump: /, '')).join(' ') || 'tcpdump exited without saying why';
}

/** Kernel and interface drops from tcpdump's closing statistics ("N packets dropped by kernel"). */
export function tcpdumpDrops(stderr: string): { kernel: number; interface: number } {
  const kernel = /(\d+) packets? dropped by kernel/.exec(stderr);
  const iface = /(\d+) packets? dropped by interface/.exec(stderr);
  return { kernel: kernel ? Number(kernel[1]) : 0, interface: iface ? Number(iface[1]) : 0 };
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

  function currentStats(): CaptureStats {
    const stats = reader !== null ? reader.stats() : emptyCaptureStats();
    stats.totalBytes = null;
    stats.kernelDrops = drops.kernel;
    stats.interfaceDrops = drops.interface;
    return stats;
  }

  function stopChild(): void {
    if (child !== null && child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
  }

  async function run(sink: PacketSink): Promise<CaptureStats> {
    const args = ['-i', opts.interface, '-n', '-U', '--immediate-mode', '-s', String(opts.snaplen ?? DEFAULT_SNAPLEN), '-w', '-'];
    if (opts.filter !== undefined && opts.filter.trim() !== '') args.push(opts.filter);
    const proc = spawn(binary, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    child = proc;
    let stderr = '';
    proc.stderr?.setEncoding('utf8');
    proc.stderr?.on('data', (text: string) => {
      stderr = (stderr + text).slice(-STDERR_TAIL);
    });
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
    Object.assign(drops, tcpdumpDrops(stderr));
    child = null;
    if (exit.spawnError !== null) {
      const code = (exit.spawnError as NodeJS.ErrnoException).code;
      if (code === 'ENOENT') throw earshotError('EARSHOT_ERR_NO_TCPDUMP');
      throw earshotError('EARSHOT_ERR_CAPTURE_OPEN', opts.interface, exit.spawnError.message);
    }
    const packets = source.stats().packets;
    if (exit.code !== 0 && !stopRequested) {
      const code = packets === 0 && source.stats().bytesRead <= 24 ? 'EARSHOT_ERR_CAPTURE_OPEN' : 'EARSHOT_ERR_CAPTURE_FAILED';
      throw earshotError(code, opts.interface, tcpdumpErrorText(stderr));
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
      stopChild();
    },
    stats: currentStats,
  };
}

function failed(iface: string, err: unknown): EarshotError {
  return earshotError('EARSHOT_ERR_CAPTURE_FAILED', iface, err instanceof Error ? err.message : String(err));
}
