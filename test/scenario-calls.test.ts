/**
 * A call on an Echo, from a generated household (test/scenario/calls.ts): ICE with a STUN server on
 * 3478, then two minutes of SRTP at 50 packets/s each way, beside the Echo's usual voice channel. The
 * call's plan is the ground truth (tshark first checks that the capture holds it); earshot must report
 * exactly one call with the plan's start, end and bytes, and no activation.
 */
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Ajv2020 } from 'ajv/dist/2020.js';
import addFormats from 'ajv-formats';
import { describe, expect, it } from 'vitest';
import { isoTime } from '../collector/sink/report.js';
import { runCli } from './helpers/cli.js';
import { startCollect } from './helpers/collect.js';
import { untilValue } from './helpers/wait.js';
import { describeInflux, useInfluxd } from './helpers/influxd.js';
import { describeMosquitto, Mosquitto } from './helpers/mosquitto.js';
import mqtt from 'mqtt';
import { PROJECT_ROOT } from './helpers/shared.js';
import { buildSource } from '../collector/capture/index.js';
import { loadConfig } from '../collector/config.js';
import { buildCollector } from '../collector/index.js';
import { replayReport } from './helpers/replay.js';
import { tempDir } from './helpers/temp.js';
import { callFrameBytes, callPlan } from './scenario/calls.js';
import { exampleDevices, generateScenario, writeScenarioPcap } from './scenario/generator.js';

const dir = tempDir('earshot-calls-');

const T0 = Date.UTC(2026, 2, 14, 18, 0, 0);
const devices = exampleDevices();
const [kitchenEcho] = devices;

function tshark(args: string[]): string {
  return execFileSync('tshark', args, { encoding: 'utf8', maxBuffer: 1 << 30, stdio: ['ignore', 'pipe', 'pipe'] });
}

