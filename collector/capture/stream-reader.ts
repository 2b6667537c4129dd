/**
 * Feeds chunks of a capture stream to the right format parser. Records are parsed straight out of each
 * chunk; only a record that straddles two chunks is assembled in a reusable carry buffer, so memory
 * stays bounded by the largest record whatever the size of the input.
 */
import { earshotError, type EarshotError } from '../errors.js';
import { ClassicPcapParser, isClassicMagic } from './pcap-classic.js';
import { PCAPNG_SHB, PcapngParser } from './pcapng.js';
import { CORRUPT, FATAL, HOLD, NEED_MORE, RecordParser, SWITCH } from './record-parser.js';
import type { PacketSink } from './types.js';

/** Describes the first bytes of an input that is not a capture, naming known formats. */
export function describeMagic(bytes: Buffer): string {
  if (bytes.length === 0) return 'empty input';
  const hex = [...bytes.subarray(0, 8)].map((b) => b.toString(16).padStart(2, '0')).join(' ');
  const text = bytes.subarray(0, 8).toString('latin1').replace(/[^\x20-\x7e]/g, '.');
  const word = bytes.length >= 4 ? bytes.readUInt32BE(0) : 0;
  const known = bytes[0] === 0x1f && bytes[1] === 0x8b ? ', gzip inside gzip'
    : word === 0x28b52ffd ? ', zstd-compressed: decompress it first'
      : word === 0xfd377a58 ? ', xz-compressed: decompress it first'
        : text.startsWith('BZh') ? ', bzip2-compressed: decompress it first'
          : text.startsWith('PK') ? ', a zip archive: unpack it first' : '';
  return `${bytes.length < 4 ? `only ${bytes.length} byte${bytes.length === 1 ? '' : 's'}: ` : 'starts with '}${hex} "${text}"${known}`;
}

/** Picks the parser from the first 4 bytes. */
class FormatDetector extends RecordParser {
  parse(buf: Buffer, pos: number, end: number): number {
    if (end - pos < 4) return this.needMore(pos, 4);
    const magic = buf.readUInt32LE(pos);
    if (isClassicMagic(magic)) this.next = new ClassicPcapParser(this.name);
    else if (magic === PCAPNG_SHB) this.next = new PcapngParser(this.name);
    else return this.fatal(earshotError('EARSHOT_ERR_NOT_A_CAPTURE', this.name, describeMagic(buf.subarray(pos, end))), pos);
    this.status = SWITCH;
    return pos;
  }
}

/** Where and why reading stopped early (truncated input or a damaged record). */
export interface Truncation {
  offset: number;
  reason: string;
}

const EMPTY = Buffer.alloc(0);

/** Streams chunks through the format parsers; `name` names the input in messages. */
export class CaptureStreamReader {
  private parser: RecordParser;
  private readonly sink: PacketSink;
  private carry: Buffer = Buffer.alloc(65_536);
  private carryLen = 0;
  /** Absolute input offset of carry[0]. */
  private carryBase = 0;
  private chunk: Buffer = EMPTY;
  private chunkPos = 0;
  /** Absolute input offset of chunk[0]. */
  private chunkBase = 0;
  /** Bytes of input pushed so far. */
  bytesPushed = 0;
  /** Set when reading ended early; the input after it is ignored. */
  truncation: Truncation | null = null;
  /** Set when the input is unusable. */
  error: EarshotError | null = null;
  /** Pacing bound carried over when the detector hands over to the format parser. */
  private releaseUntil = Infinity;

  constructor(private readonly name: string, sink: PacketSink) {
    this.sink = sink;
    this.parser = new FormatDetector(name);
  }

  get packets(): number {
    return this.parser.packets;
  }

  /** Packets given the time of the packet before theirs (pcapng: a time past the year 9999). */
  get timesOutOfRange(): number {
    return this.parser.timesOutOfRange;
  }

  /** Packets stamped more than a day ahead of the capture's clock, given its time (record-parser.ts). */
  get clockOutliers(): number {
    return this.parser.clockOutliers;
  }

  /** Packets skipped because their interface's link type cannot be decoded (pcapng). */
  get unsupportedPackets(): number {
    return this.parser.unsupportedPackets;
  }

  /** Their link types (at most MAX_SKIPPED_LINK_TYPES). */
  get unsupportedLinkTypes(): ReadonlySet<number> {
    return this.parser.unsupportedLinkTypes;
  }

  /** With a HOLD: the time of the packet waiting to be released. */
  get heldTimeMs(): number {
    return this.parser.heldTimeMs;
  }

  /** Packets later than this are held until setRelease() moves it (pacing; -Infinity to stop). */
  setRelease(releaseUntil: number): void {
    this.releaseUntil = releaseUntil;
    this.parser.releaseUntil = releaseUntil;
  }

  /** Parses a chunk; false when parsing paused (held packet: call resume()) or ended (error/truncation). */
  push(chunk: Buffer): boolean {
    if (this.done()) return false;
    this.chunk = chunk;
    this.chunkPos = 0;
    this.chunkBase = this.bytesPushed;
    this.bytesPushed += chunk.length;
    return this.drain();
  }

