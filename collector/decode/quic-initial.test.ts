/**
 * quic-initial: the RFC 9001 (v1) and RFC 9369 (v2) test vectors, the QUIC client Initials of a real
 * capture against tshark, a ClientHello spread over two Initials with out-of-order CRYPTO frames (as
 * Chrome's post-quantum key share makes it) against tshark, and fuzzing for "never throws, never reads
 * outside the given range".
 */
import { createCipheriv } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import { afterAll, describe, expect, it } from 'vitest';
import { readAllRecords, writePcapSimple } from '../../test/helpers/read-capture-simple.js';
import { describeShared, realCapture } from '../../test/helpers/shared.js';
import { ethernetFrame, flowKey, ipv4Packet, tsharkFields, udpDatagram } from '../../test/helpers/decode-test-support.js';
import { buildDecoder, formatAddr, IPPROTO_UDP } from './index.js';
import {
  deriveClientInitialKeys, extractQuicInitialCrypto, MAX_QUIC_INITIAL_PACKETS, QUIC_V1, QUIC_V2,
  type QuicInitialCrypto, QuicSniAssembler, quicSniFromDatagrams,
} from './quic-initial.js';
import { parseClientHelloSni, parseHandshakeClientHelloSni } from './tls-sni.js';

const hex = (text: string) => Buffer.from(text.replace(/\s+/g, ''), 'hex');

// ---- RFC 9001 Appendix A (and RFC 9369 Appendix A.2 for v2): public test vectors ----
const RFC_DCID = hex('8394c8f03e515708');
/** The CRYPTO frame of the client Initial's payload (A.2); PADDING fills the payload to 1162 bytes. */
const RFC_CRYPTO_FRAME = hex(`
  060040f1010000ed0303ebf8fa56f129 39b9584a3896472ec40bb863cfd3e868 04fe3a47f06a2b69484c000004130113
  02010000c000000010000e00000b6578 616d706c652e636f6dff01000100000a 00080006001d00170018001000070005
  04616c706e0005000501000000000033 00260024001d00209370b2c9caa47fba baf4559fedba753de171fa71f50f1ce1
  5d43e994ec74d748002b000302030400 0d0010000e0403050306030203080408 050806002d00020101001c0002400100
  3900320408ffffffffffffffff050480 00ffff07048000ffff08011001048000 75300901100f088394c8f03e51570806
  048000ffff`);
