/**
 * parseClientHelloSni: real ClientHellos fed the way the flow stage buffers a stream (growing prefixes),
 * a ClientHello re-framed into several TLS records and TCP segments (checked against tshark, since no
 * real capture has one), and the not-TLS / no-SNI / too-large answers.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { readAllRecords, writePcapSimple } from '../../test/helpers/read-capture-simple.js';
import { describeShared, haveShared, realCapture } from '../../test/helpers/shared.js';
import { ethernetFrame, ipv4Packet, tcpSegment, tsharkFields } from '../../test/helpers/decode-test-support.js';
import { buildDecoder, IPPROTO_TCP } from './index.js';
import { TCP_ACK, TCP_PSH, TCP_SYN } from './packet.js';
import { MAX_CLIENT_HELLO_STREAM_BYTES, parseClientHelloSni } from './tls-sni.js';

/** The first ClientHello segments (whole in one segment) of some real captures, with their SNI. */
function realClientHellos(): Array<{ bytes: Buffer; serverName: string | null }> {
  const found: Array<{ bytes: Buffer; serverName: string | null }> = [];
  for (const file of ['android-alexa-app_jhautry.pcap', 'sites_tls13-sni-ipv6_ndpi.pcapng', 'tls13-ech_zeek.pcap', 'amazon-echodot2_boot-under-sslsplit-mitm_jhautry.pcap']) {
    const decoder = buildDecoder();
    let fromFile = 0;
    for (const record of readAllRecords(realCapture(file))) {
      const pkt = decoder.decode(record.buf, record.offset, record.capLen, record.wireLen, 0, record.linkType);
      if (!pkt || pkt.proto !== IPPROTO_TCP || pkt.payloadLength < 6) continue;
      const bytes = Buffer.from(pkt.payloadBuf.subarray(pkt.payloadOffset, pkt.payloadOffset + pkt.payloadLength));
      if (bytes[0] !== 0x16 || bytes[5] !== 1) continue;
      const result = parseClientHelloSni(bytes, 0, bytes.length);
      if (typeof result === 'number') continue;
      found.push({ bytes, serverName: result });
      if (++fromFile === 12) break;
    }
  }
  return found;
}

/** Re-frames the handshake message of a one-record ClientHello into records of the given body sizes. */
function reframe(hello: Buffer, sizes: number[]): Buffer {
  const handshake = hello.subarray(5, 5 + hello.readUInt16BE(3));
  const records: Buffer[] = [];
  let at = 0;
  for (let i = 0; at < handshake.length; i++) {
    const body = handshake.subarray(at, at + (sizes[i] ?? handshake.length));
    records.push(Buffer.from([0x16, 3, 1, body.length >> 8, body.length & 255]), body);
    at += body.length;
  }
  return Buffer.concat(records);
}

/** Feeds `stream` as the flow stage would: grow the buffer until the answer is not a number. */
function feed(stream: Buffer, firstSegment: number): string | null {
  let have = Math.min(firstSegment, stream.length);
  while (true) {
    const result = parseClientHelloSni(stream, 0, have);
    if (typeof result !== 'number') return result;
    expect(result).toBeGreaterThan(have);
    expect(result).toBeLessThanOrEqual(stream.length);
    have = result;
  }
}

describeShared('parseClientHelloSni on real ClientHellos', () => {
  const hellos = haveShared() ? realClientHellos() : [];

  it('finds the SNI of each (ECH: the outer name), and null for ClientHellos without one', () => {
    expect(hellos.length).toBeGreaterThan(30);
    const names = hellos.map((h) => h.serverName);
    expect(names).toContain('cloudflare-ech.com');
    expect(names).toContain('pitangui.amazon.com');
    expect(names).toContain(null);
  });

  it('asks for more bytes on every prefix, never more than the ClientHello takes', () => {
    for (const { bytes, serverName } of hellos) {
      for (let have = 0; have < bytes.length; have++) {
        const result = parseClientHelloSni(bytes, 0, have);
        expect(typeof result).toBe('number');
        expect(result as number).toBeGreaterThan(have);
        expect(result as number).toBeLessThanOrEqual(bytes.length);
      }
      for (const firstSegment of [1, 5, 9, 60, 517]) expect(feed(bytes, firstSegment)).toBe(serverName);
    }
  });

  it('joins a ClientHello spread over several TLS records (even its 4-byte header)', () => {
    for (const { bytes, serverName } of hellos) {
      for (const sizes of [[1, 2, 3], [40, 100], [7]]) {
        const stream = reframe(bytes, sizes);
        expect(parseClientHelloSni(stream, 0, stream.length)).toBe(serverName);
        expect(feed(stream, 50)).toBe(serverName);
      }
    }
  });

  const dir = mkdtempSync(join(tmpdir(), 'earshot-sni-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('agrees with tshark on a ClientHello in three records and four TCP segments', async () => {
    const named = hellos.filter((h) => h.serverName !== null).slice(0, 10);
    const frames: Array<{ timeMs: number; bytes: Buffer }> = [];
    const packet = (port: number, up: boolean, seq: number, flags: number, payload: Buffer) => {
      const [src, dst] = up ? ['10.0.0.2', '10.0.0.1'] : ['10.0.0.1', '10.0.0.2'];
      const segment = up ? tcpSegment(port, 443, seq, flags, payload) : tcpSegment(443, port, seq, flags, payload);
      frames.push({ timeMs: frames.length, bytes: ethernetFrame(0x0800, ipv4Packet(src, dst, IPPROTO_TCP, segment, { id: frames.length })) });
    };
    const ours: Array<string | null> = [];
    named.forEach(({ bytes }, i) => {
      const stream = reframe(bytes, [90, 150]);
      const port = 40000 + i;
      packet(port, true, 1000, TCP_SYN, Buffer.alloc(0));
      packet(port, false, 5000, TCP_SYN | TCP_ACK, Buffer.alloc(0));
      packet(port, true, 1001, TCP_ACK, Buffer.alloc(0));
      const cuts = [0, 60, 200, 333, stream.length];
      for (let c = 0; c + 1 < cuts.length; c++) {
        packet(port, true, 1001 + cuts[c], TCP_ACK | TCP_PSH, stream.subarray(cuts[c], cuts[c + 1]));
      }
      ours.push(feed(stream, 60));
    });
    const path = join(dir, 'reframed.pcap');
    writeFileSync(path, writePcapSimple(1, frames));
    const rows = await tsharkFields(path, ['tls.handshake.extensions_server_name'], ['-Y', 'tls.handshake.type==1']);
    expect(rows.map((row) => row['tls.handshake.extensions_server_name'][0])).toEqual(ours);
    expect(ours).toEqual(named.map((h) => h.serverName));
  });
});

