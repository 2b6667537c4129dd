/**
 * The report sink: gathers finished flows and DNS answers and renders the `earshot.report/1` document
 * (docs/report.md, docs/report.schema.json). It keeps counts and names, never payloads.
 */
import type { CaptureStats } from '../capture/types.js';
import type { CollectorStats } from '../index.js';
import { formatAddr, formatMac, ipv4Text } from '../decode/packet.js';
import type { Flow, NameSource } from '../flow/flow.js';
import type { DnsAnswer } from '../flow/payload.js';
import type { Call } from '../detect/calls.js';
import type { Activation } from '../detect/detector.js';
import type { Device } from '../identify/device.js';
import { NewestRing } from './ring.js';
import type { Static } from '@sinclair/typebox';
import { REPORT_SCHEMA, type ReportActivation, type ReportCall, type ReportDevice, type ReportFlow, type ReportSchema } from './report-schema.js';

// the report's shape is written once, in report-schema.ts; the types here are derived from it
export { REPORT_SCHEMA };
export type { ReportActivation, ReportCall, ReportDevice, ReportDns, ReportFlow } from './report-schema.js';
/** The whole report, as report-schema.ts describes it. */
export type Report = Static<typeof ReportSchema>;

/** The report with its flows in some form (records, or live Flow objects converted while writing). */
export interface ReportOf<F> extends Omit<Report, 'flows'> {
  flows: readonly F[];
}

/** The report form of an activation. */
export function activationToReport(a: Activation): ReportActivation {
  return {
    id: a.id, device: a.device, start: isoTime(a.startMs), end: isoTime(a.endMs), bytesUp: a.bytesUp, bytesDown: a.bytesDown,
    server: a.server, serverName: a.serverName, score: a.score, verdict: a.verdict, reasons: a.reasons,
    wakeEvent: a.wakeEventMs === null ? null : isoTime(a.wakeEventMs),
  };
}

/** The report form of a call. */
export function callToReport(c: Call): ReportCall {
  return {
    id: c.id, kind: c.kind, device: c.device, start: isoTime(c.startMs), end: isoTime(c.endMs), durationS: c.durationS,
    packetsUp: c.packetsUp, packetsDown: c.packetsDown, bytesUp: c.bytesUp, bytesDown: c.bytesDown,
    stunPackets: c.stunPackets, mediaSeconds: c.mediaSeconds, peers: c.peers, peersTruncated: c.peersTruncated,
  };
}

/** Most calls the report keeps (the newest): a call lasts minutes, so a month of them fits. */
export const MAX_REPORT_CALLS = 10_000;

// formatted seconds, direct-mapped by the second's low bits: reports hold many close times, and a
// flow's first and last time alternate, so one remembered second would miss half the time
const ISO_SLOTS = 256;
const isoSeconds = new Float64Array(ISO_SLOTS).fill(Number.NaN);
const isoPrefixes: string[] = new Array<string>(ISO_SLOTS).fill('');
const MILLIS = Array.from({ length: 1000 }, (_, i) => `${String(i).padStart(3, '0')}Z`);

/** The formatted second of `whole` ms, up to the milliseconds ("2024-05-01T12:00:00."). */
function isoPrefix(whole: number): string {
  const second = Math.floor(whole / 1000);
  const slot = second & (ISO_SLOTS - 1);
  if (isoSeconds[slot] !== second) {
    isoPrefixes[slot] = new Date(second * 1000).toISOString().slice(0, 20);
    isoSeconds[slot] = second;
  }
  return isoPrefixes[slot];
}

/** ISO 8601 UTC with milliseconds. */
export function isoTime(ms: number): string {
  const whole = Math.floor(ms);
  return isoPrefix(whole) + MILLIS[whole - Math.floor(whole / 1000) * 1000];
}

/**
 * Writes a report as JSON with one device, flow or DNS answer per line: as readable as indented JSON
 * for grep and diff, and much cheaper to produce for large captures.
 */
