/**
 * Fuzzing (fast-check): random bytes and mutated real packets through decode() for every link type,
 * parseDns and parseClientHelloSni. Never throws; offsets and lengths stay within bounds; and the result
 * does not change when the bytes around the given range change (so nothing is read outside it).
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { readAllRecords } from '../../test/helpers/read-capture-simple.js';
import { haveShared, realCapture } from '../../test/helpers/shared.js';
import { ethernetFrame, ipv4Packet } from '../../test/helpers/decode-test-support.js';
import { parseDns } from './dns.js';
import { FragmentTable } from './fragments.js';
import { NetInfo } from './ip.js';
import { buildDecoder, DecodedPacket, IPPROTO_TCP, IPPROTO_UDP } from './index.js';
import { MAX_CLIENT_HELLO_STREAM_BYTES, parseClientHelloSni } from './tls-sni.js';

const LINK_TYPES = [0, 1, 101, 108, 113, 228, 229, 276];
const RUNS = 2000;

/** Real frames (several link layers) and the DNS messages and ClientHellos they carry. */
function realSamples() {
  const frames: Array<{ bytes: Buffer; linkType: number }> = [];
  const dns: Buffer[] = [];
  const hellos: Buffer[] = [];
  if (!haveShared()) return { frames, dns, hellos };
  const files = ['dns_ipv6-fragmented_ndpi.pcap', 'kakaotalk_linux-sll-dns-cname_ndpi.pcap', 'mixed-vlan-mpls_zeek.pcap',
    'pppoe-over-qinq_tls-retx_zeek.pcap', 'iphone_dns-cname-tls13-ipv6_ndpi.pcap', 'dns-cname_var-services_zeek.pcap'];
  for (const file of files) {
    const decoder = buildDecoder();
    for (const record of readAllRecords(realCapture(file)).slice(0, 120)) {
      const bytes = Buffer.from(record.buf.subarray(record.offset, record.offset + record.capLen));
      frames.push({ bytes, linkType: record.linkType });
      const pkt = decoder.decode(bytes, 0, bytes.length, bytes.length, 0, record.linkType);
      if (!pkt || pkt.payloadLength === 0) continue;
      const payload = Buffer.from(pkt.payloadBuf.subarray(pkt.payloadOffset, pkt.payloadOffset + pkt.payloadLength));
      if (pkt.proto === IPPROTO_UDP && (pkt.srcPort === 53 || pkt.srcPort === 5353)) dns.push(payload);
      if (pkt.proto === IPPROTO_TCP && payload[0] === 0x16 && payload[5] === 1) hellos.push(payload);
    }
  }
  return { frames, dns, hellos };
}

const samples = realSamples();

/** Random bytes, or a real sample with bytes overwritten and its end cut. */
function input(real: Buffer[]): fc.Arbitrary<Buffer> {
  const random = fc.uint8Array({ maxLength: 600 }).map((a) => Buffer.from(a));
  if (real.length === 0) return random;
  const mutated = fc.tuple(
    fc.integer({ min: 0, max: real.length - 1 }),
    fc.array(fc.tuple(fc.nat(), fc.integer({ min: 0, max: 255 })), { maxLength: 6 }),
    fc.nat(),
  ).map(([index, edits, cut]) => {
    const bytes = Buffer.from(real[index]);
    for (const [at, value] of edits) if (bytes.length > 0) bytes[at % bytes.length] = value;
    return bytes.subarray(0, bytes.length - (cut % 4 === 0 ? cut % (bytes.length + 1) : 0));
  });
  return fc.oneof(random, mutated);
}

/** `bytes` placed in a larger buffer between `fill`-valued margins: [buffer, offset]. */
function embed(bytes: Buffer, fill: number): [Buffer, number] {
  const margin = 40;
  const buffer = Buffer.alloc(bytes.length + 2 * margin, fill);
  bytes.copy(buffer, margin);
  return [buffer, margin];
}

function snapshot(pkt: DecodedPacket | null): string {
  if (pkt === null) return 'null';
  const payload = pkt.payloadBuf.subarray(pkt.payloadOffset, pkt.payloadOffset + pkt.payloadLength).toString('hex');
  return JSON.stringify({ ...pkt, payloadBuf: undefined, payloadOffset: undefined, srcAddr: [...pkt.srcAddr], dstAddr: [...pkt.dstAddr], payload });
}

