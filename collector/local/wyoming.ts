/**
 * Reads the Wyoming protocol from one direction of a TCP connection. Wyoming (github.com/rhasspy/wyoming,
 * README "Format") is JSON lines with binary: each event is a one-line JSON header ending in "\n" with
 * `type`, optional `data`, `data_length` and `payload_length`, then `data_length` bytes of JSON that are
 * merged into `data`, then `payload_length` bytes of payload (PCM audio for `audio-chunk`).
 *
 * Only the headers are read (and the data section of the few events whose data says what a device is:
 * `info`, `detection`); payloads are skipped by counting, never copied. The stream is followed in
 * sequence order; a gap (a lost segment) drops the event in progress and resynchronises on the next
 * segment that starts with "{". Everything read is attacker-controlled: lines and data are bounded.
 */

/** One event as read: its type, its data when read (else null), and the payload's length. */
export interface WyomingEvent {
  type: string;
  data: Record<string, unknown> | null;
  payloadLength: number;
}

/** Longest header line or data section read (an `info` with many models is a few kB). */
export const MAX_WYOMING_LINE = 65_536;
/** Events whose data section is read; the others' is skipped. */
const DATA_READ = new Set(['info', 'detection', 'run-pipeline', 'transcribe']);
const OPEN_BRACE = 0x7b;
const NEWLINE = 0x0a;

const enum Mode { Header, Data, Skip, Lost }

export class WyomingReader {
  /** The next sequence number expected (-1 before the first data segment). */
  private nextSeq = -1;
  private mode = Mode.Header;
  private line: Buffer[] = [];
  private lineBytes = 0;
  private dataLeft = 0;
  private skipLeft = 0;
  private pending: WyomingEvent | null = null;
  /** Headers that were not Wyoming (not JSON, no type): the connection is then not Wyoming. */
  badHeaders = 0;
  events = 0;
  desyncs = 0;

  /** Feeds one segment's payload (buf[off, off + len)) with its TCP sequence number. */
  push(seq: number, buf: Buffer, off: number, len: number, onEvent: (e: WyomingEvent) => void): void {
    if (len <= 0) return;
    if (this.nextSeq !== -1 && seq !== this.nextSeq) {
      const behind = (this.nextSeq - seq) | 0;
      if (behind > 0) {
        // a retransmission: only what is past what we have counts
        if (behind >= len) return;
        off += behind;
        len -= behind;
        seq = this.nextSeq;
      } else {
        // a gap: what was in progress is lost; wait for a segment that starts an event
        this.desyncs++;
        this.mode = Mode.Lost;
      }
    }
    this.nextSeq = (seq + len) >>> 0;
    if (this.mode === Mode.Lost) {
      if (buf[off] !== OPEN_BRACE) return;
      this.reset();
    }
    const end = off + len;
    while (off < end) {
      if (this.mode === Mode.Skip) {
        const n = Math.min(this.skipLeft, end - off);
        this.skipLeft -= n;
        off += n;
        if (this.skipLeft === 0) this.mode = Mode.Header;
      } else if (this.mode === Mode.Header) {
        const nl = buf.indexOf(NEWLINE, off);
        const stop = nl === -1 || nl >= end ? end : nl;
        if (this.lineBytes + (stop - off) > MAX_WYOMING_LINE) {
          this.lose();
          return;
        }
        this.line.push(buf.subarray(off, stop));
        this.lineBytes += stop - off;
        off = stop;
        if (nl !== -1 && nl < end) {
          off = nl + 1;
          if (!this.header(onEvent)) return;
        } else {
          // keep a copy: the packet's buffer is reused after this call
          this.line[this.line.length - 1] = Buffer.from(this.line[this.line.length - 1]);
        }
      } else if (this.mode === Mode.Data) {
        const n = Math.min(this.dataLeft, end - off);
        this.line.push(Buffer.from(buf.subarray(off, off + n)));
        this.dataLeft -= n;
        off += n;
        if (this.dataLeft === 0) {
          const pending = this.pending!;
          try {
            const extra = JSON.parse(Buffer.concat(this.line).toString('utf8')) as unknown;
            if (extra !== null && typeof extra === 'object' && !Array.isArray(extra)) pending.data = { ...(pending.data ?? {}), ...(extra as Record<string, unknown>) };
          } catch {
            // a damaged data section: the event still counts, without its data
          }
          this.line = [];
          this.lineBytes = 0;
          this.pending = null;
          this.mode = this.skipLeft === 0 ? Mode.Header : Mode.Skip;
          onEvent(pending);
        }
      } else {
        return;
      }
    }
  }

  /** Parses the header line collected; false when it was not Wyoming (the reader then waits to resync). */
  private header(onEvent: (e: WyomingEvent) => void): boolean {
    const text = this.line.length === 1 ? this.line[0].toString('utf8') : Buffer.concat(this.line).toString('utf8');
    this.line = [];
    this.lineBytes = 0;
    let parsed: unknown;
    try {
      parsed = JSON.parse(text);
    } catch {
      parsed = null;
    }
    const h = parsed as { type?: unknown; data?: unknown; data_length?: unknown; payload_length?: unknown } | null;
    if (h === null || typeof h !== 'object' || typeof h.type !== 'string' || h.type.length === 0 || h.type.length > 64) {
      this.badHeaders++;
      this.lose();
      return false;
    }
    const dataLength = lengthOf(h.data_length);
    const payloadLength = lengthOf(h.payload_length);
    if (dataLength < 0 || payloadLength < 0) {
      this.badHeaders++;
      this.lose();
      return false;
    }
    const data = h.data !== null && typeof h.data === 'object' && !Array.isArray(h.data) ? h.data as Record<string, unknown> : null;
    this.events++;
    if (dataLength > 0 && DATA_READ.has(h.type) && dataLength <= MAX_WYOMING_LINE) {
      // told once its data is read
      this.pending = { type: h.type, data, payloadLength };
      this.mode = Mode.Data;
      this.dataLeft = dataLength;
      this.skipLeft = payloadLength;
    } else {
      // told now, in the packet that carries its header: an audio chunk counts from its first segment
      this.mode = Mode.Skip;
      this.skipLeft = dataLength + payloadLength;
      onEvent({ type: h.type, data, payloadLength });
      if (this.skipLeft === 0) this.mode = Mode.Header;
    }
    return true;
  }

  private lose(): void {
    this.desyncs++;
    this.reset();
    this.mode = Mode.Lost;
  }

  private reset(): void {
    this.mode = Mode.Header;
    this.line = [];
    this.lineBytes = 0;
    this.dataLeft = 0;
    this.skipLeft = 0;
    this.pending = null;
  }
}

/** A length field: absent is 0; anything but a non-negative integer is -1 (not Wyoming). */
function lengthOf(v: unknown): number {
  if (v === undefined || v === null) return 0;
  return typeof v === 'number' && Number.isInteger(v) && v >= 0 && v <= 0x7fffffff ? v : -1;
}