const RFC_CLIENT_INITIAL = hex(`
  c000000001088394c8f03e5157080000 449e7b9aec34d1b1c98dd7689fb8ec11 d242b123dc9bd8bab936b47d92ec356c
  0bab7df5976d27cd449f63300099f399 1c260ec4c60d17b31f8429157bb35a12 82a643a8d2262cad67500cadb8e7378c
  8eb7539ec4d4905fed1bee1fc8aafba1 7c750e2c7ace01e6005f80fcb7df6212 30c83711b39343fa028cea7f7fb5ff89
  eac2308249a02252155e2347b63d58c5 457afd84d05dfffdb20392844ae81215 4682e9cf012f9021a6f0be17ddd0c208
  4dce25ff9b06cde535d0f920a2db1bf3 62c23e596d11a4f5a6cf3948838a3aec 4e15daf8500a6ef69ec4e3feb6b1d98e
  610ac8b7ec3faf6ad760b7bad1db4ba3 485e8a94dc250ae3fdb41ed15fb6a8e5 eba0fc3dd60bc8e30c5c4287e53805db
  059ae0648db2f64264ed5e39be2e20d8 2df566da8dd5998ccabdae053060ae6c 7b4378e846d29f37ed7b4ea9ec5d82e7
  961b7f25a9323851f681d582363aa5f8 9937f5a67258bf63ad6f1a0b1d96dbd4 faddfcefc5266ba6611722395c906556
  be52afe3f565636ad1b17d508b73d874 3eeb524be22b3dcbc2c7468d54119c74 68449a13d8e3b95811a198f3491de3e7
  fe942b330407abf82a4ed7c1b311663a c69890f4157015853d91e923037c227a 33cdd5ec281ca3f79c44546b9d90ca00
  f064c99e3dd97911d39fe9c5d0b23a22 9a234cb36186c4819e8b9c5927726632 291d6a418211cc2962e20fe47feb3edf
  330f2c603a9d48c0fcb5699dbfe58964 25c5bac4aee82e57a85aaf4e2513e4f0 5796b07ba2ee47d80506f8d2c25e50fd
  14de71e6c418559302f939b0e1abd576 f279c4b2e0feb85c1f28ff18f58891ff ef132eef2fa09346aee33c28eb130ff2
  8f5b766953334113211996d20011a198 e3fc433f9f2541010ae17c1bf202580f 6047472fb36857fe843b19f5984009dd
  c324044e847a4f4a0ab34f719595de37 252d6235365e9b84392b061085349d73 203a4a13e96f5432ec0fd4a1ee65accd
  d5e3904df54c1da510b0ff20dcc0c77f cb2c0e0eb605cb0504db87632cf3d8b4 dae6e705769d1de354270123cb11450e
  fc60ac47683d7b8d0f811365565fd98c 4c8eb936bcab8d069fc33bd801b03ade a2e1fbc5aa463d08ca19896d2bf59a07
  1b851e6c239052172f296bfb5e724047 90a2181014f3b94a4e97d117b4381303 68cc39dbb2d198065ae3986547926cd2
  162f40a29f0c3c8745c0f50fba3852e5 66d44575c29d39a03f0cda721984b6f4 40591f355e12d439ff150aab7613499d
  bd49adabc8676eef023b15b65bfc5ca0 6948109f23f350db82123535eb8a7433 bdabcb909271a6ecbcb58b936a88cd4e
  8f2e6ff5800175f113253d8fa9ca8885 c2f552e657dc603f252e1a8e308f76f0 be79e2fb8f5d5fbbe2e30ecadd220723
  c8c0aea8078cdfcb3868263ff8f09400 54da48781893a7e49ad5aff4af300cd8 04a6b6279ab3ff3afb64491c85194aab
  760d58a606654f9f4400e8b38591356f bf6425aca26dc85244259ff2b19c41b9 f96f3ca9ec1dde434da7d2d392b905dd
  f3d1f9af93d1af5950bd493f5aa731b4 056df31bd267b6b90a079831aaf579be 0a39013137aac6d404f518cfd4684064
  7e78bfe706ca4cf5e9c5453e9f7cfd2b 8b4c8d169a44e55c88d4a9a7f9474241 e221af44860018ab0856972e194cd934`);
/** RFC 9369 Appendix A.2: the same payload protected as a QUIC v2 client Initial (packet number 2). */
const RFC_V2_CLIENT_INITIAL_HEAD = 'd76b3343cf088394c8f03e5157080000449ea0c95e82ffe67b6abcdb4298b485dd04de806071';

/** The CRYPTO data (the ClientHello) inside RFC_CRYPTO_FRAME: after type 06, offset 00, length 40f1. */
const RFC_CLIENT_HELLO = RFC_CRYPTO_FRAME.subarray(4);

// ---- a client Initial builder, checked against the RFC's packet below ----

/** Protects `payload` (frames, already padded) as a client Initial with a 4-byte packet number. */
function protectInitial(dcid: Buffer, packetNumber: number, payload: Buffer, version = QUIC_V1): Buffer {
  const keys = deriveClientInitialKeys(dcid, version)!;
  const length = 4 + payload.length + 16;
  const first = version === QUIC_V1 ? 0xc3 : 0xd3; // long header, fixed bit, Initial, 4-byte packet number
  const header = Buffer.concat([
    Buffer.from([first]), Buffer.from([version >>> 24, (version >>> 16) & 255, (version >>> 8) & 255, version & 255]),
    Buffer.from([dcid.length]), dcid, Buffer.from([0, 0, 0x40 | (length >> 8), length & 255]),
    Buffer.from([packetNumber >>> 24, (packetNumber >>> 16) & 255, (packetNumber >>> 8) & 255, packetNumber & 255]),
  ]);
  const nonce = Buffer.from(keys.iv);
  for (let i = 0; i < 4; i++) nonce[11 - i] ^= (packetNumber >>> (8 * i)) & 255;
  const cipher = createCipheriv('aes-128-gcm', keys.key, nonce);
  cipher.setAAD(header);
  const sealed = Buffer.concat([cipher.update(payload), cipher.final(), cipher.getAuthTag()]);
  const mask = createCipheriv('aes-128-ecb', keys.hp, null).update(sealed.subarray(0, 16));
  header[0] ^= mask[0] & 0x0f;
  for (let i = 0; i < 4; i++) header[header.length - 4 + i] ^= mask[1 + i];
  return Buffer.concat([header, sealed]);
}

