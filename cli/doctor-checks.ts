/**
 * The checks of `earshot doctor`: each returns lines that say what was found and what to do about it.
 * Only the capture checks can block (collect cannot run without them); the others explain.
 */
import { existsSync, lstatSync, readdirSync, readFileSync, statfsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { buildSource } from '../collector/capture/index.js';
import { interfaceDown, interfaceFilterProblem, interfaceLinkType, listInterfaces } from '../collector/capture/interfaces.js';
import { LinkType } from '../collector/capture/types.js';
import type { Config } from '../collector/config.js';
import { isEarshotError } from '../collector/errors.js';
import { IPPROTO_TCP } from '../collector/decode/packet.js';
import type { Flow } from '../collector/flow/flow.js';
import { isDiskFull, removeFile, writeFileAtomic } from '../collector/durable.js';
import { dataDirHolder } from '../collector/data-dir.js';
import { buildCollector } from '../collector/index.js';
import { buildWriteClient, influxTarget, type InfluxTarget } from '../collector/sink/influx/client.js';
import { batchProblem } from '../collector/sink/influx/batch-check.js';
import { createCommand, setupEnabled } from '../collector/sink/influx/setup.js';
import { lazyBuiltin } from '../collector/builtins.js';

const childProcess = lazyBuiltin<typeof import('node:child_process')>('node:child_process');
const net = lazyBuiltin<typeof import('node:net')>('node:net');

export type CheckStatus = 'ok' | 'warn' | 'FAIL' | 'skip';

/** One line of the doctor's list. `blocking` FAIL lines make the exit code 2. */
export interface CheckResult {
  check: string;
  status: CheckStatus;
  message: string;
  /** What to do about it. */
  fix?: string;
  blocking?: boolean;
}

const line = (check: string, status: CheckStatus, message: string, fix?: string, blocking?: boolean): CheckResult =>
  ({ check, status, message, ...(fix ? { fix } : {}), ...(blocking ? { blocking } : {}) });

const errText = (err: unknown): string => {
  const e = err as { message?: string; code?: string; cause?: { code?: string; message?: string } };
  return e?.cause?.code ?? e?.code ?? e?.cause?.message ?? e?.message ?? String(err);
};

/** 1. The capture tool of capture.source: the pcap addon, or a tcpdump binary. */
export function checkCaptureTool(config: Readonly<Config>): CheckResult {
  const source = config.capture.source;
  if (source === 'stdin') {
    return line('capture', 'skip', 'capture.source is stdin: packets come from a tcpdump elsewhere (ssh router tcpdump -U -w - | earshot collect --source stdin); nothing to check here');
  }
  if (source === 'libpcap') {
    try {
      createRequire(import.meta.url)('pcap');
      return line('capture', 'ok', 'libpcap available (pcap addon loaded)');
    } catch (err) {
      const alt = tcpdumpVersion() !== null ? ' (tcpdump is installed: --source tcpdump works now)' : '';
      return line('capture', 'FAIL', `the optional "pcap" package does not load: ${(err as Error).message.split('\n')[0]}`,
        `install libpcap-dev (apt-get install libpcap-dev) then npm install pcap, or use --source tcpdump${alt}`, true);
    }
  }
  const version = tcpdumpVersion();
  if (version === null) return line('capture', 'FAIL', 'tcpdump not found on PATH', 'install it (apt-get install tcpdump, opkg install tcpdump) or use --source libpcap', true);
  return line('capture', 'ok', `tcpdump available (${version})`);
}

function tcpdumpVersion(): string | null {
  const r = childProcess().spawnSync('tcpdump', ['--version'], { encoding: 'utf8', timeout: 5000 });
  if (r.error) return null;
  return `${r.stdout}${r.stderr}`.split('\n').find((l) => /tcpdump/i.test(l))?.trim() ?? 'tcpdump';
}

/** Per device: its TCP flows to the internet that carried packets both ways, only out, only in. */
interface Directions {
  twoWay: number;
  outOnly: number;
  inOnly: number;
}

/** What a short capture saw. */
export interface CaptureFindings {
  results: CheckResult[];
  /** Time of the newest packet (ms), NaN when none. */
  lastMs: number;
}

function permissionFix(source: string): string {
  const binary = source === 'tcpdump' ? 'tcpdump' : 'node';
  return `run as root or: sudo setcap cap_net_raw+eip $(readlink -f $(which ${binary}))`;
}

/** 2 and 3: opens the interface, captures for `seconds`, and runs the packets through the pipeline. */
export async function checkCapture(config: Readonly<Config>, seconds: number, onWarning: (m: string) => void): Promise<CaptureFindings> {
  const iface = config.capture.interface;
  const kind = config.capture.source;
  const none = { lastMs: Number.NaN };
  const { names, complete } = listInterfaces();
  const existing = `interfaces here: ${names.join(', ') || 'none'}`;
  if (!iface) return { ...none, results: [line('interface', 'FAIL', `no interface configured (${existing})`, 'pass --interface IF (or capture.interface, EARSHOT_CAPTURE_INTERFACE)', true)] };
  const missing = (detail: string) => line('interface', 'FAIL', `no such interface "${iface}"${detail} (${existing})`, 'pass --interface with one of these; on OpenWrt the LAN bridge is usually br-lan', true);
  const notOpened = line('traffic', 'skip', 'the capture did not open');
  if (complete && iface !== 'any' && !names.includes(iface)) return { ...none, results: [missing(''), notOpened] };
  if (iface !== 'any' && interfaceDown(iface)) {
    return { ...none, results: [line('interface', 'FAIL', `${iface} is down`, `ip link set ${iface} up (or wait for the bridge or access point that brings it up)`, true), notOpened] };
  }
  const filter = config.capture.filter;
  const problem = filter ? interfaceFilterProblem(iface, filter) : null;
  if (problem !== null) {
    return { ...none, results: [line('filter', 'FAIL', `the filter "${filter}" is not valid on ${iface}: ${problem}`, 'fix capture.filter (or --filter); tcpdump -d -i IF \'FILTER\' checks one', true), notOpened] };
  }

  const results: CheckResult[] = [];
  // a tun or WireGuard interface: raw IP, no MAC addresses, so no device can be told apart
  if (interfaceLinkType(iface) === LinkType.RAW) {
    results.push(line('interface', 'warn', `${iface} carries raw IP without MAC addresses: earshot tells devices apart by MAC, so no device, assistant or activation comes from it`, 'capture on the LAN side: the bridge, Wi-Fi or Ethernet interface the assistants are on (--interface)'));
  }
  const directions = new Map<number, Directions>();
  const collector = buildCollector(config, {
    onFlowEnd(f: Flow) {
      if (f.proto !== IPPROTO_TCP || !f.hasLocal || f.bothLocal || f.deviceMac < 0) return;
      const out = f.deviceIsClient ? f.packetsUp : f.packetsDown;
      const inn = f.deviceIsClient ? f.packetsDown : f.packetsUp;
      let d = directions.get(f.deviceMac);
      if (!d) directions.set(f.deviceMac, (d = { twoWay: 0, outOnly: 0, inOnly: 0 }));
      if (out > 0 && inn > 0) d.twoWay++;
      else if (out > 0) d.outOnly++;
      else if (inn > 0) d.inOnly++;
    },
  });
  const source = buildSource({ kind, interface: iface, filter: config.capture.filter ?? undefined, snaplen: config.capture.snaplen }, { onWarning });
  const timer = setTimeout(() => source.stop(), seconds * 1000);
  let stats;
  try {
    stats = await collector.run(source);
  } catch (err) {
    const message = (err as Error).message.replace(/^cannot capture on [^:]*: /, '');
    if (/permission|not permitted|EPERM|EACCES/i.test(message)) {
      results.push(line('capture permission', 'FAIL', `no permission to capture on ${iface} (${kind}, uid ${process.getuid?.() ?? '?'}): ${message}`, permissionFix(kind), true));
    } else if (/no such device|doesn't exist|no such interface|ENODEV/i.test(message)) {
      results.push(missing(`: ${message}`));
    } else {
      results.push(line('capture permission', 'FAIL', message, 'see docs/errors.md for the code; check --interface and --filter', true));
    }
    results.push(notOpened);
    return { ...none, results };
  } finally {
    clearTimeout(timer);
  }
  const uid = process.getuid?.();
  results.push(line('capture permission', 'ok', `opened ${iface} (${kind}) as ${uid === 0 ? 'root' : `uid ${uid ?? '?'}`}`));
  const totals = collector.stats().capture;
  const drops = stats.kernelDrops + stats.interfaceDrops;
  if (totals.packets === 0) {
    results.push(line('traffic', 'warn', `no packet on ${iface} in ${seconds} s${config.capture.filter ? ` (filter "${config.capture.filter}")` : ''}`,
      'capture where the assistants\' traffic crosses (the router\'s LAN bridge, e.g. br-lan, or the mirror port), or wait longer: --seconds 30'));
  } else {
    results.push(line('traffic', drops > 0 ? 'warn' : 'ok', `${totals.packets} packets (${totals.bytes} bytes) in ${seconds} s on ${iface}${drops > 0 ? `, ${drops} dropped by the kernel or interface` : ''}`,
      drops > 0 ? 'the machine is too slow for this traffic: add a --filter (e.g. "not port 22") or lower --snaplen' : undefined));
  }
  results.push(...assistantChecks(collector, directions, totals.packets, seconds));
  return { results, lastMs: totals.lastMs };
}

function assistantChecks(collector: ReturnType<typeof buildCollector>, directions: Map<number, Directions>, packets: number, seconds: number): CheckResult[] {
  const out: CheckResult[] = [];
  const inventory = collector.inventory;
  if (packets === 0) return [line('assistants', 'skip', 'no packets to look at')];
  let macs = [...directions.keys()];
  let whose = 'local devices';
  if (inventory === null) {
    out.push(line('assistants', 'skip', 'tagging is off (tagging.enabled): devices are not identified'));
  } else {
    const assistants = inventory.all().filter((d) => d.assistant);
    if (assistants.length === 0) {
      out.push(line('assistants', 'warn', `none of the ${inventory.all().length} devices seen in ${seconds} s looks like a voice assistant`,
        'idle assistants talk every few minutes: try --seconds 120; check that their traffic crosses this interface'));
    } else {
      out.push(line('assistants', 'ok', `${assistants.length} seen: ${assistants.map((d) => `${d.name ?? d.vendor ?? 'assistant'} (${d.macText})`).join(', ')}`));
      macs = assistants.map((d) => d.mac);
      whose = 'assistants';
    }
  }
  const sum: Directions = { twoWay: 0, outOnly: 0, inOnly: 0 };
  for (const m of macs) {
    const d = directions.get(m);
    if (d) for (const k of ['twoWay', 'outOnly', 'inOnly'] as const) sum[k] += d[k];
  }
  const oneWay = sum.outOnly + sum.inOnly;
  const total = oneWay + sum.twoWay;
  if (total === 0) {
    out.push(line('directions', 'skip', `no TCP flow between the ${whose} and the internet seen`));
  } else if ((oneWay >= 2 && sum.twoWay === 0) || (total >= 5 && oneWay > 0.8 * total)) {
    const which = sum.outOnly >= sum.inOnly ? 'only what they send (no answers)' : 'only what they receive (nothing sent)';
    out.push(line('directions', 'warn', `${oneWay} of ${total} TCP flows of the ${whose} show one direction, ${which}: a mirror port that copies one direction`,
      'mirror both directions (rx and tx, ingress and egress) of the uplink port, or capture on the router itself'));
  } else {
    out.push(line('directions', 'ok', `both directions seen (${sum.twoWay} of ${total} TCP flows of the ${whose} carried packets both ways)`));
  }
  return out;
}

/** 8. The system clock: set at all (a Pi without RTC starts in 1970), and in step with the packets. */
export function checkClock(lastPacketMs: number, nowMs = Date.now()): CheckResult {
  const now = new Date(nowMs);
  if (now.getUTCFullYear() < 2020) {
    return line('clock', 'warn', `the system clock says ${now.toISOString()}: it was never set (no RTC, no NTP sync yet)`,
      'enable NTP (timedatectl set-ntp true; OpenWrt: System > System > Time Synchronization) and start earshot after the sync');
  }
  if (!Number.isFinite(lastPacketMs)) return line('clock', 'ok', `system clock ${now.toISOString()} (no packet time to compare with)`);
  const skewS = (nowMs - lastPacketMs) / 1000;
  if (Math.abs(skewS) > 300) {
    return line('clock', 'warn', `the newest packet is stamped ${new Date(lastPacketMs).toISOString()}, ${Math.round(skewS)} s from the system clock ${now.toISOString()}`,
      'the capture host\'s clock differs: sync both with NTP');
  }
  return line('clock', 'ok', `system clock ${now.toISOString()} agrees with the packet times (${Math.abs(skewS).toFixed(1)} s)`);
}

/** 4. InfluxDB: /ping, then an empty write (InfluxDB checks the database and the write permission, stores nothing). */
export async function checkInflux(config: Readonly<Config>): Promise<CheckResult[]> {
  let target: InfluxTarget | null;
  try {
    target = influxTarget(config.influx);
  } catch (err) {
    return [line('influxdb', 'FAIL', (err as Error).message, 'fix influx.url (--influx-url)')];
  }
  if (target === null) return [line('influxdb', 'skip', 'influx.url is not set: nothing is written (--influx-url http://127.0.0.1:8086)')];
  const where = `${target.url.origin}${target.url.pathname.replace(/\/$/, '')}`;
  const timeoutMs = Math.min(target.timeoutMs, 5000);
  let version: string;
  try {
    const res = await fetch(`${where}/ping`, { signal: AbortSignal.timeout(timeoutMs), headers: target.token ? { Authorization: `Token ${target.token}` } : {} });
    await res.arrayBuffer();
    if (res.status !== 204 && res.status !== 200) {
      return [line('influxdb', 'FAIL', `${where}/ping answered ${res.status} ${res.statusText}: not an InfluxDB?`, 'check --influx-url')];
    }
    version = res.headers.get('x-influxdb-version') ?? 'unknown version';
  } catch (err) {
    return [line('influxdb', 'FAIL', `not reachable at ${where}: ${errText(err)}`, `start InfluxDB (systemctl start influxdb) or fix --influx-url; meanwhile points wait in the spool${config.dataDir ? '' : ' (in memory only: set --data-dir)'}`)];
  }
  const out = [line('influxdb', 'ok', `reachable: InfluxDB ${version} at ${where}`)];
  const who = target.token ? 'the token' : target.username ? `user ${target.username}` : 'anonymous';
  const outcome = await buildWriteClient(target).write(Buffer.alloc(0), false, null);
  const db = target.database;
  if (outcome.kind === 'ok') {
    out.push(line('influxdb write', 'ok', `database ${db} accepts writes from ${who} (checked with an empty write: nothing stored)`));
  } else if (outcome.kind === 'retry') {
    out.push(line('influxdb write', 'FAIL', `the write check failed: ${outcome.reason}`, 'InfluxDB is overloaded or restarting: try again'));
  } else if (outcome.kind === 'missing') {
    const create = createCommand(config.influx, outcome.missing, outcome.server);
    out.push(setupEnabled(config.influx) && outcome.missing.what === 'database'
      ? line('influxdb write', 'warn', `database ${db} does not exist yet: collect creates it (influx.setup is on)`, `that needs an admin user (or create it: ${create})`)
      : line('influxdb write', 'FAIL', `${outcome.reason} (and influx.setup is off)`, `create it (${create}) or fix --influx-db`));
  } else if (outcome.status === 401 || outcome.status === 403) {
    out.push(line('influxdb write', 'FAIL', `${who} may not write to ${db}: ${outcome.status} ${outcome.reason}`, 'check influx.username and influx.password (or influx.token) and the user\'s WRITE grant'));
  } else {
    out.push(line('influxdb write', 'warn', `could not check writing without storing a point (${outcome.status} ${outcome.reason})`, 'InfluxDB 2.x/3.x: check the token has write access to the bucket mapped to ' + db));
  }
  return out;
}

const SPOOL_NAME = /^(\d{12})-(\d+)\.lp(\.gz)?$/;
/** Free bytes under which the data directory counts as full: less than a large batch. */
const LOW_SPACE_BYTES = 4 * 1024 * 1024;

/**
 * 5. The InfluxDB spool in dataDir: how many points wait to be written, whether its files are sound,
 * what was set aside in its quarantine, and whether the disk takes writes (a probe file, written and
 * removed as the spool writes its batches, and the free space).
 */
export function checkSpool(config: Readonly<Config>): CheckResult[] {
  if (config.dataDir === null) return [line('spool', 'skip', 'no dataDir: unsent points are kept in memory only and lost when earshot stops', 'set --data-dir (e.g. /var/lib/earshot)')];
  const dir = join(config.dataDir, 'spool', 'influx');
  const out = [checkDataDisk(config.dataDir, dir), ...checkDataDirLock(config.dataDir)];
  if (!existsSync(dir)) return [line('spool', 'ok', `empty (${dir} does not exist yet)`), ...out];
  let points = 0;
  let batches = 0;
  let bytes = 0;
  const damaged: string[] = [];
  try {
    for (const name of readdirSync(dir)) {
      const m = SPOOL_NAME.exec(name);
      if (!m) continue;
      const path = join(dir, name);
      const st = lstatSync(path);
      const problem = st.isFile() ? batchProblem(readFileSync(path), m[3] !== undefined, Number(m[2])) : 'not a regular file';
      if (problem !== null) {
        damaged.push(`${name} (${problem})`);
        continue;
      }
      batches++;
      points += Number(m[2]);
      bytes += st.size;
    }
  } catch (err) {
    return [line('spool', 'FAIL', `cannot read ${dir}: ${errText(err)}`, 'fix the permissions of the data directory'), ...out];
  }
  if (damaged.length > 0) {
    out.push(line('spool files', 'warn', `${damaged.length} damaged: ${damaged.slice(0, 5).join(', ')}${damaged.length > 5 ? ', ...' : ''}`,
      `collect moves them to ${join(dir, 'quarantine')} at its next start (their points are not written); look for a failing disk or power cuts`));
  }
  let aside: string[] = [];
  try {
    aside = readdirSync(join(dir, 'quarantine'));
  } catch {
    // no quarantine yet
  }
  if (aside.length > 0) {
    out.push(line('spool quarantine', 'warn', `${aside.length} batches set aside in ${join(dir, 'quarantine')} (damaged on disk, or InfluxDB could not read them)`,
      'look at them (zcat for .gz); delete them once seen: earshot never sends them again'));
  }
  if (points === 0) return [line('spool', 'ok', `empty (${dir})`), ...out];
  const maxBytes = config.influx.spoolMaxMB * 1024 * 1024;
  const full = bytes > 0.8 * maxBytes;
  const mb = (bytes / 1024 / 1024).toFixed(1);
  return [line('spool', 'warn', `${points} points (${batches} batches, ${mb} MB of ${config.influx.spoolMaxMB} MB) wait in ${dir}`,
    full ? 'nearly full: the oldest are dropped beyond influx.spoolMaxMB; bring InfluxDB back (collect writes them when it answers)' : 'collect writes them once InfluxDB takes writes'), ...out];
}

/** Which earshot uses the data directory now (its lock, earshot.pid): one at a time can. */
function checkDataDirLock(dataDir: string): CheckResult[] {
  const holder = dataDirHolder(dataDir);
  if (holder === null) return [];
  const since = holder.sinceMs > 0 ? ` since ${new Date(holder.sinceMs).toISOString()}` : '';
  return [holder.running
    ? line('data dir lock', 'ok', `in use by earshot PID ${holder.pid}${since}: another collect or replay on ${dataDir} is refused while it runs`)
    : line('data dir lock', 'ok', `left by PID ${holder.pid}${since}, which no longer runs (killed, or a power cut): the next run takes it over`)];
}

/** The data directory's disk: a probe written (and fsynced) as the spool writes a batch, then removed; and its free space. */
function checkDataDisk(dataDir: string, spoolDir: string): CheckResult {
  const where = existsSync(spoolDir) ? spoolDir : existsSync(dataDir) ? dataDir : null;
  if (where === null) return line('data disk', 'ok', `${dataDir} does not exist yet (collect creates it)`);
  let free: number | null = null;
  try {
    const fs = statfsSync(where);
    free = Number(fs.bavail) * Number(fs.bsize);
  } catch {
    // statfs unsupported here: the probe decides
  }
  const probe = join(where, `.doctor-probe-${process.pid}`);
  try {
    writeFileAtomic(probe, Buffer.alloc(64 * 1024, 0x61));
  } catch (err) {
    const full = isDiskFull(err);
    return line('data disk', 'FAIL', `${where} does not take writes: ${errText(err)}${free !== null ? ` (${free} bytes free)` : ''}`,
      full
        ? 'free space on that file system (or move --data-dir): meanwhile collect holds unsent batches in memory (bounded) and they are lost if it stops'
        : 'fix the permissions or remount it read-write: meanwhile collect holds unsent batches in memory (bounded)');
  } finally {
    try {
      removeFile(probe);
    } catch {
      // nothing was left
    }
  }
  const mb = free === null ? null : (free / 1024 / 1024).toFixed(1);
  if (free !== null && free < LOW_SPACE_BYTES) {
    return line('data disk', 'warn', `${where}: only ${mb} MB free`, 'free space: once it is full, collect holds unsent batches in memory (bounded) and they are lost if it stops');
  }
  return line('data disk', 'ok', `${where} takes writes${mb === null ? '' : ` (${mb} MB free)`}`);
}

function tcpConnect(host: string, port: number, timeoutMs: number): Promise<string | null> {
  return new Promise((resolve) => {
    const socket = net().connect({ host, port });
    const done = (error: string | null) => {
      socket.destroy();
      resolve(error);
    };
    socket.setTimeout(timeoutMs, () => done(`no answer within ${timeoutMs / 1000} s`));
    socket.once('connect', () => done(null));
    socket.once('error', (err) => done(errText(err)));
  });
}

const DEFAULT_PORTS: Record<string, number> = { 'http:': 80, 'https:': 443, 'mqtt:': 1883, 'tcp:': 1883, 'mqtts:': 8883, 'ssl:': 8883, 'tls:': 8883, 'ws:': 80, 'wss:': 443 };

/** host:port of a URL (no path, no credentials: webhook paths often hold secrets), or an error text. */
function endpoint(raw: string): { host: string; port: number; text: string } | string {
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    return 'not a URL';
  }
  const port = url.port ? Number(url.port) : DEFAULT_PORTS[url.protocol];
  if (port === undefined) return `unknown scheme ${url.protocol}`;
  const host = url.hostname.replace(/^\[|\]$/g, '');
  return { host, port, text: `${url.protocol}//${url.host}${url.port ? '' : `:${port}`}` };
}

