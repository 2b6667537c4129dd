/**
 * Every real capture read by the file source equals tshark's reading of it: packet count, lengths,
 * bytes (MD5) and times to the microsecond; also gzip-compressed and arriving through a pipe in chunks.
 */
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { chunkedStream, differencesFromTshark, readSource, tsharkFramesOfAll, type OracleFrame } from '../../test/helpers/capture-files.js';
import { describeShared, haveShared, REAL_CAPTURES, VCFP_CAPTURES } from '../../test/helpers/shared.js';
import { buildFileSource } from './pcap-file.js';

const TRUNCATED = 'amazon-echo_alexa-timed2_xray.pcap';
const captures = haveShared()
  ? [
    ...readdirSync(REAL_CAPTURES).filter((f) => /\.pcap(ng)?$/.test(f)).map((f) => join(REAL_CAPTURES, f)),
    ...readdirSync(VCFP_CAPTURES).filter((f) => f.endsWith('.pcap')).sort().slice(0, 4).map((f) => join(VCFP_CAPTURES, f)),
  ]
  : [];
let oracle = new Map<string, OracleFrame[]>();
function framesOf(path: string): OracleFrame[] {
  const frames = oracle.get(path);
  if (frames === undefined) throw new Error(`no tshark frames for ${path}`);
  return frames;
}
const scratch = mkdtempSync(join(tmpdir(), 'earshot-capture-'));
beforeAll(async () => {
  oracle = await tsharkFramesOfAll(captures);
});
afterAll(() => rmSync(scratch, { recursive: true, force: true }));

describeShared('file source on the real captures, against tshark', () => {
  it('finds the captures', () => {
    expect(captures.length).toBeGreaterThan(30);
  });

  it.each(captures)('%s', async (path) => {
    const warnings: string[] = [];
    const { packets, stats } = await readSource(buildFileSource({ path }, { onWarning: (m) => warnings.push(m) }));
    expect(differencesFromTshark(packets, framesOf(path))).toEqual([]);
    expect(stats.packets).toBe(packets.length);
    const size = readFileSync(path).length;
    expect(stats.totalBytes).toBe(size);
    expect(stats.bytesRead).toBe(size);
    expect(stats.fileBytesRead).toBe(size);
    if (path.endsWith(TRUNCATED)) {
      expect(packets.length).toBe(3281);
      expect(stats.truncated).toBe(true);
      expect(stats.truncatedAt).toBeGreaterThan(0);
      expect(stats.truncatedAt).toBeLessThan(size);
      expect(warnings).toHaveLength(1);
      expect(warnings[0]).toContain(path);
      expect(warnings[0]).toContain(`offset ${stats.truncatedAt}`);
    } else {
      expect(stats.truncated).toBe(false);
      expect(stats.truncatedAt).toBeNull();
      expect(warnings).toEqual([]);
    }
  });

  it.each(captures)('gzip-compressed: %s', async (path) => {
    const original = readFileSync(path);
    const gzPath = join(scratch, `${path.split('/').pop()}.gz`);
    writeFileSync(gzPath, gzipSync(original));
    const { packets, stats } = await readSource(buildFileSource({ path: gzPath }, {}));
    expect(differencesFromTshark(packets, framesOf(path))).toEqual([]);
    expect(stats.bytesRead).toBe(original.length);
    expect(stats.fileBytesRead).toBe(readFileSync(gzPath).length);
    expect(stats.truncated).toBe(path.endsWith(TRUNCATED));
  });

  it.each(captures)('through a pipe in odd-sized chunks: %s', async (path) => {
    const bytes = readFileSync(path);
    // sizes from 1 byte to ~64 KiB so records and headers straddle chunk boundaries in every way
    const sizes = [1, 3, 7, 13, 24, 100, 1500, 4093, 65_536];
    const input = chunkedStream(bytes, (i) => sizes[(i * 7) % sizes.length]);
    const { packets, stats } = await readSource(buildFileSource({ path: '-', input, name: 'stdin' }, {}));
    expect(differencesFromTshark(packets, framesOf(path))).toEqual([]);
    expect(stats.totalBytes).toBeNull();
    expect(stats.truncated).toBe(path.endsWith(TRUNCATED));
  });

  it('reads a gzip stream through a pipe', async () => {
    const path = join(REAL_CAPTURES, 'amazon-echodot3_activation_neu.pcapng');
    const input = chunkedStream(gzipSync(readFileSync(path)), (i) => 1 + ((i * 977) % 5000));
    const { packets } = await readSource(buildFileSource({ path: '-', input }, {}));
    expect(differencesFromTshark(packets, framesOf(path))).toEqual([]);
  });

  it('reads a cut-off gzip file up to the cut, as a truncated capture', async () => {
    const path = join(REAL_CAPTURES, 'teams_dns-cname-sni_ndpi.pcap');
    const gz = gzipSync(readFileSync(path));
    const cutPath = join(scratch, 'cut.pcap.gz');
    writeFileSync(cutPath, gz.subarray(0, Math.floor(gz.length / 2)));
    const warnings: string[] = [];
    const { packets, stats } = await readSource(buildFileSource({ path: cutPath }, { onWarning: (m) => warnings.push(m) }));
    expect(stats.truncated).toBe(true);
    expect(warnings).toHaveLength(1);
    const frames = framesOf(path);
    expect(packets.length).toBeGreaterThan(100);
    expect(differencesFromTshark(packets, frames.slice(0, packets.length))).toEqual([]);
  });
});
