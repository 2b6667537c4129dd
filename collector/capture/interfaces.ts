/**
 * What can be told about a live capture before it opens: whether the interface exists here, and whether
 * this process may capture at all. `collect` asks before anything starts, so that a mistyped interface or
 * a missing capability ends the run with its one line, not after "capturing" and the API's lines; the
 * sources still report what only opening shows (a filter libpcap rejects, an interface that is down).
 */
import { readdirSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { networkInterfaces } from 'node:os';
import { earshotError } from '../errors.js';

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

/** libpcap's own list of what it can open (pseudo-devices such as nflog too); null without the addon. */
function libpcapDevices(moduleName: string): string[] | null {
  try {
    const pcap = createRequire(import.meta.url)(moduleName) as { findalldevs(): Array<{ name: string }> };
    return pcap.findalldevs().map((d) => d.name);
  } catch {
    return null;
  }
}

export interface LiveCheckOptions {
  /** /sys/class/net (tests point it elsewhere). */
  sysfs?: string;
  /** /proc/self/status (tests point it elsewhere). */
  procStatus?: string;
  /** The libpcap binding's module ("pcap"). */
  pcapModule?: string;
}

/**
 * Throws EARSHOT_ERR_CAPTURE_OPEN when a live capture of `kind` on `iface` cannot open here: no such
 * interface (the message lists those there are), or, for the libpcap source, no CAP_NET_RAW. Returns when
 * nothing speaks against it, or nothing can be told. The tcpdump source's permission is tcpdump's own
 * (its file capabilities or setuid bit): left to tcpdump to report.
 */
export function checkLiveCapture(kind: 'libpcap' | 'tcpdump', iface: string, opts: LiveCheckOptions = {}): void {
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
  if (kind === 'libpcap' && hasNetRaw(opts.procStatus) === false) {
    const uid = process.getuid?.();
    const fix = uid === 0
      ? 'root here without it: the container or service manager dropped it (docker run --cap-add NET_RAW; systemd AmbientCapabilities=CAP_NET_RAW)'
      : 'run as root or: sudo setcap cap_net_raw+eip $(readlink -f $(which node))';
    throw earshotError('EARSHOT_ERR_CAPTURE_OPEN', iface, `no permission: this process (uid ${uid ?? '?'}) lacks CAP_NET_RAW; ${fix}`);
  }
}
