/**
 * Per device, the traffic of every flow that ended: bytes and packets each way, flows, the addresses it
 * used (in the order flows first showed them) and, when the API wants them, its endpoints by service.
 * A LAN flow counts for both its devices: its own (the client, as a rule) and the peer that answered
 * from its MAC (FlowRecord.peerMac), as the side it was on (so a speaker that only serves its group has
 * what it sent), as InfluxDB's `traffic` does: a device's totals are what its MAC sent and received.
 * One store per run, fed by flow ends; the report and the API read it, adding the flows still open to
 * a copy when they want a snapshot. Bounded: `maxDevices` devices, `MAX_IPS_PER_DEVICE` addresses and
 * `MAX_ENDPOINTS_PER_DEVICE` endpoints each (the rest under "other").
 */
import { servedView, type FlowRecord } from '../flow/record.js';

/** Most addresses remembered per device (IPv6 privacy addresses change daily). */
const MAX_IPS_PER_DEVICE = 64;
/** Most endpoints per device; later ones are summed under service and name "other". */
const MAX_ENDPOINTS_PER_DEVICE = 256;

/** One endpoint of a device: bytes to and from one server name (or address) of one service. */
export interface Endpoint {
  service: string;
  serverName: string;
  flows: number;
  bytesUp: number;
  bytesDown: number;
}

/** What the counts read of a flow: a Flow has these too, so open flows are counted without a record. */
export type FlowCounts = Pick<FlowRecord, 'bytesUp' | 'bytesDown' | 'packetsUp' | 'packetsDown' | 'deviceIsClient'>;

/** A device's totals. `bytesUp` and `packetsUp` are what the device sent. */
export class DeviceTotals {
  bytesUp = 0;
  bytesDown = 0;
  packetsUp = 0;
  packetsDown = 0;
  flows = 0;
  /** address -> [firstMs, id] of the earliest flow that had it. */
  readonly ips = new Map<string, [number, number]>();
  /** `service|name` -> endpoint (only when the store keeps endpoints). */
  readonly endpoints = new Map<string, Endpoint>();

  /**
   * A flow's bytes, packets and itself to the counts (not its address or endpoint); returns the bytes it
   * sent. `served`: counted for the flow's peer, the other side of it.
   */
  addCounts(f: FlowCounts, served = false): number {
    const ownSide = f.deviceIsClient !== served;
    const up = ownSide ? f.bytesUp : f.bytesDown;
    const packetsUp = ownSide ? f.packetsUp : f.packetsDown;
    this.bytesUp += up;
    this.bytesDown += f.bytesUp + f.bytesDown - up;
    this.packetsUp += packetsUp;
    this.packetsDown += f.packetsUp + f.packetsDown - packetsUp;
    this.flows++;
    return up;
  }

  add(f: FlowRecord, withEndpoints: boolean): void {
    const up = this.addCounts(f);
    const down = f.bytesUp + f.bytesDown - up;
    const ip = f.deviceIsClient ? f.client : f.server;
    // 0.0.0.0 and :: (DHCP before an address) are no address of the device
    const seen = this.ips.get(ip);
    if (ip !== '0.0.0.0' && ip !== '::' && (seen === undefined ? this.ips.size < MAX_IPS_PER_DEVICE : f.firstMs < seen[0] || (f.firstMs === seen[0] && f.id < seen[1]))) {
      this.ips.set(ip, [f.firstMs, f.id]);
    }
    if (withEndpoints) this.addEndpoint(f, up, down);
  }

  private addEndpoint(f: FlowRecord, up: number, down: number): void {
    const service = f.service ?? 'unknown';
    const name = f.serverName ?? f.sni ?? (f.deviceIsClient ? f.server : f.client);
    const key = `${service}|${name}`;
    let e = this.endpoints.get(key);
    if (e === undefined) {
      if (this.endpoints.size >= MAX_ENDPOINTS_PER_DEVICE) {
        e = this.endpoints.get('other|other');
        if (e === undefined) {
          e = { service: 'other', serverName: 'other', flows: 0, bytesUp: 0, bytesDown: 0 };
          this.endpoints.set('other|other', e);
        }
      } else {
        e = { service, serverName: name, flows: 0, bytesUp: 0, bytesDown: 0 };
        this.endpoints.set(key, e);
      }
    }
    e.flows++;
    e.bytesUp += up;
    e.bytesDown += down;
  }

  copy(): DeviceTotals {
    const c = new DeviceTotals();
    c.bytesUp = this.bytesUp;
    c.bytesDown = this.bytesDown;
    c.packetsUp = this.packetsUp;
    c.packetsDown = this.packetsDown;
    c.flows = this.flows;
    for (const [ip, first] of this.ips) c.ips.set(ip, first);
    for (const [k, e] of this.endpoints) c.endpoints.set(k, { ...e });
    return c;
  }

  /** The addresses in the order of the flows that first had them. */
  orderedIps(): string[] {
    return [...this.ips].sort(([, a], [, b]) => a[0] - b[0] || a[1] - b[1]).map(([ip]) => ip);
  }

  /** The endpoints, busiest first. */
  sortedEndpoints(): Endpoint[] {
    return [...this.endpoints.values()].sort((a, b) => b.bytesUp + b.bytesDown - (a.bytesUp + a.bytesDown));
  }
}

export interface DeviceTotalsOptions {
  /** Most devices kept (as the inventory's bound); flows of others are counted as dropped. */
  maxDevices: number;
  /** Keep each device's endpoints by service (the API shows them; a replay's report does not). */
  endpoints: boolean;
}

export class DeviceTotalsStore {
  private readonly devices = new Map<number, DeviceTotals>();
  /** Flows whose device found no room. */
  dropped = 0;

  constructor(private readonly options: DeviceTotalsOptions) {}

  /** A flow ended: its traffic goes to its device. */
  add(f: FlowRecord): void {
    add(this.devices, f, this.options, this);
  }

  get(mac: number): DeviceTotals | undefined {
    return this.devices.get(mac);
  }

  /** Every device's totals, plus those of `open` flows when given (a snapshot: the store stays as it is). */
  snapshot(open: readonly FlowRecord[] = []): ReadonlyMap<number, DeviceTotals> {
    if (open.length === 0) return this.devices;
    const copy = new Map([...this.devices].map(([mac, d]) => [mac, d.copy()]));
    const counter = { dropped: 0 };
    for (const f of open) add(copy, f, this.options, counter);
    return copy;
  }

  /** One device's totals plus those of its `open` flows. */
  device(mac: number, open: readonly FlowRecord[] = []): DeviceTotals {
    const d = this.devices.get(mac)?.copy() ?? new DeviceTotals();
    for (const f of open) {
      if (f.deviceMac === mac) d.add(f, this.options.endpoints);
      else if (f.peerMac === mac) d.add(servedView(f), this.options.endpoints);
    }
    return d;
  }
}

/** A flow to its device, and a LAN flow to its peer too. */
function add(into: Map<number, DeviceTotals>, f: FlowRecord, options: DeviceTotalsOptions, counter: { dropped: number }): void {
  addTo(into, f, options, counter);
  if (f.peerMac >= 0) addTo(into, servedView(f), options, counter);
}

function addTo(into: Map<number, DeviceTotals>, f: FlowRecord, options: DeviceTotalsOptions, counter: { dropped: number }): void {
  if (f.deviceMac < 0) return;
  let d = into.get(f.deviceMac);
  if (d === undefined) {
    if (into.size >= options.maxDevices) {
      counter.dropped++;
      return;
    }
    d = new DeviceTotals();
    into.set(f.deviceMac, d);
  }
  d.add(f, options.endpoints);
}
