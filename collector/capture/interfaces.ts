/**
 * What can be told about a live capture before it opens: whether the interface exists here and is up,
 * whether this process (or tcpdump, for the tcpdump source) may capture, and whether the filter compiles.
 * `collect` asks before anything starts, so that each of these ends the run with its one line, not after
 * "capturing" and the API's lines; the sources still report what only capturing shows.
 */
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { networkInterfaces, tmpdir } from 'node:os';
import { join } from 'node:path';
import { lazyBuiltin } from '../builtins.js';
import { earshotError } from '../errors.js';
import { writeClassicHeader } from './pcap-classic.js';
import { tcpdumpErrorText } from './tcpdump.js';
import { LinkType } from './types.js';

// loaded when tcpdump is asked (the tcpdump source, a filter without the libpcap binding): a replay loads no
// child_process (collector/builtins.ts)
const childProcess = lazyBuiltin<typeof import('node:child_process')>('node:child_process');

/** The interfaces that exist: /sys/class/net (also those without an address), else os.networkInterfaces(). */
export function listInterfaces(sysfs = '/sys/class/net'): { names: string[]; complete: boolean } {
  const names = new Set(Object.keys(networkInterfaces()));
  let complete = false;
  try {
    for (const n of readdirSync(sysfs)) names.add(n);
    complete = true;
  } catch {
    // not Linux: only interfaces with an address are known, so the capture itself decides
  }
  return { names: [...names].sort(), complete };
}

/** At most this many names in a message (a router's bridges and veths can be hundreds). */
const NAMES_SHOWN = 12;

/** "eth0, lo, wlan0" with at most NAMES_SHOWN names, then how many more. */
export function interfaceList(names: readonly string[]): string {
  if (names.length === 0) return 'none';
  const shown = names.slice(0, NAMES_SHOWN).join(', ');
  return names.length > NAMES_SHOWN ? `${shown} and ${names.length - NAMES_SHOWN} more` : shown;
}

/** Whether `name` can be looked up in sysfs as it is (no path separators, not "." or ".."). */
export function plainInterfaceName(name: string): boolean {
  return /^[\w.:@-]+$/.test(name) && name !== '.' && name !== '..';
}

/** IFF_UP in an interface's flags (linux/if.h): libpcap refuses an interface without it ("That device is not up"). */
const IFF_UP = 0x1;

/** Whether sysfs says `iface` is administratively down; false when it cannot be told. */
export function interfaceDown(iface: string, sysfs = '/sys/class/net'): boolean {
  if (!plainInterfaceName(iface)) return false;
  try {
    const flags = Number(readFileSync(`${sysfs}/${iface}/flags`, 'utf8').trim());
    return Number.isInteger(flags) && (flags & IFF_UP) === 0;
  } catch {
    return false;
  }
}

/** CAP_NET_RAW's bit in /proc's capability masks (linux/capability.h). */
const CAP_NET_RAW = 13n;

/**
 * Whether this process holds CAP_NET_RAW in its effective set (what opening a packet socket needs, root
 * included: a container may drop it); null when it cannot be told (no /proc, not Linux).
 */
export function hasNetRaw(procStatus = '/proc/self/status'): boolean | null {
  let text: string;
  try {
    text = readFileSync(procStatus, 'utf8');
  } catch {
    return null;
  }
  const m = /^CapEff:\s*([0-9a-fA-F]+)\s*$/m.exec(text);
  if (!m) return null;
  return ((BigInt(`0x${m[1]}`) >> CAP_NET_RAW) & 1n) === 1n;
}

/** The part of node_pcap used here. */
interface PcapModule {
  findalldevs(): Array<{ name: string }>;
  createOfflineSession(path: string, options: { filter: string }): { close(): void };
}

function loadPcap(moduleName: string): PcapModule | null {
  try {
    return createRequire(import.meta.url)(moduleName) as PcapModule;
  } catch {
    return null;
  }
}

/** libpcap's own list of what it can open (pseudo-devices such as nflog too); null without the addon. */
function libpcapDevices(moduleName: string): string[] | null {
  try {
    return loadPcap(moduleName)?.findalldevs().map((d) => d.name) ?? null;
  } catch {
    return null;
  }
}

