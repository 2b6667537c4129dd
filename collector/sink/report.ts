/**
 * The report sink: gathers finished flows and DNS answers and renders the `earshot.report/1` document
 * (docs/report.md, docs/report.schema.json). It keeps counts and names, never payloads. Flows and DNS
 * answers are rendered as they finish and wait in a spill (sink/spill.ts: on disk in a run, in memory
 * without a directory) until the report is written, so a collector's heap does not grow with them.
 */
import type { CaptureStats } from '../capture/types.js';
import type { CollectorStats } from '../index.js';
import { formatMac } from '../decode/packet.js';
import { fillOnceMemo } from '../memo.js';
import type { Flow } from '../flow/flow.js';
import { flowRecord, type FlowRecord } from '../flow/record.js';
import type { DnsAnswer } from '../flow/payload.js';
import type { Call } from '../detect/calls.js';
import type { Activation } from '../detect/detector.js';
import type { Device } from '../identify/device.js';
import { DeviceTotalsStore, type DeviceTotals } from './device-totals.js';
import { NewestRing } from './ring.js';
import { withLocal } from '../local/record.js';
import type { Static } from '@sinclair/typebox';
import { REPORT_SCHEMA, type ReportActivation, type ReportCall, type ReportDevice, type ReportDns, type ReportFinding, type ReportFlow, type ReportSchema } from './report-schema.js';
import { SpillDir, type SpillRing } from './spill.js';

// the report's shape is written once, in report-schema.ts; the types here are derived from it
export { REPORT_SCHEMA };
export type { ReportActivation, ReportCall, ReportDevice, ReportDns, ReportFlow } from './report-schema.js';
/** The whole report, as report-schema.ts describes it. */
export type Report = Static<typeof ReportSchema>;

/**
 * The report with its flows and DNS answers in the form they were kept in (records, or JSON lines read
 * back from a spill), and how each becomes its JSON text and its report form.
 */
export interface ReportOf<F, D> extends Omit<Report, 'flows' | 'dns'> {
  flows: readonly F[];
  dns: readonly D[];
}

interface Gathered {
  report: ReportOf<unknown, unknown>;
  flowJson: (flow: unknown) => string;
  dnsJson: (answer: unknown) => string;
  flowForm: (flow: unknown) => ReportFlow;
  dnsForm: (answer: unknown) => ReportDns;
}

