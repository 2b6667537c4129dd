/**
 * The `traffic` measurement: bytes and packets per device, service and server name, per interval.
 * Every flow's counters are taken exactly once: at each interval's end the flows that had packets since
 * the last one (a suffix of the flow table's activity lists) give their growth since they were last
 * taken, and a flow that ends gives what it has left. The sums over all points therefore equal the
 * report's flow totals, whatever the interval and however the flows end.
 */
import type { Flow } from '../../flow/flow.js';
import { formatMac } from '../../decode/packet.js';
import type { Device } from '../../identify/device.js';
import { int, pointLine } from './line-protocol.js';

/** Cumulative bytes a server name outside the catalogue needs before it may get its own tag value. */
export const SERVER_NAME_MIN_BYTES = 1 << 20;
/** Catalogued server names with their own tag value, at most (then "other"). */
const MAX_CATALOGUED_NAMES = 1000;
/** Candidate names whose bytes are counted while they wait for a slot. */
const MAX_CANDIDATES = 10_000;

/** What was taken of a flow so far. Kept beside the flow (a WeakMap would cost a lookup per visit). */
interface Taken {
  packetsUp: number;
  packetsDown: number;
  bytesUp: number;
  bytesDown: number;
}

class Cell {
  bytesUp = 0;
  bytesDown = 0;
  packetsUp = 0;
  packetsDown = 0;
  constructor(readonly mac: number, readonly service: string | null, readonly serverName: string | null) {}
}

/** Bounds the server_name tag: catalogue names, then up to `top` others, the busiest first; else "other". */
export class ServerNames {
  private readonly catalogued = new Set<string>();
  private readonly admitted = new Set<string>();
  private readonly candidates = new Map<string, number>();

  constructor(private readonly top: number) {}

  /** The tag value for a flow's server name. */
  tag(name: string | null, inCatalogue: boolean): string | null {
    if (name === null) return null;
    if (inCatalogue) {
      if (this.catalogued.has(name)) return name;
      if (this.catalogued.size < MAX_CATALOGUED_NAMES) {
        this.catalogued.add(name);
        return name;
      }
      return 'other';
    }
    return this.admitted.has(name) ? name : 'other';
  }

  /** Counts bytes of a name outside the catalogue; admits it once it is among the busiest. */
  count(name: string, bytes: number): void {
    if (this.admitted.has(name) || this.admitted.size >= this.top) return;
    const total = (this.candidates.get(name) ?? 0) + bytes;
    if (total >= SERVER_NAME_MIN_BYTES) {
      this.admitted.add(name);
      this.candidates.delete(name);
      if (this.admitted.size >= this.top) this.candidates.clear();
      return;
    }
    if (this.candidates.has(name) || this.candidates.size < MAX_CANDIDATES) this.candidates.set(name, total);
  }
}

export interface TrafficOptions {
  topServerNames: number;
}

/** Device facts for tags, refreshed once per interval. */
export type DeviceLookup = () => ReadonlyMap<number, Device>;

export class TrafficAggregator {
  /** Flows taken so far (by flow id: a flow's identity for as long as it is in the table). */
  private readonly taken = new Map<number, Taken>();
  private readonly cells = new Map<string, Cell>();
  private readonly names: ServerNames;
  /** Sums of everything taken, for the self-check against the report. */
  readonly totals = { bytes: 0, packets: 0 };

  constructor(options: TrafficOptions) {
    this.names = new ServerNames(options.topServerNames);
  }

  /** Takes the flow's growth since it was last taken; false when it had none (the walk can stop). */
  take(flow: Flow): boolean {
    let t = this.taken.get(flow.id);
    if (t === undefined) {
      t = { packetsUp: 0, packetsDown: 0, bytesUp: 0, bytesDown: 0 };
      this.taken.set(flow.id, t);
    } else if (t.packetsUp === flow.packetsUp && t.packetsDown === flow.packetsDown) {
      return false;
    }
    this.add(flow, flow.bytesUp - t.bytesUp, flow.bytesDown - t.bytesDown, flow.packetsUp - t.packetsUp, flow.packetsDown - t.packetsDown);
    t.packetsUp = flow.packetsUp;
    t.packetsDown = flow.packetsDown;
    t.bytesUp = flow.bytesUp;
    t.bytesDown = flow.bytesDown;
    return true;
  }

  /** A flow left the table: takes what is left of it and forgets it. */
  end(flow: Flow): void {
    this.take(flow);
    this.taken.delete(flow.id);
  }

  private add(flow: Flow, bytesUp: number, bytesDown: number, packetsUp: number, packetsDown: number): void {
    const serverName = flow.serverName ?? flow.sni;
    const inCatalogue = flow.service !== null && flow.vendor !== null;
    if (serverName !== null && !inCatalogue) this.names.count(serverName, bytesUp + bytesDown);
    const nameTag = this.names.tag(serverName, inCatalogue);
    const mac = flow.deviceMac;
    const key = `${mac}|${flow.service ?? ''}|${nameTag ?? ''}`;
    let cell = this.cells.get(key);
    if (cell === undefined) {
      cell = new Cell(mac, flow.service, nameTag);
      this.cells.set(key, cell);
    }
    // up = what the device sent: the client's bytes when the device is the client
    if (flow.deviceIsClient) {
      cell.bytesUp += bytesUp;
      cell.bytesDown += bytesDown;
      cell.packetsUp += packetsUp;
      cell.packetsDown += packetsDown;
    } else {
      cell.bytesUp += bytesDown;
      cell.bytesDown += bytesUp;
      cell.packetsUp += packetsDown;
      cell.packetsDown += packetsUp;
    }
    this.totals.bytes += bytesUp + bytesDown;
    this.totals.packets += packetsUp + packetsDown;
  }

  /** True when something was taken since the last drain. */
  get pending(): boolean {
    return this.cells.size > 0;
  }

  /** The interval's points (time = its start), and a fresh interval. */
  drain(timeMs: number, devices: ReadonlyMap<number, Device>, emit: (line: string) => void): number {
    let n = 0;
    for (const cell of this.cells.values()) {
      const d = cell.mac >= 0 ? devices.get(cell.mac) : undefined;
      const line = pointLine(
        'traffic',
        {
          device: cell.mac >= 0 ? (d?.macText ?? formatMac(cell.mac)) : 'none',
          device_name: d?.name ?? null,
          vendor: d?.vendor ?? d?.ouiVendor ?? null,
          assistant: d ? String(d.assistant) : null,
          service: cell.service,
          server_name: cell.serverName,
        },
        { bytes_up: int(cell.bytesUp), bytes_down: int(cell.bytesDown), packets_up: int(cell.packetsUp), packets_down: int(cell.packetsDown) },
        timeMs,
      );
      if (line !== null) {
        emit(line);
        n++;
      }
    }
    this.cells.clear();
    return n;
  }
}
