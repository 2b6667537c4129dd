/**
 * IP fragments: ports for every fragment, reassembly (in order, out of order, overlapping, IPv6 with
 * extension headers), the byte budget, the timeout, and the reassembled DNS of the real captures
 * compared with tshark's reassembled frames.
 */
import { describe, expect, it } from 'vitest';
import { readAllRecords } from '../../test/helpers/read-capture-simple.js';
import { describeShared, realCapture } from '../../test/helpers/shared.js';
import {
  dnsResponse, ethernetFrame, ipv4Packet, ipv6Extension, ipv6FragmentHeader, ipv6Packet, tshark, udpDatagram,
} from '../../test/helpers/decode-test-support.js';
import { parseDns } from './dns.js';
import { buildDecoder, IPPROTO_UDP } from './index.js';

const ETHERNET = 1;
const addresses = Array.from({ length: 120 }, (_, i) => `10.0.${i >> 8}.${i & 255}`);
/** A UDP datagram of ~2 KB holding a DNS response: it needs two or three fragments. */
const datagram = udpDatagram(53, 40000, dnsResponse('big.example.com', addresses));

/** Cuts an IP payload into IPv4 fragments of `size` bytes (a multiple of 8). */
function ipv4Fragments(payload: Buffer, size: number, id: number, src = '192.0.2.1', dst = '192.0.2.2'): Buffer[] {
  const fragments: Buffer[] = [];
  for (let at = 0; at < payload.length; at += size) {
    const piece = payload.subarray(at, at + size);
    const more = at + size < payload.length;
    fragments.push(ethernetFrame(0x0800, ipv4Packet(src, dst, IPPROTO_UDP, piece, { id, fragmentOffset: at, moreFragments: more })));
  }
  return fragments;
}

function decodeAll(frames: Buffer[], decoder = buildDecoder(), timeStepMs = 1) {
  return frames.map((frame, i) => {
    const pkt = decoder.decode(frame, 0, frame.length, frame.length, 1000 + i * timeStepMs, ETHERNET);
    if (pkt === null) return null;
    return {
      srcPort: pkt.srcPort, dstPort: pkt.dstPort, proto: pkt.proto, fragment: pkt.fragment,
      payload: Buffer.from(pkt.payloadBuf.subarray(pkt.payloadOffset, pkt.payloadOffset + pkt.payloadLength)),
    };
  });
}

function answersOf(payload: Buffer): string[] {
  const seen: string[] = [];
  expect(parseDns(payload, 0, payload.length, (name, type, data) => { seen.push(`${name} ${type} ${data}`); })).toBe(true);
  return seen;
}

