/**
 * Issue 14, fault 7: a LAN host forging DHCP, mDNS and SSDP announcements from a new MAC per packet
 * (test/helpers/flood.ts), mixed into a real capture of one Echo Dot 2, replayed through the real
 * executable into a real influxd and a real mosquitto. Expected values do not come from earshot: the
 * Echo is the capture's one assistant (../shared/captures/real/INDEX.tsv), every other MAC that
 * announces is one the generator forged, and the budgets are the issue's.
 */
import { execFileSync } from 'node:child_process';
import { join } from 'node:path';
import mqtt from 'mqtt';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { formatMac } from '../collector/decode/packet.js';
import type { Report } from '../collector/sink/report.js';
import { runCli } from './helpers/cli.js';
import { startCollect } from './helpers/collect.js';
import { floodFrames, writeFloodPcap, type FloodOptions } from './helpers/flood.js';
import { haveInfluxd, Influxd } from './helpers/influxd.js';
import { Mosquitto, mosquittoPath } from './helpers/mosquitto.js';
import { describeShared, realCapture } from './helpers/shared.js';
import { tempDir } from './helpers/temp.js';

const REAL = 'amazon-echodot2_normal-use_jhautry.pcap';
/** The capture's one assistant (INDEX.tsv: the Echo Dot 2 at 192.168.1.4). */
const ECHO = '50:f5:da:23:43:df';
/** 30k forged packets, as in the issue, starting with the real capture (2017-03-23 15:58:11 UTC). */
const FLOOD: FloodOptions = { packets: 30_000, seed: 14, rate: 300, startSeconds: 1_490_284_691 };
/** The budget for InfluxDB series under a flood of 1M packets (here 30k: far less is expected). */
const SERIES_BUDGET = 10_000;
/** Retained messages one assistant has on the broker: five discovery configs and its state. */
const RETAINED_PER_ASSISTANT = 6;

/** Retained messages with a payload under `filters`, as a new subscriber gets them. */
async function retained(url: string, filters: string[]): Promise<Map<string, string>> {
  const client = mqtt.connect(url);
  const seen = new Map<string, string>();
  client.on('message', (topic, payload, packet) => {
    if (packet.retain && payload.length > 0) seen.set(topic, payload.toString());
  });
  await new Promise<void>((resolve, reject) => {
    client.once('connect', () => resolve());
    client.once('error', reject);
  });
  await client.subscribeAsync(filters, { qos: 1 });
  // the broker sends what it retains right after the SUBACK; a round trip more and all of it is here
  await client.publishAsync('flood-test/ping', 'x', { qos: 1 });
  await new Promise((r) => setTimeout(r, 500));
  await client.endAsync();
  return seen;
}

