/**
 * A bidirectional flow: one protocol and two endpoints, client and server, with per-direction counters.
 *
 * Flows are object literals made by createFlow(), every field set in one order, so the hot path sees
 * one stable shape. A literal and not a class instance, for the garbage collector: V8 records where
 * literals are allocated, sees that flows outlive young-generation collections (a flow stays open for
 * seconds to minutes of capture time), and then allocates them in old space directly instead of
 * copying each one twice on its way there; that halves what a replay promotes. `new Flow(...)` still
 * makes one (tests).
 *
 * Who writes what (one owner per field; every other stage only reads):
 * - the flow table (flow/table.ts): the key (keyMac too), hash and list links, counters and times, the device side
 *   (deviceMac, hasLocal, bothLocal, peerMac, peerSent, deviceIsClient), sawSyn and closed; it releases dnsStream
 *   when the flow ends;
 * - the payload inspector (flow/payload.ts): sni and the SNI parser's state, dnsStream;
 * - the tagger (tag/index.ts): serverName, nameSource, service, vendor, voiceCandidate, serverText;
 * - the detector (detect/detector.ts): voiceTrack;
 * - the interval stage (flow/deltas.ts): taken* and peerTaken, what it has pushed of the flow's counters.
 */

import type { Stream } from '../detect/detector.js';
import type { TcpStream } from './tcp-stream.js';

/** What we know about the name of the server, and where it came from. */
export type NameSource = 'sni' | 'dns' | 'ip-range' | null;

/** SNI parsing state of a TCP flow. */
export const SNI_PENDING = 0;
export const SNI_DONE = 1;

export interface Flow {
  /** Sequence number in creation order, unique per collector run. */
  readonly id: number;
  readonly proto: number;
  readonly ipVersion: number;
  /**
   * The client's lowest address word (an IPv4 address) as a signed 32-bit integer, and its port.
   * Signed, so the word is a small integer stored in the object itself: an unsigned word of 2^31 or
   * more (any address from 128.0.0.0 on) would be a heap number of its own, allocated with every flow.
   */
  c3: number;
  clientPort: number;
  /** The server's lowest address word (signed, as the client's) and port. */
  s3: number;
  serverPort: number;
  /**
   * IPv6 only: the three upper words of the client's address, then the server's (signed), else null.
   * Few flows are IPv6: the others do not carry six zero words.
   */
  v6: number[] | null;
  /**
   * Part of the key for a flow with an unspecified endpoint (0.0.0.0, ::): that endpoint's MAC (-1
   * when the link has none), so each unconfigured device's DHCP is its own flow; SHARED_KEY_MAC (-2)
   * for the one flow they share while too many are open (flow/table.ts); null for every other flow.
   */
  keyMac: number | null;
  /** Symmetric hash of the key, and the next flow in the same hash bucket. */
  readonly hash: number;
  nextInBucket: Flow | null;
  /** Least-recently-active list links (one list per protocol class). */
  lruPrev: Flow | null;
  lruNext: Flow | null;
  packetsUp: number;
  packetsDown: number;
  bytesUp: number;
  bytesDown: number;
  firstMs: number;
  lastMs: number;
  /** MAC (48-bit integer) of the local endpoint; -1 until known or when no endpoint is local. */
  deviceMac: number;
  /** False when neither endpoint is local: such a flow belongs to no device. */
  hasLocal: boolean;
  /**
   * Both endpoints are local (LAN traffic); then peerMac is the other local endpoint's MAC, once known
   * (null otherwise: a null-or-number field takes no heap number in the flows that never set it).
   */
  bothLocal: boolean;
  peerMac: number | null;
  /**
   * The other local endpoint sent a frame of this flow from peerMac: the address it sent from is its own
   * (peerMac is taken from the first frame, the destination MAC when the device spoke first; a box with
   * two MACs, or a frame to a zero MAC, answers from another or never).
   */
  peerSent: boolean;
  /** True when the device is the client side (else the server side is the local one). */
  deviceIsClient: boolean;
  /** TLS SNI from the client's ClientHello, or null. */
  sni: string | null;
  serverName: string | null;
  nameSource: NameSource;
  /** Service class and vendor from the endpoint catalogue (later stages). */
  service: string | null;
  vendor: string | null;
  /**
   * We saw the connection start: a TCP SYN, or a QUIC long-header packet (Initial/handshake) first;
   * false for a connection already open when capture began. FIN/RST seen.
   */
  sawSyn: boolean;
  closed: boolean;
  /**
   * SNI parsing: state, the next expected client sequence number (null until a ClientHello is being
   * buffered: a null-or-number field holds no heap number for the many flows that never set it), and
   * buffered stream start.
   */
  sniState: number;
  sniNextSeq: number | null;
  sniBuf: Buffer | null;
  sniSegments: number;
  /** DNS over TCP: the server-to-client stream, in order, until whole messages are there. */
  dnsStream: TcpStream | null;
  /** Detector (owner): this flow's upload stream, set once the detector sees a packet of it. */
  voiceTrack: Stream | null;
  /**
   * Tagging: an assistant's unnamed connection to the internet on port 443 (TCP or QUIC) that may be its
   * voice channel; the detector watches it and it becomes `voice` when it carries a voice stream.
   */
  voiceCandidate: boolean;
  /** The server's address as text, once something needed it (tagging). */
  serverText: string | null;
  /** Interval stage (owner, flow/deltas.ts): the counters pushed so far. */
  takenPacketsUp: number;
  takenPacketsDown: number;
  takenBytesUp: number;
  takenBytesDown: number;
  /** Interval stage: the LAN flow's peer (record.ts servingPeer) has been pushed its share from the start. */
  peerTaken: boolean;
  /** Fills `out` with the server's address words (no allocation; for per-flow work). */
  serverInto(out: Uint32Array): Uint32Array;
  /** Fills `out` with the client's address words. */
  clientInto(out: Uint32Array): Uint32Array;
  /** The client's address words, unsigned (a new array; for reports, not the hot path). */
  clientWords(): number[];
  /** The server's address words, unsigned (a new array; for reports, not the hot path). */
  serverWords(): number[];
}

