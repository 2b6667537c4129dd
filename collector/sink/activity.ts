/**
 * What the API reads about the run so far: activations (the newest, bounded), the flows that ended
 * lately (bounded ring), and per device its traffic and endpoints by service (bounded per device).
 * Flows still open are read from the collector when asked. Counts and names only, never payloads.
 */
import { formatAddr, formatMac } from '../decode/packet.js';
import type { Call } from '../detect/calls.js';
import type { Activation } from '../detect/detector.js';
import type { Flow } from '../flow/flow.js';
import { activationToReport, isoTime, type ReportActivation, type ReportFlow } from './report.js';
import { NewestRing } from './ring.js';

/** A flow as the API shows it: the report's form (without where the name came from) and whether it is still open. */
export type ApiFlow = Omit<ReportFlow, 'nameSource'> & { open: boolean };

/** One endpoint of a device: bytes to and from one server name (or address) of one service. */
export interface ApiEndpoint {
  service: string;
  serverName: string;
  flows: number;
  bytesUp: number;
  bytesDown: number;
}

class DeviceTotals {
  bytesUp = 0;
  bytesDown = 0;
  packetsUp = 0;
  packetsDown = 0;
  flows = 0;
  /** service -> server name -> totals, bounded. */
  readonly endpoints = new Map<string, ApiEndpoint>();
}

const MAX_ENDPOINTS_PER_DEVICE = 256;

/** The report-like form of a live or finished flow. */
export function flowToApi(f: Flow, open: boolean): ApiFlow {
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
    device: f.deviceMac >= 0 ? formatMac(f.deviceMac) : null,
    sni: f.sni,
    serverName: f.serverName,
    service: f.service,
    vendor: f.vendor,
    open,
  };
}

export interface ActivityOptions {
  maxActivations: number;
  maxEndedFlows: number;
  /** Most devices whose totals are kept (as the inventory's bound); flows of others are not totalled. */
  maxDevices: number;
}

export class ActivityStore {
  private readonly activations = new Map<string, Activation>();
  private sorted: Activation[] | null = null;
  private readonly ended: NewestRing<ApiFlow>;
  private readonly devices = new Map<number, DeviceTotals>();
  /** Finished calls, oldest first (bounded like the activations). */
  private readonly calls: NewestRing<Call>;
  /** Counters for /metrics. */
  readonly counts = { activationsStarted: 0, activationsFinished: 0, byVerdict: new Map<string, number>() };

  constructor(private readonly options: ActivityOptions) {
    this.ended = new NewestRing<ApiFlow>(options.maxEndedFlows);
    this.calls = new NewestRing<Call>(options.maxActivations);
  }

  /** A call ended (calls in progress are read from the collector). */
  callFinished(c: Call): void {
    this.calls.push(c);
  }

  /** Finished calls, oldest first. */
  finishedCalls(): Call[] {
    return this.calls.toArray();
  }

  /** An activation started (it shows while open, with the end so far). */
  started(a: Activation): void {
    this.counts.activationsStarted++;
    this.keep(a);
  }

  finished(a: Activation): void {
    this.counts.activationsFinished++;
    this.counts.byVerdict.set(a.verdict, (this.counts.byVerdict.get(a.verdict) ?? 0) + 1);
    this.keep(a);
  }

  /** A finished activation's verdict changed (wake event, label, arbitration): recount. */
  verdictChanged(a: Activation, before: string): void {
    this.sorted = null;
    this.counts.byVerdict.set(before, Math.max(0, (this.counts.byVerdict.get(before) ?? 0) - 1));
    this.counts.byVerdict.set(a.verdict, (this.counts.byVerdict.get(a.verdict) ?? 0) + 1);
  }

  private keep(a: Activation): void {
    this.sorted = null;
    this.activations.delete(a.id);
    this.activations.set(a.id, a);
    if (this.activations.size > this.options.maxActivations) {
      const oldest = this.activations.keys().next().value as string;
      this.activations.delete(oldest);
    }
  }

  /** A flow ended: its totals go to its device, its record to the ring of recent flows. */
  flowEnded(f: Flow): void {
    if (this.options.maxEndedFlows > 0) this.ended.push(flowToApi(f, false));
    if (f.deviceMac < 0) return;
    let d = this.devices.get(f.deviceMac);
    if (!d) {
      if (this.devices.size >= this.options.maxDevices) return;
      d = new DeviceTotals();
      this.devices.set(f.deviceMac, d);
    }
    addFlow(d, f);
  }

  activation(id: string): ReportActivation | null {
    const a = this.activations.get(id);
    return a ? activationToReport(a) : null;
  }

  /** Activations, newest first (sorted once per change, not per request). */
  listActivations(): readonly Activation[] {
    this.sorted ??= [...this.activations.values()].sort((x, y) => y.startMs - x.startMs || (x.id < y.id ? -1 : 1));
    return this.sorted;
  }

  /** Ended flows, oldest first. */
  endedFlows(): ApiFlow[] {
    return this.ended.toArray();
  }

  /** A device's totals and endpoints over ended flows plus `open` ones. */
  deviceTotals(mac: number, open: readonly Flow[]): { bytesUp: number; bytesDown: number; packetsUp: number; packetsDown: number; flows: number; endpoints: ApiEndpoint[] } {
    const d = new DeviceTotals();
    const ended = this.devices.get(mac);
    if (ended) {
      Object.assign(d, { bytesUp: ended.bytesUp, bytesDown: ended.bytesDown, packetsUp: ended.packetsUp, packetsDown: ended.packetsDown, flows: ended.flows });
      for (const [k, e] of ended.endpoints) d.endpoints.set(k, { ...e });
    }
    for (const f of open) if (f.deviceMac === mac) addFlow(d, f);
    const endpoints = [...d.endpoints.values()].sort((a, b) => b.bytesUp + b.bytesDown - (a.bytesUp + a.bytesDown));
    return { bytesUp: d.bytesUp, bytesDown: d.bytesDown, packetsUp: d.packetsUp, packetsDown: d.packetsDown, flows: d.flows, endpoints };
  }
}

function addFlow(d: DeviceTotals, f: Flow): void {
  const up = f.deviceIsClient ? f.bytesUp : f.bytesDown;
  const down = f.bytesUp + f.bytesDown - up;
  const packetsUp = f.deviceIsClient ? f.packetsUp : f.packetsDown;
  d.bytesUp += up;
  d.bytesDown += down;
  d.packetsUp += packetsUp;
  d.packetsDown += f.packetsUp + f.packetsDown - packetsUp;
  d.flows++;
  const service = f.service ?? 'unknown';
  const name = f.serverName ?? f.sni ?? formatAddr(f.ipVersion, f.deviceIsClient ? f.serverWords() : f.clientWords());
  const key = `${service}|${name}`;
  let e = d.endpoints.get(key);
  if (!e) {
    if (d.endpoints.size >= MAX_ENDPOINTS_PER_DEVICE) {
      e = d.endpoints.get('other|other');
      if (!e) {
        e = { service: 'other', serverName: 'other', flows: 0, bytesUp: 0, bytesDown: 0 };
        d.endpoints.set('other|other', e);
      }
    } else {
      e = { service, serverName: name, flows: 0, bytesUp: 0, bytesDown: 0 };
      d.endpoints.set(key, e);
    }
  }
  e.flows++;
  e.bytesUp += up;
  e.bytesDown += down;
}
