/**
 * Decoder edge cases that the real captures do not show: damaged and truncated headers, non-IP frames,
 * IPv6 extension header chains, link-layer variants, and the reuse of the one DecodedPacket.
 */
import { describe, expect, it } from 'vitest';
import { readAllRecords } from '../../test/helpers/read-capture-simple.js';
import { describeShared, realCapture } from '../../test/helpers/shared.js';
import {
  ethernetFrame, ipv4Packet, ipv6Extension, ipv6Packet, tcpSegment, udpDatagram,
} from '../../test/helpers/decode-test-support.js';
import { buildDecoder, DecodedPacket, formatAddr, formatMac, IPPROTO_TCP, IPPROTO_UDP } from './index.js';
import { TCP_ACK, TCP_SYN } from './packet.js';

const ETHERNET = 1;
const tcp = tcpSegment(443, 50000, 0xfffffff0, TCP_SYN | TCP_ACK, Buffer.from('hello'), 12);
const tcpFrame = ethernetFrame(0x0800, ipv4Packet('192.0.2.1', '198.51.100.7', IPPROTO_TCP, tcp));

function decodeOne(frame: Buffer, linkType = ETHERNET, capLen = frame.length) {
  const decoder = buildDecoder();
  const pkt = decoder.decode(frame, 0, capLen, frame.length, 5, linkType);
  return { pkt, stats: decoder.stats };
}

function expectDamaged(frame: Buffer, linkType = ETHERNET, capLen = frame.length): void {
  const { pkt, stats } = decodeOne(frame, linkType, capLen);
  expect(pkt).toBeNull();
  expect(stats.decodeErrors).toBe(1);
}

