/**
 * Ethernet and the EtherType chain that can sit between the link layer and IP: 802.1Q / QinQ tags (any
 * depth), a PPPoE session, an MPLS label stack. The result goes into a reused LinkCursor: where the IP
 * header starts and which IP version it is (or non-IP, or damaged).
 */
import { u16 } from '../bytes.js';
import { readMac } from '../mac.js';
import type { DecodedPacket } from './packet.js';

/** Outcomes of the link layer, in LinkCursor.kind. */
export const NET_ERROR = -1;
export const NET_NONE = 0;
export const NET_IPV4 = 4;
export const NET_IPV6 = 6;

/** Where the network layer starts (offset) and what it is (kind: NET_*). Reused for every packet. */
export class LinkCursor {
  offset = 0;
  kind = NET_NONE;
}

const ETH_IPV4 = 0x0800;
const ETH_IPV6 = 0x86dd;
const ETH_VLAN = 0x8100;
const ETH_QINQ = 0x88a8;
const ETH_QINQ_OLD = 0x9100;
const ETH_PPPOE_SESSION = 0x8864;
const ETH_MPLS_UNICAST = 0x8847;
const ETH_MPLS_MULTICAST = 0x8848;
const PPP_IPV4 = 0x0021;
const PPP_IPV6 = 0x0057;


/** Decodes an Ethernet II / 802.3 frame in buf[offset, end): MACs into pkt, network layer into cursor. */
export function decodeEthernet(buf: Buffer, offset: number, end: number, pkt: DecodedPacket, cursor: LinkCursor): void {
  if (end - offset < 14) { cursor.kind = NET_ERROR; return; }
  pkt.dstMac = readMac(buf, offset);
  pkt.srcMac = readMac(buf, offset + 6);
  decodeEtherType(buf, offset + 14, end, u16(buf, offset + 12), cursor);
}

/**
 * Follows an EtherType (the payload starts at `offset`) through VLAN tags, PPPoE and MPLS down to IP.
 * A value below 0x600 is an 802.3 length (LLC frames such as STP): not IP, not an error.
 */
export function decodeEtherType(buf: Buffer, offset: number, end: number, etherType: number, cursor: LinkCursor): void {
  let at = offset;
  let type = etherType;
  while (type === ETH_VLAN || type === ETH_QINQ || type === ETH_QINQ_OLD) {
    if (end - at < 4) { cursor.kind = NET_ERROR; return; }
    type = u16(buf, at + 2);
    at += 4;
  }
  cursor.offset = at;
  if (type === ETH_IPV4) { cursor.kind = NET_IPV4; return; }
  if (type === ETH_IPV6) { cursor.kind = NET_IPV6; return; }
  if (type === ETH_PPPOE_SESSION) { decodePppoeSession(buf, at, end, cursor); return; }
  if (type === ETH_MPLS_UNICAST || type === ETH_MPLS_MULTICAST) { decodeMpls(buf, at, end, cursor); return; }
  cursor.kind = NET_NONE;
}

/** PPPoE session header (6 bytes) and the PPP protocol field (2 bytes, or 1 when compressed). */
function decodePppoeSession(buf: Buffer, offset: number, end: number, cursor: LinkCursor): void {
  if (end - offset < 8) { cursor.kind = NET_ERROR; return; }
  let at = offset + 6;
  let protocol: number;
  if (buf[at] & 1) { protocol = buf[at]; at += 1; } // protocol field compression (RFC 1661 §6.5)
  else { protocol = u16(buf, at); at += 2; }
  cursor.offset = at;
  cursor.kind = protocol === PPP_IPV4 ? NET_IPV4 : protocol === PPP_IPV6 ? NET_IPV6 : NET_NONE;
}

/** MPLS label stack up to the bottom-of-stack bit, then IPv4/IPv6 guessed from the first nibble. */
function decodeMpls(buf: Buffer, offset: number, end: number, cursor: LinkCursor): void {
  let at = offset;
  while (true) {
    if (end - at < 4) { cursor.kind = NET_ERROR; return; }
    const bottom = buf[at + 2] & 1;
    at += 4;
    if (bottom) break;
  }
  cursor.offset = at;
  if (at >= end) { cursor.kind = NET_ERROR; return; }
  const version = buf[at] >> 4;
  // anything else (a pseudowire control word, Ethernet over MPLS) is not IP we can follow
  cursor.kind = version === 4 ? NET_IPV4 : version === 6 ? NET_IPV6 : NET_NONE;
}
