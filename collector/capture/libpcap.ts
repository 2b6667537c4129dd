/**
 * Live capture in-process through the optional `pcap` package (node_pcap, a libpcap binding). The
 * package is loaded only when this source runs, so earshot installs and replays files without it.
 */
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { endianness } from 'node:os';
import { earshotError, isEarshotError } from '../errors.js';
import { buildDropWatch } from './drops.js';
import { plainInterfaceName } from './interfaces.js';
import { supportedLinkTypesText } from './pcap-classic.js';
import { emptyCaptureStats, LinkType, SUPPORTED_LINKTYPES, type CaptureSource, type CaptureStats, type PacketSink, type SourceDeps } from './types.js';

/** Options of buildLibpcapSource(). */
export interface LibpcapSourceOptions {
  interface: string;
  /** BPF filter expression. */
  filter?: string;
  /** Bytes captured per packet. */
  snaplen?: number;
  /** Kernel capture buffer in bytes: larger rides out bursts without drops. */
  bufferSize?: number;
  /** Longest time libpcap holds packets before handing them over, in ms. */
  bufferTimeoutMs?: number;
  /** Module to load instead of "pcap" (tests use it to simulate the package being missing). */
  moduleName?: string;
  /** Called once the capture is open, with its link type and snap length (the hand-over writes its header). */
  onOpen?: (linkType: number, snaplen: number) => void;
  /** Packets lost after libpcap handed them over (the hand-over's bound): counted with the kernel's drops. */
  extraDrops?: () => number;
}

/** The part of node_pcap's API we use (pcap.js, pcap_session.cc). */
interface PcapPacket {
  buf: Buffer;
  /** tv_sec, tv_usec, caplen, len as 32-bit host-order integers. */
  header: Buffer;
}
interface PcapSession {
  link_type: string;
  on(event: 'packet', listener: (packet: PcapPacket) => void): void;
  stats(): { ps_recv: number; ps_drop: number; ps_ifdrop: number };
  close(): void;
}
interface PcapModule {
  createSession(device: string, options: Record<string, unknown>): PcapSession;
  warningHandler: (message: string) => void;
}

const DEFAULT_SNAPLEN = 262_144;
const DEFAULT_BUFFER = 16 * 1024 * 1024;
const DEFAULT_BUFFER_TIMEOUT_MS = 100;
const STATS_INTERVAL_MS = 1000;

/** node_pcap names the link types it knows; others come as "Unknown linktype N". */
const LINKTYPE_BY_NAME: Readonly<Record<string, number>> = {
  LINKTYPE_NULL: LinkType.NULL,
  LINKTYPE_ETHERNET: LinkType.ETHERNET,
  LINKTYPE_RAW: LinkType.RAW,
  LINKTYPE_LINUX_SLL: LinkType.LINUX_SLL,
  LINKTYPE_IEEE802_11_RADIO: 127,
};

/** The LINKTYPE number for node_pcap's link_type string, or -1 when it names none. */
export function linkTypeFromPcapName(name: string): number {
  const known = LINKTYPE_BY_NAME[name];
  if (known !== undefined) return known;
  const unknown = /linktype (\d+)/i.exec(name);
  return unknown ? Number(unknown[1]) : -1;
}

function loadPcap(moduleName: string): PcapModule {
  try {
    return createRequire(import.meta.url)(moduleName) as PcapModule;
  } catch (err) {
    throw earshotError('EARSHOT_ERR_NO_LIBPCAP', err instanceof Error ? err.message.split('\n')[0] : String(err));
  }
}

/**
 * The interface's index from sysfs (Linux): a number; -1 when the interface is not there; null when
 * it cannot be told (no sysfs, a pseudo-interface such as "any", a name that is not a plain name).
 */
export function interfaceIndex(name: string, sysfs = '/sys/class/net'): number | null {
  if (!plainInterfaceName(name)) return null;
  try {
    const index = Number(readFileSync(`${sysfs}/${name}/ifindex`, 'utf8'));
    return Number.isInteger(index) ? index : null;
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code !== 'ENOENT') return null;
    try {
      readFileSync(`${sysfs}/lo/ifindex`);
    } catch {
      return null; // no sysfs here: nothing to watch
    }
    return -1;
  }
}

