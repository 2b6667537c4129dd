/**
 * The report sink's JSON writer: the text it writes flow by flow (cached address and name text, times
 * formatted per second) says exactly what the report records say, for IPv4 and IPv6, with and without
 * names; and isoTime agrees with Date for times close together and far apart.
 */
import { describe, expect, it } from 'vitest';
import { buildSource, emptyCaptureStats } from '../capture/index.js';
import { loadConfig } from '../config.js';
import { createFlow } from '../flow/flow.js';
import { flowRecord } from '../flow/record.js';
import { buildCollector } from '../index.js';
import { describeShared, PROJECT_ROOT, realCapture } from '../../test/helpers/shared.js';
import { buildReportSink, isoTime } from './report.js';

async function bothForms(file: string): Promise<{ json: unknown; records: unknown }> {
  const config = loadConfig({});
  const sink = buildReportSink({ ...config.report, maxDevices: config.tagging.maxDevices });
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
    const sink = buildReportSink({ maxDnsAnswers: 10, maxFlows: 10, maxActivations: 10, maxDevices: 10 });
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
      const sink = buildReportSink({ ...config.report, maxDevices: config.tagging.maxDevices });
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
