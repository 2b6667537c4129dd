/**
 * parseDns / parseDnsOverTcp on hand-built messages: compression (and its abuse), sections, damaged
 * messages, TCP framing. The real-capture comparison with tshark is in payload-golden.test.ts.
 */
import { describe, expect, it } from 'vitest';
import { parseDns, parseDnsOverTcp } from './dns.js';

interface RecordSpec { name: Buffer; type: number; ttl?: number; data: Buffer }

const encodeName = (name: string) => Buffer.concat([
  ...name.split('.').filter(Boolean).map((label) => { const l = Buffer.from(label, 'utf8'); return Buffer.concat([Buffer.from([l.length]), l]); }),
  Buffer.from([0]),
]);
const pointer = (offset: number) => Buffer.from([0xc0 | (offset >> 8), offset & 255]);
const ipv4 = (address: string) => Buffer.from(address.split('.').map(Number));

function record(spec: RecordSpec): Buffer {
  const fixed = Buffer.alloc(10);
  fixed.writeUInt16BE(spec.type, 0);
  fixed.writeUInt16BE(1, 2);
  fixed.writeUInt32BE(spec.ttl ?? 60, 4);
  fixed.writeUInt16BE(spec.data.length, 8);
  return Buffer.concat([spec.name, fixed, spec.data]);
}

function message(flags: number, question: Buffer | null, answers: RecordSpec[], additionals: RecordSpec[] = []): Buffer {
  const header = Buffer.alloc(12);
  header.writeUInt16BE(0xbeef, 0);
  header.writeUInt16BE(flags, 2);
  header.writeUInt16BE(question ? 1 : 0, 4);
  header.writeUInt16BE(answers.length, 6);
  header.writeUInt16BE(additionals.length, 10);
  const q = question ? Buffer.concat([question, Buffer.from([0, 1, 0, 1])]) : Buffer.alloc(0);
  return Buffer.concat([header, q, ...answers.map(record), ...additionals.map(record)]);
}

function collect(buf: Buffer, offset = 0, length = buf.length, includeAdditional = false) {
  const answers: string[] = [];
  const ok = parseDns(buf, offset, length, (name, type, data, ttl) => { answers.push(`${name}|${type}|${data}|${ttl}`); }, includeAdditional);
  return { ok, answers };
}

const RESPONSE = 0x8180;
// question name at offset 12: www.Example.com
const chain = message(RESPONSE, encodeName('www.Example.com'), [
  { name: pointer(12), type: 5, ttl: 300, data: Buffer.concat([Buffer.from([3]), Buffer.from('cdn'), pointer(16)]) },
  { name: Buffer.concat([Buffer.from([3]), Buffer.from('cdn'), pointer(16)]), type: 1, ttl: 20, data: ipv4('203.0.113.5') },
  { name: pointer(12), type: 28, data: Buffer.from('20010db8000000000000000000000001', 'hex') },
  { name: pointer(12), type: 16, data: Buffer.from('\x03txt') },
]);

