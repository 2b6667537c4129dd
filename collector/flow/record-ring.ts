/**
 * The newest `max` flow records in columns: numbers in typed arrays, texts in one array of references,
 * all allocated at the start, and the addresses' texts shared between records. The API's ring of recent
 * flows (10,000) held them as objects, ~400 bytes of heap each with their boxed numbers and texts
 * (record-ring.test.ts measures it), and a home fills it over its first day: the V8 heap grew by that
 * much, and V8 reserved more room beside it (issue 16's soak, README). Here a record costs ~100 bytes,
 * fixed from the start, outside the V8 heap but for the references, and the texts (addresses, names) are
 * shared: each record brings its own copy of them, decoded from its packets. Records come back as FlowRecords when read (a few times a second at most).
 */
import type { NameSource } from './flow.js';
import type { FlowRecord } from './record.js';

/** Numbers per record: id, firstMs, lastMs, deviceMac, packetsUp, packetsDown, bytesUp, bytesDown, order, peerMac. */
const NUMS = 10;
/** Small numbers per record: proto, clientPort, serverPort, deviceIsClient. */
const SMALL = 4;
/** Texts per record: client, server, sni, serverName, nameSource, service, vendor. */
const TEXTS = 7;
/** Distinct texts shared at most; past it the table starts again (forged addresses or names cannot grow it). */
const MAX_SHARED = 4096;

export class FlowRecordRing {
  private readonly nums: Float64Array;
  private readonly small: Uint16Array;
  private readonly texts: Array<string | null>;
  private readonly shared = new Map<string, string>();
  /** Records held (<= max). */
  private size = 0;
  /** The slot of the oldest record once full. */
  private start = 0;
  /** Records pushed out (or refused, with max 0). */
  dropped = 0;

  constructor(private readonly max: number) {
    this.nums = new Float64Array(max * NUMS);
    this.small = new Uint16Array(max * SMALL);
    this.texts = new Array<string | null>(max * TEXTS).fill(null);
  }

  /** `order`: the caller's sequence number for the record (increasing), read back by olderThan. */
  push(r: FlowRecord, order = 0): void {
    if (this.max === 0) {
      this.dropped++;
      return;
    }
    let slot: number;
    if (this.size < this.max) {
      slot = this.size++;
    } else {
      slot = this.start;
      this.start = (this.start + 1) % this.max;
      this.dropped++;
    }
    const n = slot * NUMS;
    this.nums[n] = r.id;
    this.nums[n + 1] = r.firstMs;
    this.nums[n + 2] = r.lastMs;
    this.nums[n + 3] = r.deviceMac;
    this.nums[n + 4] = r.packetsUp;
    this.nums[n + 5] = r.packetsDown;
    this.nums[n + 6] = r.bytesUp;
    this.nums[n + 7] = r.bytesDown;
    this.nums[n + 8] = order;
    this.nums[n + 9] = r.peerMac;
    const s = slot * SMALL;
    this.small[s] = r.proto;
    this.small[s + 1] = r.clientPort;
    this.small[s + 2] = r.serverPort;
    this.small[s + 3] = r.deviceIsClient ? 1 : 0;
    const t = slot * TEXTS;
    this.texts[t] = this.share(r.client);
    this.texts[t + 1] = this.share(r.server);
    this.texts[t + 2] = r.sni === null ? null : this.share(r.sni);
    this.texts[t + 3] = r.serverName === null ? null : this.share(r.serverName);
    this.texts[t + 4] = r.nameSource;
    this.texts[t + 5] = r.service;
    this.texts[t + 6] = r.vendor;
  }

  /** The records, oldest first (new objects). */
  toArray(): FlowRecord[] {
    const out: FlowRecord[] = [];
    for (let i = 0; i < this.size; i++) out.push(this.record((this.start + i) % this.max));
    return out;
  }

  /** The order given with the oldest record held (Infinity when none is). */
  oldestOrder(): number {
    return this.size === 0 ? Number.POSITIVE_INFINITY : this.nums[this.start * NUMS + 8];
  }

  /** The order given with the newest record held (-Infinity when none is). */
  newestOrder(): number {
    return this.size === 0 ? Number.NEGATIVE_INFINITY : this.nums[((this.start + this.size - 1) % this.max) * NUMS + 8];
  }

  /** The records pushed with an order below `before`, oldest first, each with its order (new objects). */
  olderThan(before: number): Array<{ order: number; record: FlowRecord }> {
    const out: Array<{ order: number; record: FlowRecord }> = [];
    for (let i = 0; i < this.size; i++) {
      const slot = (this.start + i) % this.max;
      const order = this.nums[slot * NUMS + 8];
      if (order >= before) break;
      out.push({ order, record: this.record(slot) });
    }
    return out;
  }

  /**
   * At most `limit` records, newest first (new objects): those of the device `deviceMac` (null: every
   * record; a LAN flow is its peer's too), among those pushed with an order below `before` (Infinity: all). Only the records taken are
   * made; the others are skipped on their columns.
   */
  newest(limit: number, deviceMac: number | null = null, before = Number.POSITIVE_INFINITY): FlowRecord[] {
    const out: FlowRecord[] = [];
    for (let i = this.size - 1; i >= 0 && out.length < limit; i--) {
      const slot = (this.start + i) % this.max;
      const n = slot * NUMS;
      if (this.nums[n + 8] >= before || (deviceMac !== null && this.nums[n + 3] !== deviceMac && this.nums[n + 9] !== deviceMac)) continue;
      out.push(this.record(slot));
    }
    return out;
  }

  private record(slot: number): FlowRecord {
    const n = slot * NUMS;
    const s = slot * SMALL;
    const t = slot * TEXTS;
    return {
      id: this.nums[n], proto: this.small[s], client: this.texts[t] as string, clientPort: this.small[s + 1],
      server: this.texts[t + 1] as string, serverPort: this.small[s + 2],
      packetsUp: this.nums[n + 4], packetsDown: this.nums[n + 5], bytesUp: this.nums[n + 6], bytesDown: this.nums[n + 7],
      firstMs: this.nums[n + 1], lastMs: this.nums[n + 2], deviceMac: this.nums[n + 3], deviceIsClient: this.small[s + 3] === 1, peerMac: this.nums[n + 9],
      sni: this.texts[t + 2], serverName: this.texts[t + 3], nameSource: this.texts[t + 4] as NameSource,
      service: this.texts[t + 5], vendor: this.texts[t + 6],
    };
  }

  /** One string per distinct address or name (a home's flows go to a few hundred; each record has its own copy). */
  private share(text: string): string {
    const known = this.shared.get(text);
    if (known !== undefined) return known;
    if (this.shared.size >= MAX_SHARED) this.shared.clear();
    this.shared.set(text, text);
    return text;
  }
}
