/**
 * Capture formats the real captures lack, written here and read both by the file source and by tshark
 * (the oracle): big-endian and nanosecond pcap, pcapng in either byte order, if_tsresol/if_tsoffset,
 * several interfaces with different link types, Simple and Obsolete Packet Blocks, unknown blocks,
 * several sections. Each is also read through a pipe one byte at a time.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import {
  chunkedStream, classicHeader, classicPcap, differencesFromTshark, fakeFrame, haveTshark, pcapngBlock,
  pcapngEnhancedPacket, pcapngInterface, pcapngObsoletePacket, pcapngSection, pcapngSimplePacket, readSource,
  tsharkFrames, type SyntheticPacket,
} from '../../test/helpers/capture-files.js';
import { buildFileSource } from './pcap-file.js';
import { LinkType } from './types.js';

const scratch = mkdtempSync(join(tmpdir(), 'earshot-formats-'));
afterAll(() => rmSync(scratch, { recursive: true, force: true }));

const BASE_SECONDS = 1_700_000_000;

function packets(count: number, fractionStep: number): SyntheticPacket[] {
  return Array.from({ length: count }, (_, i) => ({
    seconds: BASE_SECONDS + i, fraction: (i + 1) * fractionStep, data: fakeFrame(60 + i * 37, i),
  }));
}

/** A file of the given bytes read by the source (from disk and byte by byte through a pipe) and by tshark. */
async function checkAgainstTshark(name: string, bytes: Buffer, expectedLinkTypes?: number[]): Promise<void> {
  const path = join(scratch, name);
  writeFileSync(path, bytes);
  const frames = tsharkFrames(path);
  expect(frames.length).toBeGreaterThan(0);
  const fromFile = await readSource(buildFileSource({ path }, {}));
  expect(differencesFromTshark(fromFile.packets, frames)).toEqual([]);
  expect(fromFile.stats.truncated).toBe(false);
  const fromPipe = await readSource(buildFileSource({ path: '-', input: chunkedStream(bytes, () => 1) }, {}));
  expect(differencesFromTshark(fromPipe.packets, frames)).toEqual([]);
  if (expectedLinkTypes) expect(fromFile.packets.map((p) => p.linkType)).toEqual(expectedLinkTypes);
}

