/**
 * DNS / mDNS response parsing: reports the A, AAAA and CNAME records of a message, so the flow stage can
 * tie server addresses to host names. Pure functions over a byte range; names are copied out as strings
 * (they outlive the packet), nothing else is allocated per record.
 *
 * Names are reported as they are in the packet (case kept, labels decoded as UTF-8, no trailing dot),
 * like tshark's dns.resp.name. Compression pointers are followed with a hop limit (loops) and bounds
 * checks; a name longer than 255 bytes is malformed.
 *
 * Sections: the answer section always. tshark's dns.a / dns.aaaa / dns.cname list records of every
 * section (answers, authority, additional). Unicast additional records are glue for name servers, not
 * what the client asked, so they are skipped by default; mDNS responders put the A/AAAA of a host they
 * announce in the additional section (RFC 6762 §6.2), so for mDNS (UDP 5353) pass includeAdditional.
 * Authority records are never reported.
 *
 * DNS over TCP: parseDnsOverTcp() takes the buffered start of the stream and consumes every complete
 * 2-byte-length-prefixed message.
 */
import { formatAddr } from './packet.js';

/** The record types reported. */
export type DnsAnswerType = 'A' | 'AAAA' | 'CNAME';

/** Receives one record: owner name, type, data (address or canonical name), TTL in seconds. */
export type DnsAnswerCallback = (name: string, type: DnsAnswerType, data: string, ttl: number) => void;

const TYPE_A = 1;
const TYPE_CNAME = 5;
const TYPE_AAAA = 28;
const HEADER_LENGTH = 12;
const MAX_POINTER_HOPS = 64;
const MAX_NAME_WIRE_LENGTH = 255;

/** Position after the name last read by readName() in the record that holds it. */
let nameEnd = 0;
const addressWords = new Uint32Array(4);

/**
 * Parses one DNS message in buf[offset, offset + length) and calls onAnswer for each A/AAAA/CNAME
 * record of the answer section (and of the additional section when includeAdditional). Queries and
 * non-standard opcodes report nothing. Returns false when the message is malformed; records before the
 * damage have already been reported (as tshark shows them).
 */
export function parseDns(
  buf: Buffer, offset: number, length: number, onAnswer: DnsAnswerCallback, includeAdditional = false,
): boolean {
  if (offset < 0 || length < 0 || offset + length > buf.length) return false;
  if (length < HEADER_LENGTH) return false;
  const start = offset;
  const end = offset + length;
  const flags = buf.readUInt16BE(start + 2);
  if ((flags & 0x8000) === 0 || (flags & 0x7800) !== 0) return true; // a query, or not a standard query
  const questions = buf.readUInt16BE(start + 4);
  const answers = buf.readUInt16BE(start + 6);
  const authorities = buf.readUInt16BE(start + 8);
  const additionals = buf.readUInt16BE(start + 10);
  let at = start + HEADER_LENGTH;
  for (let i = 0; i < questions; i++) {
    at = skipName(buf, at, end);
    if (at < 0 || at + 4 > end) return false;
    at += 4;
  }
  at = parseRecords(buf, start, at, end, answers, onAnswer);
  if (at < 0) return false;
  if (!includeAdditional) return true;
  at = parseRecords(buf, start, at, end, authorities, null);
  if (at < 0) return false;
  return parseRecords(buf, start, at, end, additionals, onAnswer) >= 0;
}

/**
 * Parses the complete length-prefixed DNS messages at the start of a DNS-over-TCP stream held in
 * buf[offset, offset + length); returns how many bytes they took (the caller keeps the rest).
 */
export function parseDnsOverTcp(
  buf: Buffer, offset: number, length: number, onAnswer: DnsAnswerCallback, includeAdditional = false,
  counts?: { dnsMessages: number; dnsMalformed: number },
): number {
  if (offset < 0 || length < 0 || offset + length > buf.length) return 0;
  const end = offset + length;
  let at = offset;
  while (end - at >= 2) {
    const messageLength = buf.readUInt16BE(at);
    if (end - at - 2 < messageLength) break;
    const ok = parseDns(buf, at + 2, messageLength, onAnswer, includeAdditional);
    if (counts) {
      counts.dnsMessages++;
      if (!ok) counts.dnsMalformed++;
    }
    at += 2 + messageLength;
  }
  return at - offset;
}