describe('parseClientHelloSni answers null', () => {
  const minimal = (extensions: Buffer | null) => {
    const body = Buffer.concat([
      Buffer.from([3, 3]), Buffer.alloc(32), Buffer.from([0]), Buffer.from([0, 2, 0x13, 0x01]), Buffer.from([1, 0]),
      extensions === null ? Buffer.alloc(0) : Buffer.concat([Buffer.from([extensions.length >> 8, extensions.length & 255]), extensions]),
    ]);
    const handshake = Buffer.concat([Buffer.from([1, 0, body.length >> 8, body.length & 255]), body]);
    return Buffer.concat([Buffer.from([0x16, 3, 1, handshake.length >> 8, handshake.length & 255]), handshake]);
  };
  const sni = (name: string) => {
    const host = Buffer.from(name);
    const list = Buffer.concat([Buffer.from([0, host.length >> 8, host.length & 255]), host]);
    const data = Buffer.concat([Buffer.from([list.length >> 8, list.length & 255]), list]);
    return Buffer.concat([Buffer.from([0, 0, data.length >> 8, data.length & 255]), data]);
  };

  it('for a minimal ClientHello with and without server_name', () => {
    const withName = minimal(sni('speaker.example'));
    expect(parseClientHelloSni(withName, 0, withName.length)).toBe('speaker.example');
    const shifted = Buffer.concat([Buffer.alloc(3), withName, Buffer.alloc(3)]);
    expect(parseClientHelloSni(shifted, 3, withName.length)).toBe('speaker.example');
    expect(parseClientHelloSni(minimal(null), 0, minimal(null).length)).toBeNull();
    const other = minimal(Buffer.from([0, 0x17, 0, 0]));
    expect(parseClientHelloSni(other, 0, other.length)).toBeNull();
  });

  it('for a server_name that is no host name: longer than 253, or with other characters (a 20-kB name with control characters was kept)', () => {
    const longest = `${'a'.repeat(63)}.${'b'.repeat(63)}.${'c'.repeat(63)}.${'d'.repeat(61)}`;
    expect(longest).toHaveLength(253);
    for (const good of [longest, 'avs-alexa-14-na.amazon.com', 'A_b-9.example', 'xn--bcher-kva.example']) {
      const hello = minimal(sni(good));
      expect(parseClientHelloSni(hello, 0, hello.length), good).toBe(good);
    }
    for (const bad of [`${longest}e`, 'a'.repeat(16_000), '<script>alert(8)</script>.example', 'evil\n.example', 'esc\x1b[2J.example', 'sp ace.example', 'bücher.example', 'nul\0.example']) {
      const hello = minimal(sni(bad));
      expect(parseClientHelloSni(hello, 0, hello.length), JSON.stringify(bad.slice(0, 40))).toBeNull();
    }
  });

  it('for streams that are not a TLS ClientHello', () => {
    const cases = [
      Buffer.from('GET / HTTP/1.1\r\n\r\n'),
      Buffer.from([0x16, 2, 0, 0, 10]), // not version 3.x
      Buffer.from([0x16, 3, 3, 0, 10, 2, 0, 0, 6]), // ServerHello
      Buffer.from([0x80, 0x2e, 1, 3, 1]), // SSLv2-compatible hello
      Buffer.from([0x16, 3, 1, 0, 2, 2, 0, 0x16, 3, 1, 0, 2, 0, 9]), // a ServerHello, header split over records
      Buffer.from([0x17, 3, 3, 0, 10]),
    ];
    for (const stream of cases) expect(parseClientHelloSni(stream, 0, stream.length)).toBeNull();
  });

  it('for a ClientHello that would need more than 64 KiB', () => {
    const huge = Buffer.from([0x16, 3, 1, 0x40, 0x00, 1, 0x01, 0x00, 0x00]);
    expect(parseClientHelloSni(huge, 0, huge.length)).toBeNull();
    const manyRecords = Buffer.from([0x16, 3, 1, 0, 4, 1, 0, 0xff, 0xf0]);
    const needed = parseClientHelloSni(manyRecords, 0, manyRecords.length);
    expect(needed === null || (typeof needed === 'number' && needed <= MAX_CLIENT_HELLO_STREAM_BYTES)).toBe(true);
  });

  it('for a damaged record in the middle', () => {
    const stream = Buffer.from([0x16, 3, 1, 0, 4, 1, 0, 0, 8, 0x17, 3, 1, 0, 8, ...Buffer.alloc(8)]);
    expect(parseClientHelloSni(stream, 0, stream.length)).toBeNull();
  });
});
