/**
 * TcpStream on random segmentations of a byte stream (fast-check): whatever the cuts, duplicates,
 * overlaps and reordering (within the bounds), the parser is handed the original bytes once, in order;
 * past the bounds the stream is lost and nothing wrong is handed on. Sequence numbers wrap at 2^32.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { MAX_SEGMENTS_AHEAD, TcpStream } from './tcp-stream.js';

/** A parser that takes everything it is given (what a message parser does with whole messages). */
function collector() {
  const seen: number[] = [];
  const parse = (buf: Buffer, off: number, len: number) => {
    for (let i = off; i < off + len; i++) seen.push(buf[i]);
    return len;
  };
  return { seen, parse };
}

const streamArb = fc.uint8Array({ minLength: 1, maxLength: 400 });

describe('TcpStream', () => {
  it('hands on the bytes once and in order, whatever the retransmissions and reordering', () => {
    let whole = 0;
    let runs = 0;
    fc.assert(fc.property(
      streamArb,
      fc.array(fc.tuple(fc.nat(), fc.nat({ max: 64 })), { minLength: 1, maxLength: 40 }),
      fc.integer({ min: 0, max: 0xffffffff }),
      fc.array(fc.nat(), { maxLength: 6 }),
      (bytes, cuts, isn, swaps) => {
        const data = Buffer.from(bytes);
        // segments covering the stream in order, then extra copies of random ranges (retransmissions)
        const segments: Array<[number, number]> = [];
        for (let at = 0, i = 0; at < data.length; i++) {
          const len = 1 + (cuts[i % cuts.length][1] % 60);
          segments.push([at, Math.min(data.length, at + len)]);
          at += len;
        }
        for (const [start, len] of cuts) {
          const from = start % data.length;
          segments.splice((start >> 3) % (segments.length + 1), 0, [from, Math.min(data.length, from + 1 + len)]);
        }
        // a few neighbours swapped: segments out of order (few enough to stay within the bounds)
        for (const s of swaps) {
          const i = s % segments.length;
          const j = Math.min(segments.length - 1, i + 1);
          [segments[i], segments[j]] = [segments[j], segments[i]];
        }
        const stream = new TcpStream();
        stream.syn(isn);
        runs++;
        const { seen, parse } = collector();
        for (const [from, to] of segments) stream.push((isn + 1 + from) >>> 0, data, from, to - from, parse);
        if (stream.lost) {
          // only a prefix of the stream, never bytes out of place
          expect(Buffer.from(seen).equals(data.subarray(0, seen.length))).toBe(true);
        } else {
          expect(Buffer.from(seen).equals(data)).toBe(true);
          whole++;
        }
      },
    ));
    // the property is about whole streams: most runs must stay within the bounds
    expect(whole).toBeGreaterThan(runs * 0.8);
  });

  it('keeps what the parser did not consume and hands it on with the next bytes', () => {
    const stream = new TcpStream();
    const given: string[] = [];
    // takes only whole 4-byte words
    const parse = (buf: Buffer, off: number, len: number) => {
      const used = len - (len % 4);
      given.push(buf.toString('latin1', off, off + used));
      return used;
    };
    const data = Buffer.from('abcdefghijkl');
    stream.push(100, data, 0, 3, parse);
    stream.push(103, data, 3, 6, parse);
    stream.push(109, data, 9, 3, parse);
    expect(given.join('')).toBe('abcdefghijkl');
  });

  it('is lost when more segments wait behind a gap than it keeps, and says so once', () => {
    const stream = new TcpStream();
    const { seen, parse } = collector();
    const data = Buffer.alloc(100, 7);
    stream.push(0, data, 0, 1, parse);
    const results: boolean[] = [];
    for (let i = 0; i <= MAX_SEGMENTS_AHEAD + 2; i++) results.push(stream.push(10 + i, data, 10 + i, 1, parse));
    expect(results.filter((ok) => !ok)).toHaveLength(1);
    expect(results.indexOf(false)).toBe(MAX_SEGMENTS_AHEAD);
    expect(stream.lost).toBe(true);
    // the gap fills too late: nothing more is handed on
    stream.push(1, data, 1, 9, parse);
    expect(seen).toHaveLength(1);
  });
});
