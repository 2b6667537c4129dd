/**
 * What the format parsers (classic pcap, pcapng) share with the stream reader that feeds them. A parser
 * walks the records in one buffer and hands packets to the sink straight out of that buffer; when the
 * buffer ends inside a record it reports how many bytes the record needs, and the stream reader
 * assembles them in its carry buffer.
 */
import { earshotError, type EarshotError } from '../errors.js';
import type { PacketSink } from './types.js';

/** Largest captured length we accept in a record; more means the record header is damaged. */
export const MAX_CAPLEN = 262_144;
/** Largest snaplen we believe when a header claims more than MAX_CAPLEN: bounds the carry buffer. */
export const MAX_SNAPLEN = 1_048_576;

/** parse() stopped because buf ended inside a record; `need` bytes from the returned position are needed. */
export const NEED_MORE = 0;
/** parse() stopped before a packet whose time is past `releaseUntil` (pacing or stop()). */
export const HOLD = 1;
/** parse() met a damaged record at `stopOffset`; reading ends there like a truncated file. */
export const CORRUPT = 2;
/** parse() met unusable input (`error`); run() rejects with it. */
export const FATAL = 3;
/** The format detector picked a parser (`next`); parse again from the same position with it. */
export const SWITCH = 4;

export type ParseStatus = typeof NEED_MORE | typeof HOLD | typeof CORRUPT | typeof FATAL | typeof SWITCH;

const ignorePacket: PacketSink = () => {};

/**
 * A packet stamped more than this ahead of the latest time so far, whose next packet is back at the old
 * time, has a damaged time stamp (any byte of the 32-bit seconds: years away): it takes the latest time.
 * Taken as it was, one bogus stamp expired every flow, split an upload in two, made the capture end in
 * 2096, and held a paced replay for 82 years. A jump the next packet shares is the capture's own (sessions
 * laid end to end, a clock set forward) and stays, as it does for the last packet of the input. To see
 * the next packet, the parser asks for its header with the record (NEED_MORE), so where reads end never
 * changes the outcome.
 */
export const MAX_CLOCK_JUMP_MS = 86_400_000;

/** Link types named in the message about skipped packets (a pcapng may describe thousands of interfaces). */
export const MAX_SKIPPED_LINK_TYPES = 8;

/** Base of the format parsers: the fields the stream reader reads and sets. */
export abstract class RecordParser {
  status: ParseStatus = NEED_MORE;
  /** With NEED_MORE: bytes needed at the returned position to make progress (always more than available). */
  need = 1;
  /** Packets handed to the sink. */
  packets = 0;
  /** Packets whose time was past what a date holds (pcapng), given the time of the packet before them. */
  timesOutOfRange = 0;
  /** Set by the stream reader at the end of the input: no record follows the ones in view. */
  atEnd = false;
  /** Latest packet time handed on (NaN before the first). */
  highMs = Number.NaN;
  /** Packets stamped more than MAX_CLOCK_JUMP_MS ahead of the packets around them, given the latest time. */
  clockOutliers = 0;
  /**
   * Packets skipped because their interface's link type cannot be decoded (pcapng: a router's wlan
   * interface beside its lan), and those link types (at most MAX_SKIPPED_LINK_TYPES kept for the message).
   */
  unsupportedPackets = 0;
  readonly unsupportedLinkTypes = new Set<number>();
  /**
   * Packets with a later time are held back (status HOLD). Infinity when not pacing; -Infinity holds
   * every packet, which is how stop() interrupts a chunk without a flag checked per packet.
   */
  releaseUntil = Infinity;
  /** With HOLD: the time of the held packet. */
  heldTimeMs = 0;
  /** With CORRUPT: absolute offset of the damaged record, and what is wrong with it. */
  stopOffset = 0;
  stopReason = '';
  /** With FATAL. */
  error: EarshotError | null = null;
  /** With SWITCH. */
  next: RecordParser | null = null;
  /** False until the file header (classic global header, first pcapng section header) has been read. */
  headerDone = false;
  sink: PacketSink = ignorePacket;

  /** `name` is the input as named in messages (a path, "stdin"). */
  constructor(protected readonly name: string) {}

  /**
   * Consumes records from buf[pos, end), whose byte 0 is at absolute input offset `base`; returns the
   * position where it stopped, with `status` telling why.
   */
  abstract parse(buf: Buffer, pos: number, end: number, base: number): number;

  /** Absolute offset of a block being skipped as it streams by (the input must not end inside it), else null. */
  skippingBlockOffset(): number | null {
    return null;
  }

  /** A damaged record stops reading like a truncation; a damaged file header makes the input unusable. */
  protected corrupt(base: number, pos: number, reason: string): number {
    if (!this.headerDone) return this.fatal(earshotError('EARSHOT_ERR_BAD_CAPTURE_HEADER', this.name, base + pos, reason), pos);
    this.status = CORRUPT;
    this.stopOffset = base + pos;
    this.stopReason = reason;
    return pos;
  }

  protected fatal(error: EarshotError, pos: number): number {
    this.status = FATAL;
    this.error = error;
    return pos;
  }

  protected hold(pos: number, timeMs: number): number {
    this.status = HOLD;
    this.heldTimeMs = timeMs;
    return pos;
  }

  protected needMore(pos: number, need: number): number {
    this.status = NEED_MORE;
    this.need = need;
    return pos;
  }
}