describe('decoder', () => {
  it('decodes Ethernet / IPv4 with options / TCP', () => {
    const withOptions = ethernetFrame(0x0800, ipv4Packet('192.0.2.1', '198.51.100.7', IPPROTO_TCP, tcp, { optionsLength: 8 }));
    const { pkt } = decodeOne(withOptions);
    expect(pkt).not.toBeNull();
    expect(formatAddr(4, pkt!.srcAddr)).toBe('192.0.2.1');
    expect(formatAddr(4, pkt!.dstAddr)).toBe('198.51.100.7');
    expect(formatMac(pkt!.srcMac)).toBe('02:00:00:00:00:02');
    expect(pkt).toMatchObject({ ipVersion: 4, proto: 6, srcPort: 443, dstPort: 50000, tcpFlags: 0x12, tcpSeq: 0xfffffff0, wireLen: withOptions.length, timeMs: 5 });
    expect(pkt!.payloadBuf.toString('utf8', pkt!.payloadOffset, pkt!.payloadOffset + pkt!.payloadLength)).toBe('hello');
  });

  it('bounds the UDP payload by the UDP length (Ethernet padding)', () => {
    const padded = Buffer.concat([ethernetFrame(0x0800, ipv4Packet('192.0.2.1', '192.0.2.2', IPPROTO_UDP, udpDatagram(53, 53, Buffer.from('ab')))), Buffer.alloc(20)]);
    expect(decodeOne(padded).pkt?.payloadLength).toBe(2);
  });

  it('counts non-IP frames (ARP, 802.3 LLC, PPPoE discovery, PPP LCP, MPLS pseudowire) and keeps their MACs', () => {
    const frames = [
      ethernetFrame(0x0806, Buffer.alloc(28)),
      ethernetFrame(38, Buffer.from([0x42, 0x42, 0x03, ...Buffer.alloc(35)])),
      ethernetFrame(0x8863, Buffer.alloc(20)),
      ethernetFrame(0x8864, Buffer.from([0x11, 0, 0, 1, 0, 6, 0xc0, 0x21, 1, 1, 0, 4])),
      ethernetFrame(0x8847, Buffer.from([0, 0, 0x11, 0xff, 0, 0, 0, 0, ...Buffer.alloc(20)])),
    ];
    for (const frame of frames) {
      const { pkt, stats } = decodeOne(frame);
      expect(pkt).toMatchObject({ ipVersion: 0, proto: -1, srcPort: -1, payloadLength: 0 });
      expect(formatMac(pkt!.dstMac)).toBe('02:00:00:00:00:01');
      expect(stats).toMatchObject({ nonIp: 1, decodeErrors: 0 });
    }
  });

  it('rejects damaged and truncated headers', () => {
    const ip = tcpFrame.subarray(14);
    const damaged = (mutate: (copy: Buffer) => void) => { const copy = Buffer.from(tcpFrame); mutate(copy); return copy; };
    expectDamaged(tcpFrame, ETHERNET, 13); // Ethernet header cut
    expectDamaged(tcpFrame, ETHERNET, 14 + 19); // IPv4 header cut
    expectDamaged(tcpFrame, ETHERNET, 14 + 20 + 31); // TCP header (with options) cut
    expectDamaged(damaged((c) => { c[14] = 0x44; })); // IHL 4
    expectDamaged(damaged((c) => { c[14] = 0x65; })); // version 6 under EtherType IPv4
    expectDamaged(damaged((c) => { c.writeUInt16BE(19, 16); })); // total length < header
    expectDamaged(damaged((c) => { c[14 + 20 + 12] = 0x40; })); // TCP data offset 4
    expectDamaged(ip, 101, 10); // raw IP cut
    expectDamaged(Buffer.from([0x50, ...ip.subarray(1)]), 101); // raw, version 5
    expectDamaged(tcpFrame, 147); // a link type we do not know
    expectDamaged(Buffer.concat([ethernetFrame(0x8100, Buffer.from([0, 1]))])); // VLAN tag cut
    const decoder = buildDecoder();
    expect(decoder.decode(tcpFrame, 10, tcpFrame.length, tcpFrame.length, 0, ETHERNET)).toBeNull(); // beyond buf
    expect(decoder.decode(tcpFrame, -1, 10, 10, 0, ETHERNET)).toBeNull();
  });

  it('walks IPv6 extension headers and stops at ESP and no-next-header', () => {
    const ah = Buffer.alloc(16);
    ah[0] = IPPROTO_TCP;
    ah[1] = 2; // (2 + 2) * 4 = 16 bytes
    const chain = Buffer.concat([ipv6Extension(43, 1), ipv6Extension(60), ipv6Extension(51), ah, tcp]);
    chain[0] = 43; // hop-by-hop -> routing (43) -> destination options (60) -> AH (51) -> TCP
    const { pkt } = decodeOne(ethernetFrame(0x86dd, ipv6Packet('2001:db8::1', 'fe80::2', 0, chain)));
    expect(pkt).toMatchObject({ ipVersion: 6, proto: 6, srcPort: 443, dstPort: 50000 });
    expect(formatAddr(6, pkt!.srcAddr)).toBe('2001:db8::1');
    for (const stop of [50, 59]) {
      const body = Buffer.concat([ipv6Extension(stop), Buffer.alloc(24)]);
      expect(decodeOne(ethernetFrame(0x86dd, ipv6Packet('::1', '::2', 0, body))).pkt).toMatchObject({ proto: stop, srcPort: -1 });
    }
    const overrun = ipv6Extension(IPPROTO_TCP, 3); // claims 32 bytes, only 8 sent
    expectDamaged(ethernetFrame(0x86dd, ipv6Packet('::1', '::2', 0, overrun.subarray(0, 8))));
  });

  it('reads the address family of NULL in either byte order, and of LOOP', () => {
    const ip = tcpFrame.subarray(14);
    const family = (value: number, littleEndian: boolean) => {
      const b = Buffer.alloc(4);
      if (littleEndian) b.writeUInt32LE(value); else b.writeUInt32BE(value);
      return b;
    };
    expect(decodeOne(Buffer.concat([family(2, true), ip]), 0).pkt?.srcPort).toBe(443);
    expect(decodeOne(Buffer.concat([family(2, false), ip]), 0).pkt?.srcPort).toBe(443);
    expect(decodeOne(Buffer.concat([family(2, false), ip]), 108).pkt?.srcPort).toBe(443);
    expect(decodeOne(Buffer.concat([family(7, false), ip]), 108).pkt?.ipVersion).toBe(0);
  });

  it('takes the SLL source MAC only when the address is 6 bytes long', () => {
    const sll = Buffer.alloc(16);
    sll.writeUInt16BE(1, 2);
    sll.writeUInt16BE(4, 4); // a 4-byte address (IP-over-something)
    sll.writeUInt16BE(0x0800, 14);
    const { pkt } = decodeOne(Buffer.concat([sll, tcpFrame.subarray(14)]), 113);
    expect(pkt).toMatchObject({ srcMac: -1, dstMac: -1, srcPort: 443 });
  });

  it('resets every field between packets', () => {
    const decoder = buildDecoder();
    decoder.decode(tcpFrame, 0, tcpFrame.length, tcpFrame.length, 1, ETHERNET);
    const arp = ethernetFrame(0x0806, Buffer.alloc(28));
    const pkt = decoder.decode(arp, 0, arp.length, arp.length, 2, ETHERNET)!;
    const fresh = new DecodedPacket();
    fresh.srcMac = pkt.srcMac;
    fresh.dstMac = pkt.dstMac;
    fresh.timeMs = 2;
    fresh.wireLen = arp.length;
    expect(pkt).toEqual(fresh);
  });
});

describeShared('decoder on snapped packets', () => {
  it('rejects a packet cut inside its headers and counts only captured payload bytes otherwise', () => {
    const records = readAllRecords(realCapture('iphone_dns-cname-tls13-ipv6_ndpi.pcap')).slice(0, 150);
    let checked = 0;
    for (const record of records) {
      const decoder = buildDecoder();
      const full = decoder.decode(record.buf, record.offset, record.capLen, record.wireLen, 0, record.linkType);
      if (full === null || full.fragment || (full.proto !== IPPROTO_TCP && full.proto !== IPPROTO_UDP)) continue;
      const headerEnd = full.payloadOffset - record.offset;
      const payloadEnd = headerEnd + full.payloadLength;
      const ports = [full.srcPort, full.dstPort];
      for (let cut = 0; cut <= record.capLen; cut++) {
        const pkt = decoder.decode(record.buf, record.offset, cut, record.wireLen, 0, record.linkType);
        if (cut < headerEnd) { expect(pkt).toBeNull(); continue; }
        expect([pkt?.srcPort, pkt?.dstPort]).toEqual(ports);
        expect(pkt?.payloadLength).toBe(Math.min(cut, payloadEnd) - headerEnd);
      }
      checked++;
    }
    expect(checked).toBeGreaterThan(100);
  });
});
