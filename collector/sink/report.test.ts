/**
 * The report sink's JSON writer: the text it writes flow by flow (cached address and name text, times
 * formatted per second) says exactly what the report records say, for IPv4 and IPv6, with and without
 * names; and isoTime agrees with Date for times close together and far apart.
 */
import { readdirSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { buildSource, emptyCaptureStats } from '../capture/index.js';
import { loadConfig } from '../config.js';
import { createFlow } from '../flow/flow.js';
import { flowRecord } from '../flow/record.js';
import { buildCollector } from '../index.js';
import { DnsAnswer } from '../flow/payload.js';
import { describeShared, PROJECT_ROOT, realCapture } from '../../test/helpers/shared.js';
import { tempDir } from '../../test/helpers/temp.js';
import { buildReportSink, isoTime } from './report.js';
import { SpillDir } from './spill.js';
import { heapUsed } from '../../test/helpers/heap.js';


/** The JSON and text-form report of `file` with the records kept in memory or spilled into `spillBase`. */
async function reportOf(file: string, spillBase: string | null, flags: Record<string, string> = {}) {
  const config = loadConfig({ flags });
  const spill = new SpillDir(spillBase);
  const sink = buildReportSink({ ...config.report, maxDevices: config.tagging.maxDevices, site: config.site }, { spill });
  const collector = buildCollector(config, { onFlowEnd: (f) => sink.onFlowEnd(flowRecord(f)), onDnsAnswer: sink.onDnsAnswer, onActivation: sink.onActivation });
  const stats = await collector.run(buildSource({ kind: 'file', path: file }, {}));
  const inputs = { devices: collector.inventory?.all() };
  const json = [...sink.jsonChunks(stats, collector.stats(), inputs)].join('');
  const built = sink.build(stats, collector.stats(), inputs);
  const dir = spill.dir;
  spill.close();
  return { json, built, dir };
}

async function bothForms(file: string): Promise<{ json: unknown; records: unknown }> {
  const config = loadConfig({});
  const sink = buildReportSink({ ...config.report, maxDevices: config.tagging.maxDevices, site: config.site });
  const collector = buildCollector(config, { onFlowEnd: (f) => sink.onFlowEnd(flowRecord(f)), onDnsAnswer: sink.onDnsAnswer, onActivation: sink.onActivation });
  const stats = await collector.run(buildSource({ kind: 'file', path: file }, {}));
  const inputs = { devices: collector.inventory?.all() };
  const json = JSON.parse([...sink.jsonChunks(stats, collector.stats(), inputs)].join(''));
  const records = JSON.parse(JSON.stringify(sink.build(stats, collector.stats(), inputs)));
  return { json, records };
}

describe('report JSON', () => {
  it('writes what the report records say', async () => {
    const { json, records } = await bothForms(`${PROJECT_ROOT}/test/fixtures/captures/sonos_local-tls_ndpi.pcapng`);
    expect(json).toEqual(records);
  });

  it('keeps what a flow was when it ended (not the flow itself), and takes open flows as they are', () => {
    const sink = buildReportSink({ maxDnsAnswers: 10, maxFlows: 10, maxActivations: 10, maxDevices: 10, site: 'test' });
    const ended = createFlow(1, 6, 4, 0, 1_700_000_000_000, [0, 0, 0, 0xc0a80105], 40000, [0, 0, 0, 0xcb007105], 443);
    ended.bytesUp = 100;
    ended.deviceMac = 0x44650d123456;
    sink.onFlowEnd(flowRecord(ended));
    ended.bytesUp = 999; // a flow object reused or touched later does not change the report
    const open = createFlow(2, 17, 6, 0, 1_700_000_000_500, [0xfd000000, 0, 0, 5], 5353, [0xff020000, 0, 0, 0xfb], 5353);
    const capture = { ...emptyCaptureStats(), packets: 2 };
    const config = loadConfig({});
    const stats = buildCollector(config).stats();
    const report = sink.build(capture, stats, { open: [open] });
    expect(report.flows.map((f) => [f.client, f.server, f.bytesUp, f.device])).toEqual([
      ['192.168.1.5', '203.0.113.5', 100, '44:65:0d:12:34:56'],
      ['fd00::5', 'ff02::fb', 0, null],
    ]);
    expect(report.devices).toMatchObject([{ mac: '44:65:0d:12:34:56', ips: ['192.168.1.5'], bytesUp: 100, bytesDown: 0 }]);
  });

  it('keeps the newest flows and activations within its bounds, counts the rest, and totals devices over every flow', async () => {
    const file = `${PROJECT_ROOT}/test/fixtures/captures/amazon-echodot3_activation_neu.pcapng`;
    const replay = async (maxFlows: number, maxActivations: number) => {
      const config = loadConfig({ flags: { 'report-max-flows': String(maxFlows), 'report-max-activations': String(maxActivations) } });
      const sink = buildReportSink({ ...config.report, maxDevices: config.tagging.maxDevices, site: config.site });
      // each flow as it ended, in the order they ended
      const ended: string[] = [];
      const collector = buildCollector(config, {
        onFlowEnd: (f) => {
          ended.push(`${f.proto === 6 ? 'tcp' : 'udp'} ${f.clientPort}>${f.serverPort} ${isoTime(f.firstMs)}`);
          sink.onFlowEnd(flowRecord(f));
        },
        onDnsAnswer: sink.onDnsAnswer,
        onActivation: sink.onActivation,
      });
      const stats = await collector.run(buildSource({ kind: 'file', path: file }, {}));
      return { report: sink.build(stats, collector.stats(), { devices: collector.inventory?.all() }), ended };
    };
    const key = (f: { proto: string; clientPort: number; serverPort: number; first: string }) => `${f.proto} ${f.clientPort}>${f.serverPort} ${f.first}`;
    const whole = await replay(1_000_000, 1_000_000);
    const bounded = await replay(3, 0);
    expect(whole.report.flows.length).toBeGreaterThan(5);
    expect(whole.report.activations.length).toBeGreaterThan(0);
    expect(whole.report.stats.reportFlowsDropped).toBe(0);
    expect(whole.report.flows.map(key).sort()).toEqual([...whole.ended].sort());
    // the 3 flows that ended last
    expect(bounded.report.flows.map(key).sort()).toEqual(bounded.ended.slice(-3).sort());
    expect(bounded.report.stats.reportFlowsDropped).toBe(whole.report.flows.length - 3);
    expect(bounded.report.activations).toEqual([]);
    expect(bounded.report.stats.reportActivationsDropped).toBe(whole.report.activations.length);
    // every flow still counts in its device's totals and addresses
    expect(bounded.report.devices).toEqual(whole.report.devices);
  });

  it('writes the same report, byte for byte, with its flows and DNS answers spilled to disk as kept in memory', async () => {
    const file = `${PROJECT_ROOT}/test/fixtures/captures/amazon-echodot3_activation_neu.pcapng`;
    for (const flags of [{}, { 'report-max-flows': '4', 'max-dns-answers': '3' }] as Array<Record<string, string>>) {
      const base = tempDir('earshot-report-spill-');
      const inMemory = await reportOf(file, null, flags);
      const spilled = await reportOf(file, base, flags);
      expect(spilled.dir).not.toBeNull(); // it did spill
      expect(spilled.json).toBe(inMemory.json);
      expect(spilled.built).toEqual(inMemory.built);
      expect(JSON.parse(spilled.json)).toEqual(JSON.parse(JSON.stringify(spilled.built)));
      expect(readdirSync(base)).toEqual([]); // and cleaned up
    }
  });

  it('keeps finished flows and DNS answers off the heap while the run lasts (they waited there until the report: ~300 B each)', () => {
    const spill = new SpillDir(tempDir('earshot-report-spill-'));
    const sink = buildReportSink({ maxDnsAnswers: 100_000, maxFlows: 100_000, maxActivations: 10, maxDevices: 10, site: 'test' }, { spill });
    const n = 20_000;
    const push = (from: number) => {
      for (let i = from; i < from + n; i++) {
        const f = createFlow(i, 6, 4, 0, 1_700_000_000_000 + i * 10, [0, 0, 0, 0xc0a80105], 40000 + (i % 20000), [0, 0, 0, 0x34000000 + i], 443);
        f.deviceMac = 0x44650d123456;
        f.serverName = `host-${i}.example.com`;
        sink.onFlowEnd(flowRecord(f));
        sink.onDnsAnswer(new DnsAnswer(1_700_000_000_000 + i, `host-${i}.example.com`, 'A', `52.0.${i >> 8 & 255}.${i & 255}`, 60, 0x44650d123456, 4, [0, 0, 0, 0xc0a80105]));
      }
    };
    // warm: the first batches and segment files, the caches of names, the optimised code
    push(0);
    push(n);
    const before = heapUsed();
    push(2 * n);
    const perRecord = (heapUsed() - before) / (2 * n);
    const stats = buildCollector(loadConfig({})).stats();
    const report = sink.build({ ...emptyCaptureStats(), packets: 1 }, stats);
    spill.close();
    expect(perRecord).toBeLessThan(30);
    expect(report.flows).toHaveLength(3 * n);
    expect(report.dns).toHaveLength(3 * n);
    expect(report.flows[3 * n - 1]).toMatchObject({ server: '52.0.234.95', serverName: 'host-59999.example.com' });
    expect(report.dns[3 * n - 1]).toEqual({ time: '2023-11-14T22:14:19.999Z', name: 'host-59999.example.com', type: 'A', data: '52.0.234.95', ttl: 60 });
  });

  it('isoTime formats like Date.toISOString, times close together and far apart', () => {
    const times = [0, 999.9, 1000, 1_700_000_000_123.456, 1_700_000_000_999, 1_700_000_001_000, 1_700_000_256_007, 1_573_890_000_042.5, 4_102_444_800_000];
    // alternating between far-apart seconds, as a flow's first and last time do
    for (const t of [...times, ...times.reverse()]) expect(isoTime(t), String(t)).toBe(new Date(Math.floor(t)).toISOString());
  });
});

describeShared('report JSON on real captures', () => {
  it('writes what the report records say (IPv6 flows, SNI, DNS names)', async () => {
    for (const name of ['reddit_ipv6-tls13-sni_ndpi.pcap', 'dns-edns-ecs_ipv6-frag_zeek.pcap', 'amazon-echodot2_normal-use_jhautry.pcap']) {
      const { json, records } = await bothForms(realCapture(name));
      expect(json, name).toEqual(records);
    }
  });
});
