/**
 * Unusable input rejects run() with one coded error naming the file; a damaged or cut-off record stops
 * reading there (truncated, its offset in stats and in one warning) and keeps the packets before it.
 */
import { spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { afterAll, describe, expect, it } from 'vitest';
import { isEarshotError, type ErrorCode } from '../errors.js';
import {
  chunkedStream, classicHeader, classicPcap, classicRecord, fakeFrame, haveTshark, pcapngBlock,
  pcapngEnhancedPacket, pcapngInterface, pcapngSection, readSource, tsharkFrames, type SyntheticPacket,
} from '../../test/helpers/capture-files.js';
import { EARSHOT_BIN, runCli } from '../../test/helpers/cli.js';
import { buildFileSource } from './pcap-file.js';
import { LinkType } from './types.js';

const scratch = mkdtempSync(join(tmpdir(), 'earshot-bad-input-'));
afterAll(() => rmSync(scratch, { recursive: true, force: true }));

function fileOf(name: string, bytes: Buffer | string): string {
  const path = join(scratch, name);
  writeFileSync(path, bytes);
  return path;
}

async function expectError(path: string, code: ErrorCode, ...fragments: string[]): Promise<void> {
  const warnings: string[] = [];
  const error = await buildFileSource({ path }, { onWarning: (m) => warnings.push(m) }).run(() => {}).then(
    () => null, (err: unknown) => err);
  expect(isEarshotError(error), `expected ${code}, got ${String(error)}`).toBe(true);
  if (!isEarshotError(error)) return;
  expect(error.code).toBe(code);
  expect(error.message).toContain(path);
  for (const fragment of fragments) expect(error.message).toContain(fragment);
  expect(error.message).not.toContain('\n');
  expect(warnings).toEqual([]);
}

/** Reads `bytes` from a file; expects a truncation at `offset` after `packets` packets. */
async function expectTruncated(name: string, bytes: Buffer, packets: number, offset: number): Promise<void> {
  const path = fileOf(name, bytes);
  const warnings: string[] = [];
  const result = await readSource(buildFileSource({ path }, { onWarning: (m) => warnings.push(m) }));
  expect(result.packets).toHaveLength(packets);
  expect(result.stats.truncated).toBe(true);
  expect(result.stats.truncatedAt).toBe(offset);
  expect(warnings).toHaveLength(1);
  expect(warnings[0]).toContain(path);
  expect(warnings[0]).toContain(`offset ${offset}`);
  if (haveTshark()) expect(tsharkFrames(path)).toHaveLength(packets);
  // the same through a pipe in tiny chunks: same packets, same offset
  const piped = await readSource(buildFileSource({ path: '-', input: chunkedStream(bytes, (i) => 1 + (i % 5)) }, {}));
  expect(piped.packets).toHaveLength(packets);
  expect(piped.stats.truncatedAt).toBe(offset);
}

const three: SyntheticPacket[] = [0, 1, 2].map((i) => ({ seconds: 1_700_000_000 + i, fraction: 0, data: fakeFrame(100, i) }));

describe('unusable input', () => {
  it('missing file', async () => {
    await expectError(join(scratch, 'no-such.pcap'), 'EARSHOT_ERR_FILE_NOT_FOUND');
  });

  it('a directory', async () => {
    const dir = join(scratch, 'a-dir');
    mkdirSync(dir);
    await expectError(dir, 'EARSHOT_ERR_FILE_IS_DIRECTORY');
  });

  it('a text file, naming what it found', async () => {
    await expectError(fileOf('notes.txt', 'Hello, this is not a capture\n'), 'EARSHOT_ERR_NOT_A_CAPTURE', '48 65 6c 6c', '"Hello, t"');
  });

  it('an empty file', async () => {
    await expectError(fileOf('empty.pcap', ''), 'EARSHOT_ERR_NOT_A_CAPTURE', 'empty');
  });

  it('a file of 2 bytes', async () => {
    await expectError(fileOf('two.pcap', Buffer.from([0xd4, 0xc3])), 'EARSHOT_ERR_NOT_A_CAPTURE', 'only 2 bytes');
  });

  it('a file shorter than the pcap global header', async () => {
    await expectError(fileOf('short.pcap', classicHeader().subarray(0, 20)), 'EARSHOT_ERR_BAD_CAPTURE_HEADER', 'file header');
  });

  it('a pcapng file that ends inside its section header', async () => {
    await expectError(fileOf('short.pcapng', pcapngSection().subarray(0, 16)), 'EARSHOT_ERR_BAD_CAPTURE_HEADER');
  });

  it('a pcapng section header with a bad byte-order magic', async () => {
    const section = pcapngSection();
    section.writeUInt32LE(0x12345678, 8);
    await expectError(fileOf('bad-bom.pcapng', section), 'EARSHOT_ERR_BAD_CAPTURE_HEADER', 'byte-order');
  });

  it('a pcap of an unknown version', async () => {
    const header = classicHeader();
    header.writeUInt16LE(3, 4);
    await expectError(fileOf('v3.pcap', Buffer.concat([header, classicRecord(three[0])])), 'EARSHOT_ERR_BAD_CAPTURE_HEADER', 'version 3');
  });

  it('a pcap with an unsupported link type (147 USER0)', async () => {
    await expectError(fileOf('user0.pcap', classicPcap(three, { linkType: 147 })), 'EARSHOT_ERR_UNKNOWN_LINKTYPE', '147', 'ETHERNET');
  });

  it('a pcapng whose every packet is on interfaces of unsupported link types', async () => {
    const bytes = Buffer.concat([pcapngSection(), pcapngInterface(LinkType.ETHERNET), pcapngInterface(147), pcapngInterface(105),
      pcapngEnhancedPacket(1, 1n, fakeFrame(60)), pcapngEnhancedPacket(2, 2n, fakeFrame(60))]);
    await expectError(fileOf('user0.pcapng', bytes), 'EARSHOT_ERR_UNKNOWN_LINKTYPE', '147, 105', 'ETHERNET');
  });

  it('a zstd-compressed file, saying so', async () => {
    await expectError(fileOf('x.pcap.zst', Buffer.from([0x28, 0xb5, 0x2f, 0xfd, 0, 0, 0, 0])), 'EARSHOT_ERR_NOT_A_CAPTURE', 'zstd');
  });

  it('broken gzip before any capture data', async () => {
    const gz = gzipSync(classicPcap(three));
    gz.fill(0xee, 10, 40);
    await expectError(fileOf('broken.pcap.gz', gz), 'EARSHOT_ERR_GZIP');
  });

  it('a gzip file cut inside its first block: "decompresses to nothing", not "empty input"', async () => {
    await expectError(fileOf('cut10.pcap.gz', gzipSync(classicPcap(three)).subarray(0, 10)), 'EARSHOT_ERR_NOT_A_CAPTURE', 'gzip file of 10 bytes', 'decompresses to nothing');
  });

  it('gzip of something that is not a capture', async () => {
    await expectError(fileOf('text.gz', gzipSync('just text, no packets')), 'EARSHOT_ERR_NOT_A_CAPTURE', '"just tex"');
  });
});

describe('damaged or cut-off records stop reading there', () => {
  const header = classicHeader();
  const records = three.map((p) => classicRecord(p));
  const thirdAt = header.length + records[0].length + records[1].length;

  it('a pcap cut inside the third record', async () => {
    const bytes = Buffer.concat([header, ...records]);
    await expectTruncated('cut.pcap', bytes.subarray(0, bytes.length - 10), 2, thirdAt);
  });

  it('a pcap cut inside the third record header', async () => {
    await expectTruncated('cut-header.pcap', Buffer.concat([header, records[0], records[1], records[2].subarray(0, 9)]), 2, thirdAt);
  });

  it('a pcap record claiming a huge captured length', async () => {
    const bad = Buffer.from(records[2]);
    bad.writeUInt32LE(0x7fff_0000, 8);
    await expectTruncated('huge-caplen.pcap', Buffer.concat([header, records[0], records[1], bad, records[0]]), 2, thirdAt);
  });

  const section = Buffer.concat([pcapngSection(), pcapngInterface(LinkType.ETHERNET)]);
  const epbs = [1n, 2n, 3n].map((t) => pcapngEnhancedPacket(0, 1_700_000_000_000_000n + t, fakeFrame(100)));
  const thirdBlockAt = section.length + epbs[0].length + epbs[1].length;

  it('a pcapng block length that is not a multiple of 4', async () => {
    const bad = Buffer.from(epbs[2]);
    bad.writeUInt32LE(bad.length + 1, 4);
    await expectTruncated('odd-length.pcapng', Buffer.concat([section, epbs[0], epbs[1], bad, epbs[0]]), 2, thirdBlockAt);
  });

  it('a pcapng block shorter than its type allows', async () => {
    const bad = Buffer.from(epbs[2]);
    bad.writeUInt32LE(16, 4);
    await expectTruncated('tiny-block.pcapng', Buffer.concat([section, epbs[0], epbs[1], bad]), 2, thirdBlockAt);
  });

  it('a pcapng block whose trailing length differs', async () => {
    const bad = Buffer.from(epbs[2]);
    bad.writeUInt32LE(12, bad.length - 4);
    await expectTruncated('trailer.pcapng', Buffer.concat([section, epbs[0], epbs[1], bad, epbs[0]]), 2, thirdBlockAt);
  });

  it('a pcapng packet claiming more captured bytes than its block holds', async () => {
    const bad = Buffer.from(epbs[2]);
    bad.writeUInt32LE(5000, 20);
    await expectTruncated('caplen-past-block.pcapng', Buffer.concat([section, epbs[0], epbs[1], bad]), 2, thirdBlockAt);
  });

  it('a pcapng packet naming an interface that was never described', async () => {
    const bad = Buffer.from(epbs[2]);
    bad.writeUInt32LE(4, 8);
    await expectTruncated('no-iface.pcapng', Buffer.concat([section, epbs[0], epbs[1], bad]), 2, thirdBlockAt);
  });

  it('a pcapng cut inside a block', async () => {
    await expectTruncated('cut.pcapng', Buffer.concat([section, epbs[0], epbs[1], epbs[2].subarray(0, 50)]), 2, thirdBlockAt);
  });

  it('a pcapng cut inside a large unknown block', async () => {
    const big = pcapngBlock(0x8000_0001, Buffer.alloc(2 * 1024 * 1024));
    await expectTruncated('cut-big.pcapng', Buffer.concat([section, epbs[0], epbs[1], big.subarray(0, 1_500_000)]), 2, thirdBlockAt);
  });
});

describe('a pcapng packet time no date holds', () => {
  // 2^62 µs is ~146,000 years: JavaScript's dates end in the year 275760, and the report's ISO times ended
  // the run with "RangeError: Invalid time value" (an internal error, no report)
  const t0 = 1_700_000_000_000_000n;
  const frames = [fakeFrame(60, 1), fakeFrame(60, 2), fakeFrame(60, 3)];
  const bytes = Buffer.concat([pcapngSection(), pcapngInterface(LinkType.ETHERNET), pcapngEnhancedPacket(0, t0, frames[0]),
    pcapngEnhancedPacket(0, 1n << 62n, frames[1]), pcapngEnhancedPacket(0, t0 + 1000n, frames[2])]);

  it('keeps the packet with the time before it, and says so once', async () => {
    const path = fileOf('far-future.pcapng', bytes);
    const warnings: string[] = [];
    const { packets, stats } = await readSource(buildFileSource({ path }, { onWarning: (m) => warnings.push(m) }));
    expect(packets.map((p) => p.timeMs)).toEqual([1_700_000_000_000, 1_700_000_000_000, 1_700_000_000_001]);
    expect(stats.truncated).toBe(false);
    expect(warnings).toEqual([`${path}: 1 packet has a time past the year 9999 (an interface's if_tsresol or if_tsoffset, or a damaged time stamp): each took the time of the packet before it`]);
    if (haveTshark()) expect(tsharkFrames(path).map((f) => f.md5)).toEqual(packets.map((p) => p.md5));
  });

  it('earshot replay writes its report, exit 0', async () => {
    const path = fileOf('far-future-cli.pcapng', bytes);
    const result = await runCli(['replay', path, '--format', 'json', '--log-format', 'text']);
    expect(result.code, result.stderr).toBe(0);
    expect((JSON.parse(result.stdout) as { capture: { packets: number } }).capture.packets).toBe(3);
    expect(result.stderr).toContain('1 packet has a time past the year 9999');
  });
});

describe('a paced replay over a capture whose clock jumps by a month', () => {
  it('waits quietly (setTimeout past 24.8 days fired every 1 ms with a warning) and stops on SIGTERM with its report (interrupted: 143)', async () => {
    const t0 = 1_700_000_000;
    // two packets after the gap: a jump they share is the capture's own, waited for (one alone, a day or
    // more ahead of the rest and the last of the input, is not paced: record-parser.ts)
    const path = fileOf('month-gap.pcap', classicPcap([
      { seconds: t0, fraction: 0, data: fakeFrame(60, 1) },
      { seconds: t0 + 30 * 86_400, fraction: 0, data: fakeFrame(60, 2) },
      { seconds: t0 + 30 * 86_400 + 1, fraction: 0, data: fakeFrame(60, 3) },
    ]));
    const child = spawn(process.execPath, [EARSHOT_BIN, 'replay', path, '--realtime-speed', '1', '--format', 'json'], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => { stdout += d.toString(); });
    child.stderr.on('data', (d: Buffer) => { stderr += d.toString(); });
    const exited = new Promise<number | null>((resolve) => child.on('close', (code) => resolve(code)));
    await new Promise((r) => setTimeout(r, 3_000));
    // user + system time of the process so far, in clock ticks (100 a second here)
    const [utime, stime] = readFileSync(`/proc/${child.pid}/stat`, 'utf8').split(') ')[1].split(' ').slice(11, 13).map(Number);
    child.kill('SIGTERM');
    expect(await exited, stderr).toBe(143);
    expect(stderr).not.toContain('TimeoutOverflowWarning');
    // a busy loop took ~3 s of CPU in 3 s; waiting takes start-up and little more
    expect((utime + stime) / 100).toBeLessThan(1.5);
    expect((JSON.parse(stdout) as { capture: { packets: number } }).capture.packets).toBe(1);
  }, 30_000);
});

/**
 * Packets are lost only where the input is damaged. The expected packets are the test's own (the capture
 * is built here) and tshark's reading of the same file where it is installed.
 */
describe('what can be read is read', () => {
  const many: SyntheticPacket[] = Array.from({ length: 400 }, (_, i) => ({ seconds: 1_700_000_000 + i, fraction: i, data: fakeFrame(60 + (i % 900), i) }));
  const capture = classicPcap(many);
  /** Offset of the 151st record, plus 33 bytes: inside it. */
  const cut = 24 + many.slice(0, 150).reduce((sum, p) => sum + 16 + p.data.length, 0) + 33;

  async function readAll(name: string, bytes: Buffer): Promise<{ packets: number; truncated: boolean; warnings: string[] }> {
    const path = fileOf(name, bytes);
    const warnings: string[] = [];
    const { packets, stats } = await readSource(buildFileSource({ path }, { onWarning: (m) => warnings.push(m) }));
    // the same through a pipe in small chunks
    const piped = await readSource(buildFileSource({ path: '-', input: chunkedStream(bytes, (i) => 1 + ((i * 37) % 3000)) }, {}));
    expect(piped.packets).toHaveLength(packets.length);
    return { packets: packets.length, truncated: stats.truncated, warnings };
  }

  it('a pcapng packet on an interface of an unsupported link type is skipped, counted and said once; the others are read', async () => {
    const bytes = Buffer.concat([pcapngSection(), pcapngInterface(LinkType.ETHERNET), pcapngEnhancedPacket(0, 1n, fakeFrame(60)),
      pcapngInterface(105), pcapngEnhancedPacket(1, 2n, fakeFrame(60)), pcapngEnhancedPacket(0, 3n, fakeFrame(70)), pcapngEnhancedPacket(1, 4n, fakeFrame(60))]);
    const path = fileOf('wlan-and-lan.pcapng', bytes);
    const warnings: string[] = [];
    const { packets, stats } = await readSource(buildFileSource({ path }, { onWarning: (m) => warnings.push(m) }));
    expect(packets.map((p) => p.capLen)).toEqual([60, 70]);
    expect(stats.unsupportedLinkPackets).toBe(2);
    expect(stats.truncated).toBe(false);
    expect(warnings).toHaveLength(1);
    expect(warnings[0]).toContain(path);
    expect(warnings[0]).toContain('2 packets on interfaces of link type 105');
    if (haveTshark()) expect(tsharkFrames(path)).toHaveLength(4);
  });

  it('a gzip checksum that does not match: every packet, one warning, not truncated', async () => {
    const gz = gzipSync(capture);
    gz[gz.length - 8] ^= 0xff;
    const r = await readAll('crc.pcap.gz', gz);
    expect(r.packets).toBe(many.length);
    expect(r.truncated).toBe(false);
    expect(r.warnings).toHaveLength(1);
    expect(r.warnings[0]).toContain('gzip checksum');
  });

  it('junk after the gzip data is ignored with one warning, as gzip -d does; zero padding silently', async () => {
    const gz = gzipSync(capture);
    const junk = await readAll('junk.pcap.gz', Buffer.concat([gz, Buffer.from('garbage\n')]));
    expect(junk.packets).toBe(many.length);
    expect(junk.truncated).toBe(false);
    expect(junk.warnings).toHaveLength(1);
    expect(junk.warnings[0]).toContain(`compressed byte ${gz.length}`);
    const padded = await readAll('padded.pcap.gz', Buffer.concat([gz, Buffer.alloc(512)]));
    expect(padded).toEqual({ packets: many.length, truncated: false, warnings: [] });
  });

  it('gzip members one after another (bgzip, cat a.gz b.gz) read as one stream, split inside a record', async () => {
    const members = Buffer.concat([gzipSync(capture.subarray(0, cut)), gzipSync(capture.subarray(cut, 70_000)), gzipSync(capture.subarray(70_000))]);
    const r = await readAll('members.pcap.gz', members);
    expect(r).toEqual({ packets: many.length, truncated: false, warnings: [] });
  });

  it('a gzip file cut short: the packets before the cut, truncated, and the warning says the gzip stream ended early', async () => {
    const gz = gzipSync(capture);
    const r = await readAll('cut.pcap.gz', gz.subarray(0, Math.floor(gz.length / 2)));
    expect(r.packets).toBeGreaterThan(0);
    expect(r.packets).toBeLessThan(many.length);
    expect(r.truncated).toBe(true);
    expect(r.warnings).toHaveLength(1);
    expect(r.warnings[0]).toContain('the gzip stream ends before its end');
  });

  it('damaged deflate data: the packets before the damage, truncated, the compressed offset named', async () => {
    // two members, the second's first deflate block of the reserved type 3: zlib refuses it at once
    const first = gzipSync(capture.subarray(0, cut));
    const second = gzipSync(capture.subarray(cut));
    second[10] = 0x07;
    const r = await readAll('damaged.pcap.gz', Buffer.concat([first, second]));
    expect(r.packets).toBe(150);
    expect(r.truncated).toBe(true);
    expect(r.warnings).toHaveLength(1);
    expect(r.warnings[0]).toContain(`gzip data is damaged near compressed byte ${first.length + 10} (invalid block type)`);
  });
});