/**
 * The link type libpcap gives a Linux interface of each ARPHRD type (if_arp.h), for those where it is
 * certain: Ethernet, the loopback (which libpcap shows as Ethernet), 802.11 with radiotap headers, and
 * ARPHRD_NONE (tun, WireGuard: raw IP; `tcpdump -i tun0 -L` says RAW).
 */
const LINK_TYPE_BY_ARPHRD: ReadonlyMap<number, number> = new Map([[1, LinkType.ETHERNET], [772, LinkType.ETHERNET], [803, 127], [65534, LinkType.RAW]]);

/** The link type a capture on `iface` will have, or null when it cannot be told before opening it. */
export function interfaceLinkType(iface: string, sysfs = '/sys/class/net'): number | null {
  if (iface === 'any') return LinkType.LINUX_SLL;
  if (!plainInterfaceName(iface)) return null;
  try {
    return LINK_TYPE_BY_ARPHRD.get(Number(readFileSync(`${sysfs}/${iface}/type`, 'utf8'))) ?? null;
  } catch {
    return null;
  }
}

/**
 * Why libpcap would refuse `filter` for `linkType` (compiled against an empty capture of that type, as
 * opening the interface would compile it): the libpcap binding's words, else tcpdump's (`-d`); null when
 * it compiles, or when neither is there to ask.
 */
export function filterProblem(filter: string, linkType: number, opts: { pcapModule?: string; tcpdumpPath?: string } = {}): string | null {
  const empty = Buffer.alloc(24);
  writeClassicHeader(empty, 0, linkType, 65_535);
  // the binding opens files only: an empty capture in a directory of our own, when the disk lets us
  const pcap = loadPcap(opts.pcapModule ?? 'pcap');
  let dir: string | null = null;
  try {
    if (pcap !== null) {
      try {
        dir = mkdtempSync(join(tmpdir(), 'earshot-filter-'));
        writeFileSync(join(dir, 'empty.pcap'), empty);
      } catch {
        dir = null; // a full or read-only temporary directory: tcpdump reads it from its standard input
      }
    }
    if (pcap !== null && dir !== null) {
      try {
        pcap.createOfflineSession(join(dir, 'empty.pcap'), { filter }).close();
        return null;
      } catch (err) {
        return err instanceof Error ? err.message : String(err);
      }
    }
    const r = childProcess().spawnSync(opts.tcpdumpPath ?? 'tcpdump', ['-d', '-r', '-', filter], { input: empty, encoding: 'utf8', timeout: 10_000 });
    if (r.error !== undefined || r.status === null || r.status === 0) return null;
    const said = r.stderr.split('\n').map((l) => l.trim()).filter((l) => l !== '' && !l.startsWith('reading from file'));
    return said.map((l) => l.replace(/^tcpdump: /, '')).join(' ') || `tcpdump exited with ${r.status}`;
  } finally {
    if (dir !== null) rmSync(dir, { recursive: true, force: true });
  }
}

/**
 * What `tcpdump -i IF -d [FILTER]` says against a capture on `iface`: it opens the interface, compiles the
 * filter and prints it, capturing nothing. null when it succeeds, or when tcpdump is not there (the source
 * says EARSHOT_ERR_NO_TCPDUMP when it starts).
 */
export function tcpdumpProblem(iface: string, filter: string | null, tcpdumpPath = 'tcpdump'): string | null {
  const said = tcpdumpSays(iface, filter, tcpdumpPath);
  if (said === null) return null;
  if (said.filter) return `the filter "${filter}" is not valid: ${said.problem}`;
  if (!/permission/i.test(said.problem)) return said.problem;
  return `${said.problem}; run as root or: sudo setcap cap_net_raw+eip $(readlink -f $(which ${tcpdumpPath}))`;
}

/** What tcpdump refuses on `iface` with `filter`, and whether it is the filter (the interface opens without it). */
function tcpdumpSays(iface: string, filter: string | null, tcpdumpPath: string): { problem: string; filter: boolean } | null {
  const said = (withFilter: boolean): string | null => {
    const args = ['-i', iface, '-d', ...(withFilter && filter !== null ? [filter] : [])];
    const r = childProcess().spawnSync(tcpdumpPath, args, { encoding: 'utf8', timeout: 10_000, stdio: ['ignore', 'ignore', 'pipe'] });
    return r.error !== undefined || r.status === null || r.status === 0 ? null : tcpdumpErrorText(r.stderr, iface);
  };
  const withFilter = filter !== null && filter.trim() !== '';
  const problem = said(withFilter);
  if (problem === null) return null;
  return { problem, filter: withFilter && said(false) === null };
}