describe('a call on an Echo (generated household)', () => {
  const scenario = generateScenario({
    seed: 21, startMs: T0, durationMs: 6 * 60_000, devices,
    // an ordinary command before the call, so the detector is at work on the same Echo
    activations: [{ device: kitchenEcho.mac, start: T0 + 30_000, kind: 'command', intended: true }],
    calls: [{ device: kitchenEcho.mac, start: T0 + 90_000, durationMs: 120_000 }],
  });
  const call = scenario.calls![0];
  const plan = callPlan(scenario.seed, call);
  const pcap = join(dir, 'call.pcap');
  writeScenarioPcap(scenario, pcap);
  const first = plan.packets[0].atMs;
  const last = plan.packets[plan.packets.length - 1].atMs;
  const sum = (up: boolean, f: (p: (typeof plan.packets)[number]) => number) => plan.packets.filter((p) => p.up === up).reduce((s, p) => s + f(p), 0);

  it('the capture holds the plan (tshark): its STUN messages, and every packet of the call on the wire', () => {
    const stun = tshark(['-r', pcap, '-Y', `stun && eth.addr == ${kitchenEcho.mac}`, '-T', 'fields', '-e', 'frame.number']).trim().split('\n');
    expect(stun).toHaveLength(plan.packets.filter((p) => p.payload.readUInt32BE(4) === 0x2112a442 && p.payload[0] < 0x40).length);
    const frames = tshark(['-r', pcap, '-Y', `udp.port == ${plan.localPort} && eth.addr == ${kitchenEcho.mac}`, '-T', 'fields', '-e', 'frame.time_epoch', '-e', 'frame.len']).trim().split('\n');
    expect(frames).toHaveLength(plan.packets.length);
    expect(frames.reduce((s, l) => s + Number(l.split('\t')[1]), 0)).toBe(plan.packets.reduce((s, p) => s + callFrameBytes(p), 0));
    expect(Number(frames[0].split('\t')[0]) * 1000).toBeCloseTo(first, 3);
    expect(Number(frames[frames.length - 1].split('\t')[0]) * 1000).toBeCloseTo(last, 3);
  });

  it('earshot reports exactly one call, with the plan\'s start, end, duration, packets and bytes, and no activation during it', async () => {
    const report = await replayReport(pcap);
    expect(report.devices.find((d) => d.mac === kitchenEcho.mac)?.assistant).toBe(true);
    expect(report.calls).toHaveLength(1);
    const found = report.calls[0];
    expect(found).toMatchObject({
      kind: 'call',
      device: kitchenEcho.mac,
      start: isoTime(first),
      end: isoTime(last),
      packetsUp: plan.packets.filter((p) => p.up).length,
      packetsDown: plan.packets.filter((p) => !p.up).length,
      bytesUp: sum(true, callFrameBytes),
      bytesDown: sum(false, callFrameBytes),
      peers: [plan.server, plan.peer],
      peersTruncated: false,
    });
    expect(found.durationS).toBeCloseTo((last - first) / 1000, 3);
    expect(found.durationS).toBeGreaterThan(119);
    // the command before the call is the only activation; nothing from the call's two minutes
    const during = report.activations.filter((a) => Date.parse(a.end) >= first && Date.parse(a.start) <= last);
    expect(during).toEqual([]);
    expect(report.activations).toHaveLength(1);
    expect(Math.abs(Date.parse(report.activations[0].start) - scenario.activations[0].start)).toBeLessThan(2000);
  });

  // a stream on the voice channel during a call is someone talking to the assistant ("Alexa, hang up"): the
  // call's own audio goes over SRTP, not the voice channel. It is an activation, marked as during the call
  it('an upload on the voice channel during a call is an activation marked during-call; the call stays one call', async () => {
    const withUpload = generateScenario({
      seed: 24, startMs: T0, durationMs: 4 * 60_000, devices: devices.slice(0, 1),
      calls: [{ start: T0 + 30_000, durationMs: 120_000, voiceUpload: { offsetMs: 40_000, durationMs: 5000, bytesUp: 60_000 } }],
    });
    const file = join(dir, 'call-upload.pcap');
    writeScenarioPcap(withUpload, file);
    const report = await replayReport(file);
    expect(report.calls).toHaveLength(1);
    expect(report.activations.map((a: { start: string; reasons: string[] }) => [Date.parse(a.start) - (T0 + 70_000) < 200, a.reasons.includes('during-call')])).toEqual([[true, true]]);
  });

  it('the text report has a line for the call', async () => {
    const r = await runCli(['replay', pcap, '--format', 'text']);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toContain('Calls (1)');
    expect(r.stdout).toMatch(new RegExp(`${kitchenEcho.mac}\\s+${isoTime(first).replace(/\./g, '\\.')}\\s+${isoTime(last).replace(/\./g, '\\.')}\\s+${((last - first) / 1000).toFixed(1)} s`));
  });

  it('the collector answers inCall(mac, time) for the detector: true during the call, false before it, after it and for another device', async () => {
    const collector = buildCollector(loadConfig({}));
    await collector.run(buildSource({ kind: 'file', path: pcap }, {}));
    const mac = Number.parseInt(kitchenEcho.mac.replace(/:/g, ''), 16);
    const other = Number.parseInt(devices[1].mac.replace(/:/g, ''), 16);
    expect(collector.calls?.inCall(mac, first + 60_000)).toBe(true);
    expect(collector.calls?.inCall(mac, first - 1000)).toBe(false);
    expect(collector.calls?.inCall(mac, last + 1000)).toBe(false);
    expect(collector.calls?.inCall(other, first + 60_000)).toBe(false);
  });

  it('GET /api/v1/calls: the call while it is open, then as the report has it', async () => {
    // 30x: the call runs from 3 s to 7 s of wall time
    const run = await startCollect(pcap, ['--realtime-speed', '30']);
    try {
      const open = await untilValue('the open call', async () => {
        const body = (await (await fetch(`${run.base}/api/v1/calls`)).json()) as { calls: Array<{ open: boolean; start: string; device: string }> };
        return body.calls.find((c) => c.open) ?? null;
      });
      expect(open).toMatchObject({ device: kitchenEcho.mac, start: isoTime(first) });
      await untilValue('the report', async () => (run.stdout().includes('"stats"') ? true : null));
      const report = JSON.parse(run.stdout()) as { calls: unknown[] };
      const body = (await (await fetch(`${run.base}/api/v1/calls?device=${kitchenEcho.mac.replace(/:/g, '-')}`)).json()) as { total: number; calls: Array<Record<string, unknown>> };
      expect(body.total).toBe(1);
      expect(body.calls.map(({ open: wasOpen, ...c }) => ({ ...c, wasOpen }))).toEqual(report.calls.map((c) => ({ ...(c as object), wasOpen: false })));
      const none = (await (await fetch(`${run.base}/api/v1/calls?until=${encodeURIComponent(isoTime(first))}`)).json()) as { total: number };
      expect(none.total).toBe(0);
      const metrics = await (await fetch(`${run.base}/metrics`)).text();
      expect(metrics).toMatch(/^earshot_calls_total 1$/m);
      expect(metrics).toMatch(/^earshot_calls_open 0$/m);
    } finally {
      await run.stop();
    }
  }, 60_000);
});

