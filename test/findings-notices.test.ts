/**
 * Network hygiene findings as notices: `earshot replay` of the generated hygiene capture (one device per
 * kind, test/helpers/hygiene-capture.ts: the plan is the ground truth) with a webhook that asks for
 * `notices: [finding]` and MQTT with `--mqtt-notices finding`: each finding the plan holds reaches the
 * receiver (signed) and the broker once, as the report lists it; a webhook that did not ask gets none.
 * With a data directory, a restart lists the findings it had and announces none of them again.
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import mqtt from 'mqtt';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { classicHeader } from './helpers/capture-files.js';
import { runCli } from './helpers/cli.js';
import { deviceMac, HYGIENE_CONFIG, HYGIENE_DEVICES, writeHygieneCapture } from './helpers/hygiene-capture.js';
import { describeMosquitto, Mosquitto, until } from './helpers/mosquitto.js';
import { WebhookReceiver } from './helpers/receiver.js';
import { tempDir } from './helpers/temp.js';

const SECRET = 'receiver-secret-42';

describeMosquitto('hygiene findings as notices (generated capture)', () => {
  const dir = tempDir('earshot-finding-notices-');
  const capture = join(dir, 'hygiene.pcap');
  const config = join(dir, 'config.json');
  const asking = new WebhookReceiver(SECRET);
  const notAsking = new WebhookReceiver(SECRET);
  const messages: Array<{ finding: { id: string; kind: string }; device: { mac: string } | null }> = [];
  let broker: Mosquitto;
  let client: mqtt.MqttClient;

  beforeAll(async () => {
    writeHygieneCapture(capture);
    writeFileSync(config, JSON.stringify(HYGIENE_CONFIG));
    broker = await Mosquitto.start();
    await asking.start();
    await notAsking.start();
    client = mqtt.connect(broker.url);
    await new Promise<void>((resolve) => client.on('connect', () => resolve()));
    await client.subscribeAsync('earshot/home/notice');
    client.on('message', (_t, payload) => messages.push(JSON.parse(payload.toString()) as (typeof messages)[number]));
  }, 30_000);
  afterAll(async () => {
    await client?.endAsync();
    await asking.stop();
    await notAsking.stop();
    await broker?.close();
  });

  it('each finding of the plan reaches the webhook that asked and MQTT once, as the report lists it', async () => {
    const hooks = JSON.stringify([
      { url: `http://127.0.0.1:${asking.port}/hook`, secret: SECRET, on: 'suspected', notices: ['finding'] },
      { url: `http://127.0.0.1:${notAsking.port}/hook`, secret: SECRET, on: 'suspected' },
    ]);
    const r = await runCli(['replay', capture, '--format', 'json', '--config', config, '--webhooks', hooks, '--mqtt-url', broker.url, '--site', 'home',
      '--mqtt-notices', 'finding', '--alert-wait', '10']);
    expect(r.code, r.stderr).toBe(0);
    const report = JSON.parse(r.stdout) as { findings: Array<{ id: string; kind: string; device: string | null }> };
    const docs = [...asking.byKey.values()].filter((d) => d.event === 'notice.finding') as Array<{ finding: { id: string; kind: string }; device: { mac: string } | null }>;
    // the plan's kinds per device (the segment advice is worked out later than the packets, and is not asked for here)
    const planned = HYGIENE_DEVICES.filter((d) => d.kind !== null && d.kind !== 'assistant-shares-segment').map((d) => `${deviceMac(d.n)} ${d.kind}`);
    const got = new Set(docs.map((d) => `${d.device?.mac} ${d.finding.kind}`));
    for (const p of planned) expect(got.has(p), p).toBe(true);
    // every notice is a finding of the report, and none twice
    const ids = new Set(report.findings.map((f) => f.id));
    for (const d of docs) expect(ids.has(d.finding.id), d.finding.id).toBe(true);
    expect(new Set(docs.map((d) => d.finding.id)).size).toBe(docs.length);
    expect(asking.badSignatures).toBe(0);
    expect(notAsking.requests).toBe(0);
    await until('MQTT notices', () => messages.length >= docs.length);
    expect(messages.map((m) => m.finding.id).sort()).toEqual(docs.map((d) => d.finding.id).sort());
  }, 90_000);

  it('with a data directory, a restart lists the findings it had and does not announce them again', async () => {
    const dataDir = tempDir('earshot-finding-state-');
    const empty = join(dir, 'empty.pcap');
    // a classic pcap header (Ethernet) and no packet
    writeFileSync(empty, classicHeader());
    type Found = { id: string; kind: string; count: number; firstSeen: string };
    const run = async (file: string) => {
      const receiver = new WebhookReceiver(SECRET);
      await receiver.start();
      try {
        const hooks = JSON.stringify([{ url: `http://127.0.0.1:${receiver.port}/hook`, secret: SECRET, on: 'suspected', notices: ['finding'] }]);
        const r = await runCli(['replay', file, '--format', 'json', '--config', config, '--data-dir', dataDir, '--webhooks', hooks, '--alert-wait', '10']);
        expect(r.code, r.stderr).toBe(0);
        const notices = [...receiver.byKey.values()].filter((d) => d.event === 'notice.finding').map((d) => (d.finding as { id: string }).id);
        return { findings: (JSON.parse(r.stdout) as { findings: Found[] }).findings, notices };
      } finally {
        await receiver.stop();
      }
    };
    const first = await run(capture);
    expect(first.findings.length).toBeGreaterThan(0);
    expect(new Set(first.notices)).toEqual(new Set(first.findings.map((f) => f.id)));
    // the same traffic again: every finding is known, none is announced, each was seen twice as often
    const second = await run(capture);
    expect(second.notices).toEqual([]);
    const firstById = new Map(first.findings.map((f) => [f.id, f]));
    expect(second.findings.map((f) => f.id).sort()).toEqual([...firstById.keys()].sort());
    for (const f of second.findings) {
      const before = firstById.get(f.id) as Found;
      expect(f.firstSeen, f.id).toBe(before.firstSeen);
      // the segment advice is worked out on the clock, not counted per packet
      if (f.kind !== 'assistant-shares-segment') expect(f.count, f.id).toBe(2 * before.count);
    }
    // a start with no traffic at all still lists them
    const third = await run(empty);
    expect(third.notices).toEqual([]);
    expect(third.findings.map((f) => f.id).sort()).toEqual([...firstById.keys()].sort());
  }, 120_000);
});
