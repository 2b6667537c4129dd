/**
 * Classic libpcap format (tcpdump.org/manpages/pcap-savefile.5.html): a 24-byte global header, then
 * records of a 16-byte header and the captured bytes. Both byte orders, microsecond and nanosecond
 * timestamps, and Kuznetzov's "modified" format (24-byte record headers).
 */
import { u32, u32le } from '../bytes.js';
import { earshotError } from '../errors.js';
import { MAX_CAPLEN, MAX_CLOCK_JUMP_MS, MAX_SNAPLEN, NEED_MORE, RecordParser } from './record-parser.js';
import { LINKTYPE_NAMES, SUPPORTED_LINKTYPES } from './types.js';

/** Magic numbers as read little-endian from the first 4 bytes. */
const PCAP_MAGIC_USEC_LE = 0xa1b2c3d4;
const PCAP_MAGIC_USEC_BE = 0xd4c3b2a1;
const PCAP_MAGIC_NSEC_LE = 0xa1b23c4d;
const PCAP_MAGIC_NSEC_BE = 0x4d3cb2a1;
const PCAP_MAGIC_MODIFIED_LE = 0xa1b2cd34;
const PCAP_MAGIC_MODIFIED_BE = 0x34cdb2a1;

const GLOBAL_HEADER_LEN = 24;
/** The upper bits of the link-type field carry FCS information (libpcap LT_LINKTYPE). */
const LINKTYPE_MASK = 0x03ff_ffff;

/** True when `magic` (first 4 bytes read little-endian) starts a classic pcap file. */
export function isClassicMagic(magic: number): boolean {
  return magic === PCAP_MAGIC_USEC_LE || magic === PCAP_MAGIC_USEC_BE || magic === PCAP_MAGIC_NSEC_LE
    || magic === PCAP_MAGIC_NSEC_BE || magic === PCAP_MAGIC_MODIFIED_LE || magic === PCAP_MAGIC_MODIFIED_BE;
}

/** Supported link types as a readable list for messages. */
export function supportedLinkTypesText(): string {
  return [...SUPPORTED_LINKTYPES].map((t) => `${t} ${LINKTYPE_NAMES[t]}`).join(', ');
}

/** Parses a classic pcap stream; `name` is the input as named in messages. */
export class ClassicPcapParser extends RecordParser {
  private littleEndian = true;
  /** Divides the fraction field into milliseconds: 1e3 for µs, 1e6 for ns. */
  private fractionPerMs = 1000;
  private recordHeaderLen = 16;
  private maxCapLen = MAX_CAPLEN;
  private linkType = 1;
  /** Snaplen from the global header, for callers that want it. */
  snaplen = 0;

  parse(buf: Buffer, pos: number, end: number, base: number): number {
    if (!this.headerDone) {
      if (end - pos < GLOBAL_HEADER_LEN) return this.needMore(pos, GLOBAL_HEADER_LEN);
      const headerEnd = this.readGlobalHeader(buf, pos);
      if (this.status !== NEED_MORE) return headerEnd;
      pos = headerEnd;
    }
    return this.littleEndian ? this.parseRecordsLE(buf, pos, end, base) : this.parseRecordsBE(buf, pos, end, base);
  }

  /** Reads the global header at pos; sets FATAL on a header we cannot use. */
  private readGlobalHeader(buf: Buffer, pos: number): number {
    const magic = buf.readUInt32LE(pos);
    this.littleEndian = magic === PCAP_MAGIC_USEC_LE || magic === PCAP_MAGIC_NSEC_LE || magic === PCAP_MAGIC_MODIFIED_LE;
    this.fractionPerMs = magic === PCAP_MAGIC_NSEC_LE || magic === PCAP_MAGIC_NSEC_BE ? 1e6 : 1e3;
    this.recordHeaderLen = magic === PCAP_MAGIC_MODIFIED_LE || magic === PCAP_MAGIC_MODIFIED_BE ? 24 : 16;
    const le = this.littleEndian;
    const major = le ? buf.readUInt16LE(pos + 4) : buf.readUInt16BE(pos + 4);
    if (major !== 2) {
      return this.fatal(earshotError('EARSHOT_ERR_BAD_CAPTURE_HEADER', this.name, 4, `pcap version ${major} (expected 2)`), pos);
    }
    this.snaplen = le ? buf.readUInt32LE(pos + 16) : buf.readUInt32BE(pos + 16);
    this.maxCapLen = Math.max(MAX_CAPLEN, Math.min(this.snaplen, MAX_SNAPLEN));
    const linkField = le ? buf.readUInt32LE(pos + 20) : buf.readUInt32BE(pos + 20);
    this.linkType = linkField & LINKTYPE_MASK;
    if (!SUPPORTED_LINKTYPES.has(this.linkType)) {
      return this.fatal(earshotError('EARSHOT_ERR_UNKNOWN_LINKTYPE', this.name, this.linkType, supportedLinkTypesText()), pos);
    }
    this.headerDone = true;
    this.status = NEED_MORE;
    return pos + GLOBAL_HEADER_LEN;
  }

