/**
 * The report sink: gathers finished flows and DNS answers and renders the `earshot.report/1` document
 * (docs/report.md, docs/report.schema.json). It keeps counts and names, never payloads.
 */
import type { CaptureStats } from '../capture/types.js';
import type { CollectorStats } from '../index.js';
import { formatAddr, formatMac } from '../decode/packet.js';
import type { Flow } from '../flow/flow.js';
import type { DnsAnswer } from '../flow/payload.js';
import type { Activation } from '../detect/detector.js';
import type { Device } from '../identify/device.js';

export const REPORT_SCHEMA = 'earshot.report/1';

export interface ReportDevice {
  mac: string;
  ips: string[];
  vendor: string | null;
  assistant: boolean;
  name: string | null;
  /** Model when known (mDNS/SSDP announcements, config). */
  model: string | null;
  /** Why earshot thinks what it thinks about the device, in words. */
  evidence: string[];
  /** Bytes the device sent and received (frame lengths), over all its flows. */
  bytesUp: number;
  bytesDown: number;
}

export interface ReportFlow {
  proto: 'tcp' | 'udp';
  client: string;
  clientPort: number;
  server: string;
  serverPort: number;
  packetsUp: number;
  packetsDown: number;
  bytesUp: number;
  bytesDown: number;
  first: string;
  last: string;
  device: string | null;
  sni: string | null;
  serverName: string | null;
  nameSource: 'sni' | 'dns' | 'ip-range' | null;
  service: string | null;
  vendor: string | null;
}

export interface ReportDns {
  time: string;
  name: string;
  type: 'A' | 'AAAA' | 'CNAME';
  data: string;
  ttl: number;
}

/** The report with its flows in some form (records, or live Flow objects converted while writing). */
export interface ReportOf<F> extends Omit<Report, 'flows'> {
  flows: readonly F[];
}

export interface ReportActivation {
  id: string;
  device: string;
  start: string;
  end: string;
  bytesUp: number;
  bytesDown: number;
  server: string | null;
  serverName: string | null;
  score: number;
  verdict: 'confirmed' | 'suspected' | 'unverified';
  reasons: string[];
  wakeEvent: string | null;
}

/** The report form of an activation. */
export function activationToReport(a: Activation): ReportActivation {
  return {
    id: a.id, device: a.device, start: isoTime(a.startMs), end: isoTime(a.endMs), bytesUp: a.bytesUp, bytesDown: a.bytesDown,
    server: a.server, serverName: a.serverName, score: a.score, verdict: a.verdict, reasons: a.reasons,
    wakeEvent: a.wakeEventMs === null ? null : isoTime(a.wakeEventMs),
  };
}

export interface Report {
  schema: typeof REPORT_SCHEMA;
  capture: {
    packets: number;
    bytes: number;
    first: string | null;
    last: string | null;
    decodeErrors: number;
    truncated: boolean;
  };
  devices: ReportDevice[];
  flows: ReportFlow[];
  dns: ReportDns[];
  activations: ReportActivation[];
  /** Self-metrics of the run: what was dropped, evicted or not understood. */
  stats: Record<string, number>;
}

let isoSecond = Number.NaN;
let isoPrefix = '';

