/**
 * The one store of per-device totals the report and the API read: what the device sent is "up" whichever
 * side it is on, addresses come in the order flows first showed them, endpoints and devices are bounded,
 * and a snapshot with open flows leaves the running totals as they were.
 */
import { describe, expect, it } from 'vitest';
import { createFlow } from '../flow/flow.js';
import { flowRecord } from '../flow/record.js';
import { DeviceTotalsStore } from './device-totals.js';

const MAC = 0x44650d123456;
const T0 = 1_700_000_000_000;

/** A flow of MAC at `ms`: client 192.168.1.5 (or the server side when `asServer`), `up`/`down` bytes on the wire. */
function record(id: number, ms: number, up: number, down: number, opts: { asServer?: boolean; server?: number; name?: string; service?: string } = {}) {
  const client = [0, 0, 0, opts.asServer ? 0xc0a80109 : 0xc0a80105];
  const server = [0, 0, 0, opts.asServer ? 0xc0a80105 : (opts.server ?? 0xcb007105)];
  const f = createFlow(id, 6, 4, 0, T0 + ms, client, 40000 + id, server, 443);
  f.deviceMac = MAC;
  f.deviceIsClient = !opts.asServer;
  // the client's bytes and packets go "up" in a flow's own terms
  f.bytesUp = opts.asServer ? down : up;
  f.bytesDown = opts.asServer ? up : down;
  f.packetsUp = opts.asServer ? 1 : 2;
  f.packetsDown = opts.asServer ? 2 : 1;
  f.serverName = opts.name ?? null;
  f.service = opts.service ?? null;
  return flowRecord(f);
}

describe('device totals', () => {
  it('counts what the device sent as up, whichever side of the flow it is on, with its addresses in the order first seen', () => {
    const store = new DeviceTotalsStore({ maxDevices: 10, endpoints: true });
    store.add(record(2, 500, 100, 1000, { name: 'avs-alexa-4-na.amazon.com', service: 'voice' }));
    store.add(record(1, 0, 30, 7, { asServer: true }));
    const d = store.get(MAC)!;
    expect([d.bytesUp, d.bytesDown, d.packetsUp, d.packetsDown, d.flows]).toEqual([130, 1007, 4, 2, 2]);
    expect(d.orderedIps()).toEqual(['192.168.1.5']);
    expect(d.sortedEndpoints()).toEqual([
      { service: 'voice', serverName: 'avs-alexa-4-na.amazon.com', flows: 1, bytesUp: 100, bytesDown: 1000 },
      // unnamed: the other side's address
      { service: 'unknown', serverName: '192.168.1.9', flows: 1, bytesUp: 30, bytesDown: 7 },
    ]);
  });

  it('0.0.0.0 (DHCP before an address) counts its bytes but is not one of the device\'s addresses', () => {
    const store = new DeviceTotalsStore({ maxDevices: 10, endpoints: false });
    const f = createFlow(1, 17, 4, 0, T0, [0, 0, 0, 0], 68, [0, 0, 0, 0xffffffff], 67);
    f.deviceMac = MAC;
    f.bytesUp = 342;
    f.packetsUp = 1;
    store.add(flowRecord(f));
    store.add(record(2, 500, 100, 1000));
    const d = store.get(MAC)!;
    expect([d.bytesUp, d.flows]).toEqual([442, 2]);
    expect(d.orderedIps()).toEqual(['192.168.1.5']);
  });

  it('keeps 256 endpoints a device and sums the rest under other; no endpoints when the API does not want them', () => {
    const store = new DeviceTotalsStore({ maxDevices: 10, endpoints: true });
    const plain = new DeviceTotalsStore({ maxDevices: 10, endpoints: false });
    for (let i = 0; i < 300; i++) {
      const r = record(i, i, 10, 20, { name: `h${i}.example`, service: 'web' });
      store.add(r);
      plain.add(r);
    }
    const endpoints = store.get(MAC)!.sortedEndpoints();
    expect(endpoints).toHaveLength(257);
    expect(endpoints.find((e) => e.serverName === 'other')).toEqual({ service: 'other', serverName: 'other', flows: 44, bytesUp: 440, bytesDown: 880 });
    expect(plain.get(MAC)!.endpoints.size).toBe(0);
    expect(plain.get(MAC)!.bytesUp).toBe(3000);
  });

  it('keeps at most maxDevices devices and counts the flows of the others', () => {
    const store = new DeviceTotalsStore({ maxDevices: 2, endpoints: false });
    for (let i = 0; i < 5; i++) {
      const f = createFlow(i, 17, 4, 0, T0, [0, 0, 0, 0xc0a80100 + i], 5000, [0, 0, 0, 0x08080808], 53);
      f.deviceMac = 0x020000000000 + i;
      f.bytesUp = 60;
      store.add(flowRecord(f));
    }
    expect([store.snapshot().size, store.dropped]).toEqual([2, 3]);
  });

  it('a snapshot with open flows adds them to a copy: the running totals stay as they were', () => {
    const store = new DeviceTotalsStore({ maxDevices: 10, endpoints: true });
    store.add(record(1, 0, 100, 200, { name: 'a.example', service: 'web' }));
    const open = [record(2, 10, 5, 6, { name: 'a.example', service: 'web', server: 0xcb007106 })];
    expect(store.snapshot(open).get(MAC)!.bytesUp).toBe(105);
    expect(store.device(MAC, open).sortedEndpoints()).toEqual([{ service: 'web', serverName: 'a.example', flows: 2, bytesUp: 105, bytesDown: 206 }]);
    expect([store.get(MAC)!.bytesUp, store.get(MAC)!.flows, store.get(MAC)!.sortedEndpoints()[0].flows]).toEqual([100, 1, 1]);
  });
});
