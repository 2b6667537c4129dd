import { execFileSync } from 'node:child_process';
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { EARSHOT_BIN } from '../../test/helpers/cli.js';
import { describeShared, SHARED } from '../../test/helpers/shared.js';
import type { Report } from '../sink/report.js';
import { DecodedPacket, IPPROTO_TCP, IPPROTO_UDP, TCP_ACK, TCP_SYN } from '../decode/packet.js';
import type { Flow } from './flow.js';
import { buildLocalNets, parseAddr } from './local-nets.js';
import { FlowTable, MAX_UNSPECIFIED_FLOWS, SHARED_KEY_MAC } from './table.js';

const LAN_MAC = 0x68dbf5901964;
const GW_MAC = 0x001122334455;

function packet(t: number, src: string, sport: number, dst: string, dport: number, opts: { proto?: number; flags?: number; len?: number; srcMac?: number; dstMac?: number } = {}): DecodedPacket {
  const p = new DecodedPacket();
  const s = parseAddr(src)!;
  const d = parseAddr(dst)!;
  p.timeMs = t;
  p.wireLen = opts.len ?? 100;
  p.ipVersion = s.version;
  p.srcAddr.set(s.words);
  p.dstAddr.set(d.words);
  p.proto = opts.proto ?? IPPROTO_TCP;
  p.srcPort = sport;
  p.dstPort = dport;
  p.tcpFlags = opts.flags ?? TCP_ACK;
  p.srcMac = opts.srcMac ?? -1;
  p.dstMac = opts.dstMac ?? -1;
  return p;
}

function table(options: Partial<{ maxFlows: number; tcpIdleTimeoutMs: number; udpIdleTimeoutMs: number }> = {}, localNets: string[] = []) {
  const ended: Array<[Flow, string]> = [];
  const t = new FlowTable({ maxFlows: 1000, tcpIdleTimeoutMs: 60_000, udpIdleTimeoutMs: 30_000, ...options }, buildLocalNets(localNets), (f, why) => ended.push([f, why]));
  return { t, ended };
}