/** ISO 8601 UTC with milliseconds (the formatted second is cached: reports hold many close times). */
export function isoTime(ms: number): string {
  const whole = Math.floor(ms);
  const second = Math.floor(whole / 1000);
  if (second !== isoSecond) {
    const text = new Date(second * 1000).toISOString();
    isoPrefix = text.slice(0, 20);
    isoSecond = second;
  }
  const millis = whole - second * 1000;
  return `${isoPrefix}${millis < 10 ? '00' : millis < 100 ? '0' : ''}${millis}Z`;
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

const str = (v: string | null): string => (v === null ? 'null' : JSON.stringify(v));

/** A flow as one JSON line, written straight from the Flow (equal to JSON.stringify(flowToReport(f))). */
function flowJson(f: Flow): string {
  const device = macName(f.deviceMac);
  return `{"proto":"${f.proto === 6 ? 'tcp' : 'udp'}","client":"${formatAddr(f.ipVersion, f.clientWords())}","clientPort":${f.clientPort},` +
    `"server":"${formatAddr(f.ipVersion, f.serverWords())}","serverPort":${f.serverPort},"packetsUp":${f.packetsUp},"packetsDown":${f.packetsDown},` +
    `"bytesUp":${f.bytesUp},"bytesDown":${f.bytesDown},"first":"${isoTime(f.firstMs)}","last":"${isoTime(f.lastMs)}",` +
    `"device":${device === null ? 'null' : `"${device}"`},"sni":${str(f.sni)},"serverName":${str(f.serverName)},"nameSource":${str(f.nameSource)},` +
    `"service":${str(f.service)},"vendor":${str(f.vendor)}}`;
}

function flowToReport(f: Flow): ReportFlow {
  return {
    proto: f.proto === 6 ? 'tcp' : 'udp',
    client: formatAddr(f.ipVersion, f.clientWords()),
    clientPort: f.clientPort,
    server: formatAddr(f.ipVersion, f.serverWords()),
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

/** Builds the report sink. Wire onFlowEnd/onDnsAnswer into the collector's listeners. */
export function buildReportSink(options: { maxDnsAnswers: number }) {
  const flows: Flow[] = [];
  const activations: Activation[] = [];
  // ring of the newest DNS answers
  const dns: DnsAnswer[] = [];
  let dnsStart = 0;
  let dnsDropped = 0;

  return {
    onFlowEnd(flow: Flow): void {
      flows.push(flow);
    },
    onActivation(activation: Activation): void {
      activations.push(activation);
    },
    onDnsAnswer(answer: DnsAnswer): void {
      if (options.maxDnsAnswers === 0) {
        dnsDropped++;
        return;
      }
      if (dns.length < options.maxDnsAnswers) {
        dns.push(answer);
        return;
      }
      dns[dnsStart] = answer;
      dnsStart = (dnsStart + 1) % dns.length;
      dnsDropped++;
    },
    /** Renders the report from what was gathered; `open` adds flows still active (live snapshots). */
    build(capture: CaptureStats, stats: CollectorStats, inputs: ReportInputs = {}): Report {
      const report = gather(capture, stats, inputs);
      return { ...report, flows: report.flows.map(flowToReport) };
    },
    /** The report as JSON text chunks; flows are converted one by one while writing (large captures). */
    jsonChunks(capture: CaptureStats, stats: CollectorStats, inputs: ReportInputs = {}): Generator<string> {
      return reportJsonChunks(gather(capture, stats, inputs), (f) => flowJson(f as Flow));
    },
  };

  function gather(capture: CaptureStats, stats: CollectorStats, inputs: ReportInputs): ReportOf<Flow> {
      const all = [...flows, ...(inputs.open ?? [])].sort((a, b) => a.firstMs - b.firstMs || a.id - b.id);
      const devices = new Map<number, ReportDevice>();
      for (const dev of inputs.devices ?? []) {
        devices.set(dev.mac, {
          mac: dev.macText, ips: [...dev.ips], vendor: dev.vendor, assistant: dev.assistant, name: dev.name,
          model: dev.model, evidence: dev.evidence, bytesUp: 0, bytesDown: 0,
        });
      }
      for (const f of all) {
        if (f.deviceMac < 0) continue;
        let d = devices.get(f.deviceMac);
        if (!d) {
          d = { mac: formatMac(f.deviceMac), ips: [], vendor: null, assistant: false, name: null, model: null, evidence: [], bytesUp: 0, bytesDown: 0 };
          devices.set(f.deviceMac, d);
        }
        const sent = f.deviceIsClient ? f.bytesUp : f.bytesDown;
        d.bytesUp += sent;
        d.bytesDown += f.bytesUp + f.bytesDown - sent;
        const ip = formatAddr(f.ipVersion, f.deviceIsClient ? f.clientWords() : f.serverWords());
        if (!d.ips.includes(ip)) d.ips.push(ip);
      }
      const orderedDns = [...dns.slice(dnsStart), ...dns.slice(0, dnsStart)];
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
        dns: orderedDns.map((a) => ({ time: isoTime(a.timeMs), name: a.name, type: a.type, data: a.data, ttl: a.ttl })),
        activations: [...activations].sort((a, b) => a.startMs - b.startMs).map(activationToReport),
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
          dnsMessages: stats.payload.dnsMessages,
          dnsMalformed: stats.payload.dnsMalformed,
          dnsAnswersDropped: dnsDropped,
          sniFound: stats.payload.sniFound,
          sniGaveUp: stats.payload.sniGaveUp,
          quicSni: stats.payload.quicSni,
          announcements: stats.payload.announcements,
          ...(stats.tagging ?? {}),
          ...(stats.detect ? { activations: stats.detect.activations, rejectedBursts: stats.detect.rejectedBursts } : {}),
        },
      };
  }
}

export type ReportSink = ReturnType<typeof buildReportSink>;
