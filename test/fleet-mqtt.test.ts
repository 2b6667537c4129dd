/**
 * Many homes, one central broker (docs/mqtt.md "Many homes on one broker"): each home has its own Mosquitto,
 * bridged out to a central one with the configuration the docs give; two collectors replay real captures
 * at two sites; a subscriber at the centre sees each site's activations and availability under its own
 * topics, each message saying its site, and nothing of one site under the other's.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import mqtt from 'mqtt';
import { afterAll, beforeAll, expect, it } from 'vitest';
import type { Report } from '../collector/sink/report.js';
import { runCli } from './helpers/cli.js';
import { describeMosquitto, Mosquitto, until } from './helpers/mosquitto.js';
import { PROJECT_ROOT, describeShared, realCapture, VCFP_CAPTURES } from './helpers/shared.js';

/** The bridge configuration of docs/mqtt.md for `site`, pointed at the central broker (no user: the test's broker is open). */
function bridgeFromDocs(site: string, central: Mosquitto): string {
  const doc = readFileSync(join(PROJECT_ROOT, 'docs/mqtt.md'), 'utf8');
  const block = /## Many homes on one broker[\s\S]*?```conf\n([\s\S]*?)```/.exec(doc)?.[1];
  expect(block, 'the bridge configuration in docs/mqtt.md').toBeDefined();
  return (block as string)
    .split('\n')
    .filter((line) => !/^remote_(username|password)\b/.test(line))
    .join('\n')
    .replace('fleet.example.org:1883', `127.0.0.1:${central.port}`)
    .replaceAll('kitchen-pi', site);
}

const HOMES = [
  { site: 'flat-a', capture: realCapture('amazon-echodot3_activation_neu.pcapng') },
  { site: 'house-b', capture: join(VCFP_CAPTURES, 'good_morning_5_30s.pcap') },
];

describeMosquitto('many homes bridged to one central broker (real mosquitto)', () => {
  let central: Mosquitto;
  const homes: Mosquitto[] = [];
  beforeAll(async () => {
    central = await Mosquitto.start();
    for (const { site } of HOMES) homes.push(await Mosquitto.start(undefined, `\n${bridgeFromDocs(site, central)}\n`));
  }, 60_000);
  afterAll(async () => {
    for (const home of homes) await home.close();
    await central?.close();
  });

  describeShared('two sites', () => {
    it('the centre sees each site\'s activations and status under earshot/<site>/, each message saying its site', async () => {
      const seen: Array<{ topic: string; text: string }> = [];
      const client = mqtt.connect(central.url);
      await new Promise<void>((resolve) => client.on('connect', () => resolve()));
      await client.subscribeAsync('#');
      client.on('message', (topic, payload) => seen.push({ topic, text: payload.toString() }));
      // the bridges connect within a few seconds of their broker's start
      await until('the bridges', async () => {
        for (const [i, home] of homes.entries()) {
          const probe = await mqtt.connectAsync(home.url);
          await probe.publishAsync(`earshot/${HOMES[i].site}/probe`, 'x', { qos: 1 });
          await probe.endAsync();
        }
        return HOMES.every(({ site }) => seen.some((m) => m.topic === `earshot/${site}/probe`));
      }, 20_000, 500);
      try {
        const runs = await Promise.all(HOMES.map(({ site, capture }, i) =>
          runCli(['replay', capture, '--format', 'json', '--mqtt-url', homes[i].url, '--site', site])));
        for (const [i, { site }] of HOMES.entries()) {
          expect(runs[i].code, runs[i].stderr).toBe(0);
          const report = JSON.parse(runs[i].stdout) as Report;
          const ids = new Set(report.activations.map((a) => a.id));
          expect(ids.size).toBeGreaterThan(0);
          await until(`${site}: every finished activation at the centre`, () =>
            seen.filter((m) => m.topic === `earshot/${site}/activation` && (JSON.parse(m.text) as { kind: string }).kind === 'finished').length >= ids.size);
          const events = seen.filter((m) => m.topic === `earshot/${site}/activation`).map((m) => JSON.parse(m.text) as { site: string; kind: string; activation: { id: string } });
          expect(events.every((e) => e.site === site && ids.has(e.activation.id))).toBe(true);
          expect(new Set(events.filter((e) => e.kind === 'finished').map((e) => e.activation.id))).toEqual(ids);
          await until(`${site}: offline at the centre`, () => seen.some((m) => m.topic === `earshot/${site}/status` && m.text === 'offline'));
        }
        // discovery stayed at home (the docs' bridge sends earshot/<site>/# only)
        expect(seen.filter((m) => m.topic.startsWith('homeassistant/'))).toEqual([]);
      } finally {
        await client.endAsync();
      }
    }, 90_000);
  });
});
