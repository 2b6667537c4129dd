/**
 * Golden tests of the payload parsers on every real capture, against tshark:
 * - DNS: the multiset of (name, type, data, ttl) of A/AAAA/CNAME records equals tshark's (reassembly
 *   on, so DNS in fragmented datagrams counts): answer sections, plus additional sections for mDNS.
 *   DNS quoted inside ICMP errors is left out (we do not parse ICMP payloads).
 * - SNI: per TCP connection, the server name of the first ClientHello equals tshark's.
 * The packets go through buildDecoder(); TCP streams are put in order by a small test-only assembler,
 * the way the flow stage will.
 */
import { readdirSync } from 'node:fs';
import { expect, it } from 'vitest';
import { readAllRecords } from '../../test/helpers/read-capture-simple.js';
import { describeShared, haveShared, REAL_CAPTURES, realCapture } from '../../test/helpers/shared.js';
import { flowKey, tsharkClientHellos, tsharkDnsRecords } from '../../test/helpers/decode-test-support.js';
import { parseDns, parseDnsOverTcp } from './dns.js';
import { buildDecoder, formatAddr, IPPROTO_TCP, IPPROTO_UDP, type DecodedPacket } from './index.js';
import { TCP_SYN } from './packet.js';
import { parseClientHelloSni } from './tls-sni.js';

const DNS_PORTS = new Set([53, 5353, 5355]);
const MDNS_PORT = 5353;

/** One direction of a TCP connection, put in sequence order (test-only; retransmissions dropped). */
class TestStream {
  next = -1;
  data = Buffer.alloc(0);
  private readonly pending = new Map<number, Buffer>();

  /** Adds a segment; returns the bytes that became contiguous (possibly none). */
  push(seq: number, flags: number, payload: Buffer): Buffer {
    if (flags & TCP_SYN) { this.next = (seq + 1) >>> 0; return Buffer.alloc(0); }
    if (payload.length === 0) return Buffer.alloc(0);
    if (this.next < 0) this.next = seq;
    const added: Buffer[] = [];
    this.pending.set(seq, Buffer.from(payload));
    for (let progress = true; progress; ) {
      progress = false;
      for (const [at, bytes] of this.pending) {
        const ahead = (at - this.next) | 0;
        if (ahead > 0) continue;
        this.pending.delete(at);
        progress = true;
        if (-ahead >= bytes.length) continue;
        const fresh = bytes.subarray(-ahead);
        added.push(fresh);
        this.next = (this.next + fresh.length) >>> 0;
      }
    }
    return Buffer.concat(added);
  }
}

function addressKey(pkt: DecodedPacket): string {
  return flowKey(formatAddr(pkt.ipVersion, pkt.srcAddr), pkt.srcPort, formatAddr(pkt.ipVersion, pkt.dstAddr), pkt.dstPort);
}

type Row = [string, string, string, number];

/**
 * Runs a capture through the decoder and the parsers like the flow stage will; additional-section
 * records are taken for mDNS only, or for every message when allAdditional.
 */
function parseCapture(path: string, allAdditional: boolean): { dns: Row[]; serverNames: Map<string, string | null> } {
  const decoder = buildDecoder();
  const dns: Row[] = [];
  const onAnswer = (name: string, type: string, data: string, ttl: number) => { dns.push([name, type, data, ttl]); };
  const dnsStreams = new Map<string, { stream: TestStream; buffered: Buffer }>();
  const tlsStreams = new Map<string, { stream: TestStream; buffered: Buffer | null }>();
  const serverNames = new Map<string, string | null>();
  for (const record of readAllRecords(path)) {
    const pkt = decoder.decode(record.buf, record.offset, record.capLen, record.wireLen, record.timeMs, record.linkType);
    if (pkt === null || pkt.ipVersion === 0) continue;
    const payload = pkt.payloadBuf.subarray(pkt.payloadOffset, pkt.payloadOffset + pkt.payloadLength);
    const dnsPort = DNS_PORTS.has(pkt.srcPort) || DNS_PORTS.has(pkt.dstPort);
    if (pkt.proto === IPPROTO_UDP && dnsPort && payload.length > 0) {
      parseDns(payload, 0, payload.length, onAnswer, allAdditional || pkt.srcPort === MDNS_PORT || pkt.dstPort === MDNS_PORT);
    }
    if (pkt.proto !== IPPROTO_TCP || pkt.fragment) continue;
    const key = addressKey(pkt);
    if (pkt.srcPort === 53 || pkt.dstPort === 53) {
      let state = dnsStreams.get(key);
      if (!state) dnsStreams.set(key, state = { stream: new TestStream(), buffered: Buffer.alloc(0) });
      state.buffered = Buffer.concat([state.buffered, state.stream.push(pkt.tcpSeq, pkt.tcpFlags, payload)]);
      const used = parseDnsOverTcp(state.buffered, 0, state.buffered.length, onAnswer, allAdditional);
      state.buffered = state.buffered.subarray(used);
      continue;
    }
    if (serverNames.has(key)) continue;
    let state = tlsStreams.get(key);
    if (!state) tlsStreams.set(key, state = { stream: new TestStream(), buffered: null });
    const fresh = state.stream.push(pkt.tcpSeq, pkt.tcpFlags, payload);
    if (fresh.length === 0) continue;
    // a ClientHello starts a segment: at the stream start, or after STARTTLS
    if (state.buffered === null && fresh[0] !== 0x16) continue;
    state.buffered = state.buffered === null ? fresh : Buffer.concat([state.buffered, fresh]);
    const result = parseClientHelloSni(state.buffered, 0, state.buffered.length);
    if (typeof result === 'number') {
      expect(result).toBeGreaterThan(state.buffered.length);
      continue;
    }
    serverNames.set(key, result);
  }
  return { dns, serverNames };
}

function sortRows(rows: Row[]): string[] {
  return rows.map((row) => row.join(' ')).sort();
}

const files = haveShared() ? readdirSync(REAL_CAPTURES).filter((f) => /\.pcap(ng)?$/.test(f)).sort() : [];

describeShared('DNS and SNI vs tshark', () => {
  it.each(files)('%s', async (file) => {
    const path = realCapture(file);
    const [tsharkDns, tsharkHellos] = await Promise.all([
      tsharkDnsRecords(path, '!icmp && !icmpv6'),
      tsharkClientHellos(path),
    ]);
    const ours = parseCapture(path, false);

    const expectedDns = tsharkDns
      .filter((r) => r.section === 'Answers' || (r.section === 'Additional records' && r.layer === 'mdns'))
      .map((r): Row => [r.name, r.type, r.data, r.ttl]);
    expect(sortRows(ours.dns)).toEqual(sortRows(expectedDns));
    // the additional section of every message (glue records), as a check of that path
    const withAdditional = tsharkDns.filter((r) => r.section !== 'Authoritative nameservers').map((r): Row => [r.name, r.type, r.data, r.ttl]);
    expect(sortRows(parseCapture(path, true).dns)).toEqual(sortRows(withAdditional));

    const expectedNames = new Map<string, string | null>();
    for (const hello of tsharkHellos) {
      if (!expectedNames.has(hello.flow)) expectedNames.set(hello.flow, hello.serverName === '' ? null : hello.serverName);
    }
    for (const [flow, serverName] of expectedNames) expect([flow, ours.serverNames.get(flow)]).toEqual([flow, serverName]);
    for (const [flow, serverName] of ours.serverNames) {
      if (!expectedNames.has(flow)) expect([flow, serverName]).toEqual([flow, null]);
    }
  });
});
