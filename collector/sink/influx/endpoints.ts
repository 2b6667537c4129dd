/**
 * The `endpoint` measurement: per device, organisation, service class and party, the bytes and
 * connections of the flows that ended in each interval (fed by the privacy ledger, collector/privacy/),
 * so the Privacy dashboard can show who each assistant talks to over any time range. Flows count when
 * they end (a long voice connection lands at its end); the `traffic` measurement has the per-interval
 * growth of open flows.
 *
 * Tags hold organisations and service classes (a few dozen per home), never server names, and at most
 * MAX_SERIES series are open per interval (the rest go under org "other"): the series count a home adds is
 * devices x organisations x services (docs/privacy.md).
 */
import { int, pointLine } from './line-protocol.js';

/** Most endpoint series one interval may hold; the rest are summed under org "other". */
export const MAX_SERIES = 2000;

export interface EndpointTraffic {
  /** The device's MAC (its tag value goes through the traffic's admission: traffic.ts DeviceTags). */
  mac: number;
  device: string;
  deviceName: string | null;
  org: string | null;
  category: string | null;
  service: string;
  party: 'first' | 'third' | null;
  bytesUp: number;
  bytesDown: number;
  /**
   * The privacy ledger's endpoint this traffic is for, as an identity: its org, service and party do not
   * change, so the cell key made for it is kept (one string built and hashed per endpoint, not per flow).
   */
  endpoint?: object;
}

interface Cell {
  tags: Record<string, string | null>;
  bytesUp: number;
  bytesDown: number;
  flows: number;
}

export class EndpointAggregator {
  private readonly cells = new Map<string, Cell>();
  /** Each ledger endpoint's cell key, with the device tag value it was made for (that one may become "other"). */
  private readonly keys = new WeakMap<object, { device: string; key: string }>();
  /** Flows summed under org "other" because the interval had MAX_SERIES series. */
  folded = 0;

  /** `site`: the site tag of every point (config.site); unset in unit tests only. */
  constructor(private readonly site: string | null = null) {}

  add(t: EndpointTraffic): void {
    const known = t.endpoint === undefined ? undefined : this.keys.get(t.endpoint);
    let key: string;
    if (known !== undefined && known.device === t.device) {
      key = known.key;
    } else {
      key = `${t.device}\u0000${t.org ?? ''}\u0000${t.service}\u0000${t.party ?? ''}`;
      if (t.endpoint !== undefined) this.keys.set(t.endpoint, { device: t.device, key });
    }
    let cell = this.cells.get(key);
    if (cell === undefined) {
      let tags: Record<string, string | null> = { site: this.site, device: t.device, device_name: t.deviceName, org: t.org ?? 'unknown', category: t.category, service: t.service, party: t.party };
      if (this.cells.size >= MAX_SERIES) {
        this.folded++;
        key = `${t.device}\u0000\u0001other`;
        tags = { site: this.site, device: t.device, device_name: t.deviceName, org: 'other', category: null, service: 'other', party: null };
        cell = this.cells.get(key);
      }
      if (cell === undefined) {
        cell = { tags, bytesUp: 0, bytesDown: 0, flows: 0 };
        this.cells.set(key, cell);
      }
    }
    cell.bytesUp += t.bytesUp;
    cell.bytesDown += t.bytesDown;
    cell.flows++;
  }

  get pending(): boolean {
    return this.cells.size > 0;
  }

  /** The interval's points at `timeMs`, then empty. Returns how many. */
  drain(timeMs: number, emit: (line: string) => void): number {
    let n = 0;
    for (const cell of this.cells.values()) {
      const line = pointLine('endpoint', cell.tags, { bytes_up: int(cell.bytesUp), bytes_down: int(cell.bytesDown), flows: int(cell.flows) }, timeMs);
      if (line !== null) {
        emit(line);
        n++;
      }
    }
    this.cells.clear();
    return n;
  }
}