describe('fuzz', () => {
  it('decode() never throws and stays in bounds, for every link type', () => {
    const frames = samples.frames.map((f) => f.bytes);
    fc.assert(fc.property(input(frames), fc.constantFrom(...LINK_TYPES), (bytes, linkType) => {
      const results = [0x00, 0xff].map((fill) => {
        const [buffer, offset] = embed(bytes, fill);
        const pkt = buildDecoder().decode(buffer, offset, bytes.length, bytes.length, 0, linkType);
        if (pkt !== null && pkt.payloadLength > 0) {
          expect(pkt.payloadOffset).toBeGreaterThanOrEqual(pkt.payloadBuf === buffer ? offset : 0);
          const limit = pkt.payloadBuf === buffer ? offset + bytes.length : pkt.payloadBuf.length;
          expect(pkt.payloadOffset + pkt.payloadLength).toBeLessThanOrEqual(limit);
        }
        return snapshot(pkt);
      });
      expect(results[0]).toBe(results[1]);
    }), { numRuns: RUNS });
  });

  it('real frames keep their own link type under mutation', () => {
    if (samples.frames.length === 0) return;
    fc.assert(fc.property(fc.integer({ min: 0, max: samples.frames.length - 1 }), input(samples.frames.map((f) => f.bytes)), (index, bytes) => {
      const decoder = buildDecoder();
      expect(() => decoder.decode(bytes, 0, bytes.length, bytes.length, 0, samples.frames[index].linkType)).not.toThrow();
    }), { numRuns: RUNS });
  });

  it('random fragment streams never throw and keep the reassembly budget', () => {
    const stats = { decodeErrors: 0, nonIp: 0, fragments: 0, fragmentsWithoutFirst: 0, reassemblyEvicted: 0, withoutMac: 0 };
    const fragment = fc.record({
      id: fc.integer({ min: 0, max: 3 }), offset: fc.integer({ min: 0, max: 8191 }), more: fc.boolean(),
      length: fc.integer({ min: 0, max: 1600 }), proto: fc.constantFrom(6, 17, 1), time: fc.integer({ min: 0, max: 100_000 }),
    });
    fc.assert(fc.property(fc.array(fragment, { maxLength: 60 }), (fragments) => {
      const table = new FragmentTable(16_384, 30_000, stats);
      const pkt = new DecodedPacket();
      const net = new NetInfo();
      for (const f of fragments) {
        const ip = ipv4Packet('10.0.0.1', '10.0.0.2', f.proto, Buffer.alloc(f.length, 7), { id: f.id, fragmentOffset: f.offset * 8, moreFragments: f.more });
        const frame = ethernetFrame(0x0800, ip);
        pkt.reset();
        pkt.ipVersion = 4;
        pkt.proto = f.proto;
        Object.assign(net, { transportOffset: 34, end: frame.length, snapped: false, fragment: true, fragmentOffset: f.offset * 8, moreFragments: f.more, fragmentId: f.id, fragmentProto: f.proto, fragmentDataOffset: 34 });
        table.add(frame, pkt, net, f.time);
        expect(table.bufferedBytes).toBeLessThanOrEqual(16_384);
        if (pkt.payloadLength > 0) expect(pkt.payloadOffset + pkt.payloadLength).toBeLessThanOrEqual(pkt.payloadBuf.length);
      }
    }), { numRuns: 500 });
  });

  it('parseDns never throws and reads only its range', () => {
    fc.assert(fc.property(input(samples.dns), fc.boolean(), (bytes, additional) => {
      const results = [0x00, 0xc0].map((fill) => {
        const [buffer, offset] = embed(bytes, fill);
        const seen: string[] = [];
        const ok = parseDns(buffer, offset, bytes.length, (name, type, data, ttl) => {
          expect(typeof name).toBe('string');
          expect(Number.isInteger(ttl) && ttl >= 0).toBe(true);
          seen.push(`${name} ${type} ${data} ${ttl}`);
        }, additional);
        return JSON.stringify([ok, seen]);
      });
      expect(results[0]).toBe(results[1]);
    }), { numRuns: RUNS });
  });

  it('parseClientHelloSni never throws, asks for more than it has, at most 64 KiB', () => {
    fc.assert(fc.property(input(samples.hellos), (bytes) => {
      const results = [0x00, 0x16].map((fill) => {
        const [buffer, offset] = embed(bytes, fill);
        const result = parseClientHelloSni(buffer, offset, bytes.length);
        if (typeof result === 'number') {
          expect(result).toBeGreaterThan(bytes.length);
          expect(result).toBeLessThanOrEqual(MAX_CLIENT_HELLO_STREAM_BYTES);
        }
        return JSON.stringify(result);
      });
      expect(results[0]).toBe(results[1]);
    }), { numRuns: RUNS });
  });
});
