/**
 * Every verdict change reaches every sink, whatever caused it. The real case: two Echos hear one wake
 * word; the one that loses arbitration stops uploading after a second or two and is decided first
 * (no wake event of its own: suspected); the winner, which has the wake event, finishes later and is
 * confirmed, and the loser with it (arbitration). The report shows the loser confirmed; InfluxDB, the
 * webhooks, MQTT (Home Assistant) and the API must show it too. A label given after the end of the run
 * (the API serves on) must reach them as well. Run through the `earshot` executable
 * with a real influxd, a real webhook receiver and a real Mosquitto. Expected verdicts come from the
 * scenario's ground truth and the documented rules, not from earshot.
 */
import { createServer, type Server } from 'node:http';
import { join } from 'node:path';
import { writeFileSync } from 'node:fs';
import mqtt from 'mqtt';
import { afterAll, beforeAll, expect, it } from 'vitest';
import type { Report } from '../collector/sink/report.js';
import { startCollect } from './helpers/collect.js';
import { describeInflux, Influxd } from './helpers/influxd.js';
import { describeMosquitto, Mosquitto } from './helpers/mosquitto.js';
import { tempDir } from './helpers/temp.js';
import { until } from './helpers/wait.js';
import { exampleDevices, generateScenario, writeScenarioPcap } from './scenario/generator.js';

const T0 = Date.UTC(2026, 10, 24, 10, 0, 0);
const TOKEN = 'verdicts-reach-every-sink-012345';

/** A webhook receiver on port 0 that keeps every alert document in the order it arrived. */
class Receiver {
  readonly alerts: Array<{ event: string; activation: { id: string; verdict: string } }> = [];
  private server: Server | null = null;
  port = 0;

  async start(): Promise<void> {
    this.server = createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        this.alerts.push(JSON.parse(Buffer.concat(chunks).toString()) as Receiver['alerts'][number]);
        res.writeHead(200).end();
      });
    });
    await new Promise<void>((resolve) => this.server?.listen(0, '127.0.0.1', resolve));
    this.port = (this.server?.address() as { port: number }).port;
  }

  async stop(): Promise<void> {
    await new Promise<void>((resolve) => this.server?.close(() => resolve()));
  }
}

/** The last verdict each activation was announced with, from events in the order they came. */
function lastVerdicts(events: Array<{ kind: string; id: string; verdict: string }>): Record<string, string> {
  const out: Record<string, string> = {};
  for (const e of events) if (e.kind !== 'started') out[e.id] = e.verdict;
  return out;
}