/** Walks `count` resource records from `at`; reports the wanted ones when onAnswer is given. */
function parseRecords(
  buf: Buffer, start: number, from: number, end: number, count: number, onAnswer: DnsAnswerCallback | null,
): number {
  let at = from;
  for (let i = 0; i < count; i++) {
    const nameAt = at;
    at = skipName(buf, at, end);
    if (at < 0 || at + 10 > end) return -1;
    const type = buf.readUInt16BE(at);
    const ttl = buf.readUInt32BE(at + 4);
    const dataLength = buf.readUInt16BE(at + 8);
    const dataAt = at + 10;
    at = dataAt + dataLength;
    if (at > end) return -1;
    if (onAnswer === null || (type !== TYPE_A && type !== TYPE_AAAA && type !== TYPE_CNAME)) continue;
    const name = readName(buf, start, nameAt, end);
    if (name === null) return -1;
    if (type === TYPE_A) {
      if (dataLength !== 4) continue;
      onAnswer(name, 'A', `${buf[dataAt]}.${buf[dataAt + 1]}.${buf[dataAt + 2]}.${buf[dataAt + 3]}`, ttl);
    } else if (type === TYPE_AAAA) {
      if (dataLength !== 16) continue;
      for (let w = 0; w < 4; w++) addressWords[w] = buf.readUInt32BE(dataAt + 4 * w);
      onAnswer(name, 'AAAA', formatAddr(6, addressWords), ttl);
    } else {
      const canonical = readName(buf, start, dataAt, end);
      if (canonical === null || nameEnd > at) return -1;
      onAnswer(name, 'CNAME', canonical, ttl);
    }
  }
  return at;
}

/** Returns the position after the name at `at` (without following pointers), or -1 when malformed. */
function skipName(buf: Buffer, from: number, end: number): number {
  let at = from;
  while (at < end) {
    const labelLength = buf[at];
    if (labelLength === 0) return at + 1;
    const kind = labelLength & 0xc0;
    if (kind === 0xc0) return at + 2 <= end ? at + 2 : -1;
    if (kind !== 0) return -1; // extended (0x40) and reserved (0x80) label types
    at += 1 + labelLength;
  }
  return -1;
}

/** A name's text as bytes, labels joined by dots (at most MAX_NAME_WIRE_LENGTH). */
const nameBytes = Buffer.alloc(MAX_NAME_WIRE_LENGTH);
/** Where each label starts in nameBytes (a label may itself hold a dot byte, so the dots do not tell). */
const labelStarts = new Int32Array(MAX_NAME_WIRE_LENGTH);

/**
 * Reads the name at `from` following compression pointers (relative to the message at `start`);
 * returns it without the trailing dot ('' for the root), or null when malformed. Sets nameEnd.
 * The labels are gathered into one buffer: an ASCII name (nearly all) is decoded from it at once, any
 * other label by label as UTF-8.
 */
function readName(buf: Buffer, start: number, from: number, end: number): string | null {
  let n = 0;
  let labels = 0;
  let ascii = true;
  let at = from;
  let hops = 0;
  let wireLength = 1;
  let after = -1;
  while (true) {
    if (at >= end) return null;
    const labelLength = buf[at];
    if (labelLength === 0) {
      if (after < 0) after = at + 1;
      break;
    }
    const kind = labelLength & 0xc0;
    if (kind === 0xc0) {
      if (at + 2 > end || ++hops > MAX_POINTER_HOPS) return null;
      if (after < 0) after = at + 2;
      at = start + (((labelLength & 0x3f) << 8) | buf[at + 1]);
      continue;
    }
    if (kind !== 0) return null;
    wireLength += 1 + labelLength;
    if (wireLength > MAX_NAME_WIRE_LENGTH || at + 1 + labelLength > end) return null;
    if (n > 0) nameBytes[n++] = 46; // "."
    labelStarts[labels++] = n;
    for (let i = at + 1; i <= at + labelLength; i++) {
      const c = buf[i];
      if (c >= 0x80) ascii = false;
      nameBytes[n++] = c;
    }
    at += 1 + labelLength;
  }
  nameEnd = after;
  if (ascii) return nameBytes.toString('latin1', 0, n);
  let name = '';
  for (let k = 0; k < labels; k++) {
    const labelEnd = k + 1 < labels ? labelStarts[k + 1] - 1 : n;
    const label = nameBytes.toString('utf8', labelStarts[k], labelEnd);
    name = k === 0 ? label : `${name}.${label}`;
  }
  return name;
}

/**
 * The name reader and skipper, for parsers of other DNS-format messages (mDNS service discovery):
 * readDnsName(buf, messageStart, at, end) returns the name at `at` (pointers followed, no trailing dot)
 * or null; skipDnsName(buf, at, end) returns the position after it in place, or -1.
 */
export { readName as readDnsName, skipName as skipDnsName };