describe('flow table', () => {
  it('the SYN sender is the client, even when it is the remote side', () => {
    const { t } = table();
    const f = t.account(packet(0, '52.94.233.109', 443, '192.168.1.5', 40000, { flags: TCP_SYN | TCP_ACK }));
    expect(t.up).toBe(false);
    expect(f.clientPort).toBe(40000);
    const g = t.account(packet(1, '198.51.100.7', 5555, '192.168.1.5', 22, { flags: TCP_SYN }));
    expect(g.clientPort).toBe(5555);
    expect(g.deviceIsClient).toBe(false);
  });

  it('DHCP from 0.0.0.0: a flow per sending MAC, each counted to its own device; without a MAC (no Ethernet) one flow', () => {
    const { t } = table({ maxFlows: 100_000 });
    const discover = (mac: number, time = 0) => t.account(packet(time, '0.0.0.0', 68, '255.255.255.255', 67, { proto: IPPROTO_UDP, srcMac: mac, dstMac: 0xffffffffffff }));
    const a = discover(LAN_MAC);
    const b = discover(GW_MAC, 1);
    expect(b).not.toBe(a);
    expect(discover(LAN_MAC, 2)).toBe(a);
    expect([a.deviceMac, a.packetsUp, b.deviceMac, b.packetsUp]).toEqual([LAN_MAC, 2, GW_MAC, 1]);
    expect(discover(-1, 3)).toBe(discover(-1, 4));
    // a flood of forged MACs: a flow each while few are open, then one shared flow (spread over the
    // buckets by the MAC meanwhile: not one chain that every packet of the flood walks)
    const hashes = new Set<number>();
    const flows = new Set<Flow>();
    for (let i = 0; i < 20_000; i++) {
      const f = discover(0x020000000000 + i, 5);
      hashes.add(f.hash & 0xffff);
      flows.add(f);
    }
    expect(flows.size).toBe(MAX_UNSPECIFIED_FLOWS - 3 + 1);
    expect(hashes.size).toBeGreaterThan(flows.size - 8);
    const shared = discover(0x02000000ffff, 6);
    expect([shared.keyMac, shared.packetsUp]).toEqual([SHARED_KEY_MAC, 20_000 - (MAX_UNSPECIFIED_FLOWS - 3) + 1]);
    // a device that had its own flow keeps it
    expect(discover(LAN_MAC, 7)).toBe(a);
    // once they end (idle), a new sender has its own flow again
    t.expire(7 + 30_001);
    const late = discover(0x0300000000aa, 40_000);
    expect([late.keyMac, late.packetsUp]).toEqual([0x0300000000aa, 1]);
    // and the address's other flows are unaffected: an assigned client's DHCP is keyed as ever
    const renew = t.account(packet(40_001, '192.168.1.5', 68, '192.168.1.1', 67, { proto: IPPROTO_UDP, srcMac: LAN_MAC }));
    expect(t.account(packet(40_002, '192.168.1.5', 68, '192.168.1.1', 67, { proto: IPPROTO_UDP, srcMac: GW_MAC }))).toBe(renew);
  });

  it('QUIC: a long-header first packet (Initial) is a start seen; a short-header one was open before capture (RFC 9000 17.2)', () => {
    const { t } = table();
    const quic = (first: number, sport: number) => {
      const p = packet(0, '192.168.1.5', sport, '142.251.32.68', 443, { proto: IPPROTO_UDP });
      p.payloadBuf = Buffer.from([first, 0, 0, 0, 1]);
      p.payloadOffset = 0;
      p.payloadLength = 5;
      return t.account(p);
    };
    expect(quic(0xc3, 50001).sawSyn).toBe(true);
    expect(quic(0x43, 50002).sawSyn).toBe(false);
    // not QUIC's port: no claim either way
    const other = packet(0, '192.168.1.5', 50003, '142.251.32.68', 3478, { proto: IPPROTO_UDP });
    other.payloadBuf = Buffer.from([0xc3]);
    other.payloadLength = 1;
    expect(t.account(other).sawSyn).toBe(false);
  });

  it('a flow open before capture: the local side is the client; counters per direction', () => {
    const { t } = table();
    const down = packet(0, '52.94.233.109', 443, '192.168.12.112', 51000, { len: 1500, srcMac: GW_MAC, dstMac: LAN_MAC });
    const f = t.account(down);
    expect(t.up).toBe(false);
    expect(f.deviceMac).toBe(LAN_MAC);
    t.account(packet(1, '192.168.12.112', 51000, '52.94.233.109', 443, { len: 66, srcMac: LAN_MAC, dstMac: GW_MAC }));
    expect(t.up).toBe(true);
    expect([f.packetsUp, f.bytesUp, f.packetsDown, f.bytesDown]).toEqual([1, 66, 1, 1500]);
  });

  it('between two local hosts, the well-known port is the server; localNets extends the local ranges', () => {
    const { t } = table();
    const f = t.account(packet(0, '192.168.1.70', 443, '192.168.1.29', 50000, { proto: IPPROTO_UDP }));
    expect(f.serverPort).toBe(443);
    const { t: t2 } = table({}, ['203.0.113.0/24']);
    const g = t2.account(packet(0, '8.8.8.8', 53, '203.0.113.9', 3333, { proto: IPPROTO_UDP }));
    expect(g.clientPort).toBe(3333);
    expect(g.hasLocal).toBe(true);
  });

  it('between two local hosts, then the ephemeral port is the client: a Cast session seen first from the speaker\'s 8009', () => {
    const { t } = table();
    // the Nest Mini's side of a Cast control connection opened before the capture (CIC IoT 2022's nestmini VOICE captures)
    const f = t.account(packet(0, '192.168.137.162', 8009, '192.168.137.1', 63548));
    expect([f.serverPort, f.clientPort]).toEqual([8009, 63548]);
    expect(t.up).toBe(false);
    // both in the ephemeral range: the first sender stays the client
    const g = t.account(packet(0, '192.168.12.114', 54047, '192.168.12.112', 45000));
    expect(g.clientPort).toBe(54047);
    // except the Echo-to-Echo protocol's TCP 55443, the Echos' listening port (echodot3_activation: a
    // SYN from .115 to .112:55443; .113's side of a connection to .112 seen first from .113)
    const h = t.account(packet(0, '192.168.12.113', 55443, '192.168.12.112', 48986));
    expect([h.serverPort, h.clientPort, t.up]).toEqual([55443, 48986, false]);
    const u = t.account(packet(0, '192.168.12.112', 55444, '192.168.12.115', 55444, { proto: IPPROTO_UDP }));
    expect([u.c3 >>> 0, t.up]).toEqual([0xc0a80c70, true]);
  });

  it('a group address is never the client: multicast and broadcast from outside the local networks, and from inside', () => {
    const { t } = table();
    // mDNS from a host outside the local networks (the wikipedia capture's 141.142.220.0/24)
    const f = t.account(packet(0, '141.142.220.202', 5353, '224.0.0.251', 5353, { proto: IPPROTO_UDP, srcMac: 0x001f5bfe5f05, dstMac: 0x01005e0000fb }));
    expect([f.c3 >>> 0, f.s3 >>> 0, t.up]).toEqual([0x8d8edcca, 0xe00000fb, true]);
    expect(f.deviceMac).toBe(-1);
    const g = t.account(packet(0, '8.8.4.4', 3000, '255.255.255.255', 3000, { proto: IPPROTO_UDP, dstMac: 0xffffffffffff }));
    expect([g.c3 >>> 0, t.up]).toEqual([0x08080404, true]);
    expect(g.deviceMac).toBe(-1);
    const v6 = t.account(packet(0, '2001:db8::1', 5353, 'ff02::fb', 5353, { proto: IPPROTO_UDP, dstMac: 0x3333000000fb }));
    expect(t.up).toBe(true);
    expect(v6.deviceMac).toBe(-1);
    // from a local host: the host is the client and the device, as before
    const h = t.account(packet(0, '192.168.1.29', 5353, '224.0.0.251', 5353, { proto: IPPROTO_UDP, srcMac: LAN_MAC, dstMac: 0x01005e0000fb }));
    expect([t.up, h.deviceMac]).toEqual([true, LAN_MAC]);
  });

  describeShared('on the capture it was found on', () => {
    it('the Nest Mini (the sender of its MAC\'s frames, by tshark) is the server of its Cast port 8009 in every nestmini capture', async () => {
      const dir = join(SHARED, 'captures', 'cic-iot-2022-rebuilt', 'nestmini');
      let seen = 0;
      for (const name of readdirSync(dir).filter((n) => n.endsWith('.pcap'))) {
        const path = join(dir, name);
        const nest = new Set(execFileSync('tshark', ['-r', path, '-Y', 'eth.src == cc:f4:11:9c:d0:00 && ip', '-T', 'fields', '-e', 'ip.src'], { encoding: 'utf8' }).split('\n').filter(Boolean));
        const report = JSON.parse(execFileSync(process.execPath, [EARSHOT_BIN, 'replay', path, '--format', 'json'], { encoding: 'utf8' })) as Report;
        for (const f of report.flows.filter((x) => x.proto === 'tcp' && (x.serverPort === 8009 || x.clientPort === 8009))) {
          expect([f.server, f.serverPort], name).toEqual([[...nest][0], 8009]);
          seen++;
        }
      }
      expect(seen).toBeGreaterThan(3);
    }, 120_000);
  });

  it('flows with no local endpoint belong to no device', () => {
    const { t } = table();
    const f = t.account(packet(0, '8.8.8.8', 53, '1.1.1.1', 3333, { proto: IPPROTO_UDP, srcMac: GW_MAC, dstMac: LAN_MAC }));
    expect(f.hasLocal).toBe(false);
    expect(f.deviceMac).toBe(-1);
  });

  it('keeps IPv4 and IPv6 flows apart, and the same ports on other addresses apart', () => {
    const { t } = table();
    const a = t.account(packet(0, '192.168.1.5', 1000, '10.0.0.1', 80));
    const b = t.account(packet(0, 'fd00::5', 1000, 'fd00::1', 80));
    const c = t.account(packet(0, '192.168.1.6', 1000, '10.0.0.1', 80));
    expect(new Set([a, b, c]).size).toBe(3);
    expect(t.stats.active).toBe(3);
  });

  it('expires idle flows by protocol timeout on the clock, oldest first', () => {
    const { t, ended } = table();
    t.account(packet(0, '192.168.1.5', 1000, '10.0.0.1', 80));
    t.account(packet(0, '192.168.1.5', 1001, '10.0.0.1', 53, { proto: IPPROTO_UDP }));
    t.expire(30_000);
    expect(ended.map(([f, why]) => [f.serverPort, why])).toEqual([[53, 'idle']]);
    t.expire(59_999);
    expect(ended.length).toBe(1);
    t.expire(60_000);
    expect(ended.map(([f]) => f.serverPort)).toEqual([53, 80]);
    expect(t.stats).toMatchObject({ active: 0, expired: 2 });
    // the same 5-tuple later is a new flow
    const again = t.account(packet(70_000, '192.168.1.5', 1000, '10.0.0.1', 80));
    expect(again.packetsUp).toBe(1);
  });

  it('evicts the least recently active flow when full, and counts it', () => {
    const { t, ended } = table({ maxFlows: 2 });
    const a = t.account(packet(0, '192.168.1.5', 1, '10.0.0.1', 80));
    t.account(packet(1, '192.168.1.5', 2, '10.0.0.1', 80));
    t.account(packet(2, '192.168.1.5', 1, '10.0.0.1', 80)); // a is now the most recent
    t.account(packet(3, '192.168.1.5', 3, '10.0.0.1', 80));
    expect(ended.map(([f, why]) => [f.clientPort, why])).toEqual([[2, 'evicted']]);
    expect(t.stats.evicted).toBe(1);
    expect(t.activeFlows()).toContain(a);
    t.flush();
    expect(t.stats.active).toBe(0);
    expect(ended.length).toBe(3);
  });

  it('finds flows whose hashes collide in one bucket and unlinks them correctly', () => {
    const { t } = table({ maxFlows: 100000 });
    const flows: Flow[] = [];
    for (let i = 0; i < 20000; i++) flows.push(t.account(packet(i, '10.1.0.1', 1024 + (i % 60000), `10.2.${(i >> 8) & 255}.${i & 255}`, 443)));
    for (let i = 0; i < 20000; i++) expect(t.account(packet(20000 + i, `10.2.${(i >> 8) & 255}.${i & 255}`, 443, '10.1.0.1', 1024 + (i % 60000)))).toBe(flows[i]);
    t.expire(20000 + 60_000 + 10000);
    expect(t.stats.active).toBe(20000 - 10001);
    for (let i = 10001; i < 20000; i++) expect(t.account(packet(90000, '10.1.0.1', 1024 + (i % 60000), `10.2.${(i >> 8) & 255}.${i & 255}`, 443))).toBe(flows[i]);
  });

  it('grows its buckets as flows open, keeping every flow findable in both directions (IPv4 and IPv6)', () => {
    const { t, ended } = table({ maxFlows: 100_000 });
    const flows: Flow[] = [];
    for (let i = 0; i < 12000; i++) {
      // every address above 128.0.0.0 too: flows keep address words signed
      const server = i % 2 === 0 ? `203.0.${(i >> 8) & 255}.${i & 255}` : `2001:db8::${i.toString(16)}`;
      const client = i % 2 === 0 ? '192.168.1.5' : 'fd00::5';
      flows.push(t.account(packet(i, client, 1024 + i, server, 443, { flags: TCP_SYN })));
    }
    expect(t.stats.active).toBe(12000);
    expect(new Set(flows).size).toBe(12000);
    for (let i = 0; i < 12000; i += 7) {
      const server = i % 2 === 0 ? `203.0.${(i >> 8) & 255}.${i & 255}` : `2001:db8::${i.toString(16)}`;
      const client = i % 2 === 0 ? '192.168.1.5' : 'fd00::5';
      expect(t.account(packet(20000, server, 443, client, 1024 + i))).toBe(flows[i]);
      expect(t.up).toBe(false);
      expect(t.account(packet(20000, client, 1024 + i, server, 443))).toBe(flows[i]);
      expect(t.up).toBe(true);
    }
    expect(flows[2].serverWords()).toEqual([0, 0, 0, 0xcb000002]);
    t.flush();
    expect(ended.length).toBe(12000);
    expect(t.stats.active).toBe(0);
  });
});