  // Two copies of the record loop, one per byte order, so the hot loop has no byte-order branch.
  private parseRecordsLE(buf: Buffer, pos: number, end: number, base: number): number {
    const headerLen = this.recordHeaderLen;
    const maxCapLen = this.maxCapLen;
    const fractionPerMs = this.fractionPerMs;
    const linkType = this.linkType;
    const sink = this.sink;
    let packets = this.packets;
    let highMs = this.highMs;
    for (;;) {
      if (end - pos < headerLen) break;
      const capLen = u32le(buf, pos + 8);
      if (capLen > maxCapLen) {
        this.packets = packets;
        this.highMs = highMs;
        return this.corrupt(base, pos, `record header claims ${capLen} captured bytes (more than ${maxCapLen})`);
      }
      const recordLen = headerLen + capLen;
      if (end - pos < recordLen) {
        this.packets = packets;
        this.highMs = highMs;
        return this.needMore(pos, recordLen);
      }
      let timeMs = u32le(buf, pos) * 1000 + u32le(buf, pos + 4) / fractionPerMs;
      let outlier = false;
      if (timeMs > highMs + MAX_CLOCK_JUMP_MS) {
        // far ahead: one damaged time stamp when the next record is back (record-parser.ts)
        const next = pos + recordLen;
        if (end - next >= headerLen) {
          outlier = !(u32le(buf, next) * 1000 + u32le(buf, next + 4) / fractionPerMs > highMs + MAX_CLOCK_JUMP_MS);
          if (outlier) timeMs = highMs;
        } else if (!this.atEnd) {
          this.packets = packets;
          this.highMs = highMs;
          return this.needMore(pos, recordLen + headerLen);
        }
      }
      if (timeMs > this.releaseUntil) {
        this.packets = packets;
        this.highMs = highMs;
        return this.hold(pos, timeMs);
      }
      sink(buf, pos + headerLen, capLen, u32le(buf, pos + 12), timeMs, linkType);
      if (outlier) this.clockOutliers++;
      if (!(timeMs <= highMs)) highMs = timeMs;
      packets++;
      pos += recordLen;
    }
    this.packets = packets;
    this.highMs = highMs;
    return this.needMore(pos, headerLen);
  }

  private parseRecordsBE(buf: Buffer, pos: number, end: number, base: number): number {
    const headerLen = this.recordHeaderLen;
    const maxCapLen = this.maxCapLen;
    const fractionPerMs = this.fractionPerMs;
    const linkType = this.linkType;
    const sink = this.sink;
    let packets = this.packets;
    let highMs = this.highMs;
    for (;;) {
      if (end - pos < headerLen) break;
      const capLen = u32(buf, pos + 8);
      if (capLen > maxCapLen) {
        this.packets = packets;
        this.highMs = highMs;
        return this.corrupt(base, pos, `record header claims ${capLen} captured bytes (more than ${maxCapLen})`);
      }
      const recordLen = headerLen + capLen;
      if (end - pos < recordLen) {
        this.packets = packets;
        this.highMs = highMs;
        return this.needMore(pos, recordLen);
      }
      let timeMs = u32(buf, pos) * 1000 + u32(buf, pos + 4) / fractionPerMs;
      let outlier = false;
      if (timeMs > highMs + MAX_CLOCK_JUMP_MS) {
        // far ahead: one damaged time stamp when the next record is back (record-parser.ts)
        const next = pos + recordLen;
        if (end - next >= headerLen) {
          outlier = !(u32(buf, next) * 1000 + u32(buf, next + 4) / fractionPerMs > highMs + MAX_CLOCK_JUMP_MS);
          if (outlier) timeMs = highMs;
        } else if (!this.atEnd) {
          this.packets = packets;
          this.highMs = highMs;
          return this.needMore(pos, recordLen + headerLen);
        }
      }
      if (timeMs > this.releaseUntil) {
        this.packets = packets;
        this.highMs = highMs;
        return this.hold(pos, timeMs);
      }
      sink(buf, pos + headerLen, capLen, u32(buf, pos + 12), timeMs, linkType);
      if (outlier) this.clockOutliers++;
      if (!(timeMs <= highMs)) highMs = timeMs;
      packets++;
      pos += recordLen;
    }
    this.packets = packets;
    this.highMs = highMs;
    return this.needMore(pos, headerLen);
  }
}

/** Writes a classic pcap file header (little-endian, microseconds) of `linkType` at `at`: 24 bytes. */
export function writeClassicHeader(b: Buffer, at: number, linkType: number, snaplen: number): void {
  b.writeUInt32LE(0xa1b2c3d4, at);
  b.writeUInt16LE(2, at + 4);
  b.writeUInt16LE(4, at + 6);
  b.writeUInt32LE(0, at + 8);
  b.writeUInt32LE(0, at + 12);
  b.writeUInt32LE(snaplen, at + 16);
  b.writeUInt32LE(linkType, at + 20);
}
