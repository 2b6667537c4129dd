/**
 * What the API keeps of a run: the flows that ended lately cost their columns in the ring, made when the
 * store is (collector/flow/record-ring.ts), and nothing more, and the API's form of a flow is the
 * report's, without nameSource, with `open`.
 */
import { describe, expect, it } from 'vitest';
import { buildSource } from '../capture/index.js';
import { loadConfig } from '../config.js';
import { buildCollector, type Collector } from '../index.js';
import { createFlow } from '../flow/flow.js';
import { flowRecord, type FlowRecord } from '../flow/record.js';
import { ActivityStore, flowToApi, type ApiFlow } from './activity.js';
import { DeviceTotalsStore } from './device-totals.js';
import { heapUsed } from '../../test/helpers/heap.js';
import { describeShared, PROJECT_ROOT, realCapture } from '../../test/helpers/shared.js';
import { flowKey, tsharkFlows } from '../../test/helpers/tshark.js';
import type { Activation } from '../detect/detector.js';
import { parseMac } from '../mac.js';

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
      'first', 'last', 'device', 'peer', 'sni', 'serverName', 'service', 'vendor', 'open']);
    expect(api).toMatchObject({ proto: 'udp', client: '192.168.1.5', server: '52.0.0.7', serverPort: 443, bytesUp: 1007, first: '2023-11-14T22:13:27.000Z', last: '2023-11-14T22:13:28.234Z', device: '44:65:0d:12:34:56', open: true });
  });
});