/** Frames padded with PADDING to `size` bytes. */
const padded = (frames: Buffer[], size: number) => {
  const body = Buffer.concat(frames);
  return Buffer.concat([body, Buffer.alloc(Math.max(0, size - body.length))]);
};
const varint2 = (value: number) => Buffer.from([0x40 | (value >> 8), value & 255]);
const cryptoFrame = (offset: number, data: Buffer) => Buffer.concat([Buffer.from([6]), varint2(offset), varint2(data.length), data]);

/** A TLS 1.3 ClientHello naming `serverName`, with an X25519Kyber768-sized key share as Chrome sends. */
function chromeLikeClientHello(serverName: string): Buffer {
  const u16 = (n: number) => Buffer.from([n >> 8, n & 255]);
  const extension = (type: number, body: Buffer) => Buffer.concat([u16(type), u16(body.length), body]);
  const host = Buffer.from(serverName);
  const nameList = Buffer.concat([Buffer.from([0]), u16(host.length), host]);
  const keyShares = Buffer.concat([u16(0x6399), u16(1216), Buffer.alloc(1216, 0x5a), u16(0x001d), u16(32), Buffer.alloc(32, 0x11)]);
  const extensions = Buffer.concat([
    extension(0x0000, Buffer.concat([u16(nameList.length), nameList])),
    extension(0x000a, Buffer.from([0, 4, 0x63, 0x99, 0x00, 0x1d])),
    extension(0x000d, Buffer.from([0, 4, 0x04, 0x03, 0x08, 0x04])),
    extension(0x0010, Buffer.from([0, 3, 2, 0x68, 0x33])),
    extension(0x002b, Buffer.from([2, 3, 4])),
    extension(0x0033, Buffer.concat([u16(keyShares.length), keyShares])),
    extension(0x0039, Buffer.from([0x01, 0x02, 0x67, 0x10])),
  ]);
  const body = Buffer.concat([
    Buffer.from([3, 3]), Buffer.alloc(32, 7), Buffer.from([0]), Buffer.from([0, 2, 0x13, 0x01]), Buffer.from([1, 0]),
    u16(extensions.length), extensions,
  ]);
  return Buffer.concat([Buffer.from([1, 0, body.length >> 8, body.length & 255]), body]);
}

/** A comparable picture of an extract result. */
const picture = (crypto: QuicInitialCrypto | null) =>
  crypto && { dcid: crypto.dcid.toString('hex'), frames: crypto.frames.map((f) => [f.offset, f.data.toString('hex')]) };