/** Builds a live source on `opts.interface` through libpcap. Nothing is opened until run(). */
export function buildLibpcapSource(opts: LibpcapSourceOptions, deps: SourceDeps): CaptureSource {
  const stats = emptyCaptureStats();
  const dropWatch = buildDropWatch(`interface ${opts.interface} (libpcap)`, deps.onWarning);
  let session: PcapSession | null = null;
  let finish: ((error: Error | null) => void) | null = null;
  let stopRequested = false;

  /** The interface's index when capture began (null: not watched). */
  let watchedIndex: number | null = null;

  /** Once a second: the drop counters, and whether the interface is still the one we opened. */
  function watch(): void {
    if (session === null) return;
    // libpcap reports an interface that went away only as a failed read, which node_pcap drops: watch
    // for it here (deleted, or deleted and made again: a new index), and end the capture as failed
    if (watchedIndex !== null && interfaceIndex(opts.interface) !== watchedIndex) {
      end(earshotError('EARSHOT_ERR_CAPTURE_FAILED', opts.interface, 'the interface disappeared'));
      return;
    }
    pollDrops();
  }

  /** libpcap's own counters, as last read. */
  let pcapDrops = 0;
  function pollDrops(): void {
    if (session === null) return;
    try {
      const counters = session.stats();
      pcapDrops = counters.ps_drop;
      stats.interfaceDrops = counters.ps_ifdrop;
    } catch {
      // pcap_stats fails on some devices (savefiles, some tunnels): the counters just stay put
    }
    stats.kernelDrops = pcapDrops + (opts.extraDrops?.() ?? 0);
    dropWatch.update(stats.kernelDrops, stats.interfaceDrops);
    stats.lastDropMs = dropWatch.lastDropMs;
  }

  function end(error: Error | null): void {
    pollDrops();
    // node_pcap's close() only breaks libpcap's loop: the handle (and the poll watcher that keeps the
    // process alive) is released when the next packet arrives. The CLI therefore exits explicitly
    // once its work is done (cli/start.ts).
    session?.close();
    session = null;
    finish?.(error);
    finish = null;
  }

  async function run(sink: PacketSink): Promise<CaptureStats> {
    const pcap = loadPcap(opts.moduleName ?? 'pcap');
    let warned = false;
    pcap.warningHandler = (message: string) => {
      // a mirror port has no address, and needs none: libpcap wants one only for "ip broadcast" filters
      if (warned || /no IPv4 address assigned/.test(message)) return;
      warned = true;
      deps.onWarning?.(`libpcap on ${opts.interface}: ${message}`);
    };
    let opened: PcapSession;
    try {
      opened = pcap.createSession(opts.interface, {
        filter: opts.filter ?? '',
        snap_length: opts.snaplen ?? DEFAULT_SNAPLEN,
        buffer_size: opts.bufferSize ?? DEFAULT_BUFFER,
        buffer_timeout: opts.bufferTimeoutMs ?? DEFAULT_BUFFER_TIMEOUT_MS,
        promiscuous: true,
      });
    } catch (err) {
      throw earshotError('EARSHOT_ERR_CAPTURE_OPEN', opts.interface, err instanceof Error ? err.message : String(err));
    }
    const linkType = linkTypeFromPcapName(opened.link_type);
    if (!SUPPORTED_LINKTYPES.has(linkType)) {
      opened.close();
      throw earshotError('EARSHOT_ERR_UNKNOWN_LINKTYPE', `interface ${opts.interface}`, linkType >= 0 ? linkType : opened.link_type, supportedLinkTypesText());
    }
    session = opened;
    opts.onOpen?.(linkType, opts.snaplen ?? DEFAULT_SNAPLEN);
    deps.onOpen?.();
    const index = interfaceIndex(opts.interface);
    watchedIndex = index !== null && index > 0 ? index : null;
    // node_pcap copies header fields in host byte order: pick the reader once
    const little = endianness() === 'LE';
    const onPacket = (packet: PcapPacket): void => {
      const header = packet.header;
      const timeMs = little
        ? header.readUInt32LE(0) * 1000 + header.readUInt32LE(4) / 1000
        : header.readUInt32BE(0) * 1000 + header.readUInt32BE(4) / 1000;
      const capLen = Math.min(little ? header.readUInt32LE(8) : header.readUInt32BE(8), packet.buf.length);
      const wireLen = little ? header.readUInt32LE(12) : header.readUInt32BE(12);
      try {
        sink(packet.buf, 0, capLen, wireLen, timeMs, linkType);
      } catch (err) {
        // a throwing sink inside node_pcap's native callback would kill the process: end the run instead
        end(isEarshotError(err) || err instanceof Error ? err : new Error(String(err)));
        return;
      }
      stats.packets++;
      stats.bytesRead += capLen;
    };
    opened.on('packet', onPacket);
    const poller = setInterval(watch, STATS_INTERVAL_MS);
    poller.unref();
    return await new Promise<CaptureStats>((resolve, reject) => {
      finish = (error) => {
        clearInterval(poller);
        if (error) reject(error);
        else resolve({ ...stats });
      };
      if (stopRequested) end(null);
    });
  }

  return {
    description: `interface ${opts.interface} (libpcap)`,
    run,
    stop() {
      stopRequested = true;
      end(null);
    },
    stats: () => ({ ...stats }),
  };
}
