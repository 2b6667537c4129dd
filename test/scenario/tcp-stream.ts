/**
 * One TCP connection as the router sees it. Devices describe what each side writes and when; flush()
 * turns that into segments with consistent sequence and acknowledgement numbers, ACKs coming back
 * (delayed-ACK style: every second segment, or when a burst ends), the handshake and the close.
 * Acknowledgements are derived from time alone (the peer has seen what was sent one delay earlier), so
 * every ACK moves forward and tshark finds no duplicate or out-of-window segment to complain about.
 */
import { type Host, TCP_ACK, TCP_FIN, TCP_PSH, TCP_SYN, TCP_FRAME_OVERHEAD, type Timeline, synOptions, tcpFrame } from './packets.js';

export type Direction = 'up' | 'down';

/** Where a connection runs and how its sides behave. */
export interface TcpStreamOptions {
  client: Host;
  /** The server; for a server beyond the router, its `mac` is the router's. */
  server: Host;
  clientPort: number;
  serverPort: number;
  clientIsn: number;
  serverIsn: number;
  /** Round-trip time from the capture point to the server and back, µs: when its ACKs come. */
  serverAckDelayUs: number;
  /** How long the client takes to acknowledge what it receives, µs. */
  clientAckDelayUs?: number;
  clientTtl?: number;
  serverTtl?: number;
  /** Payload bytes per segment. */
  mss?: number;
}

interface Segment {
  timeUs: number;
  dir: Direction;
  payload: Buffer;
  syn: boolean;
  fin: boolean;
  push: boolean;
}

/** Microseconds between back-to-back segments of one write (~100 Mbit/s). */
const SEGMENT_GAP_US = 110;
/** A burst counts as ended when the side's next segment is further away than this (delayed-ACK timer). */
const BURST_END_US = 40_000;

export class TcpStream {
  readonly mss: number;
  private readonly segments: Segment[] = [];
  private readonly lastUs: Record<Direction, number> = { up: -Infinity, down: -Infinity };
  private readonly clientAckDelayUs: number;

  constructor(private readonly o: TcpStreamOptions) {
    this.mss = o.mss ?? 1400;
    this.clientAckDelayUs = o.clientAckDelayUs ?? 1000;
  }

  /** SYN at `timeUs`, SYN-ACK one round trip later; returns when the client may send data. */
  open(timeUs: number): number {
    this.push({ timeUs, dir: 'up', payload: Buffer.alloc(0), syn: true, fin: false, push: false });
    this.push({ timeUs: timeUs + this.o.serverAckDelayUs, dir: 'down', payload: Buffer.alloc(0), syn: true, fin: false, push: false });
    return timeUs + this.o.serverAckDelayUs + this.clientAckDelayUs;
  }

  /**
   * One application write: `payload` split into MSS-sized segments sent back to back, starting at
   * `timeUs` or when the side's previous write has gone out, whichever is later. Returns the end time.
   */
  write(dir: Direction, timeUs: number, payload: Buffer): number {
    let t = Math.max(Math.round(timeUs), this.lastUs[dir] + SEGMENT_GAP_US);
    for (let at = 0; at < payload.length; at += this.mss) {
      const end = Math.min(payload.length, at + this.mss);
      this.push({ timeUs: t, dir, payload: payload.subarray(at, end), syn: false, fin: false, push: end === payload.length });
      if (end < payload.length) t += SEGMENT_GAP_US;
    }
    return t;
  }

  /** Frame bytes (Ethernet and up) that a write of `payloadLength` bytes puts on the wire. */
  frameBytes(payloadLength: number): number {
    return payloadLength + TCP_FRAME_OVERHEAD * Math.ceil(payloadLength / this.mss);
  }

  /** The client closes at `timeUs`; the server answers with its own FIN one round trip later. */
  close(timeUs: number): void {
    const t = Math.max(Math.round(timeUs), this.lastUs.up + SEGMENT_GAP_US, this.lastUs.down + SEGMENT_GAP_US);
    this.push({ timeUs: t, dir: 'up', payload: Buffer.alloc(0), syn: false, fin: true, push: false });
    this.push({ timeUs: t + this.o.serverAckDelayUs, dir: 'down', payload: Buffer.alloc(0), syn: false, fin: true, push: false });
  }

  private push(segment: Segment): void {
    segment.timeUs = Math.round(segment.timeUs);
    this.segments.push(segment);
    this.lastUs[segment.dir] = Math.max(this.lastUs[segment.dir], segment.timeUs);
  }