describeShared('a flood of forged announcements (issue 14, fault 7)', () => {
  let dir: string;
  let mixed: string;
  const forged = new Set<string>();

  beforeAll(() => {
    dir = tempDir('earshot-flood-');
    const flood = join(dir, 'flood.pcap');
    const written = writeFloodPcap(flood, FLOOD);
    expect(written.packets).toBe(FLOOD.packets);
    for (const f of floodFrames(FLOOD)) forged.add(formatMac(f.mac));
    mixed = join(dir, 'mixed.pcap');
    execFileSync('mergecap', ['-F', 'pcap', '-w', mixed, realCapture(REAL), flood]);
  }, 60_000);

  it('makes no assistant, keeps the inventory at its bound, and the Echo is still found', async () => {
    const r = await runCli(['replay', mixed, '--format', 'json', '--max-devices', '500'], { timeoutMs: 120_000 });
    expect(r.code, r.stderr).toBe(0);
    const report = JSON.parse(r.stdout) as Report;
    const assistants = report.devices.filter((d) => d.assistant).map((d) => d.mac);
    expect(assistants, JSON.stringify(report.devices.filter((d) => d.assistant).slice(0, 3))).toEqual([ECHO]);
    expect(forged.has(ECHO)).toBe(false);
    // the report lists the inventory's devices (and those of flows whose device went): the bound holds
    expect(report.devices.length).toBeLessThanOrEqual(500 + 8);
    expect(report.capture.packets).toBeGreaterThan(FLOOD.packets);
  }, 180_000);

  it('bounds /api/v1/devices: at most `limit` devices, the Echo first, and the total', async () => {
    const run = await startCollect(mixed, ['--max-devices', '2000']);
    try {
      // the replay runs to its end while the API serves: wait until the inventory stops growing
      let body: { devices: Array<{ mac: string; assistant: boolean }>; total?: number } = { devices: [] };
      let last = -1;
      for (let i = 0; i < 200; i++) {
        const res = await fetch(`${run.base}/api/v1/devices`);
        body = (await res.json()) as typeof body;
        const total = body.total ?? body.devices.length;
        if (total === last && total > 300) break;
        last = total;
        await new Promise((r) => setTimeout(r, 500));
      }
      const text = JSON.stringify(body);
      expect(body.devices.length).toBeLessThanOrEqual(100);
      expect(text.length).toBeLessThan(200_000);
      // hundreds of forged devices (the inventory reads a budget of announcements from unknown MACs)
      expect(body.total).toBeGreaterThan(300);
      expect(body.devices[0]).toMatchObject({ mac: ECHO, assistant: true });
      expect(body.devices.filter((d) => d.assistant).map((d) => d.mac)).toEqual([ECHO]);
      const more = (await (await fetch(`${run.base}/api/v1/devices?limit=1000`)).json()) as typeof body;
      expect(more.devices.length).toBe(Math.min(1000, body.total!));
      // /metrics: series of its own for the assistant alone (it had two for every forged MAC, with its name)
      const metrics = await (await fetch(`${run.base}/metrics`)).text();
      const listed = new Set([...metrics.matchAll(/^earshot_device_\w+\{device="([^"]+)"/gm)].map((m) => m[1]));
      expect([...listed]).toEqual([ECHO]);
      expect(metrics.length).toBeLessThan(20_000);
      expect((await fetch(`${run.base}/api/v1/devices?limit=100000`)).status).toBe(400);
    } finally {
      await run.stop();
    }
  }, 120_000);

  const needed = haveInfluxd() && mosquittoPath() !== null;
  (needed ? it : it.skip)('bounds InfluxDB series and the retained discovery configs on the broker (real influxd, real mosquitto)', async () => {
    const influxd = await Influxd.start();
    const broker = await Mosquitto.start();
    try {
      const db = `flood${process.pid}`;
      const r = await runCli(['replay', mixed, '--format', 'json', '--influx-url', influxd.url, '--influx-db', db, '--influx-raw-retention', 'INF', '--mqtt-url', broker.url, '--site', 'home'],
        { timeoutMs: 150_000 });
      expect(r.code, r.stderr).toBe(0);
      const [series] = await influxd.query(db, 'SHOW SERIES');
      const seriesCount = series.reduce((n, s) => n + s.values.length, 0);
      const [deviceValues] = await influxd.query(db, 'SHOW TAG VALUES WITH KEY = "device"');
      const devices = new Set(deviceValues.flatMap((s) => s.values.map((v) => String(v[1]))));
      expect(seriesCount).toBeLessThan(SERIES_BUDGET);
      // the free tag values, the Echo, "other" and "none": no value per forged MAC
      expect(devices.size).toBeLessThanOrEqual(256 + 3);
      expect(devices.has(ECHO)).toBe(true);
      const kept = await retained(broker.url, ['homeassistant/#', 'earshot/home/device/+/state']);
      // Home Assistant devices: the Echo alone
      const configs = [...kept.entries()].filter(([t]) => t.startsWith('homeassistant/'));
      expect(kept.size, [...kept.keys()].slice(0, 8).join(', ')).toBeLessThanOrEqual(RETAINED_PER_ASSISTANT);
      for (const [, payload] of configs) {
        const config = JSON.parse(payload) as { device: { connections: string[][] } };
        expect(config.device.connections).toContainEqual(['mac', ECHO]);
      }
    } finally {
      await broker.close();
      await influxd.close();
    }
  }, 240_000);

  afterAll(() => {
    forged.clear();
  });
});
