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

class Cell {
  bytesUp = 0;
  bytesDown = 0;
  packetsUp = 0;
  packetsDown = 0;
  constructor(
    readonly mac: number,
    readonly service: string | null,
    readonly serverName: string | null,
    /** The flow's name the tag came from (a flow whose name changes needs another cell). */
    readonly rawName: string | null,
  ) {}
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

/** A device with its verdict up to date, for tags. */
export type DeviceLookup = (mac: number) => Device | undefined;

export class TrafficAggregator {
  private readonly cells = new Map<string, Cell>();
  private readonly names: ServerNames;
  /** Counts intervals: a flow's cached cell belongs to one. */
  private epoch = 0;
  /** Sums of everything taken, for the self-check against the report. */
  readonly totals = { bytes: 0, packets: 0 };

  constructor(options: TrafficOptions) {
    this.names = new ServerNames(options.topServerNames);
  }

  /** Takes the flow's growth since it was last taken; false when it had none (the walk can stop). */
  take(flow: Flow): boolean {
    const packetsUp = flow.packetsUp - flow.takenPacketsUp;
    const packetsDown = flow.packetsDown - flow.takenPacketsDown;
    if (packetsUp === 0 && packetsDown === 0) return false;
    const bytesUp = flow.bytesUp - flow.takenBytesUp;
    const bytesDown = flow.bytesDown - flow.takenBytesDown;
    flow.takenPacketsUp = flow.packetsUp;
    flow.takenPacketsDown = flow.packetsDown;
    flow.takenBytesUp = flow.bytesUp;
    flow.takenBytesDown = flow.bytesDown;
    const cell = this.cellOf(flow, bytesUp + bytesDown);
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
    return true;
  }

  /** A flow left the table: takes what is left of it. */
  end(flow: Flow): void {
    this.take(flow);
  }

  /** The cell of the open interval for the flow's device, service and server name (cached on the flow). */
  private cellOf(flow: Flow, bytes: number): Cell {
    const serverName = flow.serverName ?? flow.sni;
    const inCatalogue = flow.service !== null && flow.vendor !== null;
    if (serverName !== null && !inCatalogue) this.names.count(serverName, bytes);
    const cached = flow.sinkCell as Cell | null;
    if (cached !== null && flow.sinkEpoch === this.epoch && cached.service === flow.service && cached.rawName === serverName && cached.mac === flow.deviceMac) {
      return cached;
    }
    const nameTag = this.names.tag(serverName, inCatalogue);
    const mac = flow.deviceMac;
    const key = `${mac}|${flow.service ?? ''}|${nameTag ?? ''}|${serverName ?? ''}`;
    let cell = this.cells.get(key);
    if (cell === undefined) {
      cell = new Cell(mac, flow.service, nameTag, serverName);
      this.cells.set(key, cell);
    }
    flow.sinkCell = cell;
    flow.sinkEpoch = this.epoch;
    return cell;
  }

  /** True when something was taken since the last drain. */
  get pending(): boolean {
    return this.cells.size > 0;
  }

  /** The interval's points (time = its start), and a fresh interval. Cells that share tags are summed. */
  drain(timeMs: number, device: DeviceLookup, emit: (line: string) => void): number {
    const points = new Map<string, Cell>();
    for (const cell of this.cells.values()) {
      // cells differ by raw name too (for the cache); names that share the tag "other" are one point
      const key = `${cell.mac}|${cell.service ?? ''}|${cell.serverName ?? ''}`;
      const sum = points.get(key);
      if (sum === undefined) {
        points.set(key, cell);
        continue;
      }
      sum.bytesUp += cell.bytesUp;
      sum.bytesDown += cell.bytesDown;
      sum.packetsUp += cell.packetsUp;
      sum.packetsDown += cell.packetsDown;
    }
    let n = 0;
    for (const cell of points.values()) {
      const d = cell.mac >= 0 ? device(cell.mac) : undefined;
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
    this.epoch++;
    return n;
  }
}
