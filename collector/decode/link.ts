/**
 * Link layers other than Ethernet: Linux cooked captures (SLL, SLL2), BSD loopback (NULL, LOOP) and raw
 * IP. Each fills the reused LinkCursor with where the network layer starts and what it is.
 */
import { u16, u32 } from '../bytes.js';
import { readMac } from '../mac.js';
import { decodeEtherType, LinkCursor, NET_ERROR, NET_IPV4, NET_IPV6, NET_NONE } from './ethernet.js';
import type { DecodedPacket } from './packet.js';

const ARPHRD_IEEE80211_RADIOTAP = 803;
const ARPHRD_NETLINK = 824;

/** Address families in loopback headers: AF_INET everywhere, AF_INET6 differs per BSD. */
const AF_INET = 2;
const AF_INET6_NETBSD_OPENBSD = 24;
const AF_INET6_FREEBSD = 28;
const AF_INET6_DARWIN = 30;

/** LINKTYPE_LINUX_SLL: 16-byte header; the sender's address fills srcMac when it is 6 bytes long. */
export function decodeSll(buf: Buffer, offset: number, end: number, pkt: DecodedPacket, cursor: LinkCursor): void {
  if (end - offset < 16) { cursor.kind = NET_ERROR; return; }
  if (u16(buf, offset + 4) === 6) pkt.srcMac = readMac(buf, offset + 6);
  const hardwareType = u16(buf, offset + 2);
  decodeCooked(buf, offset + 16, end, hardwareType, u16(buf, offset + 14), cursor);
}

/** LINKTYPE_LINUX_SLL2: 20-byte header with the protocol first and a one-byte address length. */
export function decodeSll2(buf: Buffer, offset: number, end: number, pkt: DecodedPacket, cursor: LinkCursor): void {
  if (end - offset < 20) { cursor.kind = NET_ERROR; return; }
  if (buf[offset + 11] === 6) pkt.srcMac = readMac(buf, offset + 12);
  const hardwareType = u16(buf, offset + 8);
  decodeCooked(buf, offset + 20, end, hardwareType, u16(buf, offset), cursor);
}

function decodeCooked(buf: Buffer, offset: number, end: number, hardwareType: number, protocol: number, cursor: LinkCursor): void {
  if (hardwareType === ARPHRD_NETLINK || hardwareType === ARPHRD_IEEE80211_RADIOTAP) {
    cursor.offset = offset;
    cursor.kind = NET_NONE;
    return;
  }
  // protocol values below 0x600 (802.3, 802.2 LLC, CAN, ...) come out as non-IP
  decodeEtherType(buf, offset, end, protocol, cursor);
}

/** LINKTYPE_NULL: a 4-byte address family in the capturing host's byte order; both orders accepted. */
export function decodeNull(buf: Buffer, offset: number, end: number, cursor: LinkCursor): void {
  if (end - offset < 4) { cursor.kind = NET_ERROR; return; }
  let family = buf.readUInt32LE(offset);
  if (family > 0xffff) family = u32(buf, offset);
  setFamily(family, offset + 4, cursor);
}

/** LINKTYPE_LOOP: a 4-byte big-endian address family. */
export function decodeLoop(buf: Buffer, offset: number, end: number, cursor: LinkCursor): void {
  if (end - offset < 4) { cursor.kind = NET_ERROR; return; }
  setFamily(u32(buf, offset), offset + 4, cursor);
}

function setFamily(family: number, offset: number, cursor: LinkCursor): void {
  cursor.offset = offset;
  if (family === AF_INET) cursor.kind = NET_IPV4;
  else if (family === AF_INET6_NETBSD_OPENBSD || family === AF_INET6_FREEBSD || family === AF_INET6_DARWIN) cursor.kind = NET_IPV6;
  else cursor.kind = NET_NONE;
}

/** LINKTYPE_RAW / IPV4 / IPV6: the packet is the IP header; the version comes from its first nibble. */
export function decodeRaw(buf: Buffer, offset: number, end: number, cursor: LinkCursor): void {
  if (end - offset < 1) { cursor.kind = NET_ERROR; return; }
  cursor.offset = offset;
  const version = buf[offset] >> 4;
  cursor.kind = version === 4 ? NET_IPV4 : version === 6 ? NET_IPV6 : NET_ERROR;
}
