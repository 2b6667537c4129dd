/**
 * What the API shows of a run, as plain records: the run's view. The pipeline's thread makes each part
 * when it is asked for it (`buildViewSource`); the API (on the main thread, or on the same thread in
 * tests and the demo) keeps the last answer of each part for a moment and reads only that. Parts are
 * plain data, so they cross a thread (structured clone) as they are, and nothing the API does touches
 * the flow table, the inventory or the detector.
 *
 * Each part is bounded: devices by `tagging.maxDevices`, activations and calls by the activity store
 * (10,000). Flows, activations and one device's endpoints are asked for a page at a time (FlowQuery,
 * ActivationQuery, ViewSource.device): filtered where they live, so only the page is made and crosses
 * the threads.
 */
import { isMainThread } from 'node:worker_threads';
import type { CaptureStats } from './capture/types.js';
import type { Activation } from './detect/detector.js';
import type { Label } from './detect/index.js';
import type { WakeEvent } from './detect/wake-events.js';
import type { Flow } from './flow/flow.js';
import { flowRecord, servingPeer, type FlowRecord } from './flow/record.js';
import { parseMac } from './mac.js';
import type { FindingRecord } from './findings/index.js';
import type { CollectorStats } from './index.js';
import type { ApiNotice, PrivacyDevice } from './privacy/index.js';
import type { Device } from './identify/device.js';
import type { Runtime } from './runtime.js';
import { flowToApi, type ApiFlow } from './sink/activity.js';
import { DeviceTotals } from './sink/device-totals.js';
import { withLocal } from './local/record.js';
import { activationToReport, callToReport, isoTime, type ReportActivation, type ReportCall } from './sink/report.js';

/** Most open flows a query looks at (the newest); the API's `limit` on flows goes as far. */
export const MAX_VIEW_FLOWS = 10_000;

export type ApiActivation = ReportActivation & { open: boolean };
export type ApiCall = ReportCall & { open: boolean };

/** One endpoint of a device, as the API lists them under their service. */
export interface ApiEndpoint {
  serverName: string;
  flows: number;
  bytesUp: number;
  bytesDown: number;
}

/** A device with its traffic (ended and open flows) and endpoints by service. */
export interface ApiDevice {
  mac: string;
  name: string | null;
  vendor: string | null;
  model: string | null;
  assistant: boolean;
  ips: string[];
  evidence: string[];
  firstSeen: string | null;
  lastSeen: string | null;
  bytesUp: number;
  bytesDown: number;
  packetsUp: number;
  packetsDown: number;
  flows: number;
}

/** A device in the devices part: its counts, not its endpoints (those come with one device: ViewSource.device). */
export interface DeviceEntry {
  device: ApiDevice;
  lastSeenMs: number;
}

/** One device with its endpoints by service (GET /api/v1/devices/:mac). */
export interface DeviceDetail {
  device: ApiDevice;
  endpoints: Record<string, ApiEndpoint[]>;
}

/** The owner's presence as the API shows it (null in the part when detection is off). */
export interface ApiPresence {
  away: boolean | null;
  since: string | null;
  source: string | null;
  schedule: string[];
  awayNow: boolean;
}

/** The InfluxDB writer's state, for /health and /metrics. */
export interface InfluxState {
  reachable: boolean | null;
  pointsWritten: number;
  pointsRejected: number;
  writeErrors: number;
  queueDepth: number;
  spoolPoints: number;
  spoolBytes: number;
  pointsDropped: number;
  writeProblem: string | null;
  spoolWriteError: string | null;
  spoolWriteErrors: number;
  spoolHeldPoints: number;
  batchesQuarantined: number;
  pointsQuarantined: number;
}

export interface StatusPart {
  captureRunning: boolean;
  stats: CollectorStats;
  capture: CaptureStats | null;
  influx: InfluxState | null;
  alerts: Record<string, Record<string, number | boolean>>;
  presence: ApiPresence | null;
  /** Finished activations by verdict (every one of the run, not only the kept ones). */
  byVerdict: Record<string, number>;
  /** Per device (MAC text), its finished activations among the kept ones (/metrics). */
  activationsByDevice: Record<string, number>;
  calls: { calls: number; open: number } | null;
  /** The V8 heap of the thread this status was made on (the pipeline's when it has its own thread). */
  heap: ThreadHeap;
}

