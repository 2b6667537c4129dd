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
      const r = await runCli(['replay', CAPTURE, '--format', 'json', '--wake-events', noWakeEvents(), '--webhooks', hooks(receiver.port), '--site', 'flat-2', ...fast]);
      expect(r.code).toBe(0);
      const report = JSON.parse(r.stdout) as Report;
      const suspected = report.activations.filter((a) => a.verdict === 'suspected').map((a) => a.id).sort();
      expect(suspected).toHaveLength(5);
      // which home: in the document and in a header (a receiver for many homes routes without parsing)
      expect(new Set([...receiver.byKey.values()].map((b) => b.site))).toEqual(new Set(['flat-2']));
      expect(receiver.sites).toEqual(new Set(['flat-2']));
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
      const r = await runCli(['replay', ECHO, '--format', 'json', '--mqtt-url', broker.url, '--site', 'home']);
      expect(r.code).toBe(0);
      const report = JSON.parse(r.stdout) as Report;
      const mac = report.activations[0].device;
      expect(report.devices.find((d) => d.mac === mac)?.assistant).toBe(true);
      const id = mac.replace(/:/g, '');
      await until('discovery and state', () => [...seen.keys()].some((t) => t.startsWith('homeassistant/binary_sensor/')) && seen.has(`earshot/home/device/${id}/state`));
      const discovery = [...seen.entries()].filter(([t]) => t.startsWith('homeassistant/') && t.endsWith('/config')).map(([, p]) => JSON.parse(p) as { device: { connections: string[][] }; state_topic: string });
      // every assistant of the report gets its entities (binary sensor, sensors), tied to its MAC
      for (const assistant of report.devices.filter((d) => d.assistant)) {
        expect(discovery.filter((d) => d.device.connections.some(([k, v]) => k === 'mac' && v === assistant.mac)).length, assistant.mac).toBeGreaterThanOrEqual(4);
      }
      const activation = JSON.parse(seen.get('earshot/home/activation') as string) as { site: string; activation: { id: string } };
      expect(activation.activation.id).toBe(report.activations[report.activations.length - 1].id);
      expect(activation.site).toBe('home');
      const state = JSON.parse(seen.get(`earshot/home/device/${id}/state`) as string) as { listening: boolean; activations_today: number };
      expect(state.listening).toBe(false);
      expect(seen.get('earshot/home/status')).toBe('offline');
    } finally {
      await client.endAsync();
    }
  }, 60_000);

  it('three sites on one broker: topics per site, Home Assistant ids that never collide (the same Echo at two sites)', async () => {
    const seen: Array<{ topic: string; text: string }> = [];
    const client = mqtt.connect(broker.url);
    await new Promise<void>((resolve) => client.on('connect', () => resolve()));
    await client.subscribeAsync(['ha3/#', 'earshot/#']);
    client.on('message', (topic, payload) => seen.push({ topic, text: payload.toString() }));
    try {
      const sites = { 'site-a': ECHO, 'site-b': ECHO, 'site-c': CAPTURE };
      const runs = await Promise.all(Object.entries(sites).map(([site, capture]) =>
        runCli(['replay', capture, '--format', 'json', '--mqtt-url', broker.url, '--mqtt-discovery-prefix', 'ha3', '--site', site])));
      const reports = new Map<string, Report>();
      Object.keys(sites).forEach((site, i) => {
        expect(runs[i].code, runs[i].stderr).toBe(0);
        reports.set(site, JSON.parse(runs[i].stdout) as Report);
      });
      const assistants = (site: string) => (reports.get(site) as Report).devices.filter((d) => d.assistant).length;
      await until('every site offline', () => Object.keys(sites).every((site) => seen.some((m) => m.topic === `earshot/${site}/status` && m.text === 'offline')));
      await until('discovery of every site', () => Object.keys(sites).every((site) =>
        seen.filter((m) => m.topic.startsWith('ha3/') && m.text.includes(`"earshot/${site}/status"`)).length >= assistants(site) * 4));
      const configs = new Map<string, { unique_id: string; state_topic: string; availability_topic?: string; availability?: Array<{ topic: string }>; device: { identifiers: string[] } }>();
      for (const m of seen) if (m.topic.startsWith('ha3/') && m.topic.endsWith('/config') && m.text !== '') configs.set(m.topic, JSON.parse(m.text));
      const all = [...configs.values()];
      // one retained config per entity: a collision would have overwritten another site's (fewer topics than entities)
      expect(new Set(all.map((c) => c.unique_id)).size).toBe(all.length);
      for (const site of Object.keys(sites)) {
        const mine = all.filter((c) => c.state_topic.startsWith(`earshot/${site}/`));
        expect(mine.length, site).toBeGreaterThanOrEqual(assistants(site) * 4);
        expect(mine.every((c) => c.unique_id.startsWith(`earshot_${site}_`) && c.device.identifiers.every((id) => id.startsWith(`earshot_${site}_`)))).toBe(true);
        // each site's activations on its own topic, saying so, and only its own
        const events = seen.filter((m) => m.topic === `earshot/${site}/activation`).map((m) => JSON.parse(m.text) as { site: string; kind: string; activation: { id: string } });
        const ids = new Set((reports.get(site) as Report).activations.map((x) => x.id));
        expect(events.length, site).toBeGreaterThan(0);
        expect(events.every((e) => e.site === site && ids.has(e.activation.id))).toBe(true);
        expect(new Set(events.filter((e) => e.kind === 'finished').map((e) => e.activation.id))).toEqual(ids);
      }
      // the same Echo at two sites: two Home Assistant devices, not one
      const echo = (reports.get('site-a') as Report).devices.find((d) => d.assistant)?.mac.replace(/:/g, '') as string;
      expect(new Set(all.filter((c) => c.unique_id.includes(echo)).map((c) => c.device.identifiers[0]))).toEqual(new Set([`earshot_site-a_${echo}`, `earshot_site-b_${echo}`]));
    } finally {
      await client.endAsync();
    }
  }, 90_000);
});
