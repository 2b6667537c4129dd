/**
 * IPv4 (options, fragments) and IPv6 (extension headers, fragment header). Each fills the addresses and
 * the protocol of the DecodedPacket and leaves in a reused NetInfo where the transport header starts,
 * where the IP payload ends in the captured bytes, and the fragment fields.
 */
import { u16, u32 } from '../bytes.js';
import type { DecodedPacket } from './packet.js';

/** What the IP layer found besides what goes into the DecodedPacket. Reused for every packet. */
export class NetInfo {
  /** Where the transport header starts (a non-first fragment: where its data starts). */
  transportOffset = 0;
  /** End of the IP payload within the captured bytes: min(declared end, captured end). */
  end = 0;
  /** The captured bytes stop before the end the IP header declares (snaplen). */
  snapped = false;
  fragment = false;
  /** Fragment offset in bytes, More Fragments flag, identification, protocol named in the fragment key. */
  fragmentOffset = 0;
  moreFragments = false;
  fragmentId = 0;
  fragmentProto = 0;
  /** Where the fragmentable data of this fragment starts (after the IPv6 fragment header). */
  fragmentDataOffset = 0;
}

const IPV6_HOP_BY_HOP = 0;
const IPV6_ROUTING = 43;
const IPV6_FRAGMENT = 44;
const IPV6_AH = 51;
const IPV6_DESTINATION = 60;

/** Decodes the IPv4 header at buf[offset, end); false when damaged or truncated. */
export function decodeIpv4(buf: Buffer, offset: number, end: number, pkt: DecodedPacket, net: NetInfo): boolean {
  if (end - offset < 20) return false;
  const first = buf[offset];
  const headerLength = (first & 0x0f) * 4;
  if (first >> 4 !== 4 || headerLength < 20 || end - offset < headerLength) return false;
  const totalLength = u16(buf, offset + 2);
  // 0 is what TCP segmentation offload leaves in captures of outgoing super-packets: take what was
  // captured (tshark's ip.tso_support, on by default); any other length below the header is damage
  if (totalLength < headerLength && totalLength !== 0) return false;
  const declaredEnd = totalLength === 0 ? end : offset + totalLength;
  net.snapped = declaredEnd > end;
  net.end = net.snapped ? end : declaredEnd;
  pkt.ipVersion = 4;
  pkt.srcAddr[3] = u32(buf, offset + 12);
  pkt.dstAddr[3] = u32(buf, offset + 16);
  const proto = buf[offset + 9];
  pkt.proto = proto;
  net.transportOffset = offset + headerLength;
  const flagsAndOffset = u16(buf, offset + 6);
  net.fragmentOffset = (flagsAndOffset & 0x1fff) * 8;
  net.moreFragments = (flagsAndOffset & 0x2000) !== 0;
  net.fragment = net.moreFragments || net.fragmentOffset !== 0;
  if (net.fragment) {
    net.fragmentId = u16(buf, offset + 4);
    net.fragmentProto = proto;
    net.fragmentDataOffset = net.transportOffset;
  }
  return true;
}

/**
 * Decodes the IPv6 header and its extension headers (hop-by-hop, routing, destination options, AH,
 * fragment) at buf[offset, end); stops at the transport, ESP (50) or no-next-header (59). An atomic
 * fragment (offset 0, no more fragments) is a whole datagram and is not treated as a fragment.
 */
export function decodeIpv6(buf: Buffer, offset: number, end: number, pkt: DecodedPacket, net: NetInfo): boolean {
  if (end - offset < 40 || buf[offset] >> 4 !== 6) return false;
  const payloadLength = u16(buf, offset + 4);
  // payload length 0: a jumbogram (or a TSO capture); take what was captured
  const declaredEnd = payloadLength === 0 ? end : offset + 40 + payloadLength;
  net.snapped = declaredEnd > end;
  const ipEnd = net.snapped ? end : declaredEnd;
  net.end = ipEnd;
  pkt.ipVersion = 6;
  const src = pkt.srcAddr;
  const dst = pkt.dstAddr;
  src[0] = u32(buf, offset + 8);
  src[1] = u32(buf, offset + 12);
  src[2] = u32(buf, offset + 16);
  src[3] = u32(buf, offset + 20);
  dst[0] = u32(buf, offset + 24);
  dst[1] = u32(buf, offset + 28);
  dst[2] = u32(buf, offset + 32);
  dst[3] = u32(buf, offset + 36);
  net.fragment = false;
  let next = buf[offset + 6];
  let at = offset + 40;
  while (true) {
    if (next === IPV6_HOP_BY_HOP || next === IPV6_ROUTING || next === IPV6_DESTINATION || next === IPV6_AH) {
      if (ipEnd - at < 8) return false;
      const length = next === IPV6_AH ? (buf[at + 1] + 2) * 4 : (buf[at + 1] + 1) * 8;
      next = buf[at];
      at += length;
      if (at > ipEnd) return false;
      continue;
    }
    if (next === IPV6_FRAGMENT) {
      if (ipEnd - at < 8) return false;
      const fragmentOffset = u16(buf, at + 2) & 0xfff8;
      const more = (buf[at + 3] & 1) !== 0;
      const inner = buf[at];
      if ((fragmentOffset !== 0 || more) && !net.fragment) {
        net.fragment = true;
        net.fragmentOffset = fragmentOffset;
        net.moreFragments = more;
        net.fragmentId = u32(buf, at + 4);
        net.fragmentProto = inner;
        net.fragmentDataOffset = at + 8;
      }
      next = inner;
      at += 8;
      if (fragmentOffset !== 0) break; // the rest is a slice of the datagram, not headers
      continue;
    }
    break;
  }
  pkt.proto = next;
  net.transportOffset = at;
  return true;
}