/** One thread's V8 heap (process.memoryUsage() there: heapUsed, heapTotal and external are per isolate). */
export interface ThreadHeap {
  thread: 'main' | 'pipeline';
  usedBytes: number;
  totalBytes: number;
  externalBytes: number;
}

/** The heap of the calling thread. */
export function threadHeap(): ThreadHeap {
  const m = process.memoryUsage();
  return { thread: isMainThread ? 'main' : 'pipeline', usedBytes: m.heapUsed, totalBytes: m.heapTotal, externalBytes: m.external };
}

export interface ViewParts {
  status: StatusPart;
  /** Every device, assistants first, then the latest seen. */
  devices: DeviceEntry[];
  /** Activations, newest first. */
  activations: ApiActivation[];
  /** Calls, finished and open, newest first. */
  calls: ApiCall[];
  /** Who each device talks to (ended flows), and the new-endpoint notices; null with privacy off. */
  privacy: { devices: PrivacyDevice[]; notices: ApiNotice[] } | null;
  /** Network hygiene findings, the most severe first, and how many the bound left out. */
  findings: { findings: FindingRecord[]; dropped: number };
}

export type ViewPart = keyof ViewParts;
export const VIEW_PARTS: readonly ViewPart[] = ['status', 'devices', 'activations', 'calls', 'privacy', 'findings'];

/** What the API asks the run to do; each is saved (data directory) before it is answered. */
export type ViewCommand =
  | { kind: 'label'; id: string; label: Label }
  | { kind: 'wake-events'; events: WakeEvent[] }
  | { kind: 'presence'; away: boolean; source: string };

export type ViewCommandResult =
  | { kind: 'label'; activation: ApiActivation | null }
  | { kind: 'wake-events'; changed: ApiActivation[] }
  | { kind: 'presence'; presence: ApiPresence | null };

/**
 * A page of activations as GET /api/v1/activations (and a device's page, and one by id) asks for it:
 * filtered and paged where the activations live, so only the page crosses to the API's thread (copying
 * every kept activation per request grew both threads' heaps through a day's soak, bench/soak.mjs).
 */
export interface ActivationQuery {
  /** Activations starting at or after `sinceMs` and before `untilMs`, in whole milliseconds (±Infinity: open). */
  sinceMs: number;
  untilMs: number;
  /** Canonical MAC text, or null for every device. */
  device: string | null;
  verdict: string | null;
  /** Only the activation with this id, or null. */
  id: string | null;
  offset: number;
  limit: number;
}

/** The activations a query matched: how many in all, and the page asked for (newest first). */
export interface ActivationPage {
  total: number;
  activations: ApiActivation[];
}

/** A query matching every activation: `offset` and `limit` as given. */
export function activationQuery(fields: Partial<ActivationQuery> = {}): ActivationQuery {
  return { sinceMs: -Infinity, untilMs: Infinity, device: null, verdict: null, id: null, offset: 0, limit: Infinity, ...fields };
}

/** Filters `list` (newest first) by `q`; only the page is rendered. */
export function pageActivations(list: readonly Activation[], q: ActivationQuery): ActivationPage {
  const page: ApiActivation[] = [];
  let total = 0;
  for (const a of list) {
    // the API's `start` is the start's whole millisecond (isoTime), and `since`/`until` compare with it
    const startMs = Math.floor(a.startMs);
    if (!(startMs >= q.sinceMs && startMs < q.untilMs)) continue;
    if ((q.device !== null && a.device !== q.device) || (q.verdict !== null && a.verdict !== q.verdict) || (q.id !== null && a.id !== q.id)) continue;
    if (total >= q.offset && total < q.offset + q.limit) page.push(apiActivation(a));
    total++;
  }
  return { total, activations: page };
}

/**
 * A page of flows as GET /api/v1/flows asks for it: open flows (among the newest MAX_VIEW_FLOWS), then
 * ended ones, newest first, of one device or all. Before, every query made all of them (up to 10,000 open,
 * 10,000 ended and 16 x 500 of the assistants': 25-40 ms on the pipeline's thread, then copied to the
 * API's) and the API kept the page.
 */
export interface FlowQuery {
  /** Canonical MAC text, or null for every device. */
  device: string | null;
  limit: number;
}

/**
 * The flows `q` asks for: only those returned are made into records. The open ones are walked in the
 * table, newest first across TCP and UDP, without a copy of it (a copy of up to 65,536 flows per query
 * before, and every open UDP flow listed before the newest TCP one: an assistant's voice channel could fall
 * off a page of DNS lookups).
 */
