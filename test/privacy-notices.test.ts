/**
 * New-endpoint notices end to end, through the `earshot` CLI on two real captures of one Echo Dot 2 on
 * one data directory: its normal use (15:58), then its boot a few hours later (21:12), which contacts
 * organisations the first never showed. With a one-hour learning period the first replay only learns;
 * the second raises exactly the organisations that are new, delivered to a real webhook receiver (signed,
 * deduped by key) and a real Mosquitto; a third replay of the boot (a restart on the same data directory)
 * raises nothing.
 *
 * The expected organisations come from the packets (tshark: the Echo's peers, the SNI of its TLS
 * connections and the names its DNS answers gave for each address) and from the ownership data (the
 * organisation lookup: curated domains, the catalogue, the vendors' ranges, the ASN table), not from
 * earshot's flow table, tagging or ledger.
 */
import { execFileSync } from 'node:child_process';
import mqtt from 'mqtt';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { buildEndpointOrgLookup } from '../collector/privacy/lookup.js';
import { runCli } from './helpers/cli.js';
import { describeMosquitto, Mosquitto, until } from './helpers/mosquitto.js';
import { WebhookReceiver } from './helpers/receiver.js';
import { describeShared, realCapture } from './helpers/shared.js';
import { tempDir } from './helpers/temp.js';
import { tsharkAskedNames } from './helpers/tshark.js';

const ECHO = '50:f5:da:23:43:df';
const NORMAL_USE = realCapture('amazon-echodot2_normal-use_jhautry.pcap');
const BOOT = realCapture('amazon-echodot2_boot-under-sslsplit-mitm_jhautry.pcap');
const SECRET = 'receiver-secret-42';

/** The organisations (by key; "?name" for a name no data owns) the Echo contacted in `file`, with a subject each. */
function contactedOrganisations(file: string): Map<string, string> {
  const lookup = buildEndpointOrgLookup({ localNets: [] });
  const out = execFileSync('tshark', ['-r', file, '-Y', `eth.src == ${ECHO} && (tcp || udp) && !icmp`, '-T', 'fields', '-E', 'occurrence=f',
    '-e', 'ip.src', '-e', 'ipv6.src', '-e', 'ip.dst', '-e', 'ipv6.dst', '-e', 'tls.handshake.extensions_server_name'], { encoding: 'utf8', maxBuffer: 1 << 26 });
  const peers = new Map<string, Set<string>>();
  let echoIp = '';
  for (const line of out.split('\n')) {
    if (!line) continue;
    const [src4, src6, dst4, dst6, sni] = line.split('\t');
    echoIp = src4 || src6;
    const peer = dst4 || dst6;
    const names = peers.get(peer) ?? new Set<string>();
    if (sni) names.add(sni);
    peers.set(peer, names);
  }
  for (const [key, names] of tsharkAskedNames(file)) {
    const [client, address] = key.split('|');
    if (client !== echoIp || !peers.has(address)) continue;
    for (const n of names) peers.get(address)!.add(n);
  }
  const orgs = new Map<string, string>();
  for (const [peer, names] of peers) {
    let found = false;
    for (const name of names) {
      const org = lookup(name, peer);
      if (org !== null) {
        orgs.set(org.key, org.name);
        found = true;
      }
    }
    if (found) continue;
    if (names.size > 0) {
      for (const name of names) orgs.set(`?${name}`, name);
      continue;
    }
    const org = lookup(null, peer);
    if (org !== null) orgs.set(org.key, org.name);
  }
  return orgs;
}

describeShared('new-endpoint notices (two captures of one Echo, one data directory)', () => {
  describeMosquitto('to a webhook receiver and Mosquitto, and not again after a restart', () => {
    let broker: Mosquitto;
    const receiver = new WebhookReceiver(SECRET);
    const dataDir = tempDir('earshot-notices-');
    const messages: Array<Record<string, unknown>> = [];
    let client: mqtt.MqttClient;

    beforeAll(async () => {
      broker = await Mosquitto.start();
      await receiver.start();
      client = mqtt.connect(broker.url);
      await new Promise<void>((resolve) => client.on('connect', () => resolve()));
      await client.subscribeAsync('earshot/home/notice');
      client.on('message', (_topic, payload) => messages.push(JSON.parse(payload.toString()) as Record<string, unknown>));
    }, 30_000);
    afterAll(async () => {
      await client?.endAsync();
      await receiver.stop();
      await broker?.close();
    });

    const hooks = () => JSON.stringify([{ url: `http://127.0.0.1:${receiver.port}/hook`, secret: SECRET, on: 'suspected', notices: ['new-endpoint'] }]);
    const replay = (file: string, learningH = '1') => runCli(['replay', file, '--format', 'json', '--data-dir', dataDir, '--learning-period', learningH,
      '--webhooks', hooks(), '--mqtt-url', broker.url, '--site', 'home', '--mqtt-notices', 'new-endpoint', '--alert-wait', '10', '--log-format', 'json']);
    const noticesAtReceiver = () => [...receiver.byKey.values()].filter((b) => b.schema === 'earshot.notice/1');

    it('learns the first capture quietly, then sends exactly the new organisations of the second', async () => {
      const first = contactedOrganisations(NORMAL_USE);
      const second = contactedOrganisations(BOOT);
      const expected = new Map([...second].filter(([key]) => !first.has(key)));
      // the boot contacts organisations the normal use never showed: the test can fail
      expect(expected.size).toBeGreaterThan(0);

      const a = await replay(NORMAL_USE);
      expect(a.code, a.stderr).toBe(0);
      expect(noticesAtReceiver()).toEqual([]);

      const b = await replay(BOOT);
      expect(b.code, b.stderr).toBe(0);
      const got = noticesAtReceiver().map((d) => d.notice as { what: string; subject: string; endpoint: string }).filter((n) => n.what === 'new-organisation');
      expect(got.map((n) => n.subject).sort()).toEqual([...expected.values()].sort());
      for (const doc of noticesAtReceiver()) expect((doc.device as { mac: string }).mac).toBe(ECHO);
      expect(receiver.badSignatures).toBe(0);
      // MQTT: the same notices (organisations and services) as the webhook
      await until('MQTT notices', () => messages.length >= noticesAtReceiver().length);
      expect(messages.map((m) => `${String(m.what)} ${String(m.subject)}`).sort())
        .toEqual(noticesAtReceiver().map((d) => d.notice as { what: string; subject: string }).map((n) => `${n.what} ${n.subject}`).sort());
    }, 120_000);

    it('a restart on the same data directory raises none of them again', async () => {
      const before = receiver.requests;
      const seen = messages.length;
      // no learning period this time: whatever the data directory did not remember would be news at once
      const c = await replay(BOOT, '0');
      expect(c.code, c.stderr).toBe(0);
      expect(receiver.requests).toBe(before);
      // give the broker a moment to pass on anything earshot published
      await new Promise((resolve) => setTimeout(resolve, 500));
      expect(messages.length).toBe(seen);
    }, 120_000);
  });
});