const dir = mkdtempSync(join(tmpdir(), 'earshot-quic-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** What tshark reads as the ClientHello SNIs of client->server UDP/443 datagrams written into a pcap. */
async function tsharkSnisOf(name: string, datagrams: Buffer[]): Promise<string[]> {
  const frames = datagrams.map((datagram, i) => ({
    timeMs: i, bytes: ethernetFrame(0x0800, ipv4Packet('10.0.0.2', '10.0.0.1', IPPROTO_UDP, udpDatagram(50000, 443, datagram), { id: i })),
  }));
  const path = join(dir, name);
  writeFileSync(path, writePcapSimple(1, frames));
  const rows = await tsharkFields(path, ['tls.handshake.extensions_server_name'], ['-Y', 'tls.handshake.type == 1']);
  return rows.map((row) => row['tls.handshake.extensions_server_name'][0] ?? '');
}

describe('QUIC client Initial: RFC 9001 Appendix A', () => {
  it('derives the client Initial key, IV and header-protection key of A.1', () => {
    const keys = deriveClientInitialKeys(RFC_DCID)!;
    expect(keys.key.toString('hex')).toBe('1f369613dd76d5467730efcbe3b1a22d');
    expect(keys.iv.toString('hex')).toBe('fa044b2f42a3fd3b46fb255c');
    expect(keys.hp.toString('hex')).toBe('9f50449e04a0e810283a1e9933adedd2');
    expect(deriveClientInitialKeys(RFC_DCID, 0xff00001d)).toBeNull();
  });

  it('decrypts the protected client Initial of A.2 into its CRYPTO frame, naming example.com', async () => {
    expect(RFC_CLIENT_INITIAL.length).toBe(1200);
    const crypto = extractQuicInitialCrypto(RFC_CLIENT_INITIAL, 0, RFC_CLIENT_INITIAL.length);
    expect(crypto?.dcid.equals(RFC_DCID)).toBe(true);
    expect(crypto?.frames).toHaveLength(1);
    expect(crypto!.frames[0].offset).toBe(0);
    expect(crypto!.frames[0].data.subarray(0, 4).toString('hex')).toBe('010000ed');
    expect(crypto!.frames[0].data.equals(RFC_CLIENT_HELLO)).toBe(true);
    expect(quicSniFromDatagrams([RFC_CLIENT_INITIAL])).toBe('example.com');
    expect(await tsharkSnisOf('rfc9001.pcap', [RFC_CLIENT_INITIAL])).toEqual(['example.com']);
  });

  it('the test builder reproduces the RFC packet byte for byte (so built packets are real ones)', () => {
    expect(protectInitial(RFC_DCID, 2, padded([RFC_CRYPTO_FRAME], 1162)).equals(RFC_CLIENT_INITIAL)).toBe(true);
  });

  it('reads a QUIC v2 Initial (RFC 9369 A.2 header and first bytes match the builder)', () => {
    const v2 = protectInitial(RFC_DCID, 2, padded([RFC_CRYPTO_FRAME], 1162), QUIC_V2);
    expect(v2.subarray(0, RFC_V2_CLIENT_INITIAL_HEAD.length / 2).toString('hex')).toBe(RFC_V2_CLIENT_INITIAL_HEAD);
    expect(extractQuicInitialCrypto(v2, 0, v2.length)!.frames[0].data.equals(RFC_CLIENT_HELLO)).toBe(true);
    expect(quicSniFromDatagrams([v2])).toBe('example.com');
  });

  it('reads the packet inside a larger buffer, and returns null for what is not a client Initial', () => {
    const around = Buffer.concat([Buffer.alloc(33, 0xee), RFC_CLIENT_INITIAL, Buffer.alloc(17, 0xee)]);
    expect(picture(extractQuicInitialCrypto(around, 33, 1200))).toEqual(picture(extractQuicInitialCrypto(RFC_CLIENT_INITIAL, 0, 1200)));
    const changed = (at: number, value: number) => { const copy = Buffer.from(RFC_CLIENT_INITIAL); copy[at] = value; return copy; };
    expect(extractQuicInitialCrypto(changed(0, 0x40), 0, 1200)).toBeNull(); // short header
    expect(extractQuicInitialCrypto(changed(4, 2), 0, 1200)).toBeNull(); // unknown version
    expect(extractQuicInitialCrypto(changed(0, 0xe0), 0, 1200)).toBeNull(); // Handshake type
    expect(extractQuicInitialCrypto(changed(700, 0), 0, 1200)).toBeNull(); // damaged: the tag fails
    expect(extractQuicInitialCrypto(RFC_CLIENT_INITIAL, 0, 1199)).toBeNull(); // cut short
    expect(extractQuicInitialCrypto(RFC_CLIENT_INITIAL, 1, 1200)).toBeNull(); // past the end
  });
});

describe('QUIC ClientHello over two Initials (Chrome with a post-quantum key share)', () => {
  const serverName = 'assistant.example.google.com';
  const hello = chromeLikeClientHello(serverName);
  const dcid = hex('1122334455667788');
  // Chrome scatters the CRYPTO data in several frames, out of order, between PINGs and PADDINGs
  const first = protectInitial(dcid, 0, padded([
    cryptoFrame(600, hello.subarray(600, 1000)), Buffer.from([1, 0, 0, 1]), cryptoFrame(0, hello.subarray(0, 600)),
  ], 1162));
  const second = protectInitial(dcid, 1, padded([Buffer.from([0, 0, 1]), cryptoFrame(1000, hello.subarray(1000))], 1162));

  it('needs both packets, in either order, then gives the name', () => {
    expect(hello.length).toBeGreaterThan(1200);
    for (const order of [[first, second], [second, first]]) {
      const assembler = new QuicSniAssembler();
      expect(assembler.push(extractQuicInitialCrypto(order[0], 0, order[0].length)!.frames)).toBeUndefined();
      expect(assembler.push(extractQuicInitialCrypto(order[1], 0, order[1].length)!.frames)).toBe(serverName);
      expect(assembler.push([])).toBe(serverName); // the answer stands
    }
    expect(parseHandshakeClientHelloSni(hello, 0, hello.length)).toBe(serverName);
    expect(parseHandshakeClientHelloSni(hello, 0, hello.length - 1)).toBeNull();
    const record = Buffer.concat([Buffer.from([0x16, 3, 1, hello.length >> 8, hello.length & 255]), hello]);
    expect(parseClientHelloSni(record, 0, record.length)).toBe(serverName);
  });

  it('agrees with tshark, which reassembles the same CRYPTO stream', async () => {
    expect(await tsharkSnisOf('two-initials.pcap', [first, second])).toEqual([serverName]);
    expect(quicSniFromDatagrams([first, second])).toBe(serverName);
  });

  it('reads an Initial coalesced with a following 0-RTT packet', () => {
    const zeroRtt = Buffer.concat([Buffer.from([0xd0, 0, 0, 0, 1, 8]), dcid, Buffer.from([0, 0x40, 20]), Buffer.alloc(20, 0x33)]);
    const datagram = Buffer.concat([first, zeroRtt, protectInitial(dcid, 1, padded([cryptoFrame(1000, hello.subarray(1000))], 1100))]);
    expect(quicSniFromDatagrams([datagram])).toBe(serverName);
  });

  it('gives up with null: not a ClientHello, beyond 64 KiB, or after 8 packets without a whole one', () => {
    expect(new QuicSniAssembler().push([{ offset: 0, data: Buffer.from([2, 0, 0, 4]) }])).toBeNull();
    expect(new QuicSniAssembler().push([{ offset: 65530, data: Buffer.alloc(10) }])).toBeNull();
    const slow = new QuicSniAssembler();
    for (let i = 1; i < MAX_QUIC_INITIAL_PACKETS; i++) expect(slow.push([{ offset: i * 10, data: Buffer.alloc(10) }])).toBeUndefined();
    expect(slow.push([])).toBeNull();
    const noName = chromeLikeClientHello('x');
    noName[noName.indexOf(Buffer.from([0, 0, 0, 6, 0, 4, 0]))] = 0xfa; // rename the server_name extension
    expect(new QuicSniAssembler().push([{ offset: 0, data: noName }])).toBeNull();
  });
});

describeShared('QUIC client Initials of a real capture, against tshark', () => {
  it('finds for each flow the SNI tshark finds, and no other', async () => {
    const file = realCapture('sites_tls13-sni-ipv6_ndpi.pcapng');
    const fields = ['ip.src', 'ipv6.src', 'udp.srcport', 'ip.dst', 'ipv6.dst', 'udp.dstport', 'tls.handshake.extensions_server_name'];
    const rows = await tsharkFields(file, fields, ['-Y', 'quic && tls.handshake.type == 1']);
    const expected = new Map<string, string | null>();
    for (const row of rows) {
      const key = flowKey(row['ip.src'][0] ?? row['ipv6.src'][0], Number(row['udp.srcport'][0]), row['ip.dst'][0] ?? row['ipv6.dst'][0], Number(row['udp.dstport'][0]));
      expected.set(key, row['tls.handshake.extensions_server_name'][0] ?? null);
    }

    const decoder = buildDecoder();
    const assemblers = new Map<string, QuicSniAssembler>();
    const found = new Map<string, string | null>();
    for (const record of readAllRecords(file)) {
      const pkt = decoder.decode(record.buf, record.offset, record.capLen, record.wireLen, record.timeMs, record.linkType);
      if (!pkt || pkt.proto !== IPPROTO_UDP || pkt.dstPort !== 443) continue;
      const crypto = extractQuicInitialCrypto(pkt.payloadBuf, pkt.payloadOffset, pkt.payloadLength);
      if (crypto === null) continue;
      const key = flowKey(formatAddr(pkt.ipVersion, pkt.srcAddr), pkt.srcPort, formatAddr(pkt.ipVersion, pkt.dstAddr), pkt.dstPort);
      if (found.has(key)) continue;
      let assembler = assemblers.get(key);
      if (!assembler) assemblers.set(key, (assembler = new QuicSniAssembler()));
      const answer = assembler.push(crypto.frames);
      if (answer !== undefined) found.set(key, answer);
    }
    expect(expected.size).toBeGreaterThanOrEqual(4);
    expect([...expected.values()]).toContain('www.threads.net');
    expect(found).toEqual(expected);
  });
});

describe('QUIC Initial fuzzing: never throws, never reads outside the range', () => {
  /** Extracts from `bytes` alone and from inside random surroundings: both must agree, neither throw. */
  const checkAgainstSurroundings = (bytes: Buffer, before: Uint8Array, after: Uint8Array) => {
    const alone = extractQuicInitialCrypto(bytes, 0, bytes.length);
    const inside = extractQuicInitialCrypto(Buffer.concat([before, bytes, after]), before.length, bytes.length);
    expect(picture(inside)).toEqual(picture(alone));
    if (alone !== null) {
      expect(alone.dcid.length).toBeLessThanOrEqual(20);
      for (const frame of alone.frames) expect(Number.isSafeInteger(frame.offset) && frame.offset >= 0).toBe(true);
      const answer = new QuicSniAssembler().push(alone.frames);
      expect(answer === null || answer === undefined || typeof answer === 'string').toBe(true);
    }
  };
  const surroundings = fc.uint8Array({ maxLength: 64 });

  it('random bytes, with and without a v1/v2 Initial first byte and version', () => {
    const start = fc.constantFrom(Buffer.alloc(0), hex('c000000001'), hex('d36b3343cf'), hex('c30000000108'));
    fc.assert(fc.property(start, fc.uint8Array({ maxLength: 1400 }), surroundings, surroundings, (head, tail, before, after) => {
      checkAgainstSurroundings(Buffer.concat([head, tail]), before, after);
    }), { numRuns: 400 });
  });

  it('mutations and truncations of the RFC packet', () => {
    const mutations = fc.array(fc.tuple(fc.integer({ min: 0, max: 1199 }), fc.integer({ min: 1, max: 255 })), { maxLength: 4 });
    fc.assert(fc.property(mutations, fc.integer({ min: 0, max: 1200 }), surroundings, surroundings, (changes, cut, before, after) => {
      const bytes = Buffer.from(RFC_CLIENT_INITIAL.subarray(0, cut));
      for (const [at, xor] of changes) if (at < bytes.length) bytes[at] ^= xor;
      checkAgainstSurroundings(bytes, before, after);
    }), { numRuns: 400 });
  });

  it('a CRYPTO offset past 2^53 (found by fuzzing) is damage, not a frame', () => {
    const payload = Buffer.concat([Buffer.from([6, 0xc0, 0x20, 0, 0, 0, 0, 0, 0, 0]), Buffer.alloc(13)]);
    const packet = protectInitial(RFC_DCID, 7, payload);
    checkAgainstSurroundings(packet, new Uint8Array(0), new Uint8Array(0));
    expect(extractQuicInitialCrypto(packet, 0, packet.length)?.frames).toEqual([]);
  });

  it('validly protected Initials whose decrypted frames are random or damaged', () => {
    const frames = fc.oneof(
      fc.uint8Array({ minLength: 20, maxLength: 1200 }).map((a) => Buffer.from(a)),
      fc.tuple(fc.integer({ min: 0, max: 244 }), fc.integer({ min: 0, max: 255 })).map(([at, value]) => {
        const copy = Buffer.from(RFC_CRYPTO_FRAME);
        copy[at] = value;
        return padded([Buffer.from([2, 5, 0, 1, 0x40, 3, 0x41]), copy], 600);
      }),
    );
    fc.assert(fc.property(frames, surroundings, surroundings, (payload, before, after) => {
      const packet = protectInitial(RFC_DCID, 7, payload);
      expect(extractQuicInitialCrypto(packet, 0, packet.length)).not.toBeNull();
      checkAgainstSurroundings(packet, before, after);
    }), { numRuns: 300 });
  });

  it('the assembler takes any frames and answers within 8 packets', () => {
    const frame = fc.record({ offset: fc.integer({ min: 0, max: 70_000 }), data: fc.uint8Array({ maxLength: 400 }).map((a) => Buffer.from(a)) });
    const small = fc.record({ offset: fc.integer({ min: 0, max: 300 }), data: fc.uint8Array({ maxLength: 60 }).map((a) => Buffer.from(a)) });
    fc.assert(fc.property(fc.array(fc.array(fc.oneof(small, small, frame), { maxLength: 5 }), { minLength: 8, maxLength: 10 }), (packets) => {
      const assembler = new QuicSniAssembler();
      let answer: string | null | undefined;
      packets.forEach((frames, i) => {
        const next = assembler.push(frames);
        if (answer !== undefined) expect(next).toBe(answer);
        answer = next;
        if (i + 1 >= MAX_QUIC_INITIAL_PACKETS) expect(answer).not.toBeUndefined();
      });
    }), { numRuns: 500 });
  });
});
