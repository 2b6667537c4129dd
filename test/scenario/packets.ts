/**
 * Frame builders for the scenario generator: Ethernet II, IPv4, UDP, TCP, with real lengths and real
 * checksums (tshark flags a bad IPv4 header checksum, and computing the TCP/UDP ones costs little), and
 * the timeline that collects frames from all devices before they are written in time order.
 */

/** One end of a conversation on the LAN side of the router: its MAC and IPv4 address. */
export interface Host {
  mac: Buffer;
  ip: number;
}

export const IPPROTO_TCP = 6;
export const IPPROTO_UDP = 17;
export const TCP_FIN = 0x01;
export const TCP_SYN = 0x02;
export const TCP_RST = 0x04;
export const TCP_PSH = 0x08;
export const TCP_ACK = 0x10;

/** Ethernet + IPv4 + TCP headers without options: what a data segment costs on top of its payload. */
export const TCP_FRAME_OVERHEAD = 14 + 20 + 20;
/** Ethernet + IPv4 + UDP headers. */
export const UDP_FRAME_OVERHEAD = 14 + 20 + 8;
export const BROADCAST_MAC = Buffer.from('ffffffffffff', 'hex');
const ETHERTYPE_IPV4 = 0x0800;
const MIN_FRAME = 60;

/** "aa:bb:cc:dd:ee:ff" (or "-" separated) as 6 bytes. */
export function parseMac(text: string): Buffer {
  const hex = text.replace(/[:-]/g, '');
  if (!/^[0-9a-f]{12}$/i.test(hex)) throw new Error(`scenario: bad MAC address ${text}`);
  return Buffer.from(hex, 'hex');
}

/** Dotted quad as an unsigned 32-bit number. */
export function parseIp(text: string): number {
  const parts = text.split('.').map(Number);
  if (parts.length !== 4 || parts.some((p) => !Number.isInteger(p) || p < 0 || p > 255)) throw new Error(`scenario: bad IPv4 address ${text}`);
  return ((parts[0] << 24) | (parts[1] << 16) | (parts[2] << 8) | parts[3]) >>> 0;
}

/** Unsigned 32-bit number as a dotted quad. */
export function formatIp(ip: number): string {
  return `${ip >>> 24}.${(ip >>> 16) & 255}.${(ip >>> 8) & 255}.${ip & 255}`;
}

/** The multicast MAC an IPv4 group address maps to (RFC 1112): 01:00:5e + the low 23 bits. */
export function multicastMac(group: number): Buffer {
  return Buffer.from([0x01, 0x00, 0x5e, (group >>> 16) & 0x7f, (group >>> 8) & 255, group & 255]);
}

/** The Internet checksum (RFC 1071) over the given buffers, as if they were one. */
function internetChecksum(parts: readonly Buffer[]): number {
  let sum = 0;
  let odd = -1; // a byte left over from a buffer of odd length, joined with the next buffer's first
  for (const part of parts) {
    let i = 0;
    if (odd >= 0 && part.length > 0) {
      sum += (odd << 8) | part[0];
      odd = -1;
      i = 1;
    }
    for (; i + 1 < part.length; i += 2) sum += (part[i] << 8) | part[i + 1];
    if (i < part.length) odd = part[i];
  }
  if (odd >= 0) sum += odd << 8;
  while (sum > 0xffff) sum = (sum & 0xffff) + (sum >>> 16);
  return ~sum & 0xffff;
}

/** The IPv4 pseudo-header that TCP and UDP checksums cover. */
function pseudoHeader(src: number, dst: number, protocol: number, length: number): Buffer {
  const header = Buffer.alloc(12);
  header.writeUInt32BE(src, 0);
  header.writeUInt32BE(dst, 4);
  header[9] = protocol;
  header.writeUInt16BE(length, 10);
  return header;
}

/** What every IPv4 frame needs besides its transport segment. */
export interface IpFields {
  srcMac: Buffer;
  dstMac: Buffer;
  src: number;
  dst: number;
  ttl: number;
  ipId: number;
  /** Don't-fragment: set by TCP stacks (path-MTU discovery), usually not for UDP. */
  dontFragment?: boolean;
}