describe('parseDns', () => {
  it('reports A, AAAA and CNAME answers with compressed names, case kept, no trailing dot', () => {
    expect(collect(chain)).toEqual({
      ok: true,
      answers: ['www.Example.com|CNAME|cdn.Example.com|300', 'cdn.Example.com|A|203.0.113.5|20', 'www.Example.com|AAAA|2001:db8::1|60'],
    });
  });

  it('resolves pointers relative to the message, not the buffer', () => {
    const shifted = Buffer.concat([Buffer.alloc(37, 0xc0), chain, Buffer.alloc(9, 0xff)]);
    expect(collect(shifted, 37, chain.length)).toEqual(collect(chain));
  });

  it('reports nothing for queries and non-standard opcodes', () => {
    expect(collect(message(0x0100, encodeName('a.b'), [{ name: pointer(12), type: 1, data: ipv4('1.2.3.4') }]))).toEqual({ ok: true, answers: [] });
    expect(collect(message(0xa800, null, [{ name: encodeName('a.b'), type: 1, data: ipv4('1.2.3.4') }]))).toEqual({ ok: true, answers: [] });
  });

  it('keeps UTF-8 labels and gives the root as an empty name', () => {
    const msg = message(0x8400, null, [
      { name: encodeName('Luca’s iMac.local'), type: 1, data: ipv4('192.168.2.1') },
      { name: Buffer.from([0]), type: 1, data: ipv4('10.0.0.1') },
    ]);
    expect(collect(msg).answers).toEqual(['Luca’s iMac.local|A|192.168.2.1|60', '|A|10.0.0.1|60']);
  });

  it('reads the additional section only when asked (mDNS)', () => {
    const msg = message(0x8400, null, [{ name: encodeName('tv.local'), type: 12, data: encodeName('x.local') }],
      [{ name: encodeName('tv.local'), type: 1, ttl: 120, data: ipv4('192.168.1.9') }]);
    expect(collect(msg).answers).toEqual([]);
    expect(collect(msg, 0, msg.length, true).answers).toEqual(['tv.local|A|192.168.1.9|120']);
  });

  it('skips A/AAAA records with the wrong data length', () => {
    const msg = message(RESPONSE, null, [{ name: encodeName('a.b'), type: 1, data: Buffer.alloc(5) }, { name: encodeName('a.b'), type: 28, data: Buffer.alloc(4) }]);
    expect(collect(msg)).toEqual({ ok: true, answers: [] });
  });

  it('reports what precedes the damage and returns false', () => {
    expect(collect(chain, 0, chain.length - 20)).toEqual({
      ok: false, answers: ['www.Example.com|CNAME|cdn.Example.com|300', 'cdn.Example.com|A|203.0.113.5|20'],
    });
    expect(collect(chain, 0, 11).ok).toBe(false);
  });

  it('refuses pointer loops, pointers out of the message, bad label types, over-long names', () => {
    const loop = message(RESPONSE, null, [{ name: pointer(12), type: 1, data: ipv4('1.1.1.1') }]);
    loop.writeUInt16BE(0xc00c, 12); // the record's name points at itself
    expect(collect(loop).ok).toBe(false);
    const outside = message(RESPONSE, null, [{ name: pointer(4000), type: 1, data: ipv4('1.1.1.1') }]);
    expect(collect(outside).ok).toBe(false);
    const extended = message(RESPONSE, null, [{ name: Buffer.from([0x41, 0]), type: 1, data: ipv4('1.1.1.1') }]);
    expect(collect(extended).ok).toBe(false);
    const long = message(RESPONSE, null, [{ name: encodeName(Array(5).fill('x'.repeat(60)).join('.')), type: 1, data: ipv4('1.1.1.1') }]);
    expect(collect(long).ok).toBe(false);
    const cnameOverrun = message(RESPONSE, null, [{ name: encodeName('a.b'), type: 5, data: Buffer.from([3, 0x61]) }]);
    expect(collect(cnameOverrun).ok).toBe(false);
    // a pointer's first byte as the very last byte of the message: its second byte is outside
    const cutPointer = message(RESPONSE, null, [{ name: encodeName('a.b'), type: 5, data: Buffer.from([0xc0]) }]);
    const padded = Buffer.concat([cutPointer, Buffer.from([12])]);
    expect(collect(padded, 0, cutPointer.length)).toEqual({ ok: false, answers: [] });
  });

  it('refuses ranges outside the buffer', () => {
    expect(collect(chain, chain.length - 4, 20).ok).toBe(false);
    expect(collect(chain, -1, 20).ok).toBe(false);
  });
});

describe('parseDnsOverTcp', () => {
  it('parses whole length-prefixed messages and leaves a partial one', () => {
    const framed = (msg: Buffer) => Buffer.concat([Buffer.from([msg.length >> 8, msg.length & 255]), msg]);
    const stream = Buffer.concat([framed(chain), framed(chain), framed(chain).subarray(0, 30)]);
    const answers: string[] = [];
    const used = parseDnsOverTcp(stream, 0, stream.length, (name) => { answers.push(name); });
    expect(used).toBe(2 * (chain.length + 2));
    expect(answers).toHaveLength(6);
    expect(parseDnsOverTcp(stream, 0, 1, () => {})).toBe(0);
  });
});

describe('names', () => {
  it('reads names with non-ASCII and odd bytes label by label as UTF-8, ASCII names in one piece', () => {
    const label = (bytes: number[]) => Buffer.concat([Buffer.from([bytes.length]), Buffer.from(bytes)]);
    const odd = Buffer.concat([label([0x63, 0x61, 0x66, 0xc3, 0xa9]), label([0xff, 0x41]), label([0x61, 0x2e, 0x62, 0x00, 0x7f]), Buffer.from([0])]);
    const ascii = Buffer.concat([label([0x5f, 0x78]), encodeName('Long-Label-Name.example.ORG')]);
    const msg = message(RESPONSE, null, [
      { name: odd, type: 1, data: ipv4('192.0.2.1') },
      { name: ascii, type: 1, data: ipv4('192.0.2.2') },
    ]);
    expect(collect(msg).answers).toEqual([
      `café.\ufffdA.a.b\u0000\u007f|A|192.0.2.1|60`,
      '_x.Long-Label-Name.example.ORG|A|192.0.2.2|60',
    ]);
  });
});