// the methods, shared by every flow as own properties (a prototype set on each literal would be slow)
function serverInto(this: Flow, out: Uint32Array): Uint32Array {
  const v6 = this.v6;
  if (v6 === null) {
    out[0] = 0; out[1] = 0; out[2] = 0;
  } else {
    out[0] = v6[3]; out[1] = v6[4]; out[2] = v6[5];
  }
  out[3] = this.s3;
  return out;
}

function clientInto(this: Flow, out: Uint32Array): Uint32Array {
  const v6 = this.v6;
  if (v6 === null) {
    out[0] = 0; out[1] = 0; out[2] = 0;
  } else {
    out[0] = v6[0]; out[1] = v6[1]; out[2] = v6[2];
  }
  out[3] = this.c3;
  return out;
}

function clientWords(this: Flow): number[] {
  return Array.from(this.clientInto(new Uint32Array(4)));
}

function serverWords(this: Flow): number[] {
  return Array.from(this.serverInto(new Uint32Array(4)));
}

/** A new flow, first seen at `timeMs`; address words as DecodedPacket has them (IPv4 in word 3). */
export function createFlow(
  id: number, proto: number, ipVersion: number, hash: number, timeMs: number,
  client: ArrayLike<number>, clientPort: number, server: ArrayLike<number>, serverPort: number,
): Flow {
  return {
    id, proto, ipVersion,
    c3: client[3] | 0, clientPort, s3: server[3] | 0, serverPort,
    v6: client[0] === 0 && client[1] === 0 && client[2] === 0 && server[0] === 0 && server[1] === 0 && server[2] === 0 ? null
      : [client[0] | 0, client[1] | 0, client[2] | 0, server[0] | 0, server[1] | 0, server[2] | 0],
    keyMac: null, hash, nextInBucket: null, lruPrev: null, lruNext: null,
    packetsUp: 0, packetsDown: 0, bytesUp: 0, bytesDown: 0, firstMs: timeMs, lastMs: timeMs,
    deviceMac: -1, hasLocal: true, bothLocal: false, peerMac: null, peerSent: false, deviceIsClient: true,
    sni: null, serverName: null, nameSource: null, service: null, vendor: null, sawSyn: false, closed: false,
    sniState: SNI_PENDING, sniNextSeq: null, sniBuf: null, sniSegments: 0, dnsStream: null,
    voiceTrack: null, voiceCandidate: false, serverText: null,
    takenPacketsUp: 0, takenPacketsDown: 0, takenBytesUp: 0, takenBytesDown: 0, peerTaken: false,
    serverInto, clientInto, clientWords, serverWords,
  };
}

/** `new Flow(...)`: the flow createFlow makes with the same arguments. */
export const Flow = function Flow(...args: Parameters<typeof createFlow>): Flow {
  return createFlow(...args);
} as unknown as new (...args: Parameters<typeof createFlow>) => Flow;