export function* reportJsonChunks(report: ReportOf<unknown>, flowToJson: (flow: unknown) => string = (f) => JSON.stringify(f)): Generator<string> {
  const head = { schema: report.schema, capture: report.capture };
  yield `${JSON.stringify(head).slice(0, -1)},\n`;
  const json = (item: unknown) => JSON.stringify(item);
  const lists: Array<[string, readonly unknown[], (item: unknown) => string]> = [
    ['devices', report.devices, json], ['flows', report.flows, flowToJson], ['dns', report.dns, json], ['activations', report.activations, json],
    ['calls', report.calls, json],
  ];
  for (const [name, items, toJson] of lists) {
    if (items.length === 0) {
      yield `"${name}":[],\n`;
      continue;
    }
    let batch = `"${name}":[\n`;
    for (let i = 0; i < items.length; i++) {
      batch += `${toJson(items[i])}${i + 1 < items.length ? ',' : ''}\n`;
      if (batch.length > 1 << 16) {
        yield batch;
        batch = '';
      }
    }
    yield `${batch}],\n`;
  }
  yield `"stats":${JSON.stringify(report.stats)}}\n`;
}

const macNames = new Map<number, string>();

function macName(mac: number): string | null {
  if (mac < 0) return null;
  let name = macNames.get(mac);
  if (name === undefined) {
    name = formatMac(mac);
    if (macNames.size < 65536) macNames.set(mac, name);
  }
  return name;
}

// scratch words for formatting IPv6 addresses: no array per flow
const scratch = new Uint32Array(4);

function clientName(f: Flow): string {
  return f.ipVersion === 4 ? ipv4Text(f.c3) : formatAddr(f.ipVersion, f.clientInto(scratch));
}

function serverName(f: Flow): string {
  if (f.serverText !== null) return f.serverText; // formatted already when the flow was tagged
  return f.ipVersion === 4 ? ipv4Text(f.s3) : formatAddr(f.ipVersion, f.serverInto(scratch));
}

/** JSON text of the names flows carry (services, vendors, server names: few, and repeated). */
const jsonNames = new Map<string, string>();

function str(v: string | null): string {
  if (v === null) return 'null';
  let json = jsonNames.get(v);
  if (json === undefined) {
    json = JSON.stringify(v);
    if (jsonNames.size < 65536) jsonNames.set(v, json);
  }
  return json;
}

/**
 * What the report keeps of a finished flow: its report fields, the addresses already as text. A Flow is
 * much larger (table links, parsing state, other sinks' counters): keeping only this lets the GC take
 * the flow back once it ended, so a long replay holds its report, not every flow it ever saw.
 */
interface FlowRecord {
  readonly id: number;
  readonly proto: number;
  readonly client: string;
  readonly clientPort: number;
  readonly server: string;
  readonly serverPort: number;
  readonly packetsUp: number;
  readonly packetsDown: number;
  readonly bytesUp: number;
  readonly bytesDown: number;
  readonly firstMs: number;
  readonly lastMs: number;
  readonly deviceMac: number;
  readonly deviceIsClient: boolean;
  readonly sni: string | null;
  readonly serverName: string | null;
  readonly nameSource: NameSource;
  readonly service: string | null;
  readonly vendor: string | null;
}

function recordOf(f: Flow): FlowRecord {
  return {
    id: f.id, proto: f.proto, client: clientName(f), clientPort: f.clientPort, server: serverName(f), serverPort: f.serverPort,
    packetsUp: f.packetsUp, packetsDown: f.packetsDown, bytesUp: f.bytesUp, bytesDown: f.bytesDown, firstMs: f.firstMs, lastMs: f.lastMs,
    deviceMac: f.deviceMac, deviceIsClient: f.deviceIsClient,
    sni: f.sni, serverName: f.serverName, nameSource: f.nameSource, service: f.service, vendor: f.vendor,
  };
}

/** A flow as one JSON line, written straight from its record (equal to JSON.stringify(flowToReport(f))). */
function flowJson(f: FlowRecord): string {
  const device = macName(f.deviceMac);
  return `{"proto":"${f.proto === 6 ? 'tcp' : 'udp'}","client":"${f.client}","clientPort":${f.clientPort},` +
    `"server":"${f.server}","serverPort":${f.serverPort},"packetsUp":${f.packetsUp},"packetsDown":${f.packetsDown},` +
    `"bytesUp":${f.bytesUp},"bytesDown":${f.bytesDown},"first":"${isoTime(f.firstMs)}","last":"${isoTime(f.lastMs)}",` +
    `"device":${device === null ? 'null' : `"${device}"`},"sni":${str(f.sni)},"serverName":${str(f.serverName)},"nameSource":${str(f.nameSource)},` +
    `"service":${str(f.service)},"vendor":${str(f.vendor)}}`;
}

