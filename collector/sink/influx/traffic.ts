/**
 * The `traffic` measurement: bytes and packets per device, service and server name, per interval.
 * The pipeline pushes each flow's growth exactly once (collector/flow/deltas.ts: at each interval's end
 * for the flows active in it, and what is left when a flow ends); the sums over all points therefore
 * equal the report's flow totals, whatever the interval and however the flows end.
 */
import type { FlowDelta } from '../../flow/deltas.js';
import { formatMac } from '../../decode/packet.js';
import type { Device } from '../../identify/device.js';
import { seriesText } from './line-protocol.js';

/** Cumulative bytes a server name outside the catalogue needs before it may get its own tag value. */
export const SERVER_NAME_MIN_BYTES = 1 << 20;
/** Catalogued server names with their own tag value, at most (then "other"). */
const MAX_CATALOGUED_NAMES = 1000;
/** Candidate names whose bytes are counted while they wait for a slot. */
const MAX_CANDIDATES = 10_000;

/**
 * One `traffic` series (device, service, server_name tag) and what it took in the open interval. Kept
 * across intervals, with its tag text, so a busy series costs no strings per interval.
 */
class Series {
  live = true;
  bytesUp = 0;
  bytesDown = 0;
  packetsUp = 0;
  packetsDown = 0;
  /** The interval it last took something in (it is in the dirty list then). */
  epoch = -1;
  /** The line's series part, and the device names it was made with (a renamed device gets a new one). */
  text: string | null = null;
  textName: string | null = null;
  textVendor: string | null = null;
  textAssistant: boolean | null = null;
  constructor(
    readonly mac: number,
    readonly service: string | null,
    readonly serverName: string | null,
  ) {}
}

/**
 * A device, service and raw server name, and the series they map to. Many raw names map to the series
 * of the tag "other"; the mapping holds while no name was admitted since.
 */
class Cell {
  live = true;
  /** The interval a delta last went through it. */
  epoch = 0;
  constructor(
    readonly mac: number,
    readonly service: string | null,
    readonly rawName: string | null,
    public namesVersion: number,
    public series: Series,
  ) {}
}

/** Bounds the server_name tag: catalogue names, then up to `top` others, the busiest first; else "other". */
export class ServerNames {
  private readonly catalogued = new Set<string>();
  private readonly admitted = new Set<string>();
  private readonly candidates = new Map<string, number>();
  /** Grows when a name is admitted: names that were "other" may have their own tag value now. */
  version = 0;

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
      this.version++;
      this.candidates.delete(name);
      if (this.admitted.size >= this.top) this.candidates.clear();
      return;
    }
    if (this.candidates.has(name) || this.candidates.size < MAX_CANDIDATES) this.candidates.set(name, total);
  }
}

export interface TrafficOptions {
  topServerNames: number;
  /** The inventory's device by MAC (verdict up to date): decides which devices get a tag value. */
  device?: DeviceLookup;
  /** The site tag of every series (config.site); unset in unit tests only. */
  site?: string;
}

/** A device with its verdict up to date, for tags. */
export type DeviceLookup = (mac: number) => Device | undefined;

/** The `device` tag value of devices without their own: their traffic is summed under it. */
export const OTHER_DEVICE = 'other';
/** The series key of "other" (MACs are >= 0, no MAC is -1). */
const OTHER_MAC = -2;
/** Devices that get their own tag value on sight, first come first served. */
export const FREE_DEVICE_TAGS = 256;
/** Devices with their own tag value, at most (assistants and configured devices included). */
export const MAX_DEVICE_TAGS = 1024;
/** Bytes a device past the free ones needs before it gets its own tag value. */
export const DEVICE_MIN_BYTES = 1 << 20;

/**
 * Bounds the `device` tag (issue 14): any LAN host can send from as many forged MACs as it likes, and
 * every tag value is a series InfluxDB keeps until its shard expires. Assistants and configured devices
 * (the owner's word) get their own value, as do the first FREE_DEVICE_TAGS devices seen; later ones
 * once they moved DEVICE_MIN_BYTES (a phone does in minutes; a forged announcement never does); all at
 * most MAX_DEVICE_TAGS. The rest is counted under "other". Admission is for the process's life.
 */
export class DeviceTags {
  private readonly admitted = new Set<number>();
  private readonly candidates = new Map<number, number>();
  /** Grows when a device is admitted: flows cached under "other" look again. */
  version = 0;
  /** Devices refused a tag value of their own (a self-metric). */
  refused = 0;

  constructor(private readonly lookup: DeviceLookup) {}

  get size(): number {
    return this.admitted.size;
  }

  has(mac: number): boolean {
    return this.admitted.has(mac);
  }

