/**
 * Fuzzing the file reader: random bytes, random bytes behind each magic number, and real captures with
 * bytes overwritten, each arriving in random-sized chunks. The reader must never throw a raw error (run()
 * resolves, or rejects with an EarshotError) and never hand the sink a range outside its buffer.
 */
import { readFileSync } from 'node:fs';
import { gzipSync } from 'node:zlib';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { isEarshotError } from '../errors.js';
import {
  chunkedStream, classicPcap, fakeFrame, pcapngEnhancedPacket, pcapngInterface, pcapngSection, pcapngSimplePacket, readSource,
} from '../../test/helpers/capture-files.js';
import { haveShared, realCapture } from '../../test/helpers/shared.js';
import { buildFileSource } from './pcap-file.js';

/** What a read produced, comparable across chunkings: packets, truncation and the error code. */
async function readOutcome(bytes: Buffer, chunkSizes: number[]): Promise<string> {
  const input = chunkedStream(bytes, (i) => chunkSizes[i % chunkSizes.length]);
  let warnings = 0;
  // said once each, apart from any truncation: a damaged pcapng time stamp past the year 9999, packets
  // skipped on an interface of an unsupported link type, a gzip checksum, junk after the gzip data, time
  // stamps far ahead of the packets around them
  const notes: string[] = [];
  const onWarning = (m: string) => (/past the year 9999|which earshot cannot decode|gzip checksum|follows the gzip data|more than a day ahead/.test(m) ? notes.push(m) : warnings++);
  try {
    const { packets, stats } = await readSource(buildFileSource({ path: '-', input }, { onWarning }));
    expect(stats.packets).toBe(packets.length);
    expect(stats.fileBytesRead).toBeLessThanOrEqual(bytes.length);
    expect(warnings).toBe(stats.truncated ? 1 : 0);
    expect(new Set(notes.map((m) => m.replace(/\d+/g, '#'))).size).toBe(notes.length);
    return JSON.stringify({ packets, truncatedAt: stats.truncatedAt, notes });
  } catch (err) {
    if (isEarshotError(err)) return err.code;
    throw err;
  }
}

/**
 * Fails the property on anything but success or an EarshotError, and when reading in random chunks
 * gives another result than reading in one piece (a record must never depend on where chunks end).
 */
async function readsSafely(bytes: Buffer, chunkSizes: number[]): Promise<boolean> {
  const whole = await readOutcome(bytes, [bytes.length || 1]);
  const chunked = await readOutcome(bytes, chunkSizes);
  expect(chunked).toBe(whole);
  return true;
}

const chunkSizes = fc.array(fc.oneof(fc.integer({ min: 1, max: 8 }), fc.integer({ min: 1, max: 4096 })), { minLength: 1, maxLength: 8 });
const MAGICS = [
  Buffer.from('d4c3b2a1', 'hex'), Buffer.from('a1b2c3d4', 'hex'), Buffer.from('4d3cb2a1', 'hex'), Buffer.from('a1b23c4d', 'hex'),
  Buffer.from('34cdb2a1', 'hex'), Buffer.from('0a0d0d0a', 'hex'), Buffer.from('1f8b', 'hex'),
];

const synthetic = [
  classicPcap([0, 1, 2, 3].map((i) => ({ seconds: 1_700_000_000 + i, fraction: i, data: fakeFrame(40 + i * 50, i) }))),
  classicPcap([0, 1, 2].map((i) => ({ seconds: i, fraction: i, data: fakeFrame(60, i) })), { littleEndian: false, nanosecond: true }),
  Buffer.concat([pcapngSection(), pcapngInterface(1, { tsresol: 9 }), pcapngInterface(113), pcapngEnhancedPacket(0, 5n, fakeFrame(70)),
    pcapngEnhancedPacket(1, 6n, fakeFrame(50)), pcapngSimplePacket(fakeFrame(64)),
    pcapngSection(false), pcapngInterface(101, { le: false }), pcapngEnhancedPacket(0, 7n, fakeFrame(30), { le: false })]),
];
const real = haveShared()
  ? [readFileSync(realCapture('smtp-starttls_vlan-ipv6_ndpi.pcap')).subarray(0, 6000),
    readFileSync(realCapture('sonos_local-tls_ndpi.pcapng')).subarray(0, 8000)]
  : [];
const seeds = [...synthetic, ...real];

/** A seed file with up to 12 bytes overwritten, some at the start where the headers are. */
const mutated = fc.tuple(
  fc.integer({ min: 0, max: seeds.length - 1 }),
  fc.array(fc.tuple(fc.nat(), fc.integer({ min: 0, max: 255 }), fc.boolean()), { maxLength: 12 }),
  fc.option(fc.nat(), { nil: undefined }),
).map(([which, edits, cut]) => {
  const bytes = Buffer.from(seeds[which]);
  for (const [position, value, nearStart] of edits) bytes[nearStart ? position % Math.min(64, bytes.length) : position % bytes.length] = value;
  return cut === undefined ? bytes : bytes.subarray(0, cut % (bytes.length + 1));
});

