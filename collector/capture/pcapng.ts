/**
 * pcapng (IETF draft-ietf-opsawg-pcapng): sections (each with its own byte order and interface list),
 * interface descriptions (link type, snaplen, if_tsresol, if_tsoffset), and packets from Enhanced,
 * Simple and Obsolete Packet Blocks. Other blocks are skipped by their length.
 */
import { MAX_CAPLEN, MAX_CLOCK_JUMP_MS, MAX_SKIPPED_LINK_TYPES, MAX_SNAPLEN, NEED_MORE, RecordParser } from './record-parser.js';
import { SUPPORTED_LINKTYPES } from './types.js';

/** Block type of the Section Header Block; a palindrome, so it reads the same in both byte orders. */
export const PCAPNG_SHB = 0x0a0d0d0a;
const BYTE_ORDER_MAGIC = 0x1a2b3c4d;
const BYTE_ORDER_MAGIC_SWAPPED = 0x4d3c2b1a;
const IDB = 1;
const OPB = 2;
const SPB = 3;
const EPB = 6;
/** Smallest legal total length per block type (header, fixed fields, trailer). */
const MIN_SHB = 28;
const MIN_IDB = 20;
const MIN_EPB = 32;
/** Bytes of an Enhanced Packet Block up to the end of its time stamp: what the look at the next packet reads. */
const NEXT_TIME_BYTES = 20;
const MIN_SPB = 16;
const MIN_OPB = 32;
const MIN_BLOCK = 12;
/** Blocks we must hold whole are limited to this; larger unknown blocks are skipped as they stream by. */
const MAX_LOADED_BLOCK = MAX_SNAPLEN + 65_536;
/** Bounds memory against a file of nothing but interface descriptions. */
const MAX_INTERFACES = 65_536;
const OPT_END = 0;
const OPT_IF_TSRESOL = 9;
/** The last millisecond of the year 9999: later packet times (or negative ones) are out of range. */
export const MAX_PACKET_TIME_MS = 253_402_300_799_999;
const OPT_IF_TSOFFSET = 14;

/** What a packet needs from its interface, worked out once when the IDB is read. */
class PcapngInterface {
  constructor(
    readonly linkType: number,
    /** 0 = no limit. */
    readonly snaplen: number,
    readonly maxCapLen: number,
    /** Timestamp units per millisecond (1000 for the default microseconds). */
    readonly unitsPerMs: number,
    readonly offsetMs: number,
    readonly supported: boolean,
  ) {}
}

function u32(buf: Buffer, at: number, le: boolean): number {
  return le ? buf.readUInt32LE(at) : buf.readUInt32BE(at);
}

function u16(buf: Buffer, at: number, le: boolean): number {
  return le ? buf.readUInt16LE(at) : buf.readUInt16BE(at);
}

/** Parses a pcapng stream. */
export class PcapngParser extends RecordParser {
  private littleEndian = true;
  private interfaces: PcapngInterface[] = [];
  /** Bytes of a large unknown block still to skip, and where that block started. */
  private skipRemaining = 0;
  private skipBlockOffset = 0;
  /** Simple Packet Blocks carry no time: they get the time of the packet before them. */
  private lastTimeMs = 0;
  /** End of the buffer parse() was given, and the section's byte order: what nextPacketTime() may read. */
  private viewEnd = 0;
  private viewLe = true;

  override skippingBlockOffset(): number | null {
    return this.skipRemaining > 0 ? this.skipBlockOffset : null;
  }

  parse(buf: Buffer, pos: number, end: number, base: number): number {
    if (this.skipRemaining > 0) {
      const skipped = Math.min(this.skipRemaining, end - pos);
      this.skipRemaining -= skipped;
      pos += skipped;
      if (this.skipRemaining > 0) return this.needMore(pos, 1);
    }
    for (;;) {
      if (end - pos < MIN_BLOCK) return this.needMore(pos, MIN_BLOCK);
      let le = this.littleEndian;
      const type = u32(buf, pos, le);
      if (type === PCAPNG_SHB) {
        // a new section may switch byte order: its byte-order magic says which
        const magic = buf.readUInt32LE(pos + 8);
        if (magic !== BYTE_ORDER_MAGIC && magic !== BYTE_ORDER_MAGIC_SWAPPED) {
          return this.corrupt(base, pos, `section header with a bad byte-order magic 0x${magic.toString(16)}`);
        }
        le = magic === BYTE_ORDER_MAGIC;
      }
      const next = this.parseBlock(buf, pos, end, base, type, le);
      // a large unknown block being skipped has consumed the rest of this buffer
      if (next < 0) return this.skipRemaining > 0 ? end : pos;
      pos = next;
    }
  }

