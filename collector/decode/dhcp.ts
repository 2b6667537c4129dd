/**
 * DHCP (BOOTP with the magic cookie, UDP 67/68): what a client says about itself when it joins the
 * network. An Echo asks for an address as "amazon-0d0fb5957" with vendor class "dhcpcd-5.5.6"; the host
 * name, vendor class and parameter-request list identify the device (and its OS) better than the MAC.
 *
 * DHCP packets are rare (a few per device per lease), so the parser returns a fresh record with copied
 * strings rather than a reused view. Bounded: it reads only buf[offset, offset + length), walks the
 * options once, and a string is at most MAX_STRING characters. Option overload (52: options in the
 * sname/file fields) is not followed; the fields this module reports are in the options area in practice.
 */
import { isAscii, isUtf8 } from 'node:buffer';
import { formatMac, readMac } from '../mac.js';

/** What a DHCP message says. */
export interface DhcpInfo {
  /** BOOTP op: 1 request (client to server), 2 reply. */
  op: number;
  /** Option 53: 1 DISCOVER, 2 OFFER, 3 REQUEST, 4 DECLINE, 5 ACK, 6 NAK, 7 RELEASE, 8 INFORM; null if absent. */
  messageType: number | null;
  /** chaddr as aa:bb:cc:dd:ee:ff (lower case) when the hardware is Ethernet (htype 1, hlen 6); else null. */
  clientMac: string | null;
  /** Option 12, the client's host name. */
  hostName: string | null;
  /** Option 60, vendor class identifier (e.g. "dhcpcd-5.5.6", "android-dhcp-9", "MSFT 5.0"). */
  vendorClass: string | null;
  /** Option 55, parameter request list, in the client's order (a fingerprint of its DHCP client). */
  parameterList: number[];
  /** Option 50, the address a client asks for (dotted quad). */
  requestedIp: string | null;
  /** The client's address: yiaddr (given) in a reply, else ciaddr (in use); null when 0.0.0.0. */
  clientIp: string | null;
  /** Option 15, the domain name a server hands out. */
  domainName: string | null;
}

/** Longest string reported; DHCP options hold at most 255 bytes each, and several may be concatenated. */
export const MAX_DHCP_STRING = 255;

const FIXED_LENGTH = 236;
const MAGIC_COOKIE = 0x63825363;
const OPT_PAD = 0;
const OPT_END = 255;
const OPT_HOST_NAME = 12;
const OPT_DOMAIN_NAME = 15;
const OPT_REQUESTED_IP = 50;
const OPT_MESSAGE_TYPE = 53;
const OPT_PARAMETER_LIST = 55;
const OPT_VENDOR_CLASS = 60;

/**
 * Parses the BOOTP/DHCP message in buf[offset, offset + length). Returns null when it is not one (too
 * short, no magic cookie, unknown op) or its options run past the end. Never throws.
 */
export function parseDhcp(buf: Buffer, offset: number, length: number): DhcpInfo | null {
  if (!(offset >= 0 && length >= 0 && offset + length <= buf.length)) return null;
  if (length < FIXED_LENGTH + 4) return null;
  const op = buf[offset];
  if (op !== 1 && op !== 2) return null;
  if (buf.readUInt32BE(offset + FIXED_LENGTH) !== MAGIC_COOKIE) return null;
  const htype = buf[offset + 1];
  const hlen = buf[offset + 2];
  const ciaddr = buf.readUInt32BE(offset + 12);
  const yiaddr = buf.readUInt32BE(offset + 16);
  const info: DhcpInfo = {
    op,
    messageType: null,
    clientMac: htype === 1 && hlen === 6 ? macAt(buf, offset + 28) : null,
    hostName: null,
    vendorClass: null,
    parameterList: [],
    requestedIp: null,
    clientIp: op === 2 && yiaddr !== 0 ? ipv4(yiaddr) : ciaddr !== 0 ? ipv4(ciaddr) : null,
    domainName: null,
  };
  const end = offset + length;
  let at = offset + FIXED_LENGTH + 4;
  while (at < end) {
    const code = buf[at];
    if (code === OPT_END) break;
    if (code === OPT_PAD) {
      at++;
      continue;
    }
    if (at + 2 > end) return null;
    const size = buf[at + 1];
    const data = at + 2;
    if (data + size > end) return null;
    switch (code) {
      case OPT_MESSAGE_TYPE:
        if (size === 1) info.messageType = buf[data];
        break;
      case OPT_HOST_NAME:
        info.hostName = appendString(info.hostName, buf, data, size);
        break;
      case OPT_VENDOR_CLASS:
        info.vendorClass = appendString(info.vendorClass, buf, data, size);
        break;
      case OPT_DOMAIN_NAME:
        info.domainName = appendString(info.domainName, buf, data, size);
        break;
      case OPT_REQUESTED_IP:
        if (size === 4) info.requestedIp = ipv4(buf.readUInt32BE(data));
        break;
      case OPT_PARAMETER_LIST:
        // split lists are concatenated (RFC 3396); 255 codes at most exist
        for (let i = 0; i < size && info.parameterList.length < 255; i++) info.parameterList.push(buf[data + i]);
        break;
      default:
        break;
    }
    at = data + size;
  }
  // the parts were joined byte for byte (latin1): a UTF-8 character may be split between two (RFC 3396)
  info.hostName = utf8IfValid(info.hostName);
  info.vendorClass = utf8IfValid(info.vendorClass);
  info.domainName = utf8IfValid(info.domainName);
  return info;
}

/**
 * Text whose bytes are UTF-8, as UTF-8 ("Jürgen's iPhone", as mDNS names are read); other bytes stay
 * latin1, one character each. RFC 2132 says ASCII, but phones and laptops send their names as typed.
 */
function utf8IfValid(text: string | null): string | null {
  if (text === null) return null;
  const bytes = Buffer.from(text, 'latin1');
  return !isAscii(bytes) && isUtf8(bytes) ? bytes.toString('utf8') : text;
}

/** An option's bytes as text (latin1: a byte a character, until parsing ends; trailing NULs dropped), appended to `previous` (RFC 3396 splits). */
function appendString(previous: string | null, buf: Buffer, from: number, size: number): string | null {
  let to = from + size;
  while (to > from && buf[to - 1] === 0) to--;
  const text = (previous ?? '') + buf.toString('latin1', from, to);
  if (text === '') return previous;
  return text.length > MAX_DHCP_STRING ? text.slice(0, MAX_DHCP_STRING) : text;
}

function macAt(buf: Buffer, at: number): string {
  return formatMac(readMac(buf, at));
}

function ipv4(value: number): string {
  return `${value >>> 24}.${(value >>> 16) & 255}.${(value >>> 8) & 255}.${value & 255}`;
}