describeInflux('a call reaches InfluxDB (real influxd)', () => {
  const server = useInfluxd();

  it('one `call` point at the call\'s start with its duration and bytes; the JSON report with the call matches docs/report.schema.json', async () => {
    const scenario = generateScenario({ seed: 22, startMs: T0, durationMs: 4 * 60_000, devices: devices.slice(0, 1), calls: [{ start: T0 + 30_000, durationMs: 90_000 }] });
    const plan = callPlan(scenario.seed, scenario.calls![0]);
    const pcap = join(dir, 'influx-call.pcap');
    writeScenarioPcap(scenario, pcap);
    const r = await runCli(['replay', pcap, '--format', 'json', '--influx-url', server.url, '--influx-db', 'calls', '--influx-raw-retention', 'INF']);
    expect(r.code, r.stderr).toBe(0);
    const report = JSON.parse(r.stdout) as { calls: unknown[]; devices: Array<{ mac: string; name: string | null }> };
    // strict, as test/cli.test.ts checks the schema
    const ajv = new Ajv2020({ allErrors: true, strict: true });
    (addFormats as unknown as (a: Ajv2020) => void)(ajv);
    const validate = ajv.compile(JSON.parse(readFileSync(join(PROJECT_ROOT, 'docs/report.schema.json'), 'utf8')));
    expect(validate(report), JSON.stringify(validate.errors)).toBe(true);
    expect(report.calls).toHaveLength(1);
    const rows = await server.rows('calls', 'SELECT * FROM "call"');
    const first = plan.packets[0].atMs;
    const last = plan.packets[plan.packets.length - 1].atMs;
    expect(rows).toHaveLength(1);
    expect(rows[0]).toMatchObject({
      device: kitchenEcho.mac,
      // the name the inventory gave the device (as on the `activation` points)
      device_name: report.devices.find((d) => d.mac === kitchenEcho.mac)?.name,
      bytes_up: plan.packets.filter((p) => p.up).reduce((s, p) => s + callFrameBytes(p), 0),
      bytes_down: plan.packets.filter((p) => !p.up).reduce((s, p) => s + callFrameBytes(p), 0),
      end_ms: Math.floor(last),
    });
    expect(Number(rows[0].time)).toBe(Math.floor(first));
    expect(Number(rows[0].duration_s)).toBeCloseTo((last - first) / 1000, 3);
  });
});

describeMosquitto('a call reaches MQTT (real mosquitto)', () => {
  it('one message on earshot/call: the report\'s call and the device; nothing on earshot/activation from it', async () => {
    const scenario = generateScenario({ seed: 23, startMs: T0, durationMs: 3 * 60_000, devices: devices.slice(0, 1), calls: [{ start: T0 + 20_000, durationMs: 60_000 }] });
    const pcap = join(dir, 'mqtt-call.pcap');
    writeScenarioPcap(scenario, pcap);
    const broker = await Mosquitto.start();
    const subscriber = await mqtt.connectAsync(broker.url);
    const messages: Array<{ topic: string; body: Record<string, unknown> }> = [];
    subscriber.on('message', (topic, payload) => messages.push({ topic, body: JSON.parse(payload.toString()) as Record<string, unknown> }));
    try {
      await subscriber.subscribeAsync(['earshot/home/call', 'earshot/home/activation']);
      const r = await runCli(['replay', pcap, '--format', 'json', '--mqtt-url', broker.url, '--site', 'home']);
      expect(r.code, r.stderr).toBe(0);
      const report = JSON.parse(r.stdout) as { calls: unknown[] };
      expect(report.calls).toHaveLength(1);
      const calls = await untilValue('the call message', async () => {
        const found = messages.filter((m) => m.topic === 'earshot/home/call');
        return found.length > 0 ? found : null;
      });
      expect(calls).toHaveLength(1);
      expect(calls[0].body).toMatchObject({ kind: 'call', call: report.calls[0], device: { mac: kitchenEcho.mac, assistant: true } });
      expect(messages.filter((m) => m.topic === 'earshot/home/activation')).toEqual([]);
    } finally {
      await subscriber.endAsync();
      await broker.close();
    }
  });
});