/** The report form of an activation. */
export function activationToReport(a: Activation): ReportActivation {
  // a local assistant's activation says where the voice went (collector/local/); cloud ones carry no `local`
  return withLocal({
    id: a.id, device: a.device, start: isoTime(a.startMs), end: isoTime(a.endMs), bytesUp: a.bytesUp, bytesDown: a.bytesDown,
    server: a.server, serverName: a.serverName, score: a.score, verdict: a.verdict, reasons: a.reasons,
    wakeEvent: a.wakeEventMs === null ? null : isoTime(a.wakeEventMs),
  }, a.local);
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
export function* reportJsonChunks(report: ReportOf<unknown, unknown>, flowToJson: (flow: unknown) => string, dnsToJson: (answer: unknown) => string): Generator<string> {
  const head = { schema: report.schema, site: report.site, capture: report.capture };
  yield `${JSON.stringify(head).slice(0, -1)},\n`;
  const json = (item: unknown) => JSON.stringify(item);
  const lists: Array<[string, readonly unknown[], (item: unknown) => string]> = [
    ['devices', report.devices, json], ['flows', report.flows, flowToJson], ['dns', report.dns, dnsToJson], ['activations', report.activations, json],
    ['calls', report.calls, json], ['findings', report.findings, json],
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

/**
 * Caches of text the report writes again and again (device MACs; names: services, vendors, server
 * names), filled up to this many entries and then left as they are: the names come from the traffic, and
 * a long run (or a LAN that makes up names) must not grow them without end. The frequent ones come early.
 */
const MAX_CACHED_TEXT = 4096;

const macText = fillOnceMemo(formatMac, MAX_CACHED_TEXT);

function macName(mac: number): string | null {
  return mac < 0 ? null : macText(mac);
}

/** JSON text of the names flows carry (services, vendors, server names: few, and repeated). */
const jsonName = fillOnceMemo((v: string) => JSON.stringify(v), MAX_CACHED_TEXT);

function str(v: string | null): string {
  return v === null ? 'null' : jsonName(v);
}

/** A flow as one JSON line, written straight from its record (equal to JSON.stringify(flowToReport(f))). */
function flowJson(f: FlowRecord): string {
  const device = macName(f.deviceMac);
  const peer = macName(f.peerMac);
  return `{"proto":"${f.proto === 6 ? 'tcp' : 'udp'}","client":"${f.client}","clientPort":${f.clientPort},` +
    `"server":"${f.server}","serverPort":${f.serverPort},"packetsUp":${f.packetsUp},"packetsDown":${f.packetsDown},` +
    `"bytesUp":${f.bytesUp},"bytesDown":${f.bytesDown},"first":"${isoTime(f.firstMs)}","last":"${isoTime(f.lastMs)}",` +
    `"device":${device === null ? 'null' : `"${device}"`},"peer":${peer === null ? 'null' : `"${peer}"`},"sni":${str(f.sni)},"serverName":${str(f.serverName)},"nameSource":${str(f.nameSource)},` +
    `"service":${str(f.service)},"vendor":${str(f.vendor)}}`;
}

/** A DNS answer's report form. */
function dnsForm(a: DnsAnswer): ReportDns {
  return { time: isoTime(a.timeMs), name: a.name, type: a.type, data: a.data, ttl: a.ttl };
}

/** A DNS answer as its report line. */
function dnsJson(a: DnsAnswer): string {
  return JSON.stringify(dnsForm(a));
}

/** A flow's record in the report's form (the API's too). */
export function flowToReport(f: FlowRecord): ReportFlow {
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
    peer: macName(f.peerMac),
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
  /** Network hygiene findings (collector findings.list()). */
  findings?: readonly ReportFinding[];
  /** A replay stopped before the end of its input. */
  interrupted?: boolean;
}

export interface ReportSinkOptions {
  maxDnsAnswers: number;
  /** Most finished flows kept (the newest); device totals still count every flow. */
  maxFlows: number;
  /** Most activations kept (the newest). */
  maxActivations: number;
  /** Most devices whose totals are kept. */
  maxDevices: number;
  /** The site the collector watches (config.site). */
  site: string;
}

/**
 * Builds the report sink. Wire onFlowEnd/onDnsAnswer into the collector's listeners. Everything it
 * keeps is bounded, so a collector that runs for months holds the newest flows, answers and
 * activations, and exact per-device totals, not its whole history.
 */
export function buildReportSink(options: ReportSinkOptions, deps: { totals?: DeviceTotalsStore; spill?: SpillDir } = {}) {
  // each flow's line starts with what the report sorts by (first packet, then id), then its JSON
  const spill = deps.spill ?? new SpillDir(null);
  // without a directory (replay) the records themselves, rendered while the report is written: as fast,
  // and smaller at the end, than lines kept in memory
  const spilling = spill.base !== null;
  const flows = spilling ? spill.ring('flows', options.maxFlows) : null;
  const dns = spilling ? spill.ring('dns', options.maxDnsAnswers) : null;
  const flowRecords = new NewestRing<FlowRecord>(spilling ? 0 : options.maxFlows);
  const dnsAnswers = new NewestRing<DnsAnswer>(spilling ? 0 : options.maxDnsAnswers);
  // activations stay in memory: a label or wake event may still change a recent one's verdict
  const activations = new NewestRing<Activation>(options.maxActivations);
  const calls = new NewestRing<Call>(MAX_REPORT_CALLS);
  // the run's device totals (shared with the API), or the report's own; fed here only when its own
  const ownTotals = deps.totals === undefined;
  const totals = deps.totals ?? new DeviceTotalsStore({ maxDevices: options.maxDevices, endpoints: false });

  return {
    /** A flow ended (its record: flowRecord(flow)). */
    onFlowEnd(record: FlowRecord): void {
      if (flows !== null) flows.push(`${record.firstMs} ${record.id} ${flowJson(record)}`);
      else flowRecords.push(record);
      if (ownTotals) totals.add(record);
    },
    onActivation(activation: Activation): void {
      activations.push(activation);
    },
    onDnsAnswer(answer: DnsAnswer): void {
      if (dns !== null) dns.push(dnsJson(answer));
      else dnsAnswers.push(answer);
    },
    onCall(call: Call): void {
      calls.push(call);
    },
    /** What the bounds left out of the report so far. */
    dropped: () => ({ flows: flowsDropped(), activations: activations.dropped, dnsAnswers: dnsDropped() }),
    /** Renders the report from what was gathered; `open` adds flows still active (live snapshots). */
    build(capture: CaptureStats, stats: CollectorStats, inputs: ReportInputs = {}): Report {
      const { report, flowForm, dnsForm } = gather(capture, stats, inputs);
      return { ...report, flows: report.flows.map(flowForm), dns: report.dns.map(dnsForm) };
    },
    /** The report as JSON text chunks; flows are rendered one by one while writing (or written as spilled). */
    jsonChunks(capture: CaptureStats, stats: CollectorStats, inputs: ReportInputs = {}): Generator<string> {
      const { report, flowJson: toJson, dnsJson: dnsToJson } = gather(capture, stats, inputs);
      return reportJsonChunks(report, toJson, dnsToJson);
    },
  };

  function flowsDropped(): number {
    return flows !== null ? flows.dropped : flowRecords.dropped;
  }

  function dnsDropped(): number {
    return dns !== null ? dns.dropped : dnsAnswers.dropped;
  }

  /** The spilled flows' lines and the open flows', in order of their first packet (then id). */
  function flowLines(flows: SpillRing, open: readonly FlowRecord[]): string[] {
    const firstMs: number[] = [];
    const ids: number[] = [];
    const json: string[] = [];
    for (const line of flows.lines()) {
      const a = line.indexOf(' ');
      const b = line.indexOf(' ', a + 1);
      firstMs.push(Number(line.slice(0, a)));
      ids.push(Number(line.slice(a + 1, b)));
      json.push(line.slice(b + 1));
    }
    for (const r of open) {
      firstMs.push(r.firstMs);
      ids.push(r.id);
      json.push(flowJson(r));
    }
    const order = Array.from(json.keys()).sort((x, y) => firstMs[x] - firstMs[y] || ids[x] - ids[y]);
    return order.map((i) => json[i]);
  }

  function gather(capture: CaptureStats, stats: CollectorStats, inputs: ReportInputs): Gathered {
    const open = (inputs.open ?? []).map(flowRecord);
    const text = (line: unknown) => line as string;
    const parsed = (line: unknown) => JSON.parse(line as string) as never;
    const lists = flows !== null && dns !== null
      ? { flows: flowLines(flows, open), dns: [...dns.lines()], flowJson: text, dnsJson: text, flowForm: parsed, dnsForm: parsed }
      : {
        flows: [...flowRecords.toArray(), ...open].sort((a, b) => a.firstMs - b.firstMs || a.id - b.id),
        dns: dnsAnswers.toArray().map(dnsForm),
        flowJson: (f: unknown) => flowJson(f as FlowRecord),
        dnsJson: (d: unknown) => JSON.stringify(d),
        flowForm: (f: unknown) => flowToReport(f as FlowRecord),
        dnsForm: (d: unknown) => d as ReportDns,
      };
    // the totals so far, plus the open flows' (a snapshot: the running totals stay as they are)
    const sums = totals.snapshot(open);
    const devices = new Map<number, ReportDevice>();
    for (const dev of inputs.devices ?? []) {
      devices.set(dev.mac, {
        mac: dev.macText, ips: [...dev.ips], vendor: dev.vendor, assistant: dev.assistant, name: dev.name,
        model: dev.model, evidence: dev.evidence, bytesUp: 0, bytesDown: 0,
      });
    }
    // the inventory and the totals are bounded alike but fill in their own order: under a flood of forged
    // MACs (announcements in one, flows in the other) their union was twice the bound. Devices the
    // inventory does not know join the list, the busiest first, while it is within the bound
    const unknown: Array<[number, DeviceTotals]> = [];
    for (const entry of sums) {
      const d = devices.get(entry[0]);
      if (d === undefined) {
        unknown.push(entry);
        continue;
      }
      d.bytesUp = entry[1].bytesUp;
      d.bytesDown = entry[1].bytesDown;
      for (const ip of entry[1].orderedIps()) if (!d.ips.includes(ip)) d.ips.push(ip);
    }
    unknown.sort((a, b) => b[1].bytesUp + b[1].bytesDown - (a[1].bytesUp + a[1].bytesDown) || a[0] - b[0]);
    let unlisted = 0;
    for (const [mac, sum] of unknown) {
      if (devices.size >= options.maxDevices) {
        unlisted++;
        continue;
      }
      devices.set(mac, { mac: formatMac(mac), ips: [...sum.orderedIps()], vendor: null, assistant: false, name: null, model: null, evidence: [], bytesUp: sum.bytesUp, bytesDown: sum.bytesDown });
    }
    const c = stats.capture;
    const report: ReportOf<unknown, unknown> = {
      schema: REPORT_SCHEMA,
      site: options.site,
      capture: {
        packets: c.packets,
        bytes: c.bytes,
        first: c.packets > 0 ? isoTime(c.firstMs) : null,
        last: c.packets > 0 ? isoTime(c.lastMs) : null,
        decodeErrors: stats.decode.decodeErrors,
        truncated: capture.truncated,
        ...(inputs.interrupted === true ? { interrupted: true as const } : {}),
      },
      devices: [...devices.values()].sort((a, b) => b.bytesUp + b.bytesDown - (a.bytesUp + a.bytesDown) || a.mac.localeCompare(b.mac)),
      flows: lists.flows,
      dns: lists.dns,
      activations: activations.toArray().sort((a, b) => a.startMs - b.startMs).map(activationToReport),
      calls: calls.toArray().sort((a, b) => a.startMs - b.startMs).map(callToReport),
      findings: [...(inputs.findings ?? [])],
      stats: {
        kernelDrops: capture.kernelDrops,
        interfaceDrops: capture.interfaceDrops,
        clockOutliers: capture.clockOutliers,
        nonIpPackets: stats.decode.nonIp,
        unsupportedLinkPackets: capture.unsupportedLinkPackets,
        fragments: stats.decode.fragments,
        fragmentsWithoutFirst: stats.decode.fragmentsWithoutFirst,
        reassemblyEvicted: stats.decode.reassemblyEvicted,
        flowsCreated: stats.flows.created,
        flowsExpired: stats.flows.expired,
        flowsEvicted: stats.flows.evicted,
        reportFlowsDropped: flowsDropped(),
        reportActivationsDropped: activations.dropped,
        reportDevicesDropped: totals.dropped + unlisted,
        dnsMessages: stats.payload.dnsMessages,
        dnsMalformed: stats.payload.dnsMalformed,
        dnsStreamsLost: stats.payload.dnsStreamsLost,
        dnsAnswersDropped: dnsDropped(),
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
    return { report, flowJson: lists.flowJson, dnsJson: lists.dnsJson, flowForm: lists.flowForm, dnsForm: lists.dnsForm };
  }
}

export type ReportSink = ReturnType<typeof buildReportSink>;