function flowToReport(f: FlowRecord): ReportFlow {
  return {
    proto: f.proto === 6 ? 'tcp' : 'udp',
    client: f.client,
    clientPort: f.clientPort,
    server: f.server,
    serverPort: f.serverPort,
    packetsUp: f.packetsUp,
    packetsDown: f.packetsDown,
    bytesUp: f.bytesUp,
    bytesDown: f.bytesDown,
    first: isoTime(f.firstMs),
    last: isoTime(f.lastMs),
    device: macName(f.deviceMac),
    sni: f.sni,
    serverName: f.serverName,
    nameSource: f.nameSource,
    service: f.service,
    vendor: f.vendor,
  };
}

/** What the report is built from besides the gathered flows and answers. */
export interface ReportInputs {
  /** Flows still open (live snapshots); a replay has flushed them all. */
  open?: readonly Flow[];
  /** The inventory's devices (with tagging on): vendor, name, model, assistant, evidence. */
  devices?: readonly Device[];
}

/** Most addresses remembered per device for the report (IPv6 privacy addresses change daily). */
const MAX_IPS_PER_DEVICE = 64;

/** A device's traffic over every flow that ended, and its addresses with the flow that first showed each. */
class DeviceSums {
  bytesUp = 0;
  bytesDown = 0;
  /** address -> [firstMs, id] of the earliest flow that had it: the report lists them in that order. */
  readonly ips = new Map<string, [number, number]>();

  add(f: FlowRecord): void {
    const sent = f.deviceIsClient ? f.bytesUp : f.bytesDown;
    this.bytesUp += sent;
    this.bytesDown += f.bytesUp + f.bytesDown - sent;
    const ip = f.deviceIsClient ? f.client : f.server;
    const seen = this.ips.get(ip);
    if (seen === undefined ? this.ips.size < MAX_IPS_PER_DEVICE : f.firstMs < seen[0] || (f.firstMs === seen[0] && f.id < seen[1])) {
      this.ips.set(ip, [f.firstMs, f.id]);
    }
  }

  copy(): DeviceSums {
    const c = new DeviceSums();
    c.bytesUp = this.bytesUp;
    c.bytesDown = this.bytesDown;
    for (const [ip, first] of this.ips) c.ips.set(ip, first);
    return c;
  }

  /** The addresses in the order of the flows that first had them. */
  orderedIps(): string[] {
    return [...this.ips].sort(([, a], [, b]) => a[0] - b[0] || a[1] - b[1]).map(([ip]) => ip);
  }
}

export interface ReportSinkOptions {
  maxDnsAnswers: number;
  /** Most finished flows kept (the newest); device totals still count every flow. */
  maxFlows: number;
  /** Most activations kept (the newest). */
  maxActivations: number;
  /** Most devices whose totals are kept. */
  maxDevices: number;
}

/**
 * Builds the report sink. Wire onFlowEnd/onDnsAnswer into the collector's listeners. Everything it
 * keeps is bounded, so a collector that runs for months holds the newest flows, answers and
 * activations, and exact per-device totals, not its whole history.
 */