  /** Continues after a HOLD; same result as push(). */
  resume(): boolean {
    if (this.done()) return false;
    return this.drain();
  }

  /** True once the input is known unusable or cut short: nothing more will be parsed. */
  done(): boolean {
    return this.error !== null || this.truncation !== null;
  }

  /** Call at end of input: decides between a clean end, a truncated record and an unusable input. */
  finish(): void {
    if (this.done()) return;
    const parser = this.parser;
    if (parser instanceof FormatDetector) {
      this.error = earshotError('EARSHOT_ERR_NOT_A_CAPTURE', this.name, describeMagic(this.carry.subarray(0, this.carryLen)));
      return;
    }
    if (!parser.headerDone) {
      this.error = earshotError('EARSHOT_ERR_BAD_CAPTURE_HEADER', this.name, 0, `input ends inside the file header after ${this.bytesPushed} bytes`);
      return;
    }
    const skipping = parser.skippingBlockOffset();
    if (skipping !== null) {
      this.truncation = { offset: skipping, reason: 'input ends inside a block' };
      return;
    }
    if (this.carryLen > 0) {
      // the last record may wait only to see the one after it (a time stamp far ahead, record-parser.ts):
      // parsed as the last, unpaced (it is more than a day ahead of the rest)
      parser.atEnd = true;
      this.setRelease(Infinity);
      const consumed = this.parseAt(this.carry, 0, this.carryLen, this.carryBase);
      if (this.parser.status !== NEED_MORE) {
        this.stopped();
        return;
      }
      if (consumed > 0) {
        this.carry.copy(this.carry, 0, consumed, this.carryLen);
        this.carryLen -= consumed;
        this.carryBase += consumed;
      }
    }
    if (this.carryLen > 0) {
      const have = this.carryLen;
      const wanted = this.parser.need > have ? ` of ${this.parser.need}` : '';
      this.truncation = { offset: this.carryBase, reason: `input ends inside a record (${have}${wanted} bytes present)` };
    }
  }

  private drain(): boolean {
    if (this.carryLen > 0) {
      if (!this.drainCarry()) return false;
      if (this.carryLen > 0) return true; // chunk used up completing the carried record
    }
    const chunk = this.chunk;
    const pos = this.parseAt(chunk, this.chunkPos, chunk.length, this.chunkBase);
    this.chunkPos = pos;
    if (this.parser.status !== NEED_MORE) return this.stopped();
    const rest = chunk.length - pos;
    if (rest > 0) {
      this.ensureCarry(Math.max(rest, this.parser.need));
      chunk.copy(this.carry, 0, pos);
      this.carryLen = rest;
      this.carryBase = this.chunkBase + pos;
    }
    this.chunkPos = chunk.length;
    return true;
  }

  /** Completes the record in the carry from the current chunk; false when parsing stopped. */
  private drainCarry(): boolean {
    for (;;) {
      const need = this.parser.need;
      if (this.carryLen < need) {
        const take = Math.min(need - this.carryLen, this.chunk.length - this.chunkPos);
        this.ensureCarry(need);
        this.chunk.copy(this.carry, this.carryLen, this.chunkPos, this.chunkPos + take);
        this.carryLen += take;
        this.chunkPos += take;
        if (this.carryLen < need) return true;
      }
      const consumed = this.parseAt(this.carry, 0, this.carryLen, this.carryBase);
      if (consumed > 0) {
        this.carry.copy(this.carry, 0, consumed, this.carryLen);
        this.carryLen -= consumed;
        this.carryBase += consumed;
      }
      if (this.parser.status !== NEED_MORE) return this.stopped();
      if (this.carryLen === 0) return true;
      if (consumed === 0 && this.parser.need <= this.carryLen) {
        // a parser that asks for bytes it already has would spin here forever
        this.truncation = { offset: this.carryBase, reason: 'record could not be parsed' };
        return false;
      }
    }
  }

  private parseAt(buf: Buffer, pos: number, end: number, base: number): number {
    let at = this.parser.parse(buf, pos, end, base);
    while (this.parser.status === SWITCH) {
      const next = this.parser.next as RecordParser;
      next.sink = this.sink;
      next.releaseUntil = this.releaseUntil;
      this.parser = next;
      at = next.parse(buf, at, end, base);
    }
    return at;
  }

  private stopped(): boolean {
    const parser = this.parser;
    if (parser.status === FATAL) this.error = parser.error;
    else if (parser.status === CORRUPT) this.truncation = { offset: parser.stopOffset, reason: parser.stopReason };
    else if (parser.status !== HOLD) throw new Error(`unexpected parser status ${parser.status}`);
    return false;
  }

  private ensureCarry(size: number): void {
    if (size <= this.carry.length) return;
    const grown = Buffer.alloc(Math.max(size, this.carry.length * 2));
    this.carry.copy(grown, 0, 0, this.carryLen);
    this.carry = grown;
  }
}