export function pageFlows(collector: Pick<Runtime['collector'], 'forEachOpenFlow'>, activity: Runtime['activity'], q: FlowQuery): ApiFlow[] {
  const mac = q.device === null ? null : parseMac(q.device);
  const out: ApiFlow[] = [];
  let looked = 0;
  if (q.limit > 0) {
    collector.forEachOpenFlow((f) => {
      // a LAN flow is its peer's too (device-totals.ts)
      if (mac === null || f.deviceMac === mac || (f.bothLocal && servingPeer(f) === mac)) out.push(flowToApi(flowRecord(f), true));
      return out.length < q.limit && ++looked < MAX_VIEW_FLOWS;
    });
  }
  if (out.length < q.limit && activity) for (const f of activity.newestEndedFlows(mac, q.limit - out.length)) out.push(f);
  return out;
}

/** What the run says beyond the runtime: whether the capture runs, InfluxDB's reachability, the alert sinks. */
export interface ViewExtras {
  captureRunning(): boolean;
  influxReachable(): boolean | null;
  alerts(): Record<string, Record<string, number | boolean>>;
}

export interface ViewSource {
  part<K extends ViewPart>(name: K): ViewParts[K];
  activations(query: ActivationQuery): ActivationPage;
  flows(query: FlowQuery): ApiFlow[];
  /** One device (canonical MAC text) with its endpoints; null when the inventory does not hold it. */
  device(mac: string): DeviceDetail | null;
  /** Runs a command; throws what the runtime throws (NotSavedError when it cannot be saved). */
  command(command: ViewCommand): ViewCommandResult;
}

const apiActivation = (a: Parameters<typeof activationToReport>[0]): ApiActivation => ({ ...withLocal(activationToReport(a), a.local), open: !a.finished });

