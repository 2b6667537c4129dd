/**
 * Capture sources: picks the source for a kind. `stdin` is a pcap/pcapng stream on standard input (so
 * `ssh router tcpdump -U -w - | earshot collect --source stdin` works): the file reader on '-'.
 */
import { earshotError } from '../errors.js';
import { buildLibpcapSource, type LibpcapSourceOptions } from './libpcap.js';
import { buildFileSource } from './pcap-file.js';
import { buildTcpdumpSource } from './tcpdump.js';
import type { CaptureSource, SourceDeps } from './types.js';

export { buildFileSource, type FileSourceOptions } from './pcap-file.js';
export { buildLibpcapSource, type LibpcapSourceOptions } from './libpcap.js';
export { buildTcpdumpSource, type TcpdumpSourceOptions } from './tcpdump.js';
export { buildProgress } from './progress.js';
export * from './types.js';

/** Which source to build and its settings; fields a kind does not use are ignored. */
export interface SourceOptions {
  kind: 'file' | 'stdin' | 'libpcap' | 'tcpdump';
  /** Capture file for kind 'file' ('-' = stdin). */
  path?: string;
  /** Network interface for the live kinds. */
  interface?: string;
  /** BPF filter for the live kinds. */
  filter?: string;
  /** Replay pacing for 'file' and 'stdin': N times capture speed, 0 = as fast as possible. */
  realtimeSpeed?: number;
  /** Bytes captured per packet (live kinds). */
  snaplen?: number;
  /** Kernel buffer in bytes (libpcap, tcpdump). */
  bufferSize?: number;
  /** tcpdump binary (tcpdump). */
  tcpdumpPath?: string;
}

function requireInterface(opts: SourceOptions): string {
  if (opts.interface === undefined || opts.interface === '') {
    throw earshotError('EARSHOT_ERR_USAGE', `--source ${opts.kind} needs an interface (--interface)`);
  }
  return opts.interface;
}

/** The libpcap source's options from `opts` (also for the hand-over, cli/pipeline-thread.ts, which adds its own). */
export function libpcapOptions(opts: SourceOptions): LibpcapSourceOptions {
  return { interface: requireInterface(opts), filter: opts.filter, snaplen: opts.snaplen, bufferSize: opts.bufferSize };
}

/** Builds the capture source for `opts.kind`; throws EARSHOT_ERR_USAGE when a needed option is missing. */
export function buildSource(opts: SourceOptions, deps: SourceDeps): CaptureSource {
  switch (opts.kind) {
    case 'file':
      if (opts.path === undefined || opts.path === '') throw earshotError('EARSHOT_ERR_USAGE', 'a capture file is needed (or - for stdin)');
      return buildFileSource({ path: opts.path, realtimeSpeed: opts.realtimeSpeed }, deps);
    case 'stdin':
      return buildFileSource({ path: '-', realtimeSpeed: opts.realtimeSpeed }, deps);
    case 'libpcap':
      return buildLibpcapSource(libpcapOptions(opts), deps);
    case 'tcpdump':
      return buildTcpdumpSource({ interface: requireInterface(opts), filter: opts.filter, snaplen: opts.snaplen, bufferSize: opts.bufferSize, tcpdumpPath: opts.tcpdumpPath }, deps);
    default:
      throw earshotError('EARSHOT_ERR_USAGE', `unknown capture source ${String((opts as { kind: unknown }).kind)} (file, stdin, libpcap, tcpdump)`);
  }
}