/** Ethernet II + IPv4 (no options) around a transport segment, padded to the 60-byte minimum. */
export function ipv4Frame(f: IpFields, protocol: number, segment: Buffer): Buffer {
  const totalLength = 20 + segment.length;
  const frame = Buffer.alloc(Math.max(MIN_FRAME, 14 + totalLength));
  f.dstMac.copy(frame, 0);
  f.srcMac.copy(frame, 6);
  frame.writeUInt16BE(ETHERTYPE_IPV4, 12);
  const ip = frame.subarray(14, 34);
  ip[0] = 0x45;
  ip.writeUInt16BE(totalLength, 2);
  ip.writeUInt16BE(f.ipId & 0xffff, 4);
  ip.writeUInt16BE(f.dontFragment ? 0x4000 : 0, 6);
  ip[8] = f.ttl;
  ip[9] = protocol;
  ip.writeUInt32BE(f.src, 12);
  ip.writeUInt32BE(f.dst, 16);
  ip.writeUInt16BE(internetChecksum([ip]), 10);
  segment.copy(frame, 34);
  return frame;
}

/** A UDP datagram in an Ethernet/IPv4 frame, with its checksum. */
export function udpFrame(f: IpFields, srcPort: number, dstPort: number, payload: Buffer): Buffer {
  const segment = Buffer.alloc(8 + payload.length);
  segment.writeUInt16BE(srcPort, 0);
  segment.writeUInt16BE(dstPort, 2);
  segment.writeUInt16BE(segment.length, 4);
  payload.copy(segment, 8);
  const sum = internetChecksum([pseudoHeader(f.src, f.dst, IPPROTO_UDP, segment.length), segment]);
  segment.writeUInt16BE(sum === 0 ? 0xffff : sum, 6); // 0 means "no checksum" in UDP
  return ipv4Frame(f, IPPROTO_UDP, segment);
}

/** The TCP header fields of one segment. */
export interface TcpFields {
  srcPort: number;
  dstPort: number;
  seq: number;
  ack: number;
  flags: number;
  window: number;
  /** Options, already padded to a multiple of 4 bytes. */
  options?: Buffer;
}

/** A TCP segment in an Ethernet/IPv4 frame, with its checksum. */
export function tcpFrame(f: IpFields, t: TcpFields, payload: Buffer): Buffer {
  const options = t.options ?? Buffer.alloc(0);
  const headerLength = 20 + options.length;
  const segment = Buffer.alloc(headerLength + payload.length);
  segment.writeUInt16BE(t.srcPort, 0);
  segment.writeUInt16BE(t.dstPort, 2);
  segment.writeUInt32BE(t.seq >>> 0, 4);
  segment.writeUInt32BE((t.flags & TCP_ACK) !== 0 ? t.ack >>> 0 : 0, 8);
  segment[12] = (headerLength / 4) << 4;
  segment[13] = t.flags;
  segment.writeUInt16BE(t.window, 14);
  options.copy(segment, 20);
  payload.copy(segment, headerLength);
  segment.writeUInt16BE(internetChecksum([pseudoHeader(f.src, f.dst, IPPROTO_TCP, segment.length), segment]), 16);
  return ipv4Frame({ ...f, dontFragment: true }, IPPROTO_TCP, segment);
}

/** The options of a SYN: MSS, SACK permitted, window scale (no timestamps, so data segments carry none). */
export function synOptions(mss: number): Buffer {
  const options = Buffer.from([2, 4, 0, 0, 1, 1, 4, 2, 1, 3, 3, 0]);
  options.writeUInt16BE(mss, 2);
  return options;
}

/**
 * All frames of a scenario with their capture times. Devices add frames in whatever order they compute
 * them; `sorted()` puts them in time order, ties in the order they were added (so a stable, seeded run
 * gives the same file byte for byte).
 */
export class Timeline {
  private readonly frames: Array<{ timeUs: number; order: number; frame: Buffer }> = [];
  private readonly ipIds = new Map<number, number>();

  /** Adds a frame at a capture time in microseconds since the epoch. */
  add(timeUs: number, frame: Buffer): void {
    this.frames.push({ timeUs: Math.round(timeUs), order: this.frames.length, frame });
  }

  /** The next IPv4 identification of a sender (each host counts its own datagrams). */
  nextIpId(src: number): number {
    const id = ((this.ipIds.get(src) ?? Math.imul(src, 2654435761) >>> 16) + 1) & 0xffff;
    this.ipIds.set(src, id);
    return id;
  }

  /** The frames in capture order. */
  sorted(): Array<{ timeUs: number; frame: Buffer }> {
    return [...this.frames].sort((a, b) => a.timeUs - b.timeUs || a.order - b.order);
  }
}
