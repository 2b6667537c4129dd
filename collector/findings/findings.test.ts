/**
 * Every finding kind on a GENERATED capture (test/helpers/hygiene-capture.ts: no real capture has port
 * mappings, NAT-PMP/PCP, inbound connections, DoT or DoH), one device per kind with negative controls
 * beside them. tshark first says each device's packets are what the capture claims (the oracle); then
 * earshot must raise exactly the expected kind for each device, and nothing for the controls.
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { buildSource } from '../capture/index.js';
import { loadConfig } from '../config.js';
import { buildCollector } from '../index.js';
import { deviceMac, HYGIENE_CONFIG, HYGIENE_DEVICES, writeHygieneCapture } from '../../test/helpers/hygiene-capture.js';
import { tshark } from '../../test/helpers/decode-test-support.js';
import { tempDir } from '../../test/helpers/temp.js';
import type { FindingRecord } from './index.js';
import { cleanText, FindingStore, MAX_EVIDENCE, MAX_TEXT } from './store.js';

const dir = tempDir('earshot-findings-');
const capture = join(dir, 'hygiene.pcap');
const configFile = join(dir, 'earshot.json');

/** What tshark must find for each device (display filters on the generated capture). */
const ORACLE: Record<number, string> = {
  10: 'ssdp && http.request.method == "M-SEARCH" && frame contains "InternetGatewayDevice" || http.request.method == "POST" && http.request.line contains "#AddPortMapping"',
  11: 'nat-pmp.version == 0 && nat-pmp.opcode == 2 && nat-pmp.internal_port == 8080',
  12: 'portcontrol.version == 2 && portcontrol.opcode == 1 && portcontrol.request',
  13: 'tcp.flags.syn == 1 && tcp.flags.ack == 0 && ip.src == 198.51.100.7 && tcp.dstport == 8080',
  15: 'dns.flags.response == 0 && ip.dst == 8.8.8.8',
  16: 'dns.flags.response == 0 && ip.dst == 203.0.113.53',
  17: 'tcp.dstport == 853 && ip.dst == 1.1.1.1',
  18: 'tls.handshake.extensions_server_name == "dns.google"',
  19: 'http.request.method == "GET" && http.host == "example.com"',
  20: 'tls.handshake.type == 1 && tls.handshake.version == 0x0301 && !tls.handshake.extensions.supported_version',
  21: 'smtp.req.command == "EHLO"',
  24: 'dhcp.option.hostname == "android-5f2e9a"',
};

async function run(): Promise<FindingRecord[]> {
  const collector = buildCollector(loadConfig({ file: configFile }));
  await collector.run(buildSource({ kind: 'file', path: capture }, {}));
  return collector.findings.list();
}

