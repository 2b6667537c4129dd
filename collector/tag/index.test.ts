import { describe, expect, it } from 'vitest';
import { IPPROTO_TCP, IPPROTO_UDP } from '../decode/packet.js';
import { createFlow, type Flow } from '../flow/flow.js';
import { buildLocalNets } from '../flow/local-nets.js';
import { DnsAnswer } from '../flow/payload.js';
import { Inventory } from '../identify/inventory.js';
import { buildOuiTable } from '../identify/oui.js';
import { buildCatalog } from './catalog.js';
import { buildTagger, domainOf, portService } from './index.js';
import { buildVendorRanges } from './ip-ranges.js';

describe('domainOf', () => {
  it('is the last two labels, lower case, as splitting the name on dots gives', () => {
    const split = (name: string) => name.toLowerCase().split('.').slice(-2).join('.');
    const names = ['', '.', '..', 'a', 'a.', '.a', 'a.b', 'A.B.C', 'x.y.z.Example.COM', 'a..b', '..b', 'b..', 'foo.bar.', '.foo.bar', 'x.y.', 'avs-alexa-4-na.amazon.com'];
    for (const name of names) expect(domainOf(name), JSON.stringify(name)).toBe(split(name));
  });
});

/** A tagger as the collector builds it (shipped catalogue, vendor ranges and OUI table). */
function tagger() {
  return buildTagger(
    { dnsGraceMs: 900_000, maxDnsEntries: 10_000, voiceMinDurationMs: 60_000, maxPending: 10_000 },
    { catalog: buildCatalog(), ranges: buildVendorRanges(), inventory: new Inventory(buildOuiTable(), { maxDevices: 4096, devices: {} }), localNets: buildLocalNets([]) },
  );
}

const HOME = [0, 0, 0, 0xc0a8010a]; // 192.168.1.10
const OTHER = [0, 0, 0, 0xc0a8010b]; // 192.168.1.11
const MAC = 0x0011_2233_4455;
const OTHER_MAC = 0x0011_2233_4466;
let nextId = 1;

/** A flow of the device at HOME to `server`:443, open before capture began (no SYN), first seen at `timeMs`. */
function flowTo(server: number, timeMs: number, clientPort = 40_000 + nextId): Flow {
  const flow = createFlow(nextId++, IPPROTO_TCP, 4, 0, timeMs, HOME, clientPort, [0, 0, 0, server], 443);
  flow.deviceMac = MAC;
  return flow;
}

function answer(timeMs: number, name: string, address: string, mac = MAC, client = HOME): DnsAnswer {
  return new DnsAnswer(timeMs, name, 'A', address, 60, mac, 4, client);
}

const AMAZON = 0x345ee96d; // 52.94.233.109, in Amazon's published ranges
const NAME = 'device-metrics-us.amazon.com';

describe('portService', () => {
  const T = IPPROTO_TCP;
  const U = IPPROTO_UDP;
  // [what, proto, client port, server port, class]
  const cases: Array<[string, number, number, number, 'network' | 'time' | null]> = [
    ['DNS', U, 51000, 53, 'network'], ['DNS over TCP', T, 51000, 53, 'network'], ['DNS over TLS', T, 51000, 853, 'network'],
    ['mDNS', U, 5353, 5353, 'network'], ['SSDP', U, 51000, 1900, 'network'], ['NetBIOS names', U, 137, 137, 'network'],
    ['NTP', U, 51000, 123, 'time'], ['QUIC', U, 51000, 443, null], ['HTTPS', T, 51000, 443, null],
    // SSDP and NTP are UDP: TCP on those ports is something else
    ['TCP 1900', T, 51000, 1900, null], ['TCP 123', T, 51000, 123, null],
    ['a DHCP request', U, 68, 67, 'network'], ['the DHCP server\'s answer seen first', U, 67, 68, 'network'], ['DHCPv6', U, 547, 546, 'network'],
    // the client's port counts only when the server's is no well-known one
    ['a LAN\'s DNS server answering a resolver outside, seen from its answers', U, 53, 57157, 'network'],
    ['a client on 1900 (old Windows\' ephemeral range) towards QUIC', U, 1900, 443, null], ['67 to 5000', U, 67, 5000, null],
  ];
  for (const [what, proto, clientPort, serverPort, expected] of cases) {
    it(`${what}: ${String(expected)}`, () => {
      expect(portService({ proto, clientPort, serverPort })).toBe(expected);
    });
  }
});