// A port scan of the LAN (the CIC IDS 2017 slice: ~4,870 probes in seven seconds, two packets each) ends
// more flows than this test's ring of 1,000 recent flows holds (a longer scan, more than the API's 10,000):
// the assistants' flows before it were all pushed out.
describeShared('activity store under a flood of other flows', () => {
  const ECHO_CAPTURE = `${PROJECT_ROOT}/test/fixtures/captures/amazon-echodot3_activation_neu.pcapng`;
  const SCAN_CAPTURE = realCapture('cicids2017-slice_multihost-lan_trafficmanipulator.pcap');
  const ECHO = '68:db:f5:90:19:64';
  const ECHO_IP = '192.168.12.112';

  const CHATTY_CAPTURE = realCapture('amazon-echodot2_normal-use_jhautry.pcap');
  const CHATTY = '50:f5:da:23:43:df';
  const CHATTY_IP = '172.16.42.213';

  /** The captures in turn, each through a collector of its own, into one store (the store keeps no clock). */
  async function through(files: string[], options: { maxEndedFlows: number; maxFlowsPerAssistant: number; maxAssistantRings?: number }): Promise<ActivityStore> {
    const collectors: Collector[] = [];
    const isAssistant = (mac: number) => collectors.some((c) => c.inventory?.describe(mac)?.assistant === true);
    const store = new ActivityStore({ maxActivations: 10, ...options, isAssistant }, new DeviceTotalsStore({ maxDevices: 100, endpoints: false }));
    for (const [i, file] of files.entries()) {
      // flow ids are a run's own: each collector's are moved past the one's before it, as one run's would be
      const collector = buildCollector(loadConfig({}), { onFlowEnd: (f) => store.flowEnded({ ...flowRecord(f), id: f.id + i * 1_000_000 }) });
      collectors.push(collector);
      await collector.run(buildSource({ kind: 'file', path: file }, {}));
    }
    return store;
  }

  /** The Echo's capture, then the scan. */
  const afterScan = (maxFlowsPerAssistant: number) => through([ECHO_CAPTURE, SCAN_CAPTURE], { maxEndedFlows: 1000, maxFlowsPerAssistant });

  /** What tshark sees of an address in a capture: every TCP and UDP conversation it is an end of. */
  const conversationsOf = (file: string, ip: string) => new Set([...tsharkFlows(file).keys()].filter((k) => k.split(' ').slice(1).some((end) => end.startsWith(`${ip}|`))));
  const keyOf = (f: ApiFlow) => flowKey(f.proto, f.client, f.clientPort, f.server, f.serverPort);

  it('keeps an assistant\'s latest flows when other devices\' flows push them out of the ring of every flow', async () => {
    // what tshark sees of the Echo: every TCP and UDP conversation of its address
    const expected = conversationsOf(ECHO_CAPTURE, ECHO_IP);
    expect(expected.size).toBeGreaterThan(4);
    // a flow between two assistants on the LAN is its client's (the other Echos here are assistants too)
    const keys = (store: ActivityStore) => store.endedFlows().map(keyOf);

    // without the assistants' ring, the scan's 1,000 newest flows are all the store holds
    const before = await afterScan(0);
    expect(before.endedFlows()).toHaveLength(1000);
    expect(keys(before).filter((k) => expected.has(k))).toEqual([]);

    const store = await afterScan(500);
    const kept = keys(store);
    for (const key of expected) expect(kept, key).toContain(key);
    expect(store.endedFlows().filter((f) => f.device === ECHO).length).toBeGreaterThan(0);
    // oldest first: the assistants' flows the ring of every flow let go (the Echo's among them), then that
    // ring's 1,000, the scan capture's last
    const ended = store.endedFlows();
    const older = ended.slice(0, ended.length - 1000);
    expect(ended.slice(-1000).some((f) => expected.has(keyOf(f)))).toBe(false);
    // the assistants of the Echo's capture only (Amazon's MAC prefixes there), not the scan's hosts
    expect(older.every((f) => /^(68:db:f5|fc:65:de|18:74:2e)/.test(f.device ?? ''))).toBe(true);
  });

  it('keeps a quiet assistant\'s flows when a chatty one ends more than its share, oldest first across assistants', async () => {
    const echo = conversationsOf(ECHO_CAPTURE, ECHO_IP);
    const chatty = conversationsOf(CHATTY_CAPTURE, CHATTY_IP);
    expect(chatty.size).toBeGreaterThan(5);
    // the Echo Dot 2's normal use, the Echo's capture, the Echo Dot 2's twice more (each of its conversations
    // ends three times), then the scan: more of its flows than its ring of 8 holds, after the Echo's (whose
    // 8 are its 5 flows and the 3 LAN flows it answered: a device's flows, as ?device= lists them)
    const files = [CHATTY_CAPTURE, ECHO_CAPTURE, CHATTY_CAPTURE, CHATTY_CAPTURE, SCAN_CAPTURE];
    const store = await through(files, { maxEndedFlows: 1000, maxFlowsPerAssistant: 8 });
    const ended = store.endedFlows();
    const older = ended.slice(0, ended.length - 1000);
    for (const key of echo) expect(older.map(keyOf), key).toContain(key);
    const chattyKept = older.filter((f) => f.device === CHATTY);
    expect(chattyKept).toHaveLength(8);
    for (const f of chattyKept) expect(chatty.has(keyOf(f)), keyOf(f)).toBe(true);
    // in the order they ended: the Echo capture's assistants (the second capture) before the Echo Dot 2's
    // five of the last pass, although the Echo Dot 2's ring was made first
    const firstChatty = older.findIndex((f) => f.device === CHATTY);
    expect(older.slice(firstChatty).every((f) => f.device === CHATTY)).toBe(true);
    expect(firstChatty).toBeGreaterThan(0);
    expect(store.assistantRingsDropped).toBe(0);

    // one ring fewer than the assistants here: the one whose latest flow ended longest ago gives its ring
    // up. The Echo Dot 2 gives its up to the last of the Echo capture's assistants, then takes one back
    // from the quietest of those in its second pass: two given up, and its five latest kept
    // (a ring is an assistant's: of the flows it owns and of the LAN flows it answered, `peer`)
    const owners = (flows: ApiFlow[]) => new Set(flows.flatMap((f) => [f.device, f.peer]).filter((m) => m !== null));
    const devices = owners(older);
    const fewer = await through(files, { maxEndedFlows: 1000, maxFlowsPerAssistant: 8, maxAssistantRings: devices.size - 1 });
    const fewerOlder = fewer.endedFlows().slice(0, -1000);
    expect(fewer.assistantRingsDropped).toBe(2);
    expect(fewer.assistantRings).toBe(devices.size - 1);
    expect(owners(fewerOlder).size).toBeLessThanOrEqual(devices.size);
    expect(fewerOlder.filter((f) => f.device === CHATTY)).toEqual(chattyKept);
  });

  it('a page of one device\'s flows (GET /api/v1/flows?device=) is made from the rings without the rest: its flows, newest first, across both rings', async () => {
    const echo = conversationsOf(ECHO_CAPTURE, ECHO_IP);
    const chatty = conversationsOf(CHATTY_CAPTURE, CHATTY_IP);
    // a ring of every flow so small that the Echo's and the Echo Dot 2's flows are in it and in their own
    const store = await through([CHATTY_CAPTURE, ECHO_CAPTURE, CHATTY_CAPTURE], { maxEndedFlows: 20, maxFlowsPerAssistant: 500 });
    const all = store.endedFlows().reverse();
    expect(all.length).toBeGreaterThan(20);
    // a device's flows: its own and the LAN flows it answered
    const mine = (device: string) => all.filter((f) => f.device === device || f.peer === device);
    // the Echo Dot 2's newest flows are in the ring of every flow, its older ones only in its own
    const inRecent = all.slice(0, 20).filter((f) => f.device === CHATTY).length;
    expect(inRecent).toBeGreaterThan(0);
    expect(mine(CHATTY).length).toBeGreaterThan(inRecent);
    for (const [device, seen] of [[ECHO, echo], [CHATTY, chatty]] as const) {
      const everything = mine(device);
      expect(everything.length, device).toBeGreaterThan(2);
      // every limit, from inside the ring of every flow to past the assistant's own
      for (const limit of [1, 2, everything.length - 1, everything.length, everything.length + 10]) {
        const page = store.newestEndedFlows(parseMac(device), limit);
        expect(page, `${device} ${limit}`).toEqual(everything.slice(0, limit));
      }
      // and each is a conversation of the device's address that tshark sees
      for (const f of store.newestEndedFlows(parseMac(device), 10_000)) expect(seen.has(keyOf(f)), keyOf(f)).toBe(true);
    }
    // every device: the newest first, the assistants' older ones after the ring of every flow's 20
    for (const limit of [1, 20, 21, all.length, all.length + 1]) expect(store.newestEndedFlows(null, limit), String(limit)).toEqual(all.slice(0, limit));
    // a device with no flow: none
    expect(store.newestEndedFlows(parseMac('02:00:00:00:00:01'), 100)).toEqual([]);
  });
});
