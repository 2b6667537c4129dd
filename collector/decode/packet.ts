/**
 * The record the decoder fills for each packet. One instance is reused for every packet (views, not
 * copies): consumers must copy what they keep beyond the packet.
 */

/** IP protocol numbers we look at. */
export const IPPROTO_TCP = 6;
export const IPPROTO_UDP = 17;

/** TCP flag bits. */
export const TCP_FIN = 0x01;
export const TCP_SYN = 0x02;
export const TCP_RST = 0x04;
export const TCP_PSH = 0x08;
export const TCP_ACK = 0x10;

export class DecodedPacket {
  /** Packet timestamp, ms since the epoch (fractional). */
  timeMs = 0;
  /** Original length on the wire (frame.len). */
  wireLen = 0;
  /** Link-layer source and destination MAC as 48-bit integers; -1 when the link layer has none. */
  srcMac = -1;
  dstMac = -1;
  /** 0 when the packet carries no IP (ARP, STP, ...), else 4 or 6. */
  ipVersion = 0;
  /**
   * Source/destination IP as four big-endian 32-bit words. IPv4: the address in word 3, words 0-2 zero
   * (so IPv4 and IPv6 share one key layout; ipVersion tells them apart).
   */
  readonly srcAddr = new Uint32Array(4);
  readonly dstAddr = new Uint32Array(4);
  /** Transport protocol (after IPv6 extension headers); -1 without IP. */
  proto = -1;
  /** Ports; -1 when unknown (not TCP/UDP, or a fragment whose first fragment we never saw). */
  srcPort = -1;
  dstPort = -1;
  /** TCP flags and sequence number (0 for UDP). */
  tcpFlags = 0;
  tcpSeq = 0;
  /** True when this packet is an IP fragment (any of them, first included). */
  fragment = false;
  /**
   * Transport payload to parse (DNS, TLS, QUIC): payloadBuf[payloadOffset, payloadOffset + payloadLength).
   * For an unfragmented packet it is a view into the captured bytes; when this packet completed the
   * reassembly of a fragmented datagram it is the reassembled payload; a first fragment cut by the snap
   * length (which can never be reassembled) gives its captured payload, as tshark dissects it; for
   * other fragments payloadLength is 0.
   * payloadLength counts only captured bytes (a snapped packet gives less than the IP length says).
   */
  payloadBuf: Buffer = EMPTY;
  payloadOffset = 0;
  payloadLength = 0;

  /** Resets the per-packet fields (called by the decoder before filling). */
  reset(): void {
    this.srcMac = -1;
    this.dstMac = -1;
    this.ipVersion = 0;
    // element stores, not fill(): this runs for every packet and fill() costs a call into the runtime
    const src = this.srcAddr;
    const dst = this.dstAddr;
    src[0] = 0; src[1] = 0; src[2] = 0; src[3] = 0;
    dst[0] = 0; dst[1] = 0; dst[2] = 0; dst[3] = 0;
    this.proto = -1;
    this.srcPort = -1;
    this.dstPort = -1;
    this.tcpFlags = 0;
    this.tcpSeq = 0;
    this.fragment = false;
    this.payloadBuf = EMPTY;
    this.payloadOffset = 0;
    this.payloadLength = 0;
  }
}

const EMPTY = Buffer.alloc(0);

/** Counters kept by the decoder. */
export interface DecodeStats {
  /** Packets that were damaged or truncated where a header should be; skipped. */
  decodeErrors: number;
  /** Packets whose link layer carries something other than IP (ARP, STP, LLDP, ...). */
  nonIp: number;
  /** IP fragments seen, and fragments whose datagram could not be tied to ports (first fragment missing). */
  fragments: number;
  fragmentsWithoutFirst: number;
  /** Reassembly entries dropped because the table was full or they timed out. */
  reassemblyEvicted: number;
  /**
   * Packets of links that carry no MAC address (raw IP: a tun or WireGuard interface; BSD and OpenBSD
   * loopback): earshot tells devices apart by MAC, so none of their flows belongs to a device.
   */
  withoutMac: number;
}

/** The decoder: one call per packet, fills and returns its single reused DecodedPacket. */
export interface Decoder {
  /**
   * Decodes one packet. Returns the reused record, or null when the packet is damaged (counted in
   * stats.decodeErrors). Never throws, never reads outside buf[offset, offset + capLen).
   */
  decode(buf: Buffer, offset: number, capLen: number, wireLen: number, timeMs: number, linkType: number): DecodedPacket | null;
  readonly stats: DecodeStats;
}

/**
 * A group address, which never sends (IPv4 multicast 224/4 and the limited broadcast, IPv6 multicast
 * ff00::/8); words as a DecodedPacket has them (IPv4 in word 3).
 */
export function isGroupAddr(ipVersion: number, words: ArrayLike<number>): boolean {
  return ipVersion === 4 ? words[3] >>> 28 === 14 || words[3] >>> 0 === 0xffffffff : words[0] >>> 24 === 0xff;
}

/** Formats an address of a DecodedPacket (IPv4 dotted quad or compressed IPv6, RFC 5952). */
export function formatAddr(ipVersion: number, words: ArrayLike<number>): string {
  if (ipVersion === 4) {
    const a = words[3] >>> 0;
    return `${a >>> 24}.${(a >>> 16) & 255}.${(a >>> 8) & 255}.${a & 255}`;
  }
  const groups: number[] = [];
  for (let i = 0; i < 4; i++) {
    const w = words[i] >>> 0;
    groups.push(w >>> 16, w & 0xffff);
  }
  // longest run of zero groups (length >= 2) becomes "::"
  let bestStart = -1;
  let bestLen = 0;
  for (let i = 0; i < 8; ) {
    if (groups[i] !== 0) { i++; continue; }
    let j = i;
    while (j < 8 && groups[j] === 0) j++;
    if (j - i > bestLen && j - i >= 2) { bestStart = i; bestLen = j - i; }
    i = j;
  }
  const hex = groups.map((g) => g.toString(16));
  if (bestStart < 0) return hex.join(':');
  return `${hex.slice(0, bestStart).join(':')}::${hex.slice(bestStart + bestLen).join(':')}`;
}

const ipv4Texts = new Map<number, string>();

/**
 * formatAddr for an IPv4 address word (signed or not), the text shared: a home's few addresses and its
 * busy servers recur in most flows, so each is formatted once (a bounded cache).
 */
export function ipv4Text(word: number): string {
  const key = word | 0;
  let text = ipv4Texts.get(key);
  if (text === undefined) {
    text = formatAddr(4, [0, 0, 0, key]);
    if (ipv4Texts.size < 65536) ipv4Texts.set(key, text);
  }
  return text;
}

// MAC text is collector/mac.ts's; re-exported here for the modules that render packets and flows
export { formatMac } from '../mac.js';