describe('a DNS answer names the open flows of its client that have no name', () => {
  it('names a flow open before capture (a vendor range) as a flow starting after the answer is named; another client\'s answer does not', () => {
    const t = tagger();
    const open = flowTo(AMAZON, 1_000);
    t.onFlowStart(open);
    expect(open.nameSource).toBe('ip-range');
    expect(t.waitingForName).toBe(1);
    t.onDnsAnswer(answer(5_000, NAME, '52.94.233.109', OTHER_MAC, OTHER));
    expect(open.nameSource).toBe('ip-range');
    t.onDnsAnswer(answer(6_000, NAME, '52.94.233.109'));
    const later = flowTo(AMAZON, 6_500);
    t.onFlowStart(later);
    expect(later.nameSource).toBe('dns');
    expect({ serverName: open.serverName, nameSource: open.nameSource, service: open.service, vendor: open.vendor })
      .toEqual({ serverName: NAME, nameSource: 'dns', service: later.service, vendor: later.vendor });
    expect(t.stats.namedByDnsLater).toBe(1);
    expect(t.waitingForName).toBe(0);
  });

  it('a name the catalogue does not know leaves no vendor, as at a flow\'s start: the range\'s vendor only hosts it', () => {
    const t = tagger();
    const open = flowTo(AMAZON, 1_000);
    t.onFlowStart(open);
    expect(open.vendor).toBe('amazon');
    t.onDnsAnswer(answer(2_000, 'incoming.telemetry.mozilla.org', '52.94.233.109'));
    const later = flowTo(AMAZON, 2_500);
    t.onFlowStart(later);
    expect([open.serverName, open.vendor, open.service]).toEqual(['incoming.telemetry.mozilla.org', later.vendor, later.service]);
    expect(open.vendor).toBeNull();
  });

  it('names a connection that closed just before the answer, not one that closed long before', () => {
    const t = tagger();
    const justClosed = flowTo(AMAZON, 1_000);
    const longClosed = flowTo(AMAZON, 1_000);
    t.onFlowStart(justClosed);
    t.onFlowStart(longClosed);
    justClosed.closed = true;
    justClosed.lastMs = 99_500;
    longClosed.closed = true;
    longClosed.lastMs = 20_000;
    t.onDnsAnswer(answer(100_000, NAME, '52.94.233.109'));
    expect(justClosed.serverName).toBe(NAME);
    expect(longClosed.nameSource).toBe('ip-range');
  });

  it('a flow named by its SNI, and one that ended, wait no more: nothing is kept for them', () => {
    const t = tagger();
    const sni = flowTo(0x08080808, 1_000);
    const ended = flowTo(0x08080404, 1_000);
    t.onFlowStart(sni);
    t.onFlowStart(ended);
    expect(t.waitingForName).toBe(2);
    t.onSni(sni, 'dns.google');
    t.onFlowEnd(ended);
    expect(t.waitingForName).toBe(0);
    t.onDnsAnswer(answer(2_000, 'other.example', '8.8.8.8'));
    expect(sni).toMatchObject({ serverName: 'dns.google', nameSource: 'sni' });
  });

  it('a flood of flows to one address and of forged answers for it: at most 4,096 wait, each named once, then forgotten', () => {
    const t = tagger();
    const flows: Flow[] = [];
    for (let i = 0; i < 20_000; i++) {
      const f = flowTo(0x01020304, 1_000, 1024 + (i % 60_000));
      t.onFlowStart(f);
      flows.push(f);
    }
    expect(t.waitingForName).toBe(4096);
    expect(t.stats.waitingDropped).toBe(20_000 - 4096);
    // another device's answers for the address name nothing
    for (let i = 0; i < 500; i++) t.onDnsAnswer(answer(2_000 + i, `forged${i}.example`, '1.2.3.4', OTHER_MAC, OTHER));
    expect(t.stats.namedByDnsLater).toBe(0);
    for (let i = 0; i < 500; i++) t.onDnsAnswer(answer(3_000 + i, `forged${i}.example`, '1.2.3.4'));
    expect(t.stats.namedByDnsLater).toBe(4096);
    expect(new Set(flows.slice(0, 4096).map((f) => f.serverName))).toEqual(new Set(['forged0.example']));
    expect(t.waitingForName).toBe(0);
    for (const f of flows) t.onFlowEnd(f);
    expect(t.waitingForName).toBe(0);
  });

  it('a connection seen from its SYN (or a QUIC Initial) does not wait: its lookup came before it, or not at all', () => {
    const t = tagger();
    const f = flowTo(0x01020304, 1_000);
    f.sawSyn = true;
    t.onFlowStart(f);
    expect(t.waitingForName).toBe(0);
    t.onDnsAnswer(answer(2_000, 'later.example', '1.2.3.4'));
    expect(f.nameSource).toBeNull();
  });
});

describe('the flows waiting for a name', () => {
  it('a flow whose device MAC came after its start is still forgotten at its end', () => {
    const t = tagger();
    const f = flowTo(0x08080808, 1_000);
    f.deviceMac = -1; // its first frame went to a group MAC: no device yet, keyed by its client's address
    t.onFlowStart(f);
    expect(t.waitingForName).toBe(1);
    f.deviceMac = MAC;
    t.onFlowEnd(f);
    expect(t.waitingForName).toBe(0);
  });
});
