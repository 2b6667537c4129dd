/**
 * What the API keeps of a run: the flows that ended lately cost their columns in the ring, made when the
 * store is (collector/flow/record-ring.ts), and nothing more, and the API's form of a flow is the
 * report's, without nameSource, with `open`.
 */
import { describe, expect, it } from 'vitest';
import { createFlow } from '../flow/flow.js';
import { flowRecord, type FlowRecord } from '../flow/record.js';
import { ActivityStore, flowToApi } from './activity.js';
import { DeviceTotalsStore } from './device-totals.js';
import { heapUsed } from '../../test/helpers/heap.js';
import type { Activation } from '../detect/detector.js';

const T0 = 1_700_000_000_000;

function record(id: number): FlowRecord {
  const f = createFlow(id, id % 2 === 0 ? 6 : 17, 4, 0, T0 + id * 1000, [0, 0, 0, 0xc0a80105], 40000 + (id % 20000), [0, 0, 0, 0x34000000 + id], 443);
  f.deviceMac = 0x44650d123456;
  f.deviceIsClient = true;
  f.bytesUp = 1000 + id;
  f.bytesDown = 70_000 + id;
  f.packetsUp = 10;
  f.packetsDown = 60;
  f.lastMs = f.firstMs + 1234.5;
  f.serverName = 'avs-alexa-4-na.amazon.com';
  f.service = 'voice';
  f.vendor = 'amazon';
  return flowRecord(f);
}


describe('activity store', () => {
  it('keeps an ended flow in its columns, not as a copy in the API form (which took ~1 KB a flow)', () => {
    const n = 10_000;
    const records = Array.from({ length: n }, (_, i) => record(i + 1));
    const store = new ActivityStore({ maxActivations: 10, maxEndedFlows: n }, new DeviceTotalsStore({ maxDevices: 10, endpoints: false }));
    const before = heapUsed();
    for (const r of records) store.flowEnded(r);
    const perFlow = (heapUsed() - before) / n;
    expect(records.length).toBe(n); // the records stay alive either way: only the store's own cost is measured
    expect(perFlow).toBeLessThan(64);
    const ended = store.endedFlows();
    expect(ended).toHaveLength(n);
    expect(ended[n - 1]).toEqual(flowToApi(records[n - 1], false));
  });

  it('counts each device\'s finished activations among the kept ones, as the ring lets the oldest go', () => {
    const store = new ActivityStore({ maxActivations: 3, maxEndedFlows: 0 }, new DeviceTotalsStore({ maxDevices: 10, endpoints: false }));
    const act = (n: number, device: string) => ({ id: `${device}-${n}`, device, verdict: 'unverified', startMs: T0 + n } as unknown as Activation);
    const a = [act(1, 'aa:aa:aa:aa:aa:01'), act(2, 'aa:aa:aa:aa:aa:01'), act(3, 'aa:aa:aa:aa:aa:02'), act(4, 'aa:aa:aa:aa:aa:02'), act(5, 'aa:aa:aa:aa:aa:02')];
    store.started(a[0]);
    expect(store.finishedByDevice.size).toBe(0); // open: not counted
    store.finished(a[0]);
    store.finished(a[0]); // told twice: counted once
    store.finished(a[1]);
    expect(Object.fromEntries(store.finishedByDevice)).toEqual({ 'aa:aa:aa:aa:aa:01': 2 });
    for (const x of a.slice(2)) store.finished(x);
    // the newest three are kept: 3, 4, 5
    const kept = store.listActivations().map((x) => x.device);
    expect(Object.fromEntries(store.finishedByDevice)).toEqual(Object.fromEntries([...new Set(kept)].map((d) => [d, kept.filter((k) => k === d).length])));
    expect(Object.fromEntries(store.finishedByDevice)).toEqual({ 'aa:aa:aa:aa:aa:02': 3 });
  });

  it('shows a flow as the report does, without nameSource, with open, in the report order', () => {
    const r = record(7);
    const api = flowToApi(r, true);
    expect(Object.keys(api)).toEqual(['proto', 'client', 'clientPort', 'server', 'serverPort', 'packetsUp', 'packetsDown', 'bytesUp', 'bytesDown',
      'first', 'last', 'device', 'sni', 'serverName', 'service', 'vendor', 'open']);
    expect(api).toMatchObject({ proto: 'udp', client: '192.168.1.5', server: '52.0.0.7', serverPort: 443, bytesUp: 1007, first: '2023-11-14T22:13:27.000Z', last: '2023-11-14T22:13:28.234Z', device: '44:65:0d:12:34:56', open: true });
  });
});