/** Small numbers most of the time, so interface ids and lengths are often valid or almost right. */
const fieldValue = fc.oneof(fc.integer({ min: 0, max: 3 }), fc.integer({ min: 0, max: 300 }), fc.integer({ min: 0, max: 0xffff_ffff }));

/** A pcapng block of a known or unknown type with plausible fields, its lengths right or not. */
const pcapngBlockArb = fc.record({
  type: fc.constantFrom(1, 2, 3, 6, 6, 6, 0x0a0d0d0a, 5, 0x8000_0001),
  body: fc.uint8Array({ maxLength: 200 }),
  fields: fc.array(fieldValue, { minLength: 5, maxLength: 5 }),
  bigEndian: fc.boolean(),
  lengthDelta: fc.oneof(fc.constant(0), fc.constant(0), fc.integer({ min: -16, max: 16 })),
  trailerDelta: fc.oneof(fc.constant(0), fc.constant(0), fc.constant(0), fc.integer({ min: -8, max: 8 })),
}).map(({ type, body, fields, bigEndian, lengthDelta, trailerDelta }) => {
  const le = !bigEndian;
  const fixed = Buffer.alloc(20);
  if (type === 0x0a0d0d0a) {
    fixed.writeUInt32LE(0x1a2b3c4d, 0);
    if (!le) fixed.writeUInt32BE(0x1a2b3c4d, 0);
    fixed[le ? 4 : 5] = 1;
  } else {
    for (let i = 0; i < 5; i++) {
      if (le) fixed.writeUInt32LE(fields[i], i * 4); else fixed.writeUInt32BE(fields[i], i * 4);
    }
  }
  const content = Buffer.concat([fixed, Buffer.from(body)]);
  const padded = Buffer.concat([content, Buffer.alloc((4 - (content.length % 4)) % 4)]);
  const length = padded.length + 12;
  const block = Buffer.alloc(length);
  const write = (value: number, at: number) => (le ? block.writeUInt32LE(value >>> 0, at) : block.writeUInt32BE(value >>> 0, at));
  write(type, 0);
  write(length + lengthDelta, 4);
  padded.copy(block, 8);
  write(length + trailerDelta, length - 4);
  return block;
});

/** A pcapng file: a section header, an interface, then blocks with plausible but often wrong fields. */
const structuredPcapng = fc.array(pcapngBlockArb, { maxLength: 12 })
  .map((blocks) => Buffer.concat([pcapngSection(), pcapngInterface(1), ...blocks]));

/** A classic pcap file whose records have random, often almost right, lengths. */
const structuredPcap = fc.tuple(
  fc.boolean(),
  fc.array(fc.record({ capLen: fieldValue, wireLen: fieldValue, time: fieldValue, data: fc.uint8Array({ maxLength: 300 }), exact: fc.boolean() }), { maxLength: 12 }),
).map(([bigEndian, records]) => {
  const le = !bigEndian;
  const parts = [classicPcap([], { littleEndian: le })];
  for (const r of records) {
    const header = Buffer.alloc(16);
    const capLen = r.exact ? r.data.length : r.capLen;
    const values = [r.time, r.time % 1_000_000, capLen, r.wireLen];
    values.forEach((v, i) => (le ? header.writeUInt32LE(v >>> 0, i * 4) : header.writeUInt32BE(v >>> 0, i * 4)));
    parts.push(header, Buffer.from(r.data));
  }
  return Buffer.concat(parts);
});

describe('file reader fuzzing', () => {
  it('pcapng built from plausible but damaged blocks', async () => {
    await fc.assert(fc.asyncProperty(structuredPcapng, chunkSizes, (bytes, sizes) => readsSafely(bytes, sizes)), { numRuns: 600 });
  });

  it('classic pcap built from records with damaged lengths', async () => {
    await fc.assert(fc.asyncProperty(structuredPcap, chunkSizes, (bytes, sizes) => readsSafely(bytes, sizes)), { numRuns: 400 });
  });

  it('random bytes', async () => {
    await fc.assert(fc.asyncProperty(fc.uint8Array({ maxLength: 3000 }), chunkSizes,
      (bytes, sizes) => readsSafely(Buffer.from(bytes), sizes)), { numRuns: 300 });
  });

  it('random bytes behind a real magic number', async () => {
    await fc.assert(fc.asyncProperty(fc.constantFrom(...MAGICS), fc.uint8Array({ maxLength: 3000 }), chunkSizes,
      (magic, bytes, sizes) => readsSafely(Buffer.concat([magic, Buffer.from(bytes)]), sizes)), { numRuns: 500 });
  });

  it('captures with bytes overwritten or cut off', async () => {
    await fc.assert(fc.asyncProperty(mutated, chunkSizes, (bytes, sizes) => readsSafely(bytes, sizes)), { numRuns: 600 });
  });

  it('gzip-compressed mutated captures, the gzip stream also damaged', async () => {
    await fc.assert(fc.asyncProperty(mutated, fc.array(fc.tuple(fc.nat(), fc.integer({ min: 0, max: 255 })), { maxLength: 3 }), chunkSizes,
      (bytes, edits, sizes) => {
        const gz = gzipSync(bytes);
        for (const [position, value] of edits) gz[position % gz.length] = value;
        return readsSafely(gz, sizes);
      }), { numRuns: 200 });
  });
});
