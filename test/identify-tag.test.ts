/**
 * Device identification and endpoint tagging on the real captures. The expected assistants come from
 * the captures' descriptions (../shared/captures/real/INDEX.tsv and captures/README.md: which hosts
 * are Echos, phones, gateways), and names from tshark at test time, never from earshot's output.
 */
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { expect, it } from 'vitest';
import type { Report } from '../collector/sink/report.js';
import { replayReport } from './helpers/replay.js';
import { describeShared, realCapture, VCFP_CAPTURES } from './helpers/shared.js';
import { isRfc1918, tsharkAskedNames, tsharkMacAddresses, tsharkSnis } from './helpers/tshark.js';

interface Expectation {
  file: string;
  /** Every voice assistant in the capture (INDEX.tsv). */
  assistants: string[];
  /** Devices INDEX.tsv describes that are not assistants (phones, gateways, computers, a Nest sensor). */
  notAssistants: string[];
  /** The assistants' voice connections ("server:port"), which carry no DNS answer or SNI. */
  voice: string[];
}

const CASES: Expectation[] = [
  {
    file: 'amazon-echodot3_activation_neu.pcapng',
    // Echo Dot 3 .112 plus the Echos it talks to on TCP 55443 / UDP 55444 (.113, .114, .115)
    assistants: ['68:db:f5:90:19:64', '68:db:f5:b9:5d:01', 'fc:65:de:5f:15:0a', '18:74:2e:41:4d:35'],
    notAssistants: [],
    voice: ['52.94.233.109:443'],
  },
  {
    file: 'amazon-echo_alexa-time-query-0_xray.pcap',
    assistants: ['88:71:e5:e9:9e:6c'],
    notAssistants: ['e0:a3:ac:02:bf:fd', 'b8:27:eb:e5:20:99'], // a phone, the Raspberry Pi access point
    voice: ['52.95.112.20:443'],
  },
  {
    file: 'amazon-echo_alexa-time-query-1_xray.pcap',
    assistants: ['88:71:e5:e9:9e:6c'],
    notAssistants: ['e0:a3:ac:02:bf:fd', 'b8:27:eb:e5:20:99'],
    voice: ['52.95.112.20:443'],
  },
  {
    file: 'amazon-echo_alexa-timed2_xray.pcap',
    assistants: ['88:71:e5:e9:9e:6c'],
    notAssistants: ['b8:27:eb:e5:20:99'],
    voice: ['52.94.219.213:443'],
  },
  {
    file: 'amazon-echodot2_normal-use_jhautry.pcap',
    assistants: ['50:f5:da:23:43:df'],
    notAssistants: ['00:c0:ca:91:5a:01'], // the WiFi Pineapple gateway
    voice: ['205.251.242.52:443'],
  },
  {
    file: 'amazon-echodot2_boot-under-sslsplit-mitm_jhautry.pcap',
    assistants: ['50:f5:da:23:43:df'],
    notAssistants: ['00:c0:ca:91:5a:01'],
    voice: [], // booting under a TLS man-in-the-middle: no voice channel gets established
  },
  {
    file: 'android-alexa-app_jhautry.pcap',
    assistants: [],
    notAssistants: ['78:f8:82:d3:fb:c2', '00:c0:ca:91:5a:01'], // the phone with the Alexa app, the gateway
    voice: [],
  },
  {
    file: 'sonos_local-tls_ndpi.pcapng',
    // the Sonos speaker at .70 and "two other Sonos" talking on UDP 7080 (.37 and .36, INDEX.tsv)
    assistants: ['34:7e:5c:ff:a2:6e', '5c:aa:fd:02:92:1a', '48:a6:b8:ef:36:26'],
    notAssistants: ['9c:58:3c:a7:ee:cc'], // the Apple computer controlling the Sonos
    voice: [],
  },
  {
    file: 'nest_logsink-dns-cname_ndpi.pcap',
    // a Nest device that only speaks Weave (TCP 11095) to nest.com: a thermostat or smoke alarm, no assistant
    assistants: [],
    notAssistants: ['18:b4:30:26:34:40'],
    voice: [],
  },
  {
    file: 'iphone_dns-cname-tls13-ipv6_ndpi.pcap',
    assistants: [],
    notAssistants: [],
    voice: [],
  },
];

function device(report: Report, mac: string) {
  return report.devices.find((d) => d.mac === mac);
}