/** 6. Each webhook's host:port takes a TCP connection (no alert is sent). */
export async function checkWebhooks(config: Readonly<Config>): Promise<CheckResult[]> {
  const hooks = config.alerts.webhooks;
  if (hooks.length === 0) return [line('webhooks', 'skip', 'none configured (alerts.webhooks)')];
  return Promise.all(hooks.map(async (h, i) => {
    const name = `webhook ${h.name ?? i + 1}`;
    const ep = endpoint(h.url);
    if (typeof ep === 'string') return line(name, 'FAIL', `${ep}: ${h.url.slice(0, 40)}`, 'fix its url in alerts.webhooks');
    const error = await tcpConnect(ep.host, ep.port, 3000);
    return error === null
      ? line(name, 'ok', `${ep.text} takes connections (TCP only: nothing sent, TLS and the receiver not checked)`)
      : line(name, 'FAIL', `${ep.text} not reachable: ${error}`, 'check the receiver runs and the URL; alerts wait in the outbox meanwhile');
  }));
}

/**
 * 10. The API's address (api.listen) is one collect can have: its form and token as collect checks them,
 * and a bind that succeeds; a port in use is fine when the running collector is what answers there.
 */
export async function checkApiListen(config: Readonly<Config>): Promise<CheckResult> {
  const listen = config.api.listen;
  if (!config.api.enabled) return line('api', 'skip', 'the API is off (api.enabled: false)');
  const { checkApiStart } = await import('../api/server.js');
  try {
    await checkApiStart(config);
    return line('api', 'ok', `${listen} is free for the API and the status page`);
  } catch (err) {
    if (!isEarshotError(err)) throw err;
    if ((err.cause as NodeJS.ErrnoException | undefined)?.code !== 'EADDRINUSE') {
      return line('api', 'FAIL', err.message, 'fix --listen (api.listen), or the API token it names', true);
    }
    const running = await collectorAt(config);
    if (running === 'token') return line('api', 'warn', `${listen} is in use, and what answers there asks for an API token`, 'if that is the running collector, set api.token or EARSHOT_API_TOKEN here to its token to tell');
    return running !== null
      ? line('api', 'ok', `${listen}: the running collector answers there (earshot ${running})`)
      : line('api', 'FAIL', `${listen} is in use by another program (nothing there answers as earshot)`, 'stop that program, or give the API another address: --listen (api.listen)', true);
  }
}