describe('IP fragments', () => {
  it('gives every fragment the ports of the first and the last one the reassembled payload', () => {
    const decoder = buildDecoder();
    const results = decodeAll(ipv4Fragments(datagram, 800, 7), decoder);
    expect(results.map((r) => [r?.srcPort, r?.dstPort, r?.fragment])).toEqual([[53, 40000, true], [53, 40000, true], [53, 40000, true]]);
    expect(results[0]?.payload.length).toBe(0);
    expect(results[2]?.payload.equals(datagram.subarray(8))).toBe(true);
    expect(answersOf(results[2]!.payload)).toHaveLength(addresses.length);
    expect(decoder.stats).toMatchObject({ fragments: 3, fragmentsWithoutFirst: 0, reassemblyEvicted: 0, decodeErrors: 0 });
  });

  it('reassembles out of order; fragments before the first have no ports', () => {
    const decoder = buildDecoder();
    const [first, middle, last] = ipv4Fragments(datagram, 800, 8);
    const results = decodeAll([last, middle, first], decoder);
    expect(results.map((r) => r?.srcPort)).toEqual([-1, -1, 53]);
    expect(results[2]?.payload.equals(datagram.subarray(8))).toBe(true);
    expect(decoder.stats.fragmentsWithoutFirst).toBe(2);
  });

  it('tolerates duplicated and overlapping fragments', () => {
    const fragments = ipv4Fragments(datagram, 800, 9);
    const overlap = ethernetFrame(0x0800, ipv4Packet('192.0.2.1', '192.0.2.2', IPPROTO_UDP, datagram.subarray(400, 1200),
      { id: 9, fragmentOffset: 400, moreFragments: true }));
    const results = decodeAll([fragments[0], fragments[0], overlap, fragments[1], fragments[2], fragments[2]]);
    expect(results.map((r) => r?.srcPort)).toEqual([53, 53, 53, 53, 53, 53]);
    expect(results[4]?.payload.equals(datagram.subarray(8))).toBe(true);
    expect(results[5]?.payload.length).toBe(0); // the datagram was already delivered
  });

  it('keeps datagrams apart by identification and addresses', () => {
    const a = ipv4Fragments(datagram, 800, 10);
    const b = ipv4Fragments(udpDatagram(5353, 5353, dnsResponse('other.local', addresses)), 800, 10, '192.0.2.9');
    const results = decodeAll([a[0], b[0], b[1], a[1], b[2], a[2]]);
    expect(results.map((r) => r?.srcPort)).toEqual([53, 5353, 5353, 53, 5353, 53]);
    expect(answersOf(results[4]!.payload)[0]).toBe('other.local A 10.0.0.0');
    expect(answersOf(results[5]!.payload)[0]).toBe('big.example.com A 10.0.0.0');
  });

  it('reassembles IPv6 fragments with a destination options header inside the fragmentable part', () => {
    const fragmentable = Buffer.concat([ipv6Extension(IPPROTO_UDP), datagram]);
    const frames: Buffer[] = [];
    for (let at = 0; at < fragmentable.length; at += 800) {
      const more = at + 800 < fragmentable.length;
      const body = Buffer.concat([ipv6FragmentHeader(60, at, more, 0xdeadbeef), fragmentable.subarray(at, at + 800)]);
      frames.push(ethernetFrame(0x86dd, ipv6Packet('2001:db8::1', '2001:db8::2', 0, Buffer.concat([ipv6Extension(44), body]))));
    }
    const results = decodeAll(frames);
    expect(results.map((r) => [r?.proto, r?.srcPort])).toEqual([[17, 53], [17, 53], [17, 53]]);
    expect(answersOf(results[2]!.payload)).toHaveLength(addresses.length);
  });

  it('treats an IPv6 atomic fragment as a whole packet', () => {
    const body = Buffer.concat([ipv6FragmentHeader(IPPROTO_UDP, 0, false, 1), udpDatagram(53, 1000, Buffer.from('hi'))]);
    const [result] = decodeAll([ethernetFrame(0x86dd, ipv6Packet('2001:db8::1', '2001:db8::2', 44, body))]);
    expect(result).toMatchObject({ srcPort: 53, dstPort: 1000, fragment: false });
    expect(result?.payload.toString()).toBe('hi');
  });

  it('hands on the captured payload of a snapped first fragment, like tshark', () => {
    const [first] = ipv4Fragments(datagram, 800, 11);
    const decoder = buildDecoder();
    const pkt = decoder.decode(first, 0, 14 + 20 + 300, first.length, 0, ETHERNET);
    expect(pkt).toMatchObject({ srcPort: 53, fragment: true, payloadLength: 300 - 8 });
  });

  it('drops unfinished datagrams after the timeout of packet time', () => {
    const decoder = buildDecoder({ reassemblyTimeoutMs: 30_000 });
    const [first, middle, last] = ipv4Fragments(datagram, 800, 12);
    const results = decodeAll([first, middle, last], decoder, 31_000);
    expect(results.map((r) => r?.srcPort)).toEqual([53, -1, -1]); // each fragment found its entry expired
    expect(results[2]?.payload.length).toBe(0);
    expect(decoder.stats.reassemblyEvicted).toBe(2);
  });

  it('stays within the byte budget, evicting the oldest datagram', () => {
    const decoder = buildDecoder({ maxReassemblyBytes: 8192 });
    const frames: Buffer[] = [];
    for (let id = 0; id < 20; id++) frames.push(ipv4Fragments(datagram, 800, 100 + id)[0]);
    decodeAll(frames, decoder);
    expect(decoder.stats.reassemblyEvicted).toBeGreaterThanOrEqual(16);
    // the newest datagram still completes
    const rest = ipv4Fragments(datagram, 800, 119).slice(1);
    const results = decodeAll(rest, decoder);
    expect(results[1]?.payload.equals(datagram.subarray(8))).toBe(true);
  });

  it('abandons a datagram that would pass 65535 bytes', () => {
    const decoder = buildDecoder();
    const huge = ethernetFrame(0x0800, ipv4Packet('192.0.2.1', '192.0.2.2', IPPROTO_UDP, Buffer.alloc(1000),
      { id: 13, fragmentOffset: 65000, moreFragments: false }));
    expect(decoder.decode(huge, 0, huge.length, huge.length, 0, ETHERNET)?.srcPort).toBe(-1);
  });
});

describeShared('IP fragments in the real captures', () => {
  const files = ['dns_ipv6-fragmented_ndpi.pcap', 'dns-edns-ecs_ipv6-frag_zeek.pcap', 'ipv6-fragmented-dns_zeek.pcap', 'ipv4-fragmented-3_zeek.pcap'];
  it.each(files)('%s: one reassembled DNS message per frame tshark reassembles', async (file) => {
    const out = await tshark(['-r', realCapture(file), '-Y', 'dns && (ip.fragments || ipv6.fragments)', '-T', 'fields', '-e', 'frame.number']);
    const expected = out.split('\n').filter(Boolean).map(Number);
    const decoder = buildDecoder();
    const reassembled: number[] = [];
    readAllRecords(realCapture(file)).forEach((record, i) => {
      const pkt = decoder.decode(record.buf, record.offset, record.capLen, record.wireLen, record.timeMs, record.linkType);
      if (pkt?.fragment && pkt.payloadLength > 0 && parseDns(pkt.payloadBuf, pkt.payloadOffset, pkt.payloadLength, () => {})) {
        reassembled.push(i + 1);
      }
    });
    expect(reassembled).toEqual(expected);
  });
});