describeInflux('verdict changes reach every sink', () => {
  describeMosquitto('with a real influxd, webhook receiver and Mosquitto', () => {
    let influxd: Influxd;
    let broker: Mosquitto;
    const receiver = new Receiver();
    beforeAll(async () => {
      [influxd, broker] = await Promise.all([Influxd.start(), Mosquitto.start(), receiver.start()]);
    }, 60_000);
    afterAll(async () => {
      await Promise.all([influxd?.close(), broker?.close(), receiver.stop()]);
    });

    it('two Echos for one wake word: the loser, confirmed after it was announced suspected, is confirmed everywhere', async () => {
      const devices = exampleDevices();
      const [kitchenEcho, bedroomEcho, homepod, nest] = devices;
      const scenario = generateScenario({
        seed: 11, startMs: T0, durationMs: 10 * 60_000, devices,
        activations: [
          { device: kitchenEcho.mac, start: T0 + 60_000, kind: 'command', intended: true },
          { device: bedroomEcho.mac, start: T0 + 60_200, kind: 'command', intended: true, arbitration: 'lost' },
          { device: homepod.mac, start: T0 + 180_000, kind: 'false', intended: false },
          { device: nest.mac, start: T0 + 300_000, kind: 'command', intended: true },
        ],
      });
      const dir = tempDir('earshot-verdict-sinks-');
      const pcap = join(dir, 'household.pcap');
      writeScenarioPcap(scenario, pcap);
      // the wake word is heard once: only the winner has a wake event
      const wakeEvents = join(dir, 'wake.jsonl');
      writeFileSync(wakeEvents, scenario.wakeEvents.filter((e) => e.device !== bedroomEcho.mac).map((e) => JSON.stringify(e)).join('\n'));
      // what the rules say, from the scenario's truth: a wake event confirms; the loser of a race the
      // winner of which is confirmed is confirmed (arbitration); no wake event: suspected
      const expected = new Map(scenario.activations.map((a) => [`${a.device}@${a.start}`, a.intended ? 'confirmed' : 'suspected']));

      const client = mqtt.connect(broker.url);
      await new Promise<void>((resolve) => client.on('connect', () => resolve()));
      await client.subscribeAsync('earshot/#');
      const mqttEvents: Array<{ kind: string; id: string; verdict: string }> = [];
      const states = new Map<string, { suspected_today: number; activations_today: number }>();
      client.on('message', (topic, payload) => {
        if (topic === 'earshot/home/activation') {
          const m = JSON.parse(payload.toString()) as { kind: string; activation: { id: string; verdict: string } };
          mqttEvents.push({ kind: m.kind, id: m.activation.id, verdict: m.activation.verdict });
        } else if (/^earshot\/home\/device\/[0-9a-f]{12}\/state$/.test(topic)) {
          states.set(topic.split('/')[3], JSON.parse(payload.toString()) as { suspected_today: number; activations_today: number });
        }
      });

      const db = 'verdicts';
      const run = await startCollect(pcap, [
        '--wake-events', wakeEvents, '--influx-url', influxd.url, '--influx-db', db,
        '--webhooks', JSON.stringify([{ url: `http://127.0.0.1:${receiver.port}/hook`, on: 'all' }]),
        '--mqtt-url', broker.url, '--site', 'home', '--alert-retry-min', '0.05', '--alert-retry-max', '0.2', '--api-token', TOKEN,
      ]);
      let report: Report;
      let loserId = '';
      let labelledId = '';
      let finalVerdicts: Record<string, string> = {};
      try {
        // the report is written when the capture ends; the API keeps serving
        await until('the report', () => run.stderr().includes('capture ended; the API keeps serving'), 60_000, 100);
        report = JSON.parse(run.stdout()) as Report;
        const api = (await (await fetch(`${run.base}/api/v1/activations?limit=1000`)).json()) as { activations: Array<{ id: string; verdict: string }> };
        const metrics = await (await fetch(`${run.base}/metrics`)).text();
        const reportVerdicts = Object.fromEntries(report.activations.map((a) => [a.id, a.verdict]));

        // the report is right: each activation of the truth, with the verdict the rules give it
        expect(report.activations).toHaveLength(scenario.activations.length);
        for (const a of report.activations) {
          const truth = scenario.activations.find((t) => t.device === a.device && Math.abs(Date.parse(a.start) - t.start) <= 2000);
          expect(truth, a.id).toBeDefined();
          expect([a.id, a.verdict]).toEqual([a.id, expected.get(`${truth!.device}@${truth!.start}`)]);
        }
        const loser = report.activations.find((a) => a.device === bedroomEcho.mac)!;
        expect(loser.reasons).toContain('arbitration');
        loserId = loser.id;

        // the API: each activation and the counts by verdict
        expect.soft(Object.fromEntries(api.activations.map((a) => [a.id, a.verdict]))).toEqual(reportVerdicts);
        for (const verdict of ['confirmed', 'suspected', 'unverified']) {
          const n = report.activations.filter((a) => a.verdict === verdict).length;
          expect.soft(metrics, verdict).toContain(`earshot_activations{verdict="${verdict}"} ${n}`);
        }

        // after the end of the run, while the API still serves: a person says the HomePod's was meant
        const homepodId = report.activations.find((a) => a.device === homepod.mac)!.id;
        const answer = await fetch(`${run.base}/api/v1/activations/${homepodId}/label`, {
          method: 'POST', headers: { 'Content-Type': 'application/json', Authorization: `Bearer ${TOKEN}` }, body: JSON.stringify({ label: 'intended' }),
        });
        expect(answer.status).toBe(200);
        finalVerdicts = { ...reportVerdicts, [homepodId]: 'confirmed' };
        labelledId = homepodId;
        const apiAfter = (await (await fetch(`${run.base}/api/v1/activations?limit=1000`)).json()) as { activations: Array<{ id: string; verdict: string }> };
        expect.soft(Object.fromEntries(apiAfter.activations.map((a) => [a.id, a.verdict]))).toEqual(finalVerdicts);
        const metricsAfter = await (await fetch(`${run.base}/metrics`)).text();
        for (const verdict of ['confirmed', 'suspected', 'unverified']) {
          const n = Object.values(finalVerdicts).filter((v) => v === verdict).length;
          expect.soft(metricsAfter, verdict).toContain(`earshot_activations{verdict="${verdict}"} ${n}`);
        }
      } finally {
        expect(await run.stop()).toBe(0);
      }
      const reportVerdicts = finalVerdicts;

      // from here on, each sink against the report's verdicts with the late label applied
      // InfluxDB: what the dashboards read (current = true), each activation once
      const rows = await influxd.rows(db, 'SELECT "id", "verdict" FROM activation WHERE "current" = true');
      expect.soft(rows).toHaveLength(report.activations.length);
      expect.soft(Object.fromEntries(rows.map((r) => [r.id, r.verdict]))).toEqual(reportVerdicts);

      // webhooks: the last word on each activation is the report's verdict; each change once
      const hooked = receiver.alerts.filter((a) => a.event === 'activation.finished' || a.event === 'activation.verdict-changed');
      expect.soft(lastVerdicts(hooked.map((a) => ({ kind: a.event, id: a.activation.id, verdict: a.activation.verdict })))).toEqual(reportVerdicts);
      const changes = hooked.filter((a) => a.event === 'activation.verdict-changed').map((a) => [a.activation.id, a.activation.verdict]);
      expect.soft(changes).toEqual([[loserId, 'confirmed'], [labelledId, 'confirmed']]);

      // MQTT: the activation topic's last word, and Home Assistant's count of suspected activations
      await until('the MQTT events', () => lastVerdicts(mqttEvents)[labelledId] === 'confirmed', 10_000);
      await client.endAsync();
      expect.soft(lastVerdicts(mqttEvents)).toEqual(reportVerdicts);
      for (const d of [kitchenEcho, bedroomEcho, homepod, nest]) {
        const key = d.mac.replace(/:/g, '');
        const suspected = report.activations.filter((a) => a.device === d.mac && reportVerdicts[a.id] === 'suspected').length;
        expect.soft([d.name, states.get(key)?.suspected_today]).toEqual([d.name, suspected]);
      }
    }, 120_000);
  });
});