/** The version of the earshot whose API answers on api.listen; 'token' when what answers asks for one; null when no earshot does. */
async function collectorAt(config: Readonly<Config>): Promise<string | 'token' | null> {
  const token = config.api.token ?? process.env.EARSHOT_API_TOKEN;
  try {
    const res = await fetch(`http://${config.api.listen}/api/v1/health`, {
      headers: { accept: 'application/json', ...(token ? { authorization: `Bearer ${token}` } : {}) },
      signal: AbortSignal.timeout(3000),
    });
    if (res.status === 401) return 'token';
    if (!res.ok) return null;
    const body = (await res.json()) as { version?: unknown };
    return typeof body.version === 'string' ? body.version : null;
  } catch {
    return null;
  }
}

/** 7. The MQTT broker takes a TCP connection (credentials are not checked). */
export async function checkMqtt(config: Readonly<Config>): Promise<CheckResult> {
  if (config.mqtt.url === null) return line('mqtt', 'skip', 'mqtt.url is not set (--mqtt-url mqtt://127.0.0.1:1883)');
  const ep = endpoint(config.mqtt.url);
  if (typeof ep === 'string') return line('mqtt', 'FAIL', `${ep}: ${config.mqtt.url}`, 'fix --mqtt-url (mqtt://HOST:1883 or mqtts://HOST:8883)');
  const error = await tcpConnect(ep.host, ep.port, 3000);
  return error === null
    ? line('mqtt', 'ok', `broker ${ep.text} takes connections (TCP only: user and password not checked)`)
    : line('mqtt', 'FAIL', `broker ${ep.text} not reachable: ${error}`, 'start the broker (systemctl start mosquitto) or fix --mqtt-url');
}