  /** True when the device has (or now gets) its own tag value. */
  admit(mac: number, d: Device | undefined = this.lookup(mac)): boolean {
    if (this.admitted.has(mac)) return true;
    const owned = d !== undefined && (d.assistant || d.configName !== null || d.configAssistant !== null);
    if (this.admitted.size < MAX_DEVICE_TAGS && (owned || this.admitted.size < FREE_DEVICE_TAGS)) {
      this.add(mac);
      return true;
    }
    return false;
  }

  /** Counts the bytes of a device without a tag value; admits it past DEVICE_MIN_BYTES. */
  count(mac: number, bytes: number): void {
    if (this.admitted.size >= MAX_DEVICE_TAGS) return;
    const total = (this.candidates.get(mac) ?? 0) + bytes;
    if (total >= DEVICE_MIN_BYTES) {
      this.candidates.delete(mac);
      this.add(mac);
      return;
    }
    if (this.candidates.has(mac) || this.candidates.size < MAX_CANDIDATES) this.candidates.set(mac, total);
  }

  private add(mac: number): void {
    this.admitted.add(mac);
    this.candidates.delete(mac);
    this.version++;
  }
}

/**
 * Values by device MAC, service and name, in nested maps: no key string is built per lookup (a MAC
 * printed as a number and a concatenated key would cost more than the rest of a flow's accounting).
 */
class ByDevice<V> {
  private readonly byMac = new Map<number, Map<string, Map<string, V>>>();
  size = 0;

  get(mac: number, service: string | null, name: string | null): V | undefined {
    return this.byMac.get(mac)?.get(service ?? '')?.get(name ?? '');
  }

  set(mac: number, service: string | null, name: string | null, value: V): void {
    let byService = this.byMac.get(mac);
    if (byService === undefined) this.byMac.set(mac, (byService = new Map()));
    let byName = byService.get(service ?? '');
    if (byName === undefined) byService.set(service ?? '', (byName = new Map()));
    if (!byName.has(name ?? '')) this.size++;
    byName.set(name ?? '', value);
  }

  /** Removes the values `keep` says no to. */
  prune(keep: (value: V) => boolean): void {
    for (const [mac, byService] of this.byMac) {
      for (const [service, byName] of byService) {
        for (const [name, value] of byName) {
          if (keep(value)) continue;
          byName.delete(name);
          this.size--;
        }
        if (byName.size === 0) byService.delete(service);
      }
      if (byService.size === 0) this.byMac.delete(mac);
    }
  }
}

/** Intervals a series or cell may stay idle before it is forgotten (memory stays bounded). */
const IDLE_INTERVALS = 64;

export class TrafficAggregator {
  private readonly series = new ByDevice<Series>();
  private readonly cells = new ByDevice<Cell>();
  /** Series that took something in the open interval. */
  private dirty: Series[] = [];
  private readonly names: ServerNames;
  /** Which devices have a `device` tag value of their own. */
  readonly devices: DeviceTags;
  /** Counts intervals. */
  private epoch = 0;
  /** Sums of everything taken, for the self-check against the report. */
  readonly totals = { bytes: 0, packets: 0 };

  private readonly site: string | null;

  constructor(options: TrafficOptions) {
    this.names = new ServerNames(options.topServerNames);
    this.devices = new DeviceTags(options.device ?? (() => undefined));
    this.site = options.site ?? null;
  }

  /** The series key of a flow's device: its MAC when it has its own tag value, else "other". */
  private deviceKeyOf(mac: number, bytes: number): number {
    if (mac < 0 || this.devices.admit(mac)) return mac;
    this.devices.count(mac, bytes);
    // counting may have admitted it
    return this.devices.has(mac) ? mac : OTHER_MAC;
  }

  /**
   * Adds a flow's growth (pushed by the pipeline: flow/deltas.ts) to its series in the open interval, and
   * a LAN flow's to its peer's too (without the server name: that is the peer itself, or nothing).
   */
  take(delta: FlowDelta): void {
    const { packetsUp, packetsDown, bytesUp, bytesDown } = delta;
    this.add(this.seriesOf(delta.deviceMac, delta.service, delta.name, delta.inCatalogue, bytesUp + bytesDown), delta.deviceIsClient, packetsUp, packetsDown, bytesUp, bytesDown);
    // the totals are the flows' (each byte once), for the self-check against the report
    this.totals.bytes += bytesUp + bytesDown;
    this.totals.packets += packetsUp + packetsDown;
    if (delta.peerMac >= 0) {
      const series = this.seriesOf(delta.peerMac, delta.service, null, false, delta.peerBytesUp + delta.peerBytesDown);
      this.add(series, !delta.deviceIsClient, delta.peerPacketsUp, delta.peerPacketsDown, delta.peerBytesUp, delta.peerBytesDown);
    }
  }