  /**
   * Handles the block at pos; returns the position after it, or -1 after setting a status that ends
   * this parse() call (status NEED_MORE with `need`, HOLD, CORRUPT, FATAL).
   */
  private parseBlock(buf: Buffer, pos: number, end: number, base: number, type: number, le: boolean): number {
    this.viewEnd = end;
    this.viewLe = le;
    const available = end - pos;
    const blockLen = u32(buf, pos + 4, le);
    const minLen = type === PCAPNG_SHB ? MIN_SHB : type === EPB ? MIN_EPB : type === IDB ? MIN_IDB
      : type === SPB ? MIN_SPB : type === OPB ? MIN_OPB : MIN_BLOCK;
    if (blockLen < minLen || blockLen % 4 !== 0) {
      this.corrupt(base, pos, `block type 0x${type.toString(16)} with an invalid length ${blockLen}`);
      return -1;
    }
    const known = type === EPB || type === SPB || type === IDB || type === PCAPNG_SHB || type === OPB;
    if (blockLen > MAX_LOADED_BLOCK) {
      if (known) {
        this.corrupt(base, pos, `block type 0x${type.toString(16)} claims ${blockLen} bytes (more than ${MAX_LOADED_BLOCK})`);
        return -1;
      }
      if (available >= blockLen) return pos + blockLen;
      this.skipRemaining = blockLen - available;
      this.skipBlockOffset = base + pos;
      this.needMore(end, 1);
      return -1;
    }
    if (available < blockLen) {
      this.needMore(pos, blockLen);
      return -1;
    }
    if (u32(buf, pos + blockLen - 4, le) !== blockLen) {
      this.corrupt(base, pos, `block type 0x${type.toString(16)}: trailing length differs from leading length ${blockLen}`);
      return -1;
    }
    switch (type) {
      case EPB: return this.enhancedPacket(buf, pos, blockLen, base, le);
      case SPB: return this.simplePacket(buf, pos, blockLen, base, le);
      case OPB: return this.obsoletePacket(buf, pos, blockLen, base, le);
      case IDB:
        if (this.interfaces.length >= MAX_INTERFACES) {
          this.corrupt(base, pos, `more than ${MAX_INTERFACES} interfaces in one section`);
          return -1;
        }
        return this.interfaceDescription(buf, pos, blockLen, le);
      case PCAPNG_SHB: return this.sectionHeader(buf, pos, blockLen, base, le);
      default: return pos + blockLen;
    }
  }

  private enhancedPacket(buf: Buffer, pos: number, blockLen: number, base: number, le: boolean): number {
    const iface = this.packetInterface(u32(buf, pos + 8, le), pos, base);
    if (iface === null) return -1;
    if (!iface.supported) return this.skip(iface, pos, blockLen);
    const capLen = u32(buf, pos + 20, le);
    if (capLen > blockLen - MIN_EPB || capLen > iface.maxCapLen) {
      this.corrupt(base, pos, `packet block claims ${capLen} captured bytes in a ${blockLen}-byte block`);
      return -1;
    }
    const units = u32(buf, pos + 12, le) * 4294967296 + u32(buf, pos + 16, le);
    return this.emit(buf, pos, pos + 28, capLen, u32(buf, pos + 24, le), units / iface.unitsPerMs + iface.offsetMs, iface.linkType, blockLen);
  }

  private obsoletePacket(buf: Buffer, pos: number, blockLen: number, base: number, le: boolean): number {
    const iface = this.packetInterface(u16(buf, pos + 8, le), pos, base);
    if (iface === null) return -1;
    if (!iface.supported) return this.skip(iface, pos, blockLen);
    const capLen = u32(buf, pos + 20, le);
    if (capLen > blockLen - MIN_OPB || capLen > iface.maxCapLen) {
      this.corrupt(base, pos, `packet block claims ${capLen} captured bytes in a ${blockLen}-byte block`);
      return -1;
    }
    const units = u32(buf, pos + 12, le) * 4294967296 + u32(buf, pos + 16, le);
    return this.emit(buf, pos, pos + 28, capLen, u32(buf, pos + 24, le), units / iface.unitsPerMs + iface.offsetMs, iface.linkType, blockLen);
  }

  private simplePacket(buf: Buffer, pos: number, blockLen: number, base: number, le: boolean): number {
    const iface = this.packetInterface(0, pos, base);
    if (iface === null) return -1;
    if (!iface.supported) return this.skip(iface, pos, blockLen);
    const wireLen = u32(buf, pos + 8, le);
    let capLen = Math.min(wireLen, blockLen - MIN_SPB);
    if (iface.snaplen > 0 && capLen > iface.snaplen) capLen = iface.snaplen;
    return this.emit(buf, pos, pos + 12, capLen, wireLen, this.lastTimeMs, iface.linkType, blockLen);
  }

