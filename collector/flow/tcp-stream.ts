/**
 * One direction of a TCP connection put back in sequence order for a parser that needs whole messages
 * (DNS over TCP). Bytes seen before (retransmissions, overlapping segments) are dropped, as tshark does
 * not dissect retransmitted data; a segment that arrives ahead of a gap waits until the gap is filled
 * (tshark with tcp.reassemble_out_of_order). Only what the parser has not consumed yet is kept, and
 * both the waiting segments and the unconsumed bytes are bounded: past the bounds the stream is lost
 * (the caller counts it) and nothing more of it is parsed, rather than parsed out of step.
 */

/** Consumes whole messages from buf[off, off + len) and returns how many bytes it used. */
export type StreamParser = (buf: Buffer, off: number, len: number) => number;

/** Most segments that may wait ahead of one gap. */
export const MAX_SEGMENTS_AHEAD = 16;
/** Most bytes kept per stream, waiting or unconsumed (a DNS message over TCP is at most 2 + 65535 bytes). */
export const MAX_STREAM_BYTES = 2 * 65537;

interface Segment {
  seq: number;
  bytes: Buffer;
}

export class TcpStream {
  /** Sequence number of the next byte in order; null until the first segment or SYN. */
  private nextSeq: number | null = null;
  /** In-order bytes the parser has not consumed (the start of a message). */
  private pending: Buffer | null = null;
  /** Segments ahead of a gap, in arrival order. */
  private ahead: Segment[] | null = null;
  private aheadBytes = 0;
  /** A gap did not fill within the bounds (or a message grew past them): the stream is given up. */
  lost = false;

  /** The sender's SYN: its data starts at the next sequence number. */
  syn(seq: number): void {
    if (this.nextSeq === null) this.nextSeq = (seq + 1) >>> 0;
  }

  /**
   * Adds a segment's payload buf[off, off + len) at sequence number `seq` and hands every byte that
   * became contiguous to `parse`. Returns false when this segment made the stream lost.
   */
  push(seq: number, buf: Buffer, off: number, len: number, parse: StreamParser): boolean {
    if (this.lost || len === 0) return true;
    if (this.nextSeq === null) this.nextSeq = seq;
    const gap = (seq - this.nextSeq) | 0;
    if (gap > 0) return this.wait(seq, buf.subarray(off, off + len));
    // bytes before nextSeq were seen already: only the new tail counts
    if (-gap >= len) return true;
    this.append(buf, off - gap, len + gap, parse);
    while (this.ahead !== null && !this.lost) {
      const next = this.takeReady();
      if (next === null) break;
      const seen = (this.nextSeq - next.seq) | 0;
      if (seen < next.bytes.length) this.append(next.bytes, seen, next.bytes.length - seen, parse);
    }
    return !this.lost;
  }

  private append(buf: Buffer, off: number, len: number, parse: StreamParser): void {
    this.nextSeq = ((this.nextSeq as number) + len) >>> 0;
    let view = buf;
    let start = off;
    let length = len;
    if (this.pending !== null) {
      view = Buffer.concat([this.pending, buf.subarray(off, off + len)]);
      start = 0;
      length = view.length;
    }
    const rest = length - parse(view, start, length);
    if (rest === 0) this.pending = null;
    else if (rest > MAX_STREAM_BYTES) this.lose();
    else this.pending = Buffer.from(view.subarray(start + length - rest, start + length));
  }

  /** Keeps a copy of a segment that came ahead of a gap; false when the bounds are passed. */
  private wait(seq: number, bytes: Buffer): boolean {
    const ahead = this.ahead ?? (this.ahead = []);
    if (ahead.length >= MAX_SEGMENTS_AHEAD || this.aheadBytes + bytes.length > MAX_STREAM_BYTES) {
      this.lose();
      return false;
    }
    ahead.push({ seq, bytes: Buffer.from(bytes) });
    this.aheadBytes += bytes.length;
    return true;
  }

  /** Removes and returns a waiting segment that starts at or before nextSeq, else null. */
  private takeReady(): Segment | null {
    const ahead = this.ahead as Segment[];
    for (let i = 0; i < ahead.length; i++) {
      if (((ahead[i].seq - (this.nextSeq as number)) | 0) <= 0) {
        const [segment] = ahead.splice(i, 1);
        this.aheadBytes -= segment.bytes.length;
        if (ahead.length === 0) this.ahead = null;
        return segment;
      }
    }
    return null;
  }

  private lose(): void {
    this.lost = true;
    this.pending = null;
    this.ahead = null;
    this.aheadBytes = 0;
  }
}