/** The parts of `runtime`'s run, made when asked. */
export function buildViewSource(runtime: Runtime, extras: ViewExtras): ViewSource {
  const { collector, activity, influx } = runtime;

  const presence = (): ApiPresence | null => {
    const p = runtime.presence();
    if (p === null) return null;
    return { away: p.state?.away ?? null, since: p.state ? isoTime(p.state.sinceMs) : null, source: p.state?.source ?? null, schedule: p.schedule, awayNow: p.awayNow };
  };

  const status = (): StatusPart => {
    const w = influx?.writer;
    const s = w?.stats;
    return {
      captureRunning: extras.captureRunning(),
      stats: structuredClone(collector.stats()),
      capture: collector.captureStats(),
      influx: w && s
        ? {
          reachable: extras.influxReachable(),
          pointsWritten: s.pointsWritten,
          pointsRejected: s.pointsRejected,
          writeErrors: s.writeErrors,
          queueDepth: s.queueDepth,
          spoolPoints: s.spool.points,
          spoolBytes: s.spool.bytes,
          pointsDropped: s.spool.droppedPoints,
          writeProblem: w.writeProblem(),
          spoolWriteError: s.spool.writeError,
          spoolWriteErrors: s.spool.writeErrors,
          spoolHeldPoints: s.spool.heldPoints,
          batchesQuarantined: s.spool.quarantinedBatches,
          pointsQuarantined: s.spool.quarantinedPoints,
        }
        : null,
      alerts: extras.alerts(),
      presence: presence(),
      byVerdict: Object.fromEntries(activity?.counts.byVerdict ?? []),
      activationsByDevice: Object.fromEntries(activity?.finishedByDevice ?? []),
      calls: collector.calls ? { calls: collector.calls.stats.calls, open: collector.calls.openCalls().length } : null,
      heap: threadHeap(),
    };
  };

  const NO_COUNTS = { bytesUp: 0, bytesDown: 0, packetsUp: 0, packetsDown: 0, flows: 0 };
  const lastSeenOf = (d: Device, openLastMs: number): string | null => {
    const ms = Math.max(d.lastSeenMs, openLastMs);
    return ms > 0 ? isoTime(ms) : null;
  };
  // lastSeen: the inventory's last sighting, or the latest packet of the device's open flows when later (a
  // long connection is seen only when it starts and ends)
  const apiDevice = (d: Device, t: typeof NO_COUNTS, openLastMs = 0): ApiDevice => ({
    mac: d.macText, name: d.name, vendor: d.vendor ?? d.ouiVendor, model: d.model, assistant: d.assistant,
    ips: [...d.ips], evidence: [...d.evidence],
    firstSeen: d.firstSeenMs > 0 ? isoTime(d.firstSeenMs) : null, lastSeen: lastSeenOf(d, openLastMs),
    bytesUp: t.bytesUp, bytesDown: t.bytesDown, packetsUp: t.packetsUp, packetsDown: t.packetsDown, flows: t.flows,
  });

  // every device's counts: the open flows are counted as they are, by device (before, each refresh made a
  // record of every open flow, with its addresses as text, and copied every device's endpoints: ~28 ms
  // per refresh on the pipeline's thread under a flood of new flows, every 3 s per open status page)
  const devices = (): DeviceEntry[] => {
    const all = collector.inventory?.all() ?? [];
    const open = new Map<number, DeviceTotals>();
    const openLast = new Map<number, number>();
    // a LAN flow counts for its peer too (device-totals.ts)
    const count = (mac: number, f: Flow, served: boolean): void => {
      let c = open.get(mac);
      if (c === undefined) open.set(mac, (c = new DeviceTotals()));
      c.addCounts(f, served);
      if (f.lastMs > (openLast.get(mac) ?? 0)) openLast.set(mac, f.lastMs);
    };
    collector.forEachOpenFlow((f) => {
      if (f.deviceMac >= 0) count(f.deviceMac, f, false);
      if (f.bothLocal) {
        const peer = servingPeer(f);
        if (peer >= 0) count(peer, f, true);
      }
      return true;
    });
    const entries = all.map((d): DeviceEntry => {
      const openLastMs = openLast.get(d.mac) ?? 0;
      return { device: apiDevice(d, activity?.deviceCounts(d.mac, open.get(d.mac)) ?? NO_COUNTS, openLastMs), lastSeenMs: Math.max(d.lastSeenMs, openLastMs) };
    });
    return entries.sort((a, b) => Number(b.device.assistant) - Number(a.device.assistant) || b.lastSeenMs - a.lastSeenMs);
  };

  const calls = (): ApiCall[] => {
    const finished = activity?.finishedCalls() ?? [];
    const open = collector.calls?.openCalls() ?? [];
    return [...finished, ...open].sort((a, b) => b.startMs - a.startMs).map((c) => ({ ...callToReport(c), open: !c.finished }));
  };

  /** One device with its endpoints: only its own open flows are made into records. */
  const device = (macText: string): DeviceDetail | null => {
    const mac = parseMac(macText);
    const d = collector.inventory?.describe(mac);
    if (d === undefined) return null;
    const open: FlowRecord[] = [];
    let openLastMs = 0;
    collector.forEachOpenFlow((f) => {
      if (f.deviceMac !== mac && !(f.bothLocal && servingPeer(f) === mac)) return true;
      open.push(flowRecord(f));
      if (f.lastMs > openLastMs) openLastMs = f.lastMs;
      return true;
    });
    const t = activity?.deviceTotals(mac, open) ?? { ...NO_COUNTS, endpoints: [] };
    const endpoints: Record<string, ApiEndpoint[]> = {};
    for (const e of t.endpoints) (endpoints[e.service] ??= []).push({ serverName: e.serverName, flows: e.flows, bytesUp: e.bytesUp, bytesDown: e.bytesDown });
    return { device: apiDevice(d, t, openLastMs), endpoints };
  };

  const parts: { [K in ViewPart]: () => ViewParts[K] } = {
    status,
    devices,
    activations: () => (activity?.listActivations() ?? []).map(apiActivation),
    calls,
    privacy: () => (runtime.privacy ? { devices: runtime.privacy.devices(), notices: runtime.privacy.notices() } : null),
    findings: () => ({ findings: collector.findings.list(), dropped: collector.findings.stats.findingsDropped }),
  };

  return {
    part: <K extends ViewPart>(name: K) => parts[name]() as ViewParts[K],
    activations: (query) => pageActivations(activity?.listActivations() ?? [], query),
    flows: (query) => pageFlows(collector, activity, query),
    device,
    command(command: ViewCommand): ViewCommandResult {
      switch (command.kind) {
        case 'label': {
          const a = runtime.label(command.id, command.label);
          return { kind: 'label', activation: a ? apiActivation(a) : null };
        }
        case 'wake-events':
          return { kind: 'wake-events', changed: runtime.addWakeEvents(command.events).map(apiActivation) };
        case 'presence':
          return { kind: 'presence', presence: runtime.setPresence(command.away, command.source) === null ? null : presence() };
      }
    },
  };
}