  private emit(buf: Buffer, pos: number, dataAt: number, capLen: number, wireLen: number, timeMs: number, linkType: number, blockLen: number): number {
    // a 64-bit count of units (an odd if_tsresol or if_tsoffset, one damaged stamp) can pass the year 9999,
    // which no date holds: the packet keeps the time before it, as a Simple Packet Block does
    const outOfRange = !(timeMs >= 0 && timeMs <= MAX_PACKET_TIME_MS);
    if (outOfRange) timeMs = this.lastTimeMs;
    let outlier = false;
    if (timeMs > this.highMs + MAX_CLOCK_JUMP_MS) {
      // far ahead: one damaged time stamp when the next packet is back (record-parser.ts)
      const next = this.nextPacketTime(buf, pos + blockLen);
      if (!Number.isNaN(next)) {
        outlier = !(next > this.highMs + MAX_CLOCK_JUMP_MS);
        if (outlier) timeMs = this.highMs;
      } else if (!this.atEnd) {
        this.needMore(pos, blockLen + NEXT_TIME_BYTES);
        return -1;
      }
    }
    if (timeMs > this.releaseUntil) {
      this.hold(pos, timeMs);
      return -1;
    }
    // counted once the packet goes on (a held one is parsed again)
    if (outOfRange) this.timesOutOfRange++;
    if (outlier) this.clockOutliers++;
    this.lastTimeMs = timeMs;
    this.sink(buf, dataAt, capLen, wireLen, timeMs, linkType);
    if (!(timeMs <= this.highMs)) this.highMs = timeMs;
    this.packets++;
    return pos + blockLen;
  }

  /**
   * The time of the block at `at` when it is an Enhanced Packet Block of a known interface; +Infinity for
   * any other block (the packet before it keeps its own time); NaN when its first bytes are not in view.
   */
  private nextPacketTime(buf: Buffer, at: number): number {
    const le = this.viewLe;
    if (this.viewEnd - at < NEXT_TIME_BYTES) return Number.NaN;
    if (u32(buf, at, le) !== EPB) return Number.POSITIVE_INFINITY;
    const iface = this.interfaces[u32(buf, at + 8, le)];
    if (iface === undefined) return Number.POSITIVE_INFINITY;
    return (u32(buf, at + 12, le) * 4294967296 + u32(buf, at + 16, le)) / iface.unitsPerMs + iface.offsetMs;
  }

  /** The interface a packet names, or null after setting CORRUPT. */
  private packetInterface(id: number, pos: number, base: number): PcapngInterface | null {
    const iface = id < this.interfaces.length ? this.interfaces[id] : undefined;
    if (iface === undefined) {
      this.corrupt(base, pos, `packet names interface ${id} but the section describes ${this.interfaces.length}`);
      return null;
    }
    return iface;
  }

  /**
   * A packet on an interface whose link type earshot cannot decode: counted and skipped, so that a
   * router's wlan interface does not cost the packets of its lan interface (tshark reads both). The
   * stream reader refuses the capture when no packet at all could be decoded. Checked per packet rather
   * than at the IDB: files often describe interfaces that carry no packets.
   */
  private skip(iface: PcapngInterface, pos: number, blockLen: number): number {
    this.unsupportedPackets++;
    if (this.unsupportedLinkTypes.size < MAX_SKIPPED_LINK_TYPES) this.unsupportedLinkTypes.add(iface.linkType);
    return pos + blockLen;
  }

  private interfaceDescription(buf: Buffer, pos: number, blockLen: number, le: boolean): number {
    const linkType = u16(buf, pos + 8, le);
    const snaplen = u32(buf, pos + 12, le);
    let unitsPerMs = 1000;
    let offsetMs = 0;
    const optionsEnd = pos + blockLen - 4;
    let at = pos + 16;
    while (optionsEnd - at >= 4) {
      const code = u16(buf, at, le);
      const length = u16(buf, at + 2, le);
      if (code === OPT_END || at + 4 + length > optionsEnd) break;
      if (code === OPT_IF_TSRESOL && length >= 1) {
        const resolution = buf[at + 4];
        const unitsPerSecond = resolution & 0x80 ? 2 ** (resolution & 0x7f) : 10 ** resolution;
        unitsPerMs = unitsPerSecond / 1000;
      } else if (code === OPT_IF_TSOFFSET && length >= 8) {
        offsetMs = Number(le ? buf.readBigInt64LE(at + 4) : buf.readBigInt64BE(at + 4)) * 1000;
      }
      at += 4 + ((length + 3) & ~3);
    }
    const maxCapLen = Math.max(MAX_CAPLEN, Math.min(snaplen, MAX_SNAPLEN));
    this.interfaces.push(new PcapngInterface(linkType, snaplen, maxCapLen, unitsPerMs, offsetMs, SUPPORTED_LINKTYPES.has(linkType)));
    return pos + blockLen;
  }

  private sectionHeader(buf: Buffer, pos: number, blockLen: number, base: number, le: boolean): number {
    const major = u16(buf, pos + 12, le);
    if (major !== 1) {
      this.corrupt(base, pos, `pcapng section version ${major} (expected 1)`);
      return -1;
    }
    this.littleEndian = le;
    this.interfaces = [];
    this.headerDone = true;
    this.status = NEED_MORE;
    return pos + blockLen;
  }
}
