/**
 * The API's ring of recent flows in columns: what comes back is what went in (every field, every kind of
 * value a record holds), the newest `max` in arrival order, and its cost is fixed when it is made.
 */
import { describe, expect, it } from 'vitest';
import { heapUsed } from '../../test/helpers/heap.js';
import { createFlow } from './flow.js';
import { flowRecord, type FlowRecord } from './record.js';
import { FlowRecordRing } from './record-ring.js';

const T0 = 1_700_000_000_000;

/** Records with the values a capture gives: IPv4 and IPv6, no MAC (-1) and 48-bit MACs, names or none, microsecond times. */
function record(i: number): FlowRecord {
  const v6 = i % 3 === 0;
  const client = v6 ? [0x20010db8, 0, 0, 0x100 + (i % 7)] : [0, 0, 0, 0xc0a80100 + (i % 5)];
  const server = v6 ? [0x2a001450, 0x4001, 0x81c, 0x200e + i] : [0, 0, 0, 0x34000000 + i];
  const f = createFlow(i, i % 2 === 0 ? 6 : 17, v6 ? 6 : 4, 0, T0 + i * 1000.123, client, i % 4 === 0 ? 65535 : 40000 + i, server, i % 5 === 0 ? 0 : 443);
  f.deviceMac = i % 4 === 1 ? -1 : 0xfc65de000000 + i;
  f.deviceIsClient = i % 6 !== 5;
  f.packetsUp = i;
  f.packetsDown = 3 * i;
  f.bytesUp = 2 ** 40 + i; // past 32 bits: a long-lived flow's counters
  f.bytesDown = 1500 * i;
  f.lastMs = f.firstMs + 0.001 * i;
  if (i % 2 === 0) {
    f.sni = `host-${i}.example.com`;
    f.serverName = f.sni;
    f.nameSource = 'sni';
    f.service = 'media';
    f.vendor = 'amazon';
  }
  return flowRecord(f);
}

describe('FlowRecordRing', () => {
  it('gives back the newest max records, oldest first, field for field', () => {
    const ring = new FlowRecordRing(10);
    const all = Array.from({ length: 25 }, (_, i) => record(i + 1));
    for (const r of all.slice(0, 4)) ring.push(r);
    expect(ring.toArray()).toEqual(all.slice(0, 4));
    for (const r of all.slice(4)) ring.push(r);
    expect(ring.toArray()).toEqual(all.slice(15));
    expect(ring.dropped).toBe(15);
    // the same shape as the pipeline's records (one hidden class for both: the key order)
    expect(Object.keys(ring.toArray()[0])).toEqual(Object.keys(all[0]));
  });

  it('gives back the order each record came with: the oldest, the newest, and those below a bound', () => {
    const ring = new FlowRecordRing(4);
    expect([ring.oldestOrder(), ring.newestOrder(), ring.olderThan(Number.POSITIVE_INFINITY)]).toEqual([Number.POSITIVE_INFINITY, Number.NEGATIVE_INFINITY, []]);
    const all = Array.from({ length: 6 }, (_, i) => record(i + 1));
    // orders with gaps, as a store numbering every ended flow gives them to a ring of some of them
    for (const [i, r] of all.entries()) ring.push(r, 10 * (i + 1));
    expect([ring.oldestOrder(), ring.newestOrder()]).toEqual([30, 60]);
    expect(ring.olderThan(50)).toEqual([{ order: 30, record: all[2] }, { order: 40, record: all[3] }]);
    expect(ring.olderThan(30)).toEqual([]);
    expect(ring.olderThan(Number.POSITIVE_INFINITY).map((e) => e.record)).toEqual(ring.toArray());
  });

  it('with max 0 keeps nothing and counts every record as dropped', () => {
    const ring = new FlowRecordRing(0);
    ring.push(record(1));
    ring.push(record(2));
    expect(ring.toArray()).toEqual([]);
    expect(ring.dropped).toBe(2);
  });

  it('costs no more heap as it fills: the records are not kept, their numbers are in the columns', () => {
    const n = 10_000;
    const ring = new FlowRecordRing(n);
    // a home's flows: a few hundred addresses, each record with its own copy of the texts (as flowRecord makes them)
    const before = heapUsed();
    for (let i = 0; i < n; i++) {
      const r = record(1 + (i % 300));
      ring.push({ ...r, client: `${r.client} `.trim(), server: `${r.server} `.trim() });
    }
    const perFlow = (heapUsed() - before) / n;
    // the objects held as they were: 404 bytes a flow with their boxed numbers and texts. The measure moves
    // by up to ~40 bytes a flow from run to run here (code compiled meanwhile, the GC's timing): bound at 64
    expect(perFlow).toBeLessThan(64);
    expect(ring.toArray()).toHaveLength(n);
  });
});
