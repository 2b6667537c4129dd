/**
 * Alerts end to end, through the `earshot` CLI on real captures: a webhook receiver (a real HTTP server
 * that verifies signatures and dedupes by idempotency key, as docs/alerts.md tells receivers to) that
 * is down for the first deliveries, and across a restart of earshot; one that refuses one alert forever
 * while taking the others; and Home Assistant discovery and
 * state on a real Mosquitto.
 */
import { readdirSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:http';
import { join } from 'node:path';
import mqtt from 'mqtt';
import { afterAll, beforeAll, expect, it } from 'vitest';
import type { Report } from '../collector/sink/report.js';
import { runCli } from './helpers/cli.js';
import { describeMosquitto, Mosquitto, until } from './helpers/mosquitto.js';
import { WebhookReceiver } from './helpers/receiver.js';
import { describeShared, PROJECT_ROOT, VCFP_CAPTURES } from './helpers/shared.js';
import { tempDir } from './helpers/temp.js';

const SECRET = 'receiver-secret-42';
// five commands, each an activation; an empty wake-event file makes every one suspected
const CAPTURE = join(VCFP_CAPTURES, 'good_morning_5_30s.pcap');
const ECHO = join(PROJECT_ROOT, 'test/fixtures/captures/amazon-echodot3_activation_neu.pcapng');

function noWakeEvents(): string {
  const file = join(tempDir('earshot-alerts-'), 'none.jsonl');
  writeFileSync(file, '');
  return file;
}

/** A receiver that verifies signatures and dedupes by key, answering 503 to its first `failFirst` requests. */
function receiverFailingFirst(failFirst: number): WebhookReceiver {
  const receiver = new WebhookReceiver(SECRET);
  let left = failFirst;
  receiver.refuse = () => (left-- > 0 ? 503 : null);
  return receiver;
}

const hooks = (port: number) => JSON.stringify([{ url: `http://127.0.0.1:${port}/hook`, secret: SECRET, on: 'suspected' }]);
const fast = ['--alert-retry-min', '0.05', '--alert-retry-max', '0.2'];

describeShared('webhook alerts through earshot replay', () => {
  it('a receiver down for the first deliveries gets every suspected activation once per key, signed', async () => {
    const receiver = receiverFailingFirst(3);
    await receiver.start();
    try {
      const r = await runCli(['replay', CAPTURE, '--format', 'json', '--wake-events', noWakeEvents(), '--webhooks', hooks(receiver.port), ...fast]);
      expect(r.code).toBe(0);
      const report = JSON.parse(r.stdout) as Report;
      const suspected = report.activations.filter((a) => a.verdict === 'suspected').map((a) => a.id).sort();
      expect(suspected).toHaveLength(5);
      expect([...receiver.byKey.values()].map((b) => (b.activation as { id: string }).id).sort()).toEqual(suspected);
      expect([...receiver.byKey.keys()].every((k) => k.endsWith('.activation.suspected'))).toBe(true);
      expect(receiver.requests).toBeGreaterThan(5);
      expect(receiver.badSignatures).toBe(0);
    } finally {
      await receiver.stop();
    }
  }, 60_000);

  it('alerts that could not be delivered wait in the outbox and arrive after a restart of earshot', async () => {
    const dataDir = tempDir('earshot-alerts-data-');
    const receiver = receiverFailingFirst(0);
    await receiver.start();
    const port = receiver.port;
    await receiver.stop(); // down for the whole first run
    const first = await runCli(['replay', CAPTURE, '--format', 'json', '--data-dir', dataDir, '--wake-events', noWakeEvents(), '--webhooks', hooks(port), '--alert-wait', '0.5', ...fast, '--log-format', 'text']);
    expect(first.code).toBe(0);
    expect(first.stderr).toMatch(/5 alerts wait in the outbox/);
    expect(readdirSync(join(dataDir, 'outbox', 'webhooks')).length).toBeGreaterThanOrEqual(5);
    const report = JSON.parse(first.stdout) as Report;
    await receiver.start(port);
    try {
      // the next start (here a replay of a capture without activations) delivers the outbox first
      const second = await runCli(['replay', join(PROJECT_ROOT, 'test/fixtures/captures/sonos_local-tls_ndpi.pcapng'), '--format', 'json', '--data-dir', dataDir, '--webhooks', hooks(port), ...fast]);
      expect(second.code).toBe(0);
      expect([...receiver.byKey.values()].map((b) => (b.activation as { id: string }).id).sort()).toEqual(report.activations.map((a) => a.id).sort());
      expect(receiver.badSignatures).toBe(0);
      expect(readdirSync(join(dataDir, 'outbox', 'webhooks'))).toEqual([]);
    } finally {
      await receiver.stop();
    }
  }, 60_000);

  it('a receiver that refuses one alert forever (500 for it alone): the others arrive during the replay, that one is quarantined', async () => {
    const dataDir = tempDir('earshot-alerts-poison-');
    let refused: string | null = null;
    const taken: string[] = [];
    const server = createServer((req, res) => {
      req.resume();
      req.on('end', () => {
        const key = String(req.headers['x-earshot-idempotency-key']);
        refused ??= key;
        if (key === refused) return res.writeHead(500).end('cannot render this one');
        if (!taken.includes(key)) taken.push(key);
        res.writeHead(200).end();
      });
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    try {
      const port = (server.address() as { port: number }).port;
      // alerts.maxAgeH stays at its 24 h default: before the fix, the other four waited behind it that long
      const r = await runCli(['replay', CAPTURE, '--format', 'json', '--data-dir', dataDir, '--wake-events', noWakeEvents(), '--webhooks', hooks(port), '--alert-wait', '20', ...fast, '--log-format', 'json']);
      expect(r.code).toBe(0);
      expect(taken).toHaveLength(4);
      expect(taken).not.toContain(refused);
      const logs = r.stderr.trim().split('\n').map((l) => JSON.parse(l) as { msg: string; key?: string });
      expect(logs.filter((l) => l.msg.includes('set aside')).map((l) => l.key)).toEqual([refused]);
      expect(r.stderr).not.toMatch(/alerts wait in the outbox/);
      const outbox = join(dataDir, 'outbox', 'webhooks');
      expect(readdirSync(outbox)).toEqual(['quarantine']);
      expect(readdirSync(join(outbox, 'quarantine'))).toEqual([expect.stringMatching(/^\d{12}\.json\.refused-\d+$/)]);
    } finally {
      await new Promise<void>((resolve) => server.close(() => resolve()));
    }
  }, 60_000);
});

describeMosquitto('Home Assistant over MQTT through earshot replay', () => {
  let broker: Mosquitto;
  beforeAll(async () => {
    broker = await Mosquitto.start();
  }, 30_000);
  afterAll(async () => {
    await broker?.close();
  });

  it('publishes discovery for the Echo, its activation and its state', async () => {
    const seen = new Map<string, string>();
    const client = mqtt.connect(broker.url);
    await new Promise<void>((resolve) => client.on('connect', () => resolve()));
    await client.subscribeAsync(['homeassistant/#', 'earshot/#']);
    client.on('message', (topic, payload) => seen.set(topic, payload.toString()));
    try {
      const r = await runCli(['replay', ECHO, '--format', 'json', '--mqtt-url', broker.url]);
      expect(r.code).toBe(0);
      const report = JSON.parse(r.stdout) as Report;
      const mac = report.activations[0].device;
      expect(report.devices.find((d) => d.mac === mac)?.assistant).toBe(true);
      const id = mac.replace(/:/g, '');
      await until('discovery and state', () => [...seen.keys()].some((t) => t.startsWith('homeassistant/binary_sensor/')) && seen.has(`earshot/device/${id}/state`));
      const discovery = [...seen.entries()].filter(([t]) => t.startsWith('homeassistant/') && t.endsWith('/config')).map(([, p]) => JSON.parse(p) as { device: { connections: string[][] }; state_topic: string });
      // every assistant of the report gets its entities (binary sensor, sensors), tied to its MAC
      for (const assistant of report.devices.filter((d) => d.assistant)) {
        expect(discovery.filter((d) => d.device.connections.some(([k, v]) => k === 'mac' && v === assistant.mac)).length, assistant.mac).toBeGreaterThanOrEqual(4);
      }
      const activation = JSON.parse(seen.get('earshot/activation') as string) as { activation: { id: string } };
      expect(activation.activation.id).toBe(report.activations[report.activations.length - 1].id);
      const state = JSON.parse(seen.get(`earshot/device/${id}/state`) as string) as { listening: boolean; activations_today: number };
      expect(state.listening).toBe(false);
      expect(seen.get('earshot/status')).toBe('offline');
    } finally {
      await client.endAsync();
    }
  }, 60_000);
});