  /** Counters in the flow's terms to a series of the side `client` says. */
  private add(series: Series, client: boolean, packetsUp: number, packetsDown: number, bytesUp: number, bytesDown: number): void {
    if (series.epoch !== this.epoch) {
      series.epoch = this.epoch;
      this.dirty.push(series);
    }
    // up = what the device sent: the client's bytes when the device is the client
    if (client) {
      series.bytesUp += bytesUp;
      series.bytesDown += bytesDown;
      series.packetsUp += packetsUp;
      series.packetsDown += packetsDown;
    } else {
      series.bytesUp += bytesDown;
      series.bytesDown += bytesUp;
      series.packetsUp += packetsDown;
      series.packetsDown += packetsUp;
    }
  }

  /** The series for a device, service and server name. */
  private seriesOf(mac: number, service: string | null, serverName: string | null, inCatalogue: boolean, bytes: number): Series {
    if (serverName !== null && !inCatalogue) this.names.count(serverName, bytes);
    // a device under "other" counts its bytes (and may be admitted) every time it takes
    const other = mac >= 0 && !this.devices.has(mac) && this.deviceKeyOf(mac, bytes) === OTHER_MAC;
    // both versions only grow, so their sum changes whenever either does
    const version = this.names.version + this.devices.version;
    let cell = this.cells.get(mac, service, serverName);
    if (cell === undefined || cell.namesVersion !== version) {
      const nameTag = this.names.tag(serverName, inCatalogue);
      const key = other ? OTHER_MAC : mac;
      let series = this.series.get(key, service, nameTag);
      if (series === undefined) {
        series = new Series(key, service, nameTag);
        this.series.set(key, service, nameTag, series);
      }
      if (cell === undefined) {
        cell = new Cell(mac, service, serverName, version, series);
        this.cells.set(mac, service, serverName, cell);
      } else {
        cell.series = series;
        cell.namesVersion = version;
      }
    }
    cell.epoch = this.epoch;
    return cell.series;
  }

  /** Series and flow cells kept (bounded: idle ones are forgotten). */
  get kept(): { series: number; cells: number } {
    return { series: this.series.size, cells: this.cells.size };
  }

  /** True when something was taken since the last drain. */
  get pending(): boolean {
    return this.dirty.length > 0;
  }

  /** The interval's points (time = its start), and a fresh interval. */
  drain(timeMs: number, device: DeviceLookup, emit: (line: string) => void): number {
    const time = String(Math.floor(timeMs));
    for (const s of this.dirty) {
      emit(`${this.seriesTextOf(s, device)} bytes_up=${s.bytesUp}i,bytes_down=${s.bytesDown}i,packets_up=${s.packetsUp}i,packets_down=${s.packetsDown}i ${time}`);
      s.bytesUp = 0;
      s.bytesDown = 0;
      s.packetsUp = 0;
      s.packetsDown = 0;
    }
    const n = this.dirty.length;
    this.dirty = [];
    this.epoch++;
    if (this.epoch % IDLE_INTERVALS === 0) this.forgetIdle();
    return n;
  }

  /** The series' tags as line text, made again only when the device's names changed. */
  private seriesTextOf(s: Series, device: DeviceLookup): string {
    if (s.mac === OTHER_MAC) {
      s.text ??= seriesText('traffic', { site: this.site, device: OTHER_DEVICE, service: s.service, server_name: s.serverName });
      return s.text;
    }
    const d = s.mac >= 0 ? device(s.mac) : undefined;
    const name = d?.name ?? null;
    const vendor = d?.vendor ?? d?.ouiVendor ?? null;
    const assistant = d ? d.assistant : null;
    if (s.text === null || s.textName !== name || s.textVendor !== vendor || s.textAssistant !== assistant) {
      s.text = seriesText('traffic', {
        site: this.site,
        device: s.mac >= 0 ? (d?.macText ?? formatMac(s.mac)) : 'none',
        device_name: name,
        vendor,
        assistant: assistant === null ? null : String(assistant),
        service: s.service,
        server_name: s.serverName,
      });
      s.textName = name;
      s.textVendor = vendor;
      s.textAssistant = assistant;
    }
    return s.text;
  }

  /** Forgets series and cells idle for IDLE_INTERVALS intervals (a flow holding one makes a new one). */
  private forgetIdle(): void {
    const oldest = this.epoch - IDLE_INTERVALS;
    this.series.prune((series) => (series.live = series.epoch >= oldest));
    this.cells.prune((cell) => (cell.live = cell.epoch >= oldest && cell.series.live));
  }
}