describe('network hygiene findings on a generated capture', () => {
  let findings: FindingRecord[] = [];
  beforeAll(async () => {
    writeHygieneCapture(capture);
    writeFileSync(configFile, JSON.stringify(HYGIENE_CONFIG));
    findings = await run();
  });

  it('tshark sees in the capture what each device is meant to do', async () => {
    // the control that starts TLS: tshark sees its STARTTLS (tshark's smtp.req.command keeps 4 letters)
    const filters: Array<[number, string]> = [...Object.entries(ORACLE).map(([n, f]): [number, string] => [Number(n), f]), [22, 'smtp && frame contains "STARTTLS"']];
    const counts = await Promise.all(filters.map(async ([n, filter]) =>
      (await tshark(['-r', capture, '-Y', `eth.addr == ${deviceMac(n)} && (${filter})`])).split('\n').filter((l) => l.trim() !== '').length));
    filters.forEach(([n, filter], i) => expect(counts[i], `device ${n}: ${filter}`).toBeGreaterThan(0));
  });

  it('raises each kind on its device, and nothing for the controls', () => {
    for (const d of HYGIENE_DEVICES) {
      const kinds = findings.filter((f) => f.device === deviceMac(d.n) && f.kind !== 'igd-discovery').map((f) => f.kind);
      expect(kinds, `device ${d.n}: ${d.does}`).toEqual(d.kind === null ? [] : [d.kind]);
    }
    // no finding about a device outside the table
    const known = new Set(HYGIENE_DEVICES.map((d) => deviceMac(d.n)));
    expect(findings.filter((f) => f.device !== null && !known.has(f.device))).toEqual([]);
  });

  it('the IGD search and the NAT-PMP address request are igd-discovery (info)', () => {
    const igd = findings.filter((f) => f.kind === 'igd-discovery');
    expect(igd.map((f) => [f.device, f.subject, f.severity]).sort()).toEqual([[deviceMac(10), 'UPnP IGD', 'info'], [deviceMac(11), 'NAT-PMP', 'info']]);
  });

  it('says what was asked: the ports of each mapping, the remote of the inbound connection', () => {
    const byDevice = (n: number, kind: string) => findings.find((f) => f.device === deviceMac(n) && f.kind === kind)!;
    expect(byDevice(10, 'port-mapping').evidence[0]).toContain('external TCP port 8443 -> 192.168.1.10:8443 "speaker remote"');
    expect(byDevice(11, 'port-mapping').evidence[0]).toBe('NAT-PMP MAP tcp port 8080 -> external 8080, for 7200 s, to 192.168.1.1');
    expect(byDevice(12, 'port-mapping').evidence[0]).toBe('PCP MAP tcp port 22 -> external 2222, for 3600 s, to 192.168.1.1');
    const inbound = byDevice(13, 'inbound-connection');
    expect([inbound.severity, inbound.subject, inbound.evidence[0]]).toEqual(['high', 'tcp/8080', '198.51.100.7:51000 -> 192.168.1.13:8080, answered (1 packets back)']);
    expect(byDevice(15, 'dns-public-resolver').subject).toBe('8.8.8.8');
    expect(byDevice(16, 'dns-bypass').evidence[0]).toBe('UDP DNS to 203.0.113.53:53 while 192.168.1.1 answers DNS on the LAN');
    expect(byDevice(17, 'dns-over-tls').title).toContain('Cloudflare');
    expect(byDevice(18, 'dns-over-https').subject).toBe('dns.google');
    expect(byDevice(19, 'plain-http').evidence[0]).toBe('GET to example.com (93.184.216.34:80)');
    expect(byDevice(20, 'old-tls').evidence[0]).toBe('TLS 1.0 ClientHello to old.example.net:443');
    expect(byDevice(21, 'plaintext-protocol').subject).toBe('SMTP');
  });

  it('advises the assistant that shares its /24 with the phone, naming how the phone was recognised', () => {
    const advice = findings.filter((f) => f.kind === 'assistant-shares-segment');
    expect(advice).toHaveLength(1);
    expect(advice[0]).toMatchObject({ device: deviceMac(23), deviceName: 'Kitchen speaker', assistant: true, severity: 'info', subject: '192.168.1.0/24', count: 1 });
    expect(advice[0].evidence).toEqual([`shares 192.168.1.0/24 with android-5f2e9a (${deviceMac(24)}): DHCP host name android-5f2e9a`]);
  });

  it('lists the most severe first, each with advice and ISO times', () => {
    const ranks = findings.map((f) => ['info', 'low', 'medium', 'high'].indexOf(f.severity));
    expect(ranks).toEqual([...ranks].sort((a, b) => b - a));
    for (const f of findings) {
      expect(f.advice.length).toBeGreaterThan(40);
      expect(f.firstSeen).toMatch(/^2024-05-01T10:00:0\d\.\d{3}Z$/);
    }
  });

  it('calls onFinding once per new finding (isNew)', async () => {
    const seen: Array<[string, boolean]> = [];
    const collector = buildCollector(loadConfig({ file: configFile }), { onFinding: (f, isNew) => seen.push([f.id, isNew]) });
    await collector.run(buildSource({ kind: 'file', path: capture }, {}));
    // the segment advice is worked out when findings are listed (and daily): listing raises it
    const listed = collector.findings.list();
    expect(seen.filter(([, isNew]) => isNew).map(([id]) => id).sort()).toEqual(listed.map((f) => f.id).sort());
  });
});

describe('the findings store is bounded', () => {
  it('keeps at most `max` findings and counts the new ones it drops', () => {
    const store = new FindingStore(undefined, 3);
    const sight = (subject: string) => store.add({ kind: 'plain-http', severity: 'low', deviceMac: 1, subject, timeMs: 0, title: 't', advice: 'a', evidence: subject });
    for (let i = 0; i < 5; i++) sight(`s${i}`);
    sight('s0');
    expect([store.all().length, store.stats.findingsDropped, store.all()[0].count]).toEqual([3, 2, 2]);
  });

  it('keeps MAX_EVIDENCE distinct lines, counts the rest, and cleans what packets wrote', () => {
    const store = new FindingStore();
    for (let i = 0; i < MAX_EVIDENCE + 5; i++) {
      store.add({ kind: 'plain-http', severity: 'low', deviceMac: 1, subject: '', timeMs: i, title: 't', advice: 'a', evidence: `GET to host\x1b[2J${i}.example ${'x'.repeat(500)}` });
    }
    const [f] = store.all();
    expect([f.evidence.length, f.evidenceDropped, f.count]).toEqual([MAX_EVIDENCE, 5, MAX_EVIDENCE + 5]);
    expect(f.evidence[0].length).toBe(MAX_TEXT);
    expect(f.evidence[0]).not.toContain('\x1b');
    expect(cleanText('a\u202eb\r\nc')).toBe('a?b??c');
  });
});