  /** Adds every frame of the connection to the timeline. */
  flush(timeline: Timeline): void {
    const o = this.o;
    const segments = [...this.segments].sort((a, b) => a.timeUs - b.timeUs);
    const isn: Record<Direction, number> = { up: o.clientIsn >>> 0, down: o.serverIsn >>> 0 };
    // how long until the other side acknowledges what `dir` sent (as seen at the capture point)
    const ackDelay: Record<Direction, number> = { up: o.serverAckDelayUs, down: this.clientAckDelayUs };
    const times: Record<Direction, number[]> = { up: [], down: [] };
    const cumulative: Record<Direction, number[]> = { up: [], down: [] };
    const seqBefore = new Map<Segment, number>();
    for (const s of segments) {
      const list = cumulative[s.dir];
      const before = list.length > 0 ? list[list.length - 1] : 0;
      seqBefore.set(s, before);
      times[s.dir].push(s.timeUs);
      list.push(before + s.payload.length + (s.syn ? 1 : 0) + (s.fin ? 1 : 0));
    }
    /** Sequence space `dir` had sent by time t (inclusive). */
    const sentBy = (dir: Direction, t: number): number => {
      const ts = times[dir];
      let lo = 0;
      let hi = ts.length; // first index with time > t
      while (lo < hi) {
        const mid = (lo + hi) >> 1;
        if (ts[mid] <= t) lo = mid + 1;
        else hi = mid;
      }
      return lo === 0 ? 0 : cumulative[dir][lo - 1];
    };
    const other = (dir: Direction): Direction => (dir === 'up' ? 'down' : 'up');
    const ackOf = (sender: Direction, t: number): number => (isn[other(sender)] + sentBy(other(sender), t - ackDelay[other(sender)])) >>> 0;

    interface Out { timeUs: number; dir: Direction; pure: boolean; segment: Segment | null; ack: number }
    const out: Out[] = [];
    const unacked: Record<Direction, number> = { up: 0, down: 0 };
    for (let i = 0; i < segments.length; i++) {
      const s = segments[i];
      out.push({ timeUs: s.timeUs, dir: s.dir, pure: false, segment: s, ack: ackOf(s.dir, s.timeUs) });
      if (s.syn && s.dir === 'up') continue; // the SYN-ACK answers it
      unacked[s.dir]++;
      let next = i + 1;
      while (next < segments.length && segments[next].dir !== s.dir) next++;
      const burstEnds = next >= segments.length || segments[next].timeUs - s.timeUs > BURST_END_US;
      if (s.syn || s.fin || burstEnds || unacked[s.dir] >= 2) {
        unacked[s.dir] = 0;
        const at = s.timeUs + ackDelay[s.dir];
        out.push({ timeUs: at, dir: other(s.dir), pure: true, segment: null, ack: ackOf(other(s.dir), at) });
      }
    }
    out.sort((a, b) => a.timeUs - b.timeUs || Number(a.pure) - Number(b.pure));
    const lastAck: Record<Direction, number> = { up: -1, down: -1 };
    for (const p of out) {
      // an ACK that acknowledges nothing new would be a duplicate ACK: leave it out
      if (p.pure && p.ack === lastAck[p.dir]) continue;
      lastAck[p.dir] = p.ack;
      const fromClient = p.dir === 'up';
      const s = p.segment;
      const payload = s?.payload ?? Buffer.alloc(0);
      const synOnly = s !== null && s.syn && fromClient;
      let flags = synOnly ? TCP_SYN : TCP_ACK;
      if (s?.syn && !fromClient) flags |= TCP_SYN;
      if (s?.fin) flags |= TCP_FIN;
      if (s?.push && payload.length > 0) flags |= TCP_PSH;
      const seq = isn[p.dir] + (s ? seqBefore.get(s) ?? 0 : sentBy(p.dir, p.timeUs));
      const src = fromClient ? o.client : o.server;
      const dst = fromClient ? o.server : o.client;
      const frame = tcpFrame(
        { srcMac: src.mac, dstMac: dst.mac, src: src.ip, dst: dst.ip, ttl: fromClient ? (o.clientTtl ?? 64) : (o.serverTtl ?? 52), ipId: timeline.nextIpId(src.ip) },
        {
          srcPort: fromClient ? o.clientPort : o.serverPort,
          dstPort: fromClient ? o.serverPort : o.clientPort,
          seq: seq >>> 0,
          ack: p.ack,
          flags,
          window: 65535,
          options: s?.syn ? synOptions(this.mss + 60) : undefined,
        },
        payload,
      );
      timeline.add(p.timeUs, frame);
    }
  }
}