describe.runIf(haveTshark())('synthetic capture formats, against tshark', () => {
  it('classic pcap, big-endian, microseconds', async () => {
    await checkAgainstTshark('be-usec.pcap', classicPcap(packets(5, 123_456), { littleEndian: false }));
  });

  it('classic pcap, little-endian, nanoseconds', async () => {
    await checkAgainstTshark('le-nsec.pcap', classicPcap(packets(5, 123_456_789), { nanosecond: true }));
  });

  it('classic pcap, big-endian, nanoseconds, LINUX_SLL', async () => {
    await checkAgainstTshark('be-nsec-sll.pcap', classicPcap(packets(4, 999_999_999 / 4), { littleEndian: false, nanosecond: true, linkType: LinkType.LINUX_SLL }),
      [113, 113, 113, 113]);
  });

  it('classic pcap with FCS bits above the link type', async () => {
    // libpcap LT_FCS_LENGTH_PRESENT with a 4-byte FCS: 0x44000000 | ETHERNET
    const bytes = classicPcap(packets(3, 1000), { linkType: 0x4400_0001 });
    await checkAgainstTshark('fcs-bits.pcap', bytes, [1, 1, 1]);
  });

  it('classic pcap with captured length shorter than the wire length', async () => {
    const truncatedPackets = packets(3, 10).map((p) => ({ ...p, wireLen: p.data.length + 1000 }));
    await checkAgainstTshark('snapped.pcap', classicPcap(truncatedPackets, { snaplen: 200 }));
  });

  it('Kuznetzov "modified" pcap (24-byte record headers)', async () => {
    const header = classicHeader();
    header.writeUInt32LE(0xa1b2cd34, 0);
    const records = packets(3, 5).map((p) => {
      const record = Buffer.alloc(24);
      record.writeUInt32LE(p.seconds, 0);
      record.writeUInt32LE(p.fraction, 4);
      record.writeUInt32LE(p.data.length, 8);
      record.writeUInt32LE(p.data.length, 12);
      record.writeUInt32LE(2, 16); // ifindex; protocol, pkt_type and padding stay 0
      return Buffer.concat([record, p.data]);
    });
    await checkAgainstTshark('modified.pcap', Buffer.concat([header, ...records]));
  });

  it('pcapng, big-endian', async () => {
    const le = false;
    await checkAgainstTshark('be.pcapng', Buffer.concat([
      pcapngSection(le), pcapngInterface(LinkType.ETHERNET, { le }),
      pcapngEnhancedPacket(0, 1_700_000_000_123_456n, fakeFrame(60), { le }),
      pcapngEnhancedPacket(0, 1_700_000_000_987_654n, fakeFrame(1514, 3), { le }),
      pcapngEnhancedPacket(0, 1_700_000_001_000_001n, fakeFrame(61, 4), { le, wireLen: 2000 }),
    ]));
  });

  it('pcapng with if_tsresol 10^-9 and 2^-20, and if_tsoffset', async () => {
    await checkAgainstTshark('tsresol.pcapng', Buffer.concat([
      pcapngSection(), pcapngInterface(LinkType.ETHERNET, { tsresol: 9 }),
      pcapngInterface(LinkType.ETHERNET, { tsresol: 0x80 | 20 }),
      pcapngInterface(LinkType.ETHERNET, { tsresol: 3, tsoffset: 1_600_000_000 }),
      pcapngEnhancedPacket(0, 1_700_000_000_123_456_789n, fakeFrame(60)),
      pcapngEnhancedPacket(1, BigInt(BASE_SECONDS) * 1_048_576n + 524_288n + 1n, fakeFrame(70)),
      pcapngEnhancedPacket(2, 100_000_123n, fakeFrame(80)),
      pcapngEnhancedPacket(0, 1_700_000_000_999_999_999n, fakeFrame(90)),
    ]));
  });

  it('pcapng with two interfaces of different link types', async () => {
    await checkAgainstTshark('two-links.pcapng', Buffer.concat([
      pcapngSection(), pcapngInterface(LinkType.ETHERNET), pcapngInterface(LinkType.LINUX_SLL),
      pcapngEnhancedPacket(0, 1_700_000_000_000_001n, fakeFrame(60)),
      pcapngEnhancedPacket(1, 1_700_000_000_000_002n, fakeFrame(44, 1)),
      pcapngEnhancedPacket(1, 1_700_000_000_000_003n, fakeFrame(45, 2)),
      pcapngEnhancedPacket(0, 1_700_000_000_000_004n, fakeFrame(66, 3)),
    ]), [1, 113, 113, 1]);
  });

  it('pcapng Simple Packet Blocks (interface 0, cut to its snaplen)', async () => {
    await checkAgainstTshark('spb.pcapng', Buffer.concat([
      pcapngSection(), pcapngInterface(LinkType.ETHERNET, { snaplen: 128 }),
      pcapngSimplePacket(fakeFrame(60)),
      pcapngSimplePacket(fakeFrame(128, 1), { wireLen: 1500 }),
      pcapngEnhancedPacket(0, 1_700_000_000_500_000n, fakeFrame(62, 2)),
      pcapngSimplePacket(fakeFrame(63, 3)),
    ]));
  });

  it('pcapng Obsolete Packet Blocks', async () => {
    await checkAgainstTshark('opb.pcapng', Buffer.concat([
      pcapngSection(), pcapngInterface(LinkType.ETHERNET),
      pcapngObsoletePacket(0, 1_700_000_000_000_010n, fakeFrame(60)),
      pcapngObsoletePacket(0, 1_700_000_000_000_020n, fakeFrame(99, 1), { wireLen: 150 }),
    ]));
  });

  it('pcapng with unknown blocks, small and larger than a chunk', async () => {
    await checkAgainstTshark('unknown-blocks.pcapng', Buffer.concat([
      pcapngSection(), pcapngBlock(0x8000_1234, Buffer.alloc(22, 7)), pcapngInterface(LinkType.ETHERNET),
      pcapngEnhancedPacket(0, 1_700_000_000_000_001n, fakeFrame(60)),
      pcapngBlock(0x8000_4321, Buffer.alloc(3 * 1024 * 1024, 9)),
      pcapngEnhancedPacket(0, 1_700_000_000_000_002n, fakeFrame(70, 1)),
      pcapngBlock(0x8000_1234, Buffer.alloc(0)),
      pcapngEnhancedPacket(0, 1_700_000_000_000_003n, fakeFrame(80, 2)),
    ]));
  });

  it('pcapng with two sections of different byte order, each with its own interfaces', async () => {
    await checkAgainstTshark('two-sections.pcapng', Buffer.concat([
      pcapngSection(true), pcapngInterface(LinkType.ETHERNET, { le: true }),
      pcapngEnhancedPacket(0, 1_700_000_000_000_001n, fakeFrame(60), { le: true }),
      pcapngSection(false), pcapngInterface(LinkType.RAW, { le: false, tsresol: 9 }), pcapngInterface(LinkType.ETHERNET, { le: false }),
      pcapngEnhancedPacket(0, 1_700_000_001_000_000_002n, fakeFrame(40, 1), { le: false }),
      pcapngEnhancedPacket(1, 1_700_000_002_000_003n, fakeFrame(64, 2), { le: false }),
    ]), [1, 101, 1]);
  });

  it('a pcapng interface with an unsupported link type is fine while no packet uses it', async () => {
    await checkAgainstTshark('unused-iface.pcapng', Buffer.concat([
      pcapngSection(), pcapngInterface(147), pcapngInterface(LinkType.ETHERNET),
      pcapngEnhancedPacket(1, 1_700_000_000_000_001n, fakeFrame(60)),
    ]), [1]);
  });
});
