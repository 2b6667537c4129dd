/**
 * A bidirectional flow: one protocol and two endpoints, client and server, with per-direction counters.
 * A class whose constructor sets every field, so the hot path sees one stable shape.
 */

/** What we know about the name of the server, and where it came from. */
export type NameSource = 'sni' | 'dns' | 'ip-range' | null;

/** SNI parsing state of a TCP flow. */
export const SNI_PENDING = 0;
export const SNI_DONE = 1;

export class Flow {
  /** Sequence number in creation order, unique per collector run. */
  readonly id: number;
  readonly proto: number;
  readonly ipVersion: number;
  /** Client address words (IPv4 in word 3) and port. */
  c0: number;
  c1: number;
  c2: number;
  c3: number;
  clientPort: number;
  /** Server address words and port. */
  s0: number;
  s1: number;
  s2: number;
  s3: number;
  serverPort: number;
  /** Symmetric hash of the key, and the next flow in the same hash bucket. */
  readonly hash: number;
  nextInBucket: Flow | null = null;
  /** Least-recently-active list links (one list per protocol class). */
  lruPrev: Flow | null = null;
  lruNext: Flow | null = null;
  packetsUp = 0;
  packetsDown = 0;
  bytesUp = 0;
  bytesDown = 0;
  firstMs: number;
  lastMs: number;
  /** MAC (48-bit integer) of the local endpoint; -1 until known or when no endpoint is local. */
  deviceMac = -1;
  /** False when neither endpoint is local: such a flow belongs to no device. */
  hasLocal = true;
  /** Both endpoints are local (LAN traffic); then peerMac is the other local endpoint's MAC. */
  bothLocal = false;
  peerMac = -1;
  /** True when the device is the client side (else the server side is the local one). */
  deviceIsClient = true;
  /** TLS SNI from the client's ClientHello, or null. */
  sni: string | null = null;
  serverName: string | null = null;
  nameSource: NameSource = null;
  /** Service class and vendor from the endpoint catalogue (later stages). */
  service: string | null = null;
  vendor: string | null = null;
  /** TCP: SYN seen from the client (we saw the start), FIN/RST seen. */
  sawSyn = false;
  closed = false;
  /** SNI parsing: state, the next expected client sequence number, and buffered stream start. */
  sniState = SNI_PENDING;
  sniNextSeq = -1;
  sniBuf: Buffer | null = null;
  sniSegments = 0;
  /** DNS over TCP: buffered server-to-client stream bytes waiting for a whole message. */
  dnsBuf: Buffer | null = null;
  /** Detector: the device's track (set when the flow is a voice flow), and this flow's bytes in the open second. */
  voiceTrack: object | null = null;
  /** The server's address as text, once something needed it (tagging). */
  serverText: string | null = null;
  voiceBinStart = -1;
  voiceBinBytes = 0;
  /** Metrics sink: the counters it has taken so far, and the cell of the open interval it adds to. */
  takenPacketsUp = 0;
  takenPacketsDown = 0;
  takenBytesUp = 0;
  takenBytesDown = 0;
  sinkCell: object | null = null;
  sinkEpoch = -1;

  constructor(
    id: number, proto: number, ipVersion: number, hash: number, timeMs: number,
    client: ArrayLike<number>, clientPort: number, server: ArrayLike<number>, serverPort: number,
  ) {
    this.id = id;
    this.proto = proto;
    this.ipVersion = ipVersion;
    this.hash = hash;
    this.c0 = client[0]; this.c1 = client[1]; this.c2 = client[2]; this.c3 = client[3];
    this.clientPort = clientPort;
    this.s0 = server[0]; this.s1 = server[1]; this.s2 = server[2]; this.s3 = server[3];
    this.serverPort = serverPort;
    this.firstMs = timeMs;
    this.lastMs = timeMs;
  }

  /** Fills `out` with the server's address words (no allocation; for per-flow work). */
  serverInto(out: Uint32Array): Uint32Array {
    out[0] = this.s0; out[1] = this.s1; out[2] = this.s2; out[3] = this.s3;
    return out;
  }

  /** Fills `out` with the client's address words. */
  clientInto(out: Uint32Array): Uint32Array {
    out[0] = this.c0; out[1] = this.c1; out[2] = this.c2; out[3] = this.c3;
    return out;
  }

  /** The client's address words (a new array; for reports, not the hot path). */
  clientWords(): number[] {
    return [this.c0, this.c1, this.c2, this.c3];
  }

  /** The server's address words (a new array; for reports, not the hot path). */
  serverWords(): number[] {
    return [this.s0, this.s1, this.s2, this.s3];
  }
}
