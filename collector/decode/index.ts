/**
 * The packet decoder: link layer -> (VLAN / PPPoE / MPLS) -> IPv4 / IPv6 -> TCP / UDP, into one reused
 * DecodedPacket. Reads the captured bytes in place; allocates nothing per packet except when an IP
 * fragment opens or grows a reassembly buffer.
 */
import { LinkType } from '../capture/types.js';
import { decodeEthernet, LinkCursor, NET_ERROR, NET_IPV4, NET_NONE } from './ethernet.js';
import { FragmentTable } from './fragments.js';
import { decodeIpv4, decodeIpv6, NetInfo } from './ip.js';
import { decodeLoop, decodeNull, decodeRaw, decodeSll, decodeSll2 } from './link.js';
import { DecodedPacket, type DecodeStats, type Decoder } from './packet.js';
import { decodeTransport } from './transport.js';

export { DecodedPacket, formatAddr, formatMac, IPPROTO_TCP, IPPROTO_UDP } from './packet.js';
export type { Decoder, DecodeStats } from './packet.js';

/** Options of buildDecoder. */
export interface DecoderConfig {
  /** Bytes all IP reassembly buffers may hold together; the oldest datagram is evicted beyond. */
  maxReassemblyBytes?: number;
  /** Packet-time milliseconds after which an unfinished datagram is dropped. */
  reassemblyTimeoutMs?: number;
}

/** Defaults of DecoderConfig: 4 MiB of reassembly buffers, 30 s of packet time per datagram. */
export const DEFAULT_MAX_REASSEMBLY_BYTES = 4 * 1024 * 1024;
export const DEFAULT_REASSEMBLY_TIMEOUT_MS = 30_000;

class PacketDecoder implements Decoder {
  readonly stats: DecodeStats = { decodeErrors: 0, nonIp: 0, fragments: 0, fragmentsWithoutFirst: 0, reassemblyEvicted: 0, withoutMac: 0 };
  private readonly packet = new DecodedPacket();
  private readonly cursor = new LinkCursor();
  private readonly net = new NetInfo();
  private readonly fragments: FragmentTable;

  constructor(maxReassemblyBytes: number, reassemblyTimeoutMs: number) {
    this.fragments = new FragmentTable(maxReassemblyBytes, reassemblyTimeoutMs, this.stats);
  }

  decode(buf: Buffer, offset: number, capLen: number, wireLen: number, timeMs: number, linkType: number): DecodedPacket | null {
    const pkt = this.packet;
    const cursor = this.cursor;
    pkt.reset();
    pkt.timeMs = timeMs;
    pkt.wireLen = wireLen;
    const end = offset + capLen;
    if (!(offset >= 0 && capLen >= 0 && end <= buf.length)) return this.error();
    switch (linkType) {
      case LinkType.ETHERNET: decodeEthernet(buf, offset, end, pkt, cursor); break;
      case LinkType.LINUX_SLL: decodeSll(buf, offset, end, pkt, cursor); break;
      case LinkType.LINUX_SLL2: decodeSll2(buf, offset, end, pkt, cursor); break;
      case LinkType.RAW: case LinkType.IPV4: case LinkType.IPV6: decodeRaw(buf, offset, end, cursor); this.stats.withoutMac++; break;
      case LinkType.NULL: decodeNull(buf, offset, end, cursor); this.stats.withoutMac++; break;
      case LinkType.LOOP: decodeLoop(buf, offset, end, cursor); this.stats.withoutMac++; break;
      default: cursor.kind = NET_ERROR;
    }
    if (cursor.kind === NET_NONE) { this.stats.nonIp++; return pkt; }
    if (cursor.kind === NET_ERROR) return this.error();
    const net = this.net;
    const ok = cursor.kind === NET_IPV4
      ? decodeIpv4(buf, cursor.offset, end, pkt, net)
      : decodeIpv6(buf, cursor.offset, end, pkt, net);
    if (!ok) return this.error();
    if (net.fragment) return this.fragments.add(buf, pkt, net, timeMs) ? pkt : this.error();
    return decodeTransport(buf, net.transportOffset, net.end, pkt.proto, pkt) ? pkt : this.error();
  }

  private error(): null {
    this.stats.decodeErrors++;
    return null;
  }
}

/** Builds a packet decoder (one per capture source: it owns the reused record and the fragment table). */
export function buildDecoder(config: DecoderConfig = {}): Decoder {
  return new PacketDecoder(
    config.maxReassemblyBytes ?? DEFAULT_MAX_REASSEMBLY_BYTES,
    config.reassemblyTimeoutMs ?? DEFAULT_REASSEMBLY_TIMEOUT_MS,
  );
}