/**
 * Why libpcap would refuse `filter` on `iface`, or null: compiled for the link type sysfs gives for certain
 * (filterProblem); for other interfaces (PPP, GRE and other tunnels) tcpdump, when it is installed, opens
 * the interface and compiles it (`-i IF -d`), and only a filter it refuses where the interface opens
 * without one counts (tcpdump's own permission is not this process's). Null when nothing can tell.
 */
export function interfaceFilterProblem(iface: string, filter: string, opts: { sysfs?: string; pcapModule?: string; tcpdumpPath?: string } = {}): string | null {
  const linkType = interfaceLinkType(iface, opts.sysfs);
  if (linkType !== null) return filterProblem(filter, linkType, { pcapModule: opts.pcapModule });
  const said = tcpdumpSays(iface, filter, opts.tcpdumpPath ?? 'tcpdump');
  return said !== null && said.filter ? said.problem : null;
}

export interface LiveCheckOptions {
  /** /sys/class/net (tests point it elsewhere). */
  sysfs?: string;
  /** /proc/self/status (tests point it elsewhere). */
  procStatus?: string;
  /** The libpcap binding's module ("pcap"). */
  pcapModule?: string;
  /** The tcpdump binary ("tcpdump"). */
  tcpdumpPath?: string;
}

/**
 * Throws EARSHOT_ERR_CAPTURE_OPEN when a live capture of `kind` on `iface` cannot open here: no such
 * interface (the message lists those there are), an interface that is down, for the libpcap source no CAP_NET_RAW, or a `filter`
 * libpcap does not compile for the interface (interfaceFilterProblem); for the tcpdump source,
 * whatever `tcpdump -i IF -d FILTER` refuses (tcpdump's own permission, its file capabilities or setuid
 * bit, not this process's; the filter). Returns when nothing speaks against it, or nothing can be told.
 */
export function checkLiveCapture(kind: 'libpcap' | 'tcpdump', iface: string, opts: LiveCheckOptions = {}, filter?: string | null): void {
  if (iface !== 'any') {
    const { names, complete } = listInterfaces(opts.sysfs);
    if (complete && !names.includes(iface)) {
      // libpcap opens a few devices sysfs does not list (nflog, nfqueue, bluetooth-monitor, ...)
      const pseudo = kind === 'libpcap' ? libpcapDevices(opts.pcapModule ?? 'pcap') : null;
      if (pseudo === null || !pseudo.includes(iface)) {
        throw earshotError('EARSHOT_ERR_CAPTURE_OPEN', iface, `no such network interface (interfaces here: ${interfaceList([...names, 'any'])})`);
      }
    }
  }
  if (iface !== 'any' && interfaceDown(iface, opts.sysfs)) {
    throw earshotError('EARSHOT_ERR_CAPTURE_OPEN', iface, `the interface is down (ip link set ${iface} up; a bridge or access point may still be coming up)`);
  }
  if (kind === 'libpcap' && hasNetRaw(opts.procStatus) === false) {
    const uid = process.getuid?.();
    const fix = uid === 0
      ? 'root here without it: the container or service manager dropped it (docker run --cap-add NET_RAW; systemd AmbientCapabilities=CAP_NET_RAW)'
      : 'run as root or: sudo setcap cap_net_raw+eip $(readlink -f $(which node))';
    throw earshotError('EARSHOT_ERR_CAPTURE_OPEN', iface, `no permission: this process (uid ${uid ?? '?'}) lacks CAP_NET_RAW; ${fix}`);
  }
  if (kind === 'tcpdump') {
    // tcpdump itself opens the interface and compiles the filter for its real link type, and stops (-d):
    // its permission (its own capabilities or setuid bit, not this process's) is checked too
    const problem = tcpdumpProblem(iface, filter ?? null, opts.tcpdumpPath);
    if (problem !== null) throw earshotError('EARSHOT_ERR_CAPTURE_OPEN', iface, problem);
    return;
  }
  const problem = filter ? interfaceFilterProblem(iface, filter, opts) : null;
  if (problem !== null) throw earshotError('EARSHOT_ERR_CAPTURE_OPEN', iface, `the filter "${filter}" is not valid: ${problem}`);
}