describeShared('identification and tagging on the real captures', () => {
  for (const c of CASES) {
    it(`${c.file}: the assistants and nothing else, voice flows tagged`, async () => {
      const report = await replayReport(realCapture(c.file));
      const found = report.devices.filter((d) => d.assistant).map((d) => d.mac).sort();
      expect(found, JSON.stringify(report.devices.map((d) => [d.mac, d.vendor, d.evidence]), null, 1)).toEqual([...c.assistants].sort());
      for (const mac of c.notAssistants) expect(device(report, mac)?.assistant ?? false, mac).toBe(false);
      for (const mac of c.assistants) expect(device(report, mac)?.evidence.length, mac).toBeGreaterThan(0);
      for (const v of c.voice) {
        const [server, port] = v.split(':');
        const flows = report.flows.filter((f) => f.server === server && f.serverPort === Number(port));
        expect(flows.length, v).toBeGreaterThan(0);
        for (const f of flows) {
          expect(f.sni, 'the capture holds no SNI for it').toBeNull();
          expect(f.nameSource === 'dns', 'the capture holds no DNS answer for it').toBe(false);
          expect(f.service, v).toBe('voice');
        }
      }
    });
  }

  // a device only ever asked (the Sonos, the server of its controller's TLS; gateways answering DNS) had no
  // address; a box that answers from another MAC than it is sent to (the WiFi Pineapple) must not get the
  // address it was sent to. (The Pineapple's other MAC, answering for a routed address, is no device here:
  // only the devices listed are held to the addresses their MAC sent from.)
  for (const file of ['sonos_local-tls_ndpi.pcapng', 'amazon-echo_alexa-time-query-0_xray.pcap', 'nest_logsink-dns-cname_ndpi.pcap', 'android-alexa-app_jhautry.pcap', 'dns-edns-ecs_ipv6-frag_zeek.pcap']) {
    it(`${file}: each device lists the local addresses its MAC sent from, and none it did not have`, async () => {
      const report = await replayReport(realCapture(file));
      const { sent, receivedFromOutside } = tsharkMacAddresses(realCapture(file));
      const byMac = new Map(report.devices.map((d) => [d.mac, d]));
      let checked = 0;
      for (const [mac, addresses] of sent) {
        if (!byMac.has(mac)) continue;
        for (const ip of addresses) {
          if (!isRfc1918(ip)) continue;
          expect(byMac.get(mac)?.ips ?? [], `${mac} sent from ${ip}`).toContain(ip);
          checked++;
        }
      }
      expect(checked).toBeGreaterThan(0);
      for (const d of report.devices) {
        expect(Number.parseInt(d.mac.slice(0, 2), 16) & 1, `${d.mac} is a group MAC`).toBe(0);
        for (const ip of d.ips) {
          if (ip.includes(':')) continue;
          const own = sent.get(d.mac)?.has(ip) === true || receivedFromOutside.get(d.mac)?.has(ip) === true;
          expect(own, `${d.mac} lists ${ip}: tshark shows it neither sending from it nor receiving at it from outside`).toBe(true);
        }
      }
    });
  }

  it('wikipedia: a multicast group is no device and no client (mDNS and LLMNR to it from hosts outside the local networks)', async () => {
    const file = realCapture('wikipedia_dns-cname-ipv6_zeek.pcap');
    const report = await replayReport(file);
    const groups = [...tsharkMacAddresses(file).receivedFromOutside.keys()].filter((mac) => Number.parseInt(mac.slice(0, 2), 16) & 1);
    expect(groups.length, 'tshark shows frames from outside to a group MAC').toBeGreaterThan(0);
    for (const mac of groups) expect(report.devices.map((d) => d.mac)).not.toContain(mac);
    for (const f of report.flows) if (f.device !== null) expect(Number.parseInt(f.device.slice(0, 2), 16) & 1, f.device).toBe(0);
    // and a group never sends: the senders of those frames are the clients
    const toGroups = report.flows.filter((f) => /^2(2[4-9]|3\d)\./.test(f.server));
    expect(toGroups.length).toBeGreaterThan(0);
    for (const f of report.flows) expect(f.client, `${f.client} -> ${f.server}`).not.toMatch(/^2(2[4-9]|3\d)\.|^ff/i);
  });

  it('names the Echo Dot 2 amazon-0d0fb5957 from its DHCP request', async () => {
    const report = await replayReport(realCapture('amazon-echodot2_boot-under-sslsplit-mitm_jhautry.pcap'));
    expect(device(report, '50:f5:da:23:43:df')).toMatchObject({ name: 'amazon-0d0fb5957', vendor: 'amazon', assistant: true });
  });

  it('tags the voice channel of the Echo in every vcfp-haipeng capture', async () => {
    const labels = JSON.parse(readFileSync(join(VCFP_CAPTURES, 'labels.json'), 'utf8')) as Array<{ file: string; echo_mac: string }>;
    for (const label of labels.slice(0, 5)) {
      const report = await replayReport(join(VCFP_CAPTURES, label.file));
      expect(device(report, label.echo_mac)?.assistant, label.file).toBe(true);
      // the connection that carries the commands: the Echo's largest upload
      const biggest = report.flows.filter((f) => f.device === label.echo_mac).sort((a, b) => b.bytesUp - a.bytesUp)[0];
      expect(biggest.service, `${label.file} ${biggest.server}`).toBe('voice');
    }
  });

  // a connection open before the capture began, or before its client's lookup came through: the name the
  // client looks up for its server while it is open (or just after the server closed it) is its name too
  it('nest_logsink: the Nest\'s connection open before capture is named as the ones after its lookup are', async () => {
    const file = realCapture('nest_logsink-dns-cname_ndpi.pcap');
    const report = await replayReport(file);
    // tshark: the Nest (192.168.242.15) asks for its front end three times, each answer 35.174.82.237
    const asked = tsharkAskedNames(file).get('192.168.242.15|35.174.82.237');
    expect(asked?.size).toBe(1);
    const flows = report.flows.filter((f) => f.server === '35.174.82.237' && f.serverPort === 11095);
    // the first (port 63340) was open when capture began; the server closed it at 1,615 s, the Nest
    // looked the name up 0.2 s later and connected again
    expect(flows.length).toBeGreaterThan(2);
    expect(flows.find((f) => f.clientPort === 63340)).toBeDefined();
    for (const f of flows) expect({ port: f.clientPort, name: f.serverName, source: f.nameSource }).toEqual({ port: f.clientPort, name: [...asked!][0], source: 'dns' });
    expect(new Set(flows.map((f) => `${f.service} ${f.vendor}`)).size).toBe(1);
  });

  it('time-query-0: the Echo\'s connection reset 0.6 s before its lookup is named as its next connection\'s SNI names it', async () => {
    const file = realCapture('amazon-echo_alexa-time-query-0_xray.pcap');
    const report = await replayReport(file);
    const first = report.flows.find((f) => f.server === '92.122.192.195' && f.clientPort === 33277);
    const next = tsharkSnis(file).get('192.168.4.2|33282 92.122.192.195|443');
    expect(next).toBeDefined();
    expect(first).toMatchObject({ serverName: next, nameSource: 'dns' });
  });

  it('wechat: a connection that ended 7 minutes before its client\'s lookup keeps no name; one open through it takes the name', async () => {
    const file = realCapture('wechat_retx-ipv6-sni_ndpi.pcap');
    const report = await replayReport(file);
    const asked = tsharkAskedNames(file).get('192.168.1.103|203.205.151.162');
    expect(asked?.size).toBe(1);
    const byPort = (port: number) => report.flows.find((f) => f.server === '203.205.151.162' && f.clientPort === port);
    // tshark: 54084's FINs at 10:55:47 and 10:55:53, the answer at 11:02:45; 54058 runs to 11:05:07
    expect(byPort(54084)).toMatchObject({ serverName: null, nameSource: null });
    expect(byPort(54058)).toMatchObject({ serverName: [...asked!][0], nameSource: 'dns' });
  });

  for (const file of ['amazon-echo_alexa-time-query-0_xray.pcap', 'amazon-echo_alexa-time-query-1_xray.pcap', 'nest_logsink-dns-cname_ndpi.pcap', 'wechat_retx-ipv6-sni_ndpi.pcap', 'android-alexa-app_jhautry.pcap', 'amazon-echodot2_boot-under-sslsplit-mitm_jhautry.pcap', 'netflix_dns-cname-sni_ndpi.pcap', 'teams_dns-cname-sni_ndpi.pcap', 'sites_tls13-sni-ipv6_ndpi.pcapng']) {
    it(`${file}: server names from SNI and DNS agree with tshark`, async () => {
      const report = await replayReport(realCapture(file));
      const snis = tsharkSnis(realCapture(file));
      const asked = tsharkAskedNames(realCapture(file));
      let bySni = 0;
      let byDns = 0;
      for (const f of report.flows) {
        if (f.nameSource === 'sni' && f.proto === 'tcp') {
          expect(f.serverName).toBe(snis.get(`${f.client}|${f.clientPort} ${f.server}|${f.serverPort}`));
          bySni++;
        } else if (f.nameSource === 'dns') {
          const names = asked.get(`${f.client}|${f.server}`);
          const anyClient = [...asked].filter(([k]) => k.endsWith(`|${f.server}`)).flatMap(([, v]) => [...v]);
          expect(names ? [...names] : anyClient, `${f.client} -> ${f.server}`).toContain(f.serverName);
          byDns++;
        }
      }
      expect(bySni + byDns).toBeGreaterThan(0);
    });
  }

  it('names QUIC flows from their Initial packets, as tshark does', async () => {
    const file = realCapture('sites_tls13-sni-ipv6_ndpi.pcapng');
    const report = await replayReport(file);
    const quic = report.flows.filter((f) => f.proto === 'udp' && f.serverPort === 443 && f.sni !== null);
    const oracle = execFileSync('tshark', ['-r', file, '-Y', 'quic && tls.handshake.type == 1', '-T', 'fields', '-e', 'tls.handshake.extensions_server_name'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] })
      .split('\n').filter(Boolean).sort();
    expect(oracle.length).toBeGreaterThan(0);
    expect(quic.map((f) => f.sni).sort()).toEqual(oracle);
    for (const f of quic) expect(f.nameSource).toBe('sni');
  });
});