export function buildReportSink(options: ReportSinkOptions) {
  const flows = new NewestRing<FlowRecord>(options.maxFlows);
  const activations = new NewestRing<Activation>(options.maxActivations);
  const dns = new NewestRing<DnsAnswer>(options.maxDnsAnswers);
  const calls = new NewestRing<Call>(MAX_REPORT_CALLS);
  const deviceSums = new Map<number, DeviceSums>();
  let devicesDropped = 0;

  function addToDevice(sums: Map<number, DeviceSums>, f: FlowRecord): void {
    if (f.deviceMac < 0) return;
    let d = sums.get(f.deviceMac);
    if (d === undefined) {
      if (sums.size >= options.maxDevices) {
        devicesDropped++;
        return;
      }
      d = new DeviceSums();
      sums.set(f.deviceMac, d);
    }
    d.add(f);
  }

  return {
    onFlowEnd(flow: Flow): void {
      const record = recordOf(flow);
      flows.push(record);
      addToDevice(deviceSums, record);
    },
    onActivation(activation: Activation): void {
      activations.push(activation);
    },
    onDnsAnswer(answer: DnsAnswer): void {
      dns.push(answer);
    },
    onCall(call: Call): void {
      calls.push(call);
    },
    /** What the bounds left out of the report so far. */
    dropped: () => ({ flows: flows.dropped, activations: activations.dropped, dnsAnswers: dns.dropped }),
    /** Renders the report from what was gathered; `open` adds flows still active (live snapshots). */
    build(capture: CaptureStats, stats: CollectorStats, inputs: ReportInputs = {}): Report {
      const report = gather(capture, stats, inputs);
      return { ...report, flows: report.flows.map(flowToReport) };
    },
    /** The report as JSON text chunks; flows are converted one by one while writing (large captures). */
    jsonChunks(capture: CaptureStats, stats: CollectorStats, inputs: ReportInputs = {}): Generator<string> {
      return reportJsonChunks(gather(capture, stats, inputs), (f) => flowJson(f as FlowRecord));
    },
  };

  function gather(capture: CaptureStats, stats: CollectorStats, inputs: ReportInputs): ReportOf<FlowRecord> {
    const open = (inputs.open ?? []).map(recordOf);
    const all = [...flows.toArray(), ...open].sort((a, b) => a.firstMs - b.firstMs || a.id - b.id);
    // the totals so far, plus the open flows' (a snapshot: the running totals stay as they are)
    let sums = deviceSums;
    if (open.length > 0) {
      sums = new Map([...deviceSums].map(([mac, d]) => [mac, d.copy()]));
      for (const f of open) addToDevice(sums, f);
    }
    const devices = new Map<number, ReportDevice>();
    for (const dev of inputs.devices ?? []) {
      devices.set(dev.mac, {
        mac: dev.macText, ips: [...dev.ips], vendor: dev.vendor, assistant: dev.assistant, name: dev.name,
        model: dev.model, evidence: dev.evidence, bytesUp: 0, bytesDown: 0,
      });
    }
    for (const [mac, sum] of sums) {
      let d = devices.get(mac);
      if (!d) {
        d = { mac: formatMac(mac), ips: [], vendor: null, assistant: false, name: null, model: null, evidence: [], bytesUp: 0, bytesDown: 0 };
        devices.set(mac, d);
      }
      d.bytesUp = sum.bytesUp;
      d.bytesDown = sum.bytesDown;
      for (const ip of sum.orderedIps()) if (!d.ips.includes(ip)) d.ips.push(ip);
    }
    const c = stats.capture;
    return {
      schema: REPORT_SCHEMA,
      capture: {
        packets: c.packets,
        bytes: c.bytes,
        first: c.packets > 0 ? isoTime(c.firstMs) : null,
        last: c.packets > 0 ? isoTime(c.lastMs) : null,
        decodeErrors: stats.decode.decodeErrors,
        truncated: capture.truncated,
      },
      devices: [...devices.values()].sort((a, b) => b.bytesUp + b.bytesDown - (a.bytesUp + a.bytesDown) || a.mac.localeCompare(b.mac)),
      flows: all,
      dns: dns.toArray().map((a) => ({ time: isoTime(a.timeMs), name: a.name, type: a.type, data: a.data, ttl: a.ttl })),
      activations: activations.toArray().sort((a, b) => a.startMs - b.startMs).map(activationToReport),
      calls: calls.toArray().sort((a, b) => a.startMs - b.startMs).map(callToReport),
      stats: {
        kernelDrops: capture.kernelDrops,
        interfaceDrops: capture.interfaceDrops,
        nonIpPackets: stats.decode.nonIp,
        fragments: stats.decode.fragments,
        fragmentsWithoutFirst: stats.decode.fragmentsWithoutFirst,
        reassemblyEvicted: stats.decode.reassemblyEvicted,
        flowsCreated: stats.flows.created,
        flowsExpired: stats.flows.expired,
        flowsEvicted: stats.flows.evicted,
        reportFlowsDropped: flows.dropped,
        reportActivationsDropped: activations.dropped,
        reportDevicesDropped: devicesDropped,
        dnsMessages: stats.payload.dnsMessages,
        dnsMalformed: stats.payload.dnsMalformed,
        dnsStreamsLost: stats.payload.dnsStreamsLost,
        dnsAnswersDropped: dns.dropped,
        sniFound: stats.payload.sniFound,
        sniGaveUp: stats.payload.sniGaveUp,
        quicSni: stats.payload.quicSni,
        announcements: stats.payload.announcements,
        announcementsSkipped: stats.payload.announcementsSkipped,
        ...(stats.tagging ?? {}),
        ...(stats.detect ? { activations: stats.detect.activations, rejectedBursts: stats.detect.rejectedBursts } : {}),
        ...(stats.calls ? { ...stats.calls, reportCallsDropped: calls.dropped } : {}),
      },
    };
  }
}

export type ReportSink = ReturnType<typeof buildReportSink>;
